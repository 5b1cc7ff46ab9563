//! Read-through caches that need no invalidation calls: an entry is used only while no write
//! has been committed since it was read (the writer bumps the commit epoch after every batch,
//! before answering anyone) and for a few seconds at most (another process, such as a CLI
//! command, may write the same file). The hot path (`/auth`, every page) then reads the
//! database only after something changed.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest an entry is trusted even when this process committed nothing.
const MAX_AGE: Duration = Duration::from_secs(2);

struct Entry<V> {
    epoch: u64,
    read_at: Instant,
    value: V,
}

pub struct CommitCache<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> CommitCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The value read under `epoch`, if it is still current.
    pub fn get(&self, key: &K, epoch: u64) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        (entry.epoch == epoch && entry.read_at.elapsed() < MAX_AGE).then(|| entry.value.clone())
    }

    /// Remember `value`, read after observing `epoch` (take the epoch BEFORE reading).
    pub fn put(&self, key: K, epoch: u64, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                // Anything older than the current epoch is dead weight; if that frees nothing,
                // start over rather than grow.
                entries.retain(|_, e| e.epoch == epoch);
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
            entries.insert(
                key,
                Entry {
                    epoch,
                    read_at: Instant::now(),
                    value,
                },
            );
        }
    }

    pub fn remove(&self, key: &K) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_only_under_the_epoch_it_was_read_in() {
        let cache = CommitCache::new(4);
        cache.put(1, 7, "a");
        assert_eq!(cache.get(&1, 7), Some("a"));
        assert_eq!(
            cache.get(&1, 8),
            None,
            "a commit since the read makes it stale"
        );
        assert_eq!(cache.get(&2, 7), None);
    }

    #[test]
    fn a_full_cache_drops_stale_entries_and_never_grows_past_its_capacity() {
        let cache = CommitCache::new(2);
        cache.put(1, 1, 'a');
        cache.put(2, 1, 'b');
        cache.put(3, 2, 'c');
        assert_eq!(cache.get(&3, 2), Some('c'));
        assert_eq!(cache.get(&1, 1), None);
        cache.put(4, 2, 'd');
        cache.put(5, 2, 'e');
        assert!(cache.entries.lock().unwrap().len() <= 2);
    }
}

//! A bounded in-memory cache of groups resolved outside the ID token (Microsoft Graph for an
//! Entra overage, the Okta Groups API for a possibly truncated list), per (provider, subject),
//! kept for the provider's `groups_cache_seconds`. Only successful resolutions are cached: an
//! unknown membership is never remembered as an answer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most users remembered; beyond it expired entries go first, then the oldest.
pub const MAX_ENTRIES: usize = 10_000;

struct Entry {
    groups: Vec<String>,
    stored: Instant,
    ttl: Duration,
}

#[derive(Default)]
pub struct GroupsCache {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

impl GroupsCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Entry>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The groups stored for the user, when still fresh.
    pub fn get(&self, provider: &str, subject: &str) -> Option<Vec<String>> {
        let map = self.lock();
        let e = map.get(&(provider.to_owned(), subject.to_owned()))?;
        (e.stored.elapsed() < e.ttl).then(|| e.groups.clone())
    }

    pub fn put(&self, provider: &str, subject: &str, groups: Vec<String>, ttl: Duration) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, e| e.stored.elapsed() < e.ttl);
        }
        if map.len() >= MAX_ENTRIES
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.stored)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            (provider.to_owned(), subject.to_owned()),
            Entry {
                groups,
                stored: Instant::now(),
                ttl,
            },
        );
    }

    /// Forget a user's entry (the refresh path re-reads groups on purpose).
    pub fn forget(&self, provider: &str, subject: &str) {
        self.lock()
            .remove(&(provider.to_owned(), subject.to_owned()));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_until_its_ttl_passes() {
        let cache = GroupsCache::default();
        cache.put("entra", "u1", vec!["g".into()], Duration::from_secs(60));
        assert_eq!(cache.get("entra", "u1"), Some(vec!["g".to_owned()]));
        cache.put("entra", "u2", vec!["g".into()], Duration::ZERO);
        assert_eq!(cache.get("entra", "u2"), None);
        assert_eq!(cache.get("okta", "u1"), None);
    }

    #[test]
    fn the_cache_never_grows_past_its_bound() {
        let cache = GroupsCache::default();
        for i in 0..MAX_ENTRIES + 50 {
            cache.put("entra", &i.to_string(), Vec::new(), Duration::from_secs(60));
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
    }
}

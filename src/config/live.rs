//! The config in force. A reload swaps it whole, and does so inside its own write job (see
//! `membership::sync`): the store runs that job alone (an exclusive lock on PostgreSQL, across
//! every replica), so a job that reads [`LiveConfig::get`] while it runs sees the config that
//! every earlier commit was made under, and no later reload's. Write jobs that reconcile (a
//! login, a SCIM request, a refresh re-evaluation) therefore read the config inside the job,
//! never a snapshot taken when their request began: a login in flight during a reload cannot
//! write memberships of the config the reload just replaced. Elsewhere a request takes one
//! snapshot and keeps it.
//!
//! Each applied config has a version (stored with its text in the database, see
//! `store::applied`); with several replicas, one that finds a newer version stored loads it
//! before running a write job (`store::postgres`), and within a second otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::Config;

pub struct LiveConfig {
    config: RwLock<Arc<Config>>,
    /// The applied version the config in force is (0 before the first sync).
    version: AtomicU64,
    /// Set when this replica's own file differs from the applied config it serves.
    file_differs: RwLock<Option<String>>,
    /// The SHA-256 of this replica's own config file (as last read).
    own_sha: RwLock<String>,
}

impl LiveConfig {
    pub fn new(config: Config) -> Self {
        Self {
            config: RwLock::new(Arc::new(config.clone())),
            version: AtomicU64::new(0),
            own_sha: RwLock::new(config.source.sha256.clone()),
            file_differs: RwLock::new(None),
        }
    }

    pub fn get(&self) -> Arc<Config> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set(&self, config: Arc<Config>) {
        match self.config.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }

    /// Make `config`, applied version `version`, the config in force.
    pub fn set_version(&self, config: Arc<Config>, version: u64) {
        self.set(config);
        self.version.store(version, Ordering::Release);
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn set_version_number(&self, version: u64) {
        self.version.store(version, Ordering::Release);
    }

    /// Why this replica's own config file is not what it serves, if it is not.
    pub fn file_differs(&self) -> Option<String> {
        match self.file_differs.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set_file_differs(&self, why: Option<String>) {
        match self.file_differs.write() {
            Ok(mut d) => *d = why,
            Err(poisoned) => *poisoned.into_inner() = why,
        }
    }

    /// This replica's own file was read again (a reload applied it).
    pub fn set_own_file(&self, sha256: &str) {
        match self.own_sha.write() {
            Ok(mut s) => *s = sha256.to_owned(),
            Err(poisoned) => *poisoned.into_inner() = sha256.to_owned(),
        }
    }

    /// The applied config served is `sha256`: note whether this replica's own file differs.
    pub fn note_applied(&self, sha256: &str) {
        let own = match self.own_sha.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        self.set_file_differs((own != sha256).then(|| {
            format!(
                "this replica's config file (sha256 {}) differs from the applied config (sha256 {}); it serves the applied one: run `teamgate reload` to apply the file, or put the applied one in it",
                &own[..12.min(own.len())],
                &sha256[..12.min(sha256.len())]
            )
        }));
    }
}

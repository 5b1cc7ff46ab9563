//! The config in force. A reload swaps it whole, and does so inside its own write job (see
//! `app::sync_config`): the store runs write jobs one after another, so a job that reads
//! [`LiveConfig::get`] while it runs sees the config that every earlier commit was made
//! under, and no later reload's. Write jobs that reconcile (a login, a SCIM request, a
//! refresh re-evaluation) therefore read the config inside the job, never a snapshot taken
//! when their request began: a login in flight during a reload cannot write memberships of
//! the config the reload just replaced. Elsewhere a request takes one snapshot and keeps it.

use std::sync::{Arc, RwLock};

use super::Config;

pub struct LiveConfig(RwLock<Arc<Config>>);

impl LiveConfig {
    pub fn new(config: Config) -> Self {
        Self(RwLock::new(Arc::new(config)))
    }

    pub fn get(&self) -> Arc<Config> {
        match self.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn set(&self, config: Arc<Config>) {
        match self.0.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
    }
}

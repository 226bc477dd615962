//! What an operator command works with: the store, and an audit trail whose
//! events are stored before the command exits.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::Audit;
use crate::clock::{Clock, SystemClock};
use crate::config::ValidConfig;
use crate::service::{self, Ops};
use crate::store::{self, Store};

/// How long a command waits at exit for its audit events to be stored.
const AUDIT_WAIT: Duration = Duration::from_secs(10);

pub(super) struct Offline {
    pub store: Arc<dyn Store>,
    pub config: ValidConfig,
    audit: Audit,
}

impl Offline {
    /// Connects with an operator command's pool and starts the audit writer.
    pub async fn open(config: ValidConfig) -> anyhow::Result<Offline> {
        let store = store::connect(&config.database_url, &config.cli_pool_settings()).await?;
        let audit = Audit::new();
        audit.spawn_writer(Arc::clone(&store));
        Ok(Offline {
            store,
            config,
            audit,
        })
    }

    /// An action by the operator (actor `cli`), now.
    pub fn ops(&self) -> Ops<'_> {
        Ops::offline(
            self.store.as_ref(),
            &self.config,
            &self.audit,
            service::CLI,
            SystemClock.now(),
        )
    }

    /// Waits until the command's audit events are stored, then closes the
    /// pool. Call it whether the command succeeded or not.
    pub async fn finish(self) {
        self.audit.drain(AUDIT_WAIT).await;
        self.store.close().await;
    }
}

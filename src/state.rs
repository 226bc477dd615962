//! The running identity provider: configuration, store, keyring and password
//! hasher, shared by every request. [`Sigil::open`] is start-up.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::Audit;
use crate::client_cache::ClientCache;
use crate::clock::Clock;
use crate::config::ValidConfig;
use crate::keys::schedule::run_schedule;
use crate::keys::{Kek, KekError, Keyring, ensure_active_keys};
use crate::metadata::MetadataDocs;
use crate::passwords::Passwords;
use crate::revocation::DenyList;
use crate::store::{self, Backend, Store};
use crate::throttle::Throttle;
use crate::user_cache::UserCache;

pub struct Sigil {
    pub config: ValidConfig,
    pub store: Arc<dyn Store>,
    pub keys: Keyring,
    pub passwords: Passwords,
    pub throttle: Throttle,
    /// Registered clients held in memory (see `client_cache`).
    pub clients: Arc<ClientCache>,
    /// Enabled users' profiles held in memory (see `user_cache`).
    pub users: UserCache,
    pub deny_list: Arc<DenyList>,
    pub audit: Audit,
    pub clock: Arc<dyn Clock>,
    pub pruning: crate::prune::Pruning,
    /// The discovery documents, held in memory (see `metadata`).
    pub metadata: Arc<MetadataDocs>,
    /// The WebAuthn relying party this issuer is (see `mfa::passkeys`);
    /// `None` when the issuer's host is not a domain name (browsers refuse
    /// an IP address as a relying party id), and passkeys are off.
    pub webauthn: Option<crate::mfa::passkeys::Webauthn>,
    /// DPoP server nonces (RFC 9449 §8).
    pub dpop_nonces: crate::dpop::Nonces,
    /// One-time identifiers seen: DPoP proofs', client assertions'.
    pub replay: crate::replay::ReplayGuard,
    /// The keys of `private_key_jwt` clients registered with a `jwks_uri`.
    pub client_keys: crate::clients::ClientKeyCache,
    /// Woken when a client changes on this node, so the documents follow.
    metadata_stale: Arc<tokio::sync::Notify>,
}

impl Sigil {
    /// Checks the key-encryption key can be read, connects to the database
    /// (creating the schema in an empty one; any other must be current),
    /// loads or creates the KEK and checks it opens the stored keys, makes
    /// sure a signing key is active for every algorithm, and loads the
    /// keyring. Any failure stops start-up, before anything is written.
    pub async fn open(config: ValidConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Sigil>> {
        // Install the metrics recorder before anything is counted.
        crate::metrics::handle();
        let kek_file = config.kek_file();
        // A malformed or unreadable KEK stops start-up before the database
        // is touched (not even created); only "missing" is decided below.
        match Kek::load(config.kek.as_ref(), &kek_file, false) {
            Ok(_) | Err(KekError::Missing(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let store = store::connect(&config.database_url, &config.pool_settings()).await?;
        let now = clock.now();
        let existing = store.list_keys().await?;
        // A new KEK may only be created while no encrypted key exists (with
        // keys stored, a missing KEK is an operator error, not a first start),
        // and only for the embedded default: nodes sharing a Postgres must
        // share one KEK, so it cannot be made up by whichever node starts first.
        let embedded = Backend::of(&config.database_url) == Some(Backend::Sqlite);
        if !embedded && existing.is_empty() && config.kek.is_none() && !kek_file.exists() {
            anyhow::bail!(
                "no key-encryption key at {} and SIGIL_KEK is not set. On Postgres every node must use the \
                 same KEK: create one with `sigil keys new-kek > {}` (then chmod 600) or set SIGIL_KEK, \
                 and give the same one to every node",
                kek_file.display(),
                kek_file.display()
            );
        }
        let kek = Kek::load(config.kek.as_ref(), &kek_file, existing.is_empty())?;
        // Check the KEK against the stored keys before anything is written
        // with it (a missing key would otherwise be created under a wrong KEK).
        let (kek, staged) = match kek.opens_all(&existing) {
            Ok(()) => (kek, false),
            // A rewrap interrupted after the database changed but before the
            // new KEK file replaced the old one: finish it.
            Err(KekError::WrongKek(kid)) if config.kek.is_none() => {
                match Kek::load_staged(&kek_file).filter(|s| s.opens_all(&existing).is_ok()) {
                    Some(staged) => (staged, true),
                    None => return Err(KekError::WrongKek(kid).into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let records = ensure_active_keys(store.as_ref(), &kek, config.rsa_bits, now).await?;
        let policy = config.key_policy();
        let dpop_nonces = crate::dpop::Nonces::new(kek.dpop_nonce_mac().clone());
        let keys = Keyring::new(kek, policy, records, now)?;
        if staged {
            Kek::promote_staged(&kek_file)?;
            tracing::warn!("completed an interrupted key-encryption-key rotation");
        }
        let passwords = Passwords::new(&config.argon2, &config.password)?;
        let throttle = Throttle::new(config.throttle.clone());
        let deny_list = Arc::new(DenyList::new(config.revocation_cache_capacity));
        deny_list.sync(store.as_ref(), now).await?;
        let metadata = Arc::new(MetadataDocs::load(store.as_ref(), &config).await?);
        let webauthn = match crate::mfa::passkeys::relying_party(
            &config.issuer,
            &config.branding.product_name,
        ) {
            Ok(rp) => Some(rp),
            Err(why) => {
                tracing::info!(%why, "passkeys are off: the issuer's host must be a domain name (localhost counts)");
                None
            }
        };
        Ok(Arc::new(Sigil {
            config,
            store,
            keys,
            passwords,
            throttle,
            clients: Arc::new(ClientCache::new()),
            users: UserCache::default(),
            deny_list,
            audit: Audit::new(),
            clock,
            pruning: Default::default(),
            metadata,
            webauthn,
            dpop_nonces,
            replay: crate::replay::ReplayGuard::new(!embedded),
            client_keys: crate::clients::ClientKeyCache::new(),
            metadata_stale: Arc::default(),
        }))
    }

    /// Applies a revocation this node just wrote, so it holds here at once
    /// (other nodes learn of it through the store's change signal).
    pub async fn revocations_changed(&self, now: i64) {
        if let Err(e) = self.deny_list.sync(self.store.as_ref(), now).await {
            tracing::warn!(error = %e, "could not re-read the deny-list after a revocation");
        }
    }

    /// Makes a client change committed through this node hold here at once:
    /// the cached clients are forgotten and the discovery documents rebuilt
    /// (other nodes learn of it from the store's client-change signal).
    pub async fn clients_changed(&self) {
        self.clients.invalidate();
        if let Err(e) = self
            .metadata
            .reload(self.store.as_ref(), &self.config)
            .await
        {
            tracing::warn!(error = %e, "rebuilding the metadata documents failed; will retry");
            self.metadata_stale.notify_one();
        }
    }

    /// Keeps the discovery documents in step with the registered clients:
    /// rebuilt on the store's client-change signal, when a rebuild after a
    /// change on this node failed, and every `CLIENT_CACHE_TTL` seconds for
    /// changes no signal carries (the CLI on SQLite). Requests never wait
    /// for it: they are served the documents in memory.
    pub(crate) fn spawn_metadata_refresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sigil = Arc::clone(self);
        let mut changes = sigil.store.client_changes();
        let period = Duration::from_secs(crate::client_cache::CLIENT_CACHE_TTL as u64);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                match changes.as_mut() {
                    Some(rx) => tokio::select! {
                        _ = ticker.tick() => {}
                        _ = sigil.metadata_stale.notified() => {}
                        changed = rx.changed() => if changed.is_err() { changes = None },
                    },
                    None => tokio::select! {
                        _ = ticker.tick() => {}
                        _ = sigil.metadata_stale.notified() => {}
                    },
                }
                if let Err(e) = sigil
                    .metadata
                    .reload(sigil.store.as_ref(), &sigil.config)
                    .await
                {
                    tracing::debug!(error = %e, "rebuilding the metadata documents failed; serving the last ones");
                }
            }
        })
    }

    /// Re-reads the key schedule from the database and rebuilds the keyring.
    pub async fn reload_keys(&self) -> anyhow::Result<()> {
        let records = self.store.list_keys().await?;
        self.keys.reload(records, self.clock.now())?;
        Ok(())
    }

    /// Keeps the keyring current: every second it applies transitions the
    /// clock has reached; on a change signal from another node, or every
    /// `reread`, it re-reads the keys so new ones appear.
    pub(crate) fn spawn_key_refresh(
        self: &Arc<Self>,
        reread: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let sigil = Arc::clone(self);
        let mut changes = sigil.store.changes();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            let mut last_read = tokio::time::Instant::now();
            loop {
                let signalled = match changes.as_mut() {
                    Some(rx) => tokio::select! {
                        _ = ticker.tick() => false,
                        changed = rx.changed() => {
                            if changed.is_err() { changes = None; }
                            true
                        }
                    },
                    None => {
                        ticker.tick().await;
                        false
                    }
                };
                if signalled || last_read.elapsed() >= reread {
                    last_read = tokio::time::Instant::now();
                    if let Err(e) = sigil.reload_keys().await {
                        tracing::warn!(error = %e, "re-reading signing keys failed; keeping the current set");
                    } else if !sigil.keys.is_ready() {
                        // An algorithm lost its signing key (another node
                        // died mid-emergency-rotation): repair it now
                        // rather than at the next scheduler pass.
                        if let Err(e) = sigil.run_key_schedule().await {
                            tracing::warn!(error = %e, "replacing a missing signing key failed; will retry");
                        }
                    }
                } else if let Err(e) = sigil.keys.tick(sigil.clock.now()) {
                    tracing::warn!(error = %e, "applying a key transition failed");
                }
            }
        })
    }

    /// One pass of the automatic key schedule (see `keys::schedule`), then a
    /// reload so this node sees the result at once.
    pub async fn run_key_schedule(&self) -> anyhow::Result<Vec<String>> {
        let now = self.clock.now();
        let created = run_schedule(
            self.store.as_ref(),
            self.keys.kek(),
            self.keys.policy(),
            &self.audit,
            now,
        )
        .await?;
        self.reload_keys().await?;
        Ok(created)
    }

    pub(crate) fn spawn_key_scheduler(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sigil = Arc::clone(self);
        tokio::spawn(async move {
            let period = Duration::from_secs(crate::keys::SCHEDULER_PERIOD as u64);
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                if let Err(e) = sigil.run_key_schedule().await {
                    tracing::warn!(error = %e, "the key scheduler failed; will retry");
                }
            }
        })
    }
}

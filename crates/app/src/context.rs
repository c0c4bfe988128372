//! What every front door needs: the configuration, the store, the canary
//! account, and who is acting ([`App`]); and the handle the operations run
//! on ([`Ops`]): an open store, the configuration, and the signals that tell
//! a running server that alerts were queued or tokens changed.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use honeytrail_aws::{AwsSettings, CanaryAccount};
use honeytrail_core::SecretBox;
use honeytrail_store::{AuditRecord, Store};

use crate::config::Config;
use crate::Actor;

pub struct App {
    pub config: Config,
    actor: Option<String>,
}

impl App {
    pub fn new(config: Config, actor: Option<String>) -> App {
        App { config, actor }
    }

    /// The person acting: `--actor`, else `$USER@hostname`.
    pub fn actor(&self) -> String {
        self.actor.clone().unwrap_or_else(|| {
            let user = ["SUDO_USER", "USER", "LOGNAME"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
                .or_else(login_name)
                .unwrap_or_else(|| "unknown".into());
            format!("{user}@{}", hostname())
        })
    }

    /// The person at this command line, as the operations see them.
    pub fn acting(&self) -> Actor {
        Actor::command_line(self.actor())
    }

    /// Opens the store. With SQLite, the data key is created beside the
    /// database on first use; with PostgreSQL it must be given (`init`, the
    /// key file or `HONEYTRAIL_SECRET_KEY`), since a key made up on one replica
    /// would not open secrets sealed on another.
    pub(crate) async fn store(&self) -> Result<Store> {
        self.open_store(false).await
    }

    /// Creates (or migrates) the database and, if there is none, the data
    /// key; returns the schema version the database is at.
    pub async fn init_database(&self) -> Result<i64> {
        let store = self.open_store(true).await?;
        let version = store.schema_version().await?;
        store.close().await;
        Ok(version)
    }

    /// The database URL as it may be shown: without its password.
    pub fn database_shown(&self) -> String {
        honeytrail_store::redact_url(&self.config.database_url())
    }

    /// Opens the store, creating the data key if there is none.
    pub(crate) async fn open_store(&self, create_key: bool) -> Result<Store> {
        private_dir(self.config.data_dir())?;
        let url = self.config.database_url();
        let sqlite = !url.starts_with("postgres");
        let secrets = self.secret_box(create_key || sqlite)?;
        let interval = chrono::Duration::seconds(self.config.alerts.min_update_interval_seconds.min(86_400) as i64);
        Ok(Store::open(&url, secrets)
            .await
            .context("cannot open the honeytrail database")?
            .with_update_interval(interval))
    }

    /// The data key: `HONEYTRAIL_SECRET_KEY`, else the key file, created
    /// (mode 0600) when `create` is set and it does not exist yet. `None`
    /// when there is no key and none may be created.
    pub fn secret_box(&self, create: bool) -> Result<Option<SecretBox>> {
        if let Some(key) = &self.config.secret_key {
            return SecretBox::from_base64(key).map(Some).context("HONEYTRAIL_SECRET_KEY is not a valid data key");
        }
        let path = self.config.secret_key_path();
        if !path.exists() {
            if !create {
                return Ok(None);
            }
            write_private(&path, &format!("{}\n", SecretBox::generate_key()))?;
            tracing::warn!(
                path = %path.display(),
                "created the data key that seals honey secrets at rest; back it up, and give replicas the same key"
            );
        }
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read the data key {}; run `honeytrail init`, or set HONEYTRAIL_SECRET_KEY", path.display())
        })?;
        SecretBox::from_base64(&text)
            .map(Some)
            .with_context(|| format!("the data key in {} is not valid", path.display()))
    }

    /// The operations on an open store.
    pub async fn ops(&self) -> Result<Ops> {
        Ok(Ops::new(self.store().await?, self.config.clone()))
    }

    pub async fn canary_account(&self) -> CanaryAccount {
        canary_account(&self.config).await
    }
}

/// What the operations run on. Cheap to clone: the store is a pool, the
/// configuration and signals are shared.
#[derive(Clone)]
pub struct Ops {
    /// The store: the operations' and this crate's engines' own; the
    /// front doors reach it only through operations.
    pub(crate) store: Store,
    pub config: Arc<Config>,
    signals: Arc<Signals>,
}

/// How a running server learns what its operations changed.
#[derive(Default)]
pub struct Signals {
    /// Woken when an alert was queued: the dispatcher sends it now.
    pub alerts_queued: Arc<tokio::sync::Notify>,
    /// Woken when a response action was approved or an incident changed:
    /// the response runner passes now.
    pub actions_due: Arc<tokio::sync::Notify>,
    /// Set when tokens changed: the detector rebuilds its index.
    pub tokens_changed: AtomicBool,
    /// The match index every source of this process uses.
    pub index: crate::sources::live_index::LiveIndex,
    /// This process as a replica, once `serve` joined the cluster.
    pub membership: crate::ops::cluster::MembershipCell,
    /// Failed sign-ins per (user, address) and per address.
    pub logins: std::sync::Mutex<crate::ops::sessions::LoginLimiter>,
    /// Lookups per person in the current window: one person cannot open
    /// report after report (or probe which keys are decoys) at machine speed.
    pub lookups: std::sync::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>,
    /// The agent binary's SHA-256, with the path, size and time it was
    /// taken from: hashed again only when the file changed.
    pub agent_digest: FileCache<crate::ops::deploy::FileDigest>,
    /// AWS's identity certificates (`fleet.ec2_identity_certificates`),
    /// parsed again only when the file changed.
    pub identity_keys: FileCache<Arc<crate::identity::IdentityKeys>>,
}

/// A value made from a file, kept until the file's path, size or
/// modification time changes: a request never pays for reading it again.
pub struct FileCache<T>(std::sync::Mutex<Option<(FileStamp, T)>>);

/// What tells a file's versions apart, cheaply (one `stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    pub path: std::path::PathBuf,
    pub len: u64,
    pub modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    pub fn new(path: &Path, meta: &std::fs::Metadata) -> FileStamp {
        FileStamp { path: path.to_path_buf(), len: meta.len(), modified: meta.modified().ok() }
    }
}

impl<T> Default for FileCache<T> {
    fn default() -> Self {
        FileCache(std::sync::Mutex::new(None))
    }
}

impl<T: Clone> FileCache<T> {
    /// The value kept for exactly this version of the file.
    pub fn get(&self, stamp: &FileStamp) -> Option<T> {
        let kept = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.as_ref().filter(|(s, _)| s == stamp).map(|(_, v)| v.clone())
    }

    pub fn put(&self, stamp: FileStamp, value: T) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((stamp, value));
    }
}

/// Lookups one person may make in [`LOOKUP_WINDOW`].
pub const LOOKUPS_PER_WINDOW: u32 = 20;
/// The window of [`LOOKUPS_PER_WINDOW`].
pub const LOOKUP_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

impl Signals {
    /// Counts a lookup by `person`; `Err(seconds to wait)` past the limit.
    pub fn count_lookup(&self, person: &str) -> Result<(), u64> {
        let now = std::time::Instant::now();
        let mut lookups = self.lookups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if lookups.len() > 10_000 {
            lookups.retain(|_, (_, since)| now.duration_since(*since) < LOOKUP_WINDOW);
        }
        let entry = lookups.entry(person.to_string()).or_insert((0, now));
        if now.duration_since(entry.1) >= LOOKUP_WINDOW {
            *entry = (0, now);
        }
        if entry.0 >= LOOKUPS_PER_WINDOW {
            return Err(LOOKUP_WINDOW.saturating_sub(now.duration_since(entry.1)).as_secs().max(1));
        }
        entry.0 += 1;
        Ok(())
    }
}

impl Ops {
    pub fn new(store: Store, config: Config) -> Ops {
        Ops { store, config: Arc::new(config), signals: Arc::default() }
    }

    /// These operations on `store` (another pool on the same database, for
    /// a thread with its own runtime) sharing `self`'s signals: the same
    /// match index, limits and wake-ups.
    pub fn sharing_with(&self, other: Ops) -> Ops {
        Ops { store: other.store, config: other.config, signals: self.signals.clone() }
    }

    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// An incident changed: its alert goes out now.
    pub fn alert_queued(&self) {
        self.signals.alerts_queued.notify_one();
        self.signals.actions_due.notify_one();
    }

    /// Tokens changed: the next event is matched against a fresh index.
    pub fn tokens_changed(&self) {
        self.signals.tokens_changed.store(true, Ordering::Release);
    }

    /// Whether tokens changed since the last call.
    pub fn take_tokens_changed(&self) -> bool {
        self.signals.tokens_changed.swap(false, Ordering::AcqRel)
    }

    /// The store with `actor`'s audit entry for a change: the entry is
    /// written in the same transaction as the first change committed through
    /// the returned handle, so the change and its record exist together or
    /// not at all.
    pub fn audited(&self, actor: &Actor, action: &str, target: &str, detail: Option<&str>) -> Store {
        self.store.audited(AuditRecord {
            actor: actor.name.clone(),
            action: action.to_string(),
            target: target.to_string(),
            detail: detail.map(str::to_string),
            from: Some(actor.from.clone()),
        })
    }

    pub async fn canary_account(&self) -> CanaryAccount {
        canary_account(&self.config).await
    }

    /// What incident context is computed from, kept until it changes.
    pub async fn enricher(&self) -> Result<Arc<honeytrail_core::enrich::Enricher>> {
        crate::enrichment::enricher(&self.store, &self.config.enrich).await
    }

    /// The enricher, checked against the store at most every 30 s (the
    /// ingest path's; see [`crate::enrichment::recent_enricher`]).
    pub(crate) async fn recent_enricher(&self) -> Result<Arc<honeytrail_core::enrich::Enricher>> {
        crate::enrichment::recent_enricher(&self.store, &self.config.enrich, std::time::Duration::from_secs(30)).await
    }

    /// An incident's whole record (`kind`: why it is made).
    pub async fn record(&self, id: i64, kind: &str) -> Result<honeytrail_core::record::AlertRecord> {
        crate::record::incident_record(&self.store, &*self.enricher().await?, id, kind).await
    }
}

async fn canary_account(config: &Config) -> CanaryAccount {
    CanaryAccount::connect(&aws_settings(config)).await
}

/// How honeytrail reaches AWS: the endpoint, region and profile configured.
pub(crate) fn aws_settings(config: &Config) -> AwsSettings {
    AwsSettings {
        endpoint: config.aws.endpoint.clone(),
        region: config.aws.region.clone(),
        profile: config.aws.profile.clone(),
        static_credentials: None,
        role_arn: None,
    }
}

/// The login name of this process's user, from /proc and /etc/passwd.
fn login_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut fields = l.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_string())
    })
}

pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The data directory, created 0700; an existing one that others can read
/// or enter is narrowed to its owner (it holds the database and the data key).
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let mode = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?.permissions().mode();
    // Narrowed only when it is plainly honeytrail's own: a data directory
    // pointed at a shared one (/var/lib) must not lock other services out.
    let ours = ["honeytrail.sqlite", "secret.key", "honeytrail.toml"].iter().any(|f| dir.join(f).exists());
    if mode & 0o077 != 0 && !ours {
        tracing::warn!(dir = %dir.display(), "the data directory is open to others; make it 0700");
    } else if mode & 0o077 != 0 {
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => tracing::warn!(dir = %dir.display(), "the data directory was open to others; it is now 0700"),
            // Not ours (a shared mount): say so, but do not refuse to run.
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "the data directory is open to others; make it 0700")
            }
        }
    }
    Ok(())
}

/// Writes a file readable by its owner only, creating parent directories.
pub fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(content.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

//! honeytrail's store: one interface over SQLite (the embedded default) and
//! PostgreSQL (for several replicas).
//!
//! Both backends run the same SQL through sqlx's `Any` driver; migrations are
//! one file per version, with the PostgreSQL text derived from it. Times are
//! stored as milliseconds since the epoch so that comparisons and windows are
//! plain integer arithmetic on both.
//!
//! **Invariant:** a honey secret is written only sealed by the installation's
//! [`SecretBox`]; the store never holds it in clear text.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), honeytrail_store::StoreError> {
//! let store = honeytrail_store::Store::open("sqlite:///tmp/honeytrail.sqlite", None).await?;
//! let tokens = store.list_tokens(&Default::default()).await?;
//! # Ok(()) }
//! ```

mod accounts;
mod actions;
mod agents;
mod charts;
mod checkpoints;
mod ci;
mod cluster;
mod decoys;
mod enrichment;
mod error;
mod evidence;
mod fleet;
mod incidents;
mod migrate;
mod outbox;
mod questions;
mod registry;
mod turns;
mod users;

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use honeytrail_core::SecretBox;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use accounts::{AwsIntent, IntentKind, NewPoolAccount};
pub use actions::{Action, ActionRun, NewAction, RunChange, RunFilter, Start};
pub use agents::{Agent, AgentCommand, AgentFile, HostEnrolment, PresenceChange, SessionHandout};
pub use charts::{EventColumn, Series};
pub use checkpoints::ReportedUse;
pub use ci::{CiRunTaken, NewCiRun};
pub use cluster::{JobLease, Replica};
pub use decoys::NewDecoy;
pub use enrichment::{EnrichmentData, EnrichmentInfo};
pub use error::StoreError;
pub use evidence::{EvidenceFilter, NewAccess, StoredAccess, Touch};
pub use fleet::{enrolment_refusal, EnrolmentSecret, MAX_ENROLMENT_DAYS};
pub use incidents::{EventOutcome, IncidentFilter, SeenEvent};
pub use migrate::latest_version as latest_schema_version;
pub use outbox::{Channel, Delivery, RecentEvent, SourceProgress, Stats, StoredRunbook};
pub use questions::OwnerQuestion;
pub use registry::{
    ImportRow, ImportSummary, NewHop, PlacedToken, PlacementFilter, TokenFilter, TokenFingerprint, TokenIdentity,
};
pub use users::{ApiToken, AuditEntry, AuditRecord, Session, User};

/// Which database is behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The one store interface every other part of honeytrail uses.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    secrets: Option<SecretBox>,
    /// The least time between two update alerts of one incident.
    update_interval: chrono::Duration,
    /// The audit entry of the change this handle is for (see [`Store::audited`]).
    pending_audit: Option<Arc<Mutex<Option<AuditRecord>>>>,
    /// One event per token at a time within this process (see [`turns`]).
    token_turns: Arc<turns::Turns>,
}

/// Turns what a user wrote (`postgres://…`, `sqlite://…`, `sqlite:x.db`, or a
/// bare file path) into a database URL.
pub fn normalize_url(raw: &str) -> Result<(Backend, String), StoreError> {
    let raw = raw.trim();
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        return Ok((Backend::Postgres, raw.to_string()));
    }
    let path = if let Some(rest) = raw.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = raw.strip_prefix("sqlite:") {
        rest
    } else if raw.contains("://") {
        return Err(StoreError::Url(format!(
            "unsupported database URL {:?}: use sqlite:///path/to/honeytrail.sqlite or postgres://user:password@host/db",
            redact_url(raw)
        )));
    } else {
        raw
    };
    if path.is_empty() {
        return Err(StoreError::Url("the SQLite database path is empty".into()));
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let query = if query.is_empty() { "mode=rwc".to_string() } else { query.to_string() };
    Ok((Backend::Sqlite, format!("sqlite://{path}?{query}")))
}

/// A database URL with its password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Connects to the database at `url`, creating a SQLite file if needed,
    /// and brings its schema up to date.
    pub async fn open(url: &str, secrets: Option<SecretBox>) -> Result<Store, StoreError> {
        let store = Store::connect(url, secrets).await?;
        migrate::run(&store).await?;
        Ok(store)
    }

    /// Opens a database migrated only up to schema `version`, as a release
    /// that shipped it left it: the upgrade tests start from every one.
    #[doc(hidden)]
    pub async fn open_at_schema(url: &str, secrets: Option<SecretBox>, version: i64) -> Result<Store, StoreError> {
        let store = Store::connect(url, secrets).await?;
        migrate::run_to(&store, version).await?;
        Ok(store)
    }

    async fn connect(url: &str, secrets: Option<SecretBox>) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        if backend == Backend::Sqlite {
            create_parent_dir(&url)?;
            private_database_files(&url)?;
        }
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Url(format!("cannot parse database URL {}: {e}", redact_url(&url))))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            // How long a request waits for a connection. SQLite's waits are
            // for its one writer; PostgreSQL's long ones mean it is down
            // (sqlx retries a refused connection until then), and a request
            // should hear 503 "retry" before a client or proxy gives up.
            .acquire_timeout(std::time::Duration::from_secs(if backend == Backend::Sqlite { 30 } else { 10 }))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers work while a writer commits; a
                        // generous busy timeout serialises writers instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect { url: redact_url(&url), source: e })?;
        Ok(Store {
            pool,
            backend,
            secrets,
            update_interval: chrono::Duration::seconds(60),
            pending_audit: None,
            token_turns: Arc::default(),
        })
    }

    /// Sets the least time between two update alerts of one incident (new
    /// events); opening and state changes are never held back.
    pub fn with_update_interval(mut self, interval: chrono::Duration) -> Store {
        self.update_interval = interval;
        self
    }

    /// A handle on the same database whose first committed change also
    /// writes `entry` to the audit log, in the same transaction: the change
    /// and its audit entry are stored together or not at all.
    pub fn audited(&self, entry: AuditRecord) -> Store {
        Store { pending_audit: Some(Arc::new(Mutex::new(Some(entry)))), ..self.clone() }
    }

    /// The pending audit entry, once.
    fn take_audit(&self) -> Option<AuditRecord> {
        self.pending_audit.as_ref().and_then(|p| p.lock().unwrap_or_else(|e| e.into_inner()).take())
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a transaction that reads first and upgrades to
    /// a write later fails with "database is locked" when another writer got
    /// there between, without the busy timeout helping. Waiting for the lock
    /// is bounded (the busy timeout, then a few retries) and then reported.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        if self.backend == Backend::Postgres {
            return Ok(self.pool.begin().await?);
        }
        let mut attempt = 0;
        loop {
            match self.pool.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => return Ok(tx),
                Err(e) if is_busy(&e) && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, "the database is busy with another writer; waiting again");
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt as u64)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Commits a write transaction, with the pending audit entry in it.
    pub(crate) async fn commit(&self, mut tx: Transaction<'static, Any>) -> Result<(), StoreError> {
        if let Some(entry) = self.take_audit() {
            users::insert_audit(&mut tx, &entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs one write statement: on its own, or, when an audit entry is
    /// pending, in a transaction with it.
    pub(crate) async fn exec<'q>(
        &self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<sqlx::any::AnyQueryResult, StoreError> {
        if self.pending_audit.is_none() {
            return Ok(query.execute(&self.pool).await?);
        }
        let mut tx = self.begin_write().await?;
        let done = query.execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            // Nothing changed (the caller reports not found): nothing to audit.
            tx.rollback().await?;
            return Ok(done);
        }
        self.commit(tx).await?;
        Ok(done)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        migrate::current_version(self).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Writes a consistent copy of a SQLite database to `path` while it is
    /// in use (`VACUUM INTO`: one read transaction, a compact file).
    pub async fn snapshot_to(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Refused("a snapshot copies a SQLite database; use pg_dump for PostgreSQL".into()));
        }
        let path = path.to_str().ok_or_else(|| StoreError::Refused("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1").bind(path.to_string()).execute(&self.pool).await?;
        Ok(())
    }
}

/// Retries of `BEGIN IMMEDIATE` after the busy timeout ran out.
const BUSY_RETRIES: u32 = 3;

/// Whether SQLite refused because another connection holds the lock.
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            matches!(db.code().as_deref(), Some("5") | Some("6") | Some("517") | Some("262"))
                || db.message().contains("database is locked")
        }
        _ => false,
    }
}

/// The SQLite database and its WAL and shared-memory files, readable by
/// their owner only: they say which keys are decoys and where they are.
/// A missing database is created 0600 (SQLite gives the WAL and SHM files
/// the database's mode); existing files that others can read are narrowed.
fn private_database_files(url: &str) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = url.trim_start_matches("sqlite://");
    let path = path.split('?').next().unwrap_or(path);
    if path == ":memory:" || path.is_empty() {
        return Ok(());
    }
    let fail = |what: &str, p: &str, e: std::io::Error| StoreError::Url(format!("cannot {what} {p}: {e}"));
    if !std::path::Path::new(path).exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| fail("create the SQLite database", path, e))?;
    }
    for file in [path.to_string(), format!("{path}-wal"), format!("{path}-shm"), format!("{path}-journal")] {
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(|e| fail("make private", &file, e))?;
            tracing::warn!(file, "the database file was readable by others; it is now readable by its owner only");
        }
    }
    Ok(())
}

fn create_parent_dir(url: &str) -> Result<(), StoreError> {
    let path = url.trim_start_matches("sqlite://");
    let path = path.split('?').next().unwrap_or(path);
    if path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(|e| {
                StoreError::Url(format!(
                    "cannot create the directory {} for the SQLite database: {e}",
                    parent.display()
                ))
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise() {
        assert_eq!(
            normalize_url("/var/lib/ht.sqlite").unwrap(),
            (Backend::Sqlite, "sqlite:///var/lib/ht.sqlite?mode=rwc".into())
        );
        assert_eq!(normalize_url("sqlite:data/x.db").unwrap().1, "sqlite://data/x.db?mode=rwc");
        assert_eq!(normalize_url("sqlite:///x.db?mode=ro").unwrap().1, "sqlite:///x.db?mode=ro");
        assert_eq!(normalize_url("postgres://u:p@h/db").unwrap().0, Backend::Postgres);
        let err = normalize_url("mysql://root:hunter2@db/x").unwrap_err().to_string();
        assert!(err.contains("mysql://root:***@db/x") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://ht:s3cret@127.0.0.1:5432/ht"), "postgres://ht:***@127.0.0.1:5432/ht");
        assert_eq!(redact_url("postgres://ht@h/db"), "postgres://ht@h/db");
        assert_eq!(redact_url("sqlite:///x"), "sqlite:///x");
    }
}

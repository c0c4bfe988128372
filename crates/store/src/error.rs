use honeytrail_core::secret::SecretError;

/// Everything that can go wrong in the store, each naming the thing. Hints
/// that name a command are added by the application layer's error, for the
/// command line only, so the web UI never shows them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Url(String),
    #[error("cannot connect to the database at {url}: {source}; check that it is running and the URL, user and password are right")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot apply database migration {version} ({name}): {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database schema is at version {found}, newer than this honeytrail knows ({known}); upgrade honeytrail before using this database")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("access key {access_key_id} is already registered (token #{existing_id})")]
    Duplicate { access_key_id: String, existing_id: i64 },
    #[error("the import holds {count} access key(s) that are already registered or repeated, e.g. {example}; nothing was imported")]
    ImportDuplicates { count: usize, example: String },
    #[error("{0}")]
    Refused(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("the key pool is empty: no key minted ahead is left to hand out")]
    PoolEmpty,
    #[error("the store has no data key to seal honey secrets with")]
    NoSecretKey,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("stored {what} is invalid: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

//! Versioned schema migrations, one SQL file per backend and version.
//!
//! Applied in one transaction under a lock (an advisory lock on PostgreSQL, the
//! write lock on SQLite), so replicas starting together migrate once.

use sqlx::{Executor, Row};

use crate::{Backend, Store, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// One entry per version: `migrations/{sqlite,postgres}/<file>.sql`.
macro_rules! migration {
    ($version:literal, $name:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $file, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $file, ".sql")),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    migration!(1, "registry", "0001_registry"),
    migration!(2, "incidents", "0002_incidents"),
    migration!(3, "safety-net", "0003_safety_net"),
    migration!(4, "s3-objects", "0004_s3_objects"),
    migration!(5, "alerts", "0005_alerts"),
    migration!(6, "routes", "0006_routes"),
    migration!(7, "runbooks", "0007_runbooks"),
    migration!(8, "alert-followups", "0008_alert_followups"),
    migration!(9, "server", "0009_server"),
];

/// An arbitrary constant naming honeytrail's migration lock on PostgreSQL.
const PG_LOCK_ID: i64 = 0x686f6e6579;

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let pool = &store.pool;
    pool.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
        .await?;
    let mut tx = pool.begin().await?;
    if store.backend == Backend::Postgres {
        tx.execute(format!("DO $$ BEGIN PERFORM pg_advisory_xact_lock({PG_LOCK_ID}); END $$").as_str()).await?;
    }
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(&found) = applied.iter().max().filter(|&&v| v > known) {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = match store.backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let wrap = |source| StoreError::Migration { version: m.version, name: m.name, source };
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(wrap)?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(wrap)?;
        tracing::info!(version = m.version, name = m.name, "applied database migration");
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn current_version(store: &Store) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetch_one(&store.pool).await?;
    Ok(row.try_get::<i64, _>(0)?)
}

/// The schema version this build migrates databases to.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

//! Replicas and the leases of periodic jobs: any number of `serve` processes
//! on one database, each job run by one of them at a time.
//!
//! A lease is taken with one conditional statement (`UPDATE … WHERE the
//! lease ran out or is ours`), so two replicas asking at the same moment
//! cannot both get it, on either backend.

use chrono::{DateTime, Duration, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::registry::{from_millis, millis};
use crate::{Store, StoreError};

/// A `serve` process as it registered itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub id: String,
    /// Where it listens (`host:port`).
    pub address: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Set when it stopped cleanly.
    pub stopped_at: Option<DateTime<Utc>>,
}

/// A periodic job and its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub name: String,
    /// The replica holding it, if its lease has not run out.
    pub holder: Option<String>,
    pub lease_until: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_run_by: Option<String>,
    pub last_error: Option<String>,
}

fn opt_time(r: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    r.try_get::<Option<i64>, _>(column)?.map(from_millis).transpose()
}

impl Store {
    /// Registers a replica (or a restart under the same id) as beating now.
    pub async fn register_replica(&self, id: &str, address: &str, version: &str) -> Result<(), StoreError> {
        let now = millis(Utc::now());
        self.exec(
            sqlx::query(
                "INSERT INTO replicas (id, address, version, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
                 ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version, \
                 started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL",
            )
            .bind(id)
            .bind(address)
            .bind(version)
            .bind(now),
        )
        .await?;
        Ok(())
    }

    /// A replica's heartbeat: it is alive, and so are the leases it holds,
    /// renewed to `lease` from now. Returns the jobs it holds.
    pub async fn replica_heartbeat(&self, id: &str, lease: Duration) -> Result<Vec<String>, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE replicas SET heartbeat_at = $1 WHERE id = $2")
            .bind(millis(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE job_leases SET lease_until = $1 WHERE holder = $2 AND lease_until > $3")
            .bind(millis(now + lease))
            .bind(id)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        let held: Vec<String> =
            sqlx::query("SELECT name FROM job_leases WHERE holder = $1 AND lease_until > $2 ORDER BY name")
                .bind(id)
                .bind(millis(now))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
        self.commit(tx).await?;
        Ok(held)
    }

    /// A replica stopping cleanly: marked stopped, its leases given up at
    /// once so another replica takes them without waiting.
    pub async fn stop_replica(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE replicas SET stopped_at = $1 WHERE id = $2")
            .bind(millis(Utc::now()))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE job_leases SET holder = NULL, lease_until = 0 WHERE holder = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// Every replica that beat since `since` or has not stopped, newest first.
    pub async fn replicas(&self, since: DateTime<Utc>) -> Result<Vec<Replica>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, address, version, started_at, heartbeat_at, stopped_at FROM replicas \
             WHERE heartbeat_at >= $1 ORDER BY started_at DESC, id",
        )
        .bind(millis(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Replica {
                    id: r.try_get("id")?,
                    address: r.try_get("address")?,
                    version: r.try_get("version")?,
                    started_at: from_millis(r.try_get("started_at")?)?,
                    heartbeat_at: from_millis(r.try_get("heartbeat_at")?)?,
                    stopped_at: opt_time(r, "stopped_at")?,
                })
            })
            .collect()
    }

    /// Takes (or keeps) the lease of `job` for `holder` until `lease` from
    /// now, when it ran out or is `holder`'s already. Whether `holder` holds
    /// it now.
    pub async fn take_lease(&self, job: &str, holder: &str, lease: Duration) -> Result<bool, StoreError> {
        let now = Utc::now();
        self.exec(
            sqlx::query("INSERT INTO job_leases (name, lease_until) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING")
                .bind(job),
        )
        .await?;
        let taken = self
            .exec(
                sqlx::query(
                    "UPDATE job_leases SET holder = $1, lease_until = $2 \
                     WHERE name = $3 AND (holder = $1 OR holder IS NULL OR lease_until <= $4)",
                )
                .bind(holder)
                .bind(millis(now + lease))
                .bind(job)
                .bind(millis(now)),
            )
            .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Records a run of `job` by `by`: when, and what went wrong (`None`: it
    /// went well).
    pub async fn record_job_run(&self, job: &str, by: &str, error: Option<&str>) -> Result<(), StoreError> {
        let error: Option<String> = error.map(|e| e.chars().take(1000).collect());
        self.exec(
            sqlx::query("UPDATE job_leases SET last_run_at = $1, last_run_by = $2, last_error = $3 WHERE name = $4")
                .bind(millis(Utc::now()))
                .bind(by)
                .bind(error)
                .bind(job),
        )
        .await?;
        Ok(())
    }

    /// Every job with its lease; a lease that ran out shows no holder.
    pub async fn job_leases(&self) -> Result<Vec<JobLease>, StoreError> {
        let now = Utc::now();
        let rows = sqlx::query(
            "SELECT name, holder, lease_until, last_run_at, last_run_by, last_error FROM job_leases ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let lease_until = from_millis(r.try_get("lease_until")?)?;
                let holder: Option<String> = r.try_get("holder")?;
                Ok(JobLease {
                    name: r.try_get("name")?,
                    holder: holder.filter(|_| lease_until > now),
                    lease_until,
                    last_run_at: opt_time(r, "last_run_at")?,
                    last_run_by: r.try_get("last_run_by")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }
}

//! Host file-access evidence: reads of bait files, tied to the placement
//! whose host and path they match, and what became of each (a key use
//! followed, a bait-touched incident, a quiet program's read).
//!
//! **Invariants.** A record is filed once per host and record ID, however
//! often it is delivered. The host of an agent's record is the agent's
//! hostname, never what the record says.

use chrono::{DateTime, Utc};
use honeytrail_core::evidence::Access;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::registry::{from_millis, millis};
use crate::{Store, StoreError};
pub use honeytrail_core::evidence::FiledRead as StoredAccess;
pub use honeytrail_core::evidence::Touch;

/// A read to file: the record, the host it happened on and what it matched.
#[derive(Debug, Clone)]
pub struct NewAccess {
    pub access: Access,
    pub host: String,
    pub agent_id: Option<i64>,
    /// The token and placement the host and path matched.
    pub matched: Option<(i64, i64)>,
    /// Read by a quiet program.
    pub quiet: bool,
}

/// Which reads to list.
#[derive(Debug, Clone, Default)]
pub struct EvidenceFilter {
    pub host: Option<String>,
    pub token_id: Option<i64>,
    /// Only reads at or before this time (a timeline before a first use).
    pub until: Option<DateTime<Utc>>,
    /// Only reads at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

const COLUMNS: &str =
    "e.id, e.host, e.agent_id, e.token_id, t.access_key_id, e.placement_id, e.touch, e.received_at, e.record";
const FROM: &str = "access_evidence e LEFT JOIN tokens t ON t.id = e.token_id";

fn row(r: &AnyRow) -> Result<StoredAccess, StoreError> {
    let record: String = r.try_get("record")?;
    let access: Access = serde_json::from_str(&record)
        .map_err(|e| StoreError::Corrupt { what: "access evidence", detail: e.to_string() })?;
    let host: String = r.try_get("host")?;
    Ok(StoredAccess {
        id: r.try_get("id")?,
        sentence: access.sentence(&host),
        host,
        agent_id: r.try_get("agent_id")?,
        token_id: r.try_get("token_id")?,
        access_key_id: r.try_get("access_key_id")?,
        placement_id: r.try_get("placement_id")?,
        touch: Touch::parse(&r.try_get::<String, _>("touch")?),
        received_at: from_millis(r.try_get("received_at")?)?,
        access,
    })
}

impl Store {
    /// Files reads, each once per host and record ID; returns how many
    /// were new.
    pub async fn file_access(&self, reads: &[NewAccess]) -> Result<usize, StoreError> {
        let now = millis(Utc::now());
        let mut filed = 0;
        let mut tx = self.begin_write().await?;
        for n in reads {
            let a = &n.access;
            let touch = match (n.matched, n.quiet) {
                (None, _) => Touch::Unmatched,
                (Some(_), true) => Touch::Quiet,
                (Some(_), false) => Touch::Pending,
            };
            let record = serde_json::to_string(a)
                .map_err(|e| StoreError::Corrupt { what: "access evidence", detail: e.to_string() })?;
            let done = sqlx::query(
                "INSERT INTO access_evidence (host, record_id, path, agent_id, token_id, placement_id, source, \
                 first_at, last_at, opens, exe, record, touch, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                 ON CONFLICT (host, record_id) DO NOTHING",
            )
            .bind(&n.host)
            .bind(&a.id)
            .bind(&a.path)
            .bind(n.agent_id)
            .bind(n.matched.map(|m| m.0))
            .bind(n.matched.map(|m| m.1))
            .bind(a.source.as_str())
            .bind(millis(a.at))
            .bind(millis(a.last_at))
            .bind(i64::from(a.count))
            .bind(a.program())
            .bind(record)
            .bind(touch.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            filed += done.rows_affected() as usize;
        }
        self.commit(tx).await?;
        Ok(filed)
    }

    /// Reads, newest first.
    pub async fn evidence(&self, filter: &EvidenceFilter) -> Result<Vec<StoredAccess>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE 1 = 1");
        let mut at = 1;
        let mut next = |sql: &mut String, clause: &str| {
            sql.push_str(&format!(" AND {clause} ${at}"));
            at += 1;
        };
        if filter.host.is_some() {
            next(&mut sql, "e.host =");
        }
        if filter.token_id.is_some() {
            next(&mut sql, "e.token_id =");
        }
        if filter.until.is_some() {
            next(&mut sql, "e.first_at <=");
        }
        if filter.since.is_some() {
            next(&mut sql, "e.last_at >=");
        }
        sql.push_str(&format!(
            " ORDER BY e.first_at DESC, e.id DESC LIMIT {}",
            filter.limit.unwrap_or(500).clamp(1, 5000)
        ));
        let mut q = sqlx::query(&sql);
        if let Some(h) = &filter.host {
            q = q.bind(h);
        }
        if let Some(t) = filter.token_id {
            q = q.bind(t);
        }
        if let Some(u) = filter.until {
            q = q.bind(millis(u));
        }
        if let Some(s) = filter.since {
            q = q.bind(millis(s));
        }
        q.fetch_all(&self.pool).await?.iter().map(row).collect()
    }

    /// Pending reads that happened at or before `cutoff`, oldest first.
    pub async fn pending_touches(&self, cutoff: DateTime<Utc>) -> Result<Vec<StoredAccess>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE e.touch = 'pending' AND e.first_at <= $1 ORDER BY e.first_at, e.id LIMIT 1000"
        ))
        .bind(millis(cutoff))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row).collect()
    }

    /// Settles pending reads of `token_id` (`Used` when its key was used,
    /// `Touched` when an incident was opened for them).
    pub async fn settle_touches(&self, ids: &[i64], touch: Touch) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for id in ids {
            sqlx::query("UPDATE access_evidence SET touch = $1 WHERE id = $2 AND touch = 'pending'")
                .bind(touch.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        self.commit(tx).await
    }

    /// The token and placement of the active placement at `host` and `path`.
    pub async fn placement_at(&self, host: &str, path: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT token_id, id FROM placements WHERE host = $1 AND path = $2 AND removed_at IS NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(host)
        .bind(path)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("token_id")?, r.try_get("id")?))).transpose()
    }

    /// The paths of the active placements on `host` (all hosts: `None`).
    pub async fn placement_paths(&self, host: Option<&str>) -> Result<Vec<(String, String)>, StoreError> {
        let rows = match host {
            Some(h) => sqlx::query(
                "SELECT DISTINCT host, path FROM placements WHERE removed_at IS NULL AND host = $1 ORDER BY host, path",
            )
            .bind(h)
            .fetch_all(&self.pool)
            .await?,
            None => {
                sqlx::query("SELECT DISTINCT host, path FROM placements WHERE removed_at IS NULL ORDER BY host, path")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(|r| Ok((r.try_get("host")?, r.try_get("path")?))).collect()
    }

    /// What `agent_id` has filed: records received since `since`, and the
    /// bytes of every record it has kept.
    pub async fn agent_evidence_usage(&self, agent_id: i64, since: DateTime<Utc>) -> Result<(i64, i64), StoreError> {
        let recent: i64 = sqlx::query("SELECT COUNT(*) FROM access_evidence WHERE agent_id = $1 AND received_at >= $2")
            .bind(agent_id)
            .bind(millis(since))
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        // Cast: SUM of a length is bigint on PostgreSQL, integer on SQLite.
        let bytes: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(LENGTH(record)), 0) AS BIGINT) FROM access_evidence WHERE agent_id = $1",
        )
        .bind(agent_id)
        .fetch_one(&self.pool)
        .await?
        .try_get(0)?;
        Ok((recent, bytes))
    }

    /// Adds to the count of read records refused from an agent.
    pub async fn count_refused_evidence(&self, agent_id: i64, refused: u64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE agents SET evidence_refused = evidence_refused + $1 WHERE id = $2")
            .bind(i64::try_from(refused).unwrap_or(i64::MAX))
            .bind(agent_id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await
    }

    /// Keeps how an agent watches its bait and adds to its dropped count.
    pub async fn record_watch(&self, agent_id: i64, watch: Option<&str>, dropped: u64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE agents SET watch = COALESCE($1, watch), evidence_dropped = evidence_dropped + $2 WHERE id = $3",
        )
        .bind(watch)
        .bind(i64::try_from(dropped).unwrap_or(i64::MAX))
        .bind(agent_id)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }
}

impl Store {
    /// Whether `token_id`'s key was used (an incident of kind `use` with
    /// calls) between `from` and `to`.
    pub async fn key_used_between(
        &self,
        token_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM incidents WHERE token_id = $1 AND kind = 'use' AND last_seen >= $2 AND first_seen <= $3 LIMIT 1",
        )
        .bind(token_id)
        .bind(millis(from))
        .bind(millis(to))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}

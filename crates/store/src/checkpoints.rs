//! Checkpoints of the detection sources: the last use IAM reported for each
//! key (safety net) and the objects read from S3 buckets (polling).

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::registry::{from_millis, millis};
use crate::{Store, StoreError};

/// A key use reported by `iam:GetAccessKeyLastUsed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedUse {
    pub at: DateTime<Utc>,
    pub service: String,
    pub region: String,
    /// When honeytrail first saw this use.
    pub noticed_at: DateTime<Utc>,
    /// True while no CloudTrail event explains it.
    pub pending: bool,
}

impl Store {
    pub async fn reported_use(&self, token_id: i64) -> Result<Option<ReportedUse>, StoreError> {
        let row = sqlx::query(
            "SELECT last_used_at, service, region, checked_at, pending FROM key_last_used WHERE token_id = $1",
        )
        .bind(token_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ReportedUse {
                at: from_millis(r.try_get("last_used_at")?)?,
                service: r.try_get("service")?,
                region: r.try_get("region")?,
                noticed_at: from_millis(r.try_get("checked_at")?)?,
                pending: r.try_get::<i64, _>("pending")? != 0,
            })
        })
        .transpose()
    }

    pub async fn set_reported_use(&self, token_id: i64, u: &ReportedUse) -> Result<(), StoreError> {
        self.exec(sqlx::query(
            "INSERT INTO key_last_used (token_id, last_used_at, service, region, checked_at, pending) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (token_id) DO UPDATE SET last_used_at = excluded.last_used_at, service = excluded.service, \
             region = excluded.region, checked_at = excluded.checked_at, pending = excluded.pending",
        )
        .bind(token_id)
        .bind(millis(u.at))
        .bind(&u.service)
        .bind(&u.region)
        .bind(millis(u.noticed_at))
        .bind(u.pending as i64)
        )
        .await?;
        Ok(())
    }

    /// Whether any stored event of the token (in an incident, or expected
    /// by a CI run's window) happened at or after `since`.
    pub async fn has_event_since(&self, token_id: i64, since: DateTime<Utc>) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM events WHERE token_id = $1 AND event_time >= $2 AND source <> 'safety-net' \
             UNION ALL SELECT 1 FROM expected_events WHERE token_id = $1 AND event_time >= $2 \
             AND source <> 'safety-net' LIMIT 1",
        )
        .bind(token_id)
        .bind(millis(since))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}

impl Store {
    /// The keys of every object already read from an S3 source.
    pub async fn s3_objects_read(&self, source: &str) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT object_key FROM s3_objects WHERE source = $1")
            .bind(source)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Records that an object was read and its events stored.
    pub async fn mark_s3_object_read(&self, source: &str, key: &str, etag: Option<&str>) -> Result<(), StoreError> {
        self.exec(sqlx::query("INSERT INTO s3_objects (source, object_key, etag, read_at) VALUES ($1, $2, $3, $4) ON CONFLICT (source, object_key) DO NOTHING")
            .bind(source)
            .bind(key)
            .bind(etag)
            .bind(millis(Utc::now()))
            )
            .await?;
        Ok(())
    }
}

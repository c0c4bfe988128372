//! Enrichment data sets (AWS's IP ranges, a Tor exit list) as loaded, one
//! per kind: the newest load replaces the one before.

use sqlx::Row;

use crate::registry::{from_millis, millis};
use crate::{Store, StoreError};
pub use honeytrail_core::enrich::EnrichmentInfo;

/// A loaded data set with its body, as it was given.
#[derive(Debug, Clone)]
pub struct EnrichmentData {
    pub info: EnrichmentInfo,
    pub body: String,
}

impl Store {
    /// Keeps `body` as the data set of `kind`, replacing the one before.
    pub async fn put_enrichment(&self, info: &EnrichmentInfo, body: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM enrichment_data WHERE kind = $1").bind(&info.kind).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO enrichment_data (kind, body, published, entries, loaded_at, loaded_by) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&info.kind)
        .bind(body)
        .bind(&info.published)
        .bind(info.entries)
        .bind(millis(info.loaded_at))
        .bind(&info.loaded_by)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }

    /// Every loaded data set, by kind, without bodies: cheap, for telling
    /// whether anything changed.
    pub async fn enrichment_list(&self) -> Result<Vec<EnrichmentInfo>, StoreError> {
        let rows =
            sqlx::query("SELECT kind, published, entries, loaded_at, loaded_by FROM enrichment_data ORDER BY kind")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(info_of).collect()
    }

    /// The data set of `kind`, if one was loaded.
    pub async fn enrichment(&self, kind: &str) -> Result<Option<EnrichmentData>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT kind, body, published, entries, loaded_at, loaded_by FROM enrichment_data WHERE kind = $1",
        )
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(EnrichmentData { info: info_of(&r)?, body: r.try_get("body")? }))
    }

    /// Forgets the data set of `kind`.
    pub async fn remove_enrichment(&self, kind: &str) -> Result<(), StoreError> {
        let done = self.exec(sqlx::query("DELETE FROM enrichment_data WHERE kind = $1").bind(kind)).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("enrichment data {kind:?}")));
        }
        Ok(())
    }
}

fn info_of(r: &sqlx::any::AnyRow) -> Result<EnrichmentInfo, StoreError> {
    Ok(EnrichmentInfo {
        kind: r.try_get("kind")?,
        published: r.try_get("published")?,
        entries: r.try_get("entries")?,
        loaded_at: from_millis(r.try_get("loaded_at")?)?,
        loaded_by: r.try_get("loaded_by")?,
    })
}

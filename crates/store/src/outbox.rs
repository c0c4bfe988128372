//! The durable outbox: alert channels, and one delivery per alert and channel.
//!
//! Alerts are written in the transaction of the incident change that causes
//! them (see `incidents`). `fan_out` turns each new alert into deliveries, one
//! per enabled channel; `claim_due` hands due deliveries to a dispatcher under
//! a lease, so a dispatcher that dies mid-delivery loses nothing: the lease
//! runs out and the delivery is tried again (at least once, never lost).

use chrono::{DateTime, Duration, Utc};
use honeytrail_core::Secret;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::registry::{from_millis, millis};
use crate::{Backend, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// A delivery with what a dispatcher or a listing needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: i64,
    pub alert_kind: String,
    pub incident_id: i64,
    pub channel_id: i64,
    pub channel: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.alert_id, a.kind, a.incident_id, d.channel_id, c.name, d.state, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at";
const DELIVERY_JOIN: &str =
    "FROM deliveries d JOIN alerts a ON a.id = d.alert_id JOIN channels c ON c.id = d.channel_id";

fn delivery_from_row(r: &AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.try_get(0)?,
        alert_id: r.try_get(1)?,
        alert_kind: r.try_get(2)?,
        incident_id: r.try_get(3)?,
        channel_id: r.try_get(4)?,
        channel: r.try_get(5)?,
        state: r.try_get(6)?,
        attempts: r.try_get(7)?,
        next_attempt_at: from_millis(r.try_get(8)?)?,
        last_error: r.try_get(9)?,
        delivered_at: r.try_get::<Option<i64>, _>(10)?.map(from_millis).transpose()?,
    })
}

fn channel_from_row(r: &AnyRow) -> Result<Channel, StoreError> {
    Ok(Channel {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        enabled: r.try_get::<i64, _>(3)? != 0,
        created_at: from_millis(r.try_get(4)?)?,
    })
}

impl Store {
    /// Adds a channel; its configuration (URLs, tokens, passwords) is sealed.
    pub async fn add_channel(&self, name: &str, kind: &str, config: &Secret) -> Result<Channel, StoreError> {
        let sealed = self.secrets.as_ref().ok_or(StoreError::NoSecretKey)?.seal(config);
        let exists =
            sqlx::query("SELECT id FROM channels WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        if exists.is_some() {
            return Err(StoreError::Refused(format!("a channel named {name:?} exists; choose another name")));
        }
        sqlx::query("INSERT INTO channels (name, kind, config_sealed, enabled, created_at) VALUES ($1, $2, $3, 1, $4)")
            .bind(name)
            .bind(kind)
            .bind(sealed)
            .bind(millis(Utc::now()))
            .execute(&self.pool)
            .await?;
        self.channel(name).await
    }

    pub async fn channel(&self, name: &str) -> Result<Channel, StoreError> {
        let row = sqlx::query("SELECT id, name, kind, enabled, created_at FROM channels WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("channel {name:?} (`honeytrail channel list` shows them)")))?;
        channel_from_row(&row)
    }

    pub async fn channels(&self) -> Result<Vec<Channel>, StoreError> {
        let rows = sqlx::query("SELECT id, name, kind, enabled, created_at FROM channels ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(channel_from_row).collect()
    }

    /// A channel's configuration, opened.
    pub async fn channel_config(&self, channel_id: i64) -> Result<Secret, StoreError> {
        let row = sqlx::query("SELECT config_sealed FROM channels WHERE id = $1")
            .bind(channel_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("channel #{channel_id}")))?;
        let sealed: String = row.try_get(0)?;
        Ok(self.secrets.as_ref().ok_or(StoreError::NoSecretKey)?.open(&sealed)?)
    }

    /// Creates the deliveries of every alert not yet fanned out: one per
    /// enabled channel. Returns how many alerts were fanned out.
    pub async fn fan_out(&self) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let alerts: Vec<i64> = sqlx::query("SELECT id FROM alerts WHERE fanned_out = 0 ORDER BY id")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let now = millis(Utc::now());
        for id in &alerts {
            sqlx::query(
                "INSERT INTO deliveries (alert_id, channel_id, state, attempts, next_attempt_at) \
                 SELECT $1, id, 'pending', 0, $2 FROM channels WHERE enabled = 1 ON CONFLICT (alert_id, channel_id) DO NOTHING",
            )
            .bind(*id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE alerts SET fanned_out = 1 WHERE id = $1").bind(*id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(alerts.len())
    }

    /// Claims up to `limit` due deliveries for `lease`: they are not handed
    /// out again until the lease runs out (on PostgreSQL, concurrent
    /// dispatchers skip each other's rows with `FOR UPDATE SKIP LOCKED`).
    pub async fn claim_due(&self, limit: i64, lease: Duration) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        let ids: Vec<i64> = sqlx::query(&format!(
            "SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2{lock}"
        ))
        .bind(millis(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        for id in &ids {
            sqlx::query("UPDATE deliveries SET next_attempt_at = $1 WHERE id = $2")
                .bind(millis(now + lease))
                .bind(*id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.delivery(id).await?);
        }
        Ok(out)
    }

    pub async fn delivery(&self, id: i64) -> Result<Delivery, StoreError> {
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} {DELIVERY_JOIN} WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("delivery #{id}")))?;
        delivery_from_row(&row)
    }

    /// Deliveries in a state (`pending`, `delivered`, `dead`), newest first.
    pub async fn deliveries(&self, state: &str) -> Result<Vec<Delivery>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} {DELIVERY_JOIN} WHERE d.state = $1 ORDER BY d.id DESC"))
                .bind(state)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    pub async fn mark_delivered(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = $1, last_error = NULL WHERE id = $2")
            .bind(millis(Utc::now()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or dead-lettered when `None`.
    pub async fn mark_failed(&self, id: i64, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let (state, next) = match retry_at {
            Some(t) => ("pending", millis(t)),
            None => ("dead", millis(Utc::now())),
        };
        sqlx::query("UPDATE deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $4")
            .bind(state)
            .bind(next)
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts a dead-lettered delivery back in line, due now.
    pub async fn retry_delivery(&self, id: i64) -> Result<Delivery, StoreError> {
        let d = self.delivery(id).await?;
        if d.state != "dead" {
            return Err(StoreError::Refused(format!("delivery #{id} is {}, not dead-lettered", d.state)));
        }
        sqlx::query("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1 WHERE id = $2")
            .bind(millis(Utc::now()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.delivery(id).await
    }
}

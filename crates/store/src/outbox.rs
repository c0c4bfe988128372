//! The durable outbox: alert channels, and one delivery per alert and channel.
//!
//! Alerts are written in the transaction of the incident change that causes
//! them (see `incidents`). `fan_out` turns each new alert into deliveries, one
//! per enabled channel; `claim_due` hands due deliveries to a dispatcher under
//! a lease, so a dispatcher that dies mid-delivery loses nothing: the lease
//! runs out and the delivery is tried again (at least once, never lost).

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use honeytrail_core::enrich::Enricher;
use honeytrail_core::route::{self, AlertContext, Route};
use honeytrail_core::Secret;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::registry::{from_millis, millis};
use crate::{Backend, PlacementFilter, Store, StoreError};
pub use honeytrail_core::alerting::{Channel, Delivery, Runbook as StoredRunbook};

const DELIVERY_COLUMNS: &str = "d.id, d.alert_id, a.kind AS alert_kind, a.incident_id, d.channel_id, c.name AS channel, d.state, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at";
const DELIVERY_JOIN: &str =
    "FROM deliveries d JOIN alerts a ON a.id = d.alert_id JOIN channels c ON c.id = d.channel_id";

fn delivery_from_row(r: &AnyRow) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.try_get("id")?,
        alert_id: r.try_get("alert_id")?,
        alert_kind: r.try_get("alert_kind")?,
        incident_id: r.try_get("incident_id")?,
        channel_id: r.try_get("channel_id")?,
        channel: r.try_get("channel")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: from_millis(r.try_get("next_attempt_at")?)?,
        last_error: r.try_get("last_error")?,
        delivered_at: r.try_get::<Option<i64>, _>("delivered_at")?.map(from_millis).transpose()?,
    })
}

fn channel_from_row(r: &AnyRow) -> Result<Channel, StoreError> {
    Ok(Channel {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        created_at: from_millis(r.try_get("created_at")?)?,
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
        self.exec(
            sqlx::query(
                "INSERT INTO channels (name, kind, config_sealed, enabled, created_at) VALUES ($1, $2, $3, 1, $4)",
            )
            .bind(name)
            .bind(kind)
            .bind(sealed)
            .bind(millis(Utc::now())),
        )
        .await?;
        self.channel(name).await
    }

    pub async fn channel(&self, name: &str) -> Result<Channel, StoreError> {
        let row = sqlx::query("SELECT id, name, kind, enabled, created_at FROM channels WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("channel {name:?}")))?;
        channel_from_row(&row)
    }

    pub async fn channels(&self) -> Result<Vec<Channel>, StoreError> {
        let rows = sqlx::query("SELECT id, name, kind, enabled, created_at FROM channels ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(channel_from_row).collect()
    }

    /// Replaces a channel's configuration (sealed) and/or turns it on or off.
    pub async fn update_channel(
        &self,
        name: &str,
        config: Option<&Secret>,
        enabled: Option<bool>,
    ) -> Result<Channel, StoreError> {
        let channel = self.channel(name).await?;
        if let Some(config) = config {
            let sealed = self.secrets.as_ref().ok_or(StoreError::NoSecretKey)?.seal(config);
            self.exec(
                sqlx::query("UPDATE channels SET config_sealed = $1 WHERE id = $2").bind(sealed).bind(channel.id),
            )
            .await?;
        }
        if let Some(enabled) = enabled {
            self.exec(
                sqlx::query("UPDATE channels SET enabled = $1 WHERE id = $2").bind(enabled as i64).bind(channel.id),
            )
            .await?;
        }
        self.channel(name).await
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
    /// channel the routing rules choose (every enabled channel when there are
    /// no rules). Returns how many alerts were fanned out.
    pub async fn fan_out(&self, enricher: &Enricher) -> Result<usize, StoreError> {
        let alerts: Vec<(i64, i64)> =
            sqlx::query("SELECT id, incident_id FROM alerts WHERE fanned_out = 0 AND not_before <= $1 ORDER BY id")
                .bind(millis(Utc::now()))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, StoreError>>()?;
        if alerts.is_empty() {
            return Ok(0);
        }
        let routes = self.routes().await?;
        let channels: Vec<Channel> = self.channels().await?.into_iter().filter(|c| c.enabled).collect();
        let mut plan = Vec::with_capacity(alerts.len());
        for (alert_id, incident_id) in alerts {
            let targets: Vec<i64> = match self.route_alert(&routes, incident_id, enricher).await? {
                None => channels.iter().map(|c| c.id).collect(),
                Some(names) => channels.iter().filter(|c| names.contains(&c.name)).map(|c| c.id).collect(),
            };
            plan.push((alert_id, targets));
        }
        let now = millis(Utc::now());
        let mut tx = self.begin_write().await?;
        for (alert_id, targets) in &plan {
            for channel_id in targets {
                sqlx::query(
                    "INSERT INTO deliveries (alert_id, channel_id, state, attempts, next_attempt_at) VALUES ($1, $2, 'pending', 0, $3) \
                     ON CONFLICT (alert_id, channel_id) DO NOTHING",
                )
                .bind(*alert_id)
                .bind(*channel_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE alerts SET fanned_out = 1 WHERE id = $1").bind(*alert_id).execute(&mut *tx).await?;
        }
        self.commit(tx).await?;
        Ok(plan.len())
    }

    /// The channel names the routes choose for an incident's alert.
    async fn route_alert(
        &self,
        routes: &[Route],
        incident_id: i64,
        enricher: &Enricher,
    ) -> Result<Option<BTreeSet<String>>, StoreError> {
        if routes.is_empty() {
            return Ok(None);
        }
        self.with_alert_context(incident_id, enricher, |ctx| route::select(routes, ctx)).await
    }

    /// Whether the route named `name` matches the incident (as it would
    /// for one of its alerts); false when there is no such route.
    pub async fn route_matches(&self, name: &str, incident_id: i64, enricher: &Enricher) -> Result<bool, StoreError> {
        let routes = self.routes().await?;
        let Some(route) = routes.iter().find(|r| r.name == name) else { return Ok(false) };
        self.with_alert_context(incident_id, enricher, |ctx| route.matches(ctx)).await
    }

    /// What routing looks at for an incident, given to `f`.
    async fn with_alert_context<T>(
        &self,
        incident_id: i64,
        enricher: &Enricher,
        f: impl FnOnce(&AlertContext<'_>) -> T,
    ) -> Result<T, StoreError> {
        let incident = self.incident(incident_id).await?;
        let token = self.token(incident.token_id).await?;
        let placements = self.placements(&PlacementFilter { token_id: Some(token.id), ..Default::default() }).await?;
        let context = enricher.incident(&self.incident_activity(incident_id).await?);
        let severity =
            context.raise(honeytrail_core::incident::Severity::of(&token.labels, incident.state, incident.kind));
        if severity != incident.severity {
            self.note_context_raise(incident_id, context.raises()).await?;
        }
        let ctx = AlertContext {
            labels: &token.labels,
            placements: placements
                .iter()
                .map(|p| (p.placement.spot.owner.as_deref(), p.placement.spot.host.as_str()))
                .collect(),
            state: Some(incident.state),
            severity,
            context: Some(&context),
        };
        Ok(f(&ctx))
    }

    pub async fn routes(&self) -> Result<Vec<Route>, StoreError> {
        let rows = sqlx::query("SELECT rule FROM routes ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let rule: String = r.try_get(0)?;
                serde_json::from_str(&rule).map_err(|e| StoreError::Corrupt { what: "route", detail: e.to_string() })
            })
            .collect()
    }

    pub async fn add_route(&self, route: &Route) -> Result<(), StoreError> {
        if route.channels.is_empty() {
            return Err(StoreError::Refused("a route needs at least one channel".into()));
        }
        let known: Vec<String> = self.channels().await?.into_iter().map(|c| c.name).collect();
        if let Some(missing) = route.channels.iter().find(|c| !known.contains(c)) {
            return Err(StoreError::Refused(format!("no channel is named {missing:?}; add the channel first")));
        }
        if sqlx::query("SELECT 1 FROM routes WHERE name = $1")
            .bind(&route.name)
            .fetch_optional(&self.pool)
            .await?
            .is_some()
        {
            return Err(StoreError::Refused(format!(
                "a route named {:?} exists; remove it first to change it",
                route.name
            )));
        }
        self.exec(
            sqlx::query("INSERT INTO routes (name, rule, created_at) VALUES ($1, $2, $3)")
                .bind(&route.name)
                .bind(serde_json::to_string(route).expect("routes serialise"))
                .bind(millis(Utc::now())),
        )
        .await?;
        Ok(())
    }

    pub async fn remove_route(&self, name: &str) -> Result<(), StoreError> {
        let done = self.exec(sqlx::query("DELETE FROM routes WHERE name = $1").bind(name)).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("route {name:?}")));
        }
        Ok(())
    }

    /// Claims up to `limit` due deliveries for `lease`: they are not handed
    /// out again until the lease runs out (on PostgreSQL, concurrent
    /// dispatchers skip each other's rows with `FOR UPDATE SKIP LOCKED`).
    pub async fn claim_due(&self, limit: i64, lease: Duration) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        let lock = if self.backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
        // One statement claims, one reads: two round trips whatever the count.
        let mut ids: Vec<i64> = sqlx::query(&format!(
            "UPDATE deliveries SET next_attempt_at = $1 WHERE id IN \
             (SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $3{lock}) \
             RETURNING id"
        ))
        .bind(millis(now + lease))
        .bind(millis(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            self.commit(tx).await?;
            return Ok(Vec::new());
        }
        ids.sort_unstable();
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let rows =
            sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} {DELIVERY_JOIN} WHERE d.id IN ({list}) ORDER BY d.id"))
                .fetch_all(&mut *tx)
                .await?;
        self.commit(tx).await?;
        rows.iter().map(delivery_from_row).collect()
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
        self.deliveries_page(state, None, i64::MAX).await
    }

    /// Deliveries in `state`, newest first: those before delivery `before`,
    /// at most `limit`.
    pub async fn deliveries_page(
        &self,
        state: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} {DELIVERY_JOIN} WHERE d.state = $1 AND d.id < $2 ORDER BY d.id DESC LIMIT $3"
        ))
        .bind(state)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    pub async fn mark_delivered(&self, id: i64) -> Result<(), StoreError> {
        self.exec(sqlx::query("UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = $1, last_error = NULL WHERE id = $2")
            .bind(millis(Utc::now()))
            .bind(id)
            )
            .await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at`, or dead-lettered when `None`.
    pub async fn mark_failed(&self, id: i64, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        let (state, next) = match retry_at {
            Some(t) => ("pending", millis(t)),
            None => ("dead", millis(Utc::now())),
        };
        self.exec(sqlx::query("UPDATE deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $4")
            .bind(state)
            .bind(next)
            .bind(error)
            .bind(id)
            )
            .await?;
        Ok(())
    }

    /// Puts a dead-lettered delivery back in line, due now.
    pub async fn retry_delivery(&self, id: i64) -> Result<Delivery, StoreError> {
        let d = self.delivery(id).await?;
        if d.state != "dead" {
            return Err(StoreError::Refused(format!("delivery #{id} is {}, not dead-lettered", d.state)));
        }
        self.exec(
            sqlx::query("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1 WHERE id = $2")
                .bind(millis(Utc::now()))
                .bind(id),
        )
        .await?;
        self.delivery(id).await
    }
}

/// Counts for the dashboard and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// `(state, count)` of incidents.
    pub incidents: Vec<(String, i64)>,
    /// `(channel, state, count)` of deliveries.
    pub deliveries: Vec<(String, String, i64)>,
    /// `(state, count)` of tokens.
    pub tokens: Vec<(String, i64)>,
}

impl Store {
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        let pairs = |rows: Vec<AnyRow>| -> Result<Vec<(String, i64)>, StoreError> {
            rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
        };
        let incidents = pairs(
            sqlx::query("SELECT state, COUNT(*) FROM incidents GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?,
        )?;
        let tokens = pairs(
            sqlx::query("SELECT state, COUNT(*) FROM tokens GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?,
        )?;
        let deliveries = sqlx::query(
            "SELECT c.name, d.state, COUNT(*) FROM deliveries d JOIN channels c ON c.id = d.channel_id GROUP BY c.name, d.state ORDER BY c.name, d.state",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, StoreError>>()?;
        Ok(Stats { incidents, deliveries, tokens })
    }
}

impl Store {
    /// Creates or replaces a runbook.
    pub async fn set_runbook(&self, r: &StoredRunbook) -> Result<(), StoreError> {
        self.exec(sqlx::query(
            "INSERT INTO runbooks (name, selector, template, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET selector = excluded.selector, template = excluded.template, updated_at = excluded.updated_at",
        )
        .bind(&r.name)
        .bind(&r.selector)
        .bind(&r.template)
        .bind(millis(Utc::now()))
        )
        .await?;
        Ok(())
    }

    pub async fn runbooks(&self) -> Result<Vec<StoredRunbook>, StoreError> {
        let rows =
            sqlx::query("SELECT name, selector, template FROM runbooks ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(StoredRunbook {
                    name: r.try_get("name")?,
                    selector: r.try_get("selector")?,
                    template: r.try_get("template")?,
                })
            })
            .collect()
    }

    pub async fn remove_runbook(&self, name: &str) -> Result<(), StoreError> {
        let done = self.exec(sqlx::query("DELETE FROM runbooks WHERE name = $1").bind(name)).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("runbook {name:?}")));
        }
        Ok(())
    }
}

/// An event as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEvent {
    pub event_time: DateTime<Utc>,
    pub access_key_id: String,
    pub event_name: String,
    pub source_ip: Option<String>,
    pub incident: i64,
}

/// An S3 source's progress, for the dashboard's sources health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProgress {
    pub source: String,
    pub objects: i64,
    pub last_read: DateTime<Utc>,
}

impl Store {
    pub async fn recent_events(&self, limit: i64) -> Result<Vec<RecentEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.event_time, t.access_key_id, e.event_name, e.source_ip, e.incident_id FROM events e \
             JOIN tokens t ON t.id = e.token_id ORDER BY e.event_time DESC, e.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RecentEvent {
                    event_time: from_millis(r.try_get("event_time")?)?,
                    access_key_id: r.try_get("access_key_id")?,
                    event_name: r.try_get("event_name")?,
                    source_ip: r.try_get("source_ip")?,
                    incident: r.try_get("incident_id")?,
                })
            })
            .collect()
    }

    pub async fn s3_sources(&self) -> Result<Vec<SourceProgress>, StoreError> {
        let rows = sqlx::query("SELECT source, COUNT(*) AS objects, MAX(read_at) AS last_read FROM s3_objects GROUP BY source ORDER BY source")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SourceProgress {
                    source: r.try_get("source")?,
                    objects: r.try_get("objects")?,
                    last_read: from_millis(r.try_get("last_read")?)?,
                })
            })
            .collect()
    }

    /// Every delivery of an incident's alerts, oldest first.
    pub async fn incident_deliveries(&self, incident_id: i64) -> Result<Vec<Delivery>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} {DELIVERY_JOIN} WHERE a.incident_id = $1 ORDER BY d.id"))
                .bind(incident_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(delivery_from_row).collect()
    }
}

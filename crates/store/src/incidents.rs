//! Incidents and the events in them.

use chrono::{DateTime, Duration, Utc};
use honeytrail_core::incident::{
    Activity, Incident, IncidentKind, IncidentLogEntry, IncidentState, Severity, TokenEvent,
};
use honeytrail_core::TokenState;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::registry::{from_millis, millis};
use crate::turns::{Draining, Waiting};
use crate::{Backend, Store, StoreError};
use tokio::sync::oneshot;

/// What storing one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// The same `eventID` was stored before (another source, or a re-read).
    Duplicate,
    /// A new incident was opened for it.
    Opened(i64),
    /// It joined an existing incident.
    Joined(i64),
    /// It fell in the expected-activity window of this CI run: stored on
    /// the run, no incident, no alert.
    Expected(i64),
}

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    pub token_id: Option<i64>,
    /// Only incidents not yet resolved or marked false positive.
    pub unresolved: bool,
    pub kind: Option<honeytrail_core::incident::IncidentKind>,
    /// Only incidents after this one in the list order (latest activity
    /// first): its `(last_seen in epoch ms, id)`, the cursor of the page before.
    pub before: Option<(i64, i64)>,
    /// At most this many.
    pub limit: Option<i64>,
}

const INCIDENT_COLUMNS: &str = "i.id, i.token_id, t.access_key_id, i.state, i.first_seen, i.last_seen, i.event_count, i.opened_at, i.updated_at, i.token_retired, i.kind, i.raised, \
    (SELECT l.value FROM token_labels l WHERE l.token_id = i.token_id AND l.name = 'severity') AS severity_label";
const EVENT_COLUMNS: &str = "event_id, token_id, event_time, event_source, event_name, aws_region, source_ip, user_agent, error_code, error_message, access_key_id, principal_arn, vpc_endpoint, vpc_endpoint_account, source, origin, raw";

fn state_of(raw: String) -> Result<IncidentState, StoreError> {
    raw.parse().map_err(|e: honeytrail_core::Invalid| StoreError::Corrupt { what: "incident state", detail: e.0 })
}

/// An incident's severity from its row: state, kind, the raised flag and
/// the token's `severity` label (in the column `label_column`).
pub(crate) fn severity_from_row(row: &AnyRow, label_column: &str) -> Result<Severity, StoreError> {
    let state = state_of(row.try_get("state")?)?;
    let kind = IncidentKind::parse(&row.try_get::<String, _>("kind")?).unwrap_or(IncidentKind::Use);
    let label: Option<String> = row.try_get(label_column)?;
    let severity = Severity::base(label.as_deref(), state, kind);
    Ok(if row.try_get::<i64, _>("raised")? != 0 { severity.raised() } else { severity })
}

fn incident_from_row(row: &AnyRow) -> Result<Incident, StoreError> {
    let state = state_of(row.try_get("state")?)?;
    let kind = IncidentKind::parse(&row.try_get::<String, _>("kind")?).unwrap_or(IncidentKind::Use);
    let severity = severity_from_row(row, "severity_label")?;
    Ok(Incident {
        id: row.try_get("id")?,
        token_id: row.try_get("token_id")?,
        access_key_id: row.try_get("access_key_id")?,
        state,
        first_seen: from_millis(row.try_get("first_seen")?)?,
        last_seen: from_millis(row.try_get("last_seen")?)?,
        event_count: row.try_get("event_count")?,
        opened_at: from_millis(row.try_get("opened_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        token_retired: row.try_get::<i64, _>("token_retired")? != 0,
        kind,
        severity,
    })
}

/// An event as stored: its row ID (the order among events of the same
/// time) and when honeytrail first saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenEvent {
    pub id: i64,
    pub event: TokenEvent,
    pub seen_at: DateTime<Utc>,
}

fn seen_event_from_row(row: &AnyRow) -> Result<SeenEvent, StoreError> {
    Ok(SeenEvent {
        id: row.try_get("id")?,
        event: event_from_row(row)?,
        seen_at: from_millis(row.try_get("seen_at")?)?,
    })
}

fn event_from_row(row: &AnyRow) -> Result<TokenEvent, StoreError> {
    Ok(TokenEvent {
        event_id: row.try_get("event_id")?,
        token_id: row.try_get("token_id")?,
        event_time: from_millis(row.try_get("event_time")?)?,
        event_source: row.try_get("event_source")?,
        event_name: row.try_get("event_name")?,
        aws_region: row.try_get("aws_region")?,
        source_ip: row.try_get("source_ip")?,
        user_agent: row.try_get("user_agent")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        access_key_id: row.try_get("access_key_id")?,
        principal_arn: row.try_get("principal_arn")?,
        vpc_endpoint: row.try_get("vpc_endpoint")?,
        vpc_endpoint_account: row.try_get("vpc_endpoint_account")?,
        source: row.try_get("source")?,
        origin: row.try_get("origin")?,
        raw: row.try_get("raw")?,
    })
}

/// One line of an incident's history; the arguments are its columns.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn log(
    tx: &mut Transaction<'static, Any>,
    incident_id: i64,
    at: DateTime<Utc>,
    actor: &str,
    kind: &str,
    from: Option<IncidentState>,
    to: Option<IncidentState>,
    note: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO incident_log (incident_id, at, actor, kind, from_state, to_state, note) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(incident_id)
        .bind(millis(at))
        .bind(actor)
        .bind(kind)
        .bind(from.map(|s| s.as_str()))
        .bind(to.map(|s| s.as_str()))
        .bind(note)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) async fn queue_alert(
    tx: &mut Transaction<'static, Any>,
    incident_id: i64,
    kind: &str,
    at: DateTime<Utc>,
    update_interval: Duration,
) -> Result<(), StoreError> {
    let mut not_before = at;
    // Alerts are rendered when delivered, from the incident as it is then, so
    // an update is already covered by any alert of the incident that has not
    // gone out yet: a burst of API calls makes one alert, not one per call.
    // And updates keep `update_interval` apart, so a long burst makes one
    // alert per interval.
    if kind == "incident.updated" {
        // One round trip: is an alert of it waiting, and when may the next go.
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE fanned_out = 0), MAX(not_before) FROM alerts WHERE incident_id = $1",
        )
        .bind(incident_id)
        .fetch_one(&mut **tx)
        .await?;
        let waiting: i64 = row.try_get(0)?;
        if waiting > 0 {
            return Ok(());
        }
        let last: Option<i64> = row.try_get(1)?;
        if let Some(last) = last {
            not_before = not_before.max(from_millis(last)? + update_interval);
        }
    }
    sqlx::query("INSERT INTO alerts (incident_id, kind, created_at, not_before) VALUES ($1, $2, $3, $4)")
        .bind(incident_id)
        .bind(kind)
        .bind(millis(at))
        .bind(millis(not_before))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The event as it can be stored: U+0000, which an intruder can write into
/// any CloudTrail field (JSON's `\u0000`) and PostgreSQL's text refuses,
/// made visible as `\u{0}` on both backends, so the same record is the same
/// event (and a duplicate when read again) wherever it is stored.
fn storable(event: &TokenEvent) -> TokenEvent {
    fn clean(s: &mut String) {
        if s.contains('\0') {
            *s = s.replace('\0', "\\u{0}");
        }
    }
    let mut e = event.clone();
    for s in [&mut e.event_id, &mut e.event_source, &mut e.event_name, &mut e.source, &mut e.origin, &mut e.raw] {
        clean(s);
    }
    for s in [
        &mut e.aws_region,
        &mut e.source_ip,
        &mut e.user_agent,
        &mut e.error_code,
        &mut e.error_message,
        &mut e.access_key_id,
        &mut e.principal_arn,
        &mut e.vpc_endpoint,
        &mut e.vpc_endpoint_account,
    ]
    .into_iter()
    .flatten()
    {
        clean(s);
    }
    e
}

/// Stores an event a CI run's window expected (see [`EventOutcome::Expected`]).
async fn insert_expected(tx: &mut Transaction<'static, Any>, event: &TokenEvent, run: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO expected_events (event_id, token_id, ci_run_id, event_time, seen_at, event_source, event_name, \
         aws_region, source_ip, user_agent, error_code, source, origin, raw) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&event.event_id)
    .bind(event.token_id)
    .bind(run)
    .bind(millis(event.event_time))
    .bind(millis(Utc::now()))
    .bind(&event.event_source)
    .bind(&event.event_name)
    .bind(&event.aws_region)
    .bind(&event.source_ip)
    .bind(&event.user_agent)
    .bind(&event.error_code)
    .bind(&event.source)
    .bind(&event.origin)
    .bind(&event.raw)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Stores one event: once per `eventID`, in the incident of its token
    /// whose time span it falls within `window` of, or in a new incident.
    /// Calls of one token queue while its transaction runs and are stored
    /// together in the next one (see `turns.rs`); a call that fails there
    /// is stored alone, so one bad call never costs another.
    pub async fn record_event(&self, event: &TokenEvent, window: Duration) -> Result<EventOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let event = storable(event);
        let key = event.token_id;
        if self.token_turns.queue(key, Waiting { event, window, reply }) {
            let store = self.clone();
            tokio::spawn(async move { store.drain_turns(key).await });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Refused("the task storing this key's calls stopped; retry".into())))
    }

    /// Stores what queues for `key` until nothing does.
    async fn drain_turns(&self, key: i64) {
        let mut draining = Draining { turns: &self.token_turns, key, done: false };
        loop {
            let batch = self.token_turns.next(key);
            if batch.is_empty() {
                draining.done = true;
                return;
            }
            if batch.len() > 1 {
                match self.record_together(&batch).await {
                    Ok(outcomes) => {
                        for (w, outcome) in batch.into_iter().zip(outcomes) {
                            w.reply.send(Ok(outcome)).ok(); // a caller that gave up is fine
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, calls = batch.len(), "storing a key's calls together failed; storing each alone")
                    }
                }
            }
            for w in batch {
                let outcome = self.record_alone(&w.event, w.window).await;
                w.reply.send(outcome).ok(); // likewise
            }
        }
    }

    async fn record_together(&self, batch: &[Waiting]) -> Result<Vec<EventOutcome>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for w in batch {
            outcomes.push(self.record_in(&mut tx, &w.event, w.window).await?);
        }
        self.commit(tx).await?;
        Ok(outcomes)
    }

    async fn record_alone(&self, event: &TokenEvent, window: Duration) -> Result<EventOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let outcome = self.record_in(&mut tx, event, window).await?;
        self.commit(tx).await?;
        Ok(outcome)
    }

    /// One event, in `tx`: what [`Store::record_event`] does.
    async fn record_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        event: &TokenEvent,
        window: Duration,
    ) -> Result<EventOutcome, StoreError> {
        let t = millis(event.event_time);
        // Whether the event is stored already, and the CI run whose window
        // expects it if one does, asked in the statement that (on
        // PostgreSQL) serialises incident decisions per token across
        // replicas: one round trip for all three. A window opens on the
        // second its key was handed out (CloudTrail's times are whole
        // seconds, cut down) and ends at the run's close or its bound.
        let expected_sql = "(SELECT r.id FROM ci_runs r WHERE r.token_id = $2 AND r.opened_at - 1000 <= $3 \
             AND $3 <= r.window_ends_at AND (r.closed_at IS NULL OR $3 <= r.closed_at) \
             AND (r.expect = 'any' OR (r.expect = 'runner' AND r.source_address = $4)))";
        let seen_sql = match self.backend {
            Backend::Postgres => format!(
                "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1) \
                 OR EXISTS (SELECT 1 FROM expected_events WHERE event_id = $1), {expected_sql} \
                 FROM tokens WHERE id = $2 FOR UPDATE"
            ),
            Backend::Sqlite => format!(
                "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = $1) \
                 OR EXISTS (SELECT 1 FROM expected_events WHERE event_id = $1), {expected_sql} WHERE $2 IS NOT NULL"
            ),
        };
        let seen = sqlx::query(&seen_sql)
            .bind(&event.event_id)
            .bind(event.token_id)
            .bind(t)
            .bind(&event.source_ip)
            .fetch_optional(&mut **tx)
            .await?;
        let (exists, expected) = match seen {
            Some(row) => (
                row.try_get::<bool, _>(0).or_else(|_| row.try_get::<i64, _>(0).map(|n| n != 0))?,
                row.try_get::<Option<i64>, _>(1)?,
            ),
            // No such token: the insert below names the problem.
            None => (false, None),
        };
        if exists {
            return Ok(EventOutcome::Duplicate);
        }
        if let Some(run) = expected {
            insert_expected(tx, event, run).await?;
            return Ok(EventOutcome::Expected(run));
        }
        let now = Utc::now();
        let kind = event.incident_kind();
        let candidate_sql = format!(
            "SELECT id, first_seen, last_seen FROM incidents WHERE token_id = $1 AND kind = $4 AND state IN ({}) \
             AND last_seen >= $2 AND first_seen <= $3 ORDER BY last_seen DESC LIMIT 1",
            IncidentState::accepting_events_sql()
        );
        let candidate = sqlx::query(&candidate_sql)
            .bind(event.token_id)
            .bind(t - window.num_milliseconds())
            .bind(t + window.num_milliseconds())
            .bind(kind.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        let outcome = match candidate {
            Some(row) => {
                let id: i64 = row.try_get(0)?;
                let first: i64 = row.try_get(1)?;
                let last: i64 = row.try_get(2)?;
                sqlx::query("UPDATE incidents SET first_seen = $1, last_seen = $2, event_count = event_count + 1, updated_at = $3 WHERE id = $4")
                    .bind(first.min(t))
                    .bind(last.max(t))
                    .bind(millis(now))
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
                EventOutcome::Joined(id)
            }
            None => {
                let state: String = sqlx::query("SELECT state FROM tokens WHERE id = $1")
                    .bind(event.token_id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("token #{}", event.token_id)))?
                    .try_get(0)?;
                let retired = state == TokenState::Retired.as_str();
                let row = sqlx::query(
                    "INSERT INTO incidents (token_id, state, first_seen, last_seen, event_count, opened_at, updated_at, token_retired, kind) \
                     VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8) RETURNING id",
                )
                .bind(event.token_id)
                .bind(IncidentState::Open.as_str())
                .bind(t)
                .bind(t)
                .bind(millis(now))
                .bind(millis(now))
                .bind(retired as i64)
                .bind(kind.as_str())
                .fetch_one(&mut **tx)
                .await?;
                let id: i64 = row.try_get(0)?;
                log(tx, id, now, "honeytrail", "opened", None, Some(IncidentState::Open), None).await?;
                EventOutcome::Opened(id)
            }
        };
        let (incident_id, alert_kind) = match outcome {
            EventOutcome::Opened(id) => (id, "incident.opened"),
            EventOutcome::Joined(id) => (id, "incident.updated"),
            EventOutcome::Duplicate | EventOutcome::Expected(_) => unreachable!("returned above"),
        };
        // The alert is written with the change that causes it: a crash after
        // commit still delivers it, a rollback never does.
        queue_alert(tx, incident_id, alert_kind, now, self.update_interval).await?;
        sqlx::query(
            "INSERT INTO events (event_id, token_id, incident_id, event_time, seen_at, event_source, event_name, aws_region, source_ip, \
             user_agent, error_code, error_message, access_key_id, principal_arn, source, origin, raw, vpc_endpoint, \
             vpc_endpoint_account) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(&event.event_id)
        .bind(event.token_id)
        .bind(incident_id)
        .bind(t)
        .bind(millis(now))
        .bind(&event.event_source)
        .bind(&event.event_name)
        .bind(&event.aws_region)
        .bind(&event.source_ip)
        .bind(&event.user_agent)
        .bind(&event.error_code)
        .bind(&event.error_message)
        .bind(&event.access_key_id)
        .bind(&event.principal_arn)
        .bind(&event.source)
        .bind(&event.origin)
        .bind(&event.raw)
        .bind(&event.vpc_endpoint)
        .bind(&event.vpc_endpoint_account)
        .execute(&mut **tx)
        .await?;
        Ok(outcome)
    }

    /// Records whether the incident's context raises its severity (see
    /// [`Incident::severity`]), as just found when its record was built.
    pub async fn note_context_raise(&self, id: i64, raises: bool) -> Result<(), StoreError> {
        let raised = i64::from(raises);
        sqlx::query("UPDATE incidents SET raised = $1 WHERE id = $2 AND raised <> $3")
            .bind(raised)
            .bind(id)
            .bind(raised)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn incident(&self, id: i64) -> Result<Incident, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i JOIN tokens t ON t.id = i.token_id WHERE i.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("incident #{id}")))?;
        incident_from_row(&row)
    }

    pub async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let mut sql =
            format!("SELECT {INCIDENT_COLUMNS} FROM incidents i JOIN tokens t ON t.id = i.token_id WHERE 1 = 1");
        let mut texts: Vec<(usize, String)> = Vec::new();
        let mut ints: Vec<(usize, i64)> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if let Some(s) = filter.state {
            let at = next();
            texts.push((at, s.as_str().to_string()));
            sql.push_str(&format!(" AND i.state = ${at}"));
        }
        if let Some(t) = filter.token_id {
            let at = next();
            ints.push((at, t));
            sql.push_str(&format!(" AND i.token_id = ${at}"));
        }
        if let Some(k) = filter.kind {
            let at = next();
            texts.push((at, k.as_str().to_string()));
            sql.push_str(&format!(" AND i.kind = ${at}"));
        }
        if let Some((last_seen, id)) = filter.before {
            let (a, b, c) = (next(), next(), next());
            ints.extend([(a, last_seen), (b, last_seen), (c, id)]);
            sql.push_str(&format!(" AND (i.last_seen < ${a} OR (i.last_seen = ${b} AND i.id < ${c}))"));
        }
        if filter.unresolved {
            sql.push_str(&format!(" AND i.state IN ({})", IncidentState::accepting_events_sql()));
        }
        sql.push_str(" ORDER BY i.last_seen DESC, i.id DESC");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {}", limit.max(0)));
        }
        // Bound in the order of their placeholders.
        enum Value {
            Text(String),
            Int(i64),
        }
        let mut values: Vec<(usize, Value)> = texts.into_iter().map(|(i, v)| (i, Value::Text(v))).collect();
        values.extend(ints.into_iter().map(|(i, v)| (i, Value::Int(v))));
        values.sort_by_key(|(i, _)| *i);
        let mut q = sqlx::query(&sql);
        for (_, v) in values {
            q = match v {
                Value::Text(t) => q.bind(t),
                Value::Int(i) => q.bind(i),
            };
        }
        q.fetch_all(&self.pool).await?.iter().map(incident_from_row).collect()
    }

    /// The incident's events in event-time order, each with when honeytrail
    /// first saw it (the detection delay is the difference).
    pub async fn incident_events(&self, id: i64) -> Result<Vec<(TokenEvent, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS}, seen_at FROM events WHERE incident_id = $1 ORDER BY event_time, id"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((event_from_row(r)?, from_millis(r.try_get("seen_at")?)?))).collect()
    }

    /// A page of the incident's events in event-time order: those after
    /// `after` (the event time in milliseconds and row ID of the last one
    /// of the page before), at most `limit`.
    pub async fn incident_events_page(
        &self,
        id: i64,
        after: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<SeenEvent>, StoreError> {
        let (t, row) = after.unwrap_or((i64::MIN, i64::MIN));
        let rows = sqlx::query(&format!(
            "SELECT id, {EVENT_COLUMNS}, seen_at FROM events WHERE incident_id = $1 \
             AND (event_time > $2 OR (event_time = $3 AND id > $4)) ORDER BY event_time, id LIMIT $5"
        ))
        .bind(id)
        .bind(t)
        .bind(t)
        .bind(row)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(seen_event_from_row).collect()
    }

    /// The incident's latest `limit` events, in event-time order.
    pub async fn incident_events_latest(&self, id: i64, limit: i64) -> Result<Vec<SeenEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, {EVENT_COLUMNS}, seen_at FROM events WHERE incident_id = $1 \
             ORDER BY event_time DESC, id DESC LIMIT $2"
        ))
        .bind(id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        let mut events = rows.iter().map(seen_event_from_row).collect::<Result<Vec<_>, _>>()?;
        events.reverse();
        Ok(events)
    }

    /// What was done in the incident, counted in the database: memory is
    /// bounded by the distinct values, not the events.
    pub async fn incident_activity(&self, id: i64) -> Result<Activity, StoreError> {
        use crate::EventColumn::*;
        let mut lists: [Vec<(String, u64)>; 5] = Default::default();
        for (list, column) in lists.iter_mut().zip([Api, SourceIp, UserAgent, Region, ErrorCode]) {
            *list = self.event_counts(id, column).await?;
        }
        let mut activity = Activity::from_counts(lists);
        let rows = sqlx::query(
            "SELECT source_ip, vpc_endpoint, vpc_endpoint_account, COUNT(*) AS n FROM events \
             WHERE incident_id = $1 AND vpc_endpoint IS NOT NULL GROUP BY source_ip, vpc_endpoint, vpc_endpoint_account",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut uses = Vec::with_capacity(rows.len());
        for r in &rows {
            let used = honeytrail_core::incident::EndpointUse {
                address: r.try_get("source_ip")?,
                endpoint: r.try_get("vpc_endpoint")?,
                account: r.try_get("vpc_endpoint_account")?,
            };
            uses.push((used, u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0)));
        }
        activity.endpoints = honeytrail_core::incident::endpoint_uses(uses);
        Ok(activity)
    }

    pub async fn incident_log(&self, id: i64) -> Result<Vec<IncidentLogEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, kind, from_state, to_state, note FROM incident_log WHERE incident_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IncidentLogEntry {
                    at: from_millis(r.try_get("at")?)?,
                    actor: r.try_get("actor")?,
                    kind: r.try_get("kind")?,
                    from_state: r.try_get::<Option<String>, _>("from_state")?.map(state_of).transpose()?,
                    to_state: r.try_get::<Option<String>, _>("to_state")?.map(state_of).transpose()?,
                    note: r.try_get("note")?,
                })
            })
            .collect()
    }

    /// Moves an incident to `next`, recording who did it and why.
    pub async fn change_incident_state(
        &self,
        id: i64,
        next: IncidentState,
        actor: &str,
        note: Option<&str>,
    ) -> Result<Incident, StoreError> {
        let mut tx = self.begin_write().await?;
        let current: String = sqlx::query("SELECT state FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("incident #{id}")))?
            .try_get(0)?;
        let current = state_of(current)?;
        current.check_move(next).map_err(|e| StoreError::Refused(e.0))?;
        let now = Utc::now();
        let done = sqlx::query("UPDATE incidents SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(next.as_str())
            .bind(millis(now))
            .bind(id)
            .bind(current.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Refused(format!("incident #{id} changed meanwhile; look again and retry")));
        }
        log(&mut tx, id, now, actor, "state", Some(current), Some(next), note).await?;
        queue_alert(&mut tx, id, "incident.state", now, self.update_interval).await?;
        self.commit(tx).await?;
        self.incident(id).await
    }

    pub async fn add_incident_note(&self, id: i64, actor: &str, note: &str) -> Result<(), StoreError> {
        self.incident(id).await?;
        let mut tx = self.begin_write().await?;
        log(&mut tx, id, Utc::now(), actor, "note", None, None, Some(note)).await?;
        sqlx::query("UPDATE incidents SET updated_at = $1 WHERE id = $2")
            .bind(millis(Utc::now()))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        Ok(())
    }
}

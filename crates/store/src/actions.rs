//! Response actions and their runs. Every change of a run writes the line
//! on its incident's timeline in the same transaction; a failure also
//! queues an `incident.action` alert there, so it cannot be lost between.
//!
//! The rate limit is checked in the transaction that marks a run as
//! started ([`Store::start_run`]): on SQLite the write lock, on PostgreSQL
//! an advisory lock serialise every start, so twenty incidents opening at
//! once across replicas cannot all pass.

use chrono::{DateTime, Utc};
use honeytrail_core::action::{ActionKind, ActionSettings, Held, RateLimit, RunState, Trigger};
use honeytrail_core::Secret;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::incidents::{log, queue_alert};
use crate::registry::{from_millis, millis};
use crate::{Backend, Store, StoreError};
pub use honeytrail_core::action::{Action, ActionRun};

/// A new action.
#[derive(Debug, Clone)]
pub struct NewAction {
    pub name: String,
    pub kind: ActionKind,
    pub trigger: Trigger,
    pub route: Option<String>,
    pub settings: ActionSettings,
    pub secret: Option<Secret>,
    pub created_by: String,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub incident_id: Option<i64>,
    pub states: Vec<RunState>,
    /// Only those due (`due_at` unset or not after this).
    pub due_by: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

/// A change of a run: the fields to set, the timeline line, whether to alert.
#[derive(Debug, Clone, Default)]
pub struct RunChange {
    pub reason: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub plan: Option<String>,
    pub before_state: Option<String>,
    pub output: Option<String>,
    pub decided_by: Option<String>,
    pub undone_by: Option<String>,
    pub finished: bool,
    /// The line on the incident's timeline, by `actor`.
    pub note: Option<String>,
    pub actor: String,
    /// Queue an `incident.action` alert with the change.
    pub alert: bool,
}

/// Whether a queued run may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Started,
    Held(Held),
    /// Another pass took it (or a responder cancelled it) meanwhile.
    Gone,
}

const RUN_COLUMNS: &str = "r.id, r.action_id, a.name AS action_name, a.kind AS action_kind, r.incident_id, r.state, \
     r.target, r.reason, r.due_at, r.plan, r.before_state, r.output, r.created_at, r.updated_at, r.started_at, \
     r.finished_at, r.decided_by, r.undone_by";

fn corrupt(what: &'static str) -> impl Fn(String) -> StoreError {
    move |detail| StoreError::Corrupt { what, detail }
}

fn opt_time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    row.try_get::<Option<i64>, _>(column)?.map(from_millis).transpose()
}

fn action_from_row(row: &AnyRow) -> Result<Action, StoreError> {
    Ok(Action {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: row
            .try_get::<String, _>("kind")?
            .parse()
            .map_err(|e: honeytrail_core::Invalid| corrupt("action kind")(e.0))?,
        trigger: serde_json::from_str(&row.try_get::<String, _>("trigger_json")?)
            .map_err(|e| corrupt("action trigger")(e.to_string()))?,
        route: row.try_get("route")?,
        settings: serde_json::from_str(&row.try_get::<String, _>("settings")?)
            .map_err(|e| corrupt("action settings")(e.to_string()))?,
        has_secret: row.try_get::<Option<String>, _>("secret_sealed")?.is_some(),
        created_at: from_millis(row.try_get("created_at")?)?,
        created_by: row.try_get("created_by")?,
    })
}

fn run_from_row(row: &AnyRow) -> Result<ActionRun, StoreError> {
    Ok(ActionRun {
        id: row.try_get("id")?,
        action_id: row.try_get("action_id")?,
        action: row.try_get("action_name")?,
        kind: row
            .try_get::<String, _>("action_kind")?
            .parse()
            .map_err(|e: honeytrail_core::Invalid| corrupt("action kind")(e.0))?,
        incident_id: row.try_get("incident_id")?,
        state: row
            .try_get::<String, _>("state")?
            .parse()
            .map_err(|e: honeytrail_core::Invalid| corrupt("run state")(e.0))?,
        target: row.try_get("target")?,
        reason: row.try_get("reason")?,
        due_at: opt_time(row, "due_at")?,
        plan: row.try_get("plan")?,
        before_state: row.try_get("before_state")?,
        output: row.try_get("output")?,
        created_at: from_millis(row.try_get("created_at")?)?,
        updated_at: from_millis(row.try_get("updated_at")?)?,
        started_at: opt_time(row, "started_at")?,
        finished_at: opt_time(row, "finished_at")?,
        decided_by: row.try_get("decided_by")?,
        undone_by: row.try_get("undone_by")?,
    })
}

/// An arbitrary constant naming the lock every run start takes on PostgreSQL.
const PG_START_LOCK: i64 = 0x6874_6163_7431;

impl Store {
    /// Adds an action; a webhook's URL and secret are sealed.
    pub async fn add_action(&self, a: &NewAction) -> Result<Action, StoreError> {
        let sealed = match &a.secret {
            Some(s) => Some(self.secrets.as_ref().ok_or(StoreError::NoSecretKey)?.seal(s)),
            None => None,
        };
        let mut tx = self.begin_write().await?;
        let exists =
            sqlx::query("SELECT 1 FROM actions WHERE name = $1").bind(&a.name).fetch_optional(&mut *tx).await?;
        if exists.is_some() {
            return Err(StoreError::Refused(format!(
                "an action named {:?} exists; remove it first or choose another name",
                a.name
            )));
        }
        sqlx::query(
            "INSERT INTO actions (name, kind, trigger_json, route, settings, secret_sealed, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&a.name)
        .bind(a.kind.as_str())
        .bind(serde_json::to_string(&a.trigger).expect("triggers serialise"))
        .bind(&a.route)
        .bind(serde_json::to_string(&a.settings).expect("settings serialise"))
        .bind(sealed)
        .bind(millis(Utc::now()))
        .bind(&a.created_by)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        self.action(&a.name).await
    }

    pub async fn action(&self, name: &str) -> Result<Action, StoreError> {
        let row = sqlx::query("SELECT * FROM actions WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("action {name:?}")))?;
        action_from_row(&row)
    }

    pub async fn actions(&self) -> Result<Vec<Action>, StoreError> {
        sqlx::query("SELECT * FROM actions ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(action_from_row)
            .collect()
    }

    /// The sealed part of an action (a webhook's URL and secret), opened.
    pub async fn action_secret(&self, id: i64) -> Result<Option<Secret>, StoreError> {
        let row = sqlx::query("SELECT secret_sealed FROM actions WHERE id = $1").bind(id).fetch_one(&self.pool).await?;
        match row.try_get::<Option<String>, _>(0)? {
            Some(sealed) => Ok(Some(self.secrets.as_ref().ok_or(StoreError::NoSecretKey)?.open(&sealed)?)),
            None => Ok(None),
        }
    }

    /// Changes an action's trigger (its mode, conditions).
    pub async fn set_action_trigger(&self, name: &str, trigger: &Trigger) -> Result<Action, StoreError> {
        let done = self
            .exec(
                sqlx::query("UPDATE actions SET trigger_json = $1 WHERE name = $2")
                    .bind(serde_json::to_string(trigger).expect("triggers serialise"))
                    .bind(name.to_string()),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("action {name:?}")));
        }
        self.action(name).await
    }

    /// Removes an action that never ran; one with runs keeps its history
    /// (turn it off with `--mode off` instead).
    pub async fn remove_action(&self, name: &str) -> Result<(), StoreError> {
        let action = self.action(name).await?;
        let mut tx = self.begin_write().await?;
        let runs = sqlx::query("SELECT 1 FROM action_runs WHERE action_id = $1 LIMIT 1")
            .bind(action.id)
            .fetch_optional(&mut *tx)
            .await?;
        if runs.is_some() {
            return Err(StoreError::Refused(format!(
                "action {name:?} has runs on incidents, which keep their history; turn it off instead: `honeytrail action set {name} --mode off`"
            )));
        }
        sqlx::query("DELETE FROM actions WHERE id = $1").bind(action.id).execute(&mut *tx).await?;
        self.commit(tx).await?;
        Ok(())
    }

    pub async fn action_run(&self, id: i64) -> Result<ActionRun, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM action_runs r JOIN actions a ON a.id = r.action_id WHERE r.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("action run #{id}")))?;
        run_from_row(&row)
    }

    pub async fn action_runs(&self, f: &RunFilter) -> Result<Vec<ActionRun>, StoreError> {
        let mut sql =
            format!("SELECT {RUN_COLUMNS} FROM action_runs r JOIN actions a ON a.id = r.action_id WHERE 1 = 1");
        if let Some(id) = f.incident_id {
            sql.push_str(&format!(" AND r.incident_id = {id}"));
        }
        if !f.states.is_empty() {
            // The states are our own words, never user text.
            let list: Vec<String> = f.states.iter().map(|s| format!("'{}'", s.as_str())).collect();
            sql.push_str(&format!(" AND r.state IN ({})", list.join(", ")));
        }
        if let Some(t) = f.due_by {
            sql.push_str(&format!(" AND (r.due_at IS NULL OR r.due_at <= {})", millis(t)));
        }
        sql.push_str(" ORDER BY r.id DESC");
        if let Some(l) = f.limit {
            sql.push_str(&format!(" LIMIT {}", l.max(0)));
        }
        sqlx::query(&sql).fetch_all(&self.pool).await?.iter().map(run_from_row).collect()
    }

    /// The action IDs that already have a run for the incident.
    pub async fn actions_with_runs(&self, incident_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("SELECT action_id FROM action_runs WHERE incident_id = $1")
            .bind(incident_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Records the first decision about an action for an incident, with
    /// its timeline line. `None` when another pass recorded one first.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_run(
        &self,
        action_id: i64,
        incident_id: i64,
        state: RunState,
        target: &str,
        due_at: Option<DateTime<Utc>>,
        change: &RunChange,
    ) -> Result<Option<i64>, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("SELECT 1 FROM action_runs WHERE action_id = $1 AND incident_id = $2")
            .bind(action_id)
            .bind(incident_id)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let row = sqlx::query(
            "INSERT INTO action_runs (action_id, incident_id, state, target, reason, due_at, plan, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(action_id)
        .bind(incident_id)
        .bind(state.as_str())
        .bind(target)
        .bind(&change.reason)
        .bind(due_at.map(millis))
        .bind(&change.plan)
        .bind(millis(now))
        .bind(millis(now))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get(0)?;
        self.note_run(&mut tx, incident_id, id, now, change).await?;
        self.commit(tx).await?;
        Ok(Some(id))
    }

    async fn note_run(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        incident_id: i64,
        run_id: i64,
        now: DateTime<Utc>,
        change: &RunChange,
    ) -> Result<(), StoreError> {
        if let Some(note) = &change.note {
            let line = format!("action run #{run_id}: {note}");
            log(tx, incident_id, now, &change.actor, "action", None, None, Some(&line)).await?;
            sqlx::query("UPDATE incidents SET updated_at = $1 WHERE id = $2")
                .bind(millis(now))
                .bind(incident_id)
                .execute(&mut **tx)
                .await?;
        }
        if change.alert {
            queue_alert(tx, incident_id, "incident.action", now, self.update_interval).await?;
        }
        Ok(())
    }

    /// Moves a run from one of `from` to `to` with `change`; `false` when
    /// it was no longer in one of `from` (another pass or a responder
    /// moved it first), and then nothing is written.
    pub async fn move_run(
        &self,
        id: i64,
        from: &[RunState],
        to: RunState,
        change: &RunChange,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT state, incident_id FROM action_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("action run #{id}")))?;
        let state: RunState =
            row.try_get::<String, _>(0)?.parse().map_err(|e: honeytrail_core::Invalid| corrupt("run state")(e.0))?;
        let incident_id: i64 = row.try_get(1)?;
        if !from.contains(&state) {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE action_runs SET state = $1, updated_at = $2, reason = COALESCE($3, reason), due_at = $4, \
             plan = COALESCE($5, plan), before_state = COALESCE($6, before_state), output = COALESCE($7, output), \
             decided_by = COALESCE($8, decided_by), undone_by = COALESCE($9, undone_by), \
             finished_at = CASE WHEN $10 = 1 THEN $11 ELSE finished_at END WHERE id = $12",
        )
        .bind(to.as_str())
        .bind(millis(now))
        .bind(&change.reason)
        .bind(change.due_at.map(millis))
        .bind(&change.plan)
        .bind(&change.before_state)
        .bind(&change.output)
        .bind(&change.decided_by)
        .bind(&change.undone_by)
        .bind(change.finished as i64)
        .bind(millis(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.note_run(&mut tx, incident_id, id, now, change).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// Starts a queued run if the rate limit admits it: the starts of the
    /// last hour and the targets in flight are read, and the run marked
    /// running, in one transaction under the start lock.
    pub async fn start_run(&self, id: i64, limit: RateLimit, change: &RunChange) -> Result<Start, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query(&format!("SELECT pg_advisory_xact_lock({PG_START_LOCK})")).execute(&mut *tx).await?;
        }
        let row = sqlx::query("SELECT state, target, incident_id FROM action_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("action run #{id}")))?;
        let state: String = row.try_get(0)?;
        let target: String = row.try_get(1)?;
        let incident_id: i64 = row.try_get(2)?;
        if state != RunState::Queued.as_str() {
            return Ok(Start::Gone);
        }
        let hour_ago = millis(now - chrono::Duration::hours(1));
        let started: Vec<DateTime<Utc>> = sqlx::query("SELECT started_at FROM action_runs WHERE started_at > $1")
            .bind(hour_ago)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| from_millis(r.try_get(0)?))
            .collect::<Result<_, _>>()?;
        let flying: Vec<String> = sqlx::query("SELECT target FROM action_runs WHERE state = 'running'")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let flying: Vec<&str> = flying.iter().map(String::as_str).collect();
        if let Err(held) = limit.admits(&started, &flying, &target, now) {
            return Ok(Start::Held(held));
        }
        sqlx::query(
            "UPDATE action_runs SET state = 'running', started_at = $1, updated_at = $2, due_at = NULL WHERE id = $3",
        )
        .bind(millis(now))
        .bind(millis(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.note_run(&mut tx, incident_id, id, now, change).await?;
        self.commit(tx).await?;
        Ok(Start::Started)
    }
}

//! CI runs and their expected-activity windows.
//!
//! **Invariants.** Opening a run spends a use of its enrolment secret, takes
//! a key out of the pool, labels it with the run, records where it went and
//! the run itself in one transaction: a refused run spends nothing. Only the
//! hash of a run's close token is kept. A window only ever shrinks: closing
//! sets its end once, never later than its bound, and nothing reopens it.
//! Whether an event falls in a window is decided by the event's own time,
//! in the transaction that stores it (see `Store::record_event`).

use chrono::{DateTime, Utc};
use honeytrail_core::ci::{CiRun, CiRunRequest, Expect, ExpectedUse, Provider};
use honeytrail_core::{bearer_hash, Token};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::fleet::EnrolmentSecret;
use crate::registry::{from_millis, insert_hop, insert_labels, insert_placements, millis};
use crate::{NewHop, Store, StoreError};

/// What a run took: the run, its key and the enrolment secret it spent.
#[derive(Debug, Clone)]
pub struct CiRunTaken {
    pub run: CiRun,
    pub token: Token,
    pub enrolment: EnrolmentSecret,
}

/// A run to open: its request (checked), where it came from and its window.
#[derive(Debug, Clone)]
pub struct NewCiRun<'a> {
    pub request: &'a CiRunRequest,
    pub source_address: &'a str,
    pub expect: Expect,
    pub window_ends_at: DateTime<Utc>,
    /// Only its hash is stored.
    pub close_token: &'a str,
}

const COLUMNS: &str =
    "r.id, r.token_id, t.access_key_id, r.enrollment_id, r.provider, r.repository, r.workflow, r.job, \
     r.commit_sha, r.run_id, r.run_attempt, r.url, r.source_address, r.expect, r.opened_at, r.window_ends_at, \
     r.closed_at, (SELECT COUNT(*) FROM expected_events e WHERE e.ci_run_id = r.id) AS expected_uses";
const FROM: &str = "ci_runs r JOIN tokens t ON t.id = r.token_id";

fn run_row(r: &AnyRow) -> Result<CiRun, StoreError> {
    let provider: String = r.try_get("provider")?;
    let expect: String = r.try_get("expect")?;
    Ok(CiRun {
        id: r.try_get("id")?,
        token_id: r.try_get("token_id")?,
        access_key_id: r.try_get("access_key_id")?,
        enrolment_id: r.try_get("enrollment_id")?,
        provider: Provider::parse(&provider).ok_or(StoreError::Corrupt { what: "CI provider", detail: provider })?,
        repository: r.try_get("repository")?,
        workflow: r.try_get("workflow")?,
        job: r.try_get("job")?,
        commit: r.try_get("commit_sha")?,
        run_id: r.try_get("run_id")?,
        run_attempt: r.try_get("run_attempt")?,
        url: r.try_get("url")?,
        source_address: r.try_get("source_address")?,
        expect: Expect::parse(&expect).ok_or(StoreError::Corrupt { what: "CI window expectation", detail: expect })?,
        opened_at: from_millis(r.try_get("opened_at")?)?,
        window_ends_at: from_millis(r.try_get("window_ends_at")?)?,
        closed_at: r.try_get::<Option<i64>, _>("closed_at")?.map(from_millis).transpose()?,
        expected_uses: r.try_get("expected_uses")?,
    })
}

impl Store {
    /// Opens a CI run: spends one use of `secret`, takes a key from the
    /// pool, labels it with the run (beside the secret's labels), records
    /// the run as its placement with the custody hop "delivered to the run",
    /// and the run with its window, all in one transaction. Refused,
    /// spending nothing, when the secret cannot be used or the pool is empty
    /// (`PoolEmpty`).
    pub async fn open_ci_run(&self, secret: &str, new: &NewCiRun<'_>) -> Result<CiRunTaken, StoreError> {
        new.request.check().map_err(|e| StoreError::Refused(e.0))?;
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        let Some(enrolment) = self.spend_enrolment(&mut tx, secret, now).await? else {
            tx.rollback().await?;
            return Err(self.why_unusable(secret).await?);
        };
        let Some(token_id) = crate::agents::take_pool_key(self.backend, &mut tx).await? else {
            tx.rollback().await?;
            return Err(StoreError::PoolEmpty);
        };
        let r = new.request;
        let labels = r.labels(&enrolment.labels);
        sqlx::query("DELETE FROM token_labels WHERE token_id = $1").bind(token_id).execute(&mut *tx).await?;
        let rows: Vec<(i64, &String, &String)> = labels.iter().map(|(k, v)| (token_id, k, v)).collect();
        insert_labels(self.backend, &mut tx, &rows).await?;
        let spot = r.spot(&enrolment.labels, new.source_address, enrolment.id);
        insert_placements(self.backend, &mut tx, &[(token_id, &spot)], now).await?;
        let row = sqlx::query(
            "INSERT INTO ci_runs (token_id, enrollment_id, provider, repository, workflow, job, commit_sha, run_id, \
             run_attempt, url, source_address, expect, opened_at, window_ends_at, close_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        )
        .bind(token_id)
        .bind(enrolment.id)
        .bind(r.provider().as_str())
        .bind(&r.repository)
        .bind(&r.workflow)
        .bind(&r.job)
        .bind(&r.commit)
        .bind(&r.run_id)
        .bind(&r.run_attempt)
        .bind(&r.url)
        .bind(new.source_address)
        .bind(new.expect.as_str())
        .bind(millis(now))
        .bind(millis(new.window_ends_at))
        .bind(bearer_hash(new.close_token))
        .fetch_one(&mut *tx)
        .await?;
        let run_id: i64 = row.try_get(0)?;
        insert_hop(
            &mut tx,
            token_id,
            &NewHop {
                description: format!(
                    "delivered to {} (CI run #{run_id}) at {} by enrolment #{}",
                    r.describe(),
                    new.source_address,
                    enrolment.id
                ),
                actor: Some(format!("enrolment #{}", enrolment.id)),
                automatic: true,
                at: now,
            },
        )
        .await?;
        self.commit(tx).await?;
        Ok(CiRunTaken { run: self.ci_run(run_id).await?, token: self.token(token_id).await?, enrolment })
    }

    /// Closes run `id`'s window now, if `close_token` is the run's. Closing
    /// again, or after the window's bound, changes nothing (the run as it
    /// is is returned). `None`: no such run, or not its token.
    pub async fn close_ci_run(&self, id: i64, close_token: &str) -> Result<Option<CiRun>, StoreError> {
        let now = millis(Utc::now());
        let known = sqlx::query("SELECT 1 FROM ci_runs WHERE id = $1 AND close_hash = $2")
            .bind(id)
            .bind(bearer_hash(close_token.trim()))
            .fetch_optional(&self.pool)
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        self.exec(
            sqlx::query(
                "UPDATE ci_runs SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL AND window_ends_at > $1",
            )
            .bind(now)
            .bind(id),
        )
        .await?;
        Ok(Some(self.ci_run(id).await?))
    }

    pub async fn ci_run(&self, id: i64) -> Result<CiRun, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM {FROM} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("CI run #{id}")))?;
        run_row(&row)
    }

    /// The run that took key `token_id`, if one did.
    pub async fn ci_run_of(&self, token_id: i64) -> Result<Option<CiRun>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM {FROM} WHERE r.token_id = $1"))
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// Runs, newest first: at most `limit`, older than run `before` if given.
    pub async fn ci_runs(&self, before: Option<i64>, limit: i64) -> Result<Vec<CiRun>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM {FROM} WHERE r.id < $1 ORDER BY r.id DESC LIMIT $2"))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_row).collect()
    }

    /// The uses run `id`'s window expected, oldest first (at most `limit`).
    pub async fn expected_uses(&self, id: i64, limit: i64) -> Result<Vec<ExpectedUse>, StoreError> {
        Ok(self.expected_uses_of(&[id], limit).await?.remove(&id).unwrap_or_default())
    }

    /// The uses each of the runs `ids` expected, oldest first (at most
    /// `limit` a run), in one query: what a page of runs shows.
    pub async fn expected_uses_of(
        &self,
        ids: &[i64],
        limit: i64,
    ) -> Result<std::collections::HashMap<i64, Vec<ExpectedUse>>, StoreError> {
        let mut out = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT ci_run_id, event_id, event_time, seen_at, event_source, event_name, aws_region, source_ip, \
             user_agent, error_code, source FROM (SELECT e.*, ROW_NUMBER() OVER (PARTITION BY ci_run_id \
             ORDER BY event_time, id) AS n FROM expected_events e WHERE ci_run_id IN ({})) ranked \
             WHERE n <= $1 ORDER BY ci_run_id, event_time, id",
            list.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(limit);
        for id in ids {
            query = query.bind(*id);
        }
        for r in query.fetch_all(&self.pool).await? {
            let run: i64 = r.try_get("ci_run_id")?;
            out.entry(run).or_insert_with(Vec::new).push(expected_use(&r)?);
        }
        Ok(out)
    }

    /// The incidents on each of `token_ids`, by token, in one query.
    pub async fn incident_ids_of(
        &self,
        token_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, Vec<i64>>, StoreError> {
        let mut out = std::collections::HashMap::new();
        if token_ids.is_empty() {
            return Ok(out);
        }
        let list: Vec<String> = (0..token_ids.len()).map(|i| format!("${}", i + 1)).collect();
        let sql = format!("SELECT token_id, id FROM incidents WHERE token_id IN ({}) ORDER BY id", list.join(", "));
        let mut query = sqlx::query(&sql);
        for id in token_ids {
            query = query.bind(*id);
        }
        for r in query.fetch_all(&self.pool).await? {
            out.entry(r.try_get::<i64, _>("token_id")?).or_insert_with(Vec::new).push(r.try_get("id")?);
        }
        Ok(out)
    }
}

fn expected_use(r: &AnyRow) -> Result<ExpectedUse, StoreError> {
    Ok(ExpectedUse {
        event_id: r.try_get("event_id")?,
        event_time: from_millis(r.try_get("event_time")?)?,
        seen_at: from_millis(r.try_get("seen_at")?)?,
        event_source: r.try_get("event_source")?,
        event_name: r.try_get("event_name")?,
        aws_region: r.try_get("aws_region")?,
        source_ip: r.try_get("source_ip")?,
        user_agent: r.try_get("user_agent")?,
        error_code: r.try_get("error_code")?,
        source: r.try_get("source")?,
    })
}

impl Store {
    /// Keys of runs whose window ended before `before` and that are not yet
    /// retired here: what `ci.keep_days` retires.
    pub async fn ci_runs_to_retire(&self, before: DateTime<Utc>, limit: i64) -> Result<Vec<CiRun>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {FROM} WHERE r.retired_at IS NULL \
             AND COALESCE(r.closed_at, r.window_ends_at) < $1 ORDER BY r.id LIMIT $2"
        ))
        .bind(millis(before))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_row).collect()
    }

    /// Notes that run `id`'s key was retired (by the keep-days job or by hand).
    pub async fn note_ci_run_retired(&self, id: i64) -> Result<(), StoreError> {
        self.exec(
            sqlx::query("UPDATE ci_runs SET retired_at = $1 WHERE id = $2 AND retired_at IS NULL")
                .bind(millis(Utc::now()))
                .bind(id),
        )
        .await?;
        Ok(())
    }
}

//! "Was this you?": one-time questions to placement owners, and what channels
//! remember per incident (a Jira issue key).
//!
//! A question's link carries a random token; the store keeps its SHA-256 to
//! look it up and a sealed copy so a retried email carries the same link.
//! An answer is recorded on the incident (and alerted) but never changes its
//! state: a responder decides.

use chrono::{DateTime, Duration, Utc};
use honeytrail_core::{bearer_hash, new_bearer, Secret};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::incidents::{log, queue_alert};
use crate::registry::{from_millis, millis};
use crate::{Store, StoreError};

/// A question to a placement owner, without its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerQuestion {
    pub id: i64,
    pub incident_id: i64,
    pub owner: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    /// `yes` (it was me) or `no`.
    pub answer: Option<String>,
    pub comment: Option<String>,
}

const QUESTION_COLUMNS: &str = "id, incident_id, owner, created_at, expires_at, answered_at, answer, comment";

fn question_from_row(r: &AnyRow) -> Result<OwnerQuestion, StoreError> {
    Ok(OwnerQuestion {
        id: r.try_get("id")?,
        incident_id: r.try_get("incident_id")?,
        owner: r.try_get("owner")?,
        created_at: from_millis(r.try_get("created_at")?)?,
        expires_at: from_millis(r.try_get("expires_at")?)?,
        answered_at: r.try_get::<Option<i64>, _>("answered_at")?.map(from_millis).transpose()?,
        answer: r.try_get("answer")?,
        comment: r.try_get("comment")?,
    })
}

impl Store {
    /// The token of the question to `owner` about an incident, created on
    /// first use; valid for `ttl`.
    pub async fn owner_question_token(
        &self,
        incident_id: i64,
        owner: &str,
        ttl: Duration,
    ) -> Result<Secret, StoreError> {
        let secrets = self.secrets.as_ref().ok_or(StoreError::NoSecretKey)?;
        let existing = sqlx::query("SELECT token_sealed FROM owner_questions WHERE incident_id = $1 AND owner = $2")
            .bind(incident_id)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = existing {
            return Ok(secrets.open(&row.try_get::<String, _>(0)?)?);
        }
        let token = new_bearer("htq_");
        let now = Utc::now();
        self.exec(
            sqlx::query(
                "INSERT INTO owner_questions (incident_id, owner, token_hash, token_sealed, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (incident_id, owner) DO NOTHING",
            )
            .bind(incident_id)
            .bind(owner)
            .bind(bearer_hash(token.expose()))
            .bind(secrets.seal(&token))
            .bind(millis(now))
            .bind(millis(now + ttl)),
        )
        .await?;
        // Another dispatcher may have won the race: hand out whichever is stored.
        let row = sqlx::query("SELECT token_sealed FROM owner_questions WHERE incident_id = $1 AND owner = $2")
            .bind(incident_id)
            .bind(owner)
            .fetch_one(&self.pool)
            .await?;
        Ok(secrets.open(&row.try_get::<String, _>(0)?)?)
    }

    /// The question a link's token stands for.
    pub async fn owner_question(&self, token: &str) -> Result<OwnerQuestion, StoreError> {
        let row = sqlx::query(&format!("SELECT {QUESTION_COLUMNS} FROM owner_questions WHERE token_hash = $1"))
            .bind(bearer_hash(token))
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound("this question (the link is wrong or was cut short)".into()))?;
        question_from_row(&row)
    }

    pub async fn owner_questions(&self, incident_id: i64) -> Result<Vec<OwnerQuestion>, StoreError> {
        let rows =
            sqlx::query(&format!("SELECT {QUESTION_COLUMNS} FROM owner_questions WHERE incident_id = $1 ORDER BY id"))
                .bind(incident_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(question_from_row).collect()
    }

    /// Records the owner's answer, once, on the incident's history, and
    /// alerts it. The incident's state does not change.
    pub async fn answer_owner_question(
        &self,
        token: &str,
        it_was_me: bool,
        comment: Option<&str>,
        from: &str,
    ) -> Result<OwnerQuestion, StoreError> {
        let q = self.owner_question(token).await?;
        let now = Utc::now();
        if q.answered_at.is_some() {
            return Err(StoreError::Refused("this question was already answered; the link works once".into()));
        }
        if q.expires_at < now {
            return Err(StoreError::Refused(
                "this link has expired; please reply to the security team directly".into(),
            ));
        }
        let answer = if it_was_me { "yes" } else { "no" };
        let comment =
            comment.map(str::trim).filter(|c| !c.is_empty()).map(|c| c.chars().take(2000).collect::<String>());
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE owner_questions SET answered_at = $1, answer = $2, comment = $3, answered_from = $4 WHERE id = $5 AND answered_at IS NULL",
        )
        .bind(millis(now))
        .bind(answer)
        .bind(&comment)
        .bind(from)
        .bind(q.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Refused("this question was already answered; the link works once".into()));
        }
        let said = if it_was_me { "yes, it was me" } else { "no, it was not me" };
        let note = match &comment {
            Some(c) => format!("{said}: {c}"),
            None => said.to_string(),
        };
        log(&mut tx, q.incident_id, now, &q.owner, "owner-answer", None, None, Some(&note)).await?;
        sqlx::query("UPDATE incidents SET updated_at = $1 WHERE id = $2")
            .bind(millis(now))
            .bind(q.incident_id)
            .execute(&mut *tx)
            .await?;
        queue_alert(&mut tx, q.incident_id, "incident.answer", now, self.update_interval).await?;
        self.commit(tx).await?;
        self.owner_question(token).await
    }

    /// What a channel created for an incident (a Jira issue key).
    pub async fn channel_ref(&self, channel_id: i64, incident_id: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT reference FROM channel_refs WHERE channel_id = $1 AND incident_id = $2")
            .bind(channel_id)
            .bind(incident_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub async fn set_channel_ref(&self, channel_id: i64, incident_id: i64, reference: &str) -> Result<(), StoreError> {
        self.exec(
            sqlx::query(
                "INSERT INTO channel_refs (channel_id, incident_id, reference, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (channel_id, incident_id) DO UPDATE SET reference = excluded.reference",
            )
            .bind(channel_id)
            .bind(incident_id)
            .bind(reference)
            .bind(millis(Utc::now())),
        )
        .await?;
        Ok(())
    }
}

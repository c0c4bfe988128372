//! Answers from outside the user list: a placement owner's "was this you?"
//! (a link sent by email, no account needed) and a Slack member's click on
//! an Approve button (Slack's request signature, a listed approver).
//!
//! Both are reachable by anyone who can reach the server, so every refusal
//! here says only what the person at the other end may know.

use chrono::{DateTime, Utc};
use honeytrail_alert::channels::slack;
use honeytrail_core::encoding::printable;
use honeytrail_store::{AuditRecord, StoreError};
use serde::Deserialize;

use super::actions::ActionRun;
use crate::{Actor, OpError, OpErrorKind, OpResult, Ops};

/// The question a "was this you?" link shows: where the key was placed and
/// what it was used for, nothing else.
#[derive(Debug, Clone)]
pub enum OwnerQuestion {
    Open {
        /// The placement sentence ("on Maria's MacBook Pro … in ~/.aws/credentials").
        placement: String,
        first_seen: DateTime<Utc>,
        apis: Vec<String>,
        source_ips: Vec<String>,
    },
    /// Answered before: the link works once.
    Answered,
}

/// A placement owner's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct OwnerAnswer {
    /// `yes` (it was me) or `no`.
    pub answer: String,
    #[serde(default)]
    pub comment: String,
}

/// What Slack sent with a click: its signature headers and the body.
#[derive(Debug, Clone, Copy)]
pub struct SlackClick<'a> {
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// Why a "was this you?" link cannot be answered, in the owner's words.
fn question_refused(e: StoreError) -> OpError {
    match e {
        StoreError::NotFound(_) => OpError::new(
            OpErrorKind::NotFound,
            "link_not_valid",
            "This link is not valid. It may have been cut short by your mail program; open it from the email again.",
        ),
        StoreError::Refused(why) => OpError::conflict("cannot_answer", why),
        other => other.into(),
    }
}

impl Ops {
    /// The question behind a "was this you?" link. Reading it records
    /// nothing, so a mail scanner opening the link answers nothing.
    pub async fn owner_question(&self, token: &str) -> OpResult<OwnerQuestion> {
        let q = self.store.owner_question(token).await.map_err(question_refused)?;
        if q.answered_at.is_some() {
            return Ok(OwnerQuestion::Answered);
        }
        if q.expires_at < Utc::now() {
            return Err(OpError::conflict(
                "cannot_answer",
                "This link has expired; please reply to the security team directly.",
            ));
        }
        let record = self.record(q.incident_id, "question").await?;
        Ok(OwnerQuestion::Open {
            placement: record.placement,
            first_seen: record.incident.first_seen,
            apis: record.activity.apis,
            source_ips: record.activity.source_ips,
        })
    }

    /// Records a placement owner's answer, once, on the incident's history,
    /// alerts it, and audits it (as the owner, from `from`).
    pub async fn answer_owner_question(&self, token: &str, a: &OwnerAnswer, from: &str) -> OpResult<bool> {
        let it_was_me = match a.answer.as_str() {
            "yes" => true,
            "no" => false,
            _ => return Err(OpError::invalid("Answer yes or no.")),
        };
        let q = self.store.owner_question(token).await.map_err(question_refused)?;
        self.store
            .audited(AuditRecord {
                actor: q.owner.clone(),
                action: "incident.owner-answer".into(),
                target: format!("incident #{}", q.incident_id),
                detail: Some(if it_was_me { "yes, it was me" } else { "no, it was not me" }.into()),
                from: Some(format!("a \"was this you?\" link from {from}")),
            })
            .answer_owner_question(token, it_was_me, Some(&a.comment), from)
            .await
            .map_err(question_refused)?;
        self.alert_queued();
        Ok(it_was_me)
    }

    /// A click on a Slack message's Approve button. Slack's request
    /// signature (`serve.slack_signing_secret`) is checked before the body
    /// is read; the clicking member must be listed in
    /// `actions.slack_approvers` and approves as that honeytrail user, whose
    /// role must allow it.
    pub async fn approve_from_slack(&self, click: SlackClick<'_>) -> OpResult<ActionRun> {
        let Some(secret) = self.config.serve.slack_signing_secret.as_deref().filter(|v| !v.is_empty()) else {
            return Err(OpError::new(
                OpErrorKind::Unauthenticated,
                "unauthenticated",
                "Slack approvals are off here: set serve.slack_signing_secret (HONEYTRAIL_SLACK_SIGNING_SECRET)",
            ));
        };
        slack::verify_request(secret, click.timestamp, click.signature, click.body, Utc::now().timestamp())
            .map_err(|why| OpError::new(OpErrorKind::Unauthenticated, "unauthenticated", why.to_string()))?;
        let approval = slack::approve_click(click.body)
            .map_err(|why| OpError::new(OpErrorKind::Invalid, "not_an_approval", why))?;
        let member = printable(&approval.user_id).into_owned();
        let refused = |why: String| {
            tracing::warn!(slack_member = %member, run = approval.run, "{why}");
            OpError::forbidden(why)
        };
        let Some(name) = self.config.actions.slack_approvers.get(&approval.user_id) else {
            return Err(refused(format!(
                "Slack member {member} may not approve: add them to actions.slack_approvers as a honeytrail responder"
            )));
        };
        let user = match self.store.user(name).await {
            Ok(u) if !u.disabled => u,
            Ok(_) => {
                return Err(refused(format!("Slack member {member} approves as {name}, whose account is disabled")))
            }
            Err(StoreError::NotFound(_)) => {
                return Err(refused(format!("Slack member {member} approves as {name}, who is not a honeytrail user")))
            }
            Err(e) => return Err(e.into()),
        };
        let actor = Actor { name: user.name.clone(), role: user.role, from: format!("Slack member {member}") };
        let run = self.approve_run(&actor, approval.run).await?;
        tracing::info!(run = run.id, by = %user.name, slack_member = %member, "run approved from Slack");
        Ok(run)
    }
}

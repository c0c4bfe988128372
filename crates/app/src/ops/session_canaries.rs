//! Session canaries: hosts whose template places short-lived STS session
//! credentials of the honey role instead of a key.
//!
//! Each host's canary is one token for its whole life, known by its
//! session's assumed-role ARN (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/NAME`),
//! which every session started with the same role and name shares: the
//! `ASIA…` key ID changes at every refresh, the ARN never does, and it is
//! what CloudTrail records as `userIdentity.arn` for every call of the
//! session. The session is named like an instance profile's: the EC2
//! instance the host proved to be, else a made-up instance ID.
//!
//! The honey role itself is a token too, known by the role's ARN: a session
//! of it under another name (someone who may assume the role made one) is
//! matched through its session issuer.
//!
//! A heartbeat less than `fleet.session_refresh_seconds` before the session
//! expires opens a `refresh` command; each time it is sent it carries a
//! fresh session (a lost reply costs only an unused session, which expires
//! by itself and can do nothing: the role denies everything). The agent
//! writes it in place of the old one and confirms with the new digests,
//! which later heartbeats are checked against, as for keys.

use chrono::{DateTime, Utc};
use honeytrail_aws::{CanaryAccount, SessionCredentials};
use honeytrail_core::fleet::{Agent, AgentState, CommandKind, DeliveredKey, DeliveredSession, Ec2Instance, HostFacts};
use honeytrail_core::template::Credential;
use honeytrail_core::{NewToken, Spot, Token};
use honeytrail_store::{AgentCommand, NewHop};

use crate::{Actor, OpError, OpResult, Ops};

/// A session canary's role and session name, read back from its ARN.
pub(crate) struct SessionIdentity {
    pub account_id: String,
    pub role: String,
    pub session_name: String,
}

impl SessionIdentity {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/NAME`, or `None`.
    pub fn parse(arn: &str) -> Option<SessionIdentity> {
        let mut parts = arn.splitn(6, ':');
        let (_, _, service, _, account, resource) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let (role, session_name) = resource.strip_prefix("assumed-role/")?.split_once('/')?;
        (service == "sts" && !account.is_empty() && !role.is_empty() && !session_name.is_empty()).then(|| {
            SessionIdentity {
                account_id: account.to_string(),
                role: role.to_string(),
                session_name: session_name.to_string(),
            }
        })
    }

    fn role_arn(&self, partition: &str) -> String {
        format!("arn:{partition}:iam::{}:role/{}", self.account_id, self.role)
    }
}

/// A made-up EC2 instance ID (`i-` and 17 hex digits), as an instance
/// profile names its sessions.
fn instance_like_name() -> String {
    let n: u128 = rand::random();
    format!("i-{:017x}", n & ((1u128 << 68) - 1))
}

/// Whether `name` can name an STS session: 2 to 64 of `[A-Za-z0-9+=,.@-_]`.
fn session_name_ok(name: &str) -> bool {
    (2..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_".contains(&b))
}

impl Ops {
    /// Starts the session canary of an enrolling host and registers its
    /// token: known by the session's assumed-role ARN, with the session
    /// start as its first custody hop.
    pub(crate) async fn new_session_canary(
        &self,
        host: &HostFacts,
        ec2: Option<&Ec2Instance>,
        actor: &Actor,
    ) -> OpResult<(Token, SessionCredentials)> {
        let account = self.mint_targets(1).await?.remove(0);
        let role_arn = account.ensure_session_role(&self.config.fleet.session_role).await?;
        let account_id = account.account_id().await?;
        self.watch_session_role(&role_arn, &account_id, actor).await?;
        let partition = honeytrail_aws::bootstrap::partition(&account.region());
        // The instance's own ID when it proved one, as its instance profile
        // would name the session; never a name an earlier canary had.
        let mut name = ec2.map(|e| e.instance_id.clone()).filter(|n| session_name_ok(n));
        if let Some(n) = &name {
            let arn = format!("arn:{partition}:sts::{account_id}:assumed-role/{}/{n}", self.config.fleet.session_role);
            if self.store.arn_in_use(&arn).await? {
                name = None;
            }
        }
        let name = name.unwrap_or_else(instance_like_name);
        let session = self.start_session(&account, &role_arn, &name).await?;
        let new = NewToken {
            kind: Some(honeytrail_core::TokenKind::AwsSession),
            access_key_id: session.access_key_id.clone(),
            iam_user_arn: Some(session.assumed_role_arn.clone()),
            account_id: Some(account_id.clone()),
            memo: format!("session canary of host {}", host.hostname),
            ..NewToken::default()
        };
        let hop = NewHop {
            description: format!(
                "session {name} of role {} started in account {account_id} for host {}",
                self.config.fleet.session_role, host.hostname
            ),
            actor: Some(actor.name.clone()),
            automatic: true,
            at: Utc::now(),
        };
        let token = self
            .audited(actor, "token.session", &session.access_key_id, Some(&session.assumed_role_arn))
            .insert_token(&new, &[], &[hop])
            .await?;
        Ok((token, session))
    }

    /// Registers the honey role itself, once: a token known by the role's
    /// ARN, so a session of it that honeytrail did not hand out (made by
    /// someone else who may assume the role) is matched through its session
    /// issuer, while the sessions hosts hold match their own canaries first.
    async fn watch_session_role(&self, role_arn: &str, account_id: &str, actor: &Actor) -> OpResult<()> {
        if self.store.arn_in_use(role_arn).await? {
            return Ok(());
        }
        let new = NewToken {
            kind: Some(honeytrail_core::TokenKind::AwsSession),
            access_key_id: role_arn.to_string(),
            iam_user_arn: Some(role_arn.to_string()),
            account_id: Some(account_id.to_string()),
            memo: "the honey role of session canaries".into(),
            ..NewToken::default()
        };
        let spot = Spot {
            host: format!("AWS account {account_id}"),
            path: role_arn.to_string(),
            asset: Some("the honey role of session canaries".into()),
            format: Some("session-role".into()),
            placed_by: Some(actor.name.clone()),
            notes: Some(
                "honeytrail hands out this role's sessions only as session canaries, each known by its own name; a \
                 session of another name is someone who may assume the role and made one"
                    .into(),
            ),
            aws_account: Some(account_id.to_string()),
            ..Spot::default()
        };
        let hop = NewHop {
            description: format!("honey role {role_arn} watched for sessions honeytrail did not hand out"),
            actor: Some(actor.name.clone()),
            automatic: true,
            at: Utc::now(),
        };
        match self.audited(actor, "token.session_role", role_arn, None).insert_token(&new, &[spot], &[hop]).await {
            Ok(_) => Ok(()),
            // Another enrolment registered it at the same moment.
            Err(_) if self.store.arn_in_use(role_arn).await? => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn start_session(&self, account: &CanaryAccount, role_arn: &str, name: &str) -> OpResult<SessionCredentials> {
        let seconds = i32::try_from(self.config.fleet.session_seconds).unwrap_or(honeytrail_aws::MAX_SESSION_SECONDS);
        Ok(account.start_session(role_arn, name, seconds).await?)
    }

    /// A fresh session of the session canary `token`, for an open refresh
    /// command: the same role and session name (so the same ARN), recorded
    /// as the command's session.
    pub(crate) async fn refreshed_session(
        &self,
        token: &Token,
        command: &AgentCommand,
    ) -> OpResult<SessionCredentials> {
        let identity = token.iam_user_arn.as_deref().and_then(SessionIdentity::parse).ok_or_else(|| {
            OpError::conflict(
                "not_a_session",
                format!("token #{} is not a session canary (no assumed-role ARN): it cannot be refreshed", token.id),
            )
        })?;
        let account = self.account_holding(Some(&identity.account_id)).await?;
        let partition = honeytrail_aws::bootstrap::partition(&account.region());
        let session = self.start_session(&account, &identity.role_arn(partition), &identity.session_name).await?;
        if session.assumed_role_arn != *token.iam_user_arn.as_deref().unwrap_or_default() {
            return Err(OpError::conflict(
                "session_mismatch",
                format!(
                    "the refreshed session is {}, not the canary's {}: not handed out",
                    session.assumed_role_arn,
                    token.iam_user_arn.as_deref().unwrap_or_default()
                ),
            ));
        }
        self.store.session_sent(command.id, session.expiration).await?;
        Ok(session)
    }

    /// What a host writes of session credentials.
    pub(crate) fn delivered_session(&self, session: &SessionCredentials, profile: Option<&str>) -> DeliveredKey {
        DeliveredKey {
            access_key_id: session.access_key_id.clone(),
            secret_access_key: session.secret_access_key.clone(),
            profile: profile.unwrap_or(&self.config.render.profile).to_string(),
            region: self.config.render.region.clone(),
            session: Some(DeliveredSession {
                token: session.session_token.clone(),
                expiration: session.expiration,
                role_id: Some(session.assumed_role_id.clone()),
                role_arn: Some(session.assumed_role_arn.clone()),
                issued_at: Some(session.issued_at),
            }),
        }
    }

    /// Whether a heartbeat of `agent` should open a refresh now (see
    /// [`refresh_wanted`]).
    pub(crate) fn session_refresh_wanted(&self, agent: &Agent, now: DateTime<Utc>) -> bool {
        let before = chrono::Duration::seconds(i64::try_from(self.config.fleet.session_refresh_seconds).unwrap_or(0));
        refresh_wanted(agent, now, before)
    }
}

/// Whether a heartbeat of `agent` should open a refresh: an active session
/// canary with nothing open, less than `before` from its session's expiry,
/// whose last refresh did not fail within the last quarter of `before` (a
/// host that cannot write its bait, which its heartbeats report as
/// tampering, is not sent a fresh session at every heartbeat).
pub(crate) fn refresh_wanted(agent: &Agent, now: DateTime<Utc>, before: chrono::Duration) -> bool {
    if agent.template.credential != Credential::Session
        || agent.state != AgentState::Active
        || agent.commands.iter().any(AgentCommand::open)
    {
        return false;
    }
    if agent.session_expires_at.is_some_and(|e| e - now > before) {
        return false;
    }
    let last = agent.commands.iter().filter(|c| c.kind == CommandKind::Refresh).max_by_key(|c| c.id);
    !last.is_some_and(|c| c.state == "failed" && c.done_at.is_some_and(|d| now - d < before / 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_arns_are_read_back() {
        let id = SessionIdentity::parse("arn:aws:sts::123456789012:assumed-role/app-instance-role/i-0a1b2c3d4e5f67890")
            .unwrap();
        assert_eq!((id.account_id.as_str(), id.role.as_str()), ("123456789012", "app-instance-role"));
        assert_eq!(id.session_name, "i-0a1b2c3d4e5f67890");
        assert_eq!(id.role_arn("aws"), "arn:aws:iam::123456789012:role/app-instance-role");
        for bad in [
            "arn:aws:iam::123456789012:user/svc",
            "arn:aws:sts::123456789012:assumed-role/app-instance-role",
            "arn:aws:sts:::assumed-role/r/s",
            "arn:aws:sts::1:federated-user/x",
        ] {
            assert!(SessionIdentity::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_refresh_is_opened_near_expiry_once_and_not_after_every_failure() {
        let now = Utc::now();
        let hours = chrono::Duration::hours;
        let template = honeytrail_core::template::PlacementTemplate {
            credential: Credential::Session,
            ..honeytrail_core::template::shipped()[0].clone()
        };
        let agent: Agent = serde_json::from_value(serde_json::json!({
            "id": 1, "enrollment_id": 1, "token_id": 7, "access_key_id": "ASIAQYLPMN5HPLZXQ3NB",
            "host": {"hostname": "web-1"}, "source_address": null, "ec2": null, "template": template,
            "state": "active", "detail": null, "enrolled_at": now, "confirmed_at": now, "last_seen_at": now,
            "stale_since": null, "watch": null, "evidence_dropped": 0, "session_expires_at": now + hours(5),
            "files": [], "commands": [], "bait_state": "ok"
        }))
        .unwrap();
        let before = hours(2);
        assert!(!refresh_wanted(&agent, now, before), "5 h left");
        let near = Agent { session_expires_at: Some(now + hours(1)), ..agent.clone() };
        assert!(refresh_wanted(&near, now, before), "1 h left");
        let expired = Agent { session_expires_at: Some(now - hours(1)), ..agent.clone() };
        assert!(refresh_wanted(&expired, now, before));
        let command = |id: i64, state: &str, done: Option<DateTime<Utc>>| AgentCommand {
            id,
            agent_id: 1,
            kind: CommandKind::Refresh,
            state: state.into(),
            new_token_id: None,
            requested_by: "fleet".into(),
            requested_at: now - hours(1),
            done_at: done,
            detail: None,
            session_expires_at: None,
        };
        let open = Agent { commands: vec![command(1, "sent", None)], ..near.clone() };
        assert!(!refresh_wanted(&open, now, before), "one open at a time");
        let failed =
            Agent { commands: vec![command(1, "failed", Some(now - chrono::Duration::minutes(10)))], ..near.clone() };
        assert!(!refresh_wanted(&failed, now, before), "not again 10 min after a failure");
        let later = Agent { commands: vec![command(1, "failed", Some(now - hours(1)))], ..near.clone() };
        assert!(refresh_wanted(&later, now, before), "again after a quarter of the window");
        let done =
            Agent { commands: vec![command(1, "done", Some(now - chrono::Duration::minutes(10)))], ..near.clone() };
        assert!(refresh_wanted(&done, now, before));
        let key = Agent { template: honeytrail_core::template::shipped()[0].clone(), ..near.clone() };
        assert!(!refresh_wanted(&key, now, before), "keys are not refreshed");
        let removed = Agent { state: AgentState::Removed, ..near };
        assert!(!refresh_wanted(&removed, now, before));
    }

    #[test]
    fn made_up_names_look_like_instance_ids() {
        let a = instance_like_name();
        assert!(a.starts_with("i-") && a.len() == 19 && a[2..].bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, instance_like_name());
        assert!(session_name_ok(&a) && !session_name_ok("a") && !session_name_ok("i-0 1"));
    }
}

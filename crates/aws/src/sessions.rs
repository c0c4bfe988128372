//! Session canaries: the honey role whose short-lived sessions are bait.
//!
//! The role is trusted by its own account and holds only a deny-all inline
//! policy: a session of it can call nothing, and every call it makes is in
//! CloudTrail under `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, which
//! is what the session canary's token is known by. A role of that name that
//! does not deny everything is somebody's real role, and is never used.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::bootstrap::{partition, Status};
use crate::{denies_everything, AwsError, CanaryAccount};

/// The honey role's inline policy's name.
const POLICY_NAME: &str = "default";

/// The longest session a role may hand out (12 hours).
pub const MAX_SESSION_SECONDS: i32 = 43_200;

/// Session credentials of the honey role, as `sts:AssumeRole` gave them.
#[derive(Clone)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: DateTime<Utc>,
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`: what CloudTrail
    /// records as `userIdentity.arn` for every call of the session.
    pub assumed_role_arn: String,
    /// `AROA…:SESSION`.
    pub assumed_role_id: String,
    /// When the session was started (as this process saw the answer).
    pub issued_at: DateTime<Utc>,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// The trust policy of honey and decoy roles: this account may assume them,
/// nobody else.
pub(crate) fn own_account_trust(partition: &str, account: &str) -> serde_json::Value {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:{partition}:iam::{account}:root")},
        "Action": "sts:AssumeRole",
    }]})
}

/// Whether a trust policy lets only `account` assume the role: every
/// principal it allows is that account's root or a principal in it.
fn trusts_only(trust: &str, account: &str) -> bool {
    let Some(statements) = crate::statements(trust) else { return false };
    let ours = |p: &serde_json::Value| p.as_str().is_some_and(|a| a == account || a.split(':').nth(4) == Some(account));
    statements.iter().filter(|s| s["Effect"] == "Allow").all(|s| match &s["Principal"] {
        serde_json::Value::Object(m) if m.len() == 1 => match m.get("AWS") {
            Some(serde_json::Value::Array(all)) => !all.is_empty() && all.iter().all(ours),
            Some(one) => ours(one),
            None => false,
        },
        _ => false,
    })
}

impl CanaryAccount {
    /// Makes sure the honey role `name` exists, and returns its ARN: made
    /// when missing (trusted by this account, deny-all inline policy,
    /// sessions of up to 12 hours); an existing role of that name is used
    /// only when its inline policy denies everything.
    pub async fn ensure_session_role(&self, name: &str) -> Result<String, AwsError> {
        honeytrail_core::decoy::DecoyKind::IamRole
            .check_name(name)
            .map_err(|e| AwsError::Other { op: "session role", message: e.0 })?;
        match self.session_role_check(name).await? {
            (Status::Ok, arn) => Ok(arn),
            (Status::Missing, _) => self.make_session_role(name).await.map_err(|e| match e {
                AwsError::AccessDenied { .. } => AwsError::Other {
                    op: "session role",
                    message: format!(
                        "the session role {name} does not exist and this identity may not make it ({e}): run \
                         `honeytrail aws bootstrap` with the bootstrap identity, which makes it"
                    ),
                },
                other => other,
            }),
            (Status::Misconfigured(why) | Status::Unreadable(why), _) => Err(AwsError::Other {
                op: "session role",
                message: format!("role {name}: {why}; its sessions are not handed out as bait"),
            }),
        }
    }

    /// Whether the honey role `name` is there and only a honey role: its
    /// inline policy denies everything and nothing but this account may
    /// assume it.
    pub(crate) async fn session_role_status(&self, name: &str) -> Result<Status, AwsError> {
        Ok(self.session_role_check(name).await?.0)
    }

    /// [`CanaryAccount::session_role_status`], with the role's ARN as the
    /// same read found it (empty when missing).
    async fn session_role_check(&self, name: &str) -> Result<(Status, String), AwsError> {
        let role = match self.iam.get_role().role_name(name).send().await {
            Ok(out) => out.role,
            Err(e) => {
                return match AwsError::from_sdk("iam:GetRole", &self.endpoint, e) {
                    AwsError::NoSuchEntity { .. } => Ok((Status::Missing, String::new())),
                    other => Err(other),
                }
            }
        };
        let arn = role.as_ref().map(|r| r.arn().to_string()).unwrap_or_default();
        let policy = self.iam.get_role_policy().role_name(name).policy_name(POLICY_NAME).send().await;
        let denies = match policy {
            Ok(p) => denies_everything(&honeytrail_core::encoding::percent_decode(&p.policy_document, false)),
            Err(e) => match AwsError::from_sdk("iam:GetRolePolicy", &self.endpoint, e) {
                AwsError::NoSuchEntity { .. } => false,
                other => return Err(other),
            },
        };
        if !denies {
            return Ok((
                Status::Misconfigured(format!(
                    "role {name} exists and its inline policy {POLICY_NAME:?} does not deny everything: it is not a \
                 honey role, and its sessions would be real access; set fleet.session_role to another name"
                )),
                arn,
            ));
        }
        let trust = role
            .as_ref()
            .and_then(|r| r.assume_role_policy_document())
            .map(|d| honeytrail_core::encoding::percent_decode(d, false))
            .unwrap_or_default();
        let account = self.account_id().await?;
        if !trusts_only(&trust, &account) {
            return Ok((
                Status::Misconfigured(format!(
                "role {name} may be assumed by someone outside account {account}: its trust policy lets in more than \
                 this account, so it is not a honey role; set fleet.session_role to another name"
                )),
                arn,
            ));
        }
        Ok((Status::Ok, arn))
    }

    pub(crate) async fn make_session_role(&self, name: &str) -> Result<String, AwsError> {
        let account = self.account_id().await?;
        let trust = own_account_trust(partition(&self.region()), &account);
        let out = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .max_session_duration(MAX_SESSION_SECONDS)
            .send()
            .await
            .map_err(self.fail("iam:CreateRole"))?;
        let denied = self
            .iam
            .put_role_policy()
            .role_name(name)
            .policy_name(POLICY_NAME)
            .policy_document(crate::DENY_ALL_POLICY)
            .send()
            .await;
        if let Err(e) = denied {
            // A role without its deny is not left behind.
            self.iam.delete_role().role_name(name).send().await.ok();
            return Err(AwsError::from_sdk("iam:PutRolePolicy", &self.endpoint, e));
        }
        Ok(out.role().map(|r| r.arn().to_string()).unwrap_or_default())
    }

    /// Starts a session of the honey role named `session_name`, lasting
    /// `seconds` (900 to 43 200).
    pub async fn start_session(
        &self,
        role_arn: &str,
        session_name: &str,
        seconds: i32,
    ) -> Result<SessionCredentials, AwsError> {
        let out = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name)
            .duration_seconds(seconds.clamp(900, MAX_SESSION_SECONDS))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("sts:AssumeRole", &self.endpoint, e))?;
        let missing =
            |what: &str| AwsError::Other { op: "sts:AssumeRole", message: format!("the answer has no {what}") };
        let c = out.credentials().ok_or_else(|| missing("credentials"))?;
        let expiration =
            DateTime::<Utc>::from_timestamp(c.expiration().secs(), 0).ok_or_else(|| missing("expiration"))?;
        let user = out.assumed_role_user().ok_or_else(|| missing("role user"))?;
        let (assumed_role_arn, assumed_role_id) = (user.arn().to_string(), user.assumed_role_id().to_string());
        Ok(SessionCredentials {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: c.secret_access_key().to_string(),
            session_token: c.session_token().to_string(),
            expiration,
            assumed_role_arn,
            assumed_role_id,
            issued_at: Utc::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_role_this_account_alone_may_assume_is_a_honey_role() {
        let trust = |principal: serde_json::Value| {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal,
                "Action": "sts:AssumeRole"}]})
            .to_string()
        };
        let ours = "123456789012";
        assert!(trusts_only(&trust(json!({"AWS": "arn:aws:iam::123456789012:root"})), ours));
        assert!(trusts_only(&trust(json!({"AWS": ["arn:aws:iam::123456789012:user/minter", ours]})), ours));
        for other in [
            json!({"AWS": "arn:aws:iam::999999999999:root"}),
            json!({"AWS": ["arn:aws:iam::123456789012:root", "arn:aws:iam::999999999999:root"]}),
            json!({"AWS": "*"}),
            json!({"Service": "ec2.amazonaws.com"}),
            json!({"Federated": "cognito-identity.amazonaws.com"}),
            json!({"AWS": []}),
        ] {
            assert!(!trusts_only(&trust(other.clone()), ours), "{other}");
        }
        assert!(!trusts_only("not json", ours));
    }
}

//! Session canaries: the honey role whose short-lived sessions are bait.
//!
//! The role is trusted by its own account and holds only a deny-all inline
//! policy: a session of it can call nothing, and every call it makes is in
//! CloudTrail under `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, which
//! is what the session canary's token is known by. A role of that name that
//! does not deny everything is somebody's real role, and is never used.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::bootstrap::partition;
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

impl CanaryAccount {
    /// Makes sure the honey role `name` exists, and returns its ARN: made
    /// when missing (trusted by this account, deny-all inline policy,
    /// sessions of up to 12 hours); an existing role of that name is used
    /// only when its inline policy denies everything.
    pub async fn ensure_session_role(&self, name: &str) -> Result<String, AwsError> {
        honeytrail_core::decoy::DecoyKind::IamRole
            .check_name(name)
            .map_err(|e| AwsError::Other { op: "session role", message: e.0 })?;
        match self.iam.get_role().role_name(name).send().await {
            Ok(out) => {
                let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
                let policy = self.iam.get_role_policy().role_name(name).policy_name(POLICY_NAME).send().await;
                let denies = match policy {
                    Ok(p) => denies_everything(&honeytrail_core::encoding::percent_decode(&p.policy_document, false)),
                    Err(e) => match AwsError::from_sdk("iam:GetRolePolicy", &self.endpoint, e) {
                        AwsError::NoSuchEntity { .. } => false,
                        other => return Err(other),
                    },
                };
                if !denies {
                    return Err(AwsError::Other {
                        op: "session role",
                        message: format!(
                            "role {name} exists and its inline policy {POLICY_NAME:?} does not deny everything: it is \
                             not a honey role, and its sessions would be real access; set fleet.session_role to \
                             another name"
                        ),
                    });
                }
                Ok(arn)
            }
            Err(e) => match AwsError::from_sdk("iam:GetRole", &self.endpoint, e) {
                AwsError::NoSuchEntity { .. } => self.make_session_role(name).await,
                other => Err(other),
            },
        }
    }

    async fn make_session_role(&self, name: &str) -> Result<String, AwsError> {
        let account = self.account_id().await?;
        let trust = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:{}:iam::{account}:root", partition(&self.region()))},
            "Action": "sts:AssumeRole",
        }]});
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
        let assumed_role_arn =
            out.assumed_role_user().map(|u| u.arn().to_string()).ok_or_else(|| missing("role user"))?;
        Ok(SessionCredentials {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: c.secret_access_key().to_string(),
            session_token: c.session_token().to_string(),
            expiration,
            assumed_role_arn,
        })
    }
}

//! Response actions in the AWS account that owns a target: isolate an EC2
//! instance, deactivate a user's access keys, attach a deny-all policy —
//! and the reads that say what each would change and whether undo still
//! finds the state it left.
//!
//! Every call here runs with the credentials of a role assumed in the
//! target's account ([`Responder::assume`]), never with the canary
//! account's: honeytrail's own identity may only call `sts:AssumeRole`.

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_ec2::types::Filter;

use crate::{sdk_config, AwsError, AwsSettings};

/// AWS's managed policy that denies every action.
pub const DENY_ALL_POLICY_ARN: &str = "arn:aws:iam::aws:policy/AWSDenyAll";

/// A failed response call, worded for the responder: which call, in which
/// account through which role, and what AWS said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ResponseError {
    /// What went wrong, in a word: `denied`, `gone`, `throttled`,
    /// `unreachable`, `credentials`, `failed`.
    pub kind: &'static str,
    pub message: String,
}

impl ResponseError {
    fn from_aws(e: AwsError, role_arn: &str) -> ResponseError {
        let (kind, message) = match e {
            AwsError::AccessDenied { op, message } => (
                "denied",
                format!("AWS denied {op} to the role {role_arn}: {message}. Give that role the permission (docs/actions.md lists what each kind needs)"),
            ),
            AwsError::Throttled { op, message } => ("throttled", format!("AWS throttled {op} even after retries ({message})")),
            AwsError::Unreachable { op, endpoint, detail } => ("unreachable", format!("cannot reach {endpoint} for {op}: {detail}")),
            AwsError::NoCredentials { op } => (
                "credentials",
                format!("no AWS credentials to assume a role for {op}: give honeytrail an identity allowed sts:AssumeRole on {role_arn}"),
            ),
            AwsError::BadCredentials { op, message } => ("credentials", format!("AWS rejected the credentials for {op} ({message})")),
            AwsError::NoSuchEntity { op, message } => ("gone", format!("{op}: {message}")),
            other => ("failed", other.to_string()),
        };
        ResponseError { kind, message }
    }

    fn gone(message: String) -> ResponseError {
        ResponseError { kind: "gone", message }
    }
}

/// An IAM principal a deny policy is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(String),
    Role(String),
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::User(n) => write!(f, "IAM user {n}"),
            Principal::Role(n) => write!(f, "IAM role {n}"),
        }
    }
}

/// An instance's network state as DescribeInstances reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceGroups {
    /// `running`, `stopped`, `terminated`, …
    pub state: String,
    pub vpc_id: Option<String>,
    /// Security group IDs, in AWS's order.
    pub groups: Vec<String>,
}

/// An access key of a user and whether it is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKey {
    pub access_key_id: String,
    pub active: bool,
}

/// Clients in one account, with the credentials of a role assumed there.
#[derive(Debug, Clone)]
pub struct Responder {
    ec2: aws_sdk_ec2::Client,
    iam: aws_sdk_iam::Client,
    endpoint: String,
    role_arn: String,
    /// The account the assumed role is in (from STS, else the ARN).
    pub account: String,
}

impl Responder {
    /// Assumes `role_arn` (session `session`, cut to AWS's 64 characters)
    /// with honeytrail's own credentials, and makes clients with the
    /// temporary credentials AWS returned. `region` is where EC2 calls go.
    pub async fn assume(
        settings: &AwsSettings,
        role_arn: &str,
        session: &str,
        region: Option<&str>,
    ) -> Result<Responder, ResponseError> {
        let base = sdk_config(settings).await;
        let endpoint = settings.endpoint.clone().unwrap_or_else(|| "AWS (default endpoints)".into());
        let sts = aws_sdk_sts::Client::new(&base);
        let session: String =
            session.chars().filter(|c| c.is_ascii_alphanumeric() || "+=,.@-".contains(*c)).take(64).collect();
        let out = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(if session.len() >= 2 { session } else { "honeytrail-response".into() })
            .duration_seconds(900)
            .send()
            .await
            .map_err(|e| ResponseError::from_aws(AwsError::from_sdk("sts:AssumeRole", &endpoint, e), role_arn))?;
        let creds = out.credentials().ok_or_else(|| ResponseError {
            kind: "failed",
            message: format!("sts:AssumeRole of {role_arn} returned no credentials"),
        })?;
        let provider = SharedCredentialsProvider::new(Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            None,
            "honeytrail-assumed-role",
        ));
        let mut builder = base.to_builder();
        builder.set_credentials_provider(Some(provider));
        if let Some(region) = region.filter(|r| !r.is_empty()) {
            builder.set_region(Some(aws_config::Region::new(region.to_string())));
        }
        let config = builder.build();
        let account = out
            .assumed_role_user()
            .and_then(|u| crate::account_of_arn(u.arn()))
            .or_else(|| crate::account_of_arn(role_arn))
            .unwrap_or_default();
        Ok(Responder {
            ec2: aws_sdk_ec2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            endpoint,
            role_arn: role_arn.to_string(),
            account,
        })
    }

    fn fail<E>(
        &self,
        op: &'static str,
    ) -> impl FnOnce(aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::http::Response>) -> ResponseError + '_
    where
        E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| {
            let gone = matches!(
                aws_sdk_iam::error::ProvideErrorMetadata::code(&e),
                Some("InvalidInstanceID.NotFound" | "InvalidInstanceID.Malformed" | "NoSuchEntity")
            );
            let mut err = ResponseError::from_aws(AwsError::from_sdk(op, &self.endpoint, e), &self.role_arn);
            if gone {
                err.kind = "gone";
            }
            err
        }
    }

    /// The instance's state and security groups; `None` when AWS knows no
    /// such instance (or it was terminated: a terminated instance has no
    /// network to restore).
    pub async fn instance(&self, instance_id: &str) -> Result<Option<InstanceGroups>, ResponseError> {
        let out = match self
            .ec2
            .describe_instances()
            .filters(Filter::builder().name("instance-id").values(instance_id).build())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let err = self.fail("ec2:DescribeInstances")(e);
                return if err.kind == "gone" { Ok(None) } else { Err(err) };
            }
        };
        let instance =
            out.reservations().iter().flat_map(|r| r.instances()).find(|i| i.instance_id() == Some(instance_id));
        let Some(instance) = instance else { return Ok(None) };
        let state = instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default();
        if state == "terminated" || state == "shutting-down" {
            return Ok(None);
        }
        Ok(Some(InstanceGroups {
            state,
            vpc_id: instance.vpc_id().map(str::to_string),
            groups: instance.security_groups().iter().filter_map(|g| g.group_id().map(str::to_string)).collect(),
        }))
    }

    /// Whether a security group exists (and in which VPC).
    pub async fn group_vpc(&self, group_id: &str) -> Result<Option<Option<String>>, ResponseError> {
        match self.ec2.describe_security_groups().group_ids(group_id).send().await {
            Ok(out) => Ok(out.security_groups().first().map(|g| g.vpc_id().map(str::to_string))),
            Err(e) => {
                let err = self.fail("ec2:DescribeSecurityGroups")(e);
                if err.message.contains("InvalidGroup.NotFound") || err.message.contains("InvalidGroupId") {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Replaces the instance's security groups.
    pub async fn set_groups(&self, instance_id: &str, groups: &[String]) -> Result<(), ResponseError> {
        self.ec2
            .modify_instance_attribute()
            .instance_id(instance_id)
            .set_groups(Some(groups.to_vec()))
            .send()
            .await
            .map_err(self.fail("ec2:ModifyInstanceAttribute"))?;
        Ok(())
    }

    /// The user's access keys.
    pub async fn keys(&self, user: &str) -> Result<Vec<UserKey>, ResponseError> {
        let out = self.iam.list_access_keys().user_name(user).send().await.map_err(self.fail("iam:ListAccessKeys"))?;
        Ok(out
            .access_key_metadata()
            .iter()
            .filter_map(|k| {
                Some(UserKey {
                    access_key_id: k.access_key_id()?.to_string(),
                    active: k.status().map(|s| s.as_str() == "Active").unwrap_or(false),
                })
            })
            .collect())
    }

    /// Turns one of the user's keys on or off.
    pub async fn set_key(&self, user: &str, access_key_id: &str, active: bool) -> Result<(), ResponseError> {
        use aws_sdk_iam::types::StatusType;
        self.iam
            .update_access_key()
            .user_name(user)
            .access_key_id(access_key_id)
            .status(if active { StatusType::Active } else { StatusType::Inactive })
            .send()
            .await
            .map_err(self.fail("iam:UpdateAccessKey"))?;
        Ok(())
    }

    /// The managed policies attached to the principal (ARNs); an error
    /// of kind `gone` when it does not exist.
    pub async fn attached(&self, who: &Principal) -> Result<Vec<String>, ResponseError> {
        let arns: Vec<String> = match who {
            Principal::User(n) => self
                .iam
                .list_attached_user_policies()
                .user_name(n)
                .send()
                .await
                .map_err(self.fail("iam:ListAttachedUserPolicies"))?
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string))
                .collect(),
            Principal::Role(n) => self
                .iam
                .list_attached_role_policies()
                .role_name(n)
                .send()
                .await
                .map_err(self.fail("iam:ListAttachedRolePolicies"))?
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string))
                .collect(),
        };
        Ok(arns)
    }

    /// Attaches (or, `attach` false, detaches) a managed policy.
    pub async fn set_policy(&self, who: &Principal, policy_arn: &str, attach: bool) -> Result<(), ResponseError> {
        match (who, attach) {
            (Principal::User(n), true) => {
                self.iam
                    .attach_user_policy()
                    .user_name(n)
                    .policy_arn(policy_arn)
                    .send()
                    .await
                    .map_err(self.fail("iam:AttachUserPolicy"))?;
            }
            (Principal::User(n), false) => {
                self.iam
                    .detach_user_policy()
                    .user_name(n)
                    .policy_arn(policy_arn)
                    .send()
                    .await
                    .map_err(self.fail("iam:DetachUserPolicy"))?;
            }
            (Principal::Role(n), true) => {
                self.iam
                    .attach_role_policy()
                    .role_name(n)
                    .policy_arn(policy_arn)
                    .send()
                    .await
                    .map_err(self.fail("iam:AttachRolePolicy"))?;
            }
            (Principal::Role(n), false) => {
                self.iam
                    .detach_role_policy()
                    .role_name(n)
                    .policy_arn(policy_arn)
                    .send()
                    .await
                    .map_err(self.fail("iam:DetachRolePolicy"))?;
            }
        }
        Ok(())
    }
}

/// A message for an instance that is not there.
pub fn instance_gone(instance_id: &str, account: &str) -> ResponseError {
    ResponseError::gone(format!("instance {instance_id} is gone from account {account} (terminated or never there)"))
}

//! honeytrail's AWS adapter: the canary account, reached through the
//! official AWS SDK for Rust.
//!
//! Minting creates an IAM user with a plausible name at path `/`, guards it
//! with an explicit Deny `*` on `*` (inline, or through a group), then creates
//! an access key. Retiring deletes the key and, once it holds no other key,
//! the user.
//!
//! **Invariant:** a mint that fails part-way removes what it created, so a
//! key either exists in AWS (and is handed back to be stored) or not at all.
//! If even the clean-up fails, the error names what is left behind.
//!
//! Works against real AWS with the standard credential chain, or any endpoint
//! (moto's server in tests) through [`AwsSettings::endpoint`].

pub mod bootstrap;
mod decoys;
mod error;
pub mod lambda;
pub mod policies;
pub mod response;
mod sessions;
pub mod sources;

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use chrono::{DateTime, Utc};
use honeytrail_core::Secret;

pub use error::AwsError;
pub use sessions::{SessionCredentials, MAX_SESSION_SECONDS};

/// The policy document of the deny-all guard.
pub const DENY_ALL_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;

/// Whether a policy document denies every action on every resource and
/// allows nothing.
pub fn denies_everything(document: &str) -> bool {
    let Some(statements) = statements(document) else { return false };
    let is_star = |v: &serde_json::Value| v == "*" || v.as_array().is_some_and(|a| a.iter().any(|x| x == "*"));
    let allows = statements.iter().any(|s| s["Effect"] == "Allow");
    let denies_all = statements.iter().any(|s| {
        s["Effect"] == "Deny" && is_star(&s["Action"]) && is_star(&s["Resource"]) && s.get("Condition").is_none()
    });
    denies_all && !allows
}

/// The statements of a policy document (one statement or a list of them);
/// `None` for anything that is not a JSON policy.
pub(crate) fn statements(document: &str) -> Option<Vec<serde_json::Value>> {
    let doc = serde_json::from_str::<serde_json::Value>(document).ok()?;
    match &doc["Statement"] {
        serde_json::Value::Array(s) => Some(s.clone()),
        s @ serde_json::Value::Object(_) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// How to reach the canary account.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// Endpoint override (`http://127.0.0.1:5000` for moto); `None` for AWS.
    pub endpoint: Option<String>,
    /// Region for signing and regional services; IAM itself is global.
    pub region: Option<String>,
    /// A named profile from `~/.aws/config`; `None` for the default chain.
    pub profile: Option<String>,
    /// Explicit credentials, bypassing the default chain (tests, automation).
    pub static_credentials: Option<(String, Secret)>,
    /// A role to assume with the credentials above (another account of the
    /// pool); its temporary credentials are renewed before they expire.
    pub role_arn: Option<String>,
}

/// Who honeytrail is in the canary account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

/// How the deny-all guard is attached to a honey user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyGuard {
    /// An inline user policy with this name.
    Inline { policy_name: String },
    /// Membership of this group, which carries the deny-all policy; the
    /// group is created on first use.
    Group { group_name: String, policy_name: String },
}

/// What to mint.
#[derive(Debug, Clone)]
pub struct MintSpec {
    pub user_name: String,
    pub guard: DenyGuard,
    /// The managed policy every honey user gets as its permissions boundary
    /// (deny-all; made by bootstrap, or here when allowed). The mint policy
    /// only lets honeytrail create users that carry it.
    pub boundary: String,
}

/// A freshly created access key.
#[derive(Debug, Clone)]
pub struct MintedKey {
    pub user_name: String,
    pub user_arn: String,
    pub account_id: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub created_at: DateTime<Utc>,
}

/// The SDK configuration for `settings`: region, timeouts, profile,
/// endpoint override and credentials.
pub(crate) async fn sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone().unwrap_or_else(|| "us-east-1".into())))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(90))
                .build(),
        );
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &settings.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some((id, secret)) = &settings.static_credentials {
        loader = loader.credentials_provider(Credentials::new(id, secret.expose(), None, None, "honeytrail-static"));
    }
    let config = loader.load().await;
    match &settings.role_arn {
        None => config,
        Some(role) => {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name("honeytrail")
                .configure(&config)
                .build()
                .await;
            config
                .into_builder()
                .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(provider))
                .build()
        }
    }
}

/// A connection to the canary account.
#[derive(Debug, Clone)]
pub struct CanaryAccount {
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    cloudtrail: aws_sdk_cloudtrail::Client,
    events: aws_sdk_eventbridge::Client,
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
    secrets: aws_sdk_secretsmanager::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    /// The loaded configuration, for clients of other regions.
    sdk: aws_config::SdkConfig,
    endpoint: String,
    /// The account, asked of STS once.
    account: std::sync::Arc<tokio::sync::OnceCell<String>>,
    /// Boundaries already found deny-all in this process.
    boundaries_checked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// The account number in an ARN such as `arn:aws:iam::123456789012:user/x`.
pub fn account_of_arn(arn: &str) -> Option<String> {
    arn.split(':').nth(4).filter(|a| !a.is_empty()).map(str::to_string)
}

impl CanaryAccount {
    pub async fn connect(settings: &AwsSettings) -> CanaryAccount {
        let config = sdk_config(settings).await;
        // moto and other S3-compatible endpoints need path-style addressing.
        let s3_config =
            aws_sdk_s3::config::Builder::from(&config).force_path_style(settings.endpoint.is_some()).build();
        CanaryAccount {
            iam: aws_sdk_iam::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(&config),
            cloudtrail: aws_sdk_cloudtrail::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sdk: config,
            endpoint: settings.endpoint.clone().unwrap_or_else(|| "AWS (default endpoints)".into()),
            account: Default::default(),
            boundaries_checked: Default::default(),
        }
    }

    /// The region this connection signs for (the home region).
    pub fn region(&self) -> String {
        self.sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into())
    }

    /// An EventBridge client for another region, with the same credentials
    /// and endpoint.
    pub(crate) fn events_in(&self, region: &str) -> aws_sdk_eventbridge::Client {
        let config =
            aws_sdk_eventbridge::config::Builder::from(&self.sdk).region(Region::new(region.to_string())).build();
        aws_sdk_eventbridge::Client::from_conf(config)
    }

    /// The regions enabled in the account (`ec2:DescribeRegions` lists only
    /// those unless asked for all), sorted.
    pub async fn enabled_regions(&self) -> Result<Vec<String>, AwsError> {
        let out = self.ec2.describe_regions().send().await.map_err(self.fail("ec2:DescribeRegions"))?;
        let mut regions: Vec<String> =
            out.regions().iter().filter_map(|r| r.region_name().map(str::to_string)).collect();
        regions.sort();
        regions.dedup();
        Ok(regions)
    }

    /// The canary account's number, asked of STS once per connection.
    pub async fn account_id(&self) -> Result<String, AwsError> {
        self.account.get_or_try_init(|| async { Ok(self.identity().await?.account) }).await.cloned()
    }

    fn fail<E>(
        &self,
        op: &'static str,
    ) -> impl FnOnce(aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::http::Response>) -> AwsError + '_
    where
        E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| AwsError::from_sdk(op, &self.endpoint, e)
    }

    /// `sts:GetCallerIdentity`: checks that the account is reachable and the
    /// credentials work.
    pub async fn identity(&self) -> Result<CallerIdentity, AwsError> {
        let out = self.sts.get_caller_identity().send().await.map_err(self.fail("sts:GetCallerIdentity"))?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
        })
    }

    /// Creates a guarded user and its first access key. On failure, removes
    /// whatever it had created.
    pub async fn mint(&self, spec: &MintSpec) -> Result<MintedKey, AwsError> {
        honeytrail_core::naming::validate_user_name(&spec.user_name).map_err(|e| AwsError::Refused(e.to_string()))?;
        let boundary = self.ensure_boundary(&spec.boundary).await?;
        let user = self
            .iam
            .create_user()
            .user_name(&spec.user_name)
            .path("/")
            .permissions_boundary(&boundary)
            .send()
            .await
            .map_err(self.fail("iam:CreateUser"))?
            .user
            .ok_or_else(|| AwsError::Other { op: "iam:CreateUser", message: "the response carried no user".into() })?;
        let result = async {
            self.attach_guard(&spec.user_name, &spec.guard).await?;
            self.create_key(&spec.user_name, user.arn()).await
        }
        .await;
        match result {
            Ok(key) => Ok(key),
            Err(cause) => {
                tracing::warn!(user = %spec.user_name, error = %cause, "mint failed; removing the half-made user");
                match self.delete_user_if_unused(&spec.user_name).await {
                    Ok(_) => Err(cause),
                    Err(cleanup) => Err(AwsError::Leftover {
                        cause: Box::new(cause),
                        cleanup: Box::new(cleanup),
                        user: spec.user_name.clone(),
                    }),
                }
            }
        }
    }

    /// Adds a second access key to an existing honey user (IAM allows two),
    /// which stretches the account's user quota.
    pub async fn add_key(&self, user_name: &str) -> Result<MintedKey, AwsError> {
        let user = self
            .iam
            .get_user()
            .user_name(user_name)
            .send()
            .await
            .map_err(self.fail("iam:GetUser"))?
            .user
            .ok_or_else(|| AwsError::Other { op: "iam:GetUser", message: "the response carried no user".into() })?;
        self.create_key(user_name, user.arn()).await
    }

    async fn create_key(&self, user_name: &str, user_arn: &str) -> Result<MintedKey, AwsError> {
        let key = self
            .iam
            .create_access_key()
            .user_name(user_name)
            .send()
            .await
            .map_err(self.fail("iam:CreateAccessKey"))?
            .access_key
            .ok_or_else(|| AwsError::Other {
                op: "iam:CreateAccessKey",
                message: "the response carried no key".into(),
            })?;
        Ok(MintedKey {
            user_name: user_name.to_string(),
            user_arn: user_arn.to_string(),
            account_id: account_of_arn(user_arn),
            access_key_id: key.access_key_id().to_string(),
            secret_access_key: Secret::new(key.secret_access_key()),
            created_at: Utc::now(),
        })
    }

    async fn attach_guard(&self, user_name: &str, guard: &DenyGuard) -> Result<(), AwsError> {
        match guard {
            DenyGuard::Inline { policy_name } => {
                self.iam
                    .put_user_policy()
                    .user_name(user_name)
                    .policy_name(policy_name)
                    .policy_document(DENY_ALL_POLICY)
                    .send()
                    .await
                    .map_err(self.fail("iam:PutUserPolicy"))?;
            }
            DenyGuard::Group { group_name, policy_name } => {
                self.ensure_deny_group(group_name, policy_name).await?;
                self.iam
                    .add_user_to_group()
                    .user_name(user_name)
                    .group_name(group_name)
                    .send()
                    .await
                    .map_err(self.fail("iam:AddUserToGroup"))?;
            }
        }
        Ok(())
    }

    /// The ARN of the managed policy `name` in this account.
    pub async fn policy_arn(&self, name: &str) -> Result<String, AwsError> {
        let account = self.account_id().await?;
        Ok(format!("arn:{}:iam::{account}:policy/{name}", bootstrap::partition(&self.region())))
    }

    /// Whether the managed policy `arn` exists and its default version
    /// denies everything: `Ok(None)` when it does not exist, `Ok(Some(false))`
    /// when it allows something.
    pub(crate) async fn boundary_state(&self, arn: &str) -> Result<Option<bool>, AwsError> {
        let policy = match self.iam.get_policy().policy_arn(arn).send().await {
            Ok(o) => o.policy,
            Err(e) => {
                return match AwsError::from_sdk("iam:GetPolicy", &self.endpoint, e) {
                    AwsError::NoSuchEntity { .. } => Ok(None),
                    other => Err(other),
                }
            }
        };
        let version = policy.as_ref().and_then(|p| p.default_version_id()).unwrap_or("v1").to_string();
        let document = self
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(self.fail("iam:GetPolicyVersion"))?
            .policy_version
            .and_then(|v| v.document)
            .unwrap_or_default();
        Ok(Some(denies_everything(&honeytrail_core::encoding::percent_decode(&document, false))))
    }

    /// Makes sure the boundary policy `name` exists and denies everything;
    /// its ARN. Creates it when missing (the bootstrap role may; the mint
    /// role may not, and is told to run bootstrap), and refuses to mint under
    /// a boundary that allows anything.
    async fn ensure_boundary(&self, name: &str) -> Result<String, AwsError> {
        let arn = self.policy_arn(name).await?;
        if self.boundaries_checked.lock().map(|b| b.contains(&arn)).unwrap_or(false) {
            return Ok(arn);
        }
        match self.boundary_state(&arn).await? {
            Some(true) => {}
            Some(false) => {
                return Err(AwsError::Refused(format!(
                    "the permissions boundary {arn} allows something: honey users must be denied everything. `honeytrail aws bootstrap` restores it to deny-all"
                )))
            }
            None => {
                if let Err(e) = self.create_boundary(name).await {
                    return Err(match e {
                        AwsError::AccessDenied { .. } => AwsError::Refused(format!(
                            "the permissions boundary {arn} does not exist and this identity may not create it (by design, the mint policy cannot); run `honeytrail aws bootstrap` with the bootstrap role first"
                        )),
                        other => other,
                    });
                }
            }
        }
        if let Ok(mut checked) = self.boundaries_checked.lock() {
            checked.push(arn.clone());
        }
        Ok(arn)
    }

    pub(crate) async fn create_boundary(&self, name: &str) -> Result<(), AwsError> {
        self.iam
            .create_policy()
            .policy_name(name)
            .policy_document(DENY_ALL_POLICY)
            .send()
            .await
            .map_err(self.fail("iam:CreatePolicy"))?;
        Ok(())
    }

    async fn ensure_deny_group(&self, group_name: &str, policy_name: &str) -> Result<(), AwsError> {
        match self.iam.get_group().group_name(group_name).send().await {
            Ok(_) => {}
            Err(e) => match AwsError::from_sdk("iam:GetGroup", &self.endpoint, e) {
                AwsError::NoSuchEntity { .. } => {
                    self.iam
                        .create_group()
                        .group_name(group_name)
                        .path("/")
                        .send()
                        .await
                        .map_err(self.fail("iam:CreateGroup"))?;
                }
                other => return Err(other),
            },
        }
        // Put the policy every time: it is idempotent and repairs a group whose
        // guard someone removed.
        self.iam
            .put_group_policy()
            .group_name(group_name)
            .policy_name(policy_name)
            .policy_document(DENY_ALL_POLICY)
            .send()
            .await
            .map_err(self.fail("iam:PutGroupPolicy"))?;
        Ok(())
    }

    /// The access key IDs a user holds; `None` when the user does not exist.
    pub async fn key_ids(&self, user_name: &str) -> Result<Option<Vec<String>>, AwsError> {
        match self.iam.list_access_keys().user_name(user_name).send().await {
            Ok(out) => Ok(Some(
                out.access_key_metadata().iter().filter_map(|k| k.access_key_id().map(str::to_string)).collect(),
            )),
            Err(e) => match AwsError::from_sdk("iam:ListAccessKeys", &self.endpoint, e) {
                AwsError::NoSuchEntity { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Whether `user_name` is a honey user of honeytrail's: it carries the
    /// deny-all guard, as the inline policy `policy_name` denying everything
    /// or as membership of the group `group_name`. Reconcile deletes keys
    /// only on such users, never on a user someone else made.
    pub async fn is_honey_user(&self, user_name: &str, policy_name: &str, group_name: &str) -> Result<bool, AwsError> {
        let policies = match self.iam.list_user_policies().user_name(user_name).send().await {
            Ok(out) => out,
            Err(e) => {
                return match AwsError::from_sdk("iam:ListUserPolicies", &self.endpoint, e) {
                    AwsError::NoSuchEntity { .. } => Ok(false),
                    other => Err(other),
                }
            }
        };
        if policies.policy_names().iter().any(|p| p == policy_name) {
            let document = self
                .iam
                .get_user_policy()
                .user_name(user_name)
                .policy_name(policy_name)
                .send()
                .await
                .map_err(self.fail("iam:GetUserPolicy"))?
                .policy_document;
            if denies_everything(&honeytrail_core::encoding::percent_decode(&document, false)) {
                return Ok(true);
            }
        }
        Ok(self.group_names(user_name).await?.iter().any(|g| g == group_name))
    }

    /// The groups a user is in.
    async fn group_names(&self, user_name: &str) -> Result<Vec<String>, AwsError> {
        let groups = self
            .iam
            .list_groups_for_user()
            .user_name(user_name)
            .send()
            .await
            .map_err(self.fail("iam:ListGroupsForUser"))?;
        Ok(groups.groups().iter().map(|g| g.group_name().to_string()).collect())
    }

    /// Deletes one access key. A key that is already gone is not an error.
    pub async fn delete_key(&self, user_name: &str, access_key_id: &str) -> Result<(), AwsError> {
        match self.iam.delete_access_key().user_name(user_name).access_key_id(access_key_id).send().await {
            Ok(_) => Ok(()),
            Err(e) => match AwsError::from_sdk("iam:DeleteAccessKey", &self.endpoint, e) {
                AwsError::NoSuchEntity { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Deletes a honey user once it holds no access key: its inline policies
    /// and group memberships first, as IAM requires. Returns whether the user
    /// is gone (true also when it did not exist).
    pub async fn delete_user_if_unused(&self, user_name: &str) -> Result<bool, AwsError> {
        match self.key_ids(user_name).await? {
            None => return Ok(true),
            Some(keys) if !keys.is_empty() => return Ok(false),
            Some(_) => {}
        }
        let policies = self
            .iam
            .list_user_policies()
            .user_name(user_name)
            .send()
            .await
            .map_err(self.fail("iam:ListUserPolicies"))?;
        for name in policies.policy_names() {
            self.iam
                .delete_user_policy()
                .user_name(user_name)
                .policy_name(name)
                .send()
                .await
                .map_err(self.fail("iam:DeleteUserPolicy"))?;
        }
        for group in self.group_names(user_name).await? {
            self.iam
                .remove_user_from_group()
                .user_name(user_name)
                .group_name(group)
                .send()
                .await
                .map_err(self.fail("iam:RemoveUserFromGroup"))?;
        }
        self.remove_what_blocks_delete_user(user_name).await?;
        self.iam.delete_user().user_name(user_name).send().await.map_err(self.fail("iam:DeleteUser"))?;
        Ok(true)
    }

    /// What `DeleteUser` refuses to delete a user with, besides keys,
    /// inline policies and groups: managed policies (AWS attaches
    /// `AWSCompromisedKeyQuarantineV2` to a user whose key it found
    /// published), a console password, MFA devices, signing certificates and
    /// SSH keys. A honey user should have none of them but the quarantine
    /// policy; whatever is there goes, so the retire completes.
    async fn remove_what_blocks_delete_user(&self, user_name: &str) -> Result<(), AwsError> {
        let attached = self
            .iam
            .list_attached_user_policies()
            .user_name(user_name)
            .send()
            .await
            .map_err(self.fail("iam:ListAttachedUserPolicies"))?;
        for policy in attached.attached_policies() {
            if let Some(arn) = policy.policy_arn() {
                self.iam
                    .detach_user_policy()
                    .user_name(user_name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map_err(self.fail("iam:DetachUserPolicy"))?;
            }
        }
        if let Err(e) = self.iam.delete_login_profile().user_name(user_name).send().await {
            match AwsError::from_sdk("iam:DeleteLoginProfile", &self.endpoint, e) {
                AwsError::NoSuchEntity { .. } => {}
                other => return Err(other),
            }
        }
        let devices =
            self.iam.list_mfa_devices().user_name(user_name).send().await.map_err(self.fail("iam:ListMFADevices"))?;
        for device in devices.mfa_devices() {
            self.iam
                .deactivate_mfa_device()
                .user_name(user_name)
                .serial_number(device.serial_number())
                .send()
                .await
                .map_err(self.fail("iam:DeactivateMFADevice"))?;
        }
        let certificates = self
            .iam
            .list_signing_certificates()
            .user_name(user_name)
            .send()
            .await
            .map_err(self.fail("iam:ListSigningCertificates"))?;
        for certificate in certificates.certificates() {
            self.iam
                .delete_signing_certificate()
                .user_name(user_name)
                .certificate_id(certificate.certificate_id())
                .send()
                .await
                .map_err(self.fail("iam:DeleteSigningCertificate"))?;
        }
        let ssh = self
            .iam
            .list_ssh_public_keys()
            .user_name(user_name)
            .send()
            .await
            .map_err(self.fail("iam:ListSSHPublicKeys"))?;
        for key in ssh.ssh_public_keys() {
            self.iam
                .delete_ssh_public_key()
                .user_name(user_name)
                .ssh_public_key_id(key.ssh_public_key_id())
                .send()
                .await
                .map_err(self.fail("iam:DeleteSSHPublicKey"))?;
        }
        // Service-specific credentials (CodeCommit, Keyspaces, Bedrock). An
        // endpoint that cannot list them (moto) is logged, not fatal:
        // DeleteUser is the authority, and says DeleteConflict if any is left.
        match self.iam.list_service_specific_credentials().user_name(user_name).send().await {
            Ok(out) => {
                for credential in out.service_specific_credentials() {
                    self.iam
                        .delete_service_specific_credential()
                        .user_name(user_name)
                        .service_specific_credential_id(credential.service_specific_credential_id())
                        .send()
                        .await
                        .map_err(self.fail("iam:DeleteServiceSpecificCredential"))?;
                }
            }
            Err(e) => {
                let e = AwsError::from_sdk("iam:ListServiceSpecificCredentials", &self.endpoint, e);
                tracing::warn!(user = %user_name, error = %e, "could not list service-specific credentials; deleting the user anyway");
            }
        }
        Ok(())
    }
}

/// What IAM says about a key's last use (`iam:GetAccessKeyLastUsed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUsed {
    pub at: DateTime<Utc>,
    /// The service called, e.g. `sts`, `s3`; `N/A` when unknown.
    pub service: String,
    pub region: String,
}

impl CanaryAccount {
    /// When the key was last used, or `None` if never.
    pub async fn last_used(&self, access_key_id: &str) -> Result<Option<LastUsed>, AwsError> {
        let out = self
            .iam
            .get_access_key_last_used()
            .access_key_id(access_key_id)
            .send()
            .await
            .map_err(self.fail("iam:GetAccessKeyLastUsed"))?;
        Ok(out.access_key_last_used().and_then(|u| {
            let when = u.last_used_date()?;
            Some(LastUsed {
                at: whole_seconds(DateTime::from_timestamp(when.secs(), 0).unwrap_or_default()),
                service: known(u.service_name()),
                region: known(u.region()),
            })
        }))
    }
}

/// A last-use time to the second: the credential report gives no finer, so
/// both ways of asking name the same use alike.
fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// A service or region as IAM names it, `N/A` for its ways of saying it does
/// not know (`N/A`, `no_information`, `not_supported`, nothing).
fn known(value: &str) -> String {
    match value.trim() {
        "" | "N/A" | "no_information" | "not_supported" => "N/A".to_string(),
        v => v.to_string(),
    }
}

/// One access key's line in IAM's credential report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedKey {
    pub active: bool,
    /// When IAM last saw it used, with the service and region (`N/A` when
    /// IAM does not say); `None` if never.
    pub last_used: Option<LastUsed>,
}

/// IAM's credential report: every user's keys in one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialReport {
    /// When AWS made it (it makes one at most every four hours).
    pub generated: Option<DateTime<Utc>>,
    /// User name → the user's first and second key.
    pub users: std::collections::BTreeMap<String, [ReportedKey; 2]>,
}

/// Reads the CSV of a credential report. Columns are found by their
/// header, so a column AWS adds or moves does not shift the others.
pub fn parse_credential_report(
    csv_text: &[u8],
) -> Result<std::collections::BTreeMap<String, [ReportedKey; 2]>, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(csv_text);
    let headers = reader.byte_headers().map_err(|e| format!("the credential report has no header: {e}"))?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name.as_bytes());
    let user = column("user").ok_or("the credential report has no `user` column")?;
    // Each key's columns, found once: [active, date, service, region].
    let key_columns = |n: u8| {
        ["active", "last_used_date", "last_used_service", "last_used_region"]
            .map(|field| column(&format!("access_key_{n}_{field}")))
    };
    let keys = [key_columns(1), key_columns(2)];
    let mut users = std::collections::BTreeMap::new();
    // Read as bytes: a line that is not UTF-8, or cut short, costs only its own fields.
    for (line, row) in reader.byte_records().enumerate() {
        let row = row.map_err(|e| format!("line {} of the credential report: {e}", line + 2))?;
        let field = |at: Option<usize>| {
            at.and_then(|i| row.get(i)).map_or(std::borrow::Cow::Borrowed("N/A"), String::from_utf8_lossy)
        };
        let key = |[active, date, service, region]: [Option<usize>; 4]| ReportedKey {
            active: field(active) == "true",
            last_used: DateTime::parse_from_rfc3339(field(date).trim()).ok().map(|at| LastUsed {
                at: whole_seconds(at.with_timezone(&Utc)),
                service: known(&field(service)),
                region: known(&field(region)),
            }),
        };
        let Some(name) = row.get(user) else { continue };
        users.insert(String::from_utf8_lossy(name).into_owned(), keys.map(key));
    }
    Ok(users)
}

impl CanaryAccount {
    /// IAM's credential report (`iam:GenerateCredentialReport`, then
    /// `iam:GetCredentialReport`): one request pair for every key of the
    /// account. `Ok(None)` while AWS is still making it (the next pass reads it).
    pub async fn credential_report(&self) -> Result<Option<CredentialReport>, AwsError> {
        self.iam.generate_credential_report().send().await.map_err(self.fail("iam:GenerateCredentialReport"))?;
        let out = match self.iam.get_credential_report().send().await {
            Ok(out) => out,
            Err(e) => {
                let e = AwsError::from_sdk("iam:GetCredentialReport", &self.endpoint, e);
                let text = e.to_string();
                if ["ReportInProgress", "ReportNotPresent", "ReportExpired"].iter().any(|c| text.contains(c)) {
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let content = out.content().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        let users = parse_credential_report(&content)
            .map_err(|message| AwsError::Other { op: "iam:GetCredentialReport", message })?;
        let generated = out.generated_time().and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
        Ok(Some(CredentialReport { generated, users }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_report_is_read_by_its_headers() {
        // Columns as AWS documents them, one of them moved to the end and
        // one unknown added: found by name either way.
        let text = "user,arn,access_key_1_active,access_key_1_last_used_date,access_key_1_last_used_region,\
access_key_1_last_used_service,access_key_2_active,access_key_2_last_used_date,access_key_2_last_used_region,new_column,access_key_2_last_used_service\n\
<root_account>,arn:aws:iam::123456789012:root,false,N/A,N/A,N/A,false,N/A,N/A,x,N/A\n\
ci-deploy,arn:aws:iam::123456789012:user/ci-deploy,true,2026-12-01T10:15:00+00:00,eu-west-1,sts,false,N/A,N/A,x,N/A\n\
\"name,with comma\",arn:aws:iam::123456789012:user/y,true,no_information,N/A,N/A,true,2026-12-02T08:00:00+00:00,us-east-1,y,s3\n";
        let users = parse_credential_report(text.as_bytes()).unwrap();
        let ci = &users["ci-deploy"];
        assert!(ci[0].active && !ci[1].active);
        let used = ci[0].last_used.as_ref().unwrap();
        assert_eq!(
            (used.at.to_rfc3339(), used.service.as_str(), used.region.as_str()),
            ("2026-12-01T10:15:00+00:00".into(), "sts", "eu-west-1")
        );
        let y = &users["name,with comma"];
        assert_eq!(y[0].last_used, None, "no_information is no date");
        assert_eq!(y[1].last_used.as_ref().unwrap().service, "s3");
        assert!(parse_credential_report(b"arn\nx\n").unwrap_err().contains("`user`"));
        // A line cut short, a name that is not UTF-8, a huge and a markup-laden field: each
        // costs only itself.
        let hostile = [
            &b"user,access_key_1_active,access_key_1_last_used_date,access_key_1_last_used_service\n"[..],
            b"short\n",
            b"bad-\xff-name,true,2026-12-01T10:15:00+00:00,sts\n",
            format!("big,true,{},<script>x</script>\n", "9".repeat(100_000)).as_bytes(),
            b"ok,true,2026-12-02T10:15:00+00:00,\"<b>s3</b>\"\n",
        ]
        .concat();
        let users = parse_credential_report(&hostile).unwrap();
        assert_eq!(users["short"][0], ReportedKey { active: false, last_used: None });
        assert!(users["bad-\u{fffd}-name"][0].last_used.is_some());
        assert_eq!(users["big"][0].last_used, None, "not a date");
        assert_eq!(
            users["ok"][0].last_used.as_ref().unwrap().service,
            "<b>s3</b>",
            "kept as text; escaped where shown"
        );
    }

    #[test]
    fn arn_account() {
        assert_eq!(account_of_arn("arn:aws:iam::123456789012:user/x").as_deref(), Some("123456789012"));
        assert_eq!(account_of_arn("nonsense"), None);
    }

    #[test]
    fn deny_policy_is_valid_json_denying_everything() {
        let v: serde_json::Value = serde_json::from_str(DENY_ALL_POLICY).unwrap();
        assert_eq!(v["Statement"][0]["Effect"], "Deny");
        assert_eq!(v["Statement"][0]["Action"], "*");
        assert_eq!(v["Statement"][0]["Resource"], "*");
    }
}

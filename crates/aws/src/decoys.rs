//! Decoy resources in the canary account: made, checked and deleted.
//!
//! Decoys are made in the home region (IAM roles are global). Their
//! contents come from [`honeytrail_core::decoy::contents`]: made up, never a
//! copied secret. Nothing is tagged or described in a way that names
//! honeytrail: an intruder who lists the account sees only what a company's
//! own resources would show. A decoy that fails half-way is deleted again.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration};
use aws_sdk_ssm::types::ParameterType;
use honeytrail_core::decoy::{contents, DecoyKind};

use crate::bootstrap::{is_not_found, partition};
use crate::{AwsError, CanaryAccount};

/// How long a new DynamoDB table may take to become active.
const TABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl CanaryAccount {
    /// Makes a decoy with made-up contents; returns its ARN. A decoy that
    /// fails half-way is deleted again, so nothing is left unregistered. A
    /// decoy role carries the deny-all managed policy `boundary` as its
    /// permissions boundary, as honey users do: the decoys policy lets its
    /// holder make roles only so, so whoever steals it cannot make a role
    /// that can do anything.
    pub async fn create_decoy(&self, kind: DecoyKind, name: &str, boundary: &str) -> Result<String, AwsError> {
        kind.check_name(name).map_err(|e| AwsError::Refused(e.0))?;
        // Never over something that exists: a real resource, or one of
        // honeytrail's own queues (CreateQueue answers with an existing
        // queue, and removing the "decoy" would delete it).
        if self.decoy_exists(kind, name).await? {
            return Err(AwsError::Refused(format!(
                "a {} named {name:?} already exists in the account; a decoy is only ever made new, so choose another name",
                kind.label()
            )));
        }
        match self.make_decoy(kind, name, boundary).await {
            Ok(arn) => Ok(arn),
            Err(e) => {
                if let Err(cleanup) = self.delete_decoy(kind, name).await {
                    tracing::warn!(%cleanup, "a decoy {} {name:?} made in part could not be deleted again", kind.label());
                }
                Err(e)
            }
        }
    }

    async fn make_decoy(&self, kind: DecoyKind, name: &str, boundary: &str) -> Result<String, AwsError> {
        let region = self.region();
        let account = self.account_id().await?;
        let arn = kind.arn(partition(&region), &region, &account, name);
        // Contents are made before any await: the generator is not Send.
        let (objects, value, parameter, items) = {
            let mut rng = rand::thread_rng();
            (
                contents::objects(name, &mut rng),
                contents::secret_value(name, &mut rng),
                contents::parameter_value(&mut rng),
                contents::items(&mut rng),
            )
        };
        match kind {
            DecoyKind::S3Bucket => {
                let mut req = self.s3.create_bucket().bucket(name);
                if region != "us-east-1" {
                    req = req.create_bucket_configuration(
                        CreateBucketConfiguration::builder()
                            .location_constraint(BucketLocationConstraint::from(region.as_str()))
                            .build(),
                    );
                }
                req.send().await.map_err(self.fail("s3:CreateBucket"))?;
                let block = PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build();
                self.s3
                    .put_public_access_block()
                    .bucket(name)
                    .public_access_block_configuration(block)
                    .send()
                    .await
                    .map_err(self.fail("s3:PutPublicAccessBlock"))?;
                for (key, body) in objects {
                    self.s3
                        .put_object()
                        .bucket(name)
                        .key(key)
                        .body(body.into_bytes().into())
                        .send()
                        .await
                        .map_err(self.fail("s3:PutObject"))?;
                }
            }
            DecoyKind::SsmParameter => {
                self.ssm
                    .put_parameter()
                    .name(name)
                    .value(parameter)
                    .r#type(ParameterType::SecureString)
                    .overwrite(false)
                    .send()
                    .await
                    .map_err(self.fail("ssm:PutParameter"))?;
            }
            DecoyKind::Secret => {
                let out = self
                    .secrets
                    .create_secret()
                    .name(name)
                    .secret_string(value)
                    .send()
                    .await
                    .map_err(self.fail("secretsmanager:CreateSecret"))?;
                return out.arn().map(str::to_string).ok_or_else(|| AwsError::Other {
                    op: "secretsmanager:CreateSecret",
                    message: "the answer holds no ARN".into(),
                });
            }
            DecoyKind::DynamodbTable => {
                self.dynamodb
                    .create_table()
                    .table_name(name)
                    .billing_mode(BillingMode::PayPerRequest)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name("id")
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(built)?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name("id")
                            .key_type(KeyType::Hash)
                            .build()
                            .map_err(built)?,
                    )
                    .send()
                    .await
                    .map_err(self.fail("dynamodb:CreateTable"))?;
                self.table_active(name).await?;
                for item in items {
                    let mut put = self.dynamodb.put_item().table_name(name);
                    for (attribute, text) in item {
                        put = put.item(attribute, AttributeValue::S(text));
                    }
                    put.send().await.map_err(self.fail("dynamodb:PutItem"))?;
                }
            }
            DecoyKind::SqsQueue => {
                self.sqs.create_queue().queue_name(name).send().await.map_err(self.fail("sqs:CreateQueue"))?;
            }
            DecoyKind::IamRole => {
                let trust = crate::sessions::own_account_trust(partition(&region), &account);
                let out = self
                    .iam
                    .create_role()
                    .role_name(name)
                    .assume_role_policy_document(trust.to_string())
                    .max_session_duration(3600)
                    .permissions_boundary(format!("arn:{}:iam::{account}:policy/{boundary}", partition(&region)))
                    .send()
                    .await
                    .map_err(self.fail("iam:CreateRole"))
                    .map_err(|e| match e {
                        AwsError::NoSuchEntity { .. } => AwsError::Refused(format!(
                            "the permissions boundary {boundary} every decoy role carries does not exist: run \
                             `honeytrail aws bootstrap`, which makes it ({e})"
                        )),
                        other => other,
                    })?;
                // Whoever gets into it can do nothing with it.
                self.iam
                    .put_role_policy()
                    .role_name(name)
                    .policy_name("default")
                    .policy_document(crate::DENY_ALL_POLICY)
                    .send()
                    .await
                    .map_err(self.fail("iam:PutRolePolicy"))?;
                return Ok(out.role().map(|r| r.arn().to_string()).or(arn).unwrap_or_default());
            }
        }
        arn.ok_or_else(|| AwsError::Other { op: "decoy", message: format!("no ARN for a {}", kind.label()) })
    }

    async fn table_active(&self, name: &str) -> Result<(), AwsError> {
        let deadline = tokio::time::Instant::now() + TABLE_WAIT;
        loop {
            let out = self
                .dynamodb
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(self.fail("dynamodb:DescribeTable"))?;
            let status = out.table().and_then(|t| t.table_status()).map(|s| s.as_str().to_string());
            if status.as_deref() == Some("ACTIVE") {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AwsError::Other {
                    op: "dynamodb:DescribeTable",
                    message: format!(
                        "table {name} was not active after {} s (status {status:?})",
                        TABLE_WAIT.as_secs()
                    ),
                });
            }
            // AWS makes a table in seconds; asked again at a polite pace.
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    }

    /// Deletes a decoy and what it holds. A decoy already gone is fine.
    pub async fn delete_decoy(&self, kind: DecoyKind, name: &str) -> Result<(), AwsError> {
        let gone = |r: Result<(), AwsError>| match r {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other,
        };
        match kind {
            DecoyKind::S3Bucket => gone(self.empty_and_delete_bucket(name).await),
            DecoyKind::SsmParameter => gone(
                self.ssm.delete_parameter().name(name).send().await.map(drop).map_err(self.fail("ssm:DeleteParameter")),
            ),
            DecoyKind::Secret => gone(
                self.secrets
                    .delete_secret()
                    .secret_id(name)
                    .force_delete_without_recovery(true)
                    .send()
                    .await
                    .map(drop)
                    .map_err(self.fail("secretsmanager:DeleteSecret")),
            ),
            DecoyKind::DynamodbTable => gone(
                self.dynamodb
                    .delete_table()
                    .table_name(name)
                    .send()
                    .await
                    .map(drop)
                    .map_err(self.fail("dynamodb:DeleteTable")),
            ),
            DecoyKind::SqsQueue => gone(
                async {
                    let url =
                        self.sqs.get_queue_url().queue_name(name).send().await.map_err(self.fail("sqs:GetQueueUrl"))?;
                    let url = url.queue_url().unwrap_or_default().to_string();
                    self.sqs.delete_queue().queue_url(url).send().await.map_err(self.fail("sqs:DeleteQueue"))?;
                    Ok(())
                }
                .await,
            ),
            DecoyKind::IamRole => gone(
                async {
                    let policies = self
                        .iam
                        .list_role_policies()
                        .role_name(name)
                        .send()
                        .await
                        .map_err(self.fail("iam:ListRolePolicies"))?;
                    for policy in policies.policy_names() {
                        self.iam
                            .delete_role_policy()
                            .role_name(name)
                            .policy_name(policy)
                            .send()
                            .await
                            .map_err(self.fail("iam:DeleteRolePolicy"))?;
                    }
                    self.iam.delete_role().role_name(name).send().await.map_err(self.fail("iam:DeleteRole"))?;
                    Ok(())
                }
                .await,
            ),
        }
    }

    async fn empty_and_delete_bucket(&self, name: &str) -> Result<(), AwsError> {
        loop {
            let listed = self.s3.list_objects_v2().bucket(name).send().await.map_err(self.fail("s3:ListObjectsV2"))?;
            if listed.contents().is_empty() {
                break;
            }
            for object in listed.contents() {
                if let Some(key) = object.key() {
                    self.s3.delete_object().bucket(name).key(key).send().await.map_err(self.fail("s3:DeleteObject"))?;
                }
            }
        }
        self.s3.delete_bucket().bucket(name).send().await.map_err(self.fail("s3:DeleteBucket"))?;
        Ok(())
    }

    /// Whether a decoy still exists. Its reads are the manager's own, so
    /// they are no incident.
    pub async fn decoy_exists(&self, kind: DecoyKind, name: &str) -> Result<bool, AwsError> {
        let found = match kind {
            DecoyKind::S3Bucket => {
                self.s3.head_bucket().bucket(name).send().await.map(drop).map_err(self.fail("s3:HeadBucket"))
            }
            DecoyKind::SsmParameter => {
                self.ssm.get_parameter().name(name).send().await.map(drop).map_err(self.fail("ssm:GetParameter"))
            }
            DecoyKind::Secret => self
                .secrets
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .map(drop)
                .map_err(self.fail("secretsmanager:DescribeSecret")),
            DecoyKind::DynamodbTable => self
                .dynamodb
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map(drop)
                .map_err(self.fail("dynamodb:DescribeTable")),
            DecoyKind::SqsQueue => {
                self.sqs.get_queue_url().queue_name(name).send().await.map(drop).map_err(self.fail("sqs:GetQueueUrl"))
            }
            DecoyKind::IamRole => {
                self.iam.get_role().role_name(name).send().await.map(drop).map_err(self.fail("iam:GetRole"))
            }
        };
        match found {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) || e.to_string().contains("NonExistentQueue") => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn built(e: aws_sdk_dynamodb::error::BuildError) -> AwsError {
    AwsError::Other { op: "dynamodb:CreateTable", message: e.to_string() }
}

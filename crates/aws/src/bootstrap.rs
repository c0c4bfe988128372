//! Canary-account bootstrap and verification: everything detection needs,
//! checked item by item and created or repaired where missing.
//!
//! Each item has a check (present, missing, or misconfigured with the reason)
//! and a fix. `verify` runs the checks; `bootstrap` runs each check and
//! applies the fix where it fails, so running it twice changes nothing.

use std::fmt;

use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};
use aws_sdk_eventbridge::types::{RuleState, Target};

/// The rule state that receives every CloudTrail management event, the
/// read-only ones included (EventBridge user guide, "Receiving read-only
/// management events from AWS services"); plain `ENABLED` gets writes only.
pub const READ_ONLY_INCLUSIVE: &str = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS";
use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;

use crate::{AwsError, CanaryAccount};

/// Names of what bootstrap creates in the canary account.
#[derive(Debug, Clone)]
pub struct BootstrapConfig {
    pub account: String,
    pub region: String,
    pub bucket: String,
    pub trail: String,
    /// The queue the bucket notifies of new log files.
    pub notifications_queue: String,
    /// The queue the EventBridge rule forwards API calls to.
    pub events_queue: String,
    pub rule: String,
    pub deny_group: String,
    pub deny_policy: String,
}

/// The state of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    Missing,
    Misconfigured(String),
}

/// What bootstrap did (or, in a dry run, would do) for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Unchanged,
    Created,
    Repaired,
    WouldCreate,
    WouldRepair,
}

#[derive(Debug, Clone)]
pub struct ItemReport {
    pub item: Item,
    pub status: Status,
    pub action: Option<Action>,
}

/// The items, in the order they must exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    Bucket,
    BucketPolicy,
    NotificationsQueue,
    BucketNotification,
    Trail,
    TrailSettings,
    EventSelectors,
    TrailLogging,
    EventsQueue,
    EventRule,
    ExposureRule,
    DenyGuard,
}

impl Item {
    pub const ALL: [Item; 12] = [
        Item::Bucket,
        Item::BucketPolicy,
        Item::NotificationsQueue,
        Item::BucketNotification,
        Item::Trail,
        Item::TrailSettings,
        Item::EventSelectors,
        Item::TrailLogging,
        Item::EventsQueue,
        Item::EventRule,
        Item::ExposureRule,
        Item::DenyGuard,
    ];

    /// What a missing or wrong item costs, and what the fix does.
    pub fn fix(self) -> &'static str {
        match self {
            Item::Bucket => "create the S3 bucket CloudTrail writes log files to",
            Item::BucketPolicy => {
                "let cloudtrail.amazonaws.com check the bucket ACL and write under AWSLogs/<account>/"
            }
            Item::NotificationsQueue => "create the SQS queue for new-log-file notifications, writable by the bucket",
            Item::BucketNotification => "notify the queue of every new object (s3:ObjectCreated:*)",
            Item::Trail => "create the trail",
            Item::TrailSettings => "make the trail multi-region, with log file validation and global service events",
            Item::EventSelectors => "log all management events (read-only ones included) and S3 and Lambda data events",
            Item::TrailLogging => "start logging",
            Item::EventsQueue => "create the SQS queue for EventBridge events, writable by honeytrail's rules",
            Item::EventRule => "forward \"AWS API Call via CloudTrail\" events to the events queue (near real time)",
            Item::ExposureRule => {
                "forward AWS Health's AWS_RISK_CREDENTIALS_EXPOSED findings (a key found published) to the events queue"
            }
            Item::DenyGuard => "keep the deny-all group that guards honey users",
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Item::Bucket => "log bucket",
            Item::BucketPolicy => "bucket policy",
            Item::NotificationsQueue => "notifications queue",
            Item::BucketNotification => "bucket notification",
            Item::Trail => "trail",
            Item::TrailSettings => "trail settings",
            Item::EventSelectors => "event selectors",
            Item::TrailLogging => "trail logging",
            Item::EventsQueue => "events queue",
            Item::EventRule => "EventBridge rule",
            Item::ExposureRule => "exposure rule",
            Item::DenyGuard => "deny-all guard",
        })
    }
}

/// The trail's ARN: the only source the bucket policy lets CloudTrail write for.
fn trail_arn(c: &BootstrapConfig) -> String {
    format!("arn:{}:cloudtrail:{}:{}:trail/{}", partition(&c.region), c.region, c.account, c.trail)
}

/// What CloudTrail needs of the bucket, for this account's trail only
/// (`aws:SourceArn`, as AWS's current guidance has it: no other trail, in
/// any account, can write into it through the service principal).
fn bucket_policy(c: &BootstrapConfig) -> String {
    let trail = trail_arn(c);
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:GetBucketAcl", "Resource": format!("arn:{}:s3:::{}", partition(&c.region), c.bucket),
             "Condition": {"StringEquals": {"aws:SourceArn": trail}}},
            {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "s3:PutObject",
             "Resource": format!("arn:{}:s3:::{}/AWSLogs/{}/*", partition(&c.region), c.bucket, c.account),
             "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail}}}
        ]
    })
    .to_string()
}

/// Lets `service` send to the queue for the named sources of this account
/// only (`aws:SourceArn` and `aws:SourceAccount`; a bucket ARN names no
/// account, so the account condition is what keeps a same-named bucket
/// elsewhere out).
fn queue_policy(queue_arn: &str, service: &str, source_arns: &[String]) -> String {
    let account = queue_arn.split(':').nth(4).unwrap_or_default();
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "honeytrail", "Effect": "Allow", "Principal": {"Service": service},
            "Action": "sqs:SendMessage", "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": source_arns}, "StringEquals": {"aws:SourceAccount": account}}}]
    })
    .to_string()
}

/// The event pattern of the exposure rule: AWS Health's finding that a key
/// was published, which names the key and where it was found.
pub const EXPOSURE_PATTERN: &str = r#"{"source":["aws.health"],"detail-type":["AWS Health Event"],"detail":{"eventTypeCode":["AWS_RISK_CREDENTIALS_EXPOSED"]}}"#;

/// The exposure rule's name, beside the API-call rule's.
pub fn exposure_rule(c: &BootstrapConfig) -> String {
    format!("{}-exposures", c.rule)
}

const EXPOSED: &str = "AWS_RISK_CREDENTIALS_EXPOSED";

fn rule_arn(c: &BootstrapConfig, name: &str) -> String {
    format!("arn:aws:events:{}:{}:rule/{name}", c.region, c.account)
}

/// The event pattern of the API-call rule: every CloudTrail-based detail type.
pub const RULE_PATTERN: &str = r#"{"detail-type":["AWS API Call via CloudTrail","AWS Console Sign In via CloudTrail","AWS Service Event via CloudTrail"]}"#;

/// The dead-letter queue of a queue.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}-dead-letters")
}

/// After this many receives without a delete, SQS moves a message to the
/// dead-letter queue.
pub const MAX_RECEIVES: u32 = 5;

fn redrive_policy(dead_letters_arn: &str) -> String {
    serde_json::json!({"deadLetterTargetArn": dead_letters_arn, "maxReceiveCount": MAX_RECEIVES.to_string()})
        .to_string()
}

/// The ARN partition of a region: `aws`, `aws-us-gov` or `aws-cn`.
fn partition(region: &str) -> &'static str {
    if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("cn-") {
        "aws-cn"
    } else {
        "aws"
    }
}

/// What the S3 data-event selector leaves out: the log bucket's own objects.
/// Logged, CloudTrail's deliveries and honeytrail's reads of every log file
/// would each be a data event in a new log file: an endless, billed trickle.
pub fn log_bucket_objects(c: &BootstrapConfig) -> String {
    format!("arn:{}:s3:::{}/", partition(&c.region), c.bucket)
}

fn selectors(c: &BootstrapConfig) -> Result<Vec<AdvancedEventSelector>, AwsError> {
    let built =
        |e: aws_sdk_cloudtrail::error::BuildError| AwsError::Other { op: "build selector", message: e.to_string() };
    let field =
        |name: &str, value: &str| AdvancedFieldSelector::builder().field(name).equals(value).build().map_err(built);
    let selector = |name: &str, fields: Vec<AdvancedFieldSelector>| {
        AdvancedEventSelector::builder().name(name).set_field_selectors(Some(fields)).build().map_err(built)
    };
    let not_the_log_bucket = AdvancedFieldSelector::builder()
        .field("resources.ARN")
        .not_starts_with(log_bucket_objects(c))
        .build()
        .map_err(built)?;
    Ok(vec![
        selector("management events", vec![field("eventCategory", "Management")?])?,
        selector(
            "S3 data events",
            vec![field("eventCategory", "Data")?, field("resources.type", "AWS::S3::Object")?, not_the_log_bucket],
        )?,
        selector(
            "Lambda data events",
            vec![field("eventCategory", "Data")?, field("resources.type", "AWS::Lambda::Function")?],
        )?,
    ])
}

/// Whether some S3 data-event selector logs the log bucket's own objects.
fn logs_its_own_bucket(selectors: &[AdvancedEventSelector], c: &BootstrapConfig) -> bool {
    let own = log_bucket_objects(c);
    selectors.iter().any(|s| {
        let fields = s.field_selectors();
        let is =
            |name: &str, value: &str| fields.iter().any(|f| f.field() == name && f.equals().iter().any(|v| v == value));
        let excluded = fields
            .iter()
            .any(|f| f.field() == "resources.ARN" && f.not_starts_with().iter().any(|p| own.starts_with(p.as_str())));
        is("eventCategory", "Data") && is("resources.type", "AWS::S3::Object") && !excluded
    })
}

fn is_not_found(e: &AwsError) -> bool {
    match e {
        AwsError::NoSuchEntity { .. } => true,
        AwsError::Other { message, .. } => {
            ["NotFound", "NoSuch", "NonExistent", "TrailNotFound", "ResourceNotFound", "HTTP 404"]
                .iter()
                .any(|m| message.contains(m))
        }
        _ => false,
    }
}

impl CanaryAccount {
    async fn queue(&self, name: &str) -> Result<Option<(String, String)>, AwsError> {
        let url = match self.sqs.get_queue_url().queue_name(name).send().await {
            Ok(o) => o.queue_url().unwrap_or_default().to_string(),
            Err(e) => {
                let e = AwsError::from_sdk("sqs:GetQueueUrl", &self.endpoint, e);
                return if is_not_found(&e)
                    || matches!(&e, AwsError::Other { message, .. } if message.contains("QueueDoesNotExist"))
                {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(self.fail("sqs:GetQueueAttributes"))?;
        let arn = attrs.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
        Ok(Some((url, arn)))
    }

    async fn ensure_queue(
        &self,
        name: &str,
        service: &str,
        source_arns: &[String],
    ) -> Result<(String, String), AwsError> {
        let (url, arn) = match self.queue(name).await? {
            Some(q) => q,
            None => {
                let url = self
                    .sqs
                    .create_queue()
                    .queue_name(name)
                    .send()
                    .await
                    .map_err(self.fail("sqs:CreateQueue"))?
                    .queue_url()
                    .unwrap_or_default()
                    .to_string();
                self.queue(name).await?.unwrap_or((url, String::new()))
            }
        };
        let dead_letters = self.ensure_dead_letter_queue(name).await?;
        self.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::Policy, queue_policy(&arn, service, source_arns))
            .attributes(QueueAttributeName::RedrivePolicy, redrive_policy(&dead_letters))
            .send()
            .await
            .map_err(self.fail("sqs:SetQueueAttributes"))?;
        Ok((url, arn))
    }

    /// The dead-letter queue of `queue` (`<queue>-dead-letters`, messages
    /// kept 14 days), made when missing; its ARN.
    async fn ensure_dead_letter_queue(&self, queue: &str) -> Result<String, AwsError> {
        let name = dead_letter_queue(queue);
        if let Some((_, arn)) = self.queue(&name).await? {
            return Ok(arn);
        }
        self.sqs
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
            .send()
            .await
            .map_err(self.fail("sqs:CreateQueue"))?;
        Ok(self.queue(&name).await?.map(|(_, arn)| arn).unwrap_or_default())
    }

    async fn check(&self, c: &BootstrapConfig, item: Item) -> Result<Status, AwsError> {
        Ok(match item {
            Item::Bucket => match self.s3.head_bucket().bucket(&c.bucket).send().await {
                Ok(_) => Status::Ok,
                Err(e) => {
                    let e = AwsError::from_sdk("s3:HeadBucket", &self.endpoint, e);
                    if is_not_found(&e) {
                        Status::Missing
                    } else {
                        return Err(e);
                    }
                }
            },
            Item::BucketPolicy => match self.s3.get_bucket_policy().bucket(&c.bucket).send().await {
                Ok(o) => {
                    let p = o.policy().unwrap_or_default();
                    if !(p.contains("cloudtrail.amazonaws.com")
                        && p.contains("s3:PutObject")
                        && p.contains("s3:GetBucketAcl"))
                    {
                        Status::Misconfigured("the policy does not let CloudTrail write log files".into())
                    } else if !p.contains(&trail_arn(c)) {
                        Status::Misconfigured(format!(
                            "the policy lets CloudTrail write for any trail; limit it to {} (aws:SourceArn)",
                            trail_arn(c)
                        ))
                    } else {
                        Status::Ok
                    }
                }
                Err(_) => Status::Missing,
            },
            Item::NotificationsQueue => {
                self.queue_status(&c.notifications_queue, &[format!("arn:aws:s3:::{}", c.bucket)]).await?
            }
            Item::BucketNotification => {
                let Some((_, arn)) = self.queue(&c.notifications_queue).await? else { return Ok(Status::Missing) };
                match self.s3.get_bucket_notification_configuration().bucket(&c.bucket).send().await {
                    Ok(o) => {
                        let ours = o.queue_configurations().iter().find(|q| q.queue_arn() == arn);
                        match ours {
                            Some(q) if q.events().iter().any(|e| e.as_str().starts_with("s3:ObjectCreated:")) => {
                                Status::Ok
                            }
                            Some(_) => Status::Misconfigured("the notification does not cover s3:ObjectCreated".into()),
                            None => Status::Missing,
                        }
                    }
                    Err(_) => Status::Missing,
                }
            }
            Item::Trail => match self.trail(c).await? {
                Some(_) => Status::Ok,
                None => Status::Missing,
            },
            Item::TrailSettings => match self.trail(c).await? {
                None => Status::Missing,
                Some(t) => {
                    let mut wrong = Vec::new();
                    if t.is_multi_region_trail() != Some(true) {
                        wrong.push("not multi-region");
                    }
                    if t.log_file_validation_enabled() != Some(true) {
                        wrong.push("log file validation off");
                    }
                    if t.include_global_service_events() != Some(true) {
                        wrong.push("global service events (IAM, STS) not included");
                    }
                    if t.s3_bucket_name() != Some(c.bucket.as_str()) {
                        wrong.push("writes to another bucket");
                    }
                    if wrong.is_empty() {
                        Status::Ok
                    } else {
                        Status::Misconfigured(wrong.join(", "))
                    }
                }
            },
            Item::EventSelectors => match self.cloudtrail.get_event_selectors().trail_name(&c.trail).send().await {
                Err(_) => Status::Missing,
                Ok(o) => {
                    let text = format!("{:?} {:?}", o.advanced_event_selectors(), o.event_selectors());
                    let mut wrong = Vec::new();
                    if !text.contains("Management") {
                        wrong.push("management events not logged");
                    }
                    if !text.contains("AWS::S3::Object") {
                        wrong.push("S3 data events off");
                    }
                    if !text.contains("AWS::Lambda::Function") {
                        wrong.push("Lambda data events off");
                    }
                    if text.contains("readOnly") {
                        wrong.push("read-only events filtered (GetCallerIdentity would be missed)");
                    }
                    if logs_its_own_bucket(o.advanced_event_selectors(), c) {
                        wrong.push("S3 data events of the log bucket itself are logged (CloudTrail's deliveries and honeytrail's reads become new events without end, and are billed)");
                    }
                    if wrong.is_empty() {
                        Status::Ok
                    } else {
                        Status::Misconfigured(wrong.join(", "))
                    }
                }
            },
            Item::TrailLogging => match self.cloudtrail.get_trail_status().name(&c.trail).send().await {
                Ok(o) if o.is_logging() == Some(true) => Status::Ok,
                Ok(_) => Status::Misconfigured("the trail is not logging".into()),
                Err(_) => Status::Missing,
            },
            Item::EventsQueue => {
                let rules = [rule_arn(c, &c.rule), rule_arn(c, &exposure_rule(c))];
                self.queue_status(&c.events_queue, &rules).await?
            }
            Item::EventRule => self.rule_status(c, &c.rule, "AWS API Call via CloudTrail").await?,
            Item::ExposureRule => self.rule_status(c, &exposure_rule(c), EXPOSED).await?,
            Item::DenyGuard => {
                match self.iam.get_group_policy().group_name(&c.deny_group).policy_name(&c.deny_policy).send().await {
                    Ok(o) => {
                        let doc = honeytrail_core::encoding::percent_decode(o.policy_document(), false);
                        if doc.contains("Deny") && doc.contains("\"*\"") {
                            Status::Ok
                        } else {
                            Status::Misconfigured("the group policy is not Deny * on *".into())
                        }
                    }
                    Err(_) => Status::Missing,
                }
            }
        })
    }

    /// Whether the rule `name` exists, matches `must_match`, is enabled and
    /// targets the events queue.
    async fn rule_status(&self, c: &BootstrapConfig, name: &str, must_match: &str) -> Result<Status, AwsError> {
        let Ok(rule) = self.events.describe_rule().name(name).send().await else { return Ok(Status::Missing) };
        let Some((_, arn)) = self.queue(&c.events_queue).await? else { return Ok(Status::Missing) };
        let targets = self
            .events
            .list_targets_by_rule()
            .rule(name)
            .send()
            .await
            .map_err(self.fail("events:ListTargetsByRule"))?;
        Ok(if !rule.event_pattern().unwrap_or_default().contains(must_match) {
            Status::Misconfigured(format!("the rule does not match \"{must_match}\""))
        } else if rule.state() == Some(&RuleState::Enabled) {
            // Plain ENABLED gets write calls only: none of an intruder's
            // first moves (GetCallerIdentity, List*, Get*, Describe*).
            Status::Misconfigured(format!(
                "the rule is ENABLED, which receives no read-only calls (sts:GetCallerIdentity, List*, Get*, Describe*); it must be {READ_ONLY_INCLUSIVE}"
            ))
        } else if rule.state() != Some(&RuleState::EnabledWithAllCloudtrailManagementEvents) {
            Status::Misconfigured(format!(
                "the rule is {}; it must be {READ_ONLY_INCLUSIVE}",
                rule.state().map(|s| s.as_str()).unwrap_or("in no state")
            ))
        } else if !targets.targets().iter().any(|t| t.arn() == arn) {
            Status::Misconfigured("the rule does not target the events queue".into())
        } else {
            Status::Ok
        })
    }

    /// Creates or updates the rule `name` with `pattern`, in the state that
    /// receives read-only management events too, targeting the events queue.
    async fn put_rule(
        &self,
        c: &BootstrapConfig,
        name: &str,
        pattern: &str,
        description: &str,
    ) -> Result<(), AwsError> {
        let (_, arn) = self.queue(&c.events_queue).await?.ok_or_else(|| AwsError::Other {
            op: "events:PutTargets",
            message: "the events queue does not exist".into(),
        })?;
        self.events
            .put_rule()
            .name(name)
            .event_pattern(pattern)
            .state(RuleState::EnabledWithAllCloudtrailManagementEvents)
            .description(description)
            .send()
            .await
            .map_err(self.fail("events:PutRule"))?;
        let target = Target::builder()
            .id("honeytrail")
            .arn(arn)
            .build()
            .map_err(|e| AwsError::Other { op: "events:PutTargets", message: e.to_string() })?;
        self.events.put_targets().rule(name).targets(target).send().await.map_err(self.fail("events:PutTargets"))?;
        Ok(())
    }

    async fn queue_status(&self, name: &str, source_arns: &[String]) -> Result<Status, AwsError> {
        let Some((url, _)) = self.queue(name).await? else { return Ok(Status::Missing) };
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::Policy)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(self.fail("sqs:GetQueueAttributes"))?;
        let attribute = |n: &QueueAttributeName| attrs.attributes().and_then(|a| a.get(n)).cloned().unwrap_or_default();
        let policy = attribute(&QueueAttributeName::Policy);
        let redrive = attribute(&QueueAttributeName::RedrivePolicy);
        let dead_letters = self.queue(&dead_letter_queue(name)).await?;
        Ok(match source_arns.iter().find(|a| !policy.contains(a.as_str())) {
            Some(missing) => Status::Misconfigured(format!("the queue policy does not let {missing} send to it")),
            None if !policy.contains("aws:SourceAccount") => Status::Misconfigured(
                "the queue policy has no aws:SourceAccount condition: a same-named source in another account could send to it"
                    .into(),
            ),
            None => match dead_letters {
                Some((_, arn)) if redrive.contains(&arn) => Status::Ok,
                _ => Status::Misconfigured(format!(
                    "no dead-letter queue ({}): a message that keeps failing comes back forever",
                    dead_letter_queue(name)
                )),
            },
        })
    }

    async fn trail(&self, c: &BootstrapConfig) -> Result<Option<aws_sdk_cloudtrail::types::Trail>, AwsError> {
        let out = self
            .cloudtrail
            .describe_trails()
            .trail_name_list(&c.trail)
            .send()
            .await
            .map_err(self.fail("cloudtrail:DescribeTrails"))?;
        Ok(out.trail_list().iter().find(|t| t.name() == Some(c.trail.as_str())).cloned())
    }

    async fn apply(&self, c: &BootstrapConfig, item: Item) -> Result<(), AwsError> {
        match item {
            Item::Bucket => {
                let mut req = self.s3.create_bucket().bucket(&c.bucket);
                if c.region != "us-east-1" {
                    req = req.create_bucket_configuration(
                        aws_sdk_s3::types::CreateBucketConfiguration::builder()
                            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(c.region.as_str()))
                            .build(),
                    );
                }
                req.send().await.map_err(self.fail("s3:CreateBucket"))?;
            }
            Item::BucketPolicy => {
                self.s3
                    .put_bucket_policy()
                    .bucket(&c.bucket)
                    .policy(bucket_policy(c))
                    .send()
                    .await
                    .map_err(self.fail("s3:PutBucketPolicy"))?;
            }
            Item::NotificationsQueue => {
                self.ensure_queue(&c.notifications_queue, "s3.amazonaws.com", &[format!("arn:aws:s3:::{}", c.bucket)])
                    .await?;
            }
            Item::BucketNotification => {
                let (_, arn) = self.queue(&c.notifications_queue).await?.ok_or_else(|| AwsError::Other {
                    op: "s3:PutBucketNotificationConfiguration",
                    message: "the notifications queue does not exist".into(),
                })?;
                let existing = self.s3.get_bucket_notification_configuration().bucket(&c.bucket).send().await.ok();
                let mut queues: Vec<QueueConfiguration> = existing
                    .as_ref()
                    .map(|e| e.queue_configurations().iter().filter(|q| q.queue_arn() != arn).cloned().collect())
                    .unwrap_or_default();
                queues.push(
                    QueueConfiguration::builder()
                        .id("honeytrail-new-log-files")
                        .queue_arn(&arn)
                        .events(Event::S3ObjectCreated)
                        .build()
                        .map_err(|e| AwsError::Other {
                            op: "s3:PutBucketNotificationConfiguration",
                            message: e.to_string(),
                        })?,
                );
                let mut config = NotificationConfiguration::builder().set_queue_configurations(Some(queues));
                if let Some(e) = &existing {
                    config = config
                        .set_topic_configurations(Some(e.topic_configurations().to_vec()))
                        .set_lambda_function_configurations(Some(e.lambda_function_configurations().to_vec()));
                }
                self.s3
                    .put_bucket_notification_configuration()
                    .bucket(&c.bucket)
                    .notification_configuration(config.build())
                    .send()
                    .await
                    .map_err(self.fail("s3:PutBucketNotificationConfiguration"))?;
            }
            Item::Trail => {
                self.cloudtrail
                    .create_trail()
                    .name(&c.trail)
                    .s3_bucket_name(&c.bucket)
                    .is_multi_region_trail(true)
                    .enable_log_file_validation(true)
                    .include_global_service_events(true)
                    .send()
                    .await
                    .map_err(self.fail("cloudtrail:CreateTrail"))?;
            }
            Item::TrailSettings => {
                self.cloudtrail
                    .update_trail()
                    .name(&c.trail)
                    .s3_bucket_name(&c.bucket)
                    .is_multi_region_trail(true)
                    .enable_log_file_validation(true)
                    .include_global_service_events(true)
                    .send()
                    .await
                    .map_err(self.fail("cloudtrail:UpdateTrail"))?;
            }
            Item::EventSelectors => {
                self.cloudtrail
                    .put_event_selectors()
                    .trail_name(&c.trail)
                    .set_advanced_event_selectors(Some(selectors(c)?))
                    .send()
                    .await
                    .map_err(self.fail("cloudtrail:PutEventSelectors"))?;
            }
            Item::TrailLogging => {
                self.cloudtrail
                    .start_logging()
                    .name(&c.trail)
                    .send()
                    .await
                    .map_err(self.fail("cloudtrail:StartLogging"))?;
            }
            Item::EventsQueue => {
                let rules = [rule_arn(c, &c.rule), rule_arn(c, &exposure_rule(c))];
                self.ensure_queue(&c.events_queue, "events.amazonaws.com", &rules).await?;
            }
            Item::EventRule => {
                self.put_rule(c, &c.rule, RULE_PATTERN, "CloudTrail API calls to SQS, for honeytrail").await?
            }
            Item::ExposureRule => {
                let description = "AWS Health findings of published keys to SQS, for honeytrail";
                self.put_rule(c, &exposure_rule(c), EXPOSURE_PATTERN, description).await?
            }
            Item::DenyGuard => self.ensure_deny_group(&c.deny_group, &c.deny_policy).await?,
        }
        Ok(())
    }

    /// Checks every item without changing anything.
    pub async fn verify(&self, c: &BootstrapConfig) -> Result<Vec<ItemReport>, AwsError> {
        let mut out = Vec::new();
        for item in Item::ALL {
            out.push(ItemReport { item, status: self.check(c, item).await?, action: None });
        }
        Ok(out)
    }

    /// Creates or repairs whatever is missing; with `dry_run`, only says what it would do.
    pub async fn bootstrap(&self, c: &BootstrapConfig, dry_run: bool) -> Result<Vec<ItemReport>, AwsError> {
        let mut out = Vec::new();
        for item in Item::ALL {
            let status = self.check(c, item).await?;
            let action = match (&status, dry_run) {
                (Status::Ok, _) => Action::Unchanged,
                (Status::Missing, true) => Action::WouldCreate,
                (Status::Misconfigured(_), true) => Action::WouldRepair,
                (s, false) => {
                    self.apply(c, item).await?;
                    if matches!(s, Status::Missing) {
                        Action::Created
                    } else {
                        Action::Repaired
                    }
                }
            };
            out.push(ItemReport { item, status, action: Some(action) });
        }
        Ok(out)
    }
}

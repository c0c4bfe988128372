//! Canary-account bootstrap and verification: everything detection needs,
//! checked item by item and created or repaired where missing.
//!
//! Each item has a check (present, missing, or misconfigured with the reason)
//! and a fix. `verify` runs the checks; `bootstrap` runs each check and
//! applies the fix where it fails, so running it twice changes nothing.

use std::fmt;

use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};
use aws_sdk_eventbridge::types::{RuleState, Target};
use honeytrail_core::decoy::DecoyKind;

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
    /// The deny-all managed policy every honey user carries as its
    /// permissions boundary.
    pub boundary: String,
    /// Every region with rules: the home region (`region`, where the queues
    /// are), us-east-1 (IAM's and the other global services' events arrive
    /// only there) and every other enabled region, or those asked for.
    pub regions: Vec<String>,
    /// The role the other regions' rules use to put events on the home
    /// region's default event bus.
    pub forwarder_role: String,
    /// The honey role whose sessions session canaries hold (`fleet.session_role`).
    pub session_role: String,
    /// The account's live decoys: they must exist, and those whose reads are
    /// data events must be logged.
    pub decoys: Vec<DecoyRef>,
}

/// A decoy bootstrap and verify know of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoyRef {
    pub kind: DecoyKind,
    pub name: String,
    pub arn: String,
}

impl BootstrapConfig {
    /// The decoys whose reads are data events of a type other than S3
    /// objects (those are logged for every bucket but the log bucket), by
    /// resource type: what the trail's decoy selectors list.
    fn decoy_data_events(&self) -> Vec<(&'static str, Vec<String>)> {
        let mut out: Vec<(&'static str, Vec<String>)> = Vec::new();
        for d in &self.decoys {
            let Some(kind) = d.kind.data_event_type().filter(|t| *t != "AWS::S3::Object") else { continue };
            match out.iter_mut().find(|(t, _)| *t == kind) {
                Some((_, arns)) => arns.push(d.arn.clone()),
                None => out.push((kind, vec![d.arn.clone()])),
            }
        }
        out
    }
}

impl BootstrapConfig {
    /// The regions whose rules forward to the home region.
    pub fn forwarding_regions(&self) -> impl Iterator<Item = &str> {
        self.regions.iter().map(String::as_str).filter(move |r| *r != self.region)
    }
}

/// Checks a region name's shape (`eu-west-1`, `us-gov-east-1`,
/// `ap-southeast-5`), so a typo is named instead of failing in AWS.
pub fn valid_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// The regions to set up: those asked for (or all enabled ones), always
/// with the home region and us-east-1, sorted and without repeats.
pub fn rule_regions(home: &str, asked: Vec<String>) -> Result<Vec<String>, String> {
    if let Some(bad) = asked.iter().find(|r| !valid_region(r)) {
        return Err(format!("\"{bad}\" is not an AWS region name (like eu-west-1)"));
    }
    let mut regions = asked;
    regions.push(home.to_string());
    regions.push("us-east-1".into());
    regions.sort();
    regions.dedup();
    Ok(regions)
}

/// The state of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    Missing,
    Misconfigured(String),
    /// AWS refused the read: the item's state is unknown, so nothing is
    /// changed. Says which permission is lacking.
    Unreadable(String),
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
    ForwarderRole,
    RegionalRules,
    DenyGuard,
    Boundary,
    /// The decoys registered in this account (made by `decoy apply`).
    Decoys,
    /// The honey role session canaries are sessions of.
    SessionRole,
}

impl Item {
    pub const ALL: [Item; 17] = [
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
        Item::ForwarderRole,
        Item::RegionalRules,
        Item::DenyGuard,
        Item::Boundary,
        Item::Decoys,
        Item::SessionRole,
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
            Item::EventSelectors => "log all management events (read-only ones included) and S3, Lambda and SNS data events",
            Item::TrailLogging => "start logging",
            Item::EventsQueue => "create the SQS queue for EventBridge events, writable by honeytrail's rules",
            Item::EventRule => "forward \"AWS API Call via CloudTrail\" events to the events queue (near real time)",
            Item::ExposureRule => {
                "forward AWS Health's AWS_RISK_CREDENTIALS_EXPOSED findings (a key found published) to the events queue"
            }
            Item::ForwarderRole => {
                "let EventBridge in the other regions put events on the home region's bus (a role for events.amazonaws.com)"
            }
            Item::RegionalRules => {
                "create both rules in every other region, forwarding to the home region's bus: rules are regional, and IAM's events arrive only in us-east-1"
            }
            Item::DenyGuard => "keep the deny-all group that guards honey users",
            Item::Boundary => "keep the deny-all permissions boundary every honey user is created with",
            Item::Decoys => {
                "keep every registered decoy in place; bootstrap never remakes one (its contents would change): remove a decoy gone from AWS with `honeytrail decoy remove` and apply a new plan"
            }
            Item::SessionRole => {
                "create the honey role session canaries are sessions of (fleet.session_role): trusted by this account, its inline policy deny-all; a role of that name that allows anything is somebody's, never changed: choose another name"
            }
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
            Item::ForwarderRole => "forwarding role",
            Item::RegionalRules => "rules in other regions",
            Item::DenyGuard => "deny-all guard",
            Item::Boundary => "permissions boundary",
            Item::Decoys => "decoys",
            Item::SessionRole => "session role",
        })
    }
}

/// The trail's ARN: the only source the bucket policy lets CloudTrail write for.
pub(crate) fn trail_arn(c: &BootstrapConfig) -> String {
    format!("arn:{}:cloudtrail:{}:{}:trail/{}", partition(&c.region), c.region, c.account, c.trail)
}

/// The statement ID of bootstrap's queue-policy statement (the bucket
/// policy's are `AWSCloudTrailAclCheck` and `AWSCloudTrailWrite`);
/// statements with other IDs are someone else's and are kept.
const OUR_QUEUE_STATEMENT: &str = "honeytrail";

/// `ours` merged into the policy `existing` (when there is one): statements
/// with our IDs are replaced, every other statement, the `Id` and the
/// version are kept. An existing policy that is not a JSON policy is an
/// error, never overwritten.
fn merge_policy(existing: Option<&str>, ours: &str, op: &'static str) -> Result<String, AwsError> {
    let mut ours: serde_json::Value =
        serde_json::from_str(ours).map_err(|e| AwsError::Other { op, message: e.to_string() })?;
    let Some(existing) = existing.filter(|e| !e.trim().is_empty()) else { return Ok(ours.to_string()) };
    let mut merged: serde_json::Value = serde_json::from_str(existing).map_err(|e| AwsError::Other {
        op,
        message: format!(
            "the existing policy is not valid JSON ({e}); fix or remove it by hand, bootstrap will not overwrite it"
        ),
    })?;
    let new = ours["Statement"].as_array_mut().map(std::mem::take).unwrap_or_default();
    let ids: Vec<String> = new.iter().filter_map(|s| s["Sid"].as_str().map(str::to_string)).collect();
    let kept: Vec<serde_json::Value> = match merged.get("Statement") {
        Some(serde_json::Value::Array(all)) => all.clone(),
        Some(one @ serde_json::Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|s| !s["Sid"].as_str().is_some_and(|id| ids.iter().any(|ours| ours == id)))
    .chain(new)
    .collect();
    merged["Statement"] = serde_json::Value::Array(kept);
    if merged.get("Version").is_none() {
        merged["Version"] = json!("2012-10-17");
    }
    Ok(merged.to_string())
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
        "Statement": [{"Sid": OUR_QUEUE_STATEMENT, "Effect": "Allow", "Principal": {"Service": service},
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
    format!("arn:{}:events:{}:{}:rule/{name}", partition(&c.region), c.region, c.account)
}

/// The home region's default event bus, which the other regions' rules
/// forward to.
pub fn home_bus_arn(c: &BootstrapConfig) -> String {
    format!("arn:{}:events:{}:{}:event-bus/default", partition(&c.region), c.region, c.account)
}

pub(crate) fn forwarder_arn(c: &BootstrapConfig) -> String {
    format!("arn:{}:iam::{}:role/{}", partition(&c.region), c.account, c.forwarder_role)
}

pub(crate) fn boundary_arn(c: &BootstrapConfig) -> String {
    format!("arn:{}:iam::{}:policy/{}", partition(&c.region), c.account, c.boundary)
}

/// The inline policy of the forwarding role.
const FORWARDER_POLICY: &str = "put-events-home";

/// Where a rule sends what it matches: the events queue (home region) or
/// the home bus through the forwarding role (every other region).
struct RuleTarget {
    arn: String,
    role: Option<String>,
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
pub fn partition(region: &str) -> &'static str {
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

/// The data-event resource types of SNS's `Publish` and `PublishBatch`.
const SNS_TOPIC: &str = "AWS::SNS::Topic";
const SNS_ENDPOINT: &str = "AWS::SNS::PlatformEndpoint";

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
    let mut out = vec![
        selector("management events", vec![field("eventCategory", "Management")?])?,
        selector(
            "S3 data events",
            vec![field("eventCategory", "Data")?, field("resources.type", "AWS::S3::Object")?, not_the_log_bucket],
        )?,
        selector(
            "Lambda data events",
            vec![field("eventCategory", "Data")?, field("resources.type", "AWS::Lambda::Function")?],
        )?,
        // Publish and PublishBatch are data events: the call Pacu and
        // TruffleHog make to learn a key's ARN from the error without a
        // management event to show for it.
        selector("SNS topic data events", vec![field("eventCategory", "Data")?, field("resources.type", SNS_TOPIC)?])?,
        selector(
            "SNS endpoint data events",
            vec![field("eventCategory", "Data")?, field("resources.type", SNS_ENDPOINT)?],
        )?,
    ];
    // Only the decoys themselves: honeytrail's own queues are polled every
    // few seconds, and logging them would bill an endless trickle.
    for (kind, arns) in c.decoy_data_events() {
        let these =
            AdvancedFieldSelector::builder().field("resources.ARN").set_equals(Some(arns)).build().map_err(built)?;
        out.push(selector(
            &format!("decoy {kind} data events"),
            vec![field("eventCategory", "Data")?, field("resources.type", kind)?, these],
        )?);
    }
    Ok(out)
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

/// A failed read that means "not there" is `Missing`; any other failure
/// (AccessDenied among them) is returned, so nothing is created over an
/// item that exists but could not be read.
fn absent(e: AwsError) -> Result<Status, AwsError> {
    if is_not_found(&e) {
        Ok(Status::Missing)
    } else {
        Err(e)
    }
}

pub(crate) fn is_not_found(e: &AwsError) -> bool {
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
    /// The URL and ARN of the queue `name`, if it exists.
    async fn queue(&self, name: &str) -> Result<Option<(String, String)>, AwsError> {
        let Some(url) = self.existing_queue_url(name).await? else { return Ok(None) };
        let arn = self.queue_attribute(&url, QueueAttributeName::QueueArn).await?.unwrap_or_default();
        Ok(Some((url, arn)))
    }

    /// One attribute of a queue, if set.
    async fn queue_attribute(&self, url: &str, name: QueueAttributeName) -> Result<Option<String>, AwsError> {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(name.clone())
            .send()
            .await
            .map_err(self.fail("sqs:GetQueueAttributes"))?;
        Ok(attrs.attributes().and_then(|a| a.get(&name)).cloned())
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
        let existing = self.queue_attribute(&url, QueueAttributeName::Policy).await?;
        let policy =
            merge_policy(existing.as_deref(), &queue_policy(&arn, service, source_arns), "sqs:SetQueueAttributes")?;
        self.sqs
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::Policy, policy)
            .attributes(QueueAttributeName::RedrivePolicy, redrive_policy(&dead_letters))
            .send()
            .await
            .map_err(self.fail("sqs:SetQueueAttributes"))?;
        Ok((url, arn))
    }

    /// The bucket's notification configuration; `None` when it has none.
    /// An answer that cannot be read is an error (so nothing is written over
    /// a configuration we could not see), except an empty one: moto answers
    /// an empty configuration with a document the SDK does not parse.
    async fn notification_configuration(
        &self,
        bucket: &str,
    ) -> Result<
        Option<aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput>,
        AwsError,
    > {
        match self.s3.get_bucket_notification_configuration().bucket(bucket).send().await {
            Ok(o) => Ok(Some(o)),
            Err(e) => {
                let empty = e.raw_response().is_some_and(|raw| {
                    let body = raw.body().bytes().map(String::from_utf8_lossy).unwrap_or_default();
                    raw.status().as_u16() == 200 && !body.contains("Configuration>") && !body.contains("<Error>")
                });
                if empty {
                    return Ok(None);
                }
                absent(AwsError::from_sdk("s3:GetBucketNotification", &self.endpoint, e))?;
                Ok(None)
            }
        }
    }

    /// Makes deny-all the default version of the boundary policy `arn`,
    /// making room first when IAM's five versions are used up.
    async fn restore_boundary(&self, arn: &str) -> Result<(), AwsError> {
        let versions = self
            .iam
            .list_policy_versions()
            .policy_arn(arn)
            .send()
            .await
            .map_err(self.fail("iam:ListPolicyVersions"))?;
        if versions.versions().len() >= 5 {
            if let Some(oldest) = versions
                .versions()
                .iter()
                .filter(|v| !v.is_default_version())
                .min_by_key(|v| v.create_date().map(|d| d.secs()).unwrap_or_default())
            {
                self.iam
                    .delete_policy_version()
                    .policy_arn(arn)
                    .version_id(oldest.version_id().unwrap_or_default())
                    .send()
                    .await
                    .map_err(self.fail("iam:DeletePolicyVersion"))?;
            }
        }
        self.iam
            .create_policy_version()
            .policy_arn(arn)
            .policy_document(crate::DENY_ALL_POLICY)
            .set_as_default(true)
            .send()
            .await
            .map_err(self.fail("iam:CreatePolicyVersion"))?;
        Ok(())
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

    /// The state of one item; a read AWS refuses makes it `Unreadable`
    /// (nothing is changed over it), never `Missing`.
    async fn status(&self, c: &BootstrapConfig, item: Item) -> Result<Status, AwsError> {
        match self.check(c, item).await {
            Err(AwsError::AccessDenied { op, .. }) => Ok(Status::Unreadable(format!(
                "AWS denied {op}, so this cannot be checked and nothing is changed; the bootstrap policy (`honeytrail aws policy bootstrap`) grants it"
            ))),
            other => other,
        }
    }

    async fn check(&self, c: &BootstrapConfig, item: Item) -> Result<Status, AwsError> {
        Ok(match item {
            Item::Bucket => match self.s3.head_bucket().bucket(&c.bucket).send().await {
                Ok(_) => Status::Ok,
                Err(e) => absent(AwsError::from_sdk("s3:HeadBucket", &self.endpoint, e))?,
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
                Err(e) => absent(AwsError::from_sdk("s3:GetBucketPolicy", &self.endpoint, e))?,
            },
            Item::NotificationsQueue => {
                self.queue_status(&c.notifications_queue, &[format!("arn:aws:s3:::{}", c.bucket)]).await?
            }
            Item::BucketNotification => {
                let Some((_, arn)) = self.queue(&c.notifications_queue).await? else { return Ok(Status::Missing) };
                match self.notification_configuration(&c.bucket).await? {
                    Some(o) => {
                        let ours = o.queue_configurations().iter().find(|q| q.queue_arn() == arn);
                        match ours {
                            Some(q) if q.events().iter().any(|e| e.as_str().starts_with("s3:ObjectCreated:")) => {
                                Status::Ok
                            }
                            Some(_) => Status::Misconfigured("the notification does not cover s3:ObjectCreated".into()),
                            None => Status::Missing,
                        }
                    }
                    None => Status::Missing,
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
                Err(e) => absent(AwsError::from_sdk("cloudtrail:GetEventSelectors", &self.endpoint, e))?,
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
                    if !text.contains(SNS_TOPIC) || !text.contains(SNS_ENDPOINT) {
                        wrong.push(
                            "SNS data events off (sns:Publish, the probe that reveals a key's ARN, goes unlogged)",
                        );
                    }
                    let unlogged: Vec<&str> = c
                        .decoy_data_events()
                        .into_iter()
                        .flat_map(|(_, arns)| arns)
                        .filter(|arn| !text.contains(arn.as_str()))
                        .filter_map(|arn| c.decoys.iter().find(|d| d.arn == arn).map(|d| d.name.as_str()))
                        .collect();
                    let unlogged_text =
                        format!("reads of decoys {} are not logged (data events off)", unlogged.join(", "));
                    if !unlogged.is_empty() {
                        wrong.push(&unlogged_text);
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
                Err(e) => absent(AwsError::from_sdk("cloudtrail:GetTrailStatus", &self.endpoint, e))?,
            },
            Item::EventsQueue => {
                let rules = [rule_arn(c, &c.rule), rule_arn(c, &exposure_rule(c))];
                self.queue_status(&c.events_queue, &rules).await?
            }
            Item::EventRule => match self.home_target(c).await? {
                None => Status::Missing,
                Some(t) => self.rule_status(&self.events, &c.rule, "AWS API Call via CloudTrail", &t).await?,
            },
            Item::ExposureRule => match self.home_target(c).await? {
                None => Status::Missing,
                Some(t) => self.rule_status(&self.events, &exposure_rule(c), EXPOSED, &t).await?,
            },
            Item::ForwarderRole => self.forwarder_status(c).await?,
            Item::SessionRole => self.session_role_status(&c.session_role).await?,
            Item::RegionalRules => {
                let mut wrong = Vec::new();
                for region in c.forwarding_regions() {
                    for (rule, status) in self.regional_status(c, region).await? {
                        match status {
                            Status::Ok => {}
                            Status::Missing => wrong.push(format!("{region}: {rule} missing")),
                            Status::Misconfigured(why) | Status::Unreadable(why) => {
                                wrong.push(format!("{region}: {rule}: {why}"))
                            }
                        }
                    }
                }
                if wrong.is_empty() {
                    Status::Ok
                } else {
                    Status::Misconfigured(wrong.join("; "))
                }
            }
            Item::DenyGuard => {
                match self.iam.get_group_policy().group_name(&c.deny_group).policy_name(&c.deny_policy).send().await {
                    Ok(o) => {
                        let doc = honeytrail_core::encoding::percent_decode(o.policy_document(), false);
                        if crate::denies_everything(&doc) {
                            Status::Ok
                        } else {
                            Status::Misconfigured("the group policy is not Deny * on *".into())
                        }
                    }
                    Err(e) => absent(AwsError::from_sdk("iam:GetGroupPolicy", &self.endpoint, e))?,
                }
            }
            Item::Boundary => match self.boundary_state(&boundary_arn(c)).await? {
                None => Status::Missing,
                Some(true) => Status::Ok,
                Some(false) => Status::Misconfigured(
                    "the boundary policy allows something; honey users must be denied everything".into(),
                ),
            },
            Item::Decoys => {
                let mut gone = Vec::new();
                for d in &c.decoys {
                    if !self.decoy_exists(d.kind, &d.name).await? {
                        gone.push(format!("{} {}", d.kind.label(), d.name));
                    }
                }
                if gone.is_empty() {
                    Status::Ok
                } else {
                    Status::Misconfigured(format!("gone from AWS: {}", gone.join(", ")))
                }
            }
        })
    }

    /// Where the home region's rules send: the events queue, once it exists.
    async fn home_target(&self, c: &BootstrapConfig) -> Result<Option<RuleTarget>, AwsError> {
        Ok(self.queue(&c.events_queue).await?.map(|(_, arn)| RuleTarget { arn, role: None }))
    }

    fn forwarding_target(c: &BootstrapConfig) -> RuleTarget {
        RuleTarget { arn: home_bus_arn(c), role: Some(forwarder_arn(c)) }
    }

    /// Both rules of one forwarding region, with their states.
    async fn regional_status(&self, c: &BootstrapConfig, region: &str) -> Result<Vec<(String, Status)>, AwsError> {
        let events = self.events_in(region);
        let target = Self::forwarding_target(c);
        let mut out = Vec::new();
        for (rule, must_match) in [(c.rule.clone(), "AWS API Call via CloudTrail"), (exposure_rule(c), EXPOSED)] {
            let status = match self.rule_status(&events, &rule, must_match, &target).await {
                Err(AwsError::AccessDenied { op, .. }) => {
                    Status::Unreadable(format!("AWS denied {op} in {region}; the bootstrap policy grants it"))
                }
                other => other?,
            };
            out.push((rule, status));
        }
        Ok(out)
    }

    async fn forwarder_status(&self, c: &BootstrapConfig) -> Result<Status, AwsError> {
        if c.forwarding_regions().next().is_none() {
            return Ok(Status::Ok);
        }
        let role = match self.iam.get_role().role_name(&c.forwarder_role).send().await {
            Ok(o) => o.role,
            Err(e) => return absent(AwsError::from_sdk("iam:GetRole", &self.endpoint, e)),
        };
        let trust = role
            .as_ref()
            .and_then(|r| r.assume_role_policy_document())
            .map(|d| honeytrail_core::encoding::percent_decode(d, false))
            .unwrap_or_default();
        if !trust.contains("events.amazonaws.com") {
            return Ok(Status::Misconfigured("EventBridge (events.amazonaws.com) may not assume the role".into()));
        }
        let policy =
            match self.iam.get_role_policy().role_name(&c.forwarder_role).policy_name(FORWARDER_POLICY).send().await {
                Ok(o) => honeytrail_core::encoding::percent_decode(o.policy_document(), false),
                Err(e) => {
                    absent(AwsError::from_sdk("iam:GetRolePolicy", &self.endpoint, e))?;
                    String::new()
                }
            };
        Ok(if policy.contains("events:PutEvents") && policy.contains(&home_bus_arn(c)) {
            Status::Ok
        } else {
            Status::Misconfigured(format!("the role may not put events on {}", home_bus_arn(c)))
        })
    }

    /// Whether the rule `name` exists, matches `must_match`, is in the
    /// read-only-inclusive state and sends to `target`.
    async fn rule_status(
        &self,
        events: &aws_sdk_eventbridge::Client,
        name: &str,
        must_match: &str,
        target: &RuleTarget,
    ) -> Result<Status, AwsError> {
        let rule = match events.describe_rule().name(name).send().await {
            Ok(rule) => rule,
            Err(e) => return absent(AwsError::from_sdk("events:DescribeRule", &self.endpoint, e)),
        };
        let targets =
            events.list_targets_by_rule().rule(name).send().await.map_err(self.fail("events:ListTargetsByRule"))?;
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
        } else if !targets.targets().iter().any(|t| t.arn() == target.arn && t.role_arn() == target.role.as_deref()) {
            Status::Misconfigured(match &target.role {
                None => "the rule does not target the events queue".into(),
                Some(role) => format!("the rule does not forward to {} with the role {role}", target.arn),
            })
        } else {
            Status::Ok
        })
    }

    /// Creates or updates the rule `name` with `pattern`, in the state that
    /// receives read-only management events too, sending to `target`.
    async fn put_rule(
        &self,
        events: &aws_sdk_eventbridge::Client,
        name: &str,
        pattern: &str,
        description: &str,
        target: RuleTarget,
    ) -> Result<(), AwsError> {
        events
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
            .arn(target.arn)
            .set_role_arn(target.role)
            .build()
            .map_err(|e| AwsError::Other { op: "events:PutTargets", message: e.to_string() })?;
        events.put_targets().rule(name).targets(target).send().await.map_err(self.fail("events:PutTargets"))?;
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
                let existing = match self.s3.get_bucket_policy().bucket(&c.bucket).send().await {
                    Ok(o) => o.policy().map(str::to_string),
                    Err(e) => {
                        absent(AwsError::from_sdk("s3:GetBucketPolicy", &self.endpoint, e))?;
                        None
                    }
                };
                let policy = merge_policy(existing.as_deref(), &bucket_policy(c), "s3:PutBucketPolicy")?;
                self.s3
                    .put_bucket_policy()
                    .bucket(&c.bucket)
                    .policy(policy)
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
                let existing = self.notification_configuration(&c.bucket).await?;
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
                        .set_lambda_function_configurations(Some(e.lambda_function_configurations().to_vec()))
                        .set_event_bridge_configuration(e.event_bridge_configuration().cloned());
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
            Item::EventRule | Item::ExposureRule => {
                let target = self.home_target(c).await?.ok_or_else(|| AwsError::Other {
                    op: "events:PutTargets",
                    message: "the events queue does not exist".into(),
                })?;
                if item == Item::EventRule {
                    let description = "CloudTrail API calls to SQS";
                    self.put_rule(&self.events, &c.rule, RULE_PATTERN, description, target).await?
                } else {
                    let description = "AWS Health findings of published keys to SQS";
                    self.put_rule(&self.events, &exposure_rule(c), EXPOSURE_PATTERN, description, target).await?
                }
            }
            Item::ForwarderRole => {
                let trust = crate::policies::forwarder_trust(c).to_string();
                match self.iam.get_role().role_name(&c.forwarder_role).send().await {
                    Ok(_) => {
                        self.iam
                            .update_assume_role_policy()
                            .role_name(&c.forwarder_role)
                            .policy_document(&trust)
                            .send()
                            .await
                            .map_err(self.fail("iam:UpdateAssumeRolePolicy"))?;
                    }
                    Err(e) => {
                        absent(AwsError::from_sdk("iam:GetRole", &self.endpoint, e))?;
                        self.iam
                            .create_role()
                            .role_name(&c.forwarder_role)
                            .assume_role_policy_document(&trust)
                            .send()
                            .await
                            .map_err(self.fail("iam:CreateRole"))?;
                    }
                }
                self.iam
                    .put_role_policy()
                    .role_name(&c.forwarder_role)
                    .policy_name(FORWARDER_POLICY)
                    .policy_document(crate::policies::forwarder_policy(c).to_string())
                    .send()
                    .await
                    .map_err(self.fail("iam:PutRolePolicy"))?;
            }
            Item::RegionalRules => {
                let regions: Vec<String> = c.forwarding_regions().map(str::to_string).collect();
                for region in regions {
                    let events = self.events_in(&region);
                    for (rule, status) in self.regional_status(c, &region).await? {
                        if let Status::Unreadable(why) = &status {
                            return Err(AwsError::Refused(format!("{region}: {rule}: {why}")));
                        }
                        if status == Status::Ok {
                            continue;
                        }
                        let target = Self::forwarding_target(c);
                        if rule == c.rule {
                            let description = "CloudTrail API calls to the home region";
                            self.put_rule(&events, &rule, RULE_PATTERN, description, target).await?;
                        } else {
                            let description = "AWS Health findings of published keys to the home region";
                            self.put_rule(&events, &rule, EXPOSURE_PATTERN, description, target).await?;
                        }
                    }
                }
            }
            Item::DenyGuard => self.ensure_deny_group(&c.deny_group, &c.deny_policy).await?,
            Item::Boundary => match self.boundary_state(&boundary_arn(c)).await? {
                None => self.create_boundary(&c.boundary).await?,
                Some(_) => self.restore_boundary(&boundary_arn(c)).await?,
            },
            // Never remade here: see `Item::fix`.
            Item::Decoys => {}
            // Made when missing; a role of that name that is not a honey
            // role is somebody's, and never changed (see `Item::fix`).
            Item::SessionRole => {
                if self.session_role_status(&c.session_role).await? == Status::Missing {
                    self.make_session_role(&c.session_role).await?;
                }
            }
        }
        Ok(())
    }

    /// Checks one item and repairs it when it is there but wrong; a missing
    /// item is left for [`CanaryAccount::bootstrap`] (it may need the items
    /// before it).
    pub async fn ensure(&self, c: &BootstrapConfig, item: Item) -> Result<ItemReport, AwsError> {
        let status = self.status(c, item).await?;
        let action = match &status {
            Status::Misconfigured(_) if !matches!(item, Item::Decoys | Item::SessionRole) => {
                self.apply(c, item).await?;
                Action::Repaired
            }
            _ => Action::Unchanged,
        };
        Ok(ItemReport { item, status, action: Some(action) })
    }

    /// Checks every item without changing anything.
    pub async fn verify(&self, c: &BootstrapConfig) -> Result<Vec<ItemReport>, AwsError> {
        let mut out = Vec::new();
        for item in Item::ALL {
            out.push(ItemReport { item, status: self.status(c, item).await?, action: None });
        }
        Ok(out)
    }

    /// Creates or repairs whatever is missing; with `dry_run`, only says what it would do.
    pub async fn bootstrap(&self, c: &BootstrapConfig, dry_run: bool) -> Result<Vec<ItemReport>, AwsError> {
        let mut out = Vec::new();
        for item in Item::ALL {
            let status = self.status(c, item).await?;
            let action = match (&status, dry_run) {
                // What cannot be read is never overwritten.
                (Status::Ok | Status::Unreadable(_), _) => Action::Unchanged,
                // Decoys are made and removed by `decoy`, never here; a
                // session role that is not a honey role is never touched.
                _ if item == Item::Decoys => Action::Unchanged,
                (Status::Misconfigured(_), _) if item == Item::SessionRole => Action::Unchanged,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_other_statements_and_replaces_ours() {
        let theirs = r#"{"Version":"2012-10-17","Id":"kept","Statement":[
            {"Sid":"AuditorsRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"x"},
            {"Sid":"AWSCloudTrailWrite","Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"old"}]}"#;
        let ours =
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"AWSCloudTrailWrite","Effect":"Allow","Resource":"new"}]}"#;
        let merged: serde_json::Value = serde_json::from_str(&merge_policy(Some(theirs), ours, "op").unwrap()).unwrap();
        assert_eq!(merged["Id"], "kept");
        let statements = merged["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2, "{merged}");
        assert_eq!(statements[0]["Sid"], "AuditorsRead");
        assert_eq!(statements[1]["Resource"], "new");
        // A single statement object, and no policy at all.
        let one = r#"{"Version":"2012-10-17","Statement":{"Sid":"Other","Effect":"Deny","Action":"*","Resource":"*"}}"#;
        let merged: serde_json::Value = serde_json::from_str(&merge_policy(Some(one), ours, "op").unwrap()).unwrap();
        assert_eq!(merged["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(
            merge_policy(None, ours, "op").unwrap(),
            serde_json::from_str::<serde_json::Value>(ours).unwrap().to_string()
        );
        // What is not a policy is never overwritten.
        let err = merge_policy(Some("{not json"), ours, "s3:PutBucketPolicy").unwrap_err();
        assert!(err.to_string().contains("will not overwrite"), "{err}");
    }

    #[test]
    fn rule_regions_always_hold_home_and_us_east_1() {
        assert_eq!(rule_regions("eu-west-1", vec![]).unwrap(), ["eu-west-1", "us-east-1"]);
        assert_eq!(
            rule_regions("eu-west-1", vec!["ap-southeast-2".into(), "eu-west-1".into()]).unwrap(),
            ["ap-southeast-2", "eu-west-1", "us-east-1"]
        );
        for good in ["us-gov-west-1", "ap-southeast-5", "il-central-1", "cn-north-1"] {
            assert!(valid_region(good), "{good}");
        }
        for bad in ["eu-wets", "EU-WEST-1", "eu-west-", "europe", "eu-west-1;rm", ""] {
            assert!(!valid_region(bad), "{bad}");
            assert!(rule_regions("us-east-1", vec![bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn deny_all_means_deny_all_and_no_allow() {
        assert!(crate::denies_everything(crate::DENY_ALL_POLICY));
        assert!(crate::denies_everything(r#"{"Statement":{"Effect":"Deny","Action":["*"],"Resource":"*"}}"#));
        assert!(!crate::denies_everything(
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        ));
        assert!(!crate::denies_everything(r#"{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#));
        assert!(!crate::denies_everything(
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#
        ));
        assert!(!crate::denies_everything("not json"));
    }
}

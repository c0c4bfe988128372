//! The IAM policies of honeytrail's three jobs in the canary account, made
//! from the names bootstrap uses, so what `docs/aws.md` shows, what
//! `honeytrail aws policy` prints and what bootstrap creates cannot drift.
//!
//! - **bootstrap**: sets up and repairs the detection plumbing; run rarely,
//!   by a person.
//! - **mint**: creates and retires honey users and keys, and only users that
//!   carry the deny-all permissions boundary; it cannot remove the boundary,
//!   change the boundary policy, touch roles, or reach the trail, the rules,
//!   the bucket or the queues.
//! - **ingest**: reads the queues and the log bucket and asks IAM when a key
//!   was last used; nothing else.
//! - **decoys**: makes and removes decoy resources (`honeytrail decoy`);
//!   roles only with the deny-all boundary, and never the detection
//!   plumbing, the trail's selectors or any policy but a bounded role's.
//!
//! Both runtime policies end with an explicit Deny of everything that could
//! blind detection (stopping or changing the trail, the rules, the bucket's
//! notifications, the queues), which holds even if someone attaches a broader
//! policy to the same role later.

use serde_json::{json, Value};

use crate::bootstrap::{
    boundary_arn, dead_letter_queue, exposure_rule, forwarder_arn, home_bus_arn, partition, trail_arn, BootstrapConfig,
};

/// The jobs, and the boundary every honey user and decoy role carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Bootstrap,
    Mint,
    Ingest,
    Decoys,
    Boundary,
}

impl Job {
    pub const ALL: [Job; 5] = [Job::Bootstrap, Job::Mint, Job::Ingest, Job::Decoys, Job::Boundary];

    pub fn name(self) -> &'static str {
        match self {
            Job::Bootstrap => "bootstrap",
            Job::Mint => "mint",
            Job::Ingest => "ingest",
            Job::Decoys => "decoys",
            Job::Boundary => "boundary",
        }
    }

    pub fn parse(name: &str) -> Option<Job> {
        Job::ALL.into_iter().find(|j| j.name() == name)
    }

    /// The policy document for these names.
    pub fn policy(self, c: &BootstrapConfig) -> Value {
        match self {
            Job::Bootstrap => bootstrap(c),
            Job::Mint => mint(c),
            Job::Ingest => ingest(c),
            Job::Decoys => decoys(c),
            Job::Boundary => serde_json::from_str(crate::DENY_ALL_POLICY).unwrap_or_default(),
        }
    }
}

struct Arns<'a> {
    c: &'a BootstrapConfig,
    p: &'static str,
}

impl Arns<'_> {
    fn iam(&self, what: &str) -> String {
        format!("arn:{}:iam::{}:{what}", self.p, self.c.account)
    }
    fn boundary(&self) -> String {
        boundary_arn(self.c)
    }
    fn users(&self) -> String {
        self.iam("user/*")
    }
    fn bucket(&self) -> String {
        format!("arn:{}:s3:::{}", self.p, self.c.bucket)
    }
    fn queue(&self, name: &str) -> String {
        format!("arn:{}:sqs:{}:{}:{name}", self.p, self.c.region, self.c.account)
    }
    fn queues(&self) -> Vec<String> {
        let mut out = Vec::new();
        for q in [&self.c.notifications_queue, &self.c.events_queue] {
            out.push(self.queue(q));
            out.push(self.queue(&dead_letter_queue(q)));
        }
        out
    }
    fn trail(&self) -> String {
        trail_arn(self.c)
    }
    /// Both rules, in every region.
    fn rules(&self) -> Vec<String> {
        [&self.c.rule, &exposure_rule(self.c)]
            .iter()
            .map(|r| format!("arn:{}:events:*:{}:rule/{r}", self.p, self.c.account))
            .collect()
    }
    fn home_bus(&self) -> String {
        home_bus_arn(self.c)
    }
    fn forwarder(&self) -> String {
        forwarder_arn(self.c)
    }
    fn group(&self) -> String {
        self.iam(&format!("group/{}", self.c.deny_group))
    }
    fn session_role(&self) -> String {
        self.iam(&format!("role/{}", self.c.session_role))
    }
}

fn allow(sid: &str, actions: &[&str], resources: Value) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources})
}

/// What no runtime identity may do: anything that would blind detection or
/// hand out a role. Explicit, so it holds even if a broader policy is
/// attached to the same role later.
fn never_blind_detection() -> Value {
    json!({"Sid": "NeverBlindDetection", "Effect": "Deny",
        "Action": ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail",
                   "cloudtrail:PutEventSelectors", "cloudtrail:PutInsightSelectors",
                   "events:DisableRule", "events:DeleteRule", "events:PutRule", "events:PutTargets", "events:RemoveTargets",
                   "s3:PutBucketNotification", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutLifecycleConfiguration",
                   "s3:DeleteObject", "s3:DeleteBucket",
                   "sqs:SetQueueAttributes", "sqs:DeleteQueue", "sqs:PurgeQueue", "sqs:RemovePermission", "sqs:AddPermission",
                   "iam:CreateRole", "iam:DeleteRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy",
                   "iam:UpdateAssumeRolePolicy", "iam:PassRole"],
        "Resource": "*"})
}

/// What the mint identity may never do to the boundary that keeps honey
/// users powerless, nor to get around it.
fn keep_the_boundary() -> Value {
    json!({"Sid": "KeepTheBoundary", "Effect": "Deny",
        "Action": ["iam:DeleteUserPermissionsBoundary", "iam:PutUserPermissionsBoundary",
                   "iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
                   "iam:SetDefaultPolicyVersion", "iam:AttachUserPolicy", "iam:AttachGroupPolicy",
                   "iam:CreateLoginProfile", "iam:UpdateLoginProfile"],
        "Resource": "*"})
}

fn mint(c: &BootstrapConfig) -> Value {
    let a = Arns { c, p: partition(&c.region) };
    let bounded = json!({"StringEquals": {"iam:PermissionsBoundary": a.boundary()}});
    json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "CreateOnlyBoundedUsers", "Effect": "Allow", "Action": ["iam:CreateUser"],
         "Resource": a.users(), "Condition": bounded},
        {"Sid": "PoliciesOnlyOnBoundedUsers", "Effect": "Allow",
         "Action": ["iam:PutUserPolicy", "iam:DeleteUserPolicy", "iam:DetachUserPolicy"],
         "Resource": a.users(), "Condition": bounded},
        allow("HoneyKeys", &["iam:GetUser", "iam:DeleteUser", "iam:CreateAccessKey", "iam:DeleteAccessKey",
            "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:ListUserPolicies", "iam:GetUserPolicy", "iam:ListGroupsForUser",
            "iam:ListAttachedUserPolicies", "iam:DeleteLoginProfile", "iam:ListMFADevices", "iam:DeactivateMFADevice",
            "iam:ListSigningCertificates", "iam:DeleteSigningCertificate", "iam:ListSSHPublicKeys",
            "iam:DeleteSSHPublicKey", "iam:ListServiceSpecificCredentials", "iam:DeleteServiceSpecificCredential"],
            json!(a.users())),
        allow("TheGuardGroupOnly", &["iam:GetGroup", "iam:CreateGroup", "iam:PutGroupPolicy", "iam:AddUserToGroup",
            "iam:RemoveUserFromGroup"], json!(a.group())),
        allow("ReadTheBoundary", &["iam:GetPolicy", "iam:GetPolicyVersion"], json!(a.boundary())),
        // Session canaries: check the honey role is still one, and start its
        // sessions (they can do nothing: the role denies everything, and
        // this identity may not change the role).
        allow("SessionCanaries", &["iam:GetRole", "iam:GetRolePolicy", "sts:AssumeRole"], json!(a.session_role())),
        keep_the_boundary(),
        never_blind_detection(),
    ]})
}

fn ingest(c: &BootstrapConfig) -> Value {
    let a = Arns { c, p: partition(&c.region) };
    json!({"Version": "2012-10-17", "Statement": [
        allow("ReadTheQueues", &["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage",
            "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"], json!(a.queues())),
        allow("ListTheLogBucket", &["s3:ListBucket"], json!(a.bucket())),
        allow("ReadTheLogFiles", &["s3:GetObject"], json!(format!("{}/AWSLogs/{}/*", a.bucket(), c.account))),
        allow("SafetyNet", &["iam:GetAccessKeyLastUsed"], json!(a.users())),
        allow("SafetyNetReport", &["iam:GenerateCredentialReport", "iam:GetCredentialReport"], json!("*")),
        never_blind_detection(),
    ]})
}

/// What is detection's own among what the decoys job may touch by wildcard.
fn detections_own(a: &Arns<'_>) -> Vec<String> {
    let mut out = vec![a.bucket(), format!("{}/*", a.bucket())];
    out.extend(a.queues());
    out.extend([a.forwarder(), a.session_role()]);
    out
}

/// Decoy names are made up, so the decoys job reaches resources of its
/// kinds by wildcard; what keeps it from the rest is a Deny of everything
/// that is detection's own (the log bucket and its objects, the queues, the
/// trail and its selectors, the rules, the forwarding and session roles, the
/// boundary), and the boundary condition on every role it makes or whose
/// inline policies it changes: a role made with this policy can do nothing,
/// whatever policy it is given.
fn decoys(c: &BootstrapConfig) -> Value {
    let a = Arns { c, p: partition(&c.region) };
    let (p, region, account) = (a.p, &c.region, &c.account);
    let bounded = json!({"StringEquals": {"iam:PermissionsBoundary": a.boundary()}});
    json!({"Version": "2012-10-17", "Statement": [
        allow("Identity", &["sts:GetCallerIdentity"], json!("*")),
        allow("DecoyBuckets", &["s3:CreateBucket", "s3:PutBucketPublicAccessBlock", "s3:ListBucket", "s3:PutObject",
            "s3:DeleteObject", "s3:DeleteBucket"], json!(format!("arn:{p}:s3:::*"))),
        allow("DecoyParameters", &["ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter"],
            json!(format!("arn:{p}:ssm:{region}:{account}:parameter/*"))),
        allow("DecoySecrets", &["secretsmanager:CreateSecret", "secretsmanager:DescribeSecret",
            "secretsmanager:DeleteSecret"], json!(format!("arn:{p}:secretsmanager:{region}:{account}:secret:*"))),
        allow("DecoyTables", &["dynamodb:CreateTable", "dynamodb:DescribeTable", "dynamodb:PutItem",
            "dynamodb:DeleteTable"], json!(format!("arn:{p}:dynamodb:{region}:{account}:table/*"))),
        allow("DecoyQueues", &["sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:DeleteQueue"],
            json!(format!("arn:{p}:sqs:{region}:{account}:*"))),
        {"Sid": "DecoyRolesOnlyBounded", "Effect": "Allow",
         "Action": ["iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy"],
         "Resource": a.iam("role/*"), "Condition": bounded},
        allow("DecoyRoles", &["iam:GetRole", "iam:ListRolePolicies", "iam:DeleteRole"], json!(a.iam("role/*"))),
        {"Sid": "KeepDetectionsOwn", "Effect": "Deny",
         "Action": ["s3:DeleteBucket", "s3:DeleteObject", "s3:PutObject", "s3:PutBucketPublicAccessBlock",
                    "sqs:DeleteQueue", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:PutRolePolicy", "iam:CreateRole"],
         "Resource": detections_own(&a)},
        {"Sid": "NeverBlindDetection", "Effect": "Deny",
         "Action": ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail",
                    "cloudtrail:PutEventSelectors", "cloudtrail:PutInsightSelectors",
                    "events:DisableRule", "events:DeleteRule", "events:PutRule", "events:PutTargets", "events:RemoveTargets",
                    "s3:PutBucketNotification", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutLifecycleConfiguration",
                    "sqs:SetQueueAttributes", "sqs:PurgeQueue", "sqs:RemovePermission", "sqs:AddPermission",
                    "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PassRole",
                    "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary"],
         "Resource": "*"},
        keep_the_boundary(),
    ]})
}

fn bootstrap(c: &BootstrapConfig) -> Value {
    let a = Arns { c, p: partition(&c.region) };
    json!({"Version": "2012-10-17", "Statement": [
        allow("Identity", &["sts:GetCallerIdentity", "ec2:DescribeRegions", "cloudtrail:DescribeTrails"], json!("*")),
        allow("LogBucket", &["s3:CreateBucket", "s3:ListBucket", "s3:GetBucketPolicy", "s3:PutBucketPolicy",
            "s3:GetBucketNotification", "s3:PutBucketNotification"], json!(a.bucket())),
        allow("Queues", &["sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes"],
            json!(a.queues())),
        allow("Trail", &["cloudtrail:CreateTrail", "cloudtrail:UpdateTrail", "cloudtrail:GetTrailStatus",
            "cloudtrail:GetEventSelectors", "cloudtrail:PutEventSelectors", "cloudtrail:StartLogging"], json!(a.trail())),
        allow("Rules", &["events:PutRule", "events:DescribeRule", "events:PutTargets", "events:ListTargetsByRule"],
            json!(a.rules())),
        allow("ForwardingRole", &["iam:CreateRole", "iam:GetRole", "iam:PutRolePolicy", "iam:GetRolePolicy",
            "iam:UpdateAssumeRolePolicy"], json!(a.forwarder())),
        {"Sid": "PassOnlyTheForwardingRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": a.forwarder(),
         "Condition": {"StringEquals": {"iam:PassedToService": "events.amazonaws.com"}}},
        allow("GuardGroup", &["iam:GetGroup", "iam:CreateGroup", "iam:GetGroupPolicy", "iam:PutGroupPolicy"],
            json!(a.group())),
        allow("Boundary", &["iam:GetPolicy", "iam:GetPolicyVersion", "iam:CreatePolicy", "iam:CreatePolicyVersion",
            "iam:ListPolicyVersions", "iam:DeletePolicyVersion"], json!(a.boundary())),
        allow("SessionRole", &["iam:CreateRole", "iam:GetRole", "iam:PutRolePolicy", "iam:GetRolePolicy",
            "iam:DeleteRole"], json!(a.session_role())),
    ]})
}

/// The policy the forwarding role carries: put events on the home bus only.
pub fn forwarder_policy(c: &BootstrapConfig) -> Value {
    let a = Arns { c, p: partition(&c.region) };
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": a.home_bus()}
    ]})
}

/// Who may assume the forwarding role: EventBridge, for this account's rules.
pub fn forwarder_trust(c: &BootstrapConfig) -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:SourceAccount": c.account}}}
    ]})
}

//! The IAM policies of bootstrap, mint and ingest: valid, the same as in
//! `docs/policies/`, sufficient for each job and nothing more.
//!
//! Two checks, because neither alone is the real thing:
//! - an evaluator of IAM's documented logic (explicit Deny wins, then an
//!   Allow whose Action, Resource and Condition all match; a condition on a
//!   key the request does not carry does not match), run on the exact ARNs
//!   and condition keys of the requests honeytrail makes and of an attacker's;
//! - moto's server with IAM enforcement on, where each job runs for real as
//!   an identity holding only its policy. moto checks actions for every
//!   service but resources only for S3 and existing SQS queues, and ignores
//!   conditions, so there the IAM, CloudTrail, EventBridge, EC2, STS and SQS
//!   resources are widened to `*` (documented in docs/aws.md).

use honeytrail_aws::bootstrap::{BootstrapConfig, Item, Status};
use honeytrail_aws::policies::Job;
use honeytrail_aws::{AwsSettings, CanaryAccount, DenyGuard, MintSpec};
use honeytrail_core::Secret;
use honeytrail_testkit::{aws_cli, Moto};
use serde_json::{json, Value};

fn config(account: &str) -> BootstrapConfig {
    BootstrapConfig {
        account: account.into(),
        region: "us-east-1".into(),
        bucket: format!("cloudtrail-{account}-us-east-1"),
        trail: "account-trail".into(),
        notifications_queue: "cloudtrail-log-files".into(),
        events_queue: "cloudtrail-api-calls".into(),
        rule: "cloudtrail-api-calls".into(),
        deny_group: "service-accounts".into(),
        deny_policy: "baseline".into(),
        boundary: "baseline-boundary".into(),
        regions: vec!["eu-west-1".into(), "us-east-1".into()],
        forwarder_role: "cloudtrail-api-calls-forwarder".into(),
        session_role: "app-instance-role".into(),
        decoys: Vec::new(),
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Decision {
    Allow,
    ImplicitDeny,
    ExplicitDeny,
}

fn glob(pattern: &str, text: &str, fold_case: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if fold_case {
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

fn values(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn condition_matches(condition: &Value, context: &[(&str, &str)]) -> bool {
    let Some(operators) = condition.as_object() else { return true };
    operators.iter().all(|(operator, keys)| {
        keys.as_object().unwrap().iter().all(|(key, expected)| {
            let actual = context.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| *v);
            let expected = values(expected);
            match (operator.as_str(), actual) {
                ("StringEquals" | "ArnEquals", Some(a)) => expected.iter().any(|e| e == a),
                ("StringLike" | "ArnLike", Some(a)) => expected.iter().any(|e| glob(e, a, false)),
                ("StringNotEquals", Some(a)) => expected.iter().all(|e| e != a),
                ("StringNotEquals", None) => true,
                (_, None) => false,
                (other, _) => panic!("the evaluator does not know the operator {other}"),
            }
        })
    })
}

/// IAM's evaluation of one identity policy for one request.
fn evaluate(policy: &Value, action: &str, resource: &str, context: &[(&str, &str)]) -> Decision {
    let mut allowed = false;
    for s in policy["Statement"].as_array().unwrap() {
        let action_matches = match (s.get("Action"), s.get("NotAction")) {
            (Some(a), _) => values(a).iter().any(|p| glob(p, action, true)),
            (None, Some(n)) => !values(n).iter().any(|p| glob(p, action, true)),
            _ => false,
        };
        let resource_matches = match (s.get("Resource"), s.get("NotResource")) {
            (Some(r), _) => values(r).iter().any(|p| glob(p, resource, false)),
            (None, Some(n)) => !values(n).iter().any(|p| glob(p, resource, false)),
            _ => false,
        };
        let applies = action_matches
            && resource_matches
            && s.get("Condition").map(|c| condition_matches(c, context)).unwrap_or(true);
        if applies && s["Effect"] == "Deny" {
            return Decision::ExplicitDeny;
        }
        allowed |= applies && s["Effect"] == "Allow";
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

const A: &str = "123456789012";
const BOUNDARY: &str = "arn:aws:iam::123456789012:policy/baseline-boundary";

fn user(name: &str) -> String {
    format!("arn:aws:iam::{A}:user/{name}")
}

#[test]
fn the_evaluator_follows_iams_rules() {
    let p = json!({"Statement": [
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Action": "s3:GetObjectAcl", "Resource": "*"},
        {"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*", "Condition": {"StringEquals": {"iam:PermissionsBoundary": "x"}}}
    ]});
    assert_eq!(evaluate(&p, "s3:GetObject", "arn:aws:s3:::b/k", &[]), Decision::Allow);
    assert_eq!(evaluate(&p, "S3:getobject", "arn:aws:s3:::b/k", &[]), Decision::Allow, "actions ignore case");
    assert_eq!(evaluate(&p, "s3:GetObject", "arn:aws:s3:::c/k", &[]), Decision::ImplicitDeny);
    assert_eq!(evaluate(&p, "s3:GetObjectAcl", "arn:aws:s3:::b/k", &[]), Decision::ExplicitDeny);
    assert_eq!(evaluate(&p, "iam:CreateUser", "u", &[]), Decision::ImplicitDeny, "an absent key never matches");
    assert_eq!(evaluate(&p, "iam:CreateUser", "u", &[("iam:PermissionsBoundary", "x")]), Decision::Allow);
}

#[test]
fn the_mint_policy_mints_and_retires_only_bounded_users() {
    let p = Job::Mint.policy(&config(A));
    let bounded = [("iam:PermissionsBoundary", BOUNDARY)];
    let u = user("payments-s3-sync-prod");
    // What mint and retire call, with the context IAM gives those calls.
    for action in ["iam:CreateUser", "iam:PutUserPolicy", "iam:DeleteUserPolicy", "iam:DetachUserPolicy"] {
        assert_eq!(evaluate(&p, action, &u, &bounded), Decision::Allow, "{action}");
    }
    for action in [
        "iam:GetUser",
        "iam:CreateAccessKey",
        "iam:DeleteAccessKey",
        "iam:ListAccessKeys",
        "iam:ListUserPolicies",
        "iam:GetUserPolicy",
        "iam:ListGroupsForUser",
        "iam:ListAttachedUserPolicies",
        "iam:DeleteLoginProfile",
        "iam:ListMFADevices",
        "iam:DeactivateMFADevice",
        "iam:ListSigningCertificates",
        "iam:DeleteSigningCertificate",
        "iam:ListSSHPublicKeys",
        "iam:DeleteSSHPublicKey",
        "iam:ListServiceSpecificCredentials",
        "iam:DeleteServiceSpecificCredential",
        "iam:DeleteUser",
    ] {
        assert_eq!(evaluate(&p, action, &u, &bounded), Decision::Allow, "{action}");
    }
    let group = format!("arn:aws:iam::{A}:group/service-accounts");
    for action in
        ["iam:GetGroup", "iam:CreateGroup", "iam:PutGroupPolicy", "iam:AddUserToGroup", "iam:RemoveUserFromGroup"]
    {
        assert_eq!(evaluate(&p, action, &group, &[]), Decision::Allow, "{action}");
    }
    for action in ["iam:GetPolicy", "iam:GetPolicyVersion"] {
        assert_eq!(evaluate(&p, action, BOUNDARY, &[]), Decision::Allow, "{action}");
    }
    let session_role = format!("arn:aws:iam::{A}:role/app-instance-role");
    for action in ["iam:GetRole", "iam:GetRolePolicy", "sts:AssumeRole"] {
        assert_eq!(evaluate(&p, action, &session_role, &[]), Decision::Allow, "{action}");
    }

    // What whoever steals the mint identity's credentials tries.
    let denied = |action: &str, resource: &str, context: &[(&str, &str)]| {
        let d = evaluate(&p, action, resource, context);
        assert_ne!(d, Decision::Allow, "{action} on {resource} with {context:?} must be denied");
        d
    };
    denied("iam:CreateUser", &user("backdoor"), &[]);
    denied(
        "iam:CreateUser",
        &user("backdoor"),
        &[("iam:PermissionsBoundary", "arn:aws:iam::aws:policy/AdministratorAccess")],
    );
    denied("iam:PutUserPolicy", &user("ops-admin"), &[]);
    denied(
        "iam:PutUserPolicy",
        &user("ops-admin"),
        &[("iam:PermissionsBoundary", "arn:aws:iam::123456789012:policy/other")],
    );
    for action in ["iam:DeleteUserPermissionsBoundary", "iam:PutUserPermissionsBoundary"] {
        assert_eq!(denied(action, &u, &bounded), Decision::ExplicitDeny, "{action}");
    }
    for action in ["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy", "iam:CreatePolicy"] {
        assert_eq!(denied(action, BOUNDARY, &[]), Decision::ExplicitDeny, "{action}");
    }
    denied("iam:AttachUserPolicy", &u, &bounded);
    denied("iam:CreateLoginProfile", &u, &bounded);
    denied("iam:AddUserToGroup", &format!("arn:aws:iam::{A}:group/Admins"), &[]);
    denied("iam:PutGroupPolicy", &format!("arn:aws:iam::{A}:group/Admins"), &[]);
    denied("iam:CreateRole", &format!("arn:aws:iam::{A}:role/x"), &[]);
    denied("iam:PassRole", &format!("arn:aws:iam::{A}:role/x"), &[]);
    denied("sts:AssumeRole", &format!("arn:aws:iam::{A}:role/x"), &[]);
    // The honey role stays one: its policy and trust are not the mint identity's to change.
    for action in ["iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"] {
        assert_eq!(denied(action, &session_role, &[]), Decision::ExplicitDeny, "{action}");
    }
    for (action, resource) in blinding() {
        assert_eq!(denied(action, &resource, &[]), Decision::ExplicitDeny, "{action}");
    }
}

#[test]
fn the_decoys_policy_makes_decoys_and_touches_nothing_of_detection() {
    let p = Job::Decoys.policy(&config(A));
    let bounded = [("iam:PermissionsBoundary", BOUNDARY)];
    let role = format!("arn:aws:iam::{A}:role/ledger-exports-reader");
    for (action, resource) in [
        ("s3:CreateBucket", "arn:aws:s3:::acme-ledger-exports".to_string()),
        ("s3:PutBucketPublicAccessBlock", "arn:aws:s3:::acme-ledger-exports".into()),
        ("s3:PutObject", "arn:aws:s3:::acme-ledger-exports/2026/export.csv".into()),
        ("s3:DeleteObject", "arn:aws:s3:::acme-ledger-exports/README.md".into()),
        ("s3:DeleteBucket", "arn:aws:s3:::acme-ledger-exports".into()),
        ("ssm:PutParameter", format!("arn:aws:ssm:us-east-1:{A}:parameter/prod/ledger/db-password")),
        (
            "secretsmanager:CreateSecret",
            format!("arn:aws:secretsmanager:us-east-1:{A}:secret:prod/ledger/postgres-AbCdEf"),
        ),
        ("dynamodb:CreateTable", format!("arn:aws:dynamodb:us-east-1:{A}:table/ledger-sessions")),
        ("dynamodb:PutItem", format!("arn:aws:dynamodb:us-east-1:{A}:table/ledger-sessions")),
        ("sqs:CreateQueue", format!("arn:aws:sqs:us-east-1:{A}:ledger-jobs")),
        ("sqs:DeleteQueue", format!("arn:aws:sqs:us-east-1:{A}:ledger-jobs")),
        ("iam:GetRole", role.clone()),
        ("iam:DeleteRole", role.clone()),
    ] {
        assert_eq!(evaluate(&p, action, &resource, &[]), Decision::Allow, "{action} on {resource}");
    }
    for action in ["iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy"] {
        assert_eq!(evaluate(&p, action, &role, &bounded), Decision::Allow, "{action} with the boundary");
        assert_ne!(evaluate(&p, action, &role, &[]), Decision::Allow, "{action} without the boundary");
        let other = [("iam:PermissionsBoundary", "arn:aws:iam::aws:policy/AdministratorAccess")];
        assert_ne!(evaluate(&p, action, &role, &other), Decision::Allow, "{action} with another boundary");
    }
    // Detection's own, even where the wildcards reach.
    let c = config(A);
    let bucket = format!("arn:aws:s3:::{}", c.bucket);
    let mut own = vec![
        ("s3:DeleteBucket", bucket.clone()),
        ("s3:PutObject", format!("{bucket}/AWSLogs/{A}/CloudTrail/us-east-1/2026/12/07/forged.json.gz")),
        ("s3:DeleteObject", format!("{bucket}/AWSLogs/{A}/CloudTrail/us-east-1/2026/12/07/real.json.gz")),
        ("s3:PutBucketPublicAccessBlock", bucket),
        ("sqs:DeleteQueue", format!("arn:aws:sqs:us-east-1:{A}:cloudtrail-log-files")),
        ("sqs:DeleteQueue", format!("arn:aws:sqs:us-east-1:{A}:cloudtrail-api-calls-dead-letters")),
        ("iam:DeleteRole", format!("arn:aws:iam::{A}:role/cloudtrail-api-calls-forwarder")),
        ("iam:DeleteRolePolicy", format!("arn:aws:iam::{A}:role/app-instance-role")),
        ("iam:PutRolePolicy", format!("arn:aws:iam::{A}:role/app-instance-role")),
        ("iam:AttachRolePolicy", role.clone()),
        ("iam:PassRole", role.clone()),
        ("iam:PutRolePermissionsBoundary", role.clone()),
        ("iam:DeleteRolePermissionsBoundary", role),
        ("iam:CreatePolicyVersion", BOUNDARY.to_string()),
    ];
    own.extend(blinding());
    for (action, resource) in own {
        assert_eq!(evaluate(&p, action, &resource, &bounded), Decision::ExplicitDeny, "{action} on {resource}");
    }
    for (action, resource) in [("iam:CreateUser", user("x")), ("iam:CreateAccessKey", user("x"))] {
        assert_ne!(evaluate(&p, action, &resource, &bounded), Decision::Allow, "{action}");
    }
}

/// Calls that would blind detection, on the resources bootstrap made.
fn blinding() -> Vec<(&'static str, String)> {
    let trail = format!("arn:aws:cloudtrail:us-east-1:{A}:trail/account-trail");
    let rule = format!("arn:aws:events:eu-west-1:{A}:rule/cloudtrail-api-calls");
    let queue = format!("arn:aws:sqs:us-east-1:{A}:cloudtrail-api-calls");
    let bucket = format!("arn:aws:s3:::cloudtrail-{A}-us-east-1");
    vec![
        ("cloudtrail:StopLogging", trail.clone()),
        ("cloudtrail:UpdateTrail", trail.clone()),
        ("cloudtrail:DeleteTrail", trail.clone()),
        ("cloudtrail:PutEventSelectors", trail),
        ("events:DisableRule", rule.clone()),
        ("events:PutRule", rule.clone()),
        ("events:RemoveTargets", rule.clone()),
        ("events:DeleteRule", rule),
        ("sqs:SetQueueAttributes", queue.clone()),
        ("sqs:PurgeQueue", queue.clone()),
        ("sqs:DeleteQueue", queue),
        ("s3:PutBucketNotification", bucket.clone()),
        ("s3:PutBucketPolicy", bucket.clone()),
        ("s3:DeleteObject", format!("{bucket}/AWSLogs/{A}/CloudTrail/x.json.gz")),
    ]
}

#[test]
fn the_ingest_policy_reads_the_queues_and_logs_and_nothing_else() {
    let p = Job::Ingest.policy(&config(A));
    let queue = format!("arn:aws:sqs:us-east-1:{A}:cloudtrail-log-files");
    for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"] {
        assert_eq!(evaluate(&p, action, &queue, &[]), Decision::Allow, "{action}");
    }
    let dead_letters = format!("arn:aws:sqs:us-east-1:{A}:cloudtrail-api-calls-dead-letters");
    assert_eq!(evaluate(&p, "sqs:GetQueueAttributes", &dead_letters, &[]), Decision::Allow);
    let log = format!("arn:aws:s3:::cloudtrail-{A}-us-east-1/AWSLogs/{A}/CloudTrail/us-east-1/2026/12/02/f.json.gz");
    assert_eq!(evaluate(&p, "s3:GetObject", &log, &[]), Decision::Allow);
    assert_eq!(evaluate(&p, "s3:ListBucket", &format!("arn:aws:s3:::cloudtrail-{A}-us-east-1"), &[]), Decision::Allow);
    assert_eq!(evaluate(&p, "iam:GetAccessKeyLastUsed", &user("payments-s3-sync-prod"), &[]), Decision::Allow);
    for action in ["iam:GenerateCredentialReport", "iam:GetCredentialReport"] {
        assert_eq!(evaluate(&p, action, "*", &[]), Decision::Allow, "{action}");
    }

    for (action, resource) in [
        ("s3:GetObject", "arn:aws:s3:::customer-data/export.csv".to_string()),
        ("sqs:ReceiveMessage", format!("arn:aws:sqs:us-east-1:{A}:payments-jobs")),
        ("sqs:SendMessage", queue.clone()),
        ("iam:CreateUser", user("backdoor")),
        ("iam:CreateAccessKey", user("ops-admin")),
        ("iam:PutUserPolicy", user("ops-admin")),
        ("sts:AssumeRole", format!("arn:aws:iam::{A}:role/x")),
    ] {
        assert_ne!(evaluate(&p, action, &resource, &[]), Decision::Allow, "{action} on {resource}");
    }
    for (action, resource) in blinding() {
        assert_eq!(evaluate(&p, action, &resource, &[]), Decision::ExplicitDeny, "{action}");
    }
}

#[test]
fn the_bootstrap_policy_covers_every_item_in_every_region() {
    let c = config(A);
    let p = Job::Bootstrap.policy(&c);
    let bucket = format!("arn:aws:s3:::{}", c.bucket);
    let trail = format!("arn:aws:cloudtrail:us-east-1:{A}:trail/account-trail");
    let mut wanted: Vec<(&str, String)> = vec![
        ("sts:GetCallerIdentity", "*".into()),
        ("ec2:DescribeRegions", "*".into()),
        ("cloudtrail:DescribeTrails", "*".into()),
        ("s3:CreateBucket", bucket.clone()),
        ("s3:ListBucket", bucket.clone()),
        ("s3:GetBucketPolicy", bucket.clone()),
        ("s3:PutBucketPolicy", bucket.clone()),
        ("s3:GetBucketNotification", bucket.clone()),
        ("s3:PutBucketNotification", bucket),
        ("cloudtrail:CreateTrail", trail.clone()),
        ("cloudtrail:UpdateTrail", trail.clone()),
        ("cloudtrail:PutEventSelectors", trail.clone()),
        ("cloudtrail:GetEventSelectors", trail.clone()),
        ("cloudtrail:GetTrailStatus", trail.clone()),
        ("cloudtrail:StartLogging", trail),
        ("iam:CreateRole", format!("arn:aws:iam::{A}:role/cloudtrail-api-calls-forwarder")),
        ("iam:PutRolePolicy", format!("arn:aws:iam::{A}:role/cloudtrail-api-calls-forwarder")),
        ("iam:CreateRole", format!("arn:aws:iam::{A}:role/app-instance-role")),
        ("iam:PutRolePolicy", format!("arn:aws:iam::{A}:role/app-instance-role")),
        ("iam:GetRolePolicy", format!("arn:aws:iam::{A}:role/app-instance-role")),
        ("iam:CreatePolicy", BOUNDARY.into()),
        ("iam:CreatePolicyVersion", BOUNDARY.into()),
        ("iam:PutGroupPolicy", format!("arn:aws:iam::{A}:group/service-accounts")),
    ];
    for q in ["cloudtrail-log-files", "cloudtrail-api-calls", "cloudtrail-log-files-dead-letters"] {
        for action in ["sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes"] {
            wanted.push((action, format!("arn:aws:sqs:us-east-1:{A}:{q}")));
        }
    }
    for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
        for rule in ["cloudtrail-api-calls", "cloudtrail-api-calls-exposures"] {
            for action in ["events:PutRule", "events:DescribeRule", "events:PutTargets", "events:ListTargetsByRule"] {
                wanted.push((action, format!("arn:aws:events:{region}:{A}:rule/{rule}")));
            }
        }
    }
    for (action, resource) in &wanted {
        assert_eq!(evaluate(&p, action, resource, &[]), Decision::Allow, "{action} on {resource}");
    }
    let role = format!("arn:aws:iam::{A}:role/cloudtrail-api-calls-forwarder");
    assert_eq!(
        evaluate(&p, "iam:PassRole", &role, &[("iam:PassedToService", "events.amazonaws.com")]),
        Decision::Allow
    );
    assert_ne!(evaluate(&p, "iam:PassRole", &role, &[("iam:PassedToService", "ec2.amazonaws.com")]), Decision::Allow);
    // Bootstrap makes the plumbing, not users, keys or other roles.
    for (action, resource) in [
        ("iam:CreateUser", user("x")),
        ("iam:CreateAccessKey", user("x")),
        ("iam:CreateRole", format!("arn:aws:iam::{A}:role/admin")),
        ("iam:PassRole", format!("arn:aws:iam::{A}:role/admin")),
        ("iam:CreatePolicy", format!("arn:aws:iam::{A}:policy/admin")),
        ("s3:GetObject", format!("arn:aws:s3:::cloudtrail-{A}-us-east-1/AWSLogs/{A}/x")),
        ("cloudtrail:StopLogging", format!("arn:aws:cloudtrail:us-east-1:{A}:trail/account-trail")),
        ("cloudtrail:DeleteTrail", format!("arn:aws:cloudtrail:us-east-1:{A}:trail/account-trail")),
    ] {
        assert_ne!(evaluate(&p, action, &resource, &[]), Decision::Allow, "{action} on {resource}");
    }
}

/// `docs/policies/*.json` are these policies with `${account_id}` for the
/// account (Terraform's `templatefile` fills it in). Regenerate with
/// `HONEYTRAIL_WRITE_POLICIES=1 cargo test -p honeytrail-aws --test policies`.
#[test]
fn the_documented_policies_are_the_ones_honeytrail_uses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policies");
    let c = config("${account_id}");
    for job in Job::ALL {
        let text = serde_json::to_string_pretty(&job.policy(&c)).unwrap() + "\n";
        let path = dir.join(format!("{}.json", job.name()));
        if std::env::var_os("HONEYTRAIL_WRITE_POLICIES").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let documented = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(documented, text, "{} is stale: regenerate it (see this test's doc)", path.display());
        let parsed: Value = serde_json::from_str(&documented).unwrap();
        assert_eq!(parsed["Version"], "2012-10-17");
        let size = serde_json::to_string(&job.policy(&config(A))).unwrap().len();
        assert!(size < 6144, "{}: {size} characters, over IAM's managed-policy limit", job.name());
        for s in parsed["Statement"].as_array().unwrap() {
            assert!(s["Effect"] == "Allow" || s["Effect"] == "Deny", "{s}");
            assert!(s.get("Action").is_some() && s.get("Resource").is_some(), "{s}");
        }
    }
}

/// moto checks resources only for S3 and for SQS queues that exist; for
/// the rest it asks about `*`. This widens what it cannot check. moto also
/// asks for `s3:HeadBucket` where AWS asks for `s3:ListBucket`.
fn for_moto(policy: &Value) -> String {
    let mut p = policy.clone();
    for s in p["Statement"].as_array_mut().unwrap() {
        let actions = values(&s["Action"]);
        let s3_only = actions.iter().all(|a| a.starts_with("s3:"));
        if s["Effect"] == "Allow" && !s3_only {
            s["Resource"] = json!("*");
        }
        if actions.iter().any(|a| a == "s3:ListBucket") {
            let mut with_head = actions.clone();
            with_head.push("s3:HeadBucket".into());
            s["Action"] = json!(with_head);
        }
    }
    p.to_string()
}

fn settings(moto: &Moto, key: &(String, String)) -> AwsSettings {
    AwsSettings {
        endpoint: Some(moto.endpoint.clone()),
        region: Some("us-east-1".into()),
        profile: None,
        static_credentials: Some((key.0.clone(), Secret::new(&key.1))),
        role_arn: None,
    }
}

fn identity(moto: &Moto, admin: &(String, String), name: &str, policy: &str) -> (String, String) {
    let run = |args: &[&str]| {
        let (ok, out, err) = aws_cli(&moto.endpoint, &admin.0, &admin.1, args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    run(&["iam", "create-user", "--user-name", name]);
    run(&["iam", "put-user-policy", "--user-name", name, "--policy-name", "job", "--policy-document", policy]);
    let v: Value = serde_json::from_str(&run(&["iam", "create-access-key", "--user-name", name])).unwrap();
    (v["AccessKey"]["AccessKeyId"].as_str().unwrap().into(), v["AccessKey"]["SecretAccessKey"].as_str().unwrap().into())
}

#[tokio::test]
async fn with_iam_enforced_each_job_runs_on_its_own_policy_and_no_further() {
    let moto = Moto::start();
    moto.enforce_iam_after(4);
    let admin = {
        let boot = ("bootstrap".to_string(), "bootstrap".to_string());
        identity(
            &moto,
            &boot,
            "break-glass",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
    };
    let c = config(A);
    let bootstrapper = identity(&moto, &admin, "setup", &for_moto(&Job::Bootstrap.policy(&c)));
    let minter = identity(&moto, &admin, "minter", &for_moto(&Job::Mint.policy(&c)));
    let reader = identity(&moto, &admin, "reader", &for_moto(&Job::Ingest.policy(&c)));
    let decoyer = identity(&moto, &admin, "decoyer", &for_moto(&Job::Decoys.policy(&c)));

    // The ingest identity cannot even read most of the setup: verify says
    // so item by item, and bootstrap changes nothing it cannot read.
    let as_reader = CanaryAccount::connect(&settings(&moto, &reader)).await;
    let before = as_reader.verify(&c).await.unwrap();
    assert!(
        before
            .iter()
            .any(|r| matches!(&r.status, Status::Unreadable(why) if why.contains("cloudtrail:DescribeTrails"))),
        "{before:?}"
    );
    // No decoys are registered, so there is nothing of them to read.
    assert!(
        before.iter().all(|r| r.status != Status::Ok || matches!(r.item, Item::ForwarderRole | Item::Decoys)),
        "{before:?}"
    );
    let (ok, out, _) = aws_cli(&moto.endpoint, &admin.0, &admin.1, &["s3api", "list-buckets"]);
    assert!(ok && !out.contains(&c.bucket), "nothing was created: {out}");

    // Bootstrap, on its own policy: everything, in both regions.
    let as_bootstrap = CanaryAccount::connect(&settings(&moto, &bootstrapper)).await;
    let made = as_bootstrap.bootstrap(&c, false).await.unwrap();
    let after = as_bootstrap.verify(&c).await.unwrap();
    assert!(after.iter().all(|r| r.status == Status::Ok), "{made:?}\n{after:?}");
    let (ok, out, err) = aws_cli(
        &moto.endpoint,
        &admin.0,
        &admin.1,
        &["events", "describe-rule", "--name", "cloudtrail-api-calls-exposures", "--region", "eu-west-1"],
    );
    assert!(ok && out.contains("ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"), "{out}{err}");
    // Only the regions asked for: none in us-west-2.
    let (ok, _, err) = aws_cli(
        &moto.endpoint,
        &admin.0,
        &admin.1,
        &["events", "describe-rule", "--name", "cloudtrail-api-calls", "--region", "us-west-2"],
    );
    assert!(!ok && err.contains("ResourceNotFound"), "{err}");

    // Mint and retire, on the mint policy: a guarded user under the boundary.
    let as_minter = CanaryAccount::connect(&settings(&moto, &minter)).await;
    let guard = DenyGuard::Group { group_name: "service-accounts".into(), policy_name: "baseline".into() };
    let spec = MintSpec { user_name: "payments-s3-sync-prod".into(), guard, boundary: "baseline-boundary".into() };
    let key = as_minter.mint(&spec).await.unwrap();
    // And a session canary's session, of the honey role bootstrap made.
    // moto compares a trust policy's principal with the caller's ARN
    // exactly, where AWS lets the account's root stand for every identity
    // of the account that is allowed sts:AssumeRole: the trust names the
    // minter here, as moto needs.
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{A}:user/minter")}, "Action": "sts:AssumeRole"}]});
    let (ok, _, err) = aws_cli(
        &moto.endpoint,
        &admin.0,
        &admin.1,
        &["iam", "update-assume-role-policy", "--role-name", &c.session_role, "--policy-document", &trust.to_string()],
    );
    assert!(ok, "{err}");
    let role = as_minter.ensure_session_role(&c.session_role).await.unwrap();
    let session = as_minter.start_session(&role, "i-0a1b2c3d4e5f67890", 3600).await.unwrap();
    assert!(session.assumed_role_arn.ends_with(":assumed-role/app-instance-role/i-0a1b2c3d4e5f67890"), "{session:?}");
    as_minter.delete_key(&spec.user_name, &key.access_key_id).await.unwrap();
    assert!(as_minter.delete_user_if_unused(&spec.user_name).await.unwrap());
    let minter_may_not = [
        vec!["cloudtrail", "stop-logging", "--name", "account-trail"],
        vec!["cloudtrail", "update-trail", "--name", "account-trail", "--no-is-multi-region-trail"],
        vec!["events", "disable-rule", "--name", "cloudtrail-api-calls"],
        vec!["iam", "create-role", "--role-name", "x", "--assume-role-policy-document", "{}"],
        vec![
            "iam",
            "put-role-policy",
            "--role-name",
            "app-instance-role",
            "--policy-name",
            "default",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        ],
        vec!["iam", "create-policy-version", "--policy-arn", BOUNDARY, "--policy-document", "{}", "--set-as-default"],
        vec!["iam", "delete-user-permissions-boundary", "--user-name", "setup"],
        vec!["sqs", "purge-queue", "--queue-url", "cloudtrail-api-calls"],
    ];
    for args in &minter_may_not {
        let (ok, _, err) = aws_cli(&moto.endpoint, &minter.0, &minter.1, args);
        assert!(!ok && err.contains("AccessDenied"), "{args:?} must be denied to the mint identity: {err}");
    }

    // Decoys, on the decoys policy: one of each kind made and removed (the
    // role with the boundary), and nothing of detection's touched.
    let as_decoyer = CanaryAccount::connect(&settings(&moto, &decoyer)).await;
    let kinds = [
        (honeytrail_core::decoy::DecoyKind::S3Bucket, "acme-ledger-exports"),
        (honeytrail_core::decoy::DecoyKind::SsmParameter, "/prod/ledger/db-password"),
        (honeytrail_core::decoy::DecoyKind::Secret, "prod/ledger/postgres"),
        (honeytrail_core::decoy::DecoyKind::DynamodbTable, "ledger-sessions"),
        (honeytrail_core::decoy::DecoyKind::SqsQueue, "ledger-jobs"),
        (honeytrail_core::decoy::DecoyKind::IamRole, "ledger-exports-reader"),
    ];
    for (kind, name) in kinds {
        as_decoyer.create_decoy(kind, name, "baseline-boundary").await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let (ok, role, _) =
        aws_cli(&moto.endpoint, &admin.0, &admin.1, &["iam", "get-role", "--role-name", "ledger-exports-reader"]);
    assert!(ok && role.contains(BOUNDARY), "a decoy role carries the boundary: {role}");
    for (kind, name) in kinds {
        as_decoyer.delete_decoy(kind, name).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let decoyer_may_not = [
        vec!["s3api", "delete-bucket", "--bucket", &c.bucket],
        vec!["sqs", "delete-queue", "--queue-url", "cloudtrail-log-files"],
        vec!["iam", "delete-role", "--role-name", "cloudtrail-api-calls-forwarder"],
        vec!["cloudtrail", "stop-logging", "--name", "account-trail"],
        vec!["cloudtrail", "put-event-selectors", "--trail-name", "account-trail", "--event-selectors", "[]"],
    ];
    // A role without the boundary is refused by the policy's condition,
    // which moto does not evaluate (it knows no iam:PermissionsBoundary of
    // a request): the_decoys_policy_makes_decoys_and_touches_nothing_of_detection
    // checks it with IAM's rules.
    for args in &decoyer_may_not {
        let (ok, _, err) = aws_cli(&moto.endpoint, &decoyer.0, &decoyer.1, args);
        assert!(!ok && err.contains("AccessDenied"), "{args:?} must be denied to the decoys identity: {err}");
    }

    // Ingest: the queues and the log files, and nothing that changes anything.
    let url = as_reader.queue_url("cloudtrail-log-files").await.unwrap();
    as_reader.receive(&url, 0).await.unwrap();
    // And the safety net's reads: IAM's credential report, every user in one document.
    let report = as_reader.credential_report().await.unwrap().expect("moto makes the report at once");
    assert!(report.users.contains_key("setup"), "{report:?}");
    let reader_may_not = [
        vec!["iam", "create-user", "--user-name", "backdoor"],
        vec!["events", "put-rule", "--name", "cloudtrail-api-calls", "--event-pattern", "{\"source\":[\"none\"]}"],
        vec!["cloudtrail", "stop-logging", "--name", "account-trail"],
        vec![
            "s3api",
            "put-bucket-notification-configuration",
            "--bucket",
            &c.bucket,
            "--notification-configuration",
            "{}",
        ],
    ];
    for args in &reader_may_not {
        let (ok, _, err) = aws_cli(&moto.endpoint, &reader.0, &reader.1, args);
        assert!(!ok && err.contains("AccessDenied"), "{args:?} must be denied to the ingest identity: {err}");
    }
    // Another bucket's objects are out of reach; the log bucket's are not.
    let admin_cli = |args: &[&str]| {
        let (ok, _, err) = aws_cli(&moto.endpoint, &admin.0, &admin.1, args);
        assert!(ok, "{args:?}: {err}");
    };
    let body = std::env::temp_dir().join(format!("ht-policies-{}", std::process::id()));
    std::fs::write(&body, "{}").unwrap();
    let body_arg = body.to_str().unwrap();
    admin_cli(&["s3api", "create-bucket", "--bucket", "customer-data"]);
    admin_cli(&["s3api", "put-object", "--bucket", "customer-data", "--key", "export.json", "--body", body_arg]);
    let log = format!("AWSLogs/{A}/CloudTrail/us-east-1/2026/12/02/f.json");
    admin_cli(&["s3api", "put-object", "--bucket", &c.bucket, "--key", &log, "--body", body_arg]);
    std::fs::remove_file(&body).ok();
    assert!(as_reader.get_object(&c.bucket, &log).await.is_ok());
    let err = as_reader.get_object("customer-data", "export.json").await.unwrap_err();
    assert!(matches!(err, honeytrail_aws::AwsError::AccessDenied { .. }), "another bucket: {err}");
}

/// The role actions assume in each target account (`docs/policies/respond.json`,
/// see docs/actions.md): every call the responder names in its errors is
/// allowed on the ARNs it uses, and nothing else: no policy but AWS's
/// deny-all attached, no user deleted, no instance stopped.
#[test]
fn the_respond_policy_allows_every_call_the_responder_makes_and_no_more() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("../../docs/policies/respond.json")).unwrap()).unwrap();
    let source = std::fs::read_to_string(root.join("src/response.rs")).unwrap();
    let calls: Vec<&str> = source.split("fail(\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    assert!(calls.len() >= 10, "{calls:?}");
    let deny_all = [("iam:PolicyARN", honeytrail_aws::response::DENY_ALL_POLICY_ARN)];
    for call in &calls {
        let resource = match call.split(':').next() {
            Some("ec2") => "*".to_string(),
            _ if call.contains("Role") => format!("arn:aws:iam::{A}:role/ci-deployer"),
            _ => user("maria"),
        };
        let context: &[(&str, &str)] =
            if call.ends_with("UserPolicy") || call.ends_with("RolePolicy") { &deny_all } else { &[] };
        assert_eq!(evaluate(&policy, call, &resource, context), Decision::Allow, "{call} on {resource}");
    }
    let admin = [("iam:PolicyARN", "arn:aws:iam::aws:policy/AdministratorAccess")];
    for (call, context) in [
        ("iam:AttachUserPolicy", &admin[..]),
        ("iam:AttachRolePolicy", &admin[..]),
        ("iam:DetachUserPolicy", &admin[..]),
        ("iam:DeleteUser", &[][..]),
        ("iam:DeleteAccessKey", &[][..]),
        ("iam:CreateAccessKey", &[][..]),
        ("ec2:TerminateInstances", &[][..]),
        ("ec2:StopInstances", &[][..]),
        ("sts:AssumeRole", &[][..]),
    ] {
        assert_eq!(evaluate(&policy, call, &user("maria"), context), Decision::ImplicitDeny, "{call}");
    }
    let trust: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("../../docs/policies/respond-trust.json")).unwrap())
            .unwrap();
    assert_eq!(trust["Statement"][0]["Action"], "sts:AssumeRole");
}

//! Minting and retiring against a real IAM API (moto's server), checked from
//! the outside with the `aws` CLI, the way an operator or an intruder sees it.

use honeytrail_aws::{AwsError, AwsSettings, CanaryAccount, DenyGuard, MintSpec};
use honeytrail_core::decoy::DecoyKind;
use honeytrail_core::Secret;
use honeytrail_testkit::{aws_cli, Moto};

fn settings(moto: &Moto, key: &str, secret: &str) -> AwsSettings {
    AwsSettings {
        endpoint: Some(moto.endpoint.clone()),
        region: Some("us-east-1".into()),
        profile: None,
        static_credentials: Some((key.into(), Secret::new(secret))),
        role_arn: None,
    }
}

const BOUNDARY: &str = "baseline-boundary";

fn inline() -> DenyGuard {
    DenyGuard::Inline { policy_name: "baseline".into() }
}

/// Creates an IAM user with `policy` and returns its key pair, using `admin`.
fn user_with_policy(moto: &Moto, admin: (&str, &str), name: &str, policy: &str) -> (String, String) {
    let (ok, _, err) = aws_cli(&moto.endpoint, admin.0, admin.1, &["iam", "create-user", "--user-name", name]);
    assert!(ok, "{err}");
    let (ok, _, err) = aws_cli(
        &moto.endpoint,
        admin.0,
        admin.1,
        &["iam", "put-user-policy", "--user-name", name, "--policy-name", "p", "--policy-document", policy],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = aws_cli(&moto.endpoint, admin.0, admin.1, &["iam", "create-access-key", "--user-name", name]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (v["AccessKey"]["AccessKeyId"].as_str().unwrap().into(), v["AccessKey"]["SecretAccessKey"].as_str().unwrap().into())
}

const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

#[tokio::test]
async fn mint_creates_a_guarded_user_that_an_intruder_can_only_identify() {
    let moto = Moto::start();
    // From the 4th call on, moto enforces IAM policies as AWS does.
    moto.enforce_iam_after(3);
    let admin = user_with_policy(&moto, ("bootstrap", "bootstrap"), "ops-admin", ALLOW_ALL);
    let account = CanaryAccount::connect(&settings(&moto, &admin.0, &admin.1)).await;
    assert_eq!(account.identity().await.unwrap().account, "123456789012");

    let key = account
        .mint(&MintSpec { user_name: "payments-s3-sync-prod".into(), guard: inline(), boundary: BOUNDARY.into() })
        .await
        .unwrap();
    assert_eq!(key.user_arn, "arn:aws:iam::123456789012:user/payments-s3-sync-prod");
    assert_eq!(key.account_id.as_deref(), Some("123456789012"));

    // The operator's view: the user sits at path /, with the deny-all inline policy and the key.
    let (ok, out, err) =
        aws_cli(&moto.endpoint, &admin.0, &admin.1, &["iam", "get-user", "--user-name", "payments-s3-sync-prod"]);
    assert!(ok, "{err}");
    assert!(out.contains(r#""Path": "/""#), "{out}");
    let (ok, out, err) = aws_cli(
        &moto.endpoint,
        &admin.0,
        &admin.1,
        &["iam", "get-user-policy", "--user-name", "payments-s3-sync-prod", "--policy-name", "baseline"],
    );
    assert!(ok, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stmt = &doc["PolicyDocument"]["Statement"][0];
    assert_eq!(
        (stmt["Effect"].as_str(), stmt["Action"].as_str(), stmt["Resource"].as_str()),
        (Some("Deny"), Some("*"), Some("*"))
    );
    let (ok, out, _) = aws_cli(
        &moto.endpoint,
        &admin.0,
        &admin.1,
        &["iam", "list-access-keys", "--user-name", "payments-s3-sync-prod"],
    );
    assert!(ok && out.contains(&key.access_key_id), "{out}");

    // The intruder's view: get-caller-identity works and shows the name; anything else is denied.
    let secret = key.secret_access_key.expose();
    let (ok, out, err) = aws_cli(&moto.endpoint, &key.access_key_id, secret, &["sts", "get-caller-identity"]);
    assert!(ok, "{err}");
    assert!(out.contains("user/payments-s3-sync-prod"), "{out}");
    let (ok, _, err) = aws_cli(&moto.endpoint, &key.access_key_id, secret, &["ec2", "describe-instances"]);
    assert!(!ok && (err.contains("AccessDenied") || err.contains("UnauthorizedOperation")), "{err}");

    // Retire: the key goes, then the user with its policy.
    account.delete_key("payments-s3-sync-prod", &key.access_key_id).await.unwrap();
    assert!(account.delete_user_if_unused("payments-s3-sync-prod").await.unwrap());
    let (ok, _, err) =
        aws_cli(&moto.endpoint, &admin.0, &admin.1, &["iam", "get-user", "--user-name", "payments-s3-sync-prod"]);
    assert!(!ok && err.contains("NoSuchEntity"), "{err}");
    // Deleting again is harmless.
    account.delete_key("payments-s3-sync-prod", &key.access_key_id).await.unwrap();
    assert!(account.delete_user_if_unused("payments-s3-sync-prod").await.unwrap());
}

#[tokio::test]
async fn two_keys_per_user_and_the_user_stays_while_one_is_left() {
    let moto = Moto::start();
    let account = CanaryAccount::connect(&settings(&moto, "testing", "testing")).await;
    let first = account
        .mint(&MintSpec { user_name: "data-etl-reader-stg".into(), guard: inline(), boundary: BOUNDARY.into() })
        .await
        .unwrap();
    let second = account.add_key("data-etl-reader-stg").await.unwrap();
    assert_ne!(first.access_key_id, second.access_key_id);
    account.delete_key("data-etl-reader-stg", &first.access_key_id).await.unwrap();
    assert!(!account.delete_user_if_unused("data-etl-reader-stg").await.unwrap(), "one key is left");
    account.delete_key("data-etl-reader-stg", &second.access_key_id).await.unwrap();
    assert!(account.delete_user_if_unused("data-etl-reader-stg").await.unwrap());
}

#[tokio::test]
async fn group_guard_creates_the_group_once() {
    let moto = Moto::start();
    let account = CanaryAccount::connect(&settings(&moto, "testing", "testing")).await;
    let guard = DenyGuard::Group { group_name: "service-accounts".into(), policy_name: "baseline".into() };
    account
        .mint(&MintSpec { user_name: "ml-glue-worker-prod".into(), guard: guard.clone(), boundary: BOUNDARY.into() })
        .await
        .unwrap();
    account
        .mint(&MintSpec { user_name: "ml-glue-writer-prod".into(), guard, boundary: BOUNDARY.into() })
        .await
        .unwrap();
    let (ok, out, err) =
        aws_cli(&moto.endpoint, "testing", "testing", &["iam", "get-group", "--group-name", "service-accounts"]);
    assert!(ok, "{err}");
    assert!(out.contains("ml-glue-worker-prod") && out.contains("ml-glue-writer-prod"), "{out}");
    let (ok, out, _) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["iam", "get-group-policy", "--group-name", "service-accounts", "--policy-name", "baseline"],
    );
    assert!(ok && out.contains("Deny"), "{out}");
}

#[tokio::test]
async fn a_mint_that_fails_half_way_leaves_nothing_behind() {
    let moto = Moto::start();
    moto.enforce_iam_after(6);
    let admin = user_with_policy(&moto, ("bootstrap", "bootstrap"), "ops-admin", ALLOW_ALL);
    // The minting identity may do everything but create access keys.
    let limited = user_with_policy(
        &moto,
        (&admin.0, &admin.1),
        "ci-minter",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"iam:CreateAccessKey","Resource":"*"}]}"#,
    );
    let account = CanaryAccount::connect(&settings(&moto, &limited.0, &limited.1)).await;
    let err = account
        .mint(&MintSpec { user_name: "web-ecr-uploader-live".into(), guard: inline(), boundary: BOUNDARY.into() })
        .await
        .unwrap_err();
    assert!(matches!(err, AwsError::AccessDenied { op: "iam:CreateAccessKey", .. }), "{err:?}");
    assert!(err.to_string().contains("iam:CreateAccessKey"), "{err}");
    let (ok, out, err) = aws_cli(&moto.endpoint, &admin.0, &admin.1, &["iam", "list-users"]);
    assert!(ok, "{err}");
    assert!(!out.contains("web-ecr-uploader-live"), "the half-made user was removed: {out}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_named() {
    let port = honeytrail_testkit::dead_port();
    let settings = AwsSettings {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        static_credentials: Some(("testing".into(), Secret::new("testing"))),
        ..AwsSettings::default()
    };
    let account = CanaryAccount::connect(&settings).await;
    let err = account
        .mint(&MintSpec { user_name: "ops-backup-sync-dr".into(), guard: inline(), boundary: BOUNDARY.into() })
        .await
        .unwrap_err();
    assert!(matches!(err, AwsError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[tokio::test]
async fn telltale_names_are_refused_before_any_call() {
    let settings = AwsSettings { endpoint: Some("http://127.0.0.1:9".into()), ..AwsSettings::default() };
    let account = CanaryAccount::connect(&settings).await;
    let err = account
        .mint(&MintSpec { user_name: "honeytoken-1".into(), guard: inline(), boundary: BOUNDARY.into() })
        .await
        .unwrap_err();
    assert!(matches!(err, AwsError::Refused(_)), "{err:?}");
}

/// AWS quarantines a user whose key it found published by attaching
/// `AWSCompromisedKeyQuarantineV2`; `DeleteUser` refuses while any managed
/// policy (or a console password, MFA device, certificate, SSH key) is
/// left. Retiring such a user still removes it.
#[tokio::test]
async fn a_quarantined_user_is_still_deleted() {
    let moto = Moto::start();
    let account = CanaryAccount::connect(&settings(&moto, "testing", "testing")).await;
    let user = "billing-export-sync-prod";
    let key =
        account.mint(&MintSpec { user_name: user.into(), guard: inline(), boundary: BOUNDARY.into() }).await.unwrap();
    // moto's server holds no AWS-managed policies unless told to: the same
    // policy, as a managed policy of the account, blocks DeleteUser alike.
    let quarantine = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
    let (ok, _, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["iam", "create-policy", "--policy-name", "AWSCompromisedKeyQuarantineV2", "--policy-document", quarantine],
    );
    assert!(ok, "{err}");
    for args in [
        vec![
            "iam",
            "attach-user-policy",
            "--user-name",
            user,
            "--policy-arn",
            "arn:aws:iam::123456789012:policy/AWSCompromisedKeyQuarantineV2",
        ],
        vec!["iam", "create-login-profile", "--user-name", user, "--password", "An-unused-console-password-1"],
    ] {
        let (ok, _, err) = aws_cli(&moto.endpoint, "testing", "testing", &args);
        assert!(ok, "{args:?}: {err}");
    }
    account.delete_key(user, &key.access_key_id).await.unwrap();
    assert!(account.delete_user_if_unused(user).await.unwrap());
    let (ok, _, err) = aws_cli(&moto.endpoint, "testing", "testing", &["iam", "get-user", "--user-name", user]);
    assert!(!ok && err.contains("NoSuchEntity"), "the user is gone: {err}");
}

/// Every honey user gets the deny-all boundary: minting under a boundary
/// policy that allows anything is refused before any user is created.
#[tokio::test]
async fn a_boundary_that_allows_anything_stops_minting() {
    let moto = Moto::start();
    let account = CanaryAccount::connect(&settings(&moto, "testing", "testing")).await;
    let (ok, _, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["iam", "create-policy", "--policy-name", BOUNDARY, "--policy-document", ALLOW_ALL],
    );
    assert!(ok, "{err}");
    let err = account
        .mint(&MintSpec { user_name: "ops-report-sync-prod".into(), guard: inline(), boundary: BOUNDARY.into() })
        .await
        .unwrap_err();
    assert!(matches!(err, AwsError::Refused(_)) && err.to_string().contains("allows something"), "{err}");
    let (ok, out, _) = aws_cli(&moto.endpoint, "testing", "testing", &["iam", "list-users"]);
    assert!(ok && !out.contains("ops-report-sync-prod"), "{out}");
}

/// A decoy is never made over something that exists (one of honeytrail's own
/// queues, a real secret): the call is refused and the thing left alone. A
/// new name is made, and deleted again.
#[tokio::test]
async fn a_decoy_is_never_made_over_an_existing_resource() {
    let moto = Moto::start();
    let aws = CanaryAccount::connect(&settings(&moto, "testing", "testing")).await;
    let cli = |args: &[&str]| {
        let (ok, _, err) = aws_cli(&moto.endpoint, "testing", "testing", args);
        assert!(ok, "{args:?}: {err}");
    };
    cli(&["sqs", "create-queue", "--queue-name", "cloudtrail-log-files"]);
    cli(&["secretsmanager", "create-secret", "--name", "prod/app/db", "--secret-string", "real"]);
    for (kind, name) in [(DecoyKind::SqsQueue, "cloudtrail-log-files"), (DecoyKind::Secret, "prod/app/db")] {
        let err = aws.create_decoy(kind, name, "baseline-boundary").await.unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(aws.decoy_exists(kind, name).await.unwrap(), "{name} is left alone");
    }
    let arn = aws.create_decoy(DecoyKind::SqsQueue, "ledger-jobs-prod", "baseline-boundary").await.unwrap();
    assert!(arn.ends_with(":ledger-jobs-prod"), "{arn}");
    aws.delete_decoy(DecoyKind::SqsQueue, "ledger-jobs-prod").await.unwrap();
    assert!(!aws.decoy_exists(DecoyKind::SqsQueue, "ledger-jobs-prod").await.unwrap());
    aws.delete_decoy(DecoyKind::SqsQueue, "ledger-jobs-prod").await.unwrap();
}

/// The honey role is made once, with its deny, and hands out `ASIA…`
/// sessions known by their assumed-role ARN; a real role of the same name
/// (no deny) is refused, never used.
#[tokio::test]
async fn the_session_role_hands_out_sessions_and_a_real_role_is_never_used() {
    let moto = Moto::start();
    let aws = CanaryAccount::connect(&settings(&moto, "testing", "testing")).await;
    let arn = aws.ensure_session_role("app-instance-role").await.unwrap();
    assert_eq!(arn, "arn:aws:iam::123456789012:role/app-instance-role");
    assert_eq!(aws.ensure_session_role("app-instance-role").await.unwrap(), arn, "found again, not made twice");
    let (ok, policy, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["iam", "get-role-policy", "--role-name", "app-instance-role", "--policy-name", "default"],
    );
    assert!(ok && policy.contains("Deny"), "{policy}{err}");
    let session = aws.start_session(&arn, "i-0a1b2c3d4e5f67890", 3600).await.unwrap();
    assert!(session.access_key_id.starts_with("ASIA"), "{session:?}");
    assert_eq!(
        session.assumed_role_arn,
        "arn:aws:sts::123456789012:assumed-role/app-instance-role/i-0a1b2c3d4e5f67890"
    );
    assert!(!session.session_token.is_empty() && session.expiration > chrono::Utc::now());
    assert!(!format!("{session:?}").contains(&session.secret_access_key), "no secret in debug output");
    // Somebody's real role of the configured name: refused, so its sessions never become bait.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (ok, _, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["iam", "create-role", "--role-name", "web-prod", "--assume-role-policy-document", trust],
    );
    assert!(ok, "{err}");
    let refused = aws.ensure_session_role("web-prod").await.unwrap_err();
    assert!(refused.to_string().contains("not a honey role"), "{refused}");
    let bad = aws.ensure_session_role("honeytoken-role").await.unwrap_err();
    assert!(bad.to_string().contains("honey"), "a tell-tale name is refused: {bad}");
}

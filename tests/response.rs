//! Automated response end to end: actions against moto's EC2 and IAM through
//! roles assumed per account, undo with its exact-state checks, and the
//! safety rules (grace cancelled by a false-positive mark, approval, dry
//! run, own networks, the rate limit) with local command and webhook actions.

use std::process::Stdio;

mod common;
use common::*;
use honeytrail_testkit::Moto;

const CANARY: &str = "123456789012";
const SECOND: &str = "222222222222";

fn key(n: u64) -> String {
    honeytrail_core::keyid::synthesize(123456789012, 1000 + n)
}

/// Runs honeytrail with extra environment variables.
fn run_env(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = env.command(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A token placed as `args` say, and one call with it: incident N opens.
fn placed_and_used(env: &Env, n: u64, placement: &[&str]) -> String {
    let k = key(n);
    env.run(&["token", "import", "aws", "--access-key-id", &k, "--user-name", "svc-reader"]).ok();
    let mut args = vec!["placement", "add", &k, "--host", "web-1", "--path", "/root/.aws/credentials"];
    args.extend_from_slice(placement);
    env.run(&args).ok();
    let record = trail_record(
        &k,
        "svc-reader",
        &format!("ev-{n}"),
        "2026-11-30T10:00:00Z",
        "sts.amazonaws.com",
        "GetCallerIdentity",
        None,
    );
    ingest_records(env, vec![record]);
    k
}

fn runs(env: &Env) -> Vec<serde_json::Value> {
    env.run(&["action", "runs", "--json"]).ok().json().as_array().unwrap().clone()
}

fn run_of(env: &Env, incident: i64, action: &str) -> serde_json::Value {
    runs(env)
        .into_iter()
        .find(|r| r["incident_id"] == incident && r["action"] == action)
        .unwrap_or_else(|| panic!("no run of {action} on incident #{incident}: {:?}", runs(env)))
}

fn history(env: &Env, incident: i64) -> String {
    let record = env.run(&["incident", "show", &incident.to_string(), "--json"]).ok().json();
    record["history"].as_array().unwrap().iter().map(|h| format!("{}\n", h["note"].as_str().unwrap_or(""))).collect()
}

fn aws(moto: &Moto, creds: (&str, &str, Option<&str>), args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = honeytrail_testkit::aws_cli_session(&moto.endpoint, creds, args);
    assert!(ok, "aws {args:?}: {err}");
    if out.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&out).unwrap()
    }
}

const OPERATOR: (&str, &str, Option<&str>) = ("testing", "testing", None);

fn groups(moto: &Moto, instance: &str) -> Vec<String> {
    let d = aws(moto, OPERATOR, &["ec2", "describe-instances", "--instance-ids", instance]);
    d["Reservations"][0]["Instances"][0]["SecurityGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["GroupId"].as_str().unwrap().to_string())
        .collect()
}

fn group(moto: &Moto, vpc: &str, name: &str) -> String {
    let g = aws(
        moto,
        OPERATOR,
        &["ec2", "create-security-group", "--group-name", name, "--description", name, "--vpc-id", vpc],
    );
    g["GroupId"].as_str().unwrap().to_string()
}

#[test]
fn quarantine_replaces_the_groups_and_undo_restores_them_exactly_or_says_why_not() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let vpc = aws(&moto, OPERATOR, &["ec2", "describe-vpcs"])["Vpcs"][0]["VpcId"].as_str().unwrap().to_string();
    let subnet = aws(&moto, OPERATOR, &["ec2", "describe-subnets", "--filters", &format!("Name=vpc-id,Values={vpc}")])
        ["Subnets"][0]["SubnetId"]
        .as_str()
        .unwrap()
        .to_string();
    let (web, ssh, quarantine) =
        (group(&moto, &vpc, "web"), group(&moto, &vpc, "ssh"), group(&moto, &vpc, "quarantine"));
    let image = aws(&moto, OPERATOR, &["ec2", "describe-images", "--owners", "amazon"])["Images"][0]["ImageId"]
        .as_str()
        .unwrap()
        .to_string();
    let instance = aws(
        &moto,
        OPERATOR,
        &[
            "ec2",
            "run-instances",
            "--image-id",
            &image,
            "--count",
            "1",
            "--subnet-id",
            &subnet,
            "--security-group-ids",
            &web,
            &ssh,
        ],
    )["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap()
        .to_string();
    let before = groups(&moto, &instance);
    assert_eq!(before, [web.clone(), ssh.clone()]);

    // Placement fields are checked: a malformed instance ID is refused by name.
    let k0 = key(0);
    env.run(&["token", "import", "aws", "--access-key-id", &k0]).ok();
    let bad =
        env.run(&["placement", "add", &k0, "--host", "h", "--path", "/p", "--instance-id", "i-\u{1b}[2Jnope"]).fails();
    assert!(bad.stderr.contains("not an EC2 instance ID") && !bad.stderr.contains('\u{1b}'), "{}", bad.stderr);

    // Without a role for the account, nothing runs with honeytrail's own credentials.
    let role = format!("arn:aws:iam::{CANARY}:role/honeytrail-responder");
    let refused = env.run(&["action", "add", "isolate", "--kind", "quarantine-ec2", "--mode", "automatic"]).fails();
    assert!(refused.stderr.contains("--quarantine-group"), "{}", refused.stderr);
    env.run(&[
        "action",
        "add",
        "isolate",
        "--kind",
        "quarantine-ec2",
        "--mode",
        "automatic",
        "--quarantine-group",
        &quarantine,
        "--role-arn",
        &role,
    ])
    .ok();
    let jsonl = env.dir.path().join("alerts.jsonl");
    env.run(&["channel", "add", "jsonl", "siem", "--path", jsonl.to_str().unwrap()]).ok();

    // The key placed on the instance is used: the incident opens and the quarantine runs.
    placed_and_used(&env, 1, &["--instance-id", &instance, "--aws-account", CANARY]);
    let pass = env.run(&["action", "pass", "--json"]).ok().json();
    assert_eq!((pass["started"].as_u64(), pass["done"].as_u64()), (Some(1), Some(1)), "{pass}");
    assert_eq!(groups(&moto, &instance), std::slice::from_ref(&quarantine), "the instance is isolated");
    let run = run_of(&env, 1, "isolate");
    assert_eq!(run["state"], "done", "{run}");
    assert!(run["output"].as_str().unwrap().contains(&web), "{run}");
    let timeline = history(&env, 1);
    assert!(timeline.contains("isolate done on instance") && timeline.contains(&quarantine), "{timeline}");
    // A second pass does not run it again.
    env.run(&["action", "pass"]).ok();
    assert_eq!(runs(&env).len(), 1);

    // Undo restores exactly the groups before.
    let id = run["id"].to_string();
    let undone = env.run(&["action", "undo", &id]).ok();
    assert!(undone.stdout.contains("undone"), "{}", undone.stdout);
    assert_eq!(groups(&moto, &instance), before, "the very groups, in their order");
    assert_eq!(run_of(&env, 1, "isolate")["state"], "undone");
    assert!(history(&env, 1).contains("isolate undone by alice"));

    // A second incident on the same instance; meanwhile someone changes its groups by hand.
    placed_and_used(&env, 2, &["--instance-id", &instance, "--aws-account", CANARY]);
    env.run(&["action", "pass"]).ok();
    assert_eq!(groups(&moto, &instance), std::slice::from_ref(&quarantine));
    aws(&moto, OPERATOR, &["ec2", "modify-instance-attribute", "--instance-id", &instance, "--groups", &ssh]);
    let second = run_of(&env, 2, "isolate")["id"].to_string();
    let out = env.run(&["action", "undo", &second]).fails();
    assert!(out.stderr.contains("changed meanwhile") && out.stderr.contains(&ssh), "{}", out.stderr);
    assert_eq!(groups(&moto, &instance), std::slice::from_ref(&ssh), "the responder's change is kept");
    assert_eq!(run_of(&env, 2, "isolate")["state"], "undo-failed");
    // The instance is terminated: undo says it is gone.
    aws(&moto, OPERATOR, &["ec2", "terminate-instances", "--instance-ids", &instance]);
    let out = env.run(&["action", "undo", &second]).fails();
    assert!(out.stderr.contains("is gone"), "{}", out.stderr);

    // A quarantine whose target is gone fails, on the timeline and alerted.
    placed_and_used(&env, 3, &["--instance-id", "i-0123456789abcdef0", "--aws-account", CANARY]);
    let pass = env.run(&["action", "pass", "--json"]).ok().json();
    assert_eq!(pass["failed"].as_u64(), Some(1), "{pass}");
    let failed = run_of(&env, 3, "isolate");
    assert_eq!(failed["state"], "failed");
    assert!(failed["reason"].as_str().unwrap().contains("is gone"), "{failed}");
    assert!(history(&env, 3).contains("isolate failed"));
    env.run(&["deliver", "--once"]).ok();
    let alerts: Vec<serde_json::Value> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let failure = alerts
        .iter()
        .find(|a| a["alert"]["kind"] == "incident.action" && a["incident"]["id"] == 3)
        .expect("the failure is alerted");
    assert!(failure["history"].to_string().contains("isolate failed"), "{failure}");
    // Every run is in the audit log.
    let audit = env.run(&["audit", "list", "--json"]).ok().stdout;
    assert!(
        audit.contains("action.done") && audit.contains("action.failed") && audit.contains("action.undo"),
        "{audit}"
    );
}

#[test]
fn keys_and_policies_change_only_in_the_targets_account_through_its_role() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    // Credentials in the second account, as its own admins would have.
    let assumed = aws(
        &moto,
        OPERATOR,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &format!("arn:aws:iam::{SECOND}:role/admin"),
            "--role-session-name",
            "setup",
        ],
    );
    let c = &assumed["Credentials"];
    let second = (
        c["AccessKeyId"].as_str().unwrap().to_string(),
        c["SecretAccessKey"].as_str().unwrap().to_string(),
        c["SessionToken"].as_str().unwrap().to_string(),
    );
    let in_second = (second.0.as_str(), second.1.as_str(), Some(second.2.as_str()));
    // maria exists in both accounts; only the second is hers to cut.
    for creds in [OPERATOR, in_second] {
        aws(&moto, creds, &["iam", "create-user", "--user-name", "maria"]);
    }
    let active = aws(&moto, in_second, &["iam", "create-access-key", "--user-name", "maria"])["AccessKey"]
        ["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let old = aws(&moto, in_second, &["iam", "create-access-key", "--user-name", "maria"])["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    aws(
        &moto,
        in_second,
        &["iam", "update-access-key", "--user-name", "maria", "--access-key-id", &old, "--status", "Inactive"],
    );
    let canary_key = aws(&moto, OPERATOR, &["iam", "create-access-key", "--user-name", "maria"])["AccessKey"]
        ["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let deny = aws(
        &moto,
        in_second,
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "deny-all",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        ],
    )["Policy"]["Arn"]
        .as_str()
        .unwrap()
        .to_string();
    let status = |creds, key: &str| -> String {
        let keys = aws(&moto, creds, &["iam", "list-access-keys", "--user-name", "maria"]);
        keys["AccessKeyMetadata"].as_array().unwrap().iter().find(|k| k["AccessKeyId"] == key).unwrap()["Status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let roles = format!("{SECOND}=arn:aws:iam::{SECOND}:role/honeytrail-responder");
    let vars = [("HONEYTRAIL_ACTIONS_ROLES", roles.as_str())];
    run_env(&env, &vars, &["action", "add", "cut", "--kind", "deactivate-keys", "--mode", "automatic"]).ok();
    run_env(
        &env,
        &vars,
        &["action", "add", "deny", "--kind", "deny-policy", "--mode", "automatic", "--policy-arn", &deny],
    )
    .ok();

    placed_and_used(&env, 1, &["--iam-user", "maria", "--aws-account", SECOND, "--owner", "Maria Lopez"]);
    let pass = run_env(&env, &vars, &["action", "pass", "--json"]).ok().json();
    assert_eq!(pass["done"].as_u64(), Some(2), "{pass}");
    assert_eq!(status(in_second, &active), "Inactive", "her key in the second account is cut");
    assert_eq!(status(in_second, &old), "Inactive");
    assert_eq!(status(OPERATOR, &canary_key), "Active", "the canary account's maria is untouched");
    let attached = aws(&moto, in_second, &["iam", "list-attached-user-policies", "--user-name", "maria"]);
    assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], deny.as_str());

    // Undo turns back on only the key it turned off, and detaches the policy.
    let cut = run_of(&env, 1, "cut")["id"].to_string();
    run_env(&env, &vars, &["action", "undo", &cut]).ok();
    assert_eq!(status(in_second, &active), "Active");
    assert_eq!(status(in_second, &old), "Inactive", "a key that was off before stays off");
    let deny_run = run_of(&env, 1, "deny")["id"].to_string();
    run_env(&env, &vars, &["action", "undo", &deny_run]).ok();
    let attached = aws(&moto, in_second, &["iam", "list-attached-user-policies", "--user-name", "maria"]);
    assert_eq!(attached["AttachedPolicies"].as_array().unwrap().len(), 0);
    let timeline = history(&env, 1);
    assert!(timeline.contains(&format!("deactivated {active}")) && timeline.contains("reactivated"), "{timeline}");

    // An account with no role configured: refused, never the canary's own credentials.
    placed_and_used(&env, 2, &["--iam-user", "maria", "--aws-account", "333333333333"]);
    run_env(&env, &vars, &["action", "pass"]).ok();
    let failed = run_of(&env, 2, "cut");
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["reason"].as_str().unwrap().contains("no role to assume in account 333333333333"), "{failed}");
    assert_eq!(status(OPERATOR, &canary_key), "Active");
}

/// A command action that keeps the record it gets on stdin.
fn recorder(env: &Env, name: &str, mode: &str, extra: &[&str]) -> std::path::PathBuf {
    let dir = env.dir.path().join(format!("ran-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!("cat > {}/run-$HONEYTRAIL_ACTION_RUN.json; echo \"kept $HONEYTRAIL_INCIDENT\"", dir.display());
    let mut args = vec![
        "action",
        "add",
        name,
        "--kind",
        "command",
        "--mode",
        mode,
        "--command",
        "/bin/sh",
        "--arg",
        "-c",
        "--arg",
        &script,
    ];
    args.extend_from_slice(extra);
    env.run(&args).ok();
    dir
}

fn ran(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn grace_approval_and_dry_run_do_what_they_promise() {
    let env = Env::new();
    let grace = recorder(&env, "grace", "grace:2s", &[]);
    placed_and_used(&env, 1, &[]);
    placed_and_used(&env, 2, &[]);
    env.run(&["action", "pass"]).ok();
    assert_eq!(run_of(&env, 1, "grace")["state"], "waiting");
    assert!(history(&env, 1).contains("unless the incident is marked false positive first"));
    // Incident 1 is a false positive: its grace period never runs.
    env.run(&["incident", "false-positive", "1", "--note", "Maria testing"]).ok();
    // Once the grace period is over, a pass settles both incidents' runs.
    eventually("the grace period to pass", || {
        env.run(&["action", "pass"]).ok();
        run_of(&env, 2, "grace")["state"] == "done"
    });
    assert_eq!(run_of(&env, 1, "grace")["state"], "cancelled");
    assert!(history(&env, 1).contains("marked false positive first: not run"));
    // Incident 2 was not: it ran after the grace period, with the record on stdin.
    let done = run_of(&env, 2, "grace");
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(ran(&grace), 1);
    let file = std::fs::read_dir(&grace).unwrap().next().unwrap().unwrap().path();
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(record["incident"]["id"], 2);
    assert_eq!(record["type"], "incident.action");
    assert_eq!(done["output"], "kept 2");
    env.run(&["action", "set", "grace", "--mode", "off"]).ok();

    // Approval waits for a responder, then runs.
    let approval = recorder(&env, "approve-me", "approval", &[]);
    placed_and_used(&env, 3, &[]);
    env.run(&["action", "pass"]).ok();
    env.run(&["action", "pass"]).ok();
    let waiting = run_of(&env, 3, "approve-me");
    assert_eq!(waiting["state"], "awaiting-approval");
    assert_eq!(ran(&approval), 0);
    let id = waiting["id"].to_string();
    env.run(&["--actor", "bob", "action", "approve", &id]).ok();
    env.run(&["action", "pass"]).ok();
    assert_eq!(run_of(&env, 3, "approve-me")["state"], "done");
    assert_eq!(ran(&approval), 1);
    assert!(history(&env, 3).contains("approve-me approved by bob"));
    let again = env.run(&["action", "approve", &id]).fails();
    assert!(again.stderr.contains("only a run awaiting approval"), "{}", again.stderr);
    env.run(&["action", "set", "approve-me", "--mode", "off"]).ok();

    // A dry run records what it would do and does nothing.
    let dry = recorder(&env, "rehearse", "dry-run", &[]);
    placed_and_used(&env, 4, &[]);
    env.run(&["action", "pass"]).ok();
    let run = run_of(&env, 4, "rehearse");
    assert_eq!(run["state"], "dry-run", "{run}");
    assert!(run["plan"].as_str().unwrap().starts_with("run /bin/sh -c cat >"), "{run}");
    assert_eq!(ran(&dry), 0, "nothing ran");
    assert!(history(&env, 4).contains("nothing was changed"));

    // A failing action is on the timeline and alerted, and the others still run.
    env.run(&["action", "set", "rehearse", "--mode", "off"]).ok();
    env.run(&["action", "add", "broken", "--kind", "command", "--mode", "automatic", "--command", "/bin/false"]).ok();
    let after = recorder(&env, "after", "automatic", &[]);
    let jsonl = env.dir.path().join("alerts.jsonl");
    env.run(&["channel", "add", "jsonl", "siem", "--path", jsonl.to_str().unwrap()]).ok();
    placed_and_used(&env, 5, &[]);
    let pass = env.run(&["action", "pass", "--json"]).ok().json();
    assert_eq!((pass["failed"].as_u64(), pass["done"].as_u64()), (Some(1), Some(1)), "{pass}");
    assert_eq!(ran(&after), 1);
    let broken = run_of(&env, 5, "broken");
    assert!(broken["reason"].as_str().unwrap().contains("exited with 1"), "{broken}");
    env.run(&["deliver", "--once"]).ok();
    let text = std::fs::read_to_string(&jsonl).unwrap();
    assert!(text.lines().any(|l| l.contains("\"incident.action\"") && l.contains("broken failed")), "{text}");
}

#[test]
fn command_actions_are_added_only_at_the_servers_command_line() {
    let env = Env::new();
    let server = Server::start(&env, &[]);
    add_user(&env, "ada", "admin");
    let token = env.run(&["user", "token", "ada", "--for", "tests"]).ok().stdout.trim().to_string();
    let auth = format!("Bearer {token}");
    let json = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let body = r#"{"name":"x","kind":"command","mode":"automatic","command":["/bin/true"]}"#;
    let (status, answer) = server.call("POST", "/api/v1/actions", &json, body);
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("command line"), "{answer}");
    // A signed webhook can be, with a secret; a webhook to the metadata
    // service cannot, nor one to a private or loopback address that
    // alerts.allowed_hosts does not list (docs/actions.md).
    let hook = r#"{"name":"notify","kind":"webhook","mode":"approval","url":"http://203.0.113.10:9/hook","secret":"0123456789abcdef0123"}"#;
    let (status, answer) = server.call("POST", "/api/v1/actions", &json, hook);
    assert_eq!(status, 201, "{answer}");
    for inside in ["http://127.0.0.1:9/hook", "http://10.0.0.8/hook", "http://[::1]/hook", "http://localhost/hook"] {
        let body = format!(
            r#"{{"name":"in","kind":"webhook","mode":"approval","url":"{inside}","secret":"0123456789abcdef0123"}}"#
        );
        let (status, answer) = server.call("POST", "/api/v1/actions", &json, &body);
        assert_eq!(status, 400, "{inside}: {answer}");
        assert!(answer.contains("alerts.allowed_hosts"), "{answer}");
    }
    assert!(!answer.contains("0123456789abcdef0123"), "the secret is not shown: {answer}");
    let metadata = r#"{"name":"imds","kind":"webhook","mode":"approval","url":"http://169.254.169.254/latest","secret":"0123456789abcdef0123"}"#;
    let (status, answer) = server.call("POST", "/api/v1/actions", &json, metadata);
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = server.call("GET", "/api/v1/actions", &[("Authorization", &auth)], "");
    assert_eq!(status, 200);
    assert!(answer.contains("\"notify\"") && !answer.contains("203.0.113.10"), "the URL is sealed: {answer}");
}

#[test]
fn signed_webhook_actions_carry_the_record() {
    let env = Env::new();
    let receiver = Receiver::start(0, vec![]);
    let url = format!("http://127.0.0.1:{}/respond", receiver.port);
    let add = [
        "action",
        "add",
        "soar",
        "--kind",
        "webhook",
        "--mode",
        "automatic",
        "--url",
        &url,
        "--secret",
        "s3cret-s3cret-s3cret",
    ];
    // A loopback receiver only when alerts.allowed_hosts lists it.
    let refused = env.run(&add).fails();
    assert!(refused.stderr.contains("alerts.allowed_hosts"), "{}", refused.stderr);
    let listed = |args: &[&str]| {
        let out = env.command(args).env("HONEYTRAIL_ALERTS_ALLOWED_HOSTS", "127.0.0.1").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    listed(&add);
    placed_and_used(&env, 1, &[]);
    // Run without the allowlist, the action is refused at the call.
    env.run(&["action", "pass"]).ok();
    let failed = run_of(&env, 1, "soar");
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["reason"].as_str().unwrap_or_default().contains("alerts.allowed_hosts"), "{failed}");
    assert!(receiver.requests.lock().unwrap().is_empty());
    placed_and_used(&env, 2, &[]);
    listed(&["action", "pass"]);
    assert_eq!(run_of(&env, 2, "soar")["state"], "done");
    let requests = receiver.requests.lock().unwrap().clone();
    let (head, body) = requests
        .iter()
        .find(|(_, body)| serde_json::from_str::<serde_json::Value>(body).unwrap()["incident"]["id"] == 2)
        .expect("incident 2's record was posted");
    let signature = head
        .lines()
        .find_map(|l| l.strip_prefix("x-honeytrail-signature: ").or_else(|| l.strip_prefix("X-Honeytrail-Signature: ")))
        .expect("signed")
        .trim()
        .to_string();
    let t: i64 = signature.split(',').next().unwrap().strip_prefix("t=").unwrap().parse().unwrap();
    assert_eq!(signature, honeytrail_alert::channels::webhook::signature("s3cret-s3cret-s3cret", t, body.as_bytes()));
    let record: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(record["incident"]["id"], 2);
}

#[test]
fn own_networks_get_no_automatic_action_and_the_rate_limit_holds_with_twenty_incidents() {
    // Every call from a declared own network: skipped, and said so.
    let env = Env::new();
    let ours = [("HONEYTRAIL_ENRICH_NETWORKS", "corp=198.51.100.0/24")];
    let dir = env.dir.path().join("ran-auto");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!("cat > {}/run-$HONEYTRAIL_ACTION_RUN.json", dir.display());
    run_env(
        &env,
        &ours,
        &[
            "action",
            "add",
            "auto",
            "--kind",
            "command",
            "--mode",
            "automatic",
            "--command",
            "/bin/sh",
            "--arg",
            "-c",
            "--arg",
            &script,
        ],
    )
    .ok();
    placed_and_used(&env, 1, &[]);
    run_env(&env, &ours, &["action", "pass"]).ok();
    let skipped = run_of(&env, 1, "auto");
    assert_eq!(skipped["state"], "skipped", "{skipped}");
    assert!(skipped["reason"].as_str().unwrap().contains("own networks"), "{skipped}");
    assert_eq!(ran(&dir), 0);
    // Without the declaration the same incident would act: the rule is what held it.
    run_env(&env, &[], &["action", "pass"]).ok();
    assert_eq!(run_of(&env, 1, "auto")["state"], "done");

    // Twenty incidents at once, five actions an hour, two runners racing.
    let env = Env::new();
    let limit = [("HONEYTRAIL_ACTIONS_PER_HOUR", "5")];
    let dir = env.dir.path().join("ran-many");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!("cat > {}/run-$HONEYTRAIL_ACTION_RUN.json", dir.display());
    run_env(
        &env,
        &limit,
        &[
            "action",
            "add",
            "many",
            "--kind",
            "command",
            "--mode",
            "automatic",
            "--command",
            "/bin/sh",
            "--arg",
            "-c",
            "--arg",
            &script,
        ],
    )
    .ok();
    let records: Vec<serde_json::Value> = (1..=20)
        .map(|n| {
            let k = key(n);
            env.run(&["token", "import", "aws", "--access-key-id", &k]).ok();
            trail_record(
                &k,
                "svc-reader",
                &format!("many-{n}"),
                "2026-11-30T10:00:00Z",
                "sts.amazonaws.com",
                "GetCallerIdentity",
                None,
            )
        })
        .collect();
    ingest_records(&env, records);
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = env.command(&["action", "pass"]);
            cmd.env("HONEYTRAIL_ACTIONS_PER_HOUR", "5").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for r in racers {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    run_env(&env, &limit, &["action", "pass"]).ok();
    let all = runs(&env);
    assert_eq!(all.len(), 20);
    assert_eq!(all.iter().filter(|r| r["state"] == "done").count(), 5, "{all:?}");
    assert_eq!(ran(&dir), 5);
    let held: Vec<_> = all.iter().filter(|r| r["state"] == "queued").collect();
    assert_eq!(held.len(), 15);
    assert!(held.iter().all(|r| r["reason"] == "held by the rate limit" && r["due_at"].is_string()), "{held:?}");
}

/// A form body (`application/x-www-form-urlencoded`) of one field.
fn form(name: &str, value: &str) -> String {
    let mut out = format!("{name}=");
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn a_slack_approve_button_approves_only_when_slack_signed_the_click_of_a_listed_responder() {
    use honeytrail_alert::channels::slack::sign_request;
    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    let env = Env::new();
    add_user(&env, "maria", "responder");
    add_user(&env, "vic", "viewer");
    let slack = Receiver::start(0, vec![]);
    env.run_stdin(
        &["channel", "add", "slack", "secops", "--approve-buttons"],
        &format!("http://127.0.0.1:{}/services/T0/B0/XYZ\n", slack.port),
    )
    .ok();
    let ran_dir = recorder(&env, "isolate", "approval", &[]);
    let server = Server::start(
        &env,
        &[
            ("HONEYTRAIL_SLACK_SIGNING_SECRET", SECRET),
            ("HONEYTRAIL_ACTIONS_SLACK_APPROVERS", "U0MARIA=maria,U0VIC=vic,U0GHOST=ghost"),
        ],
    );
    placed_and_used(&env, 1, &[]);

    // The server decides, alerts, and Slack gets a message with the button.
    let mut button = None;
    for _ in 0..150 {
        let requests = slack.requests.lock().unwrap().clone();
        button = requests.iter().find_map(|(_, body)| {
            let m: serde_json::Value = serde_json::from_str(body).ok()?;
            let actions = m["blocks"].as_array()?.iter().find(|b| b["type"] == "actions")?.clone();
            Some(actions["elements"][0].clone())
        });
        if button.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let button = button.expect("a Slack message with an approve button");
    let run = run_of(&env, 1, "isolate");
    assert_eq!(run["state"], "awaiting-approval");
    assert_eq!(button["value"], run["id"].to_string());
    assert!(button["text"]["text"].as_str().unwrap().starts_with("Approve isolate"), "{button}");

    let click = |member: &str| {
        let payload = serde_json::json!({
            "type": "block_actions", "team": {"id": "T0"}, "user": {"id": member, "username": member},
            "actions": [{"type": "button", "action_id": button["action_id"], "value": button["value"]}]
        });
        form("payload", &payload.to_string())
    };
    let post = |body: &str, ts: i64, signature: &str| {
        let ts = ts.to_string();
        server.call(
            "POST",
            "/ingest/slack/actions",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Slack-Request-Timestamp", &ts),
                ("X-Slack-Signature", signature),
            ],
            body,
        )
    };
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;

    // Not signed by Slack, signed with another secret, or too old: refused, nothing approved.
    let body = click("U0MARIA");
    let (status, answer) = server.call("POST", "/ingest/slack/actions", &[], &body);
    assert_eq!(status, 401, "{answer}");
    let t = now();
    let (status, answer) = post(&body, t, &sign_request("not-the-signing-secret-not-it-no!", t, body.as_bytes()));
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("does not match"), "{answer}");
    let old = now() - 600;
    let (status, answer) = post(&body, old, &sign_request(SECRET, old, body.as_bytes()));
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("five minutes"), "{answer}");
    let t = now();
    let tampered = body.replace("U0MARIA", "U0MARIB");
    let (status, _) = post(&tampered, t, &sign_request(SECRET, t, body.as_bytes()));
    assert_eq!(status, 401, "a body changed after signing");

    // Signed by Slack, but not someone who may approve.
    for (member, why) in
        [("U0NOBODY", "may not approve"), ("U0GHOST", "not a honeytrail user"), ("U0VIC", "needs a responder")]
    {
        let body = click(member);
        let t = now();
        let (status, answer) = post(&body, t, &sign_request(SECRET, t, body.as_bytes()));
        assert_eq!(status, 403, "{member}: {answer}");
        assert!(answer.to_lowercase().contains(why), "{member}: {answer}");
    }
    assert_eq!(run_of(&env, 1, "isolate")["state"], "awaiting-approval");
    assert_eq!(ran(&ran_dir), 0);

    // Maria's click approves as maria; the server runs it at once.
    let t = now();
    let signed = sign_request(SECRET, t, body.as_bytes());
    let (status, answer) = post(&body, t, &signed);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("approved by maria"), "{answer}");
    let mut state = String::new();
    for _ in 0..150 {
        state = run_of(&env, 1, "isolate")["state"].as_str().unwrap().to_string();
        if state == "done" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(state, "done");
    assert_eq!(ran(&ran_dir), 1);
    assert!(history(&env, 1).contains("isolate approved by maria"), "{}", history(&env, 1));
    let audit = env.run(&["audit", "list", "--json"]).ok().json();
    let approval = audit.as_array().unwrap().iter().find(|a| a["action"] == "action.approve").expect("audited").clone();
    assert_eq!(approval["actor"], "maria");
    assert!(approval.to_string().contains("Slack member U0MARIA"), "{approval}");
    // The same click again (a replay inside the five minutes) approves nothing twice.
    let (status, answer) = post(&body, t, &signed);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(ran(&ran_dir), 1);
}

/// A program that closes its input without reading the record costs nothing
/// but its own unread input: the run is done, and the process that fed it
/// (here `action pass`, in production `serve`) is not killed by SIGPIPE.
/// The record is larger than a pipe holds, so the write meets the closed end.
#[test]
fn a_command_that_does_not_read_the_record_does_not_end_the_runner() {
    let env = Env::new();
    env.run(&[
        "action",
        "add",
        "deaf",
        "--kind",
        "command",
        "--mode",
        "automatic",
        "--command",
        "/bin/sh",
        "--arg",
        "-c",
        "--arg",
        "exec 0<&-; sleep 0.2; echo closed",
    ])
    .ok();
    let k = key(9);
    env.run(&["token", "import", "aws", "--access-key-id", &k, "--user-name", "svc-reader"]).ok();
    let records = (0..600)
        .map(|i| {
            let time = format!("2026-11-30T10:{:02}:{:02}Z", i / 60, i % 60);
            trail_record(&k, "svc-reader", &format!("ev-deaf-{i}"), &time, "s3.amazonaws.com", "ListBuckets", None)
        })
        .collect();
    ingest_records(&env, records);
    let shown = env.run(&["incident", "show", "1", "--json"]).ok().stdout;
    assert!(shown.len() > 128 * 1024, "the record is bigger than a pipe: {} bytes", shown.len());
    let pass = env.run(&["action", "pass", "--json"]).ok().json();
    assert_eq!(pass["done"].as_u64(), Some(1), "{pass}");
    let run = run_of(&env, 1, "deaf");
    assert_eq!(run["state"], "done", "{run}");
}

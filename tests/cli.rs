//! End-to-end tests of the `honeytrail` binary: the commands a security
//! engineer types, against SQLite, PostgreSQL and moto's IAM.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use honeytrail_testkit::{aws_cli, Moto};

mod common;
use common::*;

fn import_with_secret(env: &Env) {
    env.run_stdin(
        &[
            "token",
            "import",
            "aws",
            "--access-key-id",
            KEY,
            "--secret-stdin",
            "--user-name",
            "payments-s3-sync-prod",
            "--label",
            "team=payments",
            "--source",
            "generated on maria-mbp",
        ],
        &format!("{SECRET}\n"),
    )
    .ok();
}

#[test]
fn init_writes_config_database_and_key_once() {
    let env = Env::new();
    let out = env.run(&["init"]).ok();
    assert!(out.stdout.contains("(written)"), "{}", out.stdout);
    let config = env.data().join("honeytrail.toml");
    let key = env.data().join("secret.key");
    assert!(config.exists() && key.exists() && env.data().join("honeytrail.sqlite").exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let key_before = std::fs::read_to_string(&key).unwrap();
    let out = env.run(&["init"]).ok();
    assert!(out.stdout.contains("exists; kept"), "{}", out.stdout);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), key_before, "the data key is never replaced");
}

#[test]
fn a_broken_config_names_the_file_and_the_problem() {
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    std::fs::write(env.data().join("honeytrail.toml"), "[aws]\nendpont = \"http://x\"\n").unwrap();
    let out = env.run(&["token", "list"]).fails();
    assert!(out.stderr.contains("honeytrail.toml") && out.stderr.contains("endpont"), "{}", out.stderr);
    let missing = env.run(&["--config", "/nonexistent/ht.toml", "token", "list"]).fails();
    assert!(missing.stderr.contains("/nonexistent/ht.toml does not exist"), "{}", missing.stderr);
}

#[test]
fn import_place_custody_describe_on_sqlite() {
    registry_walkthrough(&Env::new());
}

#[tokio::test]
async fn import_place_custody_describe_on_postgres() {
    let mut env = Env::new();
    env.database = Some(honeytrail_testkit::postgres_database().await);
    tokio::task::spawn_blocking(move || {
        // On PostgreSQL the data key is never made up on the fly (replicas
        // must share it): without one, storing a secret is refused, clearly.
        let out = env.run_stdin(&["token", "import", "aws", "--access-key-id", KEY, "--secret-stdin"], SECRET).fails();
        assert!(out.stderr.contains("no data key") && out.stderr.contains("honeytrail init"), "{}", out.stderr);
        env.run(&["init"]).ok();
        registry_walkthrough(&env)
    })
    .await
    .unwrap();
}

fn registry_walkthrough(env: &Env) {
    import_with_secret(env);
    let list = env.run(&["token", "list", "--json"]).ok().json();
    assert_eq!(list[0]["access_key_id"], KEY);
    assert_eq!(list[0]["kind"], "aws-imported");
    assert_eq!(
        list[0]["account_id"],
        honeytrail_core::keyid::decode_account(KEY).to_string().trim_start_matches("account ")
    );
    let show = env.run(&["token", "show", KEY]).ok();
    assert!(
        !show.stdout.contains(SECRET) && show.stdout.contains("held, sealed"),
        "the secret stays hidden: {}",
        show.stdout
    );

    env.run(&[
        "placement",
        "add",
        KEY,
        "--host",
        "maria-mbp",
        "--path",
        "~/.aws/credentials",
        "--owner",
        "Maria",
        "--asset",
        "MacBook Pro",
        "--serial",
        "C02XYZ",
        "--format",
        "aws-credentials",
    ])
    .ok();
    env.run(&[
        "placement",
        "add",
        KEY,
        "--host",
        "bastion-1.prod",
        "--path",
        "/home/ops/.aws/credentials",
        "--owner",
        "ops",
    ])
    .ok();
    env.run(&["custody", "add", KEY, "sent by email to maria@example.com", "--by", "alice"]).ok();
    env.run(&["custody", "add", KEY, "committed to git@example.com:infra/deploy.git"]).ok();

    let found = env.run(&["placement", "list", "--owner", "MARIA", "--json"]).ok().json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["serial"], "C02XYZ");
    let by_host = env.run(&["placement", "list", "--host", "bastion"]).ok();
    assert!(by_host.stdout.contains("bastion-1.prod") && !by_host.stdout.contains("maria-mbp"), "{}", by_host.stdout);

    let described = env.run(&["token", "describe", KEY]).ok().stdout;
    assert!(described.contains(&format!("Key {KEY} was placed in 2 places:")), "{described}");
    assert!(
        described.contains("on Maria's MacBook Pro (host maria-mbp, serial C02XYZ) in ~/.aws/credentials"),
        "{described}"
    );
    assert!(described.contains("generated on maria-mbp"), "{described}");
    assert!(described.contains("secret imported into honeytrail"), "{described}");
    assert!(described.contains("sent by email to maria@example.com (by alice)"), "{described}");
    assert!(described.contains("committed to git@example.com:infra/deploy.git (by alice@"), "{described}");

    // Removing the bastion placement leaves one: the headline becomes the guidance's sentence.
    let bastion = env.run(&["placement", "list", "--host", "bastion", "--json"]).ok().json();
    let id = bastion[0]["id"].as_i64().unwrap().to_string();
    env.run(&["placement", "remove", &id]).ok();
    let described = env.run(&["token", "describe", KEY, "--json"]).ok().json();
    assert_eq!(
        described["headline"],
        format!("Key {KEY} was placed on Maria's MacBook Pro (host maria-mbp, serial C02XYZ) in ~/.aws/credentials.")
    );
    let csv = env.run(&["placement", "list", "--all", "--csv"]).ok().stdout;
    assert_eq!(csv.lines().count(), 3, "header and both placements, removed included: {csv}");
}

#[test]
fn bad_input_gives_clear_errors_and_non_zero_exits() {
    let env = Env::new();
    let out = env.run(&["token", "import", "aws", "--access-key-id", "AKIA123"]).fails();
    assert!(out.stderr.contains("7 characters long"), "{}", out.stderr);
    let out =
        env.run(&["token", "import", "aws", "--access-key-id", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]).fails();
    assert!(out.stderr.contains("did you paste the secret"), "{}", out.stderr);
    assert!(!out.stderr.contains("bPxRfiCYEXAMPLEKEY"), "a pasted secret is not echoed: {}", out.stderr);
    let out = env.run(&["token", "show", "AKIAUNKNOWNUNKNOWN22"]).fails();
    assert!(out.stderr.contains("not found") && out.stderr.contains("token list"), "{}", out.stderr);
    let out = env.run(&["placement", "add", "#42", "--host", "h", "--path", "p"]).fails();
    assert!(out.stderr.contains("token #42 not found"), "{}", out.stderr);
    let out = env.run(&["token", "import", "aws", "--access-key-id", KEY, "--label", "bad label"]).fails();
    assert!(out.stderr.contains("label"), "{}", out.stderr);
    import_with_secret(&env);
    let out = env.run(&["token", "import", "aws", "--access-key-id", KEY]).fails();
    assert!(out.stderr.contains("already registered"), "{}", out.stderr);
    let out = env.run(&["render", KEY, "--format", "yaml"]).fails();
    assert!(out.stderr.contains("unknown bait format") && out.stderr.contains("k8s-secret"), "{}", out.stderr);
    let out = env.run(&["render", KEY, "--format", "aws-cli-cache"]).fails();
    assert!(out.stderr.contains("session credentials only"), "a key in a session cache: {}", out.stderr);
    let out = env.run(&["custody", "add", KEY, "  "]).fails();
    assert!(out.stderr.contains("description is empty"), "{}", out.stderr);
}

#[test]
fn not_found_is_one_sentence_naming_the_command_that_lists_them() {
    let env = Env::new();
    for (args, list) in [
        (&["incident", "show", "999"][..], "incident list"),
        (&["token", "show", "AKIAIOSFODNN7EXAMPLE"][..], "token list"),
        (&["agent", "show", "5"][..], "agents"),
        (&["template", "show", "nope"][..], "template list"),
        (&["channel", "test", "nope"][..], "channel list"),
        (&["action", "remove", "nope"][..], "action list"),
        (&["action", "approve", "4"][..], "action runs"),
        (&["user", "disable", "nope"][..], "user list"),
        (&["placement", "remove", "9"][..], "placement list"),
        (&["account", "remove", "nope"][..], "account list"),
        (&["enrol", "revoke", "4"][..], "enrol list"),
        (&["user", "revoke", "3"][..], "user tokens"),
    ] {
        let out = env.run(args).fails();
        let said = out.stderr.trim();
        let line = said.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{args:?}: {said}"));
        assert!(line.contains(" not found (`honeytrail "), "{args:?}: {line}");
        assert!(line.contains(list), "{args:?} names `{list}`: {line}");
        assert_eq!(line.matches("shows them").count(), 1, "{args:?}: one hint, once: {line}");
    }
}

#[test]
fn logs_to_a_file_or_pipe_carry_no_escape_codes() {
    let env = Env::new();
    // A warning is logged (a document that is not a CloudTrail log); stderr is a pipe here.
    let log = env.dir.path().join("not-a-trail.json");
    std::fs::write(&log, "{\"hello\": 1}").unwrap();
    let out = env.run(&["-v", "ingest", log.to_str().unwrap()]);
    assert!(out.stderr.contains("WARN") || out.stderr.contains("INFO"), "something is logged: {}", out.stderr);
    assert!(!out.stderr.contains('\u{1b}'), "no colour codes outside a terminal: {:?}", out.stderr);
}

#[test]
fn an_unreachable_aws_endpoint_fails_cleanly_and_stores_nothing() {
    let mut env = Env::new();
    let port = honeytrail_testkit::dead_port();
    env.moto = Some(format!("http://127.0.0.1:{port}"));
    let out = env.run(&["token", "mint", "aws"]).fails();
    assert!(out.stderr.contains(&format!("127.0.0.1:{port}")) && out.stderr.contains("endpoint"), "{}", out.stderr);
    let list = env.run(&["token", "list", "--state", "all", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 0);
}

#[test]
fn missing_aws_credentials_are_explained() {
    let env = Env::new();
    let port = honeytrail_testkit::dead_port();
    let out = env
        .command(&["--aws-endpoint", &format!("http://127.0.0.1:{port}"), "token", "mint", "aws"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no AWS credentials") && stderr.contains("AWS_PROFILE"), "{stderr}");
    assert_eq!(env.run(&["token", "list", "--json"]).ok().json().as_array().unwrap().len(), 0);
}

#[test]
fn render_merges_without_clobbering_and_records_the_placement() {
    let env = Env::new();
    import_with_secret(&env);
    let aws_dir = env.home().join(".aws");
    std::fs::create_dir_all(&aws_dir).unwrap();
    let creds = aws_dir.join("credentials");
    let real = "[default]\naws_access_key_id = AKIAREALREALREALREAL\naws_secret_access_key = real/secret\n\n[staging]\naws_access_key_id = AKIASTAGINGSTAGINGST\naws_secret_access_key = staging\n";
    std::fs::write(&creds, real).unwrap();

    let out = env
        .run(&[
            "render",
            KEY,
            "--format",
            "aws-credentials",
            "--profile",
            "prod",
            "--into",
            "~/.aws/credentials",
            "--owner",
            "Maria",
        ])
        .ok();
    assert!(out.stderr.contains("recorded placement"), "{}", out.stderr);
    let merged = std::fs::read_to_string(&creds).unwrap();
    assert!(merged.starts_with(real), "existing profiles untouched:\n{merged}");
    assert!(merged.contains(&format!("[prod]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n")));
    // Nothing beside the bait gives it away: the backup is in honeytrail's
    // own data directory.
    let beside: Vec<String> =
        std::fs::read_dir(&aws_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(beside, ["credentials"], "{beside:?}");
    let said = out.stderr.lines().find(|l| l.contains("previous file kept as")).expect("the backup is named");
    let backup = said.rsplit("previous file kept as ").next().unwrap().trim_end_matches(')');
    assert!(backup.contains("/backups/"), "{said}");
    assert_eq!(std::fs::read_to_string(backup).unwrap(), real);

    // Same profile again: refused, file unchanged.
    let out = env
        .run(&["render", KEY, "--format", "aws-credentials", "--profile", "staging", "--into", "~/.aws/credentials"])
        .fails();
    assert!(out.stderr.contains("[staging]") && out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&creds).unwrap(), merged);
    // Forced: only [staging] is replaced.
    env.run(&[
        "render",
        KEY,
        "--format",
        "aws-credentials",
        "--profile",
        "staging",
        "--into",
        "~/.aws/credentials",
        "--force",
        "--no-placement",
    ])
    .ok();
    let forced = std::fs::read_to_string(&creds).unwrap();
    assert!(forced.contains("AKIAREALREALREALREAL") && !forced.contains("AKIASTAGINGSTAGINGST"), "{forced}");

    let placements = env.run(&["placement", "list", KEY, "--json"]).ok().json();
    assert_eq!(placements.as_array().unwrap().len(), 1, "--no-placement recorded none");
    assert_eq!(placements[0]["path"], creds.display().to_string());
    assert_eq!(placements[0]["format"], "aws-credentials");
    assert_eq!(placements[0]["owner"], "Maria");
    let hops = env.run(&["custody", "list", KEY, "--json"]).ok().json();
    let written: Vec<_> = hops
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["description"].as_str().unwrap().starts_with("written to"))
        .collect();
    assert_eq!(written.len(), 2, "every write is a custody hop");
    assert!(written.iter().all(|h| h["automatic"] == true));

    // A source file is never merged into an existing one.
    let py = env.home().join("settings.py");
    std::fs::write(&py, "DEBUG = True\n").unwrap();
    let out = env.run(&["render", KEY, "--format", "python", "--into", py.to_str().unwrap()]).fails();
    assert!(out.stderr.contains("not merged"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&py).unwrap(), "DEBUG = True\n");
}

#[test]
fn render_needs_a_secret_and_an_active_token() {
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    let out = env.run(&["render", KEY, "--format", "dotenv"]).fails();
    assert!(out.stderr.contains("holds no secret"), "{}", out.stderr);
    env.run(&["token", "retire", KEY]).ok();
    let out = env.run(&["render", KEY, "--format", "dotenv"]).fails();
    assert!(out.stderr.contains("retired"), "{}", out.stderr);
}

#[test]
fn check_exit_status_tells_pass_warn_fail() {
    let env = Env::new();
    // A canarytokens.org key: its account is public.
    let out = env.run(&["check", "AKIASP2TPHJSQH3FJRUX"]);
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert!(out.stdout.contains("171436882533") && out.stdout.contains("canarytokens.org"), "{}", out.stdout);
    // An unregistered key: the user name is unknown.
    assert_eq!(env.run(&["check", "AKIAIOSFODNN7EXAMPLE"]).code, 2);
    // A registered key with a plausible user.
    import_with_secret(&env);
    let out = env.run(&["check", KEY, "--json"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let report = out.json();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["registered"], true);
    assert!(report["findings"].as_array().unwrap().iter().any(|f| f["code"] == "name-visible"));
    // A tell-tale user name fails.
    env.run(&[
        "token",
        "import",
        "aws",
        "--access-key-id",
        "AKIARZPUZDIKAAAAAAAH",
        "--user-name",
        "honeytoken-laptops",
    ])
    .ok();
    assert_eq!(env.run(&["check", "AKIARZPUZDIKAAAAAAAH"]).code, 3);
    let out = env.run(&["check", "not a key"]).fails();
    assert_eq!(out.code, 1, "errors exit 1: {}", out.stderr);
    // Every active token at once, the worst first, exit code of the worst.
    let all = env.run(&["check", "--all", "--json"]);
    assert_eq!(all.code, 3, "{}", all.stdout);
    let listed = all.json();
    let keys: Vec<&str> = listed.as_array().unwrap().iter().map(|r| r["access_key_id"].as_str().unwrap()).collect();
    assert_eq!(keys, ["AKIARZPUZDIKAAAAAAAH", KEY], "{listed}");
    assert_eq!((listed[0]["verdict"].as_str(), listed[1]["verdict"].as_str()), (Some("fail"), Some("pass")));
    let table = env.run(&["check", "--all"]).stdout;
    assert!(
        table.contains("WHAT GIVES IT AWAY") && table.contains("honeytoken") && table.contains("1 would be spotted"),
        "{table}"
    );
    assert!(env.run(&["check", KEY, "--all"]).fails().stderr.contains("cannot be used with"));
}

#[test]
fn bulk_import_from_csv_and_jsonl() {
    let env = Env::new();
    let csv_path = env.dir.path().join("keys.csv");
    let mut csv = String::from("access_key_id,secret_access_key,user_name,labels,host,path,owner,serial\n");
    for i in 0..2000u64 {
        let key = honeytrail_core::keyid::synthesize(123456789012, i);
        csv.push_str(&format!("{key},secret{i:036},svc-{i},fleet=laptops;os=macos,laptop-{i},/Users/u{i}/.aws/credentials,user {i},C02{i:05}\n"));
    }
    std::fs::write(&csv_path, &csv).unwrap();
    let out = env.run(&["token", "import", "aws", "--from", csv_path.to_str().unwrap()]).ok();
    assert!(out.stdout.contains("imported 2000 token(s) with 2000 placement(s)"), "{}", out.stdout);
    let listed = env.run(&["token", "list", "--label", "os=macos", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2000);
    let one = env.run(&["placement", "list", "--host", "laptop-1999", "--json"]).ok().json();
    assert_eq!(one[0]["serial"], "C0201999");

    // Re-importing is refused as a whole, or skips with --skip-existing.
    let out = env.run(&["token", "import", "aws", "--from", csv_path.to_str().unwrap()]).fails();
    assert!(out.stderr.contains("already registered"), "{}", out.stderr);
    let out = env.run(&["token", "import", "aws", "--from", csv_path.to_str().unwrap(), "--skip-existing"]).ok();
    assert!(out.stdout.contains("imported 0") && out.stdout.contains("skipped 2000"), "{}", out.stdout);

    // JSON lines with a bad row: nothing is imported and the line is named.
    let jsonl = env.dir.path().join("keys.jsonl");
    std::fs::write(&jsonl, format!(
        "{{\"access_key_id\":\"{}\",\"labels\":{{\"team\":\"data\"}}}}\n{{\"access_key_id\":\"AKIA-BAD\"}}\n{{\"access_key_id\":\"{}\",\"host\":\"h\"}}\n",
        honeytrail_core::keyid::synthesize(1, 1),
        honeytrail_core::keyid::synthesize(1, 2)
    )).unwrap();
    let out = env.run(&["token", "import", "aws", "--from", jsonl.to_str().unwrap()]).fails();
    assert!(
        out.stderr.contains("line 2") && out.stderr.contains("line 3: a placement needs both host and path"),
        "{}",
        out.stderr
    );
    let all = env.run(&["token", "list", "--json"]).ok().json();
    assert_eq!(all.as_array().unwrap().len(), 2000);
    let unknown = env.dir.path().join("bad.csv");
    std::fs::write(&unknown, "access_key_id,colour\nAKIARZPUZDIKAWS2LJNF,blue\n").unwrap();
    let out = env.run(&["token", "import", "aws", "--from", unknown.to_str().unwrap()]).fails();
    assert!(out.stderr.contains("unknown column \"colour\""), "{}", out.stderr);
}

/// Mint with the CLI against moto, write bait, and let the `aws` CLI read it.
#[test]
fn minted_keys_work_in_rendered_files_and_retire_cleanly() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let minted = env.run(&["token", "mint", "aws", "--label", "team=payments", "--json"]).ok().json();
    let key = minted[0]["access_key_id"].as_str().unwrap().to_string();
    let user = minted[0]["iam_user_name"].as_str().unwrap().to_string();
    assert!(honeytrail_core::naming::telltale_word(&user).is_none(), "{user}");
    let hops = env.run(&["custody", "list", &key, "--json"]).ok().json();
    assert!(hops[0]["description"].as_str().unwrap().starts_with("generated in canary account 123456789012"), "{hops}");

    // Credentials file and config file, each read by the real aws CLI.
    let creds = env.home().join(".aws/credentials");
    let config = env.home().join(".aws/config");
    env.run(&["render", &key, "--format", "aws-credentials", "--profile", "prod", "--into", creds.to_str().unwrap()])
        .ok();
    env.run(&["render", &key, "--format", "aws-config", "--profile", "backup", "--into", config.to_str().unwrap()])
        .ok();
    for (profile, credentials_file, config_file) in
        [("prod", creds.as_path(), Path::new("/dev/null")), ("backup", Path::new("/dev/null"), config.as_path())]
    {
        let out = Command::new("aws")
            .args([
                "--endpoint-url",
                &moto.endpoint,
                "--profile",
                profile,
                "--output",
                "json",
                "sts",
                "get-caller-identity",
            ])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", credentials_file)
            .env("AWS_CONFIG_FILE", config_file)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "aws CLI with profile {profile}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&format!("user/{user}")), "profile {profile}: {stdout}");
    }

    // Rotate: a new key, placements carried over, the old key gone in AWS.
    let rotated = env.run(&["token", "rotate", &key, "--json"]).ok().json();
    let new_key = rotated["access_key_id"].as_str().unwrap().to_string();
    assert_ne!(new_key, key);
    assert_eq!(rotated["labels"]["team"], "payments");
    let carried = env.run(&["placement", "list", &new_key, "--json"]).ok().json();
    assert_eq!(carried.as_array().unwrap().len(), 2);
    let (ok, out, _) =
        aws_cli(&moto.endpoint, "testing", "testing", &["iam", "list-access-keys", "--user-name", &user]);
    assert!(!ok || !out.contains(&key), "the old key is deleted: {out}");
    let old = env.run(&["token", "show", &key, "--json"]).ok().json();
    assert_eq!(old["state"], "retired");

    // Retire the new key: key and user are gone in AWS, the history stays.
    let new_user = rotated["iam_user_name"].as_str().unwrap().to_string();
    env.run(&["token", "retire", &new_key]).ok();
    let (ok, _, err) = aws_cli(&moto.endpoint, "testing", "testing", &["iam", "get-user", "--user-name", &new_user]);
    assert!(!ok && err.contains("NoSuchEntity"), "{err}");
    let shown = env.run(&["token", "show", &new_key, "--json"]).ok().json();
    assert_eq!(shown["state"], "retired");
    assert_eq!(shown["placements"].as_array().unwrap().len(), 2);
    // Retiring again is safe (AWS already clean).
    env.run(&["token", "retire", &new_key]).ok();
}

#[test]
fn packing_puts_two_keys_on_one_user() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let minted = env.run(&["token", "mint", "aws", "--pack", "--count", "3", "--json"]).ok().json();
    let users: Vec<&str> = minted.as_array().unwrap().iter().map(|t| t["iam_user_name"].as_str().unwrap()).collect();
    assert_eq!(users[0], users[1], "second key packed onto the first user");
    assert_ne!(users[1], users[2], "a user holds at most two keys");
    // Retiring one of a packed pair keeps the user for the other.
    let first = minted[0]["access_key_id"].as_str().unwrap();
    env.run(&["token", "retire", first]).ok();
    let (ok, _, err) = aws_cli(&moto.endpoint, "testing", "testing", &["iam", "get-user", "--user-name", users[0]]);
    assert!(ok, "user still holds the second key: {err}");
}

#[test]
fn mint_refuses_telltale_names() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let out = env.run(&["token", "mint", "aws", "--name", "canary-laptop-1"]).fails();
    assert!(out.stderr.contains("tell-tale"), "{}", out.stderr);
    let (ok, out, _) = aws_cli(&moto.endpoint, "testing", "testing", &["iam", "list-users"]);
    assert!(ok && !out.contains("canary-laptop-1"), "{out}");
}

#[test]
fn the_demo_runs_without_a_cloud_account() {
    let env = Env::new();
    let out = env.run(&["demo"]).ok();
    assert!(out.stdout.contains("was placed on Maria's MacBook Pro (host maria-mbp, serial C02XYZ)"), "{}", out.stdout);
    assert!(out.stdout.contains("aws_secret_access_key = keep-me-exactly-as-i-am"), "{}", out.stdout);
    assert!(out.stdout.contains("verdict: FAIL") && out.stdout.contains("verdict: pass"), "{}", out.stdout);
    // Then detection: the intruder's log is scanned and one incident opens,
    // raised to critical by the scanner's user agent, naming Maria's laptop.
    let detection =
        out.stdout.split("Days later").nth(1).unwrap_or_else(|| panic!("no detection step: {}", out.stdout));
    assert!(detection.contains("#1") && detection.contains("critical"), "{detection}");
    assert!(detection.contains("incident #1") && detection.contains("Maria's MacBook Pro"), "{detection}");
    assert!(detection.contains("GetCallerIdentity") && detection.contains("185.220.101.47"), "{detection}");
    // It can be run again: the demo directory is recreated.
    env.run(&["demo"]).ok();
}

fn testdata(dir: &str) -> String {
    format!("{}/testdata/cloudtrail/{dir}", env!("CARGO_MANIFEST_DIR"))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out.stdout
}

#[test]
fn ingesting_real_logs_opens_one_incident_per_burst() {
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", "AKIATFQR7NSCUXC3DDDP", "--source", "infra team"]).ok();
    env.run(&[
        "placement",
        "add",
        "AKIATFQR7NSCUXC3DDDP",
        "--host",
        "build-7",
        "--path",
        "/home/ci/.aws/credentials",
        "--owner",
        "CI team",
    ])
    .ok();
    let out = env.run(&["ingest", &testdata(""), "--json"]).ok();
    let lines: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "one incident, not one line per API call: {}", out.stdout);
    let inc = &lines[0];
    assert_eq!(inc["type"], "incident.opened");
    assert_eq!(inc["incident"]["event_count"], 43);
    assert_eq!(inc["incident"]["access_key_id"], "AKIATFQR7NSCUXC3DDDP");
    assert_eq!(
        inc["placement"],
        "Key AKIATFQR7NSCUXC3DDDP was placed on CI team's machine (host build-7) in /home/ci/.aws/credentials."
    );
    assert_eq!(inc["activity"]["source_ips"], serde_json::json!(["10.248.16.43"]));
    assert!(inc["activity"]["apis"].as_array().unwrap().iter().any(|a| a == "ListUsers"));
    assert_eq!(inc["events"][0]["event_time"], "2023-07-10T11:42:18Z", "event time, not the time honeytrail saw it");
    assert!(inc["events"][0]["detection_delay_seconds"].as_i64().unwrap() > 0);
    let summary: serde_json::Value = serde_json::from_str(&out.stderr).unwrap();
    assert_eq!(summary["matches"], 43);
    assert_eq!(summary["records"].as_u64().unwrap(), 4089);
    let parsed = summary["records_parsed"].as_u64().unwrap();
    assert!((43..4089).contains(&parsed), "the files with the key are parsed, the others only counted: {parsed}");
    assert_eq!(summary["skipped"]["extension"].as_array().unwrap().len(), 1);

    // Reading the same logs again stores nothing twice and opens nothing.
    let again = env.run(&["ingest", &testdata("invictus-ir_aws_dataset"), "--json"]).ok();
    assert!(again.stdout.is_empty(), "{}", again.stdout);
    let summary: serde_json::Value = serde_json::from_str(&again.stderr).unwrap();
    assert_eq!((summary["matches"].as_u64(), summary["duplicates"].as_u64()), (Some(43), Some(43)));
    assert_eq!(env.run(&["incident", "list", "--json"]).ok().json().as_array().unwrap().len(), 1);
}

#[test]
fn malformed_input_is_reported_and_skipped_and_nothing_is_lost() {
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    let dir = env.dir.path().join("AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/28");
    std::fs::create_dir_all(&dir).unwrap();
    let record = |id: &str, minute: u32| {
        format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","accessKeyId":"{KEY}","arn":"arn:aws:iam::123456789012:user/svc"}},"eventTime":"2026-11-28T10:{minute:02}:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2.15","errorCode":"AccessDenied","eventID":"{id}"}}"#
        )
    };
    std::fs::write(dir.join("good_1.json.gz"), gzip(format!(r#"{{"Records":[{}]}}"#, record("e1", 0)).as_bytes()))
        .unwrap();
    let mut truncated = gzip(format!(r#"{{"Records":[{}]}}"#, record("e2", 1)).repeat(50).as_bytes());
    truncated.truncate(truncated.len() / 2);
    std::fs::write(dir.join("truncated.json.gz"), truncated).unwrap();
    std::fs::write(dir.join("invalid.json"), format!(r#"{{"Records":[{},"#, record("e3", 2))).unwrap();
    std::fs::write(dir.join("other.json"), r#"{"kind":"not cloudtrail"}"#).unwrap();
    let digest_dir = env.dir.path().join("AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/28");
    std::fs::create_dir_all(&digest_dir).unwrap();
    std::fs::write(
        digest_dir.join("digest.json.gz"),
        gzip(br#"{"awsAccountId":"123456789012","digestStartTime":"2026-11-28T09:00:00Z"}"#),
    )
    .unwrap();
    // One record of 200 MB: larger than any CloudTrail file, refused by size.
    let huge = format!(r#"{{"Records":[{{"eventVersion":"1.09","padding":"{}"}}]}}"#, "x".repeat(200 << 20));
    std::fs::write(dir.join("huge.json.gz"), gzip(huge.as_bytes())).unwrap();
    drop(huge);
    std::fs::write(dir.join("good_2.json.gz"), gzip(format!(r#"{{"Records":[{}]}}"#, record("e4", 5)).as_bytes()))
        .unwrap();

    let out = env.run(&["ingest", env.dir.path().join("AWSLogs").to_str().unwrap(), "--json"]).ok();
    let summary: serde_json::Value =
        serde_json::from_str(&out.stderr).unwrap_or_else(|e| panic!("{e}: {}", out.stderr));
    let skipped = &summary["skipped"];
    for kind in ["gzip", "invalid-json", "not-cloudtrail", "digest", "too-large"] {
        assert_eq!(skipped[kind].as_array().map(|a| a.len()), Some(1), "{kind}: {skipped}");
    }
    assert!(skipped["too-large"][0].as_str().unwrap().contains("huge.json.gz"));
    // The records that can be read from the cut and the invalid file are
    // read, around the damage; nothing with a key is left unread.
    assert_eq!(summary["unparsed_hits"].as_array().unwrap().len(), 0, "{summary}");
    // The good files and what the damaged ones held: one incident, four events.
    let inc: serde_json::Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(inc["incident"]["event_count"], 4, "{inc}");
    assert_eq!(inc["activity"]["error_codes"], serde_json::json!(["AccessDenied"]), "failed calls are hits too");
}

#[test]
fn incident_workflow_from_the_cli() {
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", "AKIAAM80VXLJF8NPK4VC"]).ok();
    env.run(&["ingest", &testdata("datadog_stratus-red-team")]).ok();
    let list = env.run(&["incident", "list", "--json"]).ok().json();
    let id = list[0]["id"].as_i64().unwrap().to_string();
    env.run(&["--actor", "bob", "incident", "ack", &id]).ok();
    env.run(&["--actor", "bob", "incident", "note", &id, "asked the owner: was this you?"]).ok();
    env.run(&["--actor", "bob", "incident", "false-positive", &id, "--note", "owner ran a test"]).ok();
    let out = env.run(&["incident", "ack", &id]).fails();
    assert!(out.stderr.contains("cannot go back"), "{}", out.stderr);
    let shown = env.run(&["incident", "show", &id, "--json"]).ok().json();
    let history: Vec<(String, String)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["actor"].as_str().unwrap().to_string(), h["kind"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        history[1..],
        [("bob".into(), "state".into()), ("bob".into(), "note".into()), ("bob".into(), "state".into())]
    );
    assert_eq!(shown["incident"]["state"], "false-positive");
    let text = env.run(&["incident", "show", &id]).ok().stdout;
    assert!(text.contains("false-positive") && text.contains("owner ran a test"), "{text}");
    assert!(env.run(&["incident", "list"]).ok().stderr.contains("no incidents open"));
    assert_eq!(
        env.run(&["incident", "list", "--all", "--json"]).ok().json().as_array().unwrap().len(),
        list.as_array().unwrap().len()
    );
    let out = env.run(&["incident", "show", "999"]).fails();
    assert!(out.stderr.contains("incident #999"), "{}", out.stderr);
}

#[test]
fn the_safety_net_reports_uses_cloudtrail_did_not_log() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let minted = env.run(&["token", "mint", "aws", "--json"]).ok().json();
    let key = minted[0]["access_key_id"].as_str().unwrap().to_string();
    let secret = env.run(&["token", "show", &key, "--reveal-secret", "--json"]).ok().json()["secret_access_key"]
        .as_str()
        .unwrap()
        .to_string();

    // Never used: nothing to say.
    let out = env.run(&["safety-net", "--grace-minutes", "0"]).ok();
    assert!(out.stdout.is_empty() && out.stderr.contains("checked 1"), "{}", out.stderr);

    // The intruder identifies the key. moto writes no CloudTrail, so only IAM's last-use record shows it.
    let (ok, _, err) = aws_cli(&moto.endpoint, &key, &secret, &["sts", "get-caller-identity"]);
    assert!(ok, "{err}");
    // Within the grace period CloudTrail may still deliver: no incident yet.
    assert!(env.run(&["safety-net"]).ok().stdout.is_empty());
    let out = env.run(&["safety-net", "--grace-minutes", "0"]).ok();
    let inc: serde_json::Value = serde_json::from_str(out.stdout.lines().next().expect("an incident line")).unwrap();
    assert_eq!(inc["type"], "incident.opened");
    let event = &inc["events"][0];
    assert_eq!(event["event_name"], "call not logged by CloudTrail");
    assert_eq!(event["source"], "safety-net");
    assert_eq!(event["source_ip"], serde_json::Value::Null, "IAM does not know the caller's IP");
    assert_eq!(event["event_source"], "sts.amazonaws.com");
    let said = event["error_message"].as_str().unwrap();
    assert!(said.contains("no CloudTrail record of it arrived within the 0-minute grace"), "{said}");
    // Reported once.
    assert!(env.run(&["safety-net", "--grace-minutes", "0"]).ok().stdout.is_empty());

    // A use that CloudTrail did log is not reported as unlogged.
    let log = env.dir.path().join("trail.json");
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    std::fs::write(&log, format!(r#"{{"Records":[{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","accessKeyId":"{key}"}},"eventTime":"{now}","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7","eventID":"logged-1"}}]}}"#)).unwrap();
    env.run(&["ingest", log.to_str().unwrap()]).ok();
    let (ok, _, err) = aws_cli(&moto.endpoint, &key, &secret, &["sts", "get-caller-identity"]);
    assert!(ok, "{err}");
    let out = env.run(&["safety-net", "--grace-minutes", "0"]).ok();
    assert!(out.stdout.is_empty(), "explained by CloudTrail: {}", out.stdout);
}

/// The second safety net: IAM's credential report names every user's last
/// key use in one document, so one request pair covers every key of an
/// account where GetAccessKeyLastUsed costs one request per key.
#[test]
fn the_credential_report_catches_an_unlogged_use_for_every_key_at_once() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let minted = env.run(&["token", "mint", "aws", "--count", "3", "--json"]).ok().json();
    let key = minted[1]["access_key_id"].as_str().unwrap().to_string();
    let secret = env.run(&["token", "show", &key, "--reveal-secret", "--json"]).ok().json()["secret_access_key"]
        .as_str()
        .unwrap()
        .to_string();
    let report = ["safety-net", "--method", "credential-report", "--grace-minutes", "0"];
    let out = env.run(&report).ok();
    assert!(out.stdout.is_empty(), "nothing used yet: {}", out.stdout);
    assert!(out.stderr.contains("checked 3") && out.stderr.contains("1 credential report(s) read"), "{}", out.stderr);
    assert!(
        out.stderr.contains("iam:GetCredentialReport") && !out.stderr.contains("GetAccessKeyLastUsed"),
        "{}",
        out.stderr
    );

    let (ok, _, err) = aws_cli(&moto.endpoint, &key, &secret, &["sts", "get-caller-identity"]);
    assert!(ok, "{err}");
    let out = env.run(&report).ok();
    let inc: serde_json::Value = serde_json::from_str(out.stdout.lines().next().expect("an incident line")).unwrap();
    assert_eq!(inc["type"], "incident.opened");
    assert_eq!(inc["token"]["access_key_id"], key.as_str(), "the key whose user the report names");
    let event = &inc["events"][0];
    assert_eq!(
        (event["source"].as_str(), event["origin"].as_str()),
        (Some("safety-net"), Some("iam:GetCredentialReport"))
    );
    assert_eq!(event["event_name"], "call not logged by CloudTrail");
    // The same use, seen again per key, is the same finding: nothing new.
    let out = env.run(&["safety-net", "--method", "last-used", "--grace-minutes", "0"]).ok();
    assert!(out.stdout.is_empty(), "raised once: {}", out.stdout);
    let listed = env.run(&["incident", "list", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

/// Writes records as one CloudTrail log file and ingests it.
#[test]
fn end_to_end_on_moto_s3_notifications_and_eventbridge() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    // Someone already made the bucket, with a policy statement and a
    // notification of their own: bootstrap merges and keeps both. (moto
    // does not store an EventBridge configuration, so that one, kept by
    // the same code, cannot be shown here.)
    let bucket = "cloudtrail-123456789012-us-east-1";
    let cli = |args: &[&str]| {
        let (ok, out, err) = aws_cli(&moto.endpoint, "testing", "testing", args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    cli(&["s3api", "create-bucket", "--bucket", bucket]);
    let theirs = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"AuditorsRead","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::123456789012:root"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    );
    cli(&["s3api", "put-bucket-policy", "--bucket", bucket, "--policy", &theirs]);
    cli(&["sqs", "create-queue", "--queue-name", "audit-copies"]);
    cli(&[
        "s3api",
        "put-bucket-notification-configuration",
        "--bucket",
        bucket,
        "--notification-configuration",
        r#"{"QueueConfigurations":[{"Id":"audit","QueueArn":"arn:aws:sqs:us-east-1:123456789012:audit-copies","Events":["s3:ObjectRemoved:*"]}]}"#,
    ]);
    // The policies of the three jobs, for this account's names.
    let mint_policy = env.run(&["aws", "policy", "mint"]).ok().json();
    let text = mint_policy.to_string();
    assert!(
        text.contains("iam:PermissionsBoundary") && text.contains("arn:aws:iam::123456789012:policy/baseline-boundary"),
        "{text}"
    );
    let other = env.run(&["aws", "policy", "ingest", "--account", "210987654321"]).ok().json();
    assert!(other.to_string().contains("arn:aws:sqs:us-east-1:210987654321:cloudtrail-log-files"), "{other}");
    assert!(env
        .run(&["aws", "policy", "admin"])
        .fails()
        .stderr
        .contains("choose bootstrap, mint, ingest, decoys or boundary"));
    // A region that is not one is named before anything is asked of AWS.
    let typo = env.run(&["aws", "verify", "--regions", "eu-wets"]).fails();
    assert!(typo.stderr.contains("\"eu-wets\" is not an AWS region name"), "{}", typo.stderr);
    // The canary account: idempotent bootstrap (every enabled region, as
    // moto lists them), then verify passes.
    let out = env.run(&["aws", "bootstrap"]).ok();
    assert!(out.stdout.contains("created"), "{}", out.stdout);
    assert!(out.stdout.contains("eu-west-1") && out.stdout.contains("ap-southeast-2"), "{}", out.stdout);
    let kept: serde_json::Value =
        serde_json::from_str(&cli(&["s3api", "get-bucket-policy", "--bucket", bucket])).unwrap();
    let kept: serde_json::Value = serde_json::from_str(kept["Policy"].as_str().unwrap()).unwrap();
    let sids: Vec<&str> = kept["Statement"].as_array().unwrap().iter().filter_map(|s| s["Sid"].as_str()).collect();
    assert_eq!(sids, ["AuditorsRead", "AWSCloudTrailAclCheck", "AWSCloudTrailWrite"], "{kept}");
    let notifications = cli(&["s3api", "get-bucket-notification-configuration", "--bucket", bucket]);
    assert!(
        notifications.contains(":audit-copies") && notifications.contains(":cloudtrail-log-files"),
        "{notifications}"
    );
    let again = env.run(&["aws", "bootstrap"]).ok();
    assert!(
        !again.stdout.contains("created") && !again.stdout.contains("repaired"),
        "nothing changes: {}",
        again.stdout
    );
    let verify = env.run(&["aws", "verify"]).ok();
    assert!(verify.stdout.contains("everything detection needs is in place"), "{}", verify.stdout);
    // Both rules receive read-only calls too (an intruder's first moves);
    // a rule in plain ENABLED state fails verify and bootstrap repairs it.
    for rule in ["cloudtrail-api-calls", "cloudtrail-api-calls-exposures"] {
        let (ok, described, err) =
            aws_cli(&moto.endpoint, "testing", "testing", &["events", "describe-rule", "--name", rule]);
        assert!(ok, "{err}");
        let described: serde_json::Value = serde_json::from_str(&described).unwrap();
        assert_eq!(described["State"], "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", "{rule}");
    }
    let (ok, _, err) =
        aws_cli(&moto.endpoint, "testing", "testing", &["events", "enable-rule", "--name", "cloudtrail-api-calls"]);
    assert!(ok, "{err}");
    let refused = env.run(&["aws", "verify"]).fails();
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains("receives no read-only calls"), "{said}");
    env.run(&["aws", "bootstrap"]).ok();
    env.run(&["aws", "verify"]).ok();
    // CloudTrail may write into the bucket for this trail only, and the
    // queues take messages from this account's sources only.
    let (ok, policy, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["s3api", "get-bucket-policy", "--bucket", "cloudtrail-123456789012-us-east-1"],
    );
    assert!(ok, "{err}");
    let policy: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy["Policy"].as_str().unwrap()).unwrap();
    for statement in policy["Statement"].as_array().unwrap().iter().filter(|s| s["Sid"] != "AuditorsRead") {
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:SourceArn"],
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/account-trail",
            "{statement}"
        );
    }
    let (ok, url, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["sqs", "get-queue-url", "--queue-name", "cloudtrail-log-files"],
    );
    assert!(ok, "{err}");
    let url: serde_json::Value = serde_json::from_str(&url).unwrap();
    let (ok, attributes, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &[
            "sqs",
            "get-queue-attributes",
            "--queue-url",
            url["QueueUrl"].as_str().unwrap(),
            "--attribute-names",
            "Policy",
        ],
    );
    assert!(ok, "{err}");
    let attributes: serde_json::Value = serde_json::from_str(&attributes).unwrap();
    let queue_policy: serde_json::Value =
        serde_json::from_str(attributes["Attributes"]["Policy"].as_str().unwrap()).unwrap();
    assert_eq!(
        queue_policy["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"], "123456789012",
        "{queue_policy}"
    );
    let loose = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AWSCloudTrailAclCheck","Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:GetBucketAcl","Resource":"arn:aws:s3:::cloudtrail-123456789012-us-east-1"},{"Sid":"AWSCloudTrailWrite","Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::cloudtrail-123456789012-us-east-1/AWSLogs/123456789012/*"}]}"#;
    let (ok, _, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["s3api", "put-bucket-policy", "--bucket", "cloudtrail-123456789012-us-east-1", "--policy", loose],
    );
    assert!(ok, "{err}");
    let refused = env.run(&["aws", "verify"]).fails();
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains("lets CloudTrail write for any trail"), "{said}");
    env.run(&["aws", "bootstrap"]).ok();
    env.run(&["aws", "verify"]).ok();
    // The S3 data events leave out the log bucket's own objects; a trail that
    // logs them fails verify (recursive, billed logging) and is repaired.
    let selectors = || {
        let (ok, out, err) = aws_cli(
            &moto.endpoint,
            "testing",
            "testing",
            &["cloudtrail", "get-event-selectors", "--trail-name", "account-trail"],
        );
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let s3 = selectors()["AdvancedEventSelectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Name"] == "S3 data events")
        .cloned()
        .unwrap();
    assert!(
        s3["FieldSelectors"].as_array().unwrap().iter().any(|f| f["Field"] == "resources.ARN"
            && f["NotStartsWith"] == serde_json::json!(["arn:aws:s3:::cloudtrail-123456789012-us-east-1/"])),
        "{s3}"
    );
    let everything = r#"[{"Name":"all","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]},
        {"Name":"s3","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]}]},
        {"Name":"lambda","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::Lambda::Function"]}]}]"#;
    let (ok, _, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &[
            "cloudtrail",
            "put-event-selectors",
            "--trail-name",
            "account-trail",
            "--advanced-event-selectors",
            everything,
        ],
    );
    assert!(ok, "{err}");
    let refused = env.run(&["aws", "verify"]).fails();
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains("S3 data events of the log bucket itself are logged"), "{said}");
    // The SNS probe (sns:Publish reveals a key's ARN) is logged only with SNS data events.
    assert!(said.contains("SNS data events off"), "{said}");
    env.run(&["aws", "bootstrap"]).ok();
    env.run(&["aws", "verify"]).ok();
    let types: Vec<String> = selectors()["AdvancedEventSelectors"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["FieldSelectors"].as_array().unwrap().clone())
        .filter(|f| f["Field"] == "resources.type")
        .flat_map(|f| {
            f["Equals"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect::<Vec<_>>()
        })
        .collect();
    for t in ["AWS::S3::Object", "AWS::Lambda::Function", "AWS::SNS::Topic", "AWS::SNS::PlatformEndpoint"] {
        assert!(types.iter().any(|x| x == t), "{t} not logged: {types:?}");
    }

    // A honey key, placed.
    let minted = env.run(&["token", "mint", "aws", "--json"]).ok().json();
    let key = minted[0]["access_key_id"].as_str().unwrap().to_string();
    let user = minted[0]["iam_user_name"].as_str().unwrap().to_string();
    env.run(&[
        "placement",
        "add",
        &key,
        "--host",
        "bastion-1",
        "--path",
        "/home/ops/.aws/credentials",
        "--owner",
        "Ops",
    ])
    .ok();
    let secret = env.run(&["token", "show", &key, "--reveal-secret", "--json"]).ok().json()["secret_access_key"]
        .as_str()
        .unwrap()
        .to_string();

    // The intruder uses it.
    let (ok, out, err) = aws_cli(&moto.endpoint, &key, &secret, &["sts", "get-caller-identity"]);
    assert!(ok && out.contains(&user), "{err}");

    // CloudTrail delivers a log file with that use into the bucket (moto writes none itself).
    let now = chrono::Utc::now();
    let t = |s: i64| (now + chrono::Duration::seconds(s)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let log = serde_json::json!({"Records": [
        trail_record(&key, &user, "ev-1", &t(-60), "sts.amazonaws.com", "GetCallerIdentity", None),
        trail_record(&key, &user, "ev-2", &t(-30), "s3.amazonaws.com", "ListBuckets", Some("AccessDenied")),
        trail_record("AKIAOTHEROTHEROTHER1", "someone-else", "ev-x", &t(-20), "s3.amazonaws.com", "ListBuckets", None),
    ]});
    let file = env.dir.path().join("log.json.gz");
    std::fs::write(&file, gzip(log.to_string().as_bytes())).unwrap();
    let object = format!("s3://cloudtrail-123456789012-us-east-1/AWSLogs/123456789012/CloudTrail/us-east-1/{}/123456789012_CloudTrail_us-east-1_{}_abc.json.gz", now.format("%Y/%m/%d"), now.format("%Y%m%dT%H%MZ"));
    let (ok, _, err) = aws_cli(&moto.endpoint, "testing", "testing", &["s3", "cp", file.to_str().unwrap(), &object]);
    assert!(ok, "{err}");

    // The S3 → SQS notification is consumed (after S3's test event).
    let out = env.run(&["watch", "sqs", "--queue", "cloudtrail-log-files", "--once"]).ok();
    let incidents: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(incidents.len(), 1, "exactly one incident: {}\n{}", out.stdout, out.stderr);
    let inc = &incidents[0];
    assert_eq!(inc["incident"]["access_key_id"], key.as_str());
    assert_eq!(inc["incident"]["event_count"], 2);
    assert_eq!(
        inc["placement"],
        format!("Key {key} was placed on Ops' machine (host bastion-1) in /home/ops/.aws/credentials.")
    );
    assert_eq!(inc["activity"]["source_ips"], serde_json::json!(["198.51.100.23"]));
    assert_eq!(inc["activity"]["apis"], serde_json::json!(["GetCallerIdentity", "ListBuckets"]));
    assert!(inc["events"][0]["origin"]
        .as_str()
        .unwrap()
        .starts_with("s3://cloudtrail-123456789012-us-east-1/AWSLogs/"));
    assert!(out.stderr.contains("1 object(s)"), "{}", out.stderr);

    // EventBridge delivers to the events queue: a new call joins the incident,
    // and a call already read from S3 is stored once.
    let entries = serde_json::json!([
        {"Source": "honeytrail.test", "DetailType": "AWS API Call via CloudTrail",
         "Detail": trail_record(&key, &user, "ev-3", &t(-10), "ec2.amazonaws.com", "DescribeInstances", Some("UnauthorizedOperation")).to_string()},
        {"Source": "honeytrail.test", "DetailType": "AWS API Call via CloudTrail",
         "Detail": trail_record(&key, &user, "ev-1", &t(-60), "sts.amazonaws.com", "GetCallerIdentity", None).to_string()},
    ]);
    let (ok, _, err) =
        aws_cli(&moto.endpoint, "testing", "testing", &["events", "put-events", "--entries", &entries.to_string()]);
    assert!(ok, "{err}");
    let out = env.run(&["watch", "sqs", "--queue", "cloudtrail-api-calls", "--once"]).ok();
    let update: serde_json::Value = serde_json::from_str(out.stdout.lines().next().expect("an update line")).unwrap();
    assert_eq!(update["type"], "incident.updated");
    assert_eq!(update["incident"]["event_count"], 3);
    assert!(update["activity"]["error_codes"].as_array().unwrap().iter().any(|c| c == "UnauthorizedOperation"));
    assert!(out.stderr.contains("(1 already stored)"), "{}", out.stderr);
    assert_eq!(env.run(&["incident", "list", "--json"]).ok().json().as_array().unwrap().len(), 1);

    // And the responder gets it: a signed webhook with the placement sentence and the custody chain.
    let receiver = Receiver::start(0, vec![]);
    let port = receiver.port;
    env.run_stdin(
        &["channel", "add", "webhook", "soc", "--url", &format!("http://127.0.0.1:{port}/"), "--secret-stdin"],
        "e2e-secret\n",
    )
    .ok();
    // Three calls by two routes, one alert: updates waiting to go out are coalesced.
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1"));
    let (head, body) = receiver.requests.lock().unwrap()[0].clone();
    let sig = head.lines().find_map(|l| l.strip_prefix("x-honeytrail-signature: ")).unwrap().trim().to_string();
    let t: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
    assert_eq!(sig, honeytrail_alert::channels::webhook::signature("e2e-secret", t, body.as_bytes()));
    let alert: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alert["placement"], inc["placement"]);
    assert_eq!(alert["incident"]["event_count"], 3);
    assert!(
        alert["may_have_leaked_at"][0].as_str().unwrap().contains("generated in canary account 123456789012"),
        "{alert}"
    );
    let runbook = alert["runbook"].as_str().unwrap();
    assert!(
        runbook.contains("Rule out a false positive") && runbook.contains(inc["placement"].as_str().unwrap()),
        "{runbook}"
    );
    assert_eq!(alert["schema"], "honeytrail.alert.v1");

    // AWS finds the key published: its Health finding reaches the events
    // queue through the exposure rule and opens an "exposed" incident.
    let finding = serde_json::json!({"eventArn": "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/E2E",
        "service": "RISK", "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED", "eventTypeCategory": "issue",
        "eventDescription": [{"language": "en_US", "latestDescription": format!("Your AWS Access Key {key} is exposed publicly on https://github.com/example/leak")}],
        "affectedEntities": [{"entityValue": key}]});
    let entries =
        serde_json::json!([{"Source": "aws.health", "DetailType": "AWS Health Event", "Detail": finding.to_string()}]);
    let (ok, _, err) =
        aws_cli(&moto.endpoint, "testing", "testing", &["events", "put-events", "--entries", &entries.to_string()]);
    assert!(ok, "{err}");
    let out = env.run(&["watch", "sqs", "--queue", "cloudtrail-api-calls", "--once"]).ok();
    let exposed: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().expect("an incident line")).unwrap();
    assert_eq!(exposed["incident"]["kind"], "exposed", "{exposed}");
    assert!(exposed["events"][0]["error_message"].as_str().unwrap().contains("github.com/example/leak"));

    // A call made in another region: that region's rule (read-only
    // inclusive) forwards it to the home region's bus, whose rule puts it
    // on the one events queue.
    let forwarding: serde_json::Value = serde_json::from_str(&cli(&[
        "events",
        "list-targets-by-rule",
        "--rule",
        "cloudtrail-api-calls",
        "--region",
        "eu-west-1",
    ]))
    .unwrap();
    assert_eq!(forwarding["Targets"][0]["Arn"], "arn:aws:events:us-east-1:123456789012:event-bus/default");
    assert_eq!(forwarding["Targets"][0]["RoleArn"], "arn:aws:iam::123456789012:role/cloudtrail-api-calls-forwarder");
    let described: serde_json::Value = serde_json::from_str(&cli(&[
        "events",
        "describe-rule",
        "--name",
        "cloudtrail-api-calls",
        "--region",
        "eu-west-1",
    ]))
    .unwrap();
    assert_eq!(described["State"], "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS");
    let far_time = (now - chrono::Duration::seconds(5)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut far = trail_record(&key, &user, "ev-4", &far_time, "s3.amazonaws.com", "ListBuckets", Some("AccessDenied"));
    far["awsRegion"] = serde_json::json!("eu-west-1");
    let entries = serde_json::json!([{"Source": "honeytrail.test", "DetailType": "AWS API Call via CloudTrail", "Detail": far.to_string()}]);
    cli(&["events", "put-events", "--region", "eu-west-1", "--entries", &entries.to_string()]);
    let out = env.run(&["watch", "sqs", "--queue", "cloudtrail-api-calls", "--once"]).ok();
    let update: serde_json::Value = serde_json::from_str(out.stdout.lines().next().expect("an update line")).unwrap();
    assert_eq!(update["incident"]["event_count"], 4, "{update}");
    assert!(update["activity"]["regions"].as_array().unwrap().iter().any(|r| r == "eu-west-1"), "{update}");

    // A region without its rules fails verify, by name, and is repaired.
    cli(&[
        "events",
        "remove-targets",
        "--rule",
        "cloudtrail-api-calls",
        "--ids",
        "honeytrail",
        "--region",
        "sa-east-1",
    ]);
    cli(&["events", "delete-rule", "--name", "cloudtrail-api-calls", "--region", "sa-east-1"]);
    let refused = env.run(&["aws", "verify"]).fails();
    assert!(refused.stdout.contains("sa-east-1: cloudtrail-api-calls missing"), "{}", refused.stdout);
    env.run(&["aws", "bootstrap"]).ok();
    env.run(&["aws", "verify"]).ok();
}

#[test]
fn s3_polling_resumes_without_rereading_or_skipping() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    let (ok, _, err) = aws_cli(&moto.endpoint, "testing", "testing", &["s3", "mb", "s3://trail-logs"]);
    assert!(ok, "{err}");
    let put = |name: &str, id: &str, minute: u32| {
        let log = serde_json::json!({"Records": [trail_record(KEY, "svc-reader", id, &format!("2026-11-28T09:{minute:02}:00Z"), "s3.amazonaws.com", "ListBuckets", Some("AccessDenied"))]});
        let file = env.dir.path().join(format!("{name}.json.gz"));
        std::fs::write(&file, gzip(log.to_string().as_bytes())).unwrap();
        let key = format!("s3://trail-logs/AWSLogs/123456789012/CloudTrail/us-east-1/2026/11/28/{name}.json.gz");
        let (ok, _, err) = aws_cli(&moto.endpoint, "testing", "testing", &["s3", "cp", file.to_str().unwrap(), &key]);
        assert!(ok, "{err}");
    };
    put("a", "s3-1", 0);
    put("b", "s3-2", 1);
    let digest = env.dir.path().join("d.json.gz");
    std::fs::write(&digest, gzip(br#"{"digestStartTime":"2026-11-28T09:00:00Z"}"#)).unwrap();
    aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &[
            "s3",
            "cp",
            digest.to_str().unwrap(),
            "s3://trail-logs/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/11/28/d.json.gz",
        ],
    );

    let args = ["watch", "s3", "--bucket", "trail-logs", "--prefix", "AWSLogs/", "--once"];
    let first = env.run(&args).ok();
    assert!(first.stderr.contains("3 new object(s)"), "{}", first.stderr);
    let inc: serde_json::Value = serde_json::from_str(first.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(inc["incident"]["event_count"], 2);
    // A restart reads nothing again…
    let second = env.run(&args).ok();
    assert!(second.stderr.contains("0 new object(s)") && second.stdout.is_empty(), "{}", second.stderr);
    // …and picks up exactly what arrived meanwhile.
    put("c", "s3-3", 2);
    let third = env.run(&args).ok();
    assert!(third.stderr.contains("1 new object(s)"), "{}", third.stderr);
    let update: serde_json::Value = serde_json::from_str(third.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        (update["type"].as_str(), update["incident"]["event_count"].as_i64()),
        (Some("incident.updated"), Some(3))
    );
}

/// `honeytrail serve` as a child process, stopped when dropped.
#[test]
fn eventbridge_over_http_needs_the_shared_secret() {
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    env.run(&["placement", "add", KEY, "--host", "web-3", "--path", "/srv/app/.env"]).ok();
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", "correct horse battery staple, twice over")]);
    let event = serde_json::json!({
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.sts", "account": "123456789012", "time": "2026-11-28T09:00:00Z", "region": "us-east-1", "resources": [],
        "detail": trail_record(KEY, "svc-reader", "eb-1", "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None)
    })
    .to_string();
    let json = ("Content-Type", "application/json");
    // No secret, a wrong one: refused, counted, not stored.
    assert_eq!(server.call("POST", "/ingest/eventbridge", &[json], &event).0, 401);
    let (status, body) = server.call("POST", "/ingest/eventbridge", &[json, ("x-honeytrail-secret", "wrong")], &event);
    assert_eq!(status, 401);
    assert!(body.contains("\"code\":\"unauthenticated\""), "{body}");
    assert_eq!(env.run(&["incident", "list", "--all", "--json"]).ok().json().as_array().unwrap().len(), 0);
    let secret = ("x-honeytrail-secret", "correct horse battery staple, twice over");
    assert_eq!(server.call("POST", "/ingest/eventbridge", &[json, secret], "{not json").0, 400);
    let (status, body) = server.call("POST", "/ingest/eventbridge", &[json, secret], &event);
    assert_eq!(status, 202, "{body}");
    assert!(body.contains("\"matched\":1"), "{body}");
    let incidents = env.run(&["incident", "list", "--json"]).ok().json();
    assert_eq!(incidents.as_array().unwrap().len(), 1);
    assert_eq!(incidents[0]["access_key_id"], KEY);
    // /metrics tells whether a key was used: not without the token.
    assert_eq!(server.call("GET", "/metrics", &[], "").0, 401);
    assert_eq!(server.call("GET", "/metrics", &[("Authorization", "Bearer wrong")], "").0, 401);
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"honeytrail_receiver_requests_total{receiver="eventbridge",outcome="unauthenticated"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("honeytrail_matches_total 1"), "{metrics}");
}

/// Receiver secrets an attacker could guess are refused at start; refused
/// requests are throttled per address; /metrics is off unless configured.
#[test]
fn serve_refuses_short_secrets_and_throttles_refusals() {
    let env = Env::new();
    for var in ["HONEYTRAIL_EVENTBRIDGE_SECRET", "HONEYTRAIL_CANARYTOKENS_SECRET", "HONEYTRAIL_METRICS_TOKEN"] {
        let out = env.command(&["serve", "--listen", "127.0.0.1:0"]).env(var, "short-secret").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}: {stderr}");
        assert!(stderr.contains("at least 32") && !stderr.contains("short-secret"), "{var}: {stderr}");
    }
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", "correct horse battery staple, twice over")]);
    let wrong = [("Content-Type", "application/json"), ("x-honeytrail-secret", "guess")];
    let statuses: Vec<u16> = (0..25).map(|_| server.call("POST", "/ingest/eventbridge", &wrong, "{}").0).collect();
    assert_eq!(&statuses[..20], &[401; 20]);
    assert_eq!(&statuses[20..], &[429; 5], "refusals are throttled per address");
    let right =
        [("Content-Type", "application/json"), ("x-honeytrail-secret", "correct horse battery staple, twice over")];
    assert_eq!(server.call("POST", "/ingest/eventbridge", &right, "{}").0, 429, "even the right secret waits");
}

#[test]
fn canarytokens_webhooks_match_imported_tokens() {
    let env = Env::new();
    env.run(&[
        "token",
        "import",
        "aws",
        "--access-key-id",
        "AKIASP2TPHJSQH3FJRUX",
        "--source",
        "canarytokens.org",
        "--label",
        "canarytoken=q8h2t9x0abc",
    ])
    .ok();
    let server = Server::start(&env, &[("HONEYTRAIL_CANARYTOKENS_SECRET", "hook-7f3a0c9e5d1b2a4f6e8d0c2b4a6f8e0d")]);
    let payload = serde_json::json!({
        "manage_url": "https://canarytokens.org/manage?token=q8h2t9x0abc&auth=0123456789abcdef",
        "memo": "payments laptop fleet", "channel": "AWS API Key Token",
        "time": "2026-11-28 08:15:02 (UTC)",
        "additional_data": {"src_ip": "203.0.113.99", "useragent": "aws-cli/2.15.0"}
    })
    .to_string();
    assert_eq!(server.call("POST", "/ingest/canarytokens/guess", &[], &payload).0, 401);
    let (status, body) =
        server.call("POST", "/ingest/canarytokens/hook-7f3a0c9e5d1b2a4f6e8d0c2b4a6f8e0d", &[], &payload);
    assert_eq!(status, 202, "{body}");
    let incidents = env.run(&["incident", "list", "--json"]).ok().json();
    let id = incidents[0]["id"].as_i64().unwrap().to_string();
    let shown = env.run(&["incident", "show", &id, "--json"]).ok().json();
    assert_eq!(shown["activity"]["source_ips"], serde_json::json!(["203.0.113.99"]));
    assert_eq!(shown["events"][0]["event_time"], "2026-11-28T08:15:02Z");
    assert_eq!(shown["events"][0]["source"], "canarytokens");
    let unknown = payload.replace("q8h2t9x0abc", "notours");
    assert_eq!(server.call("POST", "/ingest/canarytokens/hook-7f3a0c9e5d1b2a4f6e8d0c2b4a6f8e0d", &[], &unknown).0, 422);
}

/// `honeytrail … | head` ends quietly: a closed pipe stops the output
/// without an error message (the default action of SIGPIPE).
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::io::{BufRead, BufReader};
    let env = Env::new();
    let csv_path = env.dir.path().join("many.csv");
    let mut csv = String::from("access_key_id,host,path\n");
    for i in 0..3000u64 {
        let key = honeytrail_core::keyid::synthesize(123456789012, i);
        csv.push_str(&format!("{key},host-{i},/home/u{i}/.aws/credentials\n"));
    }
    std::fs::write(&csv_path, &csv).unwrap();
    env.run(&["token", "import", "aws", "--from", csv_path.to_str().unwrap()]).ok();
    // Far more than a pipe holds, so the writer meets the closed end.
    let mut child = env
        .command(&["placement", "list", "--csv"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("placement,access_key_id,host,path"), "{first}");
    // The reader is gone now (dropped above): the rest of the output has nowhere to go.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "no panic or error message on a closed pipe: {stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert!(out.status.success() || out.status.signal() == Some(13), "{:?}", out.status);
}

/// Which keys are decoys and where they are is for honeytrail's user only:
/// the data directory is 0700 and the database files 0600, and an existing
/// installation made before is narrowed.
#[test]
fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    let data = env.data();
    assert_eq!(mode(&data), 0o700);
    for name in ["honeytrail.sqlite", "honeytrail.sqlite-wal", "honeytrail.sqlite-shm", "secret.key"] {
        let file = data.join(name);
        if file.exists() {
            assert_eq!(mode(&file), 0o600, "{name}");
        }
    }
    assert!(data.join("honeytrail.sqlite").exists());
    // An installation from before: opened up, then narrowed on the next command.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(data.join("honeytrail.sqlite"), std::fs::Permissions::from_mode(0o644)).unwrap();
    env.run(&["token", "list"]).ok();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("honeytrail.sqlite")), 0o600);
}

/// Tables print what others wrote with its control characters escaped: a
/// memo or a placement note cannot clear the screen or write the clipboard.
#[test]
fn tables_never_pass_control_characters_to_the_terminal() {
    let env = Env::new();
    let hostile = "x\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\r\nFAKE";
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--memo", hostile]).ok();
    env.run(&["placement", "add", KEY, "--host", hostile, "--path", "/srv/.env"]).ok();
    for args in [&["token", "list"][..], &["placement", "list"], &["audit", "list"]] {
        let out = env.run(args).ok().stdout;
        assert!(!out.contains('\u{1b}') && !out.contains('\u{7}') && !out.contains('\r'), "{args:?}: {out:?}");
        assert!(!out.lines().any(|l| l.starts_with("FAKE")), "{args:?}: {out}");
    }
    assert!(env.run(&["placement", "list"]).ok().stdout.contains("\\u{1b}"), "shown, escaped");
}

/// One log file that cannot be read costs only its own message: the others
/// are read, the watcher ends with an error naming the file, and the message
/// stays for SQS to retry. An SNS subscription confirmation is reported with
/// its URL for a person, never fetched or dropped silently.
#[test]
fn a_log_file_that_cannot_be_read_costs_only_its_message() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    env.run(&["aws", "bootstrap", "--regions", "us-east-1"]).ok();
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    let sqs = |args: &[&str]| {
        let (ok, out, err) = aws_cli(&moto.endpoint, "testing", "testing", args);
        assert!(ok, "{err}");
        out
    };
    let url: serde_json::Value =
        serde_json::from_str(&sqs(&["sqs", "get-queue-url", "--queue-name", "cloudtrail-log-files"])).unwrap();
    let url = url["QueueUrl"].as_str().unwrap().to_string();
    // Bootstrap gave the queue a dead-letter queue, after five receives.
    let redrive: serde_json::Value = serde_json::from_str(&sqs(&[
        "sqs",
        "get-queue-attributes",
        "--queue-url",
        &url,
        "--attribute-names",
        "RedrivePolicy",
    ]))
    .unwrap();
    let redrive: serde_json::Value =
        serde_json::from_str(redrive["Attributes"]["RedrivePolicy"].as_str().unwrap()).unwrap();
    assert!(
        redrive["deadLetterTargetArn"].as_str().unwrap().ends_with(":cloudtrail-log-files-dead-letters"),
        "{redrive}"
    );
    assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), "5");
    let missing = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "cloudtrail-123456789012-us-east-1"}, "object": {"key": "AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/02/gone.json.gz"}}}]});
    let confirm = serde_json::json!({"Type": "SubscriptionConfirmation", "MessageId": "m-1", "Token": "tok",
        "TopicArn": "arn:aws:sns:us-east-1:111122223333:org-trail", "Message": "You have chosen to subscribe",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:111122223333:org-trail&Token=tok"});
    let record =
        trail_record(KEY, "svc", "ev-q", "2026-12-02T04:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None);
    let document = serde_json::json!({"Records": [record]});
    for body in [missing, confirm, document] {
        sqs(&["sqs", "send-message", "--queue-url", &url, "--message-body", &body.to_string()]);
    }
    let out = env.run(&["watch", "sqs", "--queue", "cloudtrail-log-files", "--once"]).fails();
    let incidents: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(incidents.len(), 1, "the readable message is read: {}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("cannot read s3://cloudtrail-123456789012-us-east-1/AWSLogs/"), "{}", out.stderr);
    assert!(
        out.stderr.contains("confirm at https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"),
        "{}",
        out.stderr
    );
    let audit = env.run(&["audit", "list", "--json"]).ok().json();
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "sqs.subscription"), "{audit}");
    // The unreadable one was not deleted: it is still in the queue.
    let attributes: serde_json::Value = serde_json::from_str(&sqs(&[
        "sqs",
        "get-queue-attributes",
        "--queue-url",
        &url,
        "--attribute-names",
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
    ]))
    .unwrap();
    let count = |k: &str| attributes["Attributes"][k].as_str().unwrap().parse::<u32>().unwrap();
    assert_eq!(
        count("ApproximateNumberOfMessages") + count("ApproximateNumberOfMessagesNotVisible"),
        1,
        "{attributes}"
    );
    // It keeps failing: after five receives SQS moves it to the dead-letter
    // queue, and the watcher, still going, says so (visibility 0 here so the
    // retries come at once).
    sqs(&["sqs", "set-queue-attributes", "--queue-url", &url, "--attributes", "VisibilityTimeout=0"]);
    let poison = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "cloudtrail-123456789012-us-east-1"}, "object": {"key": "AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/02/gone-too.json.gz"}}}]});
    sqs(&["sqs", "send-message", "--queue-url", &url, "--message-body", &poison.to_string()]);
    let another = serde_json::json!({"Records": [trail_record(KEY, "svc", "ev-r", "2026-12-02T04:05:00Z", "sts.amazonaws.com", "GetCallerIdentity", None)]});
    let out = env.run(&["watch", "sqs", "--queue", "cloudtrail-log-files", "--once"]).fails();
    assert!(out.stderr.contains("message(s) in the dead-letter queue"), "{}", out.stderr);
    let said = out.stderr.lines().filter(|l| l.starts_with("error: cannot read") && l.contains("gone-too.json.gz"));
    assert_eq!(said.count(), 1, "one line per file: {}", out.stderr);
    sqs(&["sqs", "send-message", "--queue-url", &url, "--message-body", &another.to_string()]);
    let out = env.run(&["watch", "sqs", "--queue", "cloudtrail-log-files", "--once"]).ok();
    assert!(out.stdout.contains("incident.updated"), "the watcher goes on: {}\n{}", out.stdout, out.stderr);
    let dead: serde_json::Value =
        serde_json::from_str(&sqs(&["sqs", "get-queue-url", "--queue-name", "cloudtrail-log-files-dead-letters"]))
            .unwrap();
    let dead = sqs(&["sqs", "receive-message", "--queue-url", dead["QueueUrl"].as_str().unwrap()]);
    assert!(dead.contains("gone-too.json.gz"), "{dead}");
    let audit = env.run(&["audit", "list", "--json"]).ok().json();
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "sqs.dead_letters"), "{audit}");
}

/// Enrolment secrets from the command line: printed once, listed without
/// the secret, limited in uses and time, revoked, every change audited.
#[test]
fn enrolment_secrets_from_the_cli() {
    let env = Env::new();
    let refused = env.run(&["enroll", "create", "--uses", "3", "--template", "desktop"]).fails();
    assert!(refused.stderr.contains("no placement template desktop"), "{}", refused.stderr);
    let out = env
        .run(&["enroll", "create", "--uses", "3", "--expires", "2d", "--label", "fleet=web", "--template", "server"])
        .ok();
    let secret = out.stdout.trim().to_string();
    assert!(secret.len() >= 40, "{secret}");
    assert!(out.stderr.contains("shown only now, stored hashed"), "{}", out.stderr);
    let listed = env.run(&["enroll", "list", "--json"]).ok().json();
    assert_eq!((listed[0]["uses"].as_i64(), listed[0]["used"].as_i64()), (Some(3), Some(0)));
    assert_eq!(listed[0]["labels"]["fleet"], "web");
    assert_eq!(listed[0]["template"], "server");
    assert!(!listed.to_string().contains(&secret), "never listed");
    let refused = env.run(&["enroll", "create"]).fails();
    assert!(refused.stderr.contains("--uses"), "{}", refused.stderr);
    let refused = env.run(&["enroll", "create", "--unlimited", "--expires", "100d"]).fails();
    assert!(refused.stderr.contains("within 90 days"), "{}", refused.stderr);
    let id = listed[0]["id"].to_string();
    env.run(&["enroll", "revoke", &id]).ok();
    let table = env.run(&["enroll", "list"]).ok().stdout;
    assert!(table.contains("revoked") && table.contains("0/3"), "{table}");
    assert!(env.run(&["enroll", "revoke", &id]).fails().stderr.contains("already revoked"));
    let audit = env.run(&["audit", "list", "--json"]).ok().json();
    let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"enrollment.create") && actions.contains(&"enrollment.revoke"), "{actions:?}");

    // Placement templates: two shipped, more added, checked, removed.
    let shipped = env.run(&["template", "list", "--json"]).ok().json();
    let names: Vec<&str> = shipped.as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["laptop", "server"]);
    env.run(&[
        "template",
        "add",
        "app-env",
        "--format",
        "dotenv",
        "--path",
        "/opt/app/.env",
        "--owner",
        "deploy",
        "--mode",
        "640",
    ])
    .ok();
    let shown = env.run(&["template", "show", "app-env", "--json"]).ok().json();
    assert_eq!((shown["path"].as_str(), shown["mode"].as_u64()), (Some("/opt/app/.env"), Some(0o640)));
    let refused =
        env.run(&["template", "add", "escape", "--format", "dotenv", "--path", "~/../../etc/cron.d/x"]).fails();
    assert!(refused.stderr.contains("without empty, . or .. components"), "{}", refused.stderr);
    let refused = env.run(&["template", "add", "x", "--format", "docx", "--path", "/opt/x"]).fails();
    assert!(refused.stderr.contains("docx"), "{}", refused.stderr);
    assert!(env.run(&["template", "list"]).ok().stdout.contains("(the home's user)"));
    env.run(&["template", "remove", "app-env"]).ok();
    assert!(env.run(&["template", "show", "app-env"]).fails().stderr.contains("app-env"));
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

/// An audit log as auditd writes it: multi-record events joined by serial,
/// interleaved with others, hex-encoded path and proctitle, an event with
/// no EOE, and noise.
fn audit_log() -> String {
    let title = hex("cat\0/home/deploy/.aws/credentials");
    let spaced = hex("/srv/my app/.env");
    [
        "type=DAEMON_START msg=audit(1764756000.000:1): op=start ver=3.0.9 format=enriched res=success".to_string(),
        "type=SYSCALL msg=audit(1764756131.120:4567): arch=c000003e syscall=257 success=yes exit=3 items=1 ppid=4700 pid=4711 auid=1001 uid=1001 gid=1001 euid=1001 ses=7 comm=\"cat\" exe=\"/usr/bin/cat\" key=\"honeytrail\"\u{1d}AUID=\"deploy\" UID=\"deploy\" EUID=\"deploy\"".into(),
        "type=SYSCALL msg=audit(1764756131.200:4568): arch=c000003e syscall=257 success=yes exit=3 items=1 ppid=1 pid=900 auid=4294967295 uid=0 euid=0 ses=4294967295 comm=\"restic\" exe=\"/usr/bin/restic\" key=\"honeytrail\"".into(),
        "type=CWD msg=audit(1764756131.120:4567): cwd=\"/home/deploy\"".into(),
        "type=PATH msg=audit(1764756131.200:4568): item=0 name=\"/srv/other/.env\" nametype=NORMAL".into(),
        "type=PATH msg=audit(1764756131.120:4567): item=0 name=\".aws/credentials\" inode=1234 nametype=NORMAL".into(),
        format!("type=PROCTITLE msg=audit(1764756131.120:4567): proctitle={title}"),
        "type=EOE msg=audit(1764756131.120:4567): ".into(),
        "type=EOE msg=audit(1764756131.200:4568): ".into(),
        "garbage that is not an audit record".into(),
        "type=SYSCALL msg=audit(1764756140.000:4570): syscall=257 success=yes ppid=1 pid=901 uid=0 euid=0 auid=0 ses=1 comm=\"backup\" exe=\"/opt/backup/bin/agent\" key=\"honeytrail\"".into(),
        format!("type=PATH msg=audit(1764756140.000:4570): item=0 name={spaced} nametype=NORMAL"),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn audit_logs_become_access_evidence_rules_and_bait_touched_incidents() {
    let env = Env::new();
    import_with_secret(&env);
    env.run(&["placement", "add", KEY, "--host", "db-3", "--path", "/home/deploy/.aws/credentials"]).ok();
    env.run(&["placement", "add", KEY, "--host", "db-3", "--path", "/srv/my app/.env"]).ok();

    // Rules for the host's placements; a path auditctl cannot name is refused, clearly.
    let out = env.run(&["auditd", "rules", "--host", "db-3"]).fails();
    assert!(out.stderr.contains("whitespace"), "{}", out.stderr);
    env.run(&["placement", "add", KEY, "--host", "web-1", "--path", "/opt/app/.env"]).ok();
    let rules = env.run(&["auditd", "rules", "--host", "web-1"]).ok().stdout;
    assert_eq!(rules, "-w /opt/app/.env -p r -k honeytrail\n");
    let out = env.run(&["auditd", "rules", "--host", "nowhere"]).fails();
    assert!(out.stderr.contains("nowhere"), "{}", out.stderr);

    // Without node= and without --host the log's host is unknown: said so, nothing filed.
    let log = env.dir.path().join("audit.log");
    std::fs::write(&log, audit_log()).unwrap();
    let out = env.run(&["ingest", "auditd", log.to_str().unwrap()]).fails();
    assert!(out.stderr.contains("--host"), "{}", out.stderr);
    let quiet = [("HONEYTRAIL_EVIDENCE_QUIET_PROGRAMS", "/opt/backup/*"), ("HONEYTRAIL_EVIDENCE_TOUCH_WINDOW", "1s")];
    let ingest = |args: &[&str]| {
        let out = env.command(args).envs(quiet).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = ingest(&["ingest", "auditd", log.to_str().unwrap(), "--host", "db-3"]);
    assert!(said.contains("3 filed now"), "{said}");
    // The same log again (a re-run, a rotated copy): nothing twice.
    let said = ingest(&["ingest", "auditd", log.to_str().unwrap(), "--host", "db-3"]);
    assert!(said.contains("0 filed now, 3 known already"), "{said}");

    let reads = env.run(&["evidence", "list", "--host", "db-3", "--json"]).ok().json();
    let reads = reads.as_array().unwrap();
    let cat = reads.iter().find(|r| r["access"]["process"]["exe"] == "/usr/bin/cat").expect("cat's read");
    assert_eq!(cat["access"]["path"], "/home/deploy/.aws/credentials", "made absolute with CWD");
    assert_eq!(cat["access"]["process"]["cmdline"], "cat /home/deploy/.aws/credentials");
    assert_eq!(cat["access"]["process"]["user"], "deploy");
    assert_eq!(
        (cat["access"]["process"]["pid"].as_u64(), cat["access"]["process"]["session"].as_u64()),
        (Some(4711), Some(7))
    );
    assert_eq!(cat["access_key_id"], KEY);
    let spaced = reads.iter().find(|r| r["access"]["path"] == "/srv/my app/.env").expect("the hex-encoded path");
    assert_eq!(spaced["touch"], "quiet", "a listed backup program");
    let other = reads.iter().find(|r| r["access"]["path"] == "/srv/other/.env").expect("tagged, no placement");
    assert_eq!(other["touch"], "unmatched");
    let table = env.run(&["evidence", "list", "--key", KEY]).ok().stdout;
    assert!(table.contains("/usr/bin/cat") && table.contains("deploy"), "{table}");

    // No use of the key after cat's read: one low-severity bait-touched incident; none for the backup's.
    // Once the touch window is over, a sweep settles the read.
    eventually("a sweep after the touch window", || {
        let out = env.command(&["fleet", "sweep"]).envs(quiet).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("1 with none")
    });
    let incidents = env.run(&["incident", "list", "--all", "--json"]).ok().json();
    let touched: Vec<&serde_json::Value> =
        incidents.as_array().unwrap().iter().filter(|i| i["kind"] == "touched").collect();
    assert_eq!(touched.len(), 1, "{incidents:#}");
    let shown = env.run(&["incident", "show", &touched[0]["id"].to_string(), "--json"]).ok().json();
    assert_eq!(shown["incident"]["severity"], "low");
    assert!(shown["reads"].to_string().contains("/usr/bin/cat"), "{shown:#}");
    let again = env.command(&["fleet", "sweep"]).envs(quiet).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 with none"), "settled once");
}

#[test]
fn hostile_audit_records_are_bounded_and_never_reach_the_terminal_raw() {
    let env = Env::new();
    import_with_secret(&env);
    env.run(&["placement", "add", KEY, "--host", "h", "--path", "/home/x/.aws/credentials"]).ok();
    let evil = hex("/tmp/\u{1b}]0;pwned\u{7}\u{1b}[2Jevil\r\n");
    let title = hex(&format!("{}\0/home/x/.aws/credentials", "A".repeat(100_000)));
    let log = format!(
        "node=h type=SYSCALL msg=audit(1764756131.1:9): syscall=257 success=yes ppid=2 pid=3 uid=0 euid=0 auid=0 ses=1 comm={evil} exe={evil}\n\
         node=h type=PATH msg=audit(1764756131.1:9): item=0 name=\"/home/x/.aws/credentials\" nametype=NORMAL\n\
         node=h type=PROCTITLE msg=audit(1764756131.1:9): proctitle={title}\n"
    );
    let out = env.run_stdin(&["ingest", "auditd", "-"], &log).ok();
    assert!(out.stderr.contains("1 filed now"), "{}", out.stderr);
    let table = env.run(&["evidence", "list"]).ok().stdout;
    assert!(!table.contains('\u{1b}') && !table.contains('\u{7}') && !table.contains('\r'), "{table:?}");
    assert!(table.contains("\\u{1b}"), "{table}");
    let json = env.run(&["evidence", "list", "--json"]).ok().json();
    assert!(json[0]["access"]["process"]["cmdline"].as_str().unwrap().len() <= 1024);
}

/// Runs the `aws` CLI in another account of moto, through the role
/// honeytrail assumes there.
fn aws_in_account(moto: &Moto, account: &str, args: &[&str]) -> (bool, String, String) {
    let role = format!("arn:aws:iam::{account}:role/honeytrail");
    let (ok, out, err) = aws_cli(
        &moto.endpoint,
        "testing",
        "testing",
        &["sts", "assume-role", "--role-arn", &role, "--role-session-name", "test"],
    );
    assert!(ok, "{err}");
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &c["Credentials"];
    let session = (
        c["AccessKeyId"].as_str().unwrap(),
        c["SecretAccessKey"].as_str().unwrap(),
        Some(c["SessionToken"].as_str().unwrap()),
    );
    honeytrail_testkit::aws_cli_session(&moto.endpoint, session, args)
}

/// The IAM user names in an account of moto.
fn users_in_account(moto: &Moto, account: &str) -> Vec<String> {
    let (ok, out, err) = aws_in_account(moto, account, &["iam", "list-users"]);
    assert!(ok, "{err}");
    let users: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<String> =
        users["Users"].as_array().unwrap().iter().map(|u| u["UserName"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

/// Two canary accounts reached by AssumeRole (moto's 111111111111 and
/// 222222222222): keys spread by room left, a full pool refuses before
/// minting anything, and retire, rotate, the safety net, bootstrap and
/// verify each work in the account that holds the key.
#[test]
fn the_account_pool_spreads_keys_by_room_and_works_per_account() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    assert_eq!(env.run(&["account", "list", "--json"]).ok().json(), serde_json::json!([]));
    let east = env
        .run(&[
            "account",
            "add",
            "east",
            "--role-arn",
            "arn:aws:iam::111111111111:role/honeytrail",
            "--max-users",
            "2",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(east["account_id"], "111111111111");
    env.run(&["account", "add", "west", "--role-arn", "arn:aws:iam::222222222222:role/honeytrail", "--max-users", "3"])
        .ok();
    // What is refused, and why.
    let bad = env.run(&["account", "add", "x", "--role-arn", "arn:aws:iam::111111111111:user/bob"]).fails();
    assert!(bad.stderr.contains("is not an IAM role's ARN"), "{}", bad.stderr);
    let again = env.run(&["account", "add", "x", "--role-arn", "arn:aws:iam::111111111111:role/other"]).fails();
    assert!(again.stderr.contains("account 111111111111 is in the pool already, as \"east\""), "{}", again.stderr);
    let neither = env.run(&["account", "add", "x"]).fails();
    assert!(neither.stderr.contains("--role-arn"), "{}", neither.stderr);
    let too_many = env.run(&["account", "add", "x", "--profile", "p", "--max-users", "6000"]).fails();
    assert!(too_many.stderr.contains("between 1 and 5000"), "{}", too_many.stderr);

    // Four keys: two each (west has more room first, then they alternate).
    let minted = env.run(&["token", "mint", "aws", "--count", "4", "--json"]).ok().json();
    let accounts: Vec<&str> = minted.as_array().unwrap().iter().map(|t| t["account_id"].as_str().unwrap()).collect();
    assert_eq!(accounts.iter().filter(|a| **a == "111111111111").count(), 2, "{accounts:?}");
    assert_eq!(accounts.iter().filter(|a| **a == "222222222222").count(), 2, "{accounts:?}");
    let key_in = |account: &str| -> Vec<String> {
        minted
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["account_id"] == account)
            .map(|t| t["access_key_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (east_keys, west_keys) = (key_in("111111111111"), key_in("222222222222"));
    // Each user really is in its account, and nowhere else.
    assert_eq!(users_in_account(&moto, "111111111111").len(), 2);
    assert_eq!(users_in_account(&moto, "222222222222").len(), 2);
    let (ok, home, err) = aws_cli(&moto.endpoint, "testing", "testing", &["iam", "list-users"]);
    assert!(ok && !home.contains("UserName"), "nothing in the configured account: {home} {err}");

    // Room for one more, not two: refused before anything is minted.
    let full = env.run(&["token", "mint", "aws", "--count", "2"]).fails();
    assert!(full.stderr.contains("the canary-account pool is full"), "{}", full.stderr);
    assert!(
        full.stderr.contains("east 2/2, west 2/3") && full.stderr.contains("honeytrail account add"),
        "{}",
        full.stderr
    );
    assert_eq!(env.run(&["token", "list", "--json"]).ok().json().as_array().unwrap().len(), 4);
    let last = env.run(&["token", "mint", "aws", "--json"]).ok().json();
    assert_eq!(last[0]["account_id"], "222222222222");
    assert!(env.run(&["token", "mint", "aws"]).fails().stderr.contains("pool is full"));
    let listed = env.run(&["account", "list", "--json"]).ok().json();
    assert_eq!((listed[0]["name"].as_str(), listed[0]["users"].as_i64()), (Some("east"), Some(2)));
    assert_eq!((listed[1]["name"].as_str(), listed[1]["keys"].as_i64()), (Some("west"), Some(3)));
    let tokens = env.run(&["token", "list", "--json"]).ok().json();
    assert!(tokens.as_array().unwrap().iter().all(|t| t["account_id"].as_str().is_some_and(|a| a.len() == 12)));

    // An account holding keys is not removed.
    let held = env.run(&["account", "remove", "east"]).fails();
    assert!(held.stderr.contains("holds 2 live key(s)"), "{}", held.stderr);

    // The safety net asks each key's own account.
    let secret = env.run(&["token", "show", &east_keys[0], "--reveal-secret", "--json"]).ok().json()
        ["secret_access_key"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, who, err) = aws_cli(&moto.endpoint, &east_keys[0], &secret, &["sts", "get-caller-identity"]);
    assert!(ok && who.contains("111111111111"), "{who} {err}");
    let out = env.run(&["safety-net", "--grace-minutes", "0"]).ok();
    assert!(out.stderr.contains("checked 5 minted key(s)") && !out.stderr.contains("warning"), "{}", out.stderr);
    assert!(out.stdout.contains(&east_keys[0]), "{}", out.stdout);

    // Retire one east key, in its own account; then rotate the other: west
    // is full, so the new key goes to east, and the old one is deleted there.
    env.run(&["token", "retire", &east_keys[0]]).ok();
    assert_eq!(users_in_account(&moto, "111111111111").len(), 1, "retired in its own account");
    let rotated = env.run(&["token", "rotate", &east_keys[1], "--json"]).ok().json();
    assert_eq!(rotated["account_id"], "111111111111");
    let east_users = users_in_account(&moto, "111111111111");
    assert_eq!(east_users, vec![rotated["iam_user_name"].as_str().unwrap().to_string()], "the old key's user is gone");
    assert_eq!(users_in_account(&moto, "222222222222").len(), 3);

    // Bootstrap and verify work on the account named.
    env.run(&["aws", "bootstrap", "--account", "west", "--regions", "us-east-1"]).ok();
    let (ok, buckets, err) = aws_in_account(&moto, "222222222222", &["s3api", "list-buckets"]);
    assert!(ok && buckets.contains("cloudtrail-222222222222-us-east-1"), "{buckets} {err}");
    let verify = env.run(&["aws", "verify", "--account", "west", "--regions", "us-east-1"]).ok();
    assert!(verify.stdout.contains("everything detection needs is in place"), "{}", verify.stdout);
    let unknown = env.run(&["aws", "verify", "--account", "north"]).fails();
    assert!(unknown.stderr.contains("canary account \"north\" not found"), "{}", unknown.stderr);

    // Emptied, an account leaves the pool; the audit log says who did what.
    env.run(&["token", "retire", rotated["access_key_id"].as_str().unwrap()]).ok();
    env.run(&["account", "remove", "east"]).ok();
    let names: Vec<String> = env
        .run(&["account", "list", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["west"]);
    let _ = west_keys;
}

/// A process killed between AWS and the store (SIGKILL at an exact step,
/// through `HONEYTRAIL_FAILPOINT`) leaves the two disagreeing only until the
/// next reconcile: a key made in AWS and never recorded is deleted with its
/// user, a row whose key was deleted is retired; a user someone else made
/// is never touched.
#[test]
fn changes_in_aws_cut_short_by_sigkill_are_reconciled() {
    use std::os::unix::process::ExitStatusExt;
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let killed_at = |point: &str, args: &[&str]| {
        let out = env.command(args).env("HONEYTRAIL_FAILPOINT", point).output().unwrap();
        assert_eq!(out.status.signal(), Some(9), "killed at {point}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let users = || -> Vec<String> {
        let (ok, out, err) = aws_cli(&moto.endpoint, "testing", "testing", &["iam", "list-users"]);
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["Users"].as_array().unwrap().iter().map(|u| u["UserName"].as_str().unwrap().to_string()).collect()
    };
    let reconcile = || env.run(&["aws", "reconcile", "--older-than", "0", "--json"]).ok().json();

    // Killed before AWS was asked: nothing to undo.
    killed_at("mint.before-aws", &["token", "mint", "aws"]);
    let done = reconcile();
    assert_eq!((done["intents"].as_u64(), done["keys_deleted"].as_array().unwrap().len()), (Some(1), 0), "{done}");

    // Killed after AWS made the key, before the store recorded it.
    killed_at("mint.after-aws", &["token", "mint", "aws"]);
    let orphan = users();
    assert_eq!(orphan.len(), 1, "a user with a key and no row: {orphan:?}");
    assert_eq!(env.run(&["token", "list", "--json"]).ok().json(), serde_json::json!([]));
    let done = reconcile();
    assert_eq!(done["keys_deleted"].as_array().unwrap().len(), 1, "{done}");
    assert_eq!(done["users_deleted"], serde_json::json!([orphan[0]]), "{done}");
    assert!(users().is_empty(), "no key in AWS without a row");
    assert_eq!(reconcile()["intents"], 0, "nothing left to do");

    // Killed after AWS deleted the key of a retire, before the store knew.
    let minted = env.run(&["token", "mint", "aws", "--json"]).ok().json();
    let key = minted[0]["access_key_id"].as_str().unwrap().to_string();
    killed_at("retire.after-aws", &["token", "retire", &key]);
    assert_eq!(env.run(&["token", "show", &key, "--json"]).ok().json()["state"], "active");
    let done = reconcile();
    assert_eq!(done["tokens_retired"], serde_json::json!([key]), "{done}");
    assert_eq!(env.run(&["token", "show", &key, "--json"]).ok().json()["state"], "retired", "no row without a key");
    assert!(users().is_empty(), "{:?}", users());

    // A user of someone else's with the name asked for: refused, and its
    // key is left alone by every reconcile.
    let (ok, _, err) =
        aws_cli(&moto.endpoint, "testing", "testing", &["iam", "create-user", "--user-name", "ci-deploy"]);
    assert!(ok, "{err}");
    let (ok, theirs, err) =
        aws_cli(&moto.endpoint, "testing", "testing", &["iam", "create-access-key", "--user-name", "ci-deploy"]);
    assert!(ok, "{err}");
    let theirs: serde_json::Value = serde_json::from_str(&theirs).unwrap();
    let theirs = theirs["AccessKey"]["AccessKeyId"].as_str().unwrap();
    env.run(&["token", "mint", "aws", "--name", "ci-deploy"]).fails();
    reconcile();
    let (ok, keys, err) =
        aws_cli(&moto.endpoint, "testing", "testing", &["iam", "list-access-keys", "--user-name", "ci-deploy"]);
    assert!(ok && keys.contains(theirs), "{keys} {err}");
    let audit = env.run(&["audit", "list", "--json"]).ok().json();
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "aws.reconcile"), "{audit}");
}

/// A server killed after handing a key to an enrolling host and before the
/// host heard back: the host enrols again (on a restarted server), and the
/// fleet sweep retires the key nobody received, in AWS too.
#[test]
fn an_enrolment_cut_short_by_sigkill_leaves_no_live_key_behind() {
    use std::os::unix::process::ExitStatusExt;
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let mut fill = env.command(&["fleet", "pool", "--fill"]);
    fill.env("HONEYTRAIL_FLEET_POOL_SIZE", "2");
    assert!(fill.output().unwrap().status.success());
    let secret = env.run(&["enrol", "create", "--uses", "3"]).ok().stdout.trim().to_string();
    let enrol = |server: &Server| {
        let body = serde_json::json!({"secret": secret, "host": {"hostname": "web-1", "machine_id": "0123456789abcdef0123456789abcdef"}});
        server.call("POST", "/api/v1/fleet/enroll", &[("Content-Type", "application/json")], &body.to_string())
    };

    let mut killed = Server::start(&env, &[("HONEYTRAIL_FAILPOINT", "enrol.after-handout")]);
    let (status, _) = enrol(&killed);
    assert_eq!(status, 0, "no answer: the server died");
    assert_eq!(killed.child.wait().unwrap().signal(), Some(9));
    let agents = env.run(&["agents", "--json"]).ok().json();
    assert_eq!(agents.as_array().unwrap().len(), 1, "{agents}");
    let lost_key = agents[0]["access_key_id"].as_str().unwrap().to_string();
    let lost_user =
        env.run(&["token", "show", &lost_key, "--json"]).ok().json()["iam_user_name"].as_str().unwrap().to_string();

    // The host tries again against the restarted server, and confirms.
    let server = Server::start(&env, &[]);
    let (status, body) = enrol(&server);
    assert_eq!(status, 201, "{body}");
    let enrolled: serde_json::Value = serde_json::from_str(&body).unwrap();
    server.confirm_placed(&enrolled);
    assert_ne!(enrolled["key"]["access_key_id"], lost_key.as_str());

    // The sweep (here at once, as if confirm_within_seconds had passed)
    // fails the enrolment nobody confirmed and retires its key in AWS.
    let mut sweep = env.command(&["fleet", "sweep"]);
    sweep.env("HONEYTRAIL_FLEET_CONFIRM_WITHIN_SECONDS", "0");
    let out = sweep.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(env.run(&["token", "show", &lost_key, "--json"]).ok().json()["state"], "retired");
    let (ok, _, err) = aws_cli(&moto.endpoint, "testing", "testing", &["iam", "get-user", "--user-name", &lost_user]);
    assert!(!ok && err.contains("NoSuchEntity"), "the lost key's user is gone in AWS: {err}");
    let agents = env.run(&["agents", "--json"]).ok().json();
    let states: Vec<&str> = agents.as_array().unwrap().iter().map(|a| a["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"failed") && states.contains(&"active"), "{agents}");
}

/// An ingest killed after storing part of a log file (SIGKILL right after
/// its first event, through `HONEYTRAIL_FAILPOINT`): run again over the same
/// file, every event is stored once, in one incident alerted once.
#[test]
fn an_ingest_cut_short_by_sigkill_stores_each_event_once_when_run_again() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    let jsonl = env.dir.path().join("alerts.jsonl");
    env.run(&["channel", "add", "jsonl", "siem", "--path", jsonl.to_str().unwrap()]).ok();
    env.run(&["route", "add", "all", "--channel", "siem", "--default"]).ok();
    let records: Vec<serde_json::Value> = (0..5)
        .map(|i| {
            let at = format!("2026-11-28T09:0{i}:00Z");
            trail_record(KEY, "svc-reader", &format!("cut-{i}"), &at, "s3.amazonaws.com", "ListBuckets", None)
        })
        .collect();
    let log = env.dir.path().join("trail-cut.json");
    std::fs::write(&log, serde_json::json!({"Records": records}).to_string()).unwrap();

    let out = env
        .command(&["ingest", log.to_str().unwrap()])
        .env("HONEYTRAIL_FAILPOINT", "ingest.after-event")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", String::from_utf8_lossy(&out.stderr));
    let events = |env: &Env| env.run(&["incident", "events", "1", "--json"]).ok().json().as_array().unwrap().len();
    assert_eq!(events(&env), 1, "killed after the first event");

    env.run(&["ingest", log.to_str().unwrap()]).ok();
    assert_eq!(events(&env), 5, "each event once");
    assert_eq!(env.run(&["incident", "list", "--json"]).ok().json().as_array().unwrap().len(), 1);
    env.run(&["deliver", "--once"]).ok();
    let alerts: Vec<serde_json::Value> =
        std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let opened = alerts.iter().filter(|a| a["alert"]["kind"] == "incident.opened").count();
    assert_eq!(opened, 1, "one opening alert: {alerts:?}");
}

/// `serve.watch = ["sqs@*:QUEUE"]` reads the queue of that name in every
/// account of the pool, each through its role: an event in each opens an
/// incident, and the messages are deleted once stored.
#[test]
fn serve_watches_a_queue_in_each_account_of_the_pool() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let mut urls = Vec::new();
    for (name, account) in [("east", "111111111111"), ("west", "222222222222")] {
        let role = format!("arn:aws:iam::{account}:role/honeytrail");
        env.run(&["account", "add", name, "--role-arn", &role]).ok();
        let key = honeytrail_core::keyid::synthesize(account.parse().unwrap(), 77);
        env.run(&["token", "import", "aws", "--access-key-id", &key]).ok();
        let (ok, made, err) = aws_in_account(&moto, account, &["sqs", "create-queue", "--queue-name", "api-calls"]);
        assert!(ok, "{err}");
        let url = serde_json::from_str::<serde_json::Value>(&made).unwrap()["QueueUrl"].as_str().unwrap().to_string();
        let id = format!("{name}-1");
        let record =
            trail_record(&key, "svc", &id, "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None);
        let event = serde_json::json!({"version": "0", "id": format!("eb-{id}"), "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.sts", "account": account, "time": "2026-11-28T09:00:00Z", "region": "us-east-1",
            "resources": [], "detail": record});
        let body = event.to_string();
        let (ok, _, err) =
            aws_in_account(&moto, account, &["sqs", "send-message", "--queue-url", &url, "--message-body", &body]);
        assert!(ok, "{err}");
        urls.push((account, url));
    }

    let _server = Server::start(&env, &[("HONEYTRAIL_SERVE_WATCH", "sqs@*:api-calls")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let incidents = env.run(&["incident", "list", "--json"]).ok().json();
        let left: Vec<String> = urls
            .iter()
            .map(|(account, url)| {
                let args = ["sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All"];
                let (_, depth, _) = aws_in_account(&moto, account, &args);
                let depth: serde_json::Value = serde_json::from_str(&depth).unwrap_or_default();
                let a = &depth["Attributes"];
                format!("{}/{}", a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"])
            })
            .collect();
        if incidents.as_array().unwrap().len() == 2 && left.iter().all(|l| l == "\"0\"/\"0\"") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not read within a minute: {incidents} {left:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut ids: Vec<String> = (1..=2)
        .map(|i| env.run(&["incident", "events", &i.to_string(), "--json"]).ok().json()[0]["event_id"].to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["\"east-1\"", "\"west-1\""]);
}

/// Refused agent calls hold back only refused calls from that address: a
/// real agent behind the same address (one NAT) is still served.
#[test]
fn an_address_flooding_bad_agent_credentials_does_not_lock_out_real_agents() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let mut fill = env.command(&["fleet", "pool", "--fill"]);
    fill.env("HONEYTRAIL_FLEET_POOL_SIZE", "1");
    assert!(fill.output().unwrap().status.success());
    let secret = env.run(&["enrol", "create", "--uses", "1"]).ok().stdout.trim().to_string();
    let server = Server::start(&env, &[]);
    let body = serde_json::json!({"secret": secret, "host": {"hostname": "web-2", "machine_id": "fedcba9876543210fedcba9876543210"}});
    let (status, enrolled) =
        server.call("POST", "/api/v1/fleet/enroll", &[("Content-Type", "application/json")], &body.to_string());
    assert_eq!(status, 201, "{enrolled}");
    let enrolled: serde_json::Value = serde_json::from_str(&enrolled).unwrap();
    let confirm = serde_json::json!({"files": [{"path": "/root/.aws/credentials", "user": "root", "digest": format!("sha256:{:064x}", 2)}]}).to_string();
    let call = |bearer: &str| {
        let auth = format!("Bearer {bearer}");
        server
            .call(
                "POST",
                "/api/v1/fleet/confirm",
                &[("Content-Type", "application/json"), ("Authorization", &auth)],
                &confirm,
            )
            .0
    };
    let statuses: Vec<u16> = (0..25).map(|_| call("not-a-credential")).collect();
    assert_eq!(statuses[0], 401);
    assert_eq!(*statuses.last().unwrap(), 429, "bad credentials are held back: {statuses:?}");
    assert_eq!(call(enrolled["credential"].as_str().unwrap()), 200, "the real agent is served");
}

/// Shell completions and man pages come from the command tree; changing
/// commands print their record with --json; incident lists carry severity.
#[test]
fn completions_man_pages_json_records_and_severity_in_lists() {
    let env = Env::new();
    for (shell, mark) in [("bash", "_honeytrail()"), ("zsh", "#compdef honeytrail"), ("fish", "complete -c honeytrail")]
    {
        let script = env.run(&["completions", shell]).ok().stdout;
        assert!(script.contains(mark) && script.contains("incident"), "{shell}: {}", &script[..200.min(script.len())]);
    }
    let bad = env.run(&["completions", "tcsh"]).fails();
    assert!(bad.stderr.contains("bash") && bad.stderr.contains("fish"), "allowed values listed: {}", bad.stderr);
    let man = env.dir.path().join("man");
    env.run(&["man", "--dir", man.to_str().unwrap()]).ok();
    let page = std::fs::read_to_string(man.join("honeytrail-incident-list.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH honeytrail-incident-list"), "{page}");
    assert!(man.join("honeytrail.1").exists() && man.join("honeytrail-token-mint.1").exists());

    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--label", "severity=medium"]).ok();
    let mut r =
        trail_record(KEY, "svc", "sev-1", "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None);
    ingest_records(&env, vec![r.clone()]);
    let table = env.run(&["incident", "list"]).ok().stdout;
    assert!(table.contains("SEVERITY") && table.contains("medium"), "{table}");
    // A scanner's user agent raises it one step, in the list at once.
    r["eventID"] = "sev-2".into();
    r["userAgent"] = "TruffleHog".into();
    ingest_records(&env, vec![r]);
    let list = env.run(&["incident", "list", "--json"]).ok().json();
    assert_eq!(list[0]["severity"], "high", "{list}");
    let acked = env.run(&["incident", "ack", "1", "--note", "mine", "--json"]).ok().json();
    assert_eq!((acked["state"].as_str(), acked["severity"].as_str()), (Some("acknowledged"), Some("high")), "{acked}");
    let note = env.run(&["incident", "note", "1", "looked", "--json"]).ok().json();
    assert_eq!(note["incident"], 1);
    let placement = env.run(&["placement", "add", KEY, "--host", "h", "--path", "/p", "--json"]).ok().json();
    let removed = env.run(&["placement", "remove", &placement["id"].to_string(), "--json"]).ok().json();
    assert!(removed["removed_at"].is_string(), "{removed}");
}

/// A backup taken from a live installation restores into an empty data
/// directory with every token, placement, incident and sealed secret; it
/// overwrites nothing on either side.
#[test]
fn a_backup_restores_into_an_empty_data_directory_with_its_sealed_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.run_stdin(&["token", "import", "aws", "--access-key-id", KEY, "--secret-stdin"], SECRET).ok();
    env.run(&["placement", "add", KEY, "--host", "maria-mbp", "--path", "~/.aws/credentials"]).ok();
    ingest_records(
        &env,
        vec![trail_record(KEY, "svc", "bk-1", "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None)],
    );
    let server = Server::start(&env, &[]); // taken while the server runs
    let file = env.dir.path().join("backup.sqlite");
    let made = env.run(&["backup", file.to_str().unwrap(), "--json"]).ok().json();
    assert_eq!((made["tokens"].as_i64(), made["incidents"].as_i64()), (Some(1), Some(1)), "{made}");
    for f in [file.clone(), env.dir.path().join("backup.sqlite.key")] {
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
    }
    let again = env.run(&["backup", file.to_str().unwrap()]).fails();
    assert!(again.stderr.contains("never overwrites"), "{}", again.stderr);
    drop(server);

    let fresh = Env::new();
    let restored = fresh.run(&["restore", file.to_str().unwrap(), "--json"]).ok().json();
    assert_eq!((&restored["tokens"], &restored["incidents"]), (&made["tokens"], &made["incidents"]));
    let bait = fresh.run(&["render", KEY, "--format", "aws-credentials"]).ok().stdout;
    assert!(bait.contains(SECRET), "the sealed secret opens with the restored key: {bait}");
    assert!(fresh.run(&["placement", "list"]).ok().stdout.contains("maria-mbp"));
    assert_eq!(fresh.run(&["incident", "list", "--json"]).ok().json().as_array().unwrap().len(), 1);
    let twice = fresh.run(&["restore", file.to_str().unwrap()]).fails();
    assert!(twice.stderr.contains("exists") && twice.stderr.contains("empty data directory"), "{}", twice.stderr);
    let not_sqlite = env.dir.path().join("not.sqlite");
    std::fs::write(&not_sqlite, "hello").unwrap();
    let out = Env::new().run(&["restore", not_sqlite.to_str().unwrap()]).fails();
    assert!(out.stderr.contains("not a SQLite database"), "{}", out.stderr);
}

/// Without AWS credentials, minting and verify say so in one sentence
/// naming the fix, with no SDK dump before it.
#[test]
fn without_aws_credentials_mint_and_verify_say_so_in_one_sentence() {
    let env = Env::new();
    // The SDK's chain tries the instance metadata service last: here one
    // that refuses every request, as a host outside EC2 behind a proxy does
    // (the SDK logged that refusal as a warning with a dump of the response).
    const FORBIDDEN: &str = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nforbidden";
    let refusing = Receiver::start(0, vec![FORBIDDEN; 16]);
    let imds = format!("http://127.0.0.1:{}", refusing.port);
    for args in [&["token", "mint", "aws"][..], &["aws", "verify"][..]] {
        let out = env.command(args).env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds).output().unwrap();
        assert!(!out.status.success());
        let said = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = said.lines().filter(|l| !l.contains("created the data key")).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {said}");
        assert!(lines[0].starts_with("error: no AWS credentials") && lines[0].contains("AWS_PROFILE"), "{said}");
    }
}

/// `--log-format json` (or HONEYTRAIL_LOG_FORMAT) writes one JSON object a
/// line; an unknown format is refused naming the ones there are.
#[test]
fn log_lines_are_json_when_asked_and_an_unknown_format_is_refused() {
    let env = Env::new();
    let out = env.run(&["--log-format", "json", "-v", "token", "list"]).ok();
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!lines.is_empty(), "{}", out.stderr);
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{line}");
    }
    let bad = env.command(&["token", "list"]).env("HONEYTRAIL_LOG_FORMAT", "xml").output().unwrap();
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && said.contains("text") && said.contains("json"), "{said}");
}

/// PostgreSQL installations are backed up as docs/operations.md says:
/// pg_dump, plus the data key; restored with pg_restore into an empty
/// database, every token, placement, incident and sealed secret is back.
#[tokio::test]
async fn a_postgres_backup_with_pg_dump_and_the_data_key_restores_whole() {
    let (source, target) =
        (honeytrail_testkit::postgres_database().await, honeytrail_testkit::postgres_database().await);
    tokio::task::spawn_blocking(move || {
        let mut env = Env::new();
        env.database = Some(source.clone());
        env.run(&["init"]).ok();
        env.run_stdin(&["token", "import", "aws", "--access-key-id", KEY, "--secret-stdin"], SECRET).ok();
        env.run(&["placement", "add", KEY, "--host", "db-7", "--path", "/srv/.env"]).ok();
        ingest_records(
            &env,
            vec![trail_record(KEY, "svc", "pg-1", "2026-11-28T09:00:00Z", "sts.amazonaws.com", "ListBuckets", None)],
        );
        let refused = env.run(&["backup", env.dir.path().join("x").to_str().unwrap()]).fails();
        assert!(refused.stderr.contains("pg_dump"), "{}", refused.stderr);

        let dump = env.dir.path().join("honeytrail.dump");
        let out = std::process::Command::new("pg_dump")
            .args(["--format=custom", "--no-owner", "--file", dump.to_str().unwrap(), &source])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        let out = std::process::Command::new("pg_restore")
            .args(["--no-owner", "--dbname", &target, dump.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));

        let mut restored = Env::new();
        restored.database = Some(target);
        std::fs::create_dir_all(restored.data()).unwrap();
        std::fs::copy(env.data().join("secret.key"), restored.data().join("secret.key")).unwrap();
        let bait = restored.run(&["render", KEY, "--format", "aws-credentials"]).ok().stdout;
        assert!(bait.contains(SECRET), "the sealed secret opens with the kept key: {bait}");
        assert!(restored.run(&["placement", "list"]).ok().stdout.contains("db-7"));
        assert_eq!(restored.run(&["incident", "list", "--json"]).ok().json().as_array().unwrap().len(), 1);
    })
    .await
    .unwrap();
}

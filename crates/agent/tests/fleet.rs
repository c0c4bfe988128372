//! The fleet end to end: a real `honeytrail serve` (moto behind it for IAM)
//! and the real agent binary, as root, enrolling a scratch tree that holds
//! a real `~/.aws/credentials` profile.
//!
//! The `honeytrail` binary is the one `cargo test --workspace` builds beside
//! this crate's agent (the root package's tests need it too).

use std::collections::BTreeMap;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use honeytrail_testkit::{aws_cli, dead_port, http, Moto};
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_honeytrail-agent");

const REAL_PROFILE: &str = "# work account\n[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nregion = eu-west-1\n";

fn honeytrail_bin() -> PathBuf {
    let bin = Path::new(AGENT).with_file_name("honeytrail");
    assert!(bin.exists(), "{} is missing: run the tests with `cargo test --workspace` (./scripts/test)", bin.display());
    bin
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A scratch installation of honeytrail, with moto as its AWS account.
struct Ht {
    dir: tempfile::TempDir,
    moto: Moto,
    env: Vec<(String, String)>,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

fn output(cmd: &mut Command) -> Out {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Ht {
    fn new(extra: &[(&str, &str)]) -> Ht {
        let moto = Moto::start();
        let mut env: Vec<(String, String)> = [
            ("HONEYTRAIL_AWS_ENDPOINT", moto.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("HONEYTRAIL_FLEET_HEARTBEAT_SECONDS", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Ht { dir: tempfile::tempdir().unwrap(), moto, env }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(honeytrail_bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("HONEYTRAIL_") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", self.dir.path()).arg("--data-dir").arg(self.dir.path().join("data"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Out {
        output(&mut self.command(args))
    }

    fn serve(&self) -> Serve {
        self.serve_with(&[])
    }

    /// `serve` on a port of the caller's (to restart it where agents look).
    fn serve_on(&self, port: u16) -> Serve {
        self.serve_with(&[("HONEYTRAIL_SERVE_LISTEN", &format!("127.0.0.1:{port}"))])
    }

    /// `serve` with more settings; up once it says where it serves (and,
    /// over plain http, answers its health check). Without a listen address
    /// it listens on port 0 and the port is read from what it says: no port
    /// is guessed free and bound later.
    fn serve_with(&self, extra: &[(&str, &str)]) -> Serve {
        let listen = extra
            .iter()
            .find(|(k, _)| *k == "HONEYTRAIL_SERVE_LISTEN")
            .map(|(_, v)| v.to_string())
            .unwrap_or_else(|| "127.0.0.1:0".into());
        let log_path = self.dir.path().join("serve.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = self
            .command(&["serve"])
            .env("HONEYTRAIL_SERVE_LISTEN", &listen)
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut serve = Serve { child, port: 0 };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            let port = said.lines().find_map(|l| {
                l.strip_prefix("honeytrail is serving on ").and_then(honeytrail_testkit::loopback_port_in)
            });
            if let Some(port) = port {
                serve.port = port;
                if said.contains("is serving on https://")
                    || matches!(http(port, "GET", "/healthz", &[], ""), Ok((200, _)))
                {
                    return serve;
                }
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("serve ended ({status}): {said}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("serve did not come up: {}", std::fs::read_to_string(&log_path).unwrap());
    }

    fn secret(&self, args: &[&str]) -> PathBuf {
        let mut all = vec!["enroll", "create"];
        all.extend_from_slice(args);
        let out = self.run(&all).ok();
        let file = self.dir.path().join(format!("secret-{}", rand_suffix()));
        std::fs::write(&file, out.stdout.trim()).unwrap();
        file
    }

    fn agents(&self) -> Vec<Value> {
        self.run(&["agents", "--json"]).ok().json().as_array().unwrap().clone()
    }

    fn token(&self, key: &str) -> Value {
        self.run(&["token", "show", key, "--json"]).ok().json()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

struct Serve {
    child: std::process::Child,
    port: u16,
}

impl Serve {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone is fine
        self.child.wait().ok(); // reaped is fine
    }
}

/// A host's tree: /etc with a passwd of root and maria, maria's home with
/// her real AWS profile, root's home without one.
fn host_tree(dir: &Path) -> PathBuf {
    let root = dir.join("host");
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("hostname"), "web-17\n").unwrap();
    std::fs::write(etc.join("machine-id"), "5f1c9e2ab04d4e0e9d1f3c2b7a6e8d90\n").unwrap();
    std::fs::write(etc.join("os-release"), "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nmaria:x:1000:1000:Maria Lopez:/home/maria:/bin/bash\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("root")).unwrap();
    let aws = root.join("home/maria/.aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("credentials"), REAL_PROFILE).unwrap();
    std::fs::set_permissions(aws.join("credentials"), std::fs::Permissions::from_mode(0o600)).unwrap();
    for p in [root.join("home/maria"), aws.clone(), aws.join("credentials")] {
        chown(&p, Some(1000), Some(1000)).unwrap();
    }
    root
}

/// Every file and directory under `root`: path → (mode, owner, content).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u32, Option<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let content = if m.is_file() { Some(std::fs::read(&p).unwrap()) } else { None };
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
        out.insert(p, (m.mode(), m.uid(), content));
    }
    out
}

fn agent(args: &[&str]) -> Out {
    output(Command::new(AGENT).args(args))
}

/// `enroll --once` of the agent with `secret`, its state in `state`, the host under `root`.
fn enrol_once(server: &str, secret: &Path, state: &Path, root: &Path) -> Out {
    agent(&[
        "enroll",
        "--server",
        server,
        "--secret-file",
        secret.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--root",
        root.to_str().unwrap(),
        "--once",
    ])
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out waiting for {what}");
}

fn prod_key(text: &str) -> String {
    let section = text.split("[prod]").nth(1).unwrap_or_else(|| panic!("no [prod] in {text}"));
    section
        .lines()
        .find_map(|l| l.strip_prefix("aws_access_key_id = "))
        .unwrap_or_else(|| panic!("no key in {text}"))
        .trim()
        .to_string()
}

fn prod_secret(text: &str) -> String {
    let section = text.split("[prod]").nth(1).unwrap_or_else(|| panic!("no [prod] in {text}"));
    section
        .lines()
        .find_map(|l| l.strip_prefix("aws_secret_access_key = "))
        .unwrap_or_else(|| panic!("no secret in {text}"))
        .trim()
        .to_string()
}

fn incidents(ht: &Ht) -> Vec<Value> {
    ht.run(&["incident", "list", "--all", "--json"]).ok().json().as_array().unwrap().clone()
}

#[test]
fn a_host_enrols_attests_rotates_and_removes_its_bait() {
    if !is_root() {
        eprintln!("skipped: the agent writes into other users' homes as root (./scripts/test runs as root in CI)");
        return;
    }
    let ht = Ht::new(&[("HONEYTRAIL_FLEET_STALE_AFTER_SECONDS", "4"), ("HONEYTRAIL_FLEET_POOL_SIZE", "2")]);
    let root = host_tree(ht.dir.path());
    let state = ht.dir.path().join("agent-state");
    let secret = ht.secret(&["--uses", "1", "--template", "laptop", "--label", "team=web"]);
    let serve = ht.serve();
    wait_for("the pool to fill", || ht.run(&["fleet", "pool"]).ok().stdout.contains("pool: 2 of 2"));

    let out = enrol_once(&serve.url(), &secret, &state, &root).ok();
    assert!(out.stderr.contains("enrolled as agent #1"), "{}", out.stderr);

    // The bait: beside maria's real profile (byte-identical), and in root's new file; owners and modes right.
    let maria = root.join("home/maria/.aws/credentials");
    let text = std::fs::read_to_string(&maria).unwrap();
    assert!(text.starts_with(REAL_PROFILE), "the real profile changed:\n{text}");
    let key = prod_key(&text);
    let m = std::fs::metadata(&maria).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (1000, 1000, 0o600));
    let root_bait = root.join("root/.aws/credentials");
    let r = std::fs::metadata(&root_bait).unwrap();
    assert_eq!((r.uid(), r.mode() & 0o777), (0, 0o600));
    assert_eq!(prod_key(&std::fs::read_to_string(&root_bait).unwrap()), key, "one key per host");
    // Nothing beside the bait names the product or is a backup.
    for dir in [root.join("home/maria/.aws"), root.join("root/.aws")] {
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["credentials"], "{}", dir.display());
    }
    let st = std::fs::metadata(&state).unwrap();
    assert_eq!(st.mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(state.join("credential")).unwrap().mode() & 0o777, 0o600);
    let kept = std::fs::read_to_string(state.join("state.json")).unwrap();
    assert!(!kept.contains(&prod_secret(&text)), "the agent's state holds no secret: {kept}");

    // The server's record: the agent, one placement per file with the host's facts, two custody hops.
    let agents = ht.agents();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0]["state"], "active");
    assert_eq!(agents[0]["host"]["machine_id"], "5f1c9e2ab04d4e0e9d1f3c2b7a6e8d90");
    let detail = ht.token(&key);
    let placements = detail["placements"].as_array().unwrap();
    assert_eq!(placements.len(), 2, "{detail:#}");
    let of_maria = placements.iter().find(|p| p["path"] == "/home/maria/.aws/credentials").expect("maria's placement");
    assert_eq!(of_maria["host"], "web-17");
    assert_eq!(of_maria["owner"], "maria");
    assert!(of_maria["notes"].as_str().unwrap().contains("5f1c9e2ab04d4e0e9d1f3c2b7a6e8d90"));
    assert_eq!(of_maria["labels"]["machine-id"], "5f1c9e2ab04d4e0e9d1f3c2b7a6e8d90");
    let custody = detail["custody"].as_array().unwrap();
    assert_eq!(custody.len(), 2, "exactly two hops: {custody:#?}");
    assert!(custody[0]["description"].as_str().unwrap().starts_with("generated in canary account"));
    assert!(custody[1]["description"].as_str().unwrap().contains("delivered to host web-17"), "{custody:#?}");
    assert_eq!(detail["labels"]["team"], "web", "{detail:#}");
    // The pool was refilled behind the enrolment; the key handed out left it.
    wait_for("the pool to refill", || ht.run(&["fleet", "pool"]).ok().stdout.contains("pool: 2 of 2"));

    // The intruder uses the key: the incident names the host and the path.
    let record = serde_json::json!({"Records": [{
        "eventVersion": "1.09", "eventTime": "2026-12-02T10:00:00Z", "eventSource": "sts.amazonaws.com",
        "eventName": "GetCallerIdentity", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.0", "eventID": "fleet-e2e-1", "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "accessKeyId": key, "accountId": "123456789012",
                         "arn": "arn:aws:iam::123456789012:user/x", "userName": "x"}}]});
    let log = ht.dir.path().join("trail.json");
    std::fs::write(&log, record.to_string()).unwrap();
    ht.run(&["ingest", log.to_str().unwrap()]).ok();
    let use_incident = incidents(&ht).into_iter().find(|i| i["kind"] == "use").expect("a use incident");
    let shown = ht.run(&["incident", "show", &use_incident["id"].to_string(), "--json"]).ok().json();
    let sentence = shown["placement"].as_str().unwrap();
    assert!(sentence.contains("on host web-17 in 2 files"), "{sentence}");
    let each: Vec<&str> = shown["placements"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(each.iter().any(|p| p.contains("host web-17") && p.contains("/home/maria/.aws/credentials")), "{each:?}");

    let run_once = || agent(&["run", "--state-dir", state.to_str().unwrap(), "--once"]);
    run_once().ok();
    assert_eq!(ht.agents()[0]["bait_state"], "ok");

    // Silent for longer than stale_after: stale, and an incident of its own.
    wait_for("the host to go stale", || ht.agents()[0]["bait_state"] == "stale");
    assert!(incidents(&ht).iter().any(|i| i["kind"] == "stale"), "{:#?}", incidents(&ht));
    run_once().ok();
    assert_eq!(ht.agents()[0]["bait_state"], "ok", "a heartbeat ends the silence");

    // Presence: the bait edited by hand is reported altered and opens a tampered incident.
    let secret_now = prod_secret(&text);
    let edited = text.replace(&secret_now, &secret_now.chars().rev().collect::<String>());
    assert_ne!(edited, text);
    std::fs::write(&maria, &edited).unwrap();
    run_once().ok();
    let a = &ht.agents()[0];
    assert_eq!(a["bait_state"], "tampered", "{a:#}");
    let altered = a["files"].as_array().unwrap().iter().find(|f| f["path"] == "/home/maria/.aws/credentials").unwrap();
    assert_eq!(altered["presence"], "altered");
    assert!(incidents(&ht).iter().any(|i| i["kind"] == "tampered"));

    // Rotation by command: a new key in both files, the real profile untouched, the old key retired in AWS.
    let old_user = detail["iam_user_name"].as_str().unwrap().to_string();
    ht.run(&["agent", "rotate", "1"]).ok();
    assert!(ht.agents()[0]["commands"][0]["state"] == "pending");
    run_once().ok();
    let rotated = std::fs::read_to_string(&maria).unwrap();
    let new_key = prod_key(&rotated);
    assert_ne!(new_key, key);
    assert!(rotated.starts_with(REAL_PROFILE));
    assert_eq!(prod_key(&std::fs::read_to_string(&root_bait).unwrap()), new_key);
    assert_eq!(ht.agents()[0]["commands"][0]["state"], "done");
    assert_eq!(ht.token(&key)["state"], "retired");
    let (ok, listed, _) =
        aws_cli(&ht.moto.endpoint, "testing", "testing", &["iam", "list-access-keys", "--user-name", &old_user]);
    assert!(!ok || !listed.contains(&key), "the old key is gone in AWS: {listed}");
    let new_detail = ht.token(&new_key);
    assert_eq!(new_detail["placements"].as_array().unwrap().len(), 2);
    assert!(new_detail["custody"][1]["description"].as_str().unwrap().contains("rotation command"));
    run_once().ok();
    assert_eq!(ht.agents()[0]["bait_state"], "ok", "the rotated bait is attested");

    // Removal by command: maria's file is her real profile again, byte for byte; root's file goes.
    ht.run(&["agent", "remove", "1"]).ok();
    run_once().ok();
    assert_eq!(std::fs::read_to_string(&maria).unwrap(), REAL_PROFILE);
    assert!(!root_bait.exists());
    assert!(!root.join("root/.aws").exists(), "the directory the agent made for root's bait went with it");
    assert_eq!(ht.agents()[0]["state"], "removed");
    assert_eq!(ht.token(&new_key)["state"], "retired");
    assert!(!state.join("credential").exists(), "the agent let go of its credential");
}

#[test]
fn refused_or_failed_enrolments_leave_the_host_as_it_was() {
    if !is_root() {
        eprintln!("skipped: the agent writes into other users' homes as root (./scripts/test runs as root in CI)");
        return;
    }
    let ht = Ht::new(&[]);
    let root = host_tree(ht.dir.path());
    let before = snapshot(&root);
    let state = ht.dir.path().join("agent-state");
    let serve = ht.serve();
    let enrol = |server: &str, secret: &Path| enrol_once(server, secret, &state, &root);
    let unchanged = |why: &str| {
        assert_eq!(snapshot(&root), before, "{why}: the host changed");
        assert!(!state.exists(), "{why}: the state directory was left behind");
    };

    // A wrong secret.
    let wrong = ht.dir.path().join("wrong");
    std::fs::write(&wrong, "not-a-secret").unwrap();
    let out = enrol(&serve.url(), &wrong);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("not known"), "{}", out.stderr);
    unchanged("wrong secret");

    // An expired one is told apart; a used-up one too.
    let used = ht.secret(&["--uses", "1", "--template", "laptop"]);
    let first_state = ht.dir.path().join("other-host");
    let other = host_tree(&ht.dir.path().join("other"));
    enrol_once(&serve.url(), &used, &first_state, &other).ok();
    let out = enrol(&serve.url(), &used);
    assert!(out.stderr.contains("used up"), "{}", out.stderr);
    unchanged("used-up secret");

    // A server that is down, and one that does not speak TLS.
    let fresh = ht.secret(&["--uses", "5", "--template", "laptop"]);
    let out = enrol(&format!("http://127.0.0.1:{}", dead_port()), &fresh);
    assert!(out.stderr.contains("cannot reach the server"), "{}", out.stderr);
    unchanged("server down");
    let out = enrol(&format!("https://127.0.0.1:{}", serve.port), &fresh);
    assert!(out.stderr.contains("TLS"), "{}", out.stderr);
    unchanged("TLS failure");
    // Plain http anywhere but loopback is refused before anything is sent.
    let out = enrol("http://honeytrail.example.com", &fresh);
    assert!(out.stderr.contains("must be https"), "{}", out.stderr);
    unchanged("plain http");

    // The bait cannot be written (the template's directory is a file here):
    // refused before the secret is used or a key minted; nothing left on
    // the host, no agent, no placement.
    std::fs::create_dir_all(root.join("opt")).unwrap();
    std::fs::write(root.join("opt/app"), "a file, not a directory\n").unwrap();
    let before = snapshot(&root);
    ht.run(&["template", "add", "app", "--format", "dotenv", "--path", "/opt/app/.env", "--mode", "600"]).ok();
    let app_secret = ht.secret(&["--uses", "1", "--template", "app"]);
    let out = enrol(&serve.url(), &app_secret);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("app is not a directory") && out.stderr.contains("no key was asked for"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&root), before, "a refused write changed the host");
    assert!(!state.exists());
    assert!(ht.agents().iter().all(|a| a["template"]["name"] != "app"), "no agent for a host that got nothing");

    // A template naming several users' homes where none can be written
    // safely (root's ~/.aws a link maria planted, maria's credentials
    // hard-linked to another file): refused before the secret is used or a
    // key minted, the host left as it was.
    let second = host_tree(&ht.dir.path().join("third"));
    let maria = second.join("home/maria/.aws/credentials");
    std::fs::remove_file(&maria).unwrap();
    std::fs::hard_link(second.join("etc/hostname"), &maria).unwrap();
    std::os::unix::fs::symlink("/etc", second.join("root/.aws")).unwrap();
    std::os::unix::fs::lchown(second.join("root/.aws"), Some(1000), Some(1000)).unwrap();
    let before = snapshot(&second);
    let tokens_before = ht.run(&["token", "list", "--json"]).ok().json().as_array().unwrap().len();
    let laptop = ht.secret(&["--uses", "1", "--template", "laptop"]);
    let out = enrol_once(&serve.url(), &laptop, &state, &second);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("hard links") && out.stderr.contains("symbolic link owned by uid 1000"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("no key was asked for"), "{}", out.stderr);
    assert_eq!(snapshot(&second), before, "nothing was written");
    assert!(!state.exists());
    let secrets = ht.run(&["enroll", "list", "--json"]).ok().json();
    let last = secrets.as_array().unwrap().iter().max_by_key(|s| s["id"].as_i64()).unwrap().clone();
    assert_eq!(last["used"], 0, "no use of the secret spent: {last:#}");
    assert_eq!(
        ht.run(&["token", "list", "--json"]).ok().json().as_array().unwrap().len(),
        tokens_before,
        "no key minted or handed out"
    );
}

/// The tamper incident of `ht` with an event named `name`, as shown.
fn tamper_with(ht: &Ht, name: &str) -> Option<Value> {
    incidents(ht).into_iter().filter(|i| i["kind"] == "tampered").find_map(|i| {
        let shown = ht.run(&["incident", "show", &i["id"].to_string(), "--json"]).ok().json();
        shown["events"].as_array().unwrap().iter().any(|e| e["event_name"] == name).then_some(shown)
    })
}

/// Every event message of the incidents of `ht` named `name`.
fn tamper_messages(ht: &Ht, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for i in incidents(ht).into_iter().filter(|i| i["kind"] == "tampered") {
        let shown = ht.run(&["incident", "show", &i["id"].to_string(), "--json"]).ok().json();
        for e in shown["events"].as_array().unwrap().iter().filter(|e| e["event_name"] == name) {
            out.push(e["error_message"].as_str().unwrap_or_default().to_string());
        }
    }
    out
}

#[test]
fn an_unsafe_home_is_skipped_and_reported_and_hidden_tampering_is_raised() {
    if !is_root() {
        eprintln!("skipped: the agent writes into other users' homes as root (./scripts/test runs as root in CI)");
        return;
    }
    let ht = Ht::new(&[]);
    let serve = ht.serve();
    let state = ht.dir.path().join("agent-state");
    let root = host_tree(ht.dir.path());
    // maria's credentials hard-linked to another of her files: her home is
    // skipped and reported, root's is written.
    let maria = root.join("home/maria/.aws/credentials");
    std::fs::hard_link(&maria, root.join("home/maria/notes")).unwrap();
    let maria_before = std::fs::read(&maria).unwrap();
    let secret = ht.secret(&["--uses", "1", "--template", "laptop"]);
    let out = enrol_once(&serve.url(), &secret, &state, &root).ok();
    assert!(out.stderr.contains("bait in 1 file(s)") && out.stderr.contains("not written"), "{}", out.stderr);
    assert_eq!(std::fs::read(&maria).unwrap(), maria_before, "the refused file is untouched");
    let root_bait = root.join("root/.aws/credentials");
    let original = std::fs::read_to_string(&root_bait).unwrap();
    let key = prod_key(&original);
    let detail = ht.token(&key);
    assert_eq!(detail["placements"].as_array().unwrap().len(), 1, "{detail:#}");
    let refused = tamper_with(&ht, "BaitPathRefused").expect("a tamper incident for the refused path");
    let text = refused.to_string();
    assert!(text.contains("/home/maria/.aws/credentials") && text.contains("hard links"), "{text}");
    assert_eq!(refused["incident"]["severity"], "high", "a planted link or hard link is someone hiding a change");

    // Anything but "present and unchanged" is raised, with what was seen.
    let run_once = || agent(&["run", "--state-dir", state.to_str().unwrap(), "--once"]).ok();
    run_once();
    let restore = || {
        std::fs::remove_file(&root_bait).ok(); // the case may have left nothing there
        std::fs::write(&root_bait, &original).unwrap();
        std::fs::set_permissions(&root_bait, std::fs::Permissions::from_mode(0o600)).unwrap();
        run_once();
    };
    let fifo = |p: &Path| {
        let status = Command::new("mkfifo").arg(p).status().unwrap();
        assert!(status.success());
    };
    // The host's own /dev/null, inside its root.
    std::fs::create_dir_all(root.join("dev")).unwrap();
    let made = Command::new("mknod").arg(root.join("dev/null")).args(["c", "1", "3"]).status().unwrap();
    assert!(made.success());
    type Make<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Make)> = vec![
        ("FIFO", Box::new(|p: &Path| fifo(p))),
        ("character device", Box::new(|p: &Path| std::os::unix::fs::symlink("/dev/null", p).unwrap())),
        ("not UTF-8", Box::new(|p: &Path| std::fs::write(p, b"[prod]\n\xff\xfe\n").unwrap())),
        (
            "larger than",
            Box::new(|p: &Path| {
                let f = std::fs::File::create(p).unwrap();
                f.set_len(5 << 20).unwrap();
            }),
        ),
        (
            "symbolic link owned by uid 1000",
            Box::new(|p: &Path| {
                std::os::unix::fs::symlink("/dev/null", p).unwrap();
                std::os::unix::fs::lchown(p, Some(1000), Some(1000)).unwrap();
            }),
        ),
    ];
    for (seen, make) in &cases {
        std::fs::remove_file(&root_bait).unwrap();
        make(&root_bait);
        run_once();
        let messages = tamper_messages(&ht, "BaitUnreadable");
        assert!(messages.iter().any(|m| m.contains(seen)), "{seen}: {messages:#?}");
        restore();
    }
    // An extra hard link to the bait file itself.
    std::fs::hard_link(&root_bait, root.join("root/elsewhere")).unwrap();
    run_once();
    assert!(tamper_messages(&ht, "BaitUnreadable").iter().any(|m| m.contains("2 hard links")));
    let hidden = tamper_with(&ht, "BaitUnreadable").unwrap();
    assert_eq!(hidden["incident"]["severity"], "high", "{:#}", hidden["incident"]);
    std::fs::remove_file(root.join("root/elsewhere")).unwrap();
    run_once();
    assert_eq!(ht.agents()[0]["files"][0]["presence"], "present");
}

#[test]
fn a_removal_that_fails_part_way_keeps_what_the_host_really_holds() {
    if !is_root() {
        eprintln!("skipped: the agent writes into other users' homes as root (./scripts/test runs as root in CI)");
        return;
    }
    let ht = Ht::new(&[]);
    let serve = ht.serve();
    let state = ht.dir.path().join("agent-state");
    let root = host_tree(ht.dir.path());
    let secret = ht.secret(&["--uses", "1", "--template", "laptop"]);
    enrol_once(&serve.url(), &secret, &state, &root).ok();
    let maria = root.join("home/maria/.aws/credentials");
    let key = prod_key(&std::fs::read_to_string(&maria).unwrap());
    let run_once = || agent(&["run", "--state-dir", state.to_str().unwrap(), "--once"]);
    run_once().ok();
    // maria's file gets a second hard link: it cannot be rewritten safely,
    // so its removal fails; root's succeeds.
    let extra = root.join("home/maria/linked");
    std::fs::hard_link(&maria, &extra).unwrap();
    ht.run(&["agent", "remove", "1"]).ok();
    run_once().ok();
    assert!(!root.join("root/.aws").exists(), "root's bait and the directory made for it are gone");
    assert!(std::fs::read_to_string(&maria).unwrap().contains(&key), "maria's file is as it was");
    let a = &ht.agents()[0];
    assert_eq!(a["state"], "active", "{a:#}");
    assert_eq!(a["commands"][0]["state"], "failed");
    assert_eq!(ht.token(&key)["state"], "active", "the key still sits in maria's file");
    let placements = ht.token(&key)["placements"].as_array().unwrap().clone();
    let open: Vec<&Value> = placements.iter().filter(|p| p["removed_at"].is_null()).collect();
    assert_eq!(open.len(), 1, "root's placement is closed: {placements:#?}");
    assert_eq!(open[0]["path"], "/home/maria/.aws/credentials");
    assert_eq!(placements.len(), 2, "and kept, with when it was removed");
    // The next heartbeat reports no missing bait for the file taken out.
    run_once().ok();
    assert!(tamper_messages(&ht, "BaitMissing").is_empty(), "{:#?}", tamper_messages(&ht, "BaitMissing"));
    // Once the extra link goes, the removal finishes.
    std::fs::remove_file(&extra).unwrap();
    ht.run(&["agent", "remove", "1"]).ok();
    run_once().ok();
    assert!(!std::fs::read_to_string(&maria).unwrap().contains(&key));
    assert_eq!(ht.agents()[0]["state"], "removed");
    assert_eq!(ht.token(&key)["state"], "retired");
}

#[test]
fn the_served_installer_checks_the_agent_installs_and_enrols() {
    if !is_root() {
        eprintln!("skipped: the installer runs as root (./scripts/test runs as root in CI)");
        return;
    }
    // The server serves a copy of the agent, so the test can swap it.
    let scratch = tempfile::tempdir().unwrap();
    let served = scratch.path().join("agent");
    std::fs::copy(AGENT, &served).unwrap();
    let ht =
        Ht::new(&[("HONEYTRAIL_FLEET_POOL_SIZE", "1"), ("HONEYTRAIL_FLEET_AGENT_BINARY", served.to_str().unwrap())]);
    let root = host_tree(ht.dir.path());
    let secret = ht.secret(&["--uses", "1", "--template", "server"]);
    let serve = ht.serve();
    wait_for("the pool to fill", || ht.run(&["fleet", "pool"]).ok().stdout.contains("pool: 1 of 1"));

    let (status, script) = http(serve.port, "GET", "/deploy/install.sh", &[], "").unwrap();
    assert_eq!(status, 200, "{script}");
    assert!(script.contains(&format!("server='{}'", serve.url())), "{script}");
    let install = scratch.path().join("install.sh");
    std::fs::write(&install, &script).unwrap();
    let script_sha = honeytrail_core::snippet::sha256_hex(script.as_bytes());

    // Every snippet pins exactly the installer served, and names the secret's place, never a secret.
    // (The command line renders with the same public URL as the server: here, where it listens.)
    let listen = format!("127.0.0.1:{}", serve.port);
    for kind in ["cloud-init", "ansible", "terraform", "shell"] {
        let mut cmd = ht.command(&["deploy", "snippet", kind, "--secret-name", "/ops/web/enrolment"]);
        let out = output(cmd.env("HONEYTRAIL_SERVE_LISTEN", &listen)).ok();
        assert!(out.stdout.contains(&script_sha), "{kind}: {}", out.stdout);
        assert!(out.stdout.contains("/ops/web/enrolment") && out.stdout.contains("/deploy/install.sh"), "{kind}");
        assert!(!out.stdout.contains(std::fs::read_to_string(&secret).unwrap().trim()), "{kind} holds the secret");
    }
    let (status, _) = http(serve.port, "GET", "/api/v1/deploy/snippet?kind=shell", &[], "").unwrap();
    assert_eq!(status, 401, "snippets are for people signed in");
    assert_ne!(ht.run(&["deploy", "snippet", "shell", "--service-name", "canary-agent"]).code, 0);

    let dirs = ["bin", "units", "state"].map(|d| scratch.path().join(d));
    let run_installer = || {
        output(
            Command::new("sh")
                .arg(&install)
                .args(["--secret-file", secret.to_str().unwrap(), "--root", root.to_str().unwrap()])
                .args(["--bin-dir", dirs[0].to_str().unwrap(), "--unit-dir", dirs[1].to_str().unwrap()])
                .args(["--state-dir", dirs[2].to_str().unwrap(), "--no-start"]),
        )
    };

    // A binary that is not the one the script names is not installed, and nothing is enrolled.
    let mut other = std::fs::read(AGENT).unwrap();
    other.extend_from_slice(b"\0tampered");
    std::fs::write(&served, &other).unwrap();
    let refused = run_installer();
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("is not the one this script names"), "{}", refused.stderr);
    assert!(!dirs[0].exists() && !dirs[2].exists(), "something was installed");
    assert!(ht.agents().is_empty());

    // The real one: installed under the dull default name, its unit beside, the host enrolled.
    std::fs::copy(AGENT, &served).unwrap();
    let out = run_installer().ok();
    assert!(out.stderr.contains("enrolled as agent #1"), "{}", out.stderr);
    let bin = dirs[0].join("host-inventory");
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(AGENT).unwrap());
    let unit = std::fs::read_to_string(dirs[1].join("host-inventory.service")).unwrap();
    assert!(unit.contains(&format!("ExecStart={} run", bin.display())), "{unit}");
    assert_eq!(std::fs::metadata(&dirs[2]).unwrap().mode() & 0o777, 0o700);
    let agents = ht.agents();
    assert_eq!((agents.len(), agents[0]["state"].as_str()), (1, Some("active")));
    // The server template: root's profile only; maria's real one untouched.
    assert_eq!(
        prod_key(&std::fs::read_to_string(root.join("root/.aws/credentials")).unwrap()),
        agents[0]["access_key_id"].as_str().unwrap()
    );
    assert_eq!(std::fs::read_to_string(root.join("home/maria/.aws/credentials")).unwrap(), REAL_PROFILE);
}

/// A stand-in for the EC2 metadata service (IMDSv2) on a loopback port:
/// a session token from `PUT /latest/api/token`, then the identity
/// document and signature for requests that carry it.
fn fake_imds(document: String, signature: String) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                headers.push(line.to_ascii_lowercase());
            }
            let has = |h: &str| headers.iter().any(|l| l.starts_with(h));
            let (status, body) = match request.split_whitespace().take(2).collect::<Vec<_>>()[..] {
                ["PUT", "/latest/api/token"] if has("x-aws-ec2-metadata-token-ttl-seconds:") => {
                    ("200 OK", "AQAEAFakeSessionToken==".to_string())
                }
                ["GET", _]
                    if !headers.iter().any(|l| l.starts_with("x-aws-ec2-metadata-token: aqaeafakesessiontoken==")) =>
                {
                    ("401 Unauthorized", String::new())
                }
                ["GET", "/latest/dynamic/instance-identity/document"] => ("200 OK", document.clone()),
                ["GET", "/latest/dynamic/instance-identity/signature"] => ("200 OK", signature.clone()),
                _ => ("404 Not Found", String::new()),
            };
            let answer =
                format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            stream.write_all(answer.as_bytes()).ok(); // a client gone is its own problem
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// An identity document for `instance` in `account`, signed with `key`.
fn identity(dir: &Path, key: &str, account: &str, instance: &str) -> (String, String) {
    let doc = format!(
        "{{\n  \"accountId\" : \"{account}\",\n  \"architecture\" : \"x86_64\",\n  \"availabilityZone\" : \"eu-west-1a\",\n  \"imageId\" : \"ami-0abcdef1234567890\",\n  \"instanceId\" : \"{instance}\",\n  \"instanceType\" : \"t3.micro\",\n  \"pendingTime\" : \"2026-12-03T08:00:00Z\",\n  \"privateIp\" : \"10.0.1.17\",\n  \"region\" : \"eu-west-1\",\n  \"version\" : \"2017-09-30\"\n}}"
    );
    let name = format!("doc-{instance}");
    std::fs::write(dir.join(&name), &doc).unwrap();
    sh(dir, &format!("openssl dgst -sha256 -sign {key}.key -out {name}.sig {name} && base64 {name}.sig > {name}.b64"));
    (doc, std::fs::read_to_string(dir.join(format!("{name}.b64"))).unwrap())
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn enrolment_guards_refuse_strangers_and_raise_incidents() {
    if !is_root() {
        eprintln!("skipped: the agent writes into other users' homes as root (./scripts/test runs as root in CI)");
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    for name in ["aws", "forger"] {
        sh(
            certs.path(),
            &format!(
                "openssl req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN={name} 2>/dev/null \
                 && openssl x509 -req -in {name}.csr -signkey {name}.key -out {name}.pem -days 2 2>/dev/null"
            ),
        );
    }
    let pem = certs.path().join("aws.pem");
    let ht = Ht::new(&[("HONEYTRAIL_FLEET_EC2_IDENTITY_CERTIFICATES", pem.to_str().unwrap())]);
    let serve = ht.serve();
    let hosts = std::cell::Cell::new(0);
    // A fresh host each time: its tree and state directory, and what `enrol` said.
    let enrol = |secret: &Path, imds: Option<&str>| {
        hosts.set(hosts.get() + 1);
        let base = ht.dir.path().join(format!("host-{}", hosts.get()));
        let root = host_tree(&base);
        let before = snapshot(&root);
        let state = base.join("state");
        let mut args = vec![
            "enroll".to_string(),
            "--server".into(),
            serve.url(),
            "--secret-file".into(),
            secret.to_str().unwrap().into(),
            "--state-dir".into(),
            state.to_str().unwrap().into(),
            "--root".into(),
            root.to_str().unwrap().into(),
            "--once".into(),
        ];
        if let Some(url) = imds {
            args.extend(["--ec2-identity".into(), "--imds-url".into(), url.into()]);
        }
        let out = output(Command::new(AGENT).args(&args));
        if out.code != 0 {
            assert_eq!(snapshot(&root), before, "a refused enrolment changed the host");
            assert!(!state.exists());
        }
        out
    };
    let enrolment = |id: i64| -> Value {
        let all = ht.run(&["enroll", "list", "--json"]).ok().json();
        all.as_array().unwrap().iter().find(|e| e["id"].as_i64() == Some(id)).cloned().expect("the secret")
    };

    // Binding needs the accounts, and a certificate file that holds certificates.
    let out = ht.run(&["enroll", "create", "--uses", "5", "--bind", "ec2"]);
    assert_ne!(out.code, 0);
    let out = ht.run(&["enroll", "create", "--uses", "5", "--bind", "ec2", "--account", "12345"]);
    assert!(out.stderr.contains("not an AWS account ID"), "{}", out.stderr);
    let bound = ht.secret(&["--uses", "5", "--template", "laptop", "--bind", "ec2", "--account", "123456789012"]);
    let listed = ht.run(&["enroll", "list"]).ok().stdout;
    assert!(listed.contains("ec2 123456789012"), "{listed}");

    // Without an identity: refused, counted; no host enrolled before, so no key to raise it on.
    let out = enrol(&bound, None);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("bound to EC2 instances") && out.stderr.contains("--ec2-identity"), "{}", out.stderr);
    assert_eq!(enrolment(1)["refused"], 1);
    assert!(incidents(&ht).is_empty());

    // A real instance of the account enrols, and the record names it.
    let (doc_a, sig_a) = identity(certs.path(), "aws", "123456789012", "i-0aaa1111bbbb2222c");
    let imds_a = fake_imds(doc_a.clone(), sig_a.clone());
    let out = enrol(&bound, Some(&imds_a)).ok();
    assert!(out.stderr.contains("enrolled as agent"), "{}", out.stderr);
    let agents = ht.agents();
    let first = &agents[0];
    assert_eq!(first["ec2"]["instance_id"], "i-0aaa1111bbbb2222c");
    assert_eq!((&first["ec2"]["account_id"], &first["ec2"]["region"]), (&"123456789012".into(), &"eu-west-1".into()));
    let first_key = first["access_key_id"].as_str().unwrap().to_string();

    // The same instance again (its document replayed by another host): refused, and an
    // incident on the key of the host that enrolled with the secret.
    let out = enrol(&bound, Some(&imds_a));
    assert!(out.stderr.contains("i-0aaa1111bbbb2222c is already enrolled"), "{}", out.stderr);
    let raised = incidents(&ht);
    let inc = raised.iter().find(|i| i["kind"] == "enrolment").unwrap_or_else(|| panic!("{raised:#?}"));
    let shown = ht.run(&["incident", "show", &inc["id"].to_string(), "--json"]).ok().json();
    assert!(shown.to_string().contains(&first_key), "{shown}");
    assert!(shown.to_string().contains("already enrolled"), "{shown}");

    // Another account's instance, a document signed by someone else, a document altered.
    let (doc_c, sig_c) = identity(certs.path(), "aws", "999999999999", "i-0ccc3333dddd4444e");
    let out = enrol(&bound, Some(&fake_imds(doc_c, sig_c)));
    assert!(out.stderr.contains("instance i-0ccc3333dddd4444e is in account 999999999999"), "{}", out.stderr);
    let (doc_f, sig_f) = identity(certs.path(), "forger", "123456789012", "i-0fff5555aaaa6666b");
    let out = enrol(&bound, Some(&fake_imds(doc_f, sig_f)));
    assert!(out.stderr.contains("identity was not accepted"), "{}", out.stderr);
    let altered = doc_a.replace("i-0aaa1111bbbb2222c", "i-0aaa1111bbbb2222d");
    let out = enrol(&bound, Some(&fake_imds(altered, sig_a)));
    assert!(out.stderr.contains("identity was not accepted"), "{}", out.stderr);
    // No metadata service at all: the agent says so before spending anything.
    let out = enrol(&bound, Some(&format!("http://127.0.0.1:{}", dead_port())));
    assert!(out.stderr.contains("metadata service"), "{}", out.stderr);
    let e = enrolment(1);
    assert_eq!((e["used"].as_i64(), e["refused"].as_i64()), (Some(1), Some(5)), "{e}");

    // A secret for one network, used from another.
    let netted = ht.secret(&["--uses", "2", "--template", "laptop", "--from", "192.0.2.0/24"]);
    let out = enrol(&netted, None);
    assert!(out.stderr.contains("is for hosts in 192.0.2.0/24; this request came from 127.0.0.1"), "{}", out.stderr);
    assert_eq!(enrolment(2)["used"], 0);

    // More hosts than expected: they enrol, and the one beyond raises an incident on its own key.
    let expected = ht.secret(&["--uses", "3", "--template", "laptop", "--expect", "1", "--from", "127.0.0.1"]);
    enrol(&expected, None).ok();
    assert!(!incidents(&ht).iter().any(|i| i["kind"] == "enrolment" && i["id"] != inc["id"]));
    enrol(&expected, None).ok();
    let extra = ht.agents().into_iter().max_by_key(|a| a["id"].as_i64()).unwrap();
    let extra_key = extra["access_key_id"].as_str().unwrap().to_string();
    let raised = incidents(&ht);
    let unexpected = raised
        .iter()
        .filter(|i| i["kind"] == "enrolment")
        .map(|i| ht.run(&["incident", "show", &i["id"].to_string(), "--json"]).ok().json())
        .find(|i| i.to_string().contains(&extra_key))
        .unwrap_or_else(|| panic!("no incident on the unexpected host's key: {raised:#?}"));
    assert!(unexpected.to_string().contains("host 2 of 1 expected"), "{unexpected}");
}

/// A CA and a certificate it signed for 127.0.0.1, as `{name}-ca.pem`,
/// `{name}.pem` (the chain) and `{name}.key`.
fn tls_pair(dir: &Path, name: &str) {
    sh(
        dir,
        &format!(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout {name}-ca.key -out {name}-ca.pem -days 2 -subj /CN={name}-ca 2>/dev/null \
             && openssl req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj /CN=127.0.0.1 2>/dev/null \
             && printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > {name}.ext \
             && openssl x509 -req -in {name}.csr -CA {name}-ca.pem -CAkey {name}-ca.key -CAcreateserial -days 2 -extfile {name}.ext -out {name}.crt 2>/dev/null \
             && cat {name}.crt {name}-ca.pem > {name}.pem"
        ),
    );
}

#[test]
fn serve_speaks_tls_itself_and_picks_up_a_renewed_certificate() {
    if !is_root() {
        eprintln!("skipped: the agent writes into other users' homes as root (./scripts/test runs as root in CI)");
        return;
    }
    let ht = Ht::new(&[]);
    let pki = tempfile::tempdir().unwrap();
    tls_pair(pki.path(), "first");
    tls_pair(pki.path(), "second");
    let live = pki.path().join("live");
    std::fs::create_dir(&live).unwrap();
    let (cert, key) = (live.join("fullchain.pem"), live.join("privkey.pem"));
    std::fs::copy(pki.path().join("first.pem"), &cert).unwrap();
    std::fs::copy(pki.path().join("first.key"), &key).unwrap();

    // Half a configuration, and a key that is not the certificate's, are refused at start.
    let out = ht.command(&["serve"]).env("HONEYTRAIL_SERVE_TLS_CERT", &cert).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("serve.tls_key"), "{out:?}");
    let out = ht
        .command(&["serve"])
        .env("HONEYTRAIL_SERVE_LISTEN", "127.0.0.1:0")
        .env("HONEYTRAIL_SERVE_TLS_CERT", &cert)
        .env("HONEYTRAIL_SERVE_TLS_KEY", pki.path().join("second.key"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("do not make a certificate to serve"), "{out:?}");

    let serve = ht.serve_with(&[
        ("HONEYTRAIL_SERVE_TLS_CERT", cert.to_str().unwrap()),
        ("HONEYTRAIL_SERVE_TLS_KEY", key.to_str().unwrap()),
    ]);
    let https = format!("https://127.0.0.1:{}", serve.port);
    let banner = std::fs::read_to_string(ht.dir.path().join("serve.log")).unwrap();
    assert!(banner.contains(&format!("web UI: {https}/")), "{banner}");
    let enrol = |n: &str, ca: &str| {
        let base = ht.dir.path().join(n);
        let root = host_tree(&base);
        let secret = ht.secret(&["--uses", "1", "--template", "laptop"]);
        agent(&[
            "enroll",
            "--server",
            &https,
            "--secret-file",
            secret.to_str().unwrap(),
            "--state-dir",
            base.join("state").to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--ca-file",
            pki.path().join(ca).to_str().unwrap(),
            "--once",
        ])
    };
    // The agent enrols over it, trusting the internal CA; plain http gets nothing.
    let out = enrol("a", "first-ca.pem").ok();
    assert!(out.stderr.contains("enrolled as agent"), "{}", out.stderr);
    assert!(http(serve.port, "GET", "/healthz", &[], "").map_or(true, |(status, _)| status != 200));
    let out = enrol("b", "second-ca.pem");
    assert!(out.stderr.contains("TLS") && out.stderr.contains("--ca-file"), "{}", out.stderr);

    // The CLI's remote mode trusts the same internal CA with --ca-file, and
    // says what to do without it; plain http to another host is refused
    // before the API token is sent.
    ht.run(&["user", "add", "rita", "--role", "responder"]).ok();
    let api_token = ht.run(&["user", "token", "rita", "--for", "tls-test"]).ok().stdout.trim().to_string();
    let remote = |extra: &[&str]| {
        let mut all = vec!["--server", https.as_str()];
        all.extend_from_slice(extra);
        all.extend_from_slice(&["token", "list", "--json"]);
        let mut cmd = ht.command(&all);
        cmd.env("HONEYTRAIL_TOKEN", &api_token).env("HOME", pki.path());
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let first_ca = pki.path().join("first-ca.pem");
    let (code, stdout, stderr) = remote(&["--ca-file", first_ca.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(serde_json::from_str::<Value>(&stdout).unwrap().is_array(), "{stdout}");
    let (code, _, stderr) = remote(&[]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("TLS") && stderr.contains("--ca-file"), "{stderr}");
    assert!(!stderr.contains(&api_token), "{stderr}");
    let empty = pki.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let (code, _, stderr) = remote(&["--ca-file", empty.to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("holds no PEM certificate"), "{stderr}");
    let plain = ht
        .command(&["--server", "http://192.0.2.10:8080", "token", "list"])
        .env("HONEYTRAIL_TOKEN", &api_token)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&plain.stderr);
    assert!(!plain.status.success() && said.contains("must be https://"), "{said}");

    // Renewed in place (a certificate from another CA): new connections get it, no restart.
    std::fs::copy(pki.path().join("second.pem"), &cert).unwrap();
    std::fs::copy(pki.path().join("second.key"), &key).unwrap();
    let mut renewed = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(500));
        let base = ht.dir.path().join("probe");
        if base.exists() {
            std::fs::remove_dir_all(&base).unwrap();
        }
        if enrol("probe", "second-ca.pem").code == 0 {
            renewed = true;
            break;
        }
    }
    assert!(renewed, "the renewed certificate was never served");
    let out = enrol("c", "first-ca.pem");
    assert!(out.stderr.contains("TLS"), "{}", out.stderr);
}

/// Reads of the bait, newest first, as the CLI lists them.
fn reads(ht: &Ht) -> Vec<Value> {
    ht.run(&["evidence", "list", "--json"]).ok().json().as_array().unwrap().clone()
}

/// A background `honeytrail-agent run`, killed when dropped.
struct Running(std::process::Child, PathBuf);

impl Running {
    fn start(prefix: &[&str], state: &Path, extra: &[&str], log: PathBuf) -> Running {
        let (program, pre) = match prefix.split_first() {
            Some((p, rest)) => (*p, rest.to_vec()),
            None => (AGENT, Vec::new()),
        };
        let mut cmd = Command::new(program);
        cmd.args(pre);
        if !prefix.is_empty() {
            cmd.arg(AGENT);
        }
        cmd.args(["run", "--state-dir", state.to_str().unwrap()]).args(extra);
        let child = cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        Running(child, log)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.kill().ok(); // already gone is fine
        self.0.wait().ok(); // reaped is fine
    }
}

#[test]
fn reads_of_the_bait_are_reported_with_their_process_and_lead_the_incident() {
    if !is_root() {
        eprintln!("skipped: fanotify and writing other users' bait need root (./scripts/test runs as root in CI)");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    // A "backup agent": a copy of cat under a name of its own, on the quiet list.
    let backup = scratch.path().join("backupd");
    std::fs::copy("/usr/bin/cat", &backup).unwrap();
    let quiet = backup.to_str().unwrap().to_string();
    let ht =
        Ht::new(&[("HONEYTRAIL_EVIDENCE_TOUCH_WINDOW", "3s"), ("HONEYTRAIL_EVIDENCE_QUIET_PROGRAMS", quiet.as_str())]);
    let root = host_tree(ht.dir.path());
    let state = ht.dir.path().join("agent-state");
    let secret = ht.secret(&["--uses", "1", "--template", "laptop"]);
    let serve = ht.serve();
    let port = serve.port;
    let url = serve.url();
    enrol_once(&url, &secret, &state, &root).ok();
    let maria = root.join("home/maria/.aws/credentials");
    let root_bait = root.join("root/.aws/credentials");
    let key = prod_key(&std::fs::read_to_string(&maria).unwrap());
    let watching = Running::start(&[], &state, &[], ht.dir.path().join("agent.log"));
    wait_for("the agent to watch with fanotify", || ht.agents()[0]["watch"] == "fanotify");
    assert!(watching.log().contains("watching the bait for reads (fanotify)"), "{}", watching.log());

    // The backup agent reads the bait: kept, marked quiet, and no incident after the window.
    // (It holds on, reading its stdin, until told: its /proc entry is read after the open,
    // and a process already gone by then is reported without its executable.)
    let mut held =
        Command::new(&backup).arg(&root_bait).arg("-").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    wait_for("the backup read", || reads(&ht).iter().any(|r| r["access"]["process"]["exe"] == quiet.as_str()));
    drop(held.stdin.take());
    held.wait().unwrap();
    std::thread::sleep(Duration::from_secs(5));
    assert!(!incidents(&ht).iter().any(|i| i["kind"] == "touched"), "a quiet program's read never alerts");
    assert_eq!(reads(&ht)[0]["touch"], "quiet");

    // A read with no use after it: one low-severity bait-touched incident once the window passed.
    let out = Command::new("cat").arg(&root_bait).output().unwrap();
    assert!(out.status.success());
    wait_for("a bait-touched incident", || incidents(&ht).iter().any(|i| i["kind"] == "touched"));
    let touched: Vec<Value> = incidents(&ht).into_iter().filter(|i| i["kind"] == "touched").collect();
    assert_eq!(touched.len(), 1, "{touched:#?}");
    let shown = ht.run(&["incident", "show", &touched[0]["id"].to_string(), "--json"]).ok().json();
    assert_eq!(shown["incident"]["severity"], "low", "{shown:#}");
    assert!(shown["reads"].to_string().contains("/root/.aws/credentials"), "{shown:#}");

    // An editor replaces maria's file atomically (same bytes): still watched.
    let tmp = root.join("home/maria/.aws/.credentials.swp");
    std::fs::copy(&maria, &tmp).unwrap();
    chown(&tmp, Some(1000), Some(1000)).unwrap();
    std::fs::rename(&tmp, &maria).unwrap();

    // Maria's uid reads it through a shell; cat holds on (reading its stdin) until told.
    let mut held = Command::new("setpriv")
        .args(["--reuid=1000", "--regid=1000", "--clear-groups", "--", "sh", "-c"])
        .arg(format!("cat {} -", maria.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let shell = held.id();
    wait_for("maria's read", || {
        reads(&ht)
            .iter()
            .any(|r| r["access"]["process"]["exe"] == "/usr/bin/cat" && r["access"]["process"]["uid"] == 1000)
    });
    drop(held.stdin.take());
    held.wait().unwrap();
    let all = reads(&ht);
    let read = all.iter().find(|r| r["access"]["process"]["uid"] == 1000).unwrap();
    let p = &read["access"]["process"];
    assert_eq!((p["user"].as_str(), read["host"].as_str()), (Some("maria"), Some("web-17")), "{read:#}");
    // Her own credentials file, the bait merged in: her tools read it all day, so it never alerts alone.
    assert_eq!((read["access"]["by_owner"].as_bool(), read["touch"].as_str()), (Some(true), Some("quiet")), "{read:#}");
    assert_eq!(read["access"]["path"], "/home/maria/.aws/credentials");
    assert_eq!(read["access_key_id"], key.as_str());
    assert!(p["cmdline"].as_str().unwrap().starts_with("cat "), "{p:#}");
    let parents = p["parents"].as_array().unwrap();
    assert_eq!(parents[0]["pid"], shell, "the parent is the shell: {p:#}");
    assert_eq!(parents[0]["name"], "sh");
    assert!(read["sentence"].as_str().unwrap().contains("read by /usr/bin/cat, pid "), "{read:#}");
    // The agent's own reads (a presence check every heartbeat) are not evidence.
    let agent_pid = watching.0.id();
    assert!(all.iter().all(|r| r["access"]["process"]["pid"] != agent_pid), "{all:#?}");

    // The key is used moments later: the incident starts with the read.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let record = serde_json::json!({"Records": [{
        "eventVersion": "1.09", "eventTime": at, "eventSource": "sts.amazonaws.com",
        "eventName": "GetCallerIdentity", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9",
        "userAgent": "aws-cli/2.15.0", "eventID": "evidence-e2e-1", "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "accessKeyId": key, "accountId": "123456789012",
                         "arn": "arn:aws:iam::123456789012:user/x", "userName": "x"}}]});
    let log = ht.dir.path().join("trail.json");
    std::fs::write(&log, record.to_string()).unwrap();
    ht.run(&["ingest", log.to_str().unwrap()]).ok();
    let used = incidents(&ht).into_iter().find(|i| i["kind"] == "use").expect("a use incident");
    let id = used["id"].to_string();
    let shown = ht.run(&["incident", "show", &id, "--json"]).ok().json();
    let before = shown["read_before"].as_str().unwrap_or_default();
    assert!(before.starts_with("read by /usr/bin/cat, pid") && before.contains("user maria"), "{shown:#}");
    assert!(before.contains(" ← sh on web-17") && before.contains("before the first call"), "{before}");
    assert_eq!(shown["reads"][0]["access"]["process"]["uid"], 1000, "newest read first");
    let text = ht.run(&["incident", "show", &id]).ok().stdout;
    assert!(text.contains("Bait read on the host: read by /usr/bin/cat"), "{text}");

    // The server goes away; reads wait on disk, across an agent restart too, and arrive in order.
    drop(serve);
    Command::new("cat").arg(&maria).output().unwrap();
    wait_for("the read queued on disk", || {
        std::fs::read_to_string(state.join("evidence.jsonl")).unwrap_or_default().lines().count() == 1
    });
    drop(watching);
    let queued = std::fs::read_to_string(state.join("evidence.jsonl")).unwrap_or_default();
    assert_eq!(queued.lines().count(), 1, "one read queued: {queued}");
    let watching = Running::start(&[], &state, &[], ht.dir.path().join("agent2.log"));
    wait_for("the restarted agent to watch", || watching.log().contains("watching the bait for reads"));
    Command::new("cat").arg(&root_bait).output().unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let before_restart = reads(&ht).len();
    let _serve = ht.serve_on(port);
    let start = Instant::now();
    while reads(&ht).len() != before_restart + 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the queued reads never arrived: {:#?}\nagent: {}\nqueue: {:?}",
            reads(&ht),
            watching.log(),
            std::fs::read_to_string(state.join("evidence.jsonl"))
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let newest = reads(&ht);
    assert_eq!(newest[0]["access"]["path"], "/root/.aws/credentials", "in order: {newest:#?}");
    assert_eq!(newest[1]["access"]["path"], "/home/maria/.aws/credentials");
    // Both within minutes of the key's use: part of that use, no bait-touched incident of their own.
    wait_for("the reads to count as used", || reads(&ht)[..2].iter().all(|r| r["touch"] == "used"));
    wait_for("the queue to empty", || {
        std::fs::read_to_string(state.join("evidence.jsonl")).unwrap_or_default().is_empty()
    });
    drop(watching);

    // Without CAP_SYS_ADMIN: it says so and falls back to inotify, with no process information.
    let fallback = Running::start(
        &["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin"],
        &state,
        &[],
        ht.dir.path().join("agent3.log"),
    );
    wait_for("the inotify fallback", || ht.agents()[0]["watch"] == "inotify");
    assert!(fallback.log().contains("fanotify is not available"), "{}", fallback.log());
    let count = reads(&ht).len();
    // Halfway between two heartbeats (each a presence check, the agent's own reads).
    std::thread::sleep(Duration::from_millis(500));
    Command::new("cat").arg(&maria).output().unwrap();
    let start = Instant::now();
    while reads(&ht).len() != count + 1 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no inotify read: {}\nqueue: {:?}",
            fallback.log(),
            std::fs::read_to_string(state.join("evidence.jsonl"))
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let r = &reads(&ht)[0];
    assert_eq!(r["access"]["source"], "inotify");
    assert!(
        r["access"]["process"].is_null() && r["sentence"].as_str().unwrap().contains("no process information"),
        "{r:#}"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(reads(&ht).len(), count + 1, "the agent's own presence checks are not reads under inotify either");
}

#[test]
fn one_agent_credential_cannot_fill_the_servers_disk() {
    if !is_root() {
        eprintln!("skipped: the agent writes into other users' homes as root (./scripts/test runs as root in CI)");
        return;
    }
    let ht = Ht::new(&[("HONEYTRAIL_EVIDENCE_AGENT_RECORDS_PER_HOUR", "50")]);
    let serve = ht.serve();
    let state = ht.dir.path().join("agent-state");
    let root = host_tree(ht.dir.path());
    let secret = ht.secret(&["--uses", "1", "--template", "laptop"]);
    enrol_once(&serve.url(), &secret, &state, &root).ok();
    let credential = std::fs::read_to_string(state.join("credential")).unwrap();
    let bearer = format!("Bearer {}", credential.trim());
    let next = std::cell::Cell::new(0);
    let batch = |path: &str, n: usize| {
        let records: Vec<Value> = (0..n)
            .map(|_| {
                next.set(next.get() + 1);
                serde_json::json!({
                    "id": format!("flood-{}", next.get()), "at": "2026-12-07T10:00:00Z", "last_at": "2026-12-07T10:00:00Z",
                    "count": 1, "path": path, "source": "inotify"
                })
            })
            .collect();
        let body = serde_json::json!({"records": records}).to_string();
        let (status, reply) = http(
            serve.port,
            "POST",
            "/api/v1/fleet/evidence",
            &[("Authorization", &bearer), ("Content-Type", "application/json")],
            &body,
        )
        .unwrap();
        assert_eq!(status, 200, "{reply}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        (reply["filed"].as_u64().unwrap(), reply["refused"].as_u64().unwrap())
    };
    // Records for a path this agent never placed are counted, never kept.
    assert_eq!(batch("/etc/shadow", 10), (0, 10));
    // Up to the hourly quota they are kept; beyond it counted and refused.
    assert_eq!(batch("/root/.aws/credentials", 40), (40, 0));
    assert_eq!(batch("/root/.aws/credentials", 40), (10, 30));
    assert_eq!(batch("/root/.aws/credentials", 40), (0, 40));
    let kept = ht.run(&["evidence", "list", "--json"]).ok().json();
    assert_eq!(kept.as_array().unwrap().len(), 50, "what one credential can make the server keep is bounded");
    let a = &ht.agents()[0];
    assert_eq!(a["evidence_refused"], 80, "{a:#}");
    // The flood raises one incident on the host's key, one event an hour.
    let floods = tamper_messages(&ht, "EvidenceFlood");
    assert_eq!(floods.len(), 1, "{floods:#?}");
    assert!(floods[0].contains("quota (50 records an hour"), "{}", floods[0]);
    let shown = ht.run(&["agent", "show", "1"]).ok().stdout;
    assert!(shown.contains("80 refused by the server"), "{shown}");
}

/// One CI job, as GitHub Actions runs it: the script the server serves, run
/// with the runner's variables and nothing else in its environment.
fn ci_step(serve: &Serve, home: &Path, mode: &str, extra: &[(&str, &str)]) -> Out {
    let (status, script) = http(serve.port, "GET", "/ci/honeytrail-ci.sh", &[], "").unwrap();
    assert_eq!(status, 200);
    let file = home.join("honeytrail-ci.sh");
    std::fs::write(&file, script).unwrap();
    let runner_temp = home.join("runner-temp");
    std::fs::create_dir_all(&runner_temp).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg(&file).arg(mode).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in [
        ("HOME", home.to_str().unwrap()),
        ("HONEYTRAIL_URL", &serve.url()),
        ("HONEYTRAIL_CI_STRICT", "1"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_REPOSITORY", "acme/shop"),
        ("GITHUB_WORKFLOW", "deploy"),
        ("GITHUB_JOB", "build"),
        ("GITHUB_SHA", "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"),
        ("GITHUB_RUN_ID", "4242"),
        ("GITHUB_RUN_ATTEMPT", "1"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_ENV", home.join("github-env").to_str().unwrap()),
        ("RUNNER_TEMP", runner_temp.to_str().unwrap()),
    ] {
        cmd.env(k, v);
    }
    cmd.envs(extra.iter().copied());
    output(&mut cmd)
}

/// A use of `key` at `at` from `ip`, as CloudTrail records it, ingested.
fn use_at(ht: &Ht, key: &str, id: &str, ip: &str, at: chrono::DateTime<chrono::Utc>) -> Out {
    let record = serde_json::json!({"Records": [{
        "eventVersion": "1.09", "eventTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity", "awsRegion": "us-east-1",
        "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.0", "eventID": id, "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "accessKeyId": key, "accountId": "123456789012",
                         "arn": "arn:aws:iam::123456789012:user/x", "userName": "x"}}]});
    let log = ht.dir.path().join(format!("trail-{id}.json"));
    std::fs::write(&log, record.to_string()).unwrap();
    ht.run(&["ingest", log.to_str().unwrap()]).ok()
}

/// A CI run takes its own key with the served script: written where the
/// job's tools look (never over credentials the job already has), tagged
/// with the run. Inside its window the runner's own use is kept on the run
/// without an alert; a use from elsewhere, or any use after the close, is an
/// incident naming the run. Refused secrets and hostile tags change nothing.
#[test]
fn a_ci_run_takes_its_own_canary_and_closes_its_window() {
    let ht = Ht::new(&[("HONEYTRAIL_FLEET_POOL_SIZE", "1")]);
    let secret = ht.secret(&["--uses", "3", "--label", "team=payments"]);
    let secret = std::fs::read_to_string(secret).unwrap();
    let serve = ht.serve();
    let home = ht.dir.path().join("runner-home");
    std::fs::create_dir_all(&home).unwrap();

    // A wrong secret: refused, named, nothing written; and the job fails only when strict.
    let refused = ci_step(&serve, &home, "open", &[("HONEYTRAIL_CI_SECRET", "not-a-secret")]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("the server refused the run (HTTP 403)"), "{}", refused.stderr);
    assert!(!home.join(".aws").exists());
    let lenient =
        ci_step(&serve, &home, "open", &[("HONEYTRAIL_CI_SECRET", "not-a-secret"), ("HONEYTRAIL_CI_STRICT", "0")]);
    assert_eq!(lenient.code, 0, "{}", lenient.stderr);
    assert!(lenient.stderr.contains("carrying on without a canary"), "{}", lenient.stderr);
    // A tag with a terminal escape in it: refused by name, no use spent.
    let hostile = ci_step(
        &serve,
        &home,
        "open",
        &[("HONEYTRAIL_CI_SECRET", secret.trim()), ("GITHUB_JOB", "build\u{1b}]8;;https://evil\u{7}")],
    );
    assert_eq!(hostile.code, 1);
    assert!(hostile.stderr.contains("job: at most 256 characters, no control"), "{}", hostile.stderr);
    assert!(!hostile.stderr.contains('\u{1b}'));

    let opened = ci_step(&serve, &home, "open", &[("HONEYTRAIL_CI_SECRET", secret.trim())]).ok();
    assert!(opened.stderr.contains("CI run #1 has its canary (profile [default])"), "{}", opened.stderr);
    let creds = std::fs::read_to_string(home.join(".aws/credentials")).unwrap();
    let key = creds.lines().find_map(|l| l.strip_prefix("aws_access_key_id = ")).unwrap().to_string();
    assert!(creds.starts_with("[default]\n"), "{creds}");
    assert_eq!(std::fs::metadata(home.join(".aws/credentials")).unwrap().mode() & 0o777, 0o600);
    let github_env = std::fs::read_to_string(home.join("github-env")).unwrap();
    assert!(github_env.contains(&format!("AWS_ACCESS_KEY_ID={key}\n")), "{github_env}");
    let secret_line = github_env.lines().find_map(|l| l.strip_prefix("AWS_SECRET_ACCESS_KEY=")).unwrap();
    assert!(opened.stdout.contains(&format!("::add-mask::{secret_line}")), "the secret is masked in the log");

    // The key is labelled with the run, and placed as the run.
    let token = ht.token(&key);
    assert_eq!(token["labels"]["ci.repository"], "acme/shop", "{token:#}");
    assert_eq!(token["labels"]["ci.run"], "4242");
    assert_eq!(token["labels"]["team"], "payments");
    let runs = ht.run(&["ci", "list", "--json"]).ok().json();
    assert_eq!(runs[0]["state"], "open", "{runs:#}");
    assert_eq!(runs[0]["source_address"], "127.0.0.1");

    // The job's own tools use the key from the runner: kept on the run, no incident.
    let now = chrono::Utc::now();
    let own = use_at(&ht, &key, "ci-own-1", "127.0.0.1", now);
    assert!(own.stderr.contains("expected by a CI run's window (stored on the run, not alerted): 1"), "{}", own.stderr);
    assert!(incidents(&ht).is_empty(), "{:#?}", incidents(&ht));
    // The same key from elsewhere while the job still runs: stolen from the runner.
    use_at(&ht, &key, "ci-stolen-1", "203.0.113.9", now);
    let stolen = incidents(&ht);
    assert_eq!(stolen.len(), 1, "{stolen:#?}");
    let shown = ht.run(&["incident", "show", &stolen[0]["id"].to_string(), "--json"]).ok().json();
    let placement = shown["placement"].as_str().unwrap_or_else(|| panic!("{shown:#}"));
    assert!(
        placement.contains("GitHub Actions run 4242 (attempt 1) of acme/shop, workflow deploy, job build"),
        "{placement}"
    );

    ci_step(&serve, &home, "close", &[]).ok();
    assert!(!home.join("runner-temp/honeytrail-ci.run").exists(), "the close token is gone with the run");
    let closed = ht.run(&["ci", "show", "1", "--json"]).ok().json();
    assert_eq!(closed["state"], "closed", "{closed:#}");
    assert_eq!(closed["expected_uses"], 1);
    assert_eq!(closed["expected"][0]["event_id"], "ci-own-1");
    assert_eq!(closed["incidents"].as_array().unwrap().len(), 1);
    // After the close even the runner's address is an incident (a leaked log or cache).
    let after = chrono::DateTime::parse_from_rfc3339(closed["closed_at"].as_str().unwrap()).unwrap().to_utc();
    use_at(&ht, &key, "ci-after-1", "127.0.0.1", after + chrono::Duration::seconds(2));
    let events: usize = incidents(&ht).iter().map(|i| i["event_count"].as_u64().unwrap() as usize).sum();
    assert_eq!(events, 2, "{:#?}", incidents(&ht));
    // The API gives the same to a user with a token.
    ht.run(&["user", "add", "vic", "--role", "viewer"]).ok();
    let token = ht.run(&["user", "token", "vic", "--for", "tests"]).ok().stdout.trim().to_string();
    let auth = format!("Bearer {token}");
    let (status, listed) = http(serve.port, "GET", "/api/v1/ci/runs?limit=1", &[("Authorization", &auth)], "").unwrap();
    assert_eq!(status, 200, "{listed}");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed["items"][0]["described"],
        "GitHub Actions run 4242 (attempt 1) of acme/shop, workflow deploy, job build, commit 3f2a9c1d8e7b"
    );
    let (status, one) = http(serve.port, "GET", "/api/v1/ci/runs/1", &[("Authorization", &auth)], "").unwrap();
    assert_eq!(status, 200);
    assert!(
        !one.contains(secret_line) && !one.contains("close_token"),
        "no secret and no close token in a read: {one}"
    );
    let text = ht.run(&["ci", "show", "1"]).ok().stdout;
    assert!(text.contains("closed") && text.contains("GetCallerIdentity"), "{text}");

    // A second job whose runner already holds credentials: they are left as they are.
    let busy = ht.dir.path().join("busy-home");
    std::fs::create_dir_all(busy.join(".aws")).unwrap();
    std::fs::write(busy.join(".aws/credentials"), REAL_PROFILE).unwrap();
    let second = ci_step(
        &serve,
        &busy,
        "open",
        &[
            ("HONEYTRAIL_CI_SECRET", secret.trim()),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            ("GITHUB_RUN_ID", "4243"),
        ],
    )
    .ok();
    assert!(second.stderr.contains("the environment is left alone"), "{}", second.stderr);
    let kept = std::fs::read_to_string(busy.join(".aws/credentials")).unwrap();
    assert!(kept.starts_with(REAL_PROFILE) && kept.contains("\n[ci]\naws_access_key_id = AKIA"), "{kept}");
    assert!(!busy.join("github-env").exists());
    // The secret had three uses: the refused attempts spent none.
    let third = ci_step(&serve, &busy, "open", &[("HONEYTRAIL_CI_SECRET", secret.trim()), ("GITHUB_RUN_ID", "4244")]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    let used = ht.run(&["enroll", "list", "--json"]).ok().json();
    assert_eq!(used[0]["used"], 3, "{used:#}");

    // Retiring run keys: only runs whose window ended (run 1); the IAM key goes with it.
    let sweep = ht.run(&["ci", "sweep", "--keep-days", "0", "--json"]).ok().json();
    assert_eq!((sweep["examined"].as_u64(), sweep["retired"].as_u64()), (Some(1), Some(1)), "{sweep:#}");
    assert_eq!(ht.token(&key)["state"], "retired");
    let user = ht.token(&key)["iam_user_name"].as_str().unwrap().to_string();
    let (_, keys, _) =
        aws_cli(&ht.moto.endpoint, "testing", "testing", &["iam", "list-access-keys", "--user-name", &user]);
    assert!(!keys.contains(&key), "the run's key is deleted in AWS: {keys}");
    let again = ht.run(&["ci", "sweep", "--keep-days", "0", "--json"]).ok().json();
    assert_eq!(again["examined"], 0, "a run is retired once: {again:#}");
}

/// A value of the `[prod]` section of a credentials file.
fn prod_value(text: &str, name: &str) -> String {
    let section = text.split("[prod]").nth(1).unwrap_or_else(|| panic!("no [prod] in {text}"));
    section
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .to_string()
}

/// A session canary end to end on moto: the host gets the honey role's
/// session credentials (`ASIA…` and a token) that work as that role and
/// nothing more; a refresh (asked for, then by a heartbeat near expiry)
/// writes a fresh session of the same canary in place, attested by the next
/// heartbeats; any session's use, by its assumed-role ARN, is an incident
/// naming the host, while honeytrail's own AssumeRole is not.
#[test]
fn a_session_canary_is_placed_refreshed_attested_and_matched() {
    if !is_root() {
        eprintln!("skipped: the agent writes into other users' homes as root (./scripts/test runs as root in CI)");
        return;
    }
    let ht =
        Ht::new(&[("HONEYTRAIL_FLEET_SESSION_SECONDS", "3600"), ("HONEYTRAIL_FLEET_SESSION_REFRESH_SECONDS", "2")]);
    let root = host_tree(ht.dir.path());
    let state = ht.dir.path().join("agent-state");
    let refused =
        ht.run(&["template", "add", "cache", "--format", "aws-cli-cache", "--path", "/root/.aws/cli/cache/a.json"]);
    assert_ne!(refused.code, 0, "a CLI cache holds sessions only");
    assert!(refused.stderr.contains("session"), "{}", refused.stderr);
    ht.run(&[
        "template",
        "add",
        "laptop-session",
        "--format",
        "aws-credentials",
        "--path",
        "~/.aws/credentials",
        "--profile",
        "prod",
        "--credential",
        "session",
    ])
    .ok();
    let secret = ht.secret(&["--uses", "1", "--template", "laptop-session", "--label", "team=web"]);
    let serve = ht.serve();
    // No key pool: a session canary needs none.
    enrol_once(&serve.url(), &secret, &state, &root).ok();

    let maria = root.join("home/maria/.aws/credentials");
    let text = std::fs::read_to_string(&maria).unwrap();
    assert!(text.starts_with(REAL_PROFILE), "the real profile changed:\n{text}");
    let first = prod_value(&text, "aws_access_key_id");
    assert!(first.starts_with("ASIA"), "session credentials: {text}");
    let token_text = prod_value(&text, "aws_session_token");
    assert!(!token_text.is_empty());
    // The credentials work, as the honey role's session and nothing else.
    let creds = ht.dir.path().join("stolen-credentials");
    std::fs::write(&creds, &text).unwrap();
    let whoami = Command::new("aws")
        .args([
            "sts",
            "get-caller-identity",
            "--profile",
            "prod",
            "--output",
            "json",
            "--endpoint-url",
            &ht.moto.endpoint,
        ])
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    let who: Value = serde_json::from_slice(&whoami.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&whoami.stderr)));
    let arn = who["Arn"].as_str().unwrap().to_string();
    assert!(arn.starts_with("arn:aws:sts::123456789012:assumed-role/app-instance-role/i-"), "{arn}");
    let (ok, policy, _) = aws_cli(
        &ht.moto.endpoint,
        "testing",
        "testing",
        &["iam", "get-role-policy", "--role-name", "app-instance-role", "--policy-name", "default"],
    );
    assert!(ok && policy.contains("Deny"), "the honey role denies everything: {policy}");

    let a = &ht.agents()[0];
    assert_eq!(a["template"]["credential"], "session");
    assert!(a["session_expires_at"].is_string(), "{a:#}");
    let detail = ht.token(&first);
    assert_eq!(detail["kind"], "aws-session");
    assert_eq!(detail["iam_user_arn"], arn.as_str(), "known by its session's ARN");
    assert_eq!(detail["placements"].as_array().unwrap().len(), 2);
    assert_eq!(detail["labels"]["team"], "web");
    let refused = ht.run(&["token", "retire", &first]);
    assert_ne!(refused.code, 0, "a live session canary is not retired by hand");
    assert!(refused.stderr.contains("agent remove"), "{}", refused.stderr);

    // A heartbeat long before expiry: attested, nothing refreshed.
    let run_once = || agent(&["run", "--state-dir", state.to_str().unwrap(), "--once"]);
    run_once().ok();
    assert_eq!(ht.agents()[0]["bait_state"], "ok");
    assert!(ht.agents()[0]["commands"].as_array().unwrap().is_empty());

    // Asked for (rotate on a session canary's host): a fresh session of the same canary.
    let asked = ht.run(&["agent", "rotate", "1", "--json"]).ok().json();
    assert_eq!(asked["kind"], "refresh");
    run_once().ok();
    let refreshed = std::fs::read_to_string(&maria).unwrap();
    assert!(refreshed.starts_with(REAL_PROFILE));
    let second = prod_value(&refreshed, "aws_access_key_id");
    assert!(second.starts_with("ASIA") && second != first, "{refreshed}");
    assert_eq!(
        prod_value(&std::fs::read_to_string(root.join("root/.aws/credentials")).unwrap(), "aws_access_key_id"),
        second
    );
    let a = &ht.agents()[0];
    assert_eq!(a["commands"][0]["state"], "done", "{a:#}");
    assert_eq!(a["token_id"], detail["id"], "the same canary");
    assert_eq!(ht.token(&first)["state"], "active");
    assert_eq!(ht.token(&first)["placements"].as_array().unwrap().len(), 2, "no placement per refresh");
    run_once().ok();
    assert_eq!(ht.agents()[0]["bait_state"], "ok", "the refreshed bait is attested");
    // The refreshed entry edited by hand is altered, against the new digest.
    std::fs::write(&maria, refreshed.replace(&second, &first)).unwrap();
    run_once().ok();
    assert_eq!(ht.agents()[0]["bait_state"], "tampered");
    std::fs::write(&maria, &refreshed).unwrap();
    run_once().ok();
    assert_eq!(ht.agents()[0]["bait_state"], "ok");

    // Near expiry by the server's settings: the heartbeat refreshes by itself.
    let port = serve.port;
    drop(serve);
    let listen = format!("127.0.0.1:{port}");
    let _serve = ht.serve_with(&[
        ("HONEYTRAIL_SERVE_LISTEN", &listen),
        ("HONEYTRAIL_FLEET_SESSION_SECONDS", "43200"),
        ("HONEYTRAIL_FLEET_SESSION_REFRESH_SECONDS", "43199"),
    ]);
    run_once().ok();
    let third = prod_value(&std::fs::read_to_string(&maria).unwrap(), "aws_access_key_id");
    assert_ne!(third, second, "refreshed on the heartbeat");
    let a = &ht.agents()[0];
    let auto = a["commands"].as_array().unwrap().iter().find(|c| c["requested_by"] == "fleet (session refresh)");
    assert_eq!(auto.expect("a refresh opened by the heartbeat")["state"], "done", "{a:#}");

    // The intruder uses the second session (refreshed away, and not the key
    // ID the canary was registered with): matched by its ARN alone, the
    // incident names the host. honeytrail's own AssumeRole,
    // which names the same ARN in its answer, is not an incident.
    let record = |id: &str, identity: Value, response: Value| {
        serde_json::json!({
            "eventVersion": "1.09", "eventTime": "2026-12-07T10:00:00Z", "eventSource": "sts.amazonaws.com",
            "eventName": if response.is_null() { "GetCallerIdentity" } else { "AssumeRole" },
            "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15.0",
            "eventID": id, "eventType": "AwsApiCall", "recipientAccountId": "123456789012",
            "userIdentity": identity, "responseElements": response,
        })
    };
    let role_arn = "arn:aws:iam::123456789012:role/app-instance-role";
    let intruder = serde_json::json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:i-x", "arn": arn,
        "accountId": "123456789012", "accessKeyId": second,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role_arn, "userName": "app-instance-role"}}});
    let ours = serde_json::json!({"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/honeytrail",
        "accountId": "123456789012", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": "honeytrail"});
    let answer = serde_json::json!({"credentials": {"accessKeyId": third},
        "assumedRoleUser": {"arn": arn, "assumedRoleId": "AROAEXAMPLE:i-x"}});
    // A session of the honey role under a name honeytrail never handed
    // out: someone who may assume the role made it.
    let foreign = serde_json::json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:mine",
        "arn": "arn:aws:sts::123456789012:assumed-role/app-instance-role/mine", "accountId": "123456789012",
        "accessKeyId": "ASIAQYLPMN5HFOREIGN1",
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role_arn, "userName": "app-instance-role"}}});
    let log = ht.dir.path().join("trail.json");
    let records = serde_json::json!({"Records": [
        record("session-own-1", ours, answer),
        record("session-use-1", intruder, Value::Null),
        record("session-foreign-1", foreign, Value::Null),
    ]});
    std::fs::write(&log, records.to_string()).unwrap();
    ht.run(&["ingest", log.to_str().unwrap()]).ok();
    let found = incidents(&ht);
    let uses: Vec<&Value> = found.iter().filter(|i| i["kind"] == "use").collect();
    assert_eq!(uses.len(), 2, "the host's canary and the honey role: {found:#?}");
    let events_of = |id: &Value| {
        let events = ht.run(&["incident", "events", &id.to_string(), "--json"]).ok().json();
        events.as_array().unwrap().iter().filter_map(|e| e["event_id"].as_str().map(str::to_string)).collect::<Vec<_>>()
    };
    let host = uses.iter().find(|i| events_of(&i["id"]) == ["session-use-1"]).expect("the host's incident");
    let shown = ht.run(&["incident", "show", &host["id"].to_string(), "--json"]).ok().json();
    assert!(shown["placement"].as_str().unwrap().contains("on host web-17"), "{shown:#}");
    let role = uses.iter().find(|i| events_of(&i["id"]) == ["session-foreign-1"]).expect("the honey role's incident");
    let shown = ht.run(&["incident", "show", &role["id"].to_string(), "--json"]).ok().json();
    assert!(shown["placement"].as_str().unwrap().contains("AWS account 123456789012"), "{shown:#}");

    // Removal: the bait goes, the canary is retired (and still watched).
    ht.run(&["agent", "remove", "1"]).ok();
    run_once().ok();
    assert_eq!(std::fs::read_to_string(&maria).unwrap(), REAL_PROFILE);
    assert_eq!(ht.token(&first)["state"], "retired");

    // A second host, with the AWS CLI's cache of an assumed role: the whole
    // AssumeRole answer as botocore keeps it, of this host's own session.
    let cache = "/root/.aws/cli/cache/5f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6.json";
    ht.run(&[
        "template",
        "add",
        "instance-cache",
        "--format",
        "aws-cli-cache",
        "--path",
        cache,
        "--credential",
        "session",
    ])
    .ok();
    let second_secret = ht.secret(&["--uses", "1", "--template", "instance-cache"]);
    let second_root = host_tree(&ht.dir.path().join("second"));
    enrol_once(&format!("http://127.0.0.1:{port}"), &second_secret, &ht.dir.path().join("state-2"), &second_root).ok();
    let text = std::fs::read_to_string(second_root.join(cache.trim_start_matches('/'))).unwrap();
    assert!(!text.contains('\n'), "one line, as json.dumps writes it: {text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(doc["Credentials"]["AccessKeyId"].as_str().unwrap().starts_with("ASIA"), "{doc}");
    assert!(doc["Credentials"]["Expiration"].as_str().unwrap().ends_with("UTC"), "{doc}");
    let own = doc["AssumedRoleUser"]["Arn"].as_str().unwrap();
    assert!(own.starts_with("arn:aws:sts::123456789012:assumed-role/app-instance-role/i-") && own != arn, "{doc}");
    assert_eq!(doc["ResponseMetadata"]["HTTPStatusCode"], 200);
}

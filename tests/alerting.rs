//! End-to-end tests of alerting: channels against local receivers that check
//! each vendor's documented payload, the durable outbox, routing, runbooks,
//! rate bounds and "was this you?" answers.

use std::process::Stdio;

mod common;
use common::*;

fn incident_with_channel(env: &Env, port: u16) {
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
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
    ])
    .ok();
    env.run(&["custody", "add", KEY, "sent by email to maria@example.com"]).ok();
    env.run_stdin(
        &[
            "channel",
            "add",
            "webhook",
            "soc",
            "--url",
            &format!("http://127.0.0.1:{port}/hook"),
            "--secret-stdin",
            "--header",
            "X-Team=secops",
        ],
        "whsec-42\n",
    )
    .ok();
    ingest_records(
        env,
        vec![trail_record(
            KEY,
            "svc-reader",
            "w-1",
            "2026-11-28T09:00:00Z",
            "sts.amazonaws.com",
            "GetCallerIdentity",
            None,
        )],
    );
}

#[test]
fn alerts_are_signed_and_delivered_once_the_receiver_is_back() {
    let env = Env::new();
    // A port held bound but not listening: connections to it are refused
    // (the receiver is down), and no parallel test can take it meanwhile.
    let held = honeytrail_testkit::HeldPort::new();
    let port = held.port;
    incident_with_channel(&env, port);
    // Receiver down: the delivery waits for a retry, nothing is lost.
    let out = env.run(&["deliver", "--once"]).ok();
    assert!(out.stderr.contains("delivered 0, retrying later 1"), "{}", out.stderr);
    let pending = env.run(&["delivery", "list", "--state", "pending", "--json"]).ok().json();
    assert_eq!(pending[0]["attempts"], 1);
    assert_eq!(pending[0]["last_error"], "webhook connection failed");
    let receiver = Receiver::on(held.listen(), vec![]);
    // Once the 2 s backoff has passed, the retry goes out.
    eventually("the retry after the backoff", || env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1"));
    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (head, body) = &requests[0];
    let sig = head.lines().find_map(|l| l.strip_prefix("x-honeytrail-signature: ")).expect("signed").trim().to_string();
    let t: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
    assert_eq!(
        sig,
        honeytrail_alert::channels::webhook::signature("whsec-42", t, body.as_bytes()),
        "signature verifies"
    );
    assert!(head.to_ascii_lowercase().contains("x-team: secops"), "{head}");
    assert!(head.to_ascii_lowercase().contains("x-honeytrail-delivery: "), "{head}");
    let alert: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(alert["schema"], "honeytrail.alert.v1");
    assert_eq!(alert["alert"]["kind"], "incident.opened");
    assert_eq!(
        alert["placement"],
        format!("Key {KEY} was placed on Maria's MacBook Pro (host maria-mbp) in ~/.aws/credentials.")
    );
    assert!(alert["may_have_leaked_at"][0].as_str().unwrap().contains("sent by email to maria@example.com"));
    assert_eq!(alert["events"][0]["event_name"], "GetCallerIdentity");
    // Delivered once: another pass sends nothing.
    env.run(&["deliver", "--once"]).ok();
    assert_eq!(receiver.requests.lock().unwrap().len(), 1);
    // A state change is an alert of its own.
    env.run(&["incident", "ack", "1"]).ok();
    env.run(&["deliver", "--once"]).ok();
    let last: serde_json::Value = serde_json::from_str(&receiver.requests.lock().unwrap()[1].1).unwrap();
    assert_eq!(
        (last["alert"]["kind"].as_str(), last["incident"]["state"].as_str()),
        (Some("incident.state"), Some("acknowledged"))
    );
}

#[test]
fn retry_after_is_honoured_and_hopeless_deliveries_are_dead_lettered() {
    let env = Env::new();
    let receiver = Receiver::start(
        0,
        vec![
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ],
    );
    let port = receiver.port;
    incident_with_channel(&env, port);
    let out = env.run(&["deliver", "--once"]).ok();
    assert!(out.stderr.contains("retrying later 1"), "{}", out.stderr);
    let pending = env.run(&["delivery", "list", "--state", "pending", "--json"]).ok().json();
    let next = chrono::DateTime::parse_from_rfc3339(pending[0]["next_attempt_at"].as_str().unwrap()).unwrap();
    let wait = next.signed_duration_since(chrono::Utc::now()).num_milliseconds();
    assert!((0..=1100).contains(&wait), "Retry-After: 1 honoured, not the 2 s backoff: {wait} ms");
    eventually("the retry after Retry-After", || env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1"));
    // 404 cannot get better by retrying: dead-lettered at once, listed, and can be retried by hand.
    env.run(&["incident", "confirm", "1"]).ok();
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("dead-lettered 1"));
    let dead = env.run(&["delivery", "list", "--json"]).ok().json();
    assert_eq!(dead[0]["last_error"], "webhook answered HTTP 404");
    let id = dead[0]["id"].as_i64().unwrap().to_string();
    env.run(&["delivery", "retry", &id]).ok();
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1"));
    assert_eq!(receiver.requests.lock().unwrap().len(), 4);
    // The secret and URL never show in listings.
    let channels = env.run(&["channel", "list", "--json"]).ok().stdout;
    assert!(!channels.contains("whsec-42") && !channels.contains("/hook"), "{channels}");
}

#[test]
fn webhook_targets_are_checked() {
    let env = Env::new();
    let out =
        env.run(&["channel", "add", "webhook", "meta", "--url", "http://169.254.169.254/latest/meta-data/"]).fails();
    assert!(out.stderr.contains("link-local and metadata"), "{}", out.stderr);
    let out = env.run(&["channel", "add", "webhook", "ftp", "--url", "ftp://example.com/x"]).fails();
    assert!(out.stderr.contains("http:// or https://"), "{}", out.stderr);
    let receiver = Receiver::start(0, vec![]);
    let port = receiver.port;
    env.run(&["channel", "add", "webhook", "soc", "--url", &format!("http://127.0.0.1:{port}/")]).ok();
    env.run(&["channel", "test", "soc"]).ok();
    let body: serde_json::Value = serde_json::from_str(&receiver.requests.lock().unwrap()[0].1).unwrap();
    assert_eq!((body["test"].as_bool(), body["type"].as_str()), (Some(true), Some("test")));
}

#[test]
fn a_dispatcher_killed_mid_delivery_loses_nothing() {
    let env = Env::new();
    let receiver = Receiver::start(0, vec!["HANG"]);
    let port = receiver.port;
    incident_with_channel(&env, port);
    // A dispatcher holds the delivery (lease 2 s) and is killed with SIGKILL while the receiver has not answered.
    let mut dispatcher = env
        .command(&["deliver"])
        .env("HONEYTRAIL_ALERTS_LEASE_SECONDS", "2")
        .env("HONEYTRAIL_ALERTS_TIMEOUT_SECONDS", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while receiver.requests.lock().unwrap().is_empty() {
        assert!(start.elapsed().as_secs() < 30, "the dispatcher never sent");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    dispatcher.kill().unwrap();
    dispatcher.wait().unwrap();
    // After the lease, a restarted dispatcher delivers it, with the same delivery id.
    eventually("the delivery once the dead dispatcher's lease ran out", || {
        env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1")
    });
    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let id = |head: &str| {
        head.lines().find_map(|l| l.strip_prefix("x-honeytrail-delivery: ")).map(str::trim).map(str::to_string)
    };
    assert_eq!(id(&requests[0].0), id(&requests[1].0), "receivers can drop the duplicate by delivery id");
    let key =
        |head: &str| head.lines().find_map(|l| l.strip_prefix("idempotency-key: ")).map(str::trim).map(str::to_string);
    assert_eq!(key(&requests[0].0), key(&requests[1].0), "and by the idempotency key");
    assert_eq!(key(&requests[0].0), id(&requests[0].0));
    assert!(key(&requests[0].0).is_some(), "{}", requests[0].0);
}

#[test]
fn alerts_reach_a_json_lines_file_for_the_siem() {
    let env = Env::new();
    let _receiver = Receiver::start(0, vec![]);
    let port = _receiver.port;
    incident_with_channel(&env, port);
    let file = env.dir.path().join("siem/alerts.jsonl");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    env.run(&["channel", "add", "jsonl", "siem", "--path", file.to_str().unwrap()]).ok();
    // Alerts are fanned out when the dispatcher runs: both channels get the opening…
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 2"));
    // …and every change after it.
    env.run(&["incident", "ack", "1", "--note", "looking"]).ok();
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 2"));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["alert"]["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["incident.opened", "incident.state"]);
    assert_eq!(lines[1]["schema"], "honeytrail.alert.v1");
    assert_eq!(lines[1]["history"].as_array().unwrap().last().unwrap()["note"], "looking");
}

#[test]
fn slack_gets_a_block_kit_message() {
    let env = Env::new();
    let receiver = Receiver::start(0, vec!["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]);
    let port = receiver.port;
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    env.run(&["placement", "add", KEY, "--host", "maria-mbp", "--path", "~/.aws/credentials", "--owner", "Maria"]).ok();
    env.run_stdin(&["channel", "add", "slack", "secops"], &format!("http://127.0.0.1:{port}/services/T0/B0/XYZ\n"))
        .ok();
    ingest_records(
        &env,
        vec![trail_record(
            KEY,
            "svc-reader",
            "s-1",
            "2026-11-28T09:00:00Z",
            "s3.amazonaws.com",
            "ListBuckets",
            Some("AccessDenied"),
        )],
    );
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1"));
    let (head, body) = receiver.requests.lock().unwrap()[0].clone();
    assert!(head.starts_with("POST /services/T0/B0/XYZ HTTP/1.1"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let m: serde_json::Value = serde_json::from_str(&body).unwrap();
    // Slack's documented shape: top-level text (notification fallback) and blocks.
    assert!(m["text"].as_str().unwrap().starts_with(&format!("Honey key used: {KEY}")));
    let blocks = m["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    for b in blocks {
        match b["type"].as_str().unwrap() {
            "header" => {
                assert_eq!(b["text"]["type"], "plain_text");
                assert!(b["text"]["text"].as_str().unwrap().chars().count() <= 150);
            }
            "section" => {
                if let Some(t) = b.get("text") {
                    assert_eq!(t["type"], "mrkdwn");
                    assert!(t["text"].as_str().unwrap().chars().count() <= 3000);
                } else {
                    let fields = b["fields"].as_array().unwrap();
                    assert!(fields.len() <= 10 && fields.iter().all(|f| f["type"] == "mrkdwn"));
                }
            }
            "context" => assert!(b["elements"].as_array().unwrap().len() <= 10),
            other => panic!("unexpected block type {other}"),
        }
    }
    assert_eq!(
        blocks[1]["text"]["text"],
        format!("Key {KEY} was placed on Maria's machine (host maria-mbp) in ~/.aws/credentials.")
    );
    assert!(body.contains("AccessDenied") && body.contains("198.51.100.23"), "errors and source IPs are shown: {body}");
    assert!(body.contains("/incidents/1|incident #1>"), "a link to the incident: {body}");
    let listed = env.run(&["channel", "list", "--json"]).ok().stdout;
    assert!(!listed.contains("/services/"), "the Slack URL stays sealed: {listed}");
}

#[test]
fn teams_gets_an_adaptive_card() {
    let env = Env::new();
    let receiver = Receiver::start(0, vec![]);
    let port = receiver.port;
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    env.run_stdin(&["channel", "add", "teams", "ir"], &format!("http://127.0.0.1:{port}/webhookb2/abc\n")).ok();
    env.run(&["channel", "test", "ir"]).ok();
    ingest_records(
        &env,
        vec![trail_record(
            KEY,
            "svc-reader",
            "t-1",
            "2026-11-28T09:00:00Z",
            "iam.amazonaws.com",
            "ListUsers",
            Some("AccessDenied"),
        )],
    );
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1"));
    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    for (head, body) in &requests {
        assert!(head.starts_with("POST /webhookb2/abc HTTP/1.1"), "{head}");
        let m: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(m["type"], "message");
        let card = &m["attachments"][0];
        assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(
            (card["content"]["type"].as_str(), card["content"]["version"].as_str()),
            (Some("AdaptiveCard"), Some("1.4"))
        );
        assert!(card["content"]["body"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| matches!(b["type"].as_str(), Some("TextBlock" | "FactSet"))));
    }
    let alert: serde_json::Value = serde_json::from_str(&requests[1].1).unwrap();
    let facts = &alert["attachments"][0]["content"]["body"][2]["facts"];
    assert!(facts.as_array().unwrap().iter().any(|f| f["title"] == "APIs" && f["value"] == "ListUsers"), "{facts}");
    let open = &alert["attachments"][0]["content"]["actions"][0];
    assert_eq!(open["type"], "Action.OpenUrl");
    assert!(open["url"].as_str().unwrap().ends_with("/incidents/1"), "{open}");
    assert!(requests[0].1.contains("No honey key was used"));
}

#[test]
fn pagerduty_follows_the_incident_under_one_dedup_key() {
    let env = Env::new();
    let accepted = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"status\":\"success\",\"message\":\"Event processed\",\"dedup_key\":\"x\"}";
    let receiver = Receiver::start(0, vec![accepted, accepted, accepted]);
    let port = receiver.port;
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--label", "team=payments"]).ok();
    env.run_stdin(
        &["channel", "add", "pagerduty", "oncall", "--endpoint", &format!("http://127.0.0.1:{port}/v2/enqueue")],
        "R0UTINGKEY123\n",
    )
    .ok();
    ingest_records(
        &env,
        vec![trail_record(
            KEY,
            "svc-reader",
            "p-1",
            "2026-11-28T09:00:00Z",
            "sts.amazonaws.com",
            "GetCallerIdentity",
            None,
        )],
    );
    env.run(&["deliver", "--once"]).ok();
    env.run(&["incident", "ack", "1"]).ok();
    env.run(&["deliver", "--once"]).ok();
    env.run(&["incident", "confirm", "1"]).ok();
    env.run(&["incident", "resolve", "1"]).ok();
    env.run(&["deliver", "--once"]).ok();
    let events: Vec<serde_json::Value> =
        receiver.requests.lock().unwrap().iter().map(|(_, b)| serde_json::from_str(b).unwrap()).collect();
    let actions: Vec<&str> = events.iter().map(|e| e["event_action"].as_str().unwrap()).collect();
    // The confirm and resolve alerts were both waiting; each is rendered with the
    // incident as it is at delivery, so both resolve.
    assert_eq!(actions, ["trigger", "acknowledge", "resolve", "resolve"]);
    assert!(events.iter().all(|e| e["dedup_key"] == "honeytrail-incident-1" && e["routing_key"] == "R0UTINGKEY123"));
    let trigger = &events[0]["payload"];
    assert_eq!(trigger["severity"], "critical");
    assert_eq!(trigger["source"], KEY);
    assert_eq!(trigger["group"], "payments");
    assert!(events[0]["links"][0]["href"].as_str().unwrap().ends_with("/incidents/1"), "{}", events[0]);
    assert!(trigger["summary"].as_str().unwrap().len() <= 1024);
    assert!(trigger["custom_details"]["activity"]["apis"][0] == "GetCallerIdentity");
    assert!(events[1].get("payload").is_none(), "acknowledge carries no payload");
}

#[test]
fn syslog_frames_arrive_over_udp_and_tcp() {
    let env = Env::new();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    env.run(&["channel", "add", "syslog", "udp", "--address", &udp.local_addr().unwrap().to_string()]).ok();
    env.run(&[
        "channel",
        "add",
        "syslog",
        "tcp",
        "--address",
        &tcp.local_addr().unwrap().to_string(),
        "--transport",
        "tcp",
        "--facility",
        "13",
    ])
    .ok();
    ingest_records(
        &env,
        vec![trail_record(
            KEY,
            "svc-reader",
            "y-1",
            "2026-11-28T09:00:00Z",
            "sts.amazonaws.com",
            "GetCallerIdentity",
            None,
        )],
    );
    let accept = std::thread::spawn(move || {
        let (mut stream, _) = tcp.accept().unwrap();
        let mut all = String::new();
        std::io::Read::read_to_string(&mut stream, &mut all).unwrap();
        all
    });
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 2"));
    let mut buf = [0u8; 65536];
    let n = udp.recv(&mut buf).unwrap();
    let datagram = String::from_utf8_lossy(&buf[..n]).into_owned();
    // <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG; authpriv (10) × 8 + crit (2) = 82.
    let parts: Vec<&str> = datagram.splitn(7, ' ').collect();
    assert_eq!(parts[0], "<82>1", "{datagram}");
    assert!(chrono::DateTime::parse_from_rfc3339(parts[1]).is_ok(), "{datagram}");
    assert_eq!((parts[3], parts[5]), ("honeytrail", "incident.opened"));
    assert!(
        parts[6].starts_with(&format!("[honeytrail@32473 incident=\"1\" key=\"{KEY}\" state=\"open\"] {{")),
        "{datagram}"
    );
    let framed = accept.join().unwrap();
    let (len, message) = framed.split_once(' ').unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), message.len(), "RFC 6587 octet counting");
    assert!(message.starts_with("<106>1 "), "log audit (13) × 8 + crit: {message}");
}

#[test]
fn routes_send_alerts_to_the_right_channels() {
    let env = Env::new();
    let files = env.dir.path().join("out");
    std::fs::create_dir_all(&files).unwrap();
    for name in ["payments", "soc"] {
        env.run(&["channel", "add", "jsonl", name, "--path", files.join(format!("{name}.jsonl")).to_str().unwrap()])
            .ok();
    }
    let other = honeytrail_core::keyid::synthesize(123456789012, 99);
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--label", "team=payments"]).ok();
    env.run(&["token", "import", "aws", "--access-key-id", &other]).ok();
    let out = env.run(&["route", "add", "pay", "--channel", "nope"]).fails();
    assert!(out.stderr.contains("no channel is named \"nope\""), "{}", out.stderr);
    env.run(&["route", "add", "pay", "--channel", "payments", "--label", "team=payments"]).ok();
    env.run(&["route", "add", "rest", "--channel", "soc", "--default"]).ok();
    assert!(env.run(&["route", "list"]).ok().stdout.contains("no other route matched"));
    ingest_records(
        &env,
        vec![
            trail_record(KEY, "a", "r-1", "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None),
            trail_record(&other, "b", "r-2", "2026-11-28T09:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None),
        ],
    );
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 2"));
    let keys = |name: &str| -> Vec<String> {
        std::fs::read_to_string(files.join(format!("{name}.jsonl")))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["incident"]["access_key_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(keys("payments"), [KEY]);
    assert_eq!(keys("soc"), std::slice::from_ref(&other));
}

#[test]
fn alerts_carry_the_runbook_chosen_for_the_token() {
    let env = Env::new();
    let receiver = Receiver::start(0, vec![]);
    let port = receiver.port;
    incident_with_channel(&env, port);
    env.run(&["deliver", "--once"]).ok();
    let first: serde_json::Value = serde_json::from_str(&receiver.requests.lock().unwrap()[0].1).unwrap();
    let runbook = first["runbook"].as_str().unwrap();
    assert!(
        runbook.contains("Rule out a false positive") && runbook.contains("Ask Maria: \"Was this you?\""),
        "{runbook}"
    );
    assert!(runbook.contains("sent by email to maria@example.com"), "the custody chain is walked: {runbook}");
    // A team's own runbook, chosen by label, replaces the default.
    let file = env.dir.path().join("payments.j2");
    std::fs::write(
        &file,
        "Page the payments on-call about {{ key }}; incident #{{ incident.id }} is {{ incident.state }}.",
    )
    .unwrap();
    let bad = env.dir.path().join("bad.j2");
    std::fs::write(&bad, "{% if %}").unwrap();
    let out =
        env.run(&["runbook", "set", "broken", "--for", "label:team=payments", "--file", bad.to_str().unwrap()]).fails();
    assert!(out.stderr.contains("does not compile"), "{}", out.stderr);
    env.run(&["runbook", "set", "payments", "--for", "label:team", "--file", file.to_str().unwrap()]).ok();
    env.run(&[
        "token",
        "import",
        "aws",
        "--access-key-id",
        &honeytrail_core::keyid::synthesize(123456789012, 5),
        "--label",
        "team=payments",
    ])
    .ok();
    let key2 = honeytrail_core::keyid::synthesize(123456789012, 5);
    ingest_records(
        &env,
        vec![trail_record(&key2, "x", "rb-2", "2026-11-28T10:00:00Z", "sts.amazonaws.com", "GetCallerIdentity", None)],
    );
    env.run(&["deliver", "--once"]).ok();
    let second: serde_json::Value = serde_json::from_str(&receiver.requests.lock().unwrap()[1].1).unwrap();
    assert_eq!(second["runbook"], format!("Page the payments on-call about {key2}; incident #2 is open."));
    assert!(env.run(&["runbook", "show", "default-shipped"]).ok().stdout.contains("Rule out a false positive"));
}

fn place_and_use(env: &Env, owner: &str) {
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    env.run(&["placement", "add", KEY, "--host", "maria-mbp", "--path", "~/.aws/credentials", "--owner", owner]).ok();
    ingest_records(
        env,
        vec![trail_record(
            KEY,
            "svc-reader",
            "m-1",
            "2026-11-28T09:00:00Z",
            "sts.amazonaws.com",
            "GetCallerIdentity",
            None,
        )],
    );
}

#[test]
fn jira_gets_one_issue_per_incident_then_comments() {
    let env = Env::new();
    let created = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 71\r\n\r\n{\"id\":\"10001\",\"key\":\"SEC-7\",\"self\":\"http://jira.test/rest/api/2/10001\"}";
    let commented =
        "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"id\":\"2001\"}";
    let receiver = Receiver::start(0, vec![created, commented, commented]);
    let port = receiver.port;
    env.run_stdin(
        &[
            "channel",
            "add",
            "jira",
            "sec",
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "--project",
            "SEC",
            "--issue-type",
            "Bug",
            "--label",
            "honey token",
            "--email",
            "bot@acme.test",
        ],
        "jira-api-token\n",
    )
    .ok();
    assert!(!env.run(&["channel", "list"]).ok().stdout.contains("jira-api-token"));
    place_and_use(&env, "Maria");
    env.run(&["deliver", "--once"]).ok();
    env.run(&["incident", "ack", "1", "--note", "looking"]).ok();
    env.run(&["deliver", "--once"]).ok();
    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (head, body) = &requests[0];
    assert!(head.starts_with("POST /rest/api/2/issue HTTP/1.1"), "{head}");
    // printf 'bot@acme.test:jira-api-token' | base64
    assert!(head.contains("authorization: Basic Ym90QGFjbWUudGVzdDpqaXJhLWFwaS10b2tlbg=="), "{head}");
    let issue: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(issue["fields"]["project"]["key"], "SEC");
    assert_eq!(issue["fields"]["issuetype"]["name"], "Bug");
    assert_eq!(issue["fields"]["labels"], serde_json::json!(["honey-token", "honeytrail", "honeytrail-incident-1"]));
    assert_eq!(issue["fields"]["summary"], format!("Honey key {KEY} used (incident #1)"));
    let description = issue["fields"]["description"].as_str().unwrap();
    assert!(description.contains("(host maria-mbp)") && description.contains("GetCallerIdentity"), "{description}");
    let (head, body) = &requests[1];
    assert!(head.starts_with("POST /rest/api/2/issue/SEC-7/comment HTTP/1.1"), "{head}");
    let comment: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(comment["body"].as_str().unwrap().contains("is now acknowledged"), "{comment}");
}

#[test]
fn email_reaches_the_team_and_the_owner_answers_once() {
    let env = Env::new();
    let sink = SmtpSink::start();
    env.run_stdin(
        &[
            "channel",
            "add",
            "email",
            "soc",
            "--host",
            "127.0.0.1",
            "--port",
            &sink.port.to_string(),
            "--tls",
            "none",
            "--username",
            "honeytrail",
            "--from",
            "honeytrail@acme.test",
            "--to",
            "soc@acme.test",
            "--to",
            "ir@acme.test",
            "--ask-owner",
        ],
        "smtp-pass\n",
    )
    .ok();
    let server = Server::start(&env, &[]);
    place_and_use(&env, "maria@acme.test");
    let mails = sink.wait_for(2);
    let team = mails.iter().find(|m| m.to.contains(&"soc@acme.test".to_string())).expect("a team message");
    assert_eq!(team.auth.as_deref(), Some("honeytrail:smtp-pass"));
    assert_eq!(team.to, ["soc@acme.test", "ir@acme.test"]);
    assert!(team.data.contains("multipart/alternative"));
    let text = team.part("text/plain").expect("a plain-text part");
    let html = team.part("text/html").expect("an HTML part");
    assert!(text.contains(&format!("Key {KEY} was placed on")) && text.contains("(host maria-mbp)"), "{text}");
    assert!(text.contains(&format!("http://127.0.0.1:{}/incidents/1", server.port)), "{text}");
    assert!(html.contains("(host maria-mbp)") && html.contains("<pre"), "{html}");
    assert!(team.header("Subject").unwrap().contains("[honeytrail] Honey key"));

    let owner = mails.iter().find(|m| m.to == ["maria@acme.test"]).expect("a question to the owner");
    let question = owner.part("text/plain").unwrap();
    let url = question.split_whitespace().find(|w| w.contains("/answer/htq_")).expect("an answer link").to_string();
    let path = url.split_once(&format!("127.0.0.1:{}", server.port)).unwrap().1.to_string();
    // Opening the link shows the question and records nothing.
    for _ in 0..2 {
        let (status, page) = server.call("GET", &path, &[], "");
        assert_eq!(status, 200);
        assert!(page.contains("Was this you?") && page.contains("maria-mbp"), "{page}");
    }
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let (status, _) = server.call("POST", &path, &form, "answer=maybe");
    assert_eq!(status, 400);
    let (status, page) = server.call("POST", &path, &form, "answer=no&comment=I+was+on+holiday");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("it was not you"));
    let (status, _) = server.call("POST", &path, &form, "answer=yes");
    assert_eq!(status, 409, "the link works once");
    let (status, _) = server.call("GET", "/answer/htq_forged", &[], "");
    assert_eq!(status, 404);

    let shown = env.run(&["incident", "show", "1", "--json"]).ok().json();
    let answer = shown["history"].as_array().unwrap().iter().find(|h| h["kind"] == "owner-answer").unwrap().clone();
    assert_eq!(answer["actor"], "maria@acme.test");
    assert_eq!(answer["note"], "no, it was not me: I was on holiday");
    assert_eq!(shown["incident"]["state"], "open", "an answer never changes the state");
    // The answer is alerted too, threaded under the first message.
    let mails = sink.wait_for(3);
    let follow_up = &mails[2];
    assert_eq!(follow_up.header("In-Reply-To"), team.header("Message-ID"));
    assert!(follow_up.part("text/plain").unwrap().contains("no, it was not me: I was on holiday"));
}

#[test]
fn update_alerts_are_bounded_in_rate() {
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    std::fs::write(env.data().join("honeytrail.toml"), "[alerts]\nmin_update_interval_seconds = 2\n").unwrap();
    let file = env.dir.path().join("alerts.jsonl");
    env.run(&["channel", "add", "jsonl", "siem", "--path", file.to_str().unwrap()]).ok();
    place_and_use(&env, "Maria");
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1,"));
    let call = |id: &str, t: &str| trail_record(KEY, "svc-reader", id, t, "s3.amazonaws.com", "ListBuckets", None);
    ingest_records(&env, vec![call("m-2", "2026-11-28T09:01:00Z")]);
    ingest_records(&env, vec![call("m-3", "2026-11-28T09:02:00Z")]);
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 0,"), "held back by the interval");
    eventually("the held-back update once the interval passed", || {
        env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1,")
    });
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "one alert for the opening, one for both later calls");
    assert_eq!(lines[1]["incident"]["event_count"], 3);
    // A state change is never held back.
    env.run(&["incident", "ack", "1"]).ok();
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1,"));
}

#[test]
fn alert_targets_must_be_on_the_allowlist_when_there_is_one() {
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    std::fs::write(env.data().join("honeytrail.toml"), "[alerts]\nallowed_hosts = [\".acme.test\"]\n").unwrap();
    let out = env.run(&["channel", "add", "webhook", "soc", "--url", "http://127.0.0.1:9/hook"]).fails();
    assert!(out.stderr.contains("not on the target allowlist (alerts.allowed_hosts)"), "{}", out.stderr);
    env.run(&["channel", "add", "webhook", "soc", "--url", "http://127.0.0.1.nip.acme.test/hook"]).fails();
}

#[test]
fn test_alerts_go_through_a_route_and_severity_routes() {
    let env = Env::new();
    let dir = env.dir.path().join("out");
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(format!("{name}.jsonl"));
    for name in ["pager", "soc"] {
        env.run(&["channel", "add", "jsonl", name, "--path", path(name).to_str().unwrap()]).ok();
    }
    env.run(&["route", "add", "page-critical", "--channel", "pager", "--min-severity", "critical"]).ok();
    env.run(&["route", "add", "rest", "--channel", "soc", "--default"]).ok();
    assert!(env.run(&["route", "list"]).ok().stdout.contains("severity ≥ critical"));
    let lines = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path(name))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let out = env.run(&["alert", "test", "--route", "page-critical"]).ok();
    assert!(out.stdout.contains("delivered through \"pager\""), "{}", out.stdout);
    assert_eq!((lines("pager").len(), lines("soc").len()), (1, 0));
    assert_eq!(lines("pager")[0]["test"], true);
    env.run(&["alert", "test"]).ok();
    assert_eq!((lines("pager").len(), lines("soc").len()), (2, 1));
    assert!(env.run(&["alert", "test", "--route", "nope"]).fails().stderr.contains("no route named \"nope\""));

    place_and_use(&env, "Maria");
    env.run(&["deliver", "--once"]).ok();
    assert_eq!(lines("soc").last().unwrap()["incident"]["severity"], "high");
    env.run(&["incident", "confirm", "1"]).ok();
    env.run(&["deliver", "--once"]).ok();
    let paged = lines("pager");
    assert_eq!(paged.last().unwrap()["incident"]["severity"], "critical", "a confirmed intrusion pages");
    assert_eq!(lines("soc").len(), 2, "the confirmation did not also go to the default route");
}

/// A throwaway CA and a server certificate for 127.0.0.1 signed by it.
fn test_ca(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=honeytrail test CA",
    ]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]);
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    (dir.join("ca.pem"), std::fs::read(dir.join("leaf.pem")).unwrap(), std::fs::read(dir.join("leaf.key")).unwrap())
}

#[test]
fn email_goes_over_starttls_and_never_in_the_clear() {
    let env = Env::new();
    let (ca, cert, key) = test_ca(env.dir.path());
    let sink = SmtpSink::start_tls(&cert, &key);
    let port = sink.port.to_string();
    let add = |name: &str, ca: Option<&std::path::Path>| {
        let mut args = vec![
            "channel",
            "add",
            "email",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--tls",
            "starttls",
            "--username",
            "honeytrail",
            "--from",
            "honeytrail@acme.test",
            "--to",
            "soc@acme.test",
        ];
        let ca = ca.map(|c| c.to_str().unwrap().to_string());
        if let Some(c) = &ca {
            args.extend(["--ca-file", c.as_str()]);
        }
        env.run_stdin(&args, "smtp-pass\n").ok();
    };
    add("trusted", Some(&ca));
    add("untrusted", None);
    env.run(&["channel", "test", "trusted"]).ok();
    let mails = sink.wait_for(1);
    assert!(mails[0].tls, "the message came after STARTTLS");
    assert_eq!(mails[0].auth.as_deref(), Some("honeytrail:smtp-pass"));
    assert!(mails[0].part("text/plain").unwrap().contains("No honey key was used"));
    // A certificate we cannot verify stops everything before the password or the alert leave.
    let out = env.run(&["channel", "test", "untrusted"]).fails();
    assert!(out.stderr.contains("SMTP to 127.0.0.1"), "{}", out.stderr);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(sink.mails.lock().unwrap().len(), 1);
    let bad = env.dir.path().join("not-a-cert.pem");
    std::fs::write(&bad, "nope").unwrap();
    let out = env
        .run_stdin(
            &[
                "channel",
                "add",
                "email",
                "broken",
                "--host",
                "127.0.0.1",
                "--from",
                "a@acme.test",
                "--to",
                "b@acme.test",
                "--ca-file",
                bad.to_str().unwrap(),
            ],
            "",
        )
        .fails();
    assert!(out.stderr.contains("not a PEM certificate"), "{}", out.stderr);
}

/// A call of `key` from `ip` with `agent`.
fn call_from(key: &str, id: &str, time: &str, ip: &str, agent: &str) -> serde_json::Value {
    let mut r = trail_record(key, "svc-reader", id, time, "sts.amazonaws.com", "GetCallerIdentity", None);
    r["sourceIPAddress"] = ip.into();
    r["userAgent"] = agent.into();
    r
}

#[test]
fn incidents_carry_context_from_own_networks_aws_ranges_tor_and_tools() {
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    std::fs::write(
        env.data().join("honeytrail.toml"),
        "[enrich.networks]\ncorp = [\"198.51.100.0/24\"]\nvpn = [\"2001:db8:1::/48\"]\n",
    )
    .unwrap();
    let fixtures = format!("{}/testdata/enrich", env!("CARGO_MANIFEST_DIR"));
    // A file that is not what it is loaded as is refused, by name.
    let out = env.run(&["enrich", "load", "aws-ranges", &format!("{fixtures}/tor-exit-addresses.txt")]).fails();
    assert!(out.stderr.contains("not AWS's ip-ranges.json"), "{}", out.stderr);
    let out = env.run(&["enrich", "load", "tor", &format!("{fixtures}/ip-ranges.json")]).fails();
    assert!(out.stderr.contains("no Tor exit address"), "{}", out.stderr);
    let out = env.run(&["enrich", "load", "aws-ranges", &format!("{fixtures}/ip-ranges.json")]).ok();
    assert!(out.stdout.contains("loaded aws-ranges (6 entries, published 2024-11-30-10-53-07)"), "{}", out.stdout);
    env.run(&["enrich", "load", "tor", &format!("{fixtures}/tor-exit-addresses.txt")]).ok();
    let show = env.run(&["enrich", "show"]).ok().stdout;
    assert!(show.contains("AWS IP ranges of 2024-11-30-10-53-07 (6 blocks)"), "{show}");
    assert!(show.contains("Tor exits of 2024-11-30 (2 addresses)"), "{show}");
    assert!(show.contains("own networks: corp, vpn"), "{show}");
    let looked = env.run(&["enrich", "lookup", "--ip", "3.250.1.9", "--json"]).ok().json();
    assert_eq!(looked["source"]["label"], "from AWS EC2 in eu-west-1");

    let receiver = Receiver::start(0, vec![]);
    let port = receiver.port;
    let ours_key = honeytrail_core::keyid::synthesize(123456789012, 77);
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    env.run(&["token", "import", "aws", "--access-key-id", &ours_key, "--user-name", "svc-reader"]).ok();
    env.run(&["channel", "add", "webhook", "soc", "--url", &format!("http://127.0.0.1:{port}/hook")]).ok();
    let colleagues = env.dir.path().join("colleagues.jsonl");
    env.run(&["channel", "add", "jsonl", "colleagues", "--path", colleagues.to_str().unwrap()]).ok();
    env.run(&["route", "add", "intruders", "--channel", "soc", "--unless", "own-network"]).ok();
    env.run(&["route", "add", "ours", "--channel", "colleagues", "--if", "own-network"]).ok();
    let out = env.run(&["route", "add", "bad", "--channel", "soc", "--if", "colour=red"]).fails();
    assert!(out.stderr.contains("not a condition"), "{}", out.stderr);
    let listed = env.run(&["route", "list"]).ok().stdout;
    assert!(listed.contains("unless own-network") && listed.contains("if own-network"), "{listed}");

    let kali = "aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64 exe/x86_64.kali.2024 prompt/off command/sts.get-caller-identity";
    let plain = "aws-cli/2.13.0 Python/3.11.4 Linux/5.10.0-1234-aws exe/x86_64.ubuntu.22";
    ingest_records(
        &env,
        vec![
            call_from(KEY, "c-1", "2026-11-28T09:00:00Z", "198.51.100.23", plain),
            call_from(KEY, "c-2", "2026-11-28T09:01:00Z", "3.250.17.4", plain),
            call_from(KEY, "c-3", "2026-11-28T09:02:00Z", "185.220.101.4", plain),
            call_from(KEY, "c-4", "2026-11-28T09:03:00Z", "192.0.2.200", kali),
            // Markup and a terminal escape in the user agent.
            call_from(KEY, "c-5", "2026-11-28T09:04:00Z", "192.0.2.201", "\u{1b}[31m<b>x</b> pentoo"),
            call_from(&ours_key, "o-1", "2026-11-28T09:00:00Z", "198.51.100.40", plain),
            call_from(&ours_key, "o-2", "2026-11-28T09:05:00Z", "2001:db8:1::9", plain),
        ],
    );
    let record = env.run(&["incident", "show", "1", "--json"]).ok().json();
    let summary: Vec<String> =
        record["context"]["summary"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    for label in [
        "from a Tor exit: 185.220.101.4",
        "aws-cli on Kali Linux",
        "from AWS EC2 in eu-west-1: 3.250.17.4",
        "from our network corp: 198.51.100.23",
    ] {
        assert!(summary.contains(&label.to_string()), "{label} in {summary:?}");
    }
    assert_eq!(summary[0], "from a Tor exit: 185.220.101.4", "the most telling first");
    assert_eq!(record["context"]["own_network_only"], false);
    assert_eq!(record["incident"]["severity"], "critical", "an attacker distribution raises the severity");
    let shown = env.run(&["incident", "show", "1"]).ok().stdout;
    assert!(shown.contains("Context:") && shown.contains("aws-cli on Kali Linux"), "{shown}");
    assert!(!shown.contains('\u{1b}'), "no terminal escape reaches the terminal");
    let ours = env.run(&["incident", "show", "2", "--json"]).ok().json();
    assert_eq!(ours["context"]["own_network_only"], true);
    assert_eq!(ours["context"]["networks"], serde_json::json!(["corp", "vpn"]));
    assert_eq!(ours["incident"]["severity"], "high");

    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 2"));
    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "only the intruder's incident reaches the SOC");
    let payload: serde_json::Value = serde_json::from_str(&requests[0].1).unwrap();
    assert_eq!(payload["incident"]["id"], 1);
    assert_eq!(payload["context"]["tor"], true);
    assert_eq!(payload["context"]["tools"], serde_json::json!(["Kali Linux", "Pentoo"]));
    assert_eq!(payload["context"]["aws"], serde_json::json!(["EC2 eu-west-1"]));
    assert_eq!(payload["context"]["networks"], serde_json::json!(["corp"]));
    let hostile =
        payload["context"]["agents"].as_array().unwrap().iter().find(|a| a["distribution"] == "Pentoo").unwrap();
    assert_eq!(hostile["label"], "31mbx on Pentoo", "only a cut token of the user agent is repeated");
    let ours_lines = std::fs::read_to_string(&colleagues).unwrap();
    assert_eq!(ours_lines.lines().count(), 1);
    let line: serde_json::Value = serde_json::from_str(ours_lines.trim()).unwrap();
    assert_eq!(line["incident"]["access_key_id"], ours_key.as_str());
    assert_eq!(
        line["context"]["summary"].as_array().unwrap().last().unwrap(),
        "every call came from our own networks: likely one of us"
    );
}

/// The fields a mapping table of docs/alerts.md names (its first column).
fn documented_fields(heading: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(format!("{}/docs/alerts.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let section = doc.split(heading).nth(1).expect("the mapping is documented");
    let section = section.split("\n#").next().unwrap();
    let mut out = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        out.extend(first.split('`').skip(1).step_by(2).map(|f| f.trim_end_matches("[]").to_string()));
    }
    assert!(out.len() > 10, "{heading}: {out:?}");
    out
}

fn has_field(doc: &serde_json::Value, path: &str) -> bool {
    if let Some(v) = doc.get(path) {
        return !v.is_null();
    }
    let mut v = doc;
    for part in path.split('.') {
        v = match v {
            serde_json::Value::Array(items) => match items.first().and_then(|i| i.get(part)) {
                Some(x) => x,
                None => return false,
            },
            _ => match v.get(part) {
                Some(x) => x,
                None => return false,
            },
        };
    }
    !v.is_null()
}

#[test]
fn ocsf_findings_validate_against_the_schema_and_ecs_carries_the_documented_fields() {
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    std::fs::write(env.data().join("honeytrail.toml"), "[enrich.networks]\ncorp = [\"198.51.100.0/24\"]\n").unwrap();
    let fixtures = format!("{}/testdata/enrich", env!("CARGO_MANIFEST_DIR"));
    env.run(&["enrich", "load", "aws-ranges", &format!("{fixtures}/ip-ranges.json")]).ok();
    env.run(&["enrich", "load", "tor", &format!("{fixtures}/tor-exit-addresses.txt")]).ok();
    env.run(&[
        "token",
        "import",
        "aws",
        "--access-key-id",
        KEY,
        "--user-name",
        "svc-reader",
        "--label",
        "team=payments",
    ])
    .ok();
    env.run(&[
        "placement",
        "add",
        KEY,
        "--host",
        "web-1",
        "--path",
        "/home/deploy/.aws/credentials",
        "--owner",
        "Maria",
    ])
    .ok();
    let receiver = Receiver::start(0, vec![]);
    let port = receiver.port;
    env.run(&[
        "channel",
        "add",
        "webhook",
        "soc",
        "--url",
        &format!("http://127.0.0.1:{port}/hook"),
        "--format",
        "ocsf",
    ])
    .ok();
    let (ocsf, ecs, plain) =
        (env.dir.path().join("ocsf.jsonl"), env.dir.path().join("ecs.jsonl"), env.dir.path().join("plain.jsonl"));
    for (name, path, format) in [("o", &ocsf, "ocsf"), ("e", &ecs, "ecs"), ("p", &plain, "honeytrail")] {
        env.run(&["channel", "add", "jsonl", name, "--path", path.to_str().unwrap(), "--format", format]).ok();
    }
    let out = env.run(&["channel", "add", "webhook", "x", "--url", "http://127.0.0.1:9/x", "--format", "ecs"]).fails();
    assert!(out.stderr.contains("invalid value 'ecs'"), "{}", out.stderr);
    let kali = "aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64 exe/x86_64.kali.2024 prompt/off";
    let bare = honeytrail_core::keyid::synthesize(123456789012, 78);
    env.run(&["token", "import", "aws", "--access-key-id", &bare]).ok();
    ingest_records(
        &env,
        vec![
            call_from(KEY, "f-1", "2026-11-28T09:00:00Z", "185.220.101.4", kali),
            call_from(KEY, "f-2", "2026-11-28T09:01:00Z", "AWS Internal", "\u{1b}]8;;http://evil\u{7}<script>"),
            call_from(KEY, "f-3", "2026-11-28T09:02:00Z", "2a05:d018::17", "Boto3/1.34.0 APN_1826889"),
            // An incident with no context at all (an address nothing knows).
            call_from(&bare, "b-1", "2026-11-28T09:00:00Z", "192.0.2.77", "aws-cli/2.13.0"),
        ],
    );
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 8"));
    env.run(&["channel", "test", "o"]).ok();
    env.run(&["incident", "ack", "1"]).ok();
    env.run(&["incident", "resolve", "1", "--note", "keys rotated"]).ok();
    env.run(&["deliver", "--once"]).ok();

    let lines = std::fs::read_to_string(&ocsf).unwrap();
    let docs: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let activities: Vec<i64> = docs.iter().map(|d| d["activity_id"].as_i64().unwrap()).collect();
    assert!(activities.contains(&1) && activities.contains(&3), "opened and closed: {activities:?}");
    assert!(docs.iter().any(|d| d["is_alert"] == false), "the test alert is a finding too");
    // Incidents are delivered at once, so find incident 1's opening.
    let opened = docs
        .iter()
        .find(|d| d["finding_info"]["uid"] == "honeytrail-incident-1" && d["activity_id"] == 1)
        .expect("incident 1's opening");
    assert_eq!(opened["class_uid"], 2004);
    assert_eq!(opened["finding_info"]["uid"], "honeytrail-incident-1");
    assert_eq!(opened["severity"], "Critical", "an attacker distribution raised it");
    let ips: Vec<&str> = opened["observables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type_id"] == 2)
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    assert!(
        ips.contains(&"185.220.101.4") && ips.contains(&"2a05:d018::17") && !ips.contains(&"AWS Internal"),
        "{ips:?}"
    );
    assert!(opened["enrichments"].as_array().unwrap().iter().any(|e| e["value"] == "from a Tor exit: 185.220.101.4"));

    // Every OCSF document the channels sent: the JSON-lines file, the
    // webhook's bodies and a syslog frame's message.
    let mut all = lines.clone();
    for (_, body) in receiver.requests.lock().unwrap().iter() {
        all.push_str(body.trim());
        all.push('\n');
    }
    let record = env.run(&["incident", "show", "1", "--json"]).ok().json();
    let alert: honeytrail_core::record::Alert = serde_json::from_value(record).unwrap();
    let syslog = honeytrail_alert::channels::syslog::SyslogConfig {
        address: "127.0.0.1:514".into(),
        transport: honeytrail_alert::channels::syslog::Transport::Udp,
        facility: 10,
        format: honeytrail_alert::siem::Format::Ocsf,
    };
    let frame = honeytrail_alert::channels::syslog::frame(&syslog, &alert, "ht-1", chrono::Utc::now());
    let message = &frame[frame.find("] {").expect("structured data, then the OCSF document") + 2..];
    assert!(!message.contains('\u{1b}') && !message.contains('\n'), "{message}");
    all.push_str(message);
    all.push('\n');
    let mut validator = std::process::Command::new(format!("{}/scripts/validate-ocsf", env!("CARGO_MANIFEST_DIR")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs scripts/validate-ocsf");
    use std::io::Write;
    validator.stdin.take().unwrap().write_all(all.as_bytes()).unwrap();
    let out = validator.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "OCSF validation failed:\n{report}{}", String::from_utf8_lossy(&out.stderr));
    let count = all.lines().count();
    assert!(report.contains(&format!("{count} documents, 0 invalid")), "{report}");
    assert!(count >= 6, "{count}");

    // ECS: every field the mapping documents is in the opening's document.
    let ecs_docs: Vec<serde_json::Value> =
        std::fs::read_to_string(&ecs).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let first = ecs_docs
        .iter()
        .find(|d| d["source"]["ip"] == "185.220.101.4")
        .expect("the ECS document of incident 1's opening");
    for field in documented_fields("### ECS") {
        assert!(has_field(first, &field), "ECS field {field} is documented but missing: {first}");
    }
    assert_eq!(first["event"]["severity"], 99);
    assert_eq!(first["source"]["ip"], "185.220.101.4");
    assert!(first["tags"].as_array().unwrap().contains(&serde_json::json!("tor")));
    // OCSF: the documented top-level fields are in the opening's finding.
    for field in documented_fields("### OCSF Detection Finding") {
        assert!(has_field(opened, &field), "OCSF field {field} is documented but missing: {opened}");
    }
    // The default format is unchanged: the record itself.
    let plain_first: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&plain).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(plain_first["schema"], "honeytrail.alert.v1");
}

#[test]
fn maxmind_databases_add_country_and_network_owner() {
    let env = Env::new();
    let dbs = env.dir.path().join("geoip");
    std::fs::create_dir_all(&dbs).unwrap();
    let made = std::process::Command::new(format!("{}/scripts/make-test-mmdb", env!("CARGO_MANIFEST_DIR")))
        .arg(&dbs)
        .output()
        .expect("python3 runs scripts/make-test-mmdb");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    std::fs::create_dir_all(env.data()).unwrap();
    let broken = env.dir.path().join("not-a-database.mmdb");
    std::fs::write(&broken, "<html>404</html>").unwrap();
    let config = |files: &[&std::path::Path]| {
        let list: Vec<String> = files.iter().map(|p| format!("{:?}", p.display().to_string())).collect();
        std::fs::write(env.data().join("honeytrail.toml"), format!("[enrich]\ngeoip = [{}]\n", list.join(", ")))
            .unwrap();
    };
    config(&[&dbs.join("GeoLite2-Country.mmdb"), &dbs.join("GeoLite2-ASN.mmdb"), &broken]);
    let out = env.run(&["enrich", "show"]).ok();
    assert!(out.stdout.contains("MaxMind-format: GeoLite2-Country built"), "{}", out.stdout);
    assert!(out.stdout.contains("GeoLite2-ASN built"), "{}", out.stdout);
    assert!(out.stderr.contains("not-a-database.mmdb is not a MaxMind-format database"), "{}", out.stderr);
    config(&[&dbs.join("GeoLite2-Country.mmdb"), &dbs.join("GeoLite2-ASN.mmdb")]);
    let looked = env.run(&["enrich", "lookup", "--ip", "192.0.2.9", "--json"]).ok().json();
    assert_eq!(looked["source"]["geo"]["country"], "DE");
    assert_eq!(looked["source"]["geo"]["asn"], 3320);
    assert_eq!(
        looked["source"]["geo"]["as_org"], "Deutsche Telekom AG[31m<b>",
        "control characters dropped; markup stays text for each channel to escape"
    );
    env.run(&["token", "import", "aws", "--access-key-id", KEY]).ok();
    ingest_records(
        &env,
        vec![
            call_from(KEY, "g-1", "2026-11-28T09:00:00Z", "192.0.2.9", "aws-cli/2.13.0"),
            call_from(KEY, "g-2", "2026-11-28T09:01:00Z", "2001:db8:77::1", "aws-cli/2.13.0"),
        ],
    );
    let record = env.run(&["incident", "show", "1", "--json"]).ok().json();
    let c = &record["context"];
    assert_eq!(c["countries"], serde_json::json!(["BR", "DE"]));
    assert_eq!(c["asns"], serde_json::json!([3320]));
    let summary = c["summary"].to_string();
    assert!(summary.contains("from DE, AS3320 Deutsche Telekom AG[31m<b>: 192.0.2.9"), "{summary}");
    assert!(summary.contains("from BR: 2001:db8:77::1"), "{summary}");
    // Routes by country and network owner.
    for (name, condition) in [("de", "country=DE"), ("us", "country=US"), ("telekom", "asn=3320")] {
        let path = env.dir.path().join(format!("{name}.jsonl"));
        env.run(&["channel", "add", "jsonl", name, "--path", path.to_str().unwrap()]).ok();
        env.run(&["route", "add", name, "--channel", name, "--if", condition]).ok();
    }
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 2"));
    assert!(env.dir.path().join("de.jsonl").exists() && env.dir.path().join("telekom.jsonl").exists());
    assert!(!env.dir.path().join("us.jsonl").exists());
}

/// A call made through a VPC endpoint: `ip` is the private address the
/// endpoint reports, which the caller may have chosen.
fn through_endpoint(key: &str, id: &str, time: &str, ip: &str, endpoint: &str, account: &str) -> serde_json::Value {
    let mut r = call_from(key, id, time, ip, "aws-cli/2.13.0 Python/3.11.4 Linux/5.10.0-1234-aws");
    r["vpcEndpointId"] = endpoint.into();
    r["vpcEndpointAccountId"] = account.into();
    r
}

#[test]
fn addresses_seen_through_an_unlisted_vpc_endpoint_are_trusted_by_no_rule() {
    let env = Env::new();
    std::fs::create_dir_all(env.data()).unwrap();
    std::fs::write(
        env.data().join("honeytrail.toml"),
        "[enrich]\nvpc_endpoint_accounts = [\"111122223333\"]\n[enrich.networks]\ncorp = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let ours = honeytrail_core::keyid::synthesize(123456789012, 81);
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    env.run(&["token", "import", "aws", "--access-key-id", &ours, "--user-name", "svc-reader"]).ok();
    let colleagues = env.dir.path().join("colleagues.jsonl");
    env.run(&["channel", "add", "jsonl", "colleagues", "--path", colleagues.to_str().unwrap()]).ok();
    env.run(&["route", "add", "ours", "--channel", "colleagues", "--if", "own-network"]).ok();
    ingest_records(
        &env,
        vec![
            // The intruder picks an address inside corp's range, through an
            // endpoint in an account of its own.
            through_endpoint(KEY, "v-1", "2026-11-28T09:00:00Z", "10.1.2.3", "vpce-0bad", "999988887777"),
            // A colleague, through the company's own endpoint.
            through_endpoint(&ours, "v-2", "2026-11-28T09:00:00Z", "10.9.9.9", "vpce-0good", "111122223333"),
        ],
    );
    let incidents = env.run(&["incident", "list", "--json"]).ok().json();
    let id_of =
        |key: &str| incidents.as_array().unwrap().iter().find(|i| i["access_key_id"] == key).unwrap()["id"].to_string();
    let intruder = env.run(&["incident", "show", &id_of(KEY), "--json"]).ok().json();
    let context = &intruder["context"];
    assert_eq!(context["own_network_only"], false, "{context:#}");
    assert_eq!(context["networks"], serde_json::json!([]), "the chosen address counts for no network");
    assert_eq!(context["untrusted_sources"], serde_json::json!(["10.1.2.3"]));
    let why = context["summary"][0].as_str().unwrap();
    assert!(
        why.contains("vpce-0bad") && why.contains("999988887777") && why.contains("not trusted"),
        "the incident says why: {why}"
    );
    let colleague = env.run(&["incident", "show", &id_of(&ours), "--json"]).ok().json();
    assert_eq!(colleague["context"]["own_network_only"], true, "{:#}", colleague["context"]);
    assert_eq!(colleague["context"]["networks"], serde_json::json!(["corp"]));
    assert!(colleague["context"]["summary"][0].as_str().unwrap().contains("listed account 111122223333"));
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered 1"));
    let lines = std::fs::read_to_string(&colleagues).unwrap();
    assert_eq!(lines.lines().count(), 1, "only the colleague's incident is taken for one of us");
    assert!(lines.contains(&ours) && !lines.contains(KEY));
    let shown = env.run(&["incident", "show", &id_of(KEY)]).ok().stdout;
    assert!(shown.contains("vpce-0bad"), "the terminal view says it too: {shown}");
}

#[test]
fn invisible_and_reordering_characters_are_shown_wherever_event_text_goes() {
    let env = Env::new();
    let receiver = Receiver::start(0, vec![]);
    let port = receiver.port;
    env.run(&["token", "import", "aws", "--access-key-id", KEY, "--user-name", "svc-reader"]).ok();
    env.run(&["channel", "add", "webhook", "soc", "--url", &format!("http://127.0.0.1:{port}/hook")]).ok();
    let mail = env.dir.path().join("alerts.jsonl");
    env.run(&["channel", "add", "jsonl", "archive", "--path", mail.to_str().unwrap()]).ok();
    let lookalike = "aws-cli/2.13.0 i-\u{200b}0abc \u{202e}fdp.exe\u{feff}";
    ingest_records(&env, vec![call_from(KEY, "z-1", "2026-11-28T09:00:00Z", "192.0.2.77", lookalike)]);
    env.run(&[
        "placement",
        "add",
        KEY,
        "--host",
        "web-\u{200d}1",
        "--path",
        "/srv/\u{2066}.env",
        "--notes",
        "see \u{202e}txt.exe",
    ])
    .ok();
    let hidden = ['\u{200b}', '\u{202e}', '\u{feff}', '\u{200d}', '\u{2066}'];
    let clean = |where_: &str, text: &str| {
        assert!(!text.contains(&hidden[..]), "{where_} shows a hidden character raw: {text:?}");
    };
    let shown = env.run(&["incident", "show", "1"]).ok().stdout;
    clean("incident show", &shown);
    assert!(shown.contains("i-\\u{200b}0abc"), "made visible: {shown}");
    // The delay until honeytrail saw the call (days here) reads in days and hours, not seconds.
    assert!(shown.contains(" d ") && shown.contains(" h)"), "a delay in human units: {shown}");
    let csv = env.run(&["placement", "list", "--csv"]).ok().stdout;
    clean("placement CSV", &csv);
    assert!(csv.contains("\\u{202e}txt.exe"), "{csv}");
    clean("placement table", &env.run(&["placement", "list"]).ok().stdout);
    clean("event list", &env.run(&["incident", "events", "1"]).ok().stdout);
    assert!(env.run(&["deliver", "--once"]).ok().stderr.contains("delivered"));
    // The machine-readable record keeps the value as CloudTrail wrote it;
    // the text a person reads (summary, title) shows it escaped.
    let requests = receiver.requests.lock().unwrap().clone();
    let payload: serde_json::Value = serde_json::from_str(&requests[0].1).unwrap();
    assert_eq!(payload["events"][0]["user_agent"], lookalike, "the record is faithful");
}

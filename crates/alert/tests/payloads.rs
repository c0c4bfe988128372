//! What responders receive, as reviewed snapshots: the alert record and
//! every channel's payload for one realistic incident, and for a test alert.
//! A change to any of them shows up as a diff in `tests/snapshots/`.

use honeytrail_alert::channels::{email, jira, pagerduty, slack, syslog, teams};
use honeytrail_alert::text;
use honeytrail_core::record::Alert;
use serde_json::{json, Value};

/// The fixture as the typed alert every channel reads.
fn alert() -> Alert {
    serde_json::from_value(record()).expect("the fixture is a honeytrail.alert.v1 record")
}

fn test_alert() -> Alert {
    let alert: Alert = serde_json::from_value(test_record()).expect("the fixture is a test alert");
    assert!(alert.is_test());
    alert
}

/// An incident of a key placed on a laptop, used twice from one address,
/// with a user agent and a placement owner that carry markup.
fn record() -> Value {
    json!({
        "schema": "honeytrail.alert.v1",
        "type": "incident.opened",
        "delivery_id": "41",
        "alert": {"id": 17, "kind": "incident.opened"},
        "incident": {
            "id": 7, "token_id": 3, "access_key_id": "AKIAQYLPMN5HHHFPZAM2", "state": "open", "kind": "use",
            "first_seen": "2026-11-28T09:00:00Z", "last_seen": "2026-11-28T09:02:10Z", "event_count": 2,
            "opened_at": "2026-11-28T09:03:01Z", "updated_at": "2026-11-28T09:03:01Z", "token_retired": false,
            "severity": "high", "url": "https://honeytrail.example.com/incidents/7"
        },
        "owners": ["maria@example.com"],
        "token": {
            "id": 3, "access_key_id": "AKIAQYLPMN5HHHFPZAM2", "kind": "aws-minted", "state": "active",
            "iam_user_name": "svc-backup-reader", "labels": {"team": "payments"}, "memo": "critical laptops"
        },
        "placement": "Key AKIAQYLPMN5HHHFPZAM2 was placed on Maria <b>Lopez</b>'s MacBook Pro (host maria-mbp, serial C02XYZ) in ~/.aws/credentials.",
        "placements": ["on Maria <b>Lopez</b>'s MacBook Pro (host maria-mbp, serial C02XYZ) in ~/.aws/credentials, placed 2026-11-20 by alice"],
        "placed": [{
            "id": 11, "host": "maria-mbp", "path": "~/.aws/credentials", "owner": "Maria <b>Lopez</b>",
            "asset": "MacBook Pro", "serial": "C02XYZ", "format": "aws-credentials", "placed_by": "alice",
            "placed_at": "2026-11-20T10:07:00Z", "notes": null, "labels": {}
        }],
        "custody": [
            {"seq": 1, "at": "2026-11-20T10:00:00Z", "description": "generated in canary account 123456789012 by honeytrail on ht-1", "by": "alice", "automatic": true},
            {"seq": 2, "at": "2026-11-20T10:05:00Z", "description": "sent by email to devops@example.com", "by": "alice", "automatic": false}
        ],
        "may_have_leaked_at": [
            "2026-11-20 10:00 UTC: generated in canary account 123456789012 by honeytrail on ht-1 (alice)",
            "2026-11-20 10:05 UTC: sent by email to devops@example.com (alice)"
        ],
        "activity": {
            "apis": ["GetCallerIdentity", "ListBuckets"], "source_ips": ["198.51.100.23"],
            "user_agents": ["aws-cli/2.15.0 <script>alert(1)</script>"], "regions": ["us-east-1"], "error_codes": ["AccessDenied"]
        },
        "events": [
            {"event_id": "ev-1", "event_time": "2026-11-28T09:00:00Z", "seen_at": "2026-11-28T09:03:01Z", "detection_delay_seconds": 181,
             "event_source": "sts.amazonaws.com", "event_name": "GetCallerIdentity", "aws_region": "us-east-1",
             "source_ip": "198.51.100.23", "user_agent": "aws-cli/2.15.0 <script>alert(1)</script>", "error_code": null,
             "error_message": null, "source": "s3", "origin": "s3://trail/AWSLogs/1.json.gz"},
            {"event_id": "ev-2", "event_time": "2026-11-28T09:02:10Z", "seen_at": "2026-11-28T09:03:01Z", "detection_delay_seconds": 51,
             "event_source": "s3.amazonaws.com", "event_name": "ListBuckets", "aws_region": "us-east-1",
             "source_ip": "198.51.100.23", "user_agent": "aws-cli/2.15.0 <script>alert(1)</script>", "error_code": "AccessDenied",
             "error_message": "User: arn:aws:iam::123456789012:user/svc-backup-reader is not authorized to perform: s3:ListAllMyBuckets",
             "source": "s3", "origin": "s3://trail/AWSLogs/1.json.gz"}
        ],
        "history": [
            {"at": "2026-11-28T09:03:01Z", "actor": "honeytrail", "kind": "open", "from_state": null, "to_state": "open", "note": null}
        ],
        "runbook": "1. Ask Maria: was this you?\n2. Walk the custody chain.",
        "owner_questions": []
    })
}

fn test_record() -> Value {
    json!({
        "schema": "honeytrail.alert.v1", "test": true, "type": "test",
        "message": "This is a test alert from honeytrail. No honey key was used.",
        "channel": "soc", "sent_at": "2026-11-28T09:00:00Z", "requested_by": "alice"
    })
}

fn pagerduty_config() -> pagerduty::PagerDutyConfig {
    serde_json::from_value(json!({"routing_key": "R0UTINGKEY", "severity": "auto"})).unwrap()
}

fn jira_config() -> jira::JiraConfig {
    serde_json::from_value(json!({
        "base_url": "https://acme.atlassian.net", "project": "SEC", "issue_type": "Task",
        "labels": ["soc"], "email": "bot@example.com", "token": "T0KEN"
    }))
    .unwrap()
}

fn syslog_config() -> syslog::SyslogConfig {
    serde_json::from_value(json!({"address": "127.0.0.1:514", "transport": "udp", "facility": 10})).unwrap()
}

/// The syslog line with the process ID (which differs per run) replaced.
fn syslog_line(alert: &Alert) -> String {
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-28T09:03:02Z").unwrap().with_timezone(&chrono::Utc);
    let line = syslog::frame(&syslog_config(), alert, "ht-1", now);
    line.replacen(&format!(" {} ", std::process::id()), " <pid> ", 1)
}

#[test]
fn the_alert_record() {
    insta::assert_json_snapshot!("record", record());
    // What webhooks and JSON-lines files receive: the fixture, read into the
    // typed record and written out again, with the structured fields added.
    insta::assert_json_snapshot!("record_typed", serde_json::to_value(alert()).unwrap());
    insta::assert_json_snapshot!("record_test", serde_json::to_value(test_alert()).unwrap());
}

#[test]
fn slack_message() {
    insta::assert_json_snapshot!("slack", slack::message(&alert()));
    insta::assert_json_snapshot!("slack_test", slack::message(&test_alert()));
}

#[test]
fn teams_card() {
    insta::assert_json_snapshot!("teams", teams::message(&alert()));
    insta::assert_json_snapshot!("teams_test", teams::message(&test_alert()));
}

#[test]
fn pagerduty_event() {
    insta::assert_json_snapshot!("pagerduty", pagerduty::event(&pagerduty_config(), &alert()));
    insta::assert_json_snapshot!("pagerduty_test", pagerduty::event(&pagerduty_config(), &test_alert()));
}

#[test]
fn jira_issue_and_comment() {
    insta::assert_json_snapshot!("jira_issue", jira::new_issue(&jira_config(), &alert()));
    insta::assert_json_snapshot!("jira_comment", jira::comment(&alert()));
}

#[test]
fn email_text_and_html() {
    let (subject, plain, html) = email::team_parts(&alert());
    insta::assert_snapshot!("email_subject", subject);
    insta::assert_snapshot!("email_text", plain);
    insta::assert_snapshot!("email_html", html);
    let (subject, plain, _) = email::team_parts(&test_alert());
    insta::assert_snapshot!("email_test", format!("{subject}\n\n{plain}"));
}

#[test]
fn syslog_line_snapshot() {
    insta::assert_snapshot!("syslog", syslog_line(&alert()));
    insta::assert_snapshot!("syslog_test", syslog_line(&test_alert()));
}

#[test]
fn plain_text_title() {
    insta::assert_snapshot!("title", text::title(&alert()));
}

/// What an intruder can write into a user agent, an error message or a
/// region: markup of every target and control characters.
const HOSTILE: &str = "x [click|http://evil.test] !http://evil.test/t.png! [~admin] {noformat}{html}<b>y</b>\r\nFake: resolved\x1b]52;c;ZXZpbA==\x07\x1b[2J [md](http://evil.test) ![i](http://evil.test/i.png) <http://evil.test|ok> <!channel> *bold* _it_ \u{202e}txt";

fn hostile_alert() -> Alert {
    let mut r = record();
    for e in r["events"].as_array_mut().unwrap() {
        e["user_agent"] = HOSTILE.into();
        e["error_message"] = HOSTILE.into();
        e["aws_region"] = HOSTILE.into();
    }
    r["activity"]["user_agents"] = json!([HOSTILE]);
    r["activity"]["regions"] = json!([HOSTILE]);
    r["activity"]["source_ips"] = json!([HOSTILE]);
    r["placement"] = HOSTILE.into();
    r["may_have_leaked_at"] = json!([HOSTILE]);
    serde_json::from_value(r).unwrap()
}

fn no_controls(what: &str, text: &str) {
    for c in ['\r', '\x1b', '\x07', '\u{202e}'] {
        assert!(!text.contains(c), "{what} carries {c:?} raw: {text:?}");
    }
    assert!(!text.lines().any(|l| l.trim_start().starts_with("Fake:")), "{what} has a forged line: {text}");
}

#[test]
fn hostile_text_is_text_in_every_channel() {
    let alert = hostile_alert();
    // Jira: everything the intruder wrote sits in one {noformat} block.
    let issue = jira::new_issue(&jira_config(), &alert);
    let description = issue["fields"]["description"].as_str().unwrap();
    no_controls("jira", description);
    assert_eq!(description.matches("{noformat}").count(), 2, "one block, opened and closed: {description}");
    let inside = description.split("{noformat}").nth(1).unwrap();
    let outside: String = description.split("{noformat}").step_by(2).collect();
    assert!(inside.contains("[click|http://evil.test]"), "kept as text inside the block");
    assert!(!outside.contains("evil.test"), "nothing hostile outside the block: {outside}");
    let comment = jira::comment(&alert)["body"].as_str().unwrap().to_string();
    assert_eq!(comment.matches("{noformat}").count(), 2, "{comment}");
    // Teams: Markdown is escaped, so no link, image or emphasis comes of it.
    let card = teams::message(&alert).to_string();
    let texts: Vec<String> = {
        let v: Value = serde_json::from_str(&card).unwrap();
        let body = v["attachments"][0]["content"]["body"].as_array().unwrap().clone();
        body.iter()
            .flat_map(|b| {
                let mut t = vec![b["text"].as_str().unwrap_or("").to_string()];
                if let Some(facts) = b["facts"].as_array() {
                    t.extend(facts.iter().map(|f| f["value"].as_str().unwrap().to_string()));
                }
                t
            })
            .collect()
    };
    for t in &texts {
        no_controls("teams", t);
        for raw in ["[md](", "![i](", "*bold*", "_it_", "<b>"] {
            assert!(!t.contains(raw), "teams carries {raw} unescaped: {t}");
        }
    }
    assert!(texts.iter().any(|t| t.contains("\\[md\\]\\(http://evil\\.test\\)")), "{texts:?}");
    // Email: one line per value, no terminal escapes.
    let (_, plain, html) = email::team_parts(&alert);
    no_controls("email text", &plain);
    no_controls("email html", &html);
    assert!(!html.contains("<b>y</b>"), "{html}");
    // Slack: mrkdwn's control sequences (<…>, <!channel>) are escaped.
    let slack = slack::message(&alert).to_string();
    assert!(!slack.contains("<http://evil") && !slack.contains("<!channel>"), "{slack}");
    assert!(!slack.contains("\\r") && !slack.contains("\\u001b"), "{slack}");
    // Syslog: one line, whatever the intruder wrote.
    let line = syslog_line(&alert);
    assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\x1b'), "{line:?}");
    // PagerDuty: JSON, and no raw control characters in what it shows.
    let pd = pagerduty::event(&pagerduty_config(), &alert).to_string();
    assert!(!pd.contains("\\u001b") && !pd.contains("\\r"), "{pd}");
}

/// The read of the bait before the first call reaches every channel, as
/// text: a process name is the intruder's to choose.
#[test]
fn the_read_before_the_first_call_is_in_every_channel() {
    let mut r = record();
    let sentence = format!("read by /tmp/{HOSTILE}, pid 4711, user deploy, via sshd ← bash on db-3 at 2026-11-28 08:48:00 UTC, 14 minutes before the first call");
    r["read_before"] = sentence.clone().into();
    let alert: Alert = serde_json::from_value(r).unwrap();
    let (_, plain, html) = email::team_parts(&alert);
    assert!(plain.contains("Bait read on the host: read by /tmp/x"), "{plain}");
    assert!(plain.contains("14 minutes before the first call"));
    no_controls("email text", &plain);
    no_controls("email html", &html);
    let jira = jira::new_issue(&jira_config(), &alert)["fields"]["description"].as_str().unwrap().to_string();
    assert!(jira.contains("14 minutes before the first call"), "{jira}");
    no_controls("jira", &jira);
    let slack = slack::message(&alert).to_string();
    assert!(slack.contains("14 minutes before the first call") && !slack.contains("<!channel>"), "{slack}");
    let teams = teams::message(&alert).to_string();
    assert!(teams.contains("14 minutes before the first call"), "{teams}");
    let pd = pagerduty::event(&pagerduty_config(), &alert);
    assert!(pd["payload"]["custom_details"]["read_before"].as_str().unwrap().contains("14 minutes"), "{pd}");
    let line = syslog_line(&alert);
    assert!(line.contains("14 minutes before the first call") && !line.contains('\x1b'), "{line:?}");
    assert_eq!(serde_json::to_value(&alert).unwrap()["read_before"], sentence.as_str(), "webhook and JSON lines");
}

/// What enrichment found reaches every channel; a record without it keeps
/// the reviewed payloads (the snapshots) unchanged.
#[test]
fn the_incident_context_is_in_every_channel() {
    let mut r = record();
    r["context"] = json!({
        "summary": ["from a Tor exit: 185.220.101.4", "aws-cli on Kali Linux", "from <b>AWS</b> EC2 in eu-west-1: 3.250.17.4"],
        "own_network_only": false, "networks": [], "tools": ["Kali Linux"], "tor": true, "aws": ["EC2 eu-west-1"],
        "countries": [], "asns": [], "sources": [], "agents": [], "data": ["user-agent list (7 entries)"]
    });
    let alert: Alert = serde_json::from_value(r).unwrap();
    let (_, plain, html) = email::team_parts(&alert);
    assert!(plain.contains("Context:\n  - from a Tor exit: 185.220.101.4\n  - aws-cli on Kali Linux"), "{plain}");
    assert!(html.contains("from &lt;b&gt;AWS&lt;/b&gt; EC2"), "{html}");
    let jira = jira::new_issue(&jira_config(), &alert)["fields"]["description"].as_str().unwrap().to_string();
    assert!(jira.contains("aws-cli on Kali Linux"), "{jira}");
    let slack = slack::message(&alert).to_string();
    assert!(slack.contains("from a Tor exit") && slack.contains("&lt;b&gt;AWS"), "{slack}");
    let teams = teams::message(&alert).to_string();
    assert!(teams.contains(r"aws\\-cli on Kali Linux"), "Markdown escaped: {teams}");
    let pd = pagerduty::event(&pagerduty_config(), &alert);
    assert_eq!(pd["payload"]["custom_details"]["context"][1], "aws-cli on Kali Linux", "{pd}");
    assert_eq!(pd["payload"]["custom_details"]["own_network_only"], false);
    let line = syslog_line(&alert);
    assert!(line.contains("from a Tor exit: 185.220.101.4"), "{line:?}");
    assert_eq!(serde_json::to_value(&alert).unwrap()["context"]["tor"], true, "webhook and JSON lines");
}

/// An incident of 25 000 calls with distinct user agents, addresses and
/// regions, a long custody chain and runbook: every channel stays within its
/// vendor's documented limit and says that something was left out.
#[test]
fn huge_incidents_fit_every_vendor_limit() {
    let mut r = record();
    let many = |prefix: &str| (0..25_000).map(|n| format!("{prefix}-{n:05}-{}", "x".repeat(60))).collect::<Vec<_>>();
    r["activity"]["user_agents"] = json!(many("agent"));
    r["activity"]["source_ips"] = json!(many("ip"));
    r["activity"]["apis"] = json!(many("api"));
    r["may_have_leaked_at"] = json!(many("hop"));
    r["placements"] = json!(many("placement"));
    r["runbook"] = json!("step\n".repeat(40_000));
    let events: Vec<Value> = (0..2_000)
        .map(|n| {
            let mut e = r["events"][0].clone();
            e["event_id"] = json!(format!("ev-{n}"));
            e["user_agent"] = json!(format!("agent-{n}-{}", "y".repeat(200)));
            e
        })
        .collect();
    r["events"] = json!(events);
    let alert: Alert = serde_json::from_value(r).unwrap();

    let pd = serde_json::to_vec(&pagerduty::event(&pagerduty_config(), &alert)).unwrap();
    assert!(pd.len() < 512 * 1024, "PagerDuty: {} bytes", pd.len());
    assert!(String::from_utf8_lossy(&pd).contains("more"));
    let issue = jira::new_issue(&jira_config(), &alert);
    let description = issue["fields"]["description"].as_str().unwrap();
    assert!(description.chars().count() <= jira::JIRA_TEXT_MAX, "Jira: {}", description.chars().count());
    assert!(description.contains("[cut:") && description.ends_with("{noformat}"), "the block is still closed");
    let comment = jira::comment(&alert)["body"].as_str().unwrap().chars().count();
    assert!(comment <= jira::JIRA_TEXT_MAX, "Jira comment: {comment}");
    let teams = serde_json::to_vec(&teams::message(&alert)).unwrap();
    assert!(teams.len() < 28 * 1024, "Teams: {} bytes", teams.len());
    let slack = slack::message(&alert);
    assert!(slack["blocks"].as_array().unwrap().len() <= 50);
    for block in slack["blocks"].as_array().unwrap() {
        assert!(block["text"]["text"].as_str().map_or(0, |t| t.chars().count()) <= 3000);
    }
    let (_, plain, _) = email::team_parts(&alert);
    assert!(plain.len() < 256 * 1024, "email: {} bytes", plain.len());
    // OCSF over syslog fits one UDP datagram, and says what it left out.
    let config: syslog::SyslogConfig = serde_json::from_value(
        json!({"address": "127.0.0.1:514", "transport": "udp", "facility": 10, "format": "ocsf"}),
    )
    .unwrap();
    let frame = syslog::frame(&config, &alert, "ht-1", chrono::Utc::now());
    assert!(frame.len() < 65_507, "syslog OCSF: {} bytes", frame.len());
    let doc: serde_json::Value = serde_json::from_str(&frame[frame.find("] {").unwrap() + 2..]).unwrap();
    assert_eq!(doc["class_uid"], 2004);
    assert!(doc["unmapped"]["honeytrail"]["cut"].as_array().is_some_and(|c| !c.is_empty()), "{}", doc["unmapped"]);
    assert_eq!(doc["finding_info"]["uid"], "honeytrail-incident-7");
}

//! Slack incoming webhook: one Block Kit message per alert.
//!
//! Slack's limits are kept: a header's plain text ≤ 150 characters, a section's
//! text ≤ 3000, at most 10 fields per section, at most 50 blocks; mrkdwn text
//! escapes `&`, `<` and `>`. `text` carries the fallback for notifications.
//!
//! Example configuration (`honeytrail channel add slack secops --url-stdin`):
//! ```json
//! {"url": "https://hooks.slack.com/services/T000/B000/XXXX"}
//! ```
//!
//! With `"approve_buttons": true` (`--approve-buttons`), an alert about an
//! incident whose response actions wait for approval carries one "Approve"
//! button per run (with a confirmation dialog). Slack sends the click to
//! the server's `/ingest/slack/actions`, which verifies Slack's request
//! signature ([`verify_request`]) before it approves anything.

use honeytrail_core::record::Alert;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::channels::webhook::{plain, post_json};
use crate::channels::Configured;
use crate::retry::Failure;
use crate::text::when;
use crate::Sender;
use honeytrail_core::channel::{FieldSpec, FieldValue, KindSpec, Secrecy};

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlackConfig {
    /// The incoming-webhook URL (a secret: it lets anyone post).
    pub url: String,
    /// Approve buttons for runs that wait for approval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approve_buttons: bool,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlackConfig(***)")
    }
}

/// Escapes text for mrkdwn.
/// A value on one line, with mrkdwn's control characters escaped.
fn esc(s: &str) -> String {
    escape_text(&crate::text::line(s))
}

/// Text of several lines (the runbook), with mrkdwn's control characters escaped.
fn esc_lines(s: &str) -> String {
    escape_text(&crate::text::lines(s))
}

fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn list(items: &[String], total: usize, max: usize) -> String {
    if items.is_empty() {
        return "–".into();
    }
    let more = total.max(items.len()).saturating_sub(max);
    let mut out = items.iter().take(max).map(|s| esc(s)).collect::<Vec<_>>().join(", ");
    if more > 0 {
        out.push_str(&format!(" (+{more})"));
    }
    out
}

/// The Block Kit message for an alert.
pub fn message(alert: &Alert) -> Value {
    let Alert::Incident(record) = alert else {
        return json!({
            "text": "honeytrail test alert: no honey key was used",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "honeytrail test alert"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "This is a test of the channel. *No honey key was used.*"}}
            ]
        });
    };
    let incident = &record.incident;
    let key = &incident.access_key_id;
    let id = incident.id;
    let state = incident.state.to_string();
    let fleet = incident.kind.fleet_headline(key);
    let title = match record.alert_kind() {
        "incident.opened" if fleet.is_some() => fleet.unwrap_or_default(),
        "incident.opened" if incident.is_report() => format!("Decoy key found and reported: {key}"),
        "incident.opened" if incident.kind == honeytrail_core::incident::IncidentKind::Exposed => {
            format!("Honey key exposed publicly (AWS found it): {key}")
        }
        "incident.opened" => format!("Honey key used: {key}"),
        "incident.state" => format!("Incident #{id} is now {state}"),
        "incident.action" => {
            format!("Incident #{id}: {}", esc(record.last_action().unwrap_or("a response action ran")))
        }
        _ => format!("Incident #{id} updated: {key}"),
    };
    let retired = if incident.token_retired { "\n:warning: This key was *retired* before it was used." } else { "" };
    let activity = &record.activity;
    let field = |name: &str, value: String| json!({"type": "mrkdwn", "text": cut(&format!("*{name}*\n{value}"), 2000)});
    let hops: Vec<String> = record.may_have_leaked_at.iter().map(|h| format!("• {}", esc(h))).collect();
    let custody = if hops.is_empty() {
        "No chain of custody recorded.".to_string()
    } else {
        format!("*May have leaked at:*\n{}", hops.join("\n"))
    };
    let reads = esc(crate::text::read_lines(record).join("\n").trim());
    let enriched = esc(crate::text::context_lines(record).join("\n").trim());
    let mut context = match &incident.url {
        Some(url) => format!("<{}|incident #{id}> · key {key} · {} events", esc(url), incident.event_count),
        None => format!("incident #{id} · key {key} · {} events", incident.event_count),
    };
    if let Some(d) = record.last_delay() {
        context.push_str(&format!(" · detected {d} s after the call"));
    }
    let mut message = json!({
        "text": cut(&format!("{title}: {}", esc(&record.placement)), 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": cut(&title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("{}{retired}", esc(&record.placement)), 3000)}},
            {"type": "section", "fields": [
                field("State", esc(&state)),
                field("First / last call", format!("{} / {}", when(incident.first_seen), when(incident.last_seen))),
                field("APIs", list(&activity.apis, activity.distinct.apis, 8)),
                field("Source IPs", list(&activity.source_ips, activity.distinct.source_ips, 8)),
                field("Regions", list(&activity.regions, activity.distinct.regions, 8)),
                field("Errors", list(&activity.error_codes, activity.distinct.error_codes, 8)),
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&custody, 3000)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*Runbook*\n```{}```", esc_lines(&record.runbook)), 3000)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&context, 2000)}]}
        ]
    });
    // After the placement: how the key was found on its host, then who
    // the caller looks like.
    for text in [enriched, reads] {
        if !text.is_empty() {
            if let Some(blocks) = message["blocks"].as_array_mut() {
                blocks.insert(2, json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&text, 3000)}}));
            }
        }
    }
    message
}

/// The `action_id` prefix of approve buttons; the run's number follows.
pub const APPROVE_ACTION: &str = "honeytrail.approve.";

/// At most this many approve buttons in one message.
const MAX_BUTTONS: usize = 5;

/// Adds an "Approve" button for each run of the incident that waits for
/// approval (at most five; the rest are on the incident page). Slack's
/// limits: a button's text ≤ 75 characters, a confirmation's title ≤ 100,
/// its text ≤ 300, its buttons ≤ 30.
pub fn with_approve_buttons(mut message: Value, alert: &Alert) -> Value {
    let Alert::Incident(record) = alert else { return message };
    if record.awaiting_approval.is_empty() {
        return message;
    }
    let plain = |text: String, max: usize| json!({"type": "plain_text", "text": cut(&text, max)});
    let buttons: Vec<Value> = record
        .awaiting_approval
        .iter()
        .take(MAX_BUTTONS)
        .map(|run| {
            let action = crate::text::line(&run.action);
            let target = crate::text::line(&run.target);
            json!({
                "type": "button",
                "action_id": format!("{APPROVE_ACTION}{}", run.run),
                "value": run.run.to_string(),
                "style": "danger",
                "text": plain(format!("Approve {action} (run #{})", run.run), 75),
                "confirm": {
                    "title": plain(format!("Run {action}?"), 100),
                    "text": plain(format!("{} on {target}, for incident #{}. It can be undone from honeytrail where its kind allows.", crate::text::line(&run.kind), record.incident.id), 300),
                    "confirm": plain("Approve".into(), 30),
                    "deny": plain("Not now".into(), 30)
                }
            })
        })
        .collect();
    if let Some(blocks) = message["blocks"].as_array_mut() {
        let at = blocks.len().saturating_sub(1); // before the context line
        blocks.insert(at, json!({"type": "actions", "block_id": "honeytrail-approve", "elements": buttons}));
    }
    message
}

/// How old a Slack request may be: older ones are refused as replays.
pub const MAX_REQUEST_AGE_SECONDS: i64 = 300;

/// Why a request claiming to come from Slack was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No or malformed `X-Slack-Request-Timestamp` / `X-Slack-Signature`.
    Unsigned,
    /// Signed more than five minutes from now: a replay, or a clock off.
    Stale,
    /// The signature is not Slack's over this body with our signing secret.
    BadSignature,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refused::Unsigned => "the request has no valid X-Slack-Request-Timestamp and X-Slack-Signature headers",
            Refused::Stale => "the request's timestamp is more than five minutes from now (a replay, or a clock is off)",
            Refused::BadSignature => "the X-Slack-Signature does not match: not from Slack, or serve.slack_signing_secret is not the app's signing secret",
        })
    }
}

/// Checks Slack's request signature: `v0=` and the hex HMAC-SHA256, keyed
/// with the app's signing secret, of `v0:{timestamp}:{body}`, compared in
/// constant time; the timestamp within five minutes of `now`.
pub fn verify_request(
    signing_secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    use hmac::{Hmac, Mac};
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return Err(Refused::Unsigned) };
    let ts: i64 = timestamp.trim().parse().map_err(|_| Refused::Unsigned)?;
    let given = signature.trim().strip_prefix("v0=").ok_or(Refused::Unsigned)?;
    let given = unhex(given).ok_or(Refused::Unsigned)?;
    if (now - ts).abs() > MAX_REQUEST_AGE_SECONDS {
        return Err(Refused::Stale);
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(signing_secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| Refused::BadSignature)
}

/// Bytes from lowercase or uppercase hex; `None` for anything else.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// The `X-Slack-Signature` Slack sends with `body` at `timestamp`:
/// `v0=` and the hex HMAC-SHA256 of `v0:{timestamp}:{body}`.
pub fn sign_request(signing_secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(signing_secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

/// What a click on an approve button asks: the run, and who clicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproveClick {
    pub run: i64,
    /// The Slack user's ID (`U…`) and, for the record, their name.
    pub user_id: String,
    pub user_name: String,
    pub team_id: Option<String>,
}

/// Reads a verified interaction (`payload=` form field, a `block_actions`
/// JSON document) for an approve-button click.
pub fn approve_click(form_body: &[u8]) -> Result<ApproveClick, String> {
    let payload = url::form_urlencoded::parse(form_body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or("the body has no payload field")?;
    let v: Value = serde_json::from_str(&payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    if v["type"] != "block_actions" {
        return Err(format!(
            "a {} interaction is not an approve button",
            crate::text::line(v["type"].as_str().unwrap_or("?"))
        ));
    }
    let action = v["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["action_id"].as_str().is_some_and(|id| id.starts_with(APPROVE_ACTION))))
        .ok_or("no approve button was clicked")?;
    let run: i64 = action["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .ok_or("the button carries no run number")?;
    let user_id = v["user"]["id"].as_str().filter(|s| !s.is_empty()).ok_or("the payload names no user")?.to_string();
    let user_name = v["user"]["username"].as_str().or(v["user"]["name"].as_str()).unwrap_or("").to_string();
    let team_id = v["team"]["id"].as_str().map(str::to_string);
    Ok(ApproveClick { run, user_id, user_name, team_id })
}

pub async fn deliver(sender: &Sender, config: &SlackConfig, alert: &Alert) -> Result<(), Failure> {
    let mut message = message(alert);
    if config.approve_buttons {
        message = with_approve_buttons(message, alert);
    }
    let body = serde_json::to_vec(&message).expect("messages serialise");
    post_json(sender, &plain(&config.url), None, &body).await.map(|_| ())
}

static SPEC: KindSpec = KindSpec {
    name: "slack",
    summary: "Slack incoming webhook (Block Kit); the webhook URL is read from standard input",
    fields: &[
        FieldSpec {
            key: "url",
            flag: "url",
            help: "The incoming-webhook URL (a secret: it lets anyone post)",
            value: FieldValue::Text,
            required: true,
            default: None,
            secret: Secrecy::Stdin,
        },
        FieldSpec {
            key: "approve_buttons",
            flag: "approve-buttons",
            help: "Add an \"Approve\" button to alerts of runs that wait for approval (needs the Slack app's interactivity pointed at /ingest/slack/actions and serve.slack_signing_secret)",
            value: FieldValue::Flag,
            required: false,
            default: None,
            secret: Secrecy::Plain,
        },
    ],
};

impl Configured for SlackConfig {
    const SPEC: &'static KindSpec = &SPEC;
}

posting_channel!(SlackConfig, "Slack", url);

#[cfg(test)]
mod tests {
    use super::*;
    use honeytrail_core::record::{AlertRecord, AlertRef, EventInfo};

    fn opened(mut record: AlertRecord) -> Alert {
        record.alert = Some(AlertRef { id: 1, kind: "incident.opened".into() });
        Alert::Incident(Box::new(record))
    }

    #[test]
    fn messages_respect_block_kit_limits_and_escape() {
        let mut record = AlertRecord::skeleton(7, "AKIAEXAMPLE");
        record.incident.event_count = 2;
        record.placement = "Key AKIAEXAMPLE was placed on <Maria>'s laptop & more".into();
        record.may_have_leaked_at = vec!["x".into(), "y".into(), "z".into()];
        record.activity.apis = vec!["ListBuckets".into()];
        record.activity.source_ips = vec!["203.0.113.9".into()];
        record.events = vec![EventInfo { detection_delay_seconds: Some(42), ..EventInfo::skeleton("e") }];
        let m = message(&opened(record));
        let blocks = m["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "Honey key used: AKIAEXAMPLE");
        assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("&lt;Maria&gt;'s laptop &amp; more"));
        assert!(blocks[2]["fields"].as_array().unwrap().len() <= 10);
        let context = blocks.iter().find(|b| b["type"] == "context").unwrap();
        assert!(context["elements"][0]["text"].as_str().unwrap().contains("detected 42 s after the call"));
        let long = opened(AlertRecord::skeleton(1, &"K".repeat(400)));
        assert_eq!(message(&long)["blocks"][0]["text"]["text"].as_str().unwrap().chars().count(), 150);
    }

    #[test]
    fn only_fresh_requests_signed_with_the_signing_secret_pass() {
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"payload=%7B%7D";
        let now = 1_700_000_000;
        // Slack's documented example: this secret, timestamp and body give this signature.
        let example = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        assert_eq!(
            sign_request("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, example),
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
        );
        let good = sign_request(secret, now, body);
        let ts = now.to_string();
        assert_eq!(verify_request(secret, Some(&ts), Some(&good), body, now + 10), Ok(()));
        assert_eq!(
            verify_request(secret, Some(&ts), Some(&good.to_uppercase().replace("V0=", "v0=")), body, now),
            Ok(())
        );
        assert_eq!(verify_request("another-secret", Some(&ts), Some(&good), body, now), Err(Refused::BadSignature));
        assert_eq!(verify_request(secret, Some(&ts), Some(&good), b"payload=%7B%7D ", now), Err(Refused::BadSignature));
        let other = (now + 1).to_string();
        assert_eq!(verify_request(secret, Some(&other), Some(&good), body, now), Err(Refused::BadSignature));
        assert_eq!(verify_request(secret, Some(&ts), Some(&good), body, now + 301), Err(Refused::Stale));
        assert_eq!(verify_request(secret, Some(&ts), Some(&good), body, now - 301), Err(Refused::Stale));
        assert_eq!(verify_request(secret, None, Some(&good), body, now), Err(Refused::Unsigned));
        assert_eq!(verify_request(secret, Some(&ts), None, body, now), Err(Refused::Unsigned));
        assert_eq!(verify_request(secret, Some("soon"), Some(&good), body, now), Err(Refused::Unsigned));
        assert_eq!(verify_request(secret, Some(&ts), Some(&good[3..]), body, now), Err(Refused::Unsigned));
        assert_eq!(verify_request(secret, Some(&ts), Some("v0=zz"), body, now), Err(Refused::Unsigned));
        assert_eq!(verify_request(secret, Some(&ts), Some("v0=é1"), body, now), Err(Refused::Unsigned));
    }

    #[test]
    fn approve_buttons_name_each_waiting_run_and_clicks_read_back() {
        use honeytrail_core::record::PendingRun;
        let mut record = AlertRecord::skeleton(7, "AKIAEXAMPLE");
        record.awaiting_approval = (1..=7)
            .map(|n| PendingRun {
                run: n,
                action: format!("isolate\u{1b}[2J<{n}>"),
                kind: "quarantine-ec2".into(),
                target: "i-0abc in 210987654321".into(),
            })
            .collect();
        let alert = opened(record);
        let plain = message(&alert);
        let m = with_approve_buttons(plain.clone(), &alert);
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), plain["blocks"].as_array().unwrap().len() + 1);
        let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
        assert_eq!(blocks.last().unwrap()["type"], "context", "the context line stays last");
        let buttons = actions["elements"].as_array().unwrap();
        assert_eq!(buttons.len(), 5, "at most five");
        assert_eq!(buttons[0]["action_id"], "honeytrail.approve.1");
        assert_eq!(buttons[0]["value"], "1");
        let label = buttons[0]["text"]["text"].as_str().unwrap();
        assert!(!label.contains('\u{1b}') && label.chars().count() <= 75, "{label}");
        for b in buttons {
            let c = &b["confirm"];
            assert!(c["title"]["text"].as_str().unwrap().chars().count() <= 100);
            assert!(c["text"]["text"].as_str().unwrap().chars().count() <= 300);
            assert!(c["text"]["text"].as_str().unwrap().contains("incident #7"));
        }
        // Nothing waits: the message is unchanged.
        let quiet = opened(AlertRecord::skeleton(8, "AKIAEXAMPLE"));
        assert_eq!(with_approve_buttons(message(&quiet), &quiet), message(&quiet));

        // What Slack sends back for a click.
        let payload = json!({"type": "block_actions", "user": {"id": "U024BE7LH", "username": "maria"},
            "team": {"id": "T0001"}, "actions": [{"action_id": "honeytrail.approve.3", "value": "3", "type": "button"}]});
        let body: String =
            url::form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish();
        let click = approve_click(body.as_bytes()).unwrap();
        assert_eq!((click.run, click.user_id.as_str(), click.user_name.as_str()), (3, "U024BE7LH", "maria"));
        for (bad, why) in [
            (json!({"type": "view_submission"}), "not an approve button"),
            (
                json!({"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "other", "value": "3"}]}),
                "no approve button",
            ),
            (
                json!({"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "honeytrail.approve.3", "value": "-3"}]}),
                "no run number",
            ),
            (
                json!({"type": "block_actions", "actions": [{"action_id": "honeytrail.approve.3", "value": "3"}]}),
                "names no user",
            ),
        ] {
            let body: String =
                url::form_urlencoded::Serializer::new(String::new()).append_pair("payload", &bad.to_string()).finish();
            let err = approve_click(body.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        assert!(approve_click(b"nothing=here").unwrap_err().contains("no payload"));
        assert!(approve_click(b"payload=%7Bnot").unwrap_err().contains("not JSON"));
    }
}

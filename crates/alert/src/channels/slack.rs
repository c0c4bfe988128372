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

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::channels::webhook::{plain, post_json};
use crate::retry::Failure;
use crate::Sender;

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlackConfig {
    /// The incoming-webhook URL (a secret: it lets anyone post).
    pub url: String,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlackConfig(***)")
    }
}

/// Escapes text for mrkdwn.
fn esc(s: &str) -> String {
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

fn list(v: &Value, max: usize) -> String {
    let items: Vec<String> = v.as_array().into_iter().flatten().filter_map(Value::as_str).map(esc).collect();
    if items.is_empty() {
        return "–".into();
    }
    let more = items.len().saturating_sub(max);
    let mut out = items.into_iter().take(max).collect::<Vec<_>>().join(", ");
    if more > 0 {
        out.push_str(&format!(" (+{more})"));
    }
    out
}

/// The Block Kit message for an alert record (the `honeytrail.alert.v1` JSON).
pub fn message(record: &Value) -> Value {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    if record["test"] == true {
        return json!({
            "text": "honeytrail test alert: no honey key was used",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "honeytrail test alert"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "This is a test of the channel. *No honey key was used.*"}}
            ]
        });
    }
    let incident = &record["incident"];
    let key = s(&incident["access_key_id"]);
    let id = incident["id"].as_i64().unwrap_or(0);
    let state = s(&incident["state"]);
    let title = match record["alert"]["kind"].as_str().or(record["type"].as_str()) {
        Some("incident.opened") if incident["kind"] == "report" => format!("Decoy key found and reported: {key}"),
        Some("incident.opened") => format!("Honey key used: {key}"),
        Some("incident.state") => format!("Incident #{id} is now {state}"),
        _ => format!("Incident #{id} updated: {key}"),
    };
    let retired =
        if incident["token_retired"] == true { "\n:warning: This key was *retired* before it was used." } else { "" };
    let activity = &record["activity"];
    let field = |name: &str, value: String| json!({"type": "mrkdwn", "text": cut(&format!("*{name}*\n{value}"), 2000)});
    let hops: Vec<String> = record["may_have_leaked_at"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|h| format!("• {}", esc(h)))
        .collect();
    let custody = if hops.is_empty() {
        "No chain of custody recorded.".to_string()
    } else {
        format!("*May have leaked at:*\n{}", hops.join("\n"))
    };
    let delay = record["events"].as_array().and_then(|e| e.last()).and_then(|e| e["detection_delay_seconds"].as_i64());
    let mut context = match incident["url"].as_str() {
        Some(url) => format!("<{}|incident #{id}> · key {key} · {} events", esc(url), incident["event_count"]),
        None => format!("incident #{id} · key {key} · {} events", incident["event_count"]),
    };
    if let Some(d) = delay {
        context.push_str(&format!(" · detected {d} s after the call"));
    }
    json!({
        "text": cut(&format!("{title}: {}", s(&record["placement"])), 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": cut(&title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("{}{retired}", esc(&s(&record["placement"]))), 3000)}},
            {"type": "section", "fields": [
                field("State", esc(&state)),
                field("First / last call", format!("{} / {}", s(&incident["first_seen"]), s(&incident["last_seen"]))),
                field("APIs", list(&activity["apis"], 8)),
                field("Source IPs", list(&activity["source_ips"], 8)),
                field("Regions", list(&activity["regions"], 8)),
                field("Errors", list(&activity["error_codes"], 8)),
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&custody, 3000)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*Runbook*\n```{}```", esc(&s(&record["runbook"]))), 3000)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(&context, 2000)}]}
        ]
    })
}

pub async fn deliver(sender: &Sender, config: &SlackConfig, record: &Value) -> Result<(), Failure> {
    let body = serde_json::to_vec(&message(record)).expect("messages serialise");
    post_json(sender, &plain(&config.url), None, &body).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_respect_block_kit_limits_and_escape() {
        let record = json!({
            "alert": {"kind": "incident.opened"},
            "incident": {"id": 7, "access_key_id": "AKIAEXAMPLE", "state": "open", "event_count": 2, "first_seen": "a", "last_seen": "b"},
            "placement": "Key AKIAEXAMPLE was placed on <Maria>'s laptop & more",
            "may_have_leaked_at": ["x", "y", "z"],
            "activity": {"apis": ["ListBuckets"], "source_ips": ["203.0.113.9"], "regions": [], "error_codes": []},
            "events": [{"detection_delay_seconds": 42}]
        });
        let m = message(&record);
        let blocks = m["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "Honey key used: AKIAEXAMPLE");
        assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("&lt;Maria&gt;'s laptop &amp; more"));
        assert!(blocks[2]["fields"].as_array().unwrap().len() <= 10);
        let context = blocks.iter().find(|b| b["type"] == "context").unwrap();
        assert!(context["elements"][0]["text"].as_str().unwrap().contains("detected 42 s after the call"));
        let long = json!({"incident": {"access_key_id": "K".repeat(400)}, "alert": {"kind": "incident.opened"}});
        assert_eq!(message(&long)["blocks"][0]["text"]["text"].as_str().unwrap().chars().count(), 150);
    }
}

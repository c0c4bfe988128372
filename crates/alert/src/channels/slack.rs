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

use honeytrail_core::record::Alert;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::channels::webhook::{plain, post_json};
use crate::retry::Failure;
use crate::text::when;
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

pub async fn deliver(sender: &Sender, config: &SlackConfig, alert: &Alert) -> Result<(), Failure> {
    let body = serde_json::to_vec(&message(alert)).expect("messages serialise");
    post_json(sender, &plain(&config.url), None, &body).await.map(|_| ())
}

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
}

//! Microsoft Teams (incoming webhook or a Workflows webhook): one Adaptive
//! Card per alert, wrapped in the message envelope Teams documents:
//! `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "content": <card>}]}`.
//!
//! Example configuration (`honeytrail channel add teams secops < url.txt`):
//! ```json
//! {"url": "https://example.webhook.office.com/webhookb2/…"}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::channels::webhook::{plain, post_json};
use crate::retry::Failure;
use crate::Sender;

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TeamsConfig {
    /// The webhook URL (a secret: it lets anyone post).
    pub url: String,
}

impl std::fmt::Debug for TeamsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TeamsConfig(***)")
    }
}

fn joined(v: &Value, max: usize) -> String {
    let items: Vec<&str> = v.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if items.is_empty() {
        return "–".into();
    }
    let mut out = items.iter().take(max).copied().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        out.push_str(&format!(" (+{})", items.len() - max));
    }
    out
}

/// The Teams message for an alert record (the `honeytrail.alert.v1` JSON).
pub fn message(record: &Value) -> Value {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let (title, mut body) = if record["test"] == true {
        (
            "honeytrail test alert".to_string(),
            vec![
                json!({"type": "TextBlock", "text": "This is a test of the channel. No honey key was used.", "wrap": true}),
            ],
        )
    } else {
        let incident = &record["incident"];
        let id = incident["id"].as_i64().unwrap_or(0);
        let key = s(&incident["access_key_id"]);
        let title = match record["alert"]["kind"].as_str() {
            Some("incident.opened") => format!("Honey key used: {key}"),
            Some("incident.state") => format!("Incident #{id} is now {}", s(&incident["state"])),
            _ => format!("Incident #{id} updated: {key}"),
        };
        let activity = &record["activity"];
        let fact = |title: &str, value: String| json!({"title": title, "value": value});
        let hops: Vec<String> = record["may_have_leaked_at"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|h| format!("- {h}"))
            .collect();
        let mut body = vec![
            json!({"type": "TextBlock", "text": s(&record["placement"]), "wrap": true}),
            json!({"type": "FactSet", "facts": [
                fact("State", s(&incident["state"])),
                fact("Events", incident["event_count"].to_string()),
                fact("First / last call", format!("{} / {}", s(&incident["first_seen"]), s(&incident["last_seen"]))),
                fact("APIs", joined(&activity["apis"], 8)),
                fact("Source IPs", joined(&activity["source_ips"], 8)),
                fact("Errors", joined(&activity["error_codes"], 8)),
            ]}),
        ];
        if !hops.is_empty() {
            body.push(
                json!({"type": "TextBlock", "text": format!("May have leaked at:\n{}", hops.join("\n")), "wrap": true}),
            );
        }
        if let Some(runbook) = record["runbook"].as_str() {
            body.push(json!({"type": "TextBlock", "text": runbook, "wrap": true, "fontType": "Monospace"}));
        }
        (title, body)
    };
    body.insert(0, json!({"type": "TextBlock", "size": "Large", "weight": "Bolder", "text": title, "wrap": true}));
    let actions: Vec<Value> = record["incident"]["url"]
        .as_str()
        .map(|url| vec![json!({"type": "Action.OpenUrl", "title": "Open the incident", "url": url})])
        .unwrap_or_default();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions
            }
        }]
    })
}

pub async fn deliver(sender: &Sender, config: &TeamsConfig, record: &Value) -> Result<(), Failure> {
    let body = serde_json::to_vec(&message(record)).expect("messages serialise");
    post_json(sender, &plain(&config.url), None, &body).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_have_the_documented_envelope() {
        let m = message(
            &json!({"alert": {"kind": "incident.opened"}, "incident": {"id": 1, "access_key_id": "AKIAX", "state": "open"}, "placement": "Key AKIAX was placed on host h in /p."}),
        );
        assert_eq!(m["type"], "message");
        let a = &m["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["body"][0]["text"], "Honey key used: AKIAX");
        assert_eq!(a["content"]["body"][1]["text"], "Key AKIAX was placed on host h in /p.");
    }
}

//! Microsoft Teams (incoming webhook or a Workflows webhook): one Adaptive
//! Card per alert, wrapped in the message envelope Teams documents:
//! `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "content": <card>}]}`.
//!
//! Example configuration (`honeytrail channel add teams secops < url.txt`):
//! ```json
//! {"url": "https://example.webhook.office.com/webhookb2/…"}
//! ```

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
pub struct TeamsConfig {
    /// The webhook URL (a secret: it lets anyone post).
    pub url: String,
}

impl std::fmt::Debug for TeamsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TeamsConfig(***)")
    }
}

/// Text for an Adaptive Card `TextBlock` or fact, which Teams renders as
/// Markdown: every character with a Markdown meaning is escaped with a
/// backslash (so an intruder's user agent cannot become a link, an image or
/// emphasis), control characters are shown as escapes, and line breaks only
/// where honeytrail put them.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in crate::text::lines(s).chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '+'
                | '-'
                | '.'
                | '!'
                | '|'
                | '<'
                | '>'
                | '~'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn joined(items: &[String], total: usize, max: usize) -> String {
    if items.is_empty() {
        return "–".into();
    }
    let mut out = items.iter().take(max).map(|i| md(&crate::text::line(i))).collect::<Vec<_>>().join(", ");
    let total = total.max(items.len());
    if total > max {
        out.push_str(&format!(" (+{})", total - max));
    }
    out
}

/// The Teams message for an alert.
pub fn message(alert: &Alert) -> Value {
    let (title, mut body, url) = match alert {
        Alert::Test(_) => (
            "honeytrail test alert".to_string(),
            vec![
                json!({"type": "TextBlock", "text": "This is a test of the channel. No honey key was used.", "wrap": true}),
            ],
            None,
        ),
        Alert::Incident(record) => {
            let incident = &record.incident;
            let id = incident.id;
            let key = &incident.access_key_id;
            let fleet = incident.kind.fleet_headline(key);
            let title = match record.alert.as_ref().map(|a| a.kind.as_str()) {
                Some("incident.opened") if fleet.is_some() => fleet.unwrap_or_default(),
                Some("incident.opened") if incident.kind == honeytrail_core::incident::IncidentKind::Exposed => {
                    format!("Honey key exposed publicly (AWS found it): {key}")
                }
                Some("incident.opened") => format!("Honey key used: {key}"),
                Some("incident.state") => format!("Incident #{id} is now {}", incident.state),
                Some("incident.action") => {
                    format!("Incident #{id}: {}", record.last_action().unwrap_or("a response action ran"))
                }
                _ => format!("Incident #{id} updated: {key}"),
            };
            let activity = &record.activity;
            let fact = |title: &str, value: String| json!({"title": title, "value": value});
            let (shown, more) = crate::text::first(&record.may_have_leaked_at);
            let mut hops: Vec<String> = shown.iter().map(|h| format!("- {}", md(&crate::text::line(h)))).collect();
            if more > 0 {
                hops.push(format!("\\… and {more} more"));
            }
            let mut body = vec![
                json!({"type": "TextBlock", "text": md(&crate::text::fit(&crate::text::line(&record.placement), 4096, None)), "wrap": true}),
                json!({"type": "FactSet", "facts": [
                    fact("State", md(&incident.state.to_string())),
                    fact("Events", incident.event_count.to_string()),
                    fact("First / last call", format!("{} / {}", when(incident.first_seen), when(incident.last_seen))),
                    fact("APIs", joined(&activity.apis, activity.distinct.apis, 8)),
                    fact("Source IPs", joined(&activity.source_ips, activity.distinct.source_ips, 8)),
                    fact("Errors", joined(&activity.error_codes, activity.distinct.error_codes, 8)),
                ]}),
            ];
            for lines in [crate::text::read_lines(record), crate::text::context_lines(record)] {
                if !lines.is_empty() {
                    let text = md(&crate::text::fit(lines.join("\n").trim(), 4096, None));
                    body.push(json!({"type": "TextBlock", "text": text, "wrap": true}));
                }
            }
            if !hops.is_empty() {
                body.push(
                    json!({"type": "TextBlock", "text": format!("May have leaked at:\n{}", hops.join("\n")), "wrap": true}),
                );
            }
            body.push(json!({"type": "TextBlock", "text": md(&crate::text::fit(&record.runbook, 8192, incident.url.as_deref())), "wrap": true, "fontType": "Monospace"}));
            (title, body, incident.url.clone())
        }
    };
    body.insert(0, json!({"type": "TextBlock", "size": "Large", "weight": "Bolder", "text": md(&title), "wrap": true}));
    let actions: Vec<Value> = url
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

pub async fn deliver(sender: &Sender, config: &TeamsConfig, alert: &Alert) -> Result<(), Failure> {
    let body = serde_json::to_vec(&message(alert)).expect("messages serialise");
    post_json(sender, &plain(&config.url), None, &body).await.map(|_| ())
}

static SPEC: KindSpec = KindSpec {
    name: "teams",
    summary: "Microsoft Teams webhook (Adaptive Card); the webhook URL is read from standard input",
    fields: &[FieldSpec {
        key: "url",
        flag: "url",
        help: "The webhook URL (a secret: it lets anyone post)",
        value: FieldValue::Text,
        required: true,
        default: None,
        secret: Secrecy::Stdin,
    }],
};

impl Configured for TeamsConfig {
    const SPEC: &'static KindSpec = &SPEC;
}

posting_channel!(TeamsConfig, "Microsoft Teams", url);

#[cfg(test)]
mod tests {
    use super::*;
    use honeytrail_core::record::{AlertRecord, AlertRef};

    #[test]
    fn cards_have_the_documented_envelope() {
        let mut record = AlertRecord::skeleton(1, "AKIAX");
        record.alert = Some(AlertRef { id: 1, kind: "incident.opened".into() });
        record.placement = "Key AKIAX was placed on host h in /p.".into();
        let m = message(&Alert::Incident(Box::new(record)));
        assert_eq!(m["type"], "message");
        let a = &m["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["body"][0]["text"], "Honey key used: AKIAX");
        assert_eq!(a["content"]["body"][1]["text"], "Key AKIAX was placed on host h in /p\\.");
    }
}

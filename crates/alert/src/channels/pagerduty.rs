//! PagerDuty Events API v2: one PagerDuty alert per honeytrail incident.
//!
//! `dedup_key` is `honeytrail-incident-<id>`, so every update of an incident
//! lands on the same PagerDuty alert; acknowledging or resolving (or marking a
//! false positive) in honeytrail acknowledges or resolves it there.
//!
//! Example configuration (`honeytrail channel add pagerduty oncall < routing-key.txt`):
//! ```json
//! {"routing_key": "R0ABC…", "endpoint": "https://events.pagerduty.com/v2/enqueue", "severity": "critical"}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::channels::webhook::{plain, post_json};
use crate::retry::Failure;
use crate::Sender;

pub const DEFAULT_ENDPOINT: &str = "https://events.pagerduty.com/v2/enqueue";

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.into()
}

fn default_severity() -> String {
    "auto".into()
}

/// PagerDuty's severity for a honeytrail incident severity (`auto`): an
/// intrusion pages as critical, a report of a found key is information.
fn pagerduty_severity(incident_severity: &str) -> &'static str {
    match incident_severity {
        "medium" => "warning",
        "low" => "info",
        _ => "critical",
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PagerDutyConfig {
    /// The integration's routing key (a secret).
    pub routing_key: String,
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// critical, error, warning, info, or auto (from the incident's severity).
    #[serde(default = "default_severity")]
    pub severity: String,
}

impl std::fmt::Debug for PagerDutyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PagerDutyConfig(***)")
    }
}

/// The dedup key of a honeytrail incident.
pub fn dedup_key(incident_id: i64) -> String {
    format!("honeytrail-incident-{incident_id}")
}

/// The Events v2 request for an alert record.
pub fn event(config: &PagerDutyConfig, record: &Value) -> Value {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    if record["test"] == true {
        return json!({
            "routing_key": config.routing_key,
            "event_action": "trigger",
            "dedup_key": "honeytrail-test",
            "payload": {"summary": "honeytrail test alert: no honey key was used", "source": "honeytrail", "severity": "info"}
        });
    }
    let incident = &record["incident"];
    let id = incident["id"].as_i64().unwrap_or(0);
    let action = match incident["state"].as_str() {
        Some("acknowledged") => "acknowledge",
        Some("resolved" | "false-positive") => "resolve",
        _ => "trigger",
    };
    let mut body = json!({"routing_key": config.routing_key, "event_action": action, "dedup_key": dedup_key(id)});
    if let Some(url) = incident["url"].as_str() {
        body["links"] = json!([{"href": url, "text": format!("honeytrail incident #{id}")}]);
    }
    if action == "trigger" {
        let summary: String = format!("Honey key {} used: {}", s(&incident["access_key_id"]), s(&record["placement"]))
            .chars()
            .take(1024)
            .collect();
        body["payload"] = json!({
            "summary": summary,
            "source": s(&incident["access_key_id"]),
            "severity": if config.severity == "auto" {
                pagerduty_severity(incident["severity"].as_str().unwrap_or("high")).to_string()
            } else {
                config.severity.clone()
            },
            "timestamp": incident["last_seen"],
            "component": "honey token",
            "group": record["token"]["labels"]["team"],
            "class": "honey key use",
            "custom_details": {
                "placement": record["placement"],
                "placements": record["placements"],
                "may_have_leaked_at": record["may_have_leaked_at"],
                "activity": record["activity"],
                "event_count": incident["event_count"],
                "state": incident["state"],
                "token_retired": incident["token_retired"],
                "runbook": record["runbook"],
            }
        });
    }
    body
}

pub async fn deliver(sender: &Sender, config: &PagerDutyConfig, record: &Value) -> Result<(), Failure> {
    let body = serde_json::to_vec(&event(config, record)).expect("events serialise");
    post_json(sender, &plain(&config.endpoint), None, &body).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PagerDutyConfig {
        PagerDutyConfig { routing_key: "R0KEY".into(), endpoint: DEFAULT_ENDPOINT.into(), severity: "critical".into() }
    }

    #[test]
    fn state_drives_the_event_action_under_one_dedup_key() {
        let rec = |state: &str| json!({"incident": {"id": 9, "state": state, "access_key_id": "AKIAX"}, "placement": "Key AKIAX was placed on h."});
        for (state, action) in [
            ("open", "trigger"),
            ("confirmed", "trigger"),
            ("acknowledged", "acknowledge"),
            ("false-positive", "resolve"),
            ("resolved", "resolve"),
        ] {
            let e = event(&config(), &rec(state));
            assert_eq!(
                (e["event_action"].as_str(), e["dedup_key"].as_str()),
                (Some(action), Some("honeytrail-incident-9")),
                "{state}"
            );
            assert_eq!(e["payload"].is_object(), action == "trigger", "payload only on trigger");
        }
        let t = event(&config(), &rec("open"));
        assert_eq!(t["payload"]["severity"], "critical");
        let auto = PagerDutyConfig { severity: "auto".into(), ..config() };
        let report = json!({"incident": {"id": 2, "state": "open", "severity": "low", "access_key_id": "AKIAX"}});
        assert_eq!(event(&auto, &report)["payload"]["severity"], "info");
        let intrusion = json!({"incident": {"id": 3, "state": "open", "severity": "high", "access_key_id": "AKIAX"}});
        assert_eq!(event(&auto, &intrusion)["payload"]["severity"], "critical");
        assert!(t["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Honey key AKIAX used: Key AKIAX was placed on h."));
    }
}

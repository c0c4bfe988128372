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

use honeytrail_core::incident::IncidentState;
use honeytrail_core::record::Alert;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::text::line;

use crate::channels::webhook::{plain, post_json};
use crate::channels::Configured;
use crate::retry::Failure;
use crate::Sender;
use honeytrail_core::channel::{FieldSpec, FieldValue, KindSpec, Secrecy};

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

/// The Events v2 request for an alert.
pub fn event(config: &PagerDutyConfig, alert: &Alert) -> Value {
    let Alert::Incident(record) = alert else {
        return json!({
            "routing_key": config.routing_key,
            "event_action": "trigger",
            "dedup_key": "honeytrail-test",
            "payload": {"summary": "honeytrail test alert: no honey key was used", "source": "honeytrail", "severity": "info"}
        });
    };
    let incident = &record.incident;
    let id = incident.id;
    let action = match incident.state {
        IncidentState::Acknowledged => "acknowledge",
        IncidentState::Resolved | IncidentState::FalsePositive => "resolve",
        IncidentState::Open | IncidentState::Confirmed => "trigger",
    };
    let mut body = json!({"routing_key": config.routing_key, "event_action": action, "dedup_key": dedup_key(id)});
    if let Some(url) = &incident.url {
        body["links"] = json!([{"href": url, "text": format!("honeytrail incident #{id}")}]);
    }
    if action == "trigger" {
        // Shown as text in PagerDuty and on phones: one line per value.
        // Lists are cut to their first values with a count of the rest, so the
        // event stays far below PagerDuty's 512 KB limit.
        let clean = |items: &[String]| {
            let (shown, more) = crate::text::first(items);
            let mut out: Vec<String> = shown.iter().map(|i| line(i).into_owned()).collect();
            if more > 0 {
                out.push(format!("… and {more} more"));
            }
            out
        };
        let a = &record.activity;
        let what = match incident.kind {
            honeytrail_core::incident::IncidentKind::Exposed => "exposed publicly",
            honeytrail_core::incident::IncidentKind::Tampered => "bait changed or removed on its host",
            honeytrail_core::incident::IncidentKind::Stale => "host stopped reporting",
            honeytrail_core::incident::IncidentKind::Enrolment => {
                "went out through an enrolment secret used unexpectedly"
            }
            honeytrail_core::incident::IncidentKind::Touched => "bait read on its host (key not used yet)",
            _ => "used",
        };
        let summary: String = format!("Honey key {} {what}: {}", incident.access_key_id, line(&record.placement))
            .chars()
            .take(1024)
            .collect();
        body["payload"] = json!({
            "summary": summary,
            "source": incident.access_key_id,
            "severity": if config.severity == "auto" {
                pagerduty_severity(incident.severity.as_str()).to_string()
            } else {
                config.severity.clone()
            },
            "timestamp": incident.last_seen,
            "component": "honey token",
            "group": record.token.labels.get("team"),
            "class": "honey key use",
            "custom_details": {
                "placement": crate::text::fit(&line(&record.placement), 4096, None),
                "placements": clean(&record.placements),
                "may_have_leaked_at": clean(&record.may_have_leaked_at),
                "activity": {
                    "apis": clean(&a.apis), "source_ips": clean(&a.source_ips), "user_agents": clean(&a.user_agents),
                    "regions": clean(&a.regions), "error_codes": clean(&a.error_codes),
                },
                "event_count": incident.event_count,
                "state": incident.state,
                "token_retired": incident.token_retired,
                "runbook": crate::text::fit(&crate::text::lines(&record.runbook), 16_384, incident.url.as_deref()),
            }
        });
        // How the key was found on its host, when a read came before the first call.
        if let Some(r) = &record.read_before {
            body["payload"]["custom_details"]["read_before"] = crate::text::fit(&line(r), 2048, None).into();
        }
        if !record.reads.is_empty() {
            let reads: Vec<String> = record.reads.iter().take(5).map(|r| r.sentence.clone()).collect();
            body["payload"]["custom_details"]["reads"] = clean(&reads).into();
        }
        if let Some(c) = record.context.as_ref().filter(|c| !c.is_empty()) {
            body["payload"]["custom_details"]["context"] = clean(&c.summary).into();
            body["payload"]["custom_details"]["own_network_only"] = c.own_network_only.into();
        }
    }
    body
}

pub async fn deliver(sender: &Sender, config: &PagerDutyConfig, alert: &Alert) -> Result<(), Failure> {
    let body = serde_json::to_vec(&event(config, alert)).expect("events serialise");
    post_json(sender, &plain(&config.endpoint), None, &body).await.map(|_| ())
}

static SPEC: KindSpec = KindSpec {
    name: "pagerduty",
    summary: "PagerDuty Events API v2 (one alert per incident; acknowledge/resolve follow); routing key from standard input",
    fields: &[
        FieldSpec {
            key: "routing_key",
            flag: "routing-key",
            help: "The integration's routing key (a secret)",
            value: FieldValue::Text,
            required: true,
            default: None,
            secret: Secrecy::Stdin,
        },
        FieldSpec {
            key: "severity",
            flag: "severity",
            help: "critical, error, warning, info, or auto: from the incident's severity (a report of a found key is info)",
            value: FieldValue::Choice { values: &["auto", "critical", "error", "warning", "info"] },
            required: false,
            default: Some("auto"),
            secret: Secrecy::Plain,
        },
        FieldSpec {
            key: "endpoint",
            flag: "endpoint",
            help: "Events API endpoint (change only for a proxy or a test receiver)",
            value: FieldValue::Text,
            required: false,
            default: Some(DEFAULT_ENDPOINT),
            secret: Secrecy::Plain,
        },
    ],
};

impl Configured for PagerDutyConfig {
    const SPEC: &'static KindSpec = &SPEC;
}

posting_channel!(PagerDutyConfig, "PagerDuty", endpoint);

#[cfg(test)]
mod tests {
    use super::*;
    use honeytrail_core::incident::Severity;
    use honeytrail_core::record::AlertRecord;

    fn config() -> PagerDutyConfig {
        PagerDutyConfig { routing_key: "R0KEY".into(), endpoint: DEFAULT_ENDPOINT.into(), severity: "critical".into() }
    }

    fn record(id: i64, state: IncidentState, severity: Severity, placement: &str) -> Alert {
        let mut r = AlertRecord::skeleton(id, "AKIAX");
        r.incident.state = state;
        r.incident.severity = severity;
        r.placement = placement.into();
        Alert::Incident(Box::new(r))
    }

    #[test]
    fn state_drives_the_event_action_under_one_dedup_key() {
        let rec = |state| record(9, state, Severity::High, "Key AKIAX was placed on h.");
        for (state, action) in [
            (IncidentState::Open, "trigger"),
            (IncidentState::Confirmed, "trigger"),
            (IncidentState::Acknowledged, "acknowledge"),
            (IncidentState::FalsePositive, "resolve"),
            (IncidentState::Resolved, "resolve"),
        ] {
            let e = event(&config(), &rec(state));
            assert_eq!(
                (e["event_action"].as_str(), e["dedup_key"].as_str()),
                (Some(action), Some("honeytrail-incident-9")),
                "{state}"
            );
            assert_eq!(e["payload"].is_object(), action == "trigger", "payload only on trigger");
        }
        let t = event(&config(), &rec(IncidentState::Open));
        assert_eq!(t["payload"]["severity"], "critical");
        let auto = PagerDutyConfig { severity: "auto".into(), ..config() };
        let report = record(2, IncidentState::Open, Severity::Low, "");
        assert_eq!(event(&auto, &report)["payload"]["severity"], "info");
        let intrusion = record(3, IncidentState::Open, Severity::High, "");
        assert_eq!(event(&auto, &intrusion)["payload"]["severity"], "critical");
        assert!(t["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Honey key AKIAX used: Key AKIAX was placed on h."));
    }
}

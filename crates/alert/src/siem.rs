//! SIEM-native shapes of an alert: OCSF Detection Finding (class 2004,
//! OCSF 1.5.0, cloud profile) and ECS (Elastic Common Schema 8.11)
//! documents, besides honeytrail's own `honeytrail.alert.v1`. The mapping
//! is documented field by field in `docs/alerts.md`; a test validates every
//! OCSF document against the OCSF schema (the `ocsf-json-schema` package).
//!
//! Addresses go into typed address fields only when they are addresses
//! (CloudTrail writes `AWS Internal` or a service name there too); every
//! other value travels as JSON text, escaped by the serialiser.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use honeytrail_core::incident::{IncidentState, Severity};
use honeytrail_core::record::{Alert, AlertRecord, TestAlert};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The OCSF version the documents follow.
pub const OCSF_VERSION: &str = "1.5.0";
/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";
/// At most this many events become OCSF evidences (the newest).
pub const OCSF_EVIDENCES: usize = 20;

/// The shape a webhook, JSON-lines or syslog channel sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `honeytrail.alert.v1`, the record as it is.
    #[default]
    Honeytrail,
    /// OCSF Detection Finding (2004).
    Ocsf,
    /// An Elastic Common Schema document (JSON lines only).
    Ecs,
}

impl Format {
    pub fn is_default(&self) -> bool {
        *self == Format::Honeytrail
    }

    pub fn parse(raw: &str) -> Result<Format, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "honeytrail" | "" => Ok(Format::Honeytrail),
            "ocsf" => Ok(Format::Ocsf),
            "ecs" => Ok(Format::Ecs),
            other => Err(format!("{other:?} is not a format; use honeytrail, ocsf or ecs")),
        }
    }

    /// The alert in this format, as one line of JSON.
    pub fn encode(self, alert: &Alert) -> Vec<u8> {
        let value = match self {
            Format::Honeytrail => return serde_json::to_vec(alert).expect("alert records serialise"),
            Format::Ocsf => ocsf(alert),
            Format::Ecs => ecs(alert),
        };
        serde_json::to_vec(&value).expect("JSON values serialise")
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn ip(raw: &str) -> Option<String> {
    raw.trim().parse::<IpAddr>().ok().map(|ip| ip.to_string())
}

fn severity_id(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

fn status_id(s: IncidentState) -> (u8, &'static str) {
    match s {
        IncidentState::Open => (1, "New"),
        IncidentState::Acknowledged | IncidentState::Confirmed => (2, "In Progress"),
        IncidentState::FalsePositive => (3, "Suppressed"),
        IncidentState::Resolved => (4, "Resolved"),
    }
}

/// What happened to the finding: opened, changed, closed.
fn activity(record: &AlertRecord) -> (u8, &'static str) {
    match record.alert_kind() {
        "incident.opened" => (1, "Create"),
        _ if matches!(record.incident.state, IncidentState::Resolved | IncidentState::FalsePositive) => (3, "Close"),
        _ => (2, "Update"),
    }
}

/// The finding's title, as the other channels say it.
fn finding_uid(id: i64) -> String {
    format!("honeytrail-incident-{id}")
}

/// An incident's alert as an OCSF Detection Finding.
pub fn ocsf(alert: &Alert) -> Value {
    match alert {
        Alert::Incident(record) => ocsf_finding(record),
        Alert::Test(t) => ocsf_test(t),
    }
}

/// An OCSF finding of at most `max` bytes of JSON (a syslog message must fit
/// one datagram): the evidences, then the user-agent observables, then the
/// runbook are cut until it fits, so a flood of long user agents cannot make
/// the finding undeliverable. `unmapped.honeytrail.cut` says what was cut.
pub fn ocsf_within(alert: &Alert, max: usize) -> Value {
    let mut doc = ocsf(alert);
    let size = |d: &Value| serde_json::to_vec(d).map(|v| v.len()).unwrap_or(usize::MAX);
    let mut cut = Vec::new();
    for step in 0..6 {
        if size(&doc) <= max {
            break;
        }
        match step {
            0 => {
                if let Some(e) = doc.get_mut("evidences").and_then(Value::as_array_mut) {
                    e.truncate(3);
                    cut.push("evidences");
                }
            }
            1 => {
                if let Some(o) = doc.get_mut("observables").and_then(Value::as_array_mut) {
                    o.retain(|o| o["type_id"] != 16);
                    o.truncate(20);
                    cut.push("observables");
                }
            }
            2 => {
                if let Some(d) = doc.pointer_mut("/remediation/desc") {
                    *d = crate::text::fit(d.as_str().unwrap_or_default(), 1024, None).into();
                    cut.push("remediation");
                }
            }
            3 => {
                if let Some(o) = doc.as_object_mut() {
                    o.remove("evidences");
                    o.remove("enrichments");
                }
                cut.push("all evidences");
            }
            4 => {
                if let Some(u) = doc.pointer_mut("/unmapped/honeytrail") {
                    *u = json!({"incident_id": u["incident_id"].clone()});
                }
                if let Some(r) = doc.get_mut("resources").and_then(Value::as_array_mut) {
                    r.truncate(5);
                }
                cut.push("unmapped, resources");
            }
            _ => {
                for pointer in ["/message", "/finding_info/desc"] {
                    if let Some(v) = doc.pointer_mut(pointer) {
                        *v = crate::text::fit(v.as_str().unwrap_or_default(), 512, None).into();
                    }
                }
                cut.push("message");
            }
        }
    }
    if !cut.is_empty() {
        if let Some(u) = doc.pointer_mut("/unmapped/honeytrail") {
            u["cut"] = json!(cut);
        }
    }
    doc
}

/// The largest OCSF syslog message: one UDP datagram, with room for the header.
pub const SYSLOG_OCSF_MAX: usize = 60_000;

fn ocsf_metadata(uid: &str, correlation: &str) -> Value {
    json!({
        "version": OCSF_VERSION,
        "product": {"name": "honeytrail", "vendor_name": "honeytrail", "version": env!("CARGO_PKG_VERSION")},
        "uid": uid,
        "correlation_uid": correlation,
        "profiles": ["cloud"],
        "log_name": "honeytrail.alert",
    })
}

fn ocsf_test(t: &TestAlert) -> Value {
    let time = millis(t.sent_at);
    json!({
        "activity_id": 1, "activity_name": "Create",
        "category_uid": 2, "category_name": "Findings",
        "class_uid": 2004, "class_name": "Detection Finding",
        "type_uid": 200401, "type_name": "Detection Finding: Create",
        "severity_id": 1, "severity": "Informational",
        "status_id": 1, "status": "New",
        "time": time,
        "message": t.message,
        "metadata": ocsf_metadata(&format!("honeytrail-test-{time}"), "honeytrail-test"),
        "finding_info": {"uid": format!("honeytrail-test-{time}"), "title": "honeytrail test alert: no key was used",
                         "types": ["honeytrail test"], "created_time": time},
        "cloud": {"provider": "AWS"},
        "is_alert": false,
        "unmapped": {"honeytrail": {"test": true, "channel": t.channel, "requested_by": t.requested_by}},
    })
}

fn ocsf_finding(r: &AlertRecord) -> Value {
    let i = &r.incident;
    let (activity_id, activity_name) = activity(r);
    let (severity_id, severity) = severity_id(i.severity);
    let (status_id, status) = status_id(i.state);
    let uid = finding_uid(i.id);
    let context = r.context.as_ref();
    let geo_of =
        |addr: &str| context.and_then(|c| c.sources.iter().find(|s| s.address == addr)).and_then(|s| s.geo.clone());
    let evidences: Vec<Value> = r
        .events
        .iter()
        .rev()
        .take(OCSF_EVIDENCES)
        .map(|e| {
            let mut ev = json!({
                "api": {"operation": e.event_name, "service": {"name": e.event_source}},
                "actor": {"user": {"uid": i.access_key_id, "type": "IAMUser", "type_id": 99}},
                "data": {"event_id": e.event_id, "event_time": e.event_time, "aws_region": e.aws_region,
                         "source_ip": e.source_ip, "user_agent": e.user_agent, "error_code": e.error_code,
                         "error_message": e.error_message, "detection_delay_seconds": e.detection_delay_seconds},
            });
            if let Some(addr) = e.source_ip.as_deref().and_then(ip) {
                let mut endpoint = json!({"ip": addr});
                if let Some(g) = e.source_ip.as_deref().and_then(geo_of) {
                    if let Some(c) = g.country {
                        endpoint["location"] = json!({"country": c});
                    }
                    if let Some(n) = g.asn {
                        endpoint["autonomous_system"] = json!({"number": n});
                        if let Some(org) = g.as_org {
                            endpoint["autonomous_system"]["name"] = org.into();
                        }
                    }
                }
                ev["src_endpoint"] = endpoint;
            }
            ev
        })
        .collect();
    let mut observables: Vec<Value> = r
        .activity
        .source_ips
        .iter()
        .filter_map(|s| ip(s))
        .map(|v| json!({"name": "src_endpoint.ip", "type_id": 2, "type": "IP Address", "value": v}))
        .collect();
    observables.extend(
        r.activity
            .user_agents
            .iter()
            .take(20)
            .map(|v| json!({"name": "user_agent", "type_id": 16, "type": "HTTP User-Agent", "value": v})),
    );
    observables.push(json!({"name": "access_key_id", "type_id": 10, "type": "Resource UID", "value": i.access_key_id}));
    let mut key = json!({
        "uid": i.access_key_id,
        "type": "AWS IAM access key",
        "labels": r.token.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    });
    if let Some(user) = &r.token.iam_user_name {
        key["name"] = user.as_str().into();
    }
    let mut resources = vec![key];
    for p in &r.placed {
        let mut res = json!({"uid": format!("honeytrail-placement-{}", p.id), "name": p.path, "type": "honeytrail placement",
                             "hostname": p.host});
        if let Some(o) = &p.owner {
            res["owner"] = json!({"name": o});
        }
        resources.push(res);
    }
    let enrichments: Vec<Value> = context
        .map(|c| {
            c.summary
                .iter()
                .map(|s| json!({"name": "honeytrail.context", "value": s, "data": {}, "type": "context", "provider": "honeytrail"}))
                .collect()
        })
        .unwrap_or_default();
    let mut finding_info = json!({
        "uid": uid,
        "title": crate::text::headline(r),
        "desc": r.placement,
        "types": [format!("honeytrail {}", i.kind.as_str())],
        "first_seen_time": millis(i.first_seen),
        "last_seen_time": millis(i.last_seen),
        "created_time": millis(i.opened_at),
        "modified_time": millis(i.updated_at),
        "data_sources": ["AWS CloudTrail"],
    });
    if let Some(url) = &i.url {
        finding_info["src_url"] = url.as_str().into();
    }
    let mut cloud = json!({"provider": "AWS"});
    if let Some(region) = r.activity.regions.first() {
        cloud["region"] = region.as_str().into();
    }
    let mut doc = json!({
        "activity_id": activity_id, "activity_name": activity_name,
        "category_uid": 2, "category_name": "Findings",
        "class_uid": 2004, "class_name": "Detection Finding",
        "type_uid": 200400 + u32::from(activity_id), "type_name": format!("Detection Finding: {activity_name}"),
        "severity_id": severity_id, "severity": severity,
        "status_id": status_id, "status": status,
        "confidence_id": 3, "confidence": "High",
        "is_alert": true,
        "time": millis(i.updated_at),
        "start_time": millis(i.first_seen),
        "end_time": millis(i.last_seen),
        "count": i.event_count,
        "message": r.placement,
        "metadata": ocsf_metadata(r.delivery_id.as_deref().map(|d| format!("honeytrail-delivery-{d}")).as_deref().unwrap_or(&uid), &uid),
        "finding_info": finding_info,
        "cloud": cloud,
        "resources": resources,
        "observables": observables,
        "remediation": {"desc": crate::text::fit(&r.runbook, 16_384, i.url.as_deref())},
        "unmapped": {"honeytrail": {
            "schema": r.schema, "type": r.alert_kind(), "incident_id": i.id, "state": i.state, "kind": i.kind,
            "owners": r.owners, "may_have_leaked_at": r.may_have_leaked_at, "read_before": r.read_before,
            "own_network_only": context.map(|c| c.own_network_only), "tools": context.map(|c| c.tools.clone()),
        }},
    });
    if !evidences.is_empty() {
        doc["evidences"] = evidences.into();
    }
    if !enrichments.is_empty() {
        doc["enrichments"] = enrichments.into();
    }
    if let Some(last) = r.events.last() {
        doc["api"] = json!({"operation": last.event_name, "service": {"name": last.event_source}});
    }
    doc
}

fn ecs_severity(s: Severity) -> (u8, u8) {
    match s {
        Severity::Low => (21, 25),
        Severity::Medium => (47, 50),
        Severity::High => (73, 75),
        Severity::Critical => (99, 100),
    }
}

/// An alert as an Elastic Common Schema document.
pub fn ecs(alert: &Alert) -> Value {
    let r = match alert {
        Alert::Incident(r) => r,
        Alert::Test(t) => {
            return json!({
                "@timestamp": t.sent_at, "ecs": {"version": ECS_VERSION}, "message": t.message,
                "event": {"kind": "event", "category": ["intrusion_detection"], "type": ["info"], "action": "test",
                          "dataset": "honeytrail.alert", "module": "honeytrail", "provider": "honeytrail"},
                "tags": ["honeytrail", "test"],
                "honeytrail": {"test": true, "channel": t.channel, "requested_by": t.requested_by},
            })
        }
    };
    let i = &r.incident;
    let (severity, risk) = ecs_severity(i.severity);
    let ips: Vec<String> = r.activity.source_ips.iter().filter_map(|s| ip(s)).collect();
    let context = r.context.as_ref();
    let mut tags = vec!["honeytrail".to_string(), format!("honeytrail-{}", i.kind.as_str())];
    if let Some(c) = context {
        tags.extend(c.tools.iter().cloned());
        if c.tor {
            tags.push("tor".into());
        }
        if c.own_network_only {
            tags.push("own-network".into());
        }
    }
    let mut users: Vec<String> = r.token.iam_user_name.iter().cloned().chain(r.owners.iter().cloned()).collect();
    users.dedup();
    let mut event = json!({
        "kind": "alert",
        "category": ["intrusion_detection"],
        "type": ["indicator"],
        "action": r.alert_kind(),
        "created": i.opened_at,
        "start": i.first_seen,
        "end": i.last_seen,
        "severity": severity,
        "risk_score": risk,
        "dataset": "honeytrail.alert",
        "module": "honeytrail",
        "provider": "honeytrail",
        "reason": r.placement,
    });
    if let Some(id) = &r.delivery_id {
        event["id"] = id.as_str().into();
    }
    if let Some(url) = &i.url {
        event["url"] = url.as_str().into();
    }
    let mut doc = json!({
        "@timestamp": i.updated_at,
        "ecs": {"version": ECS_VERSION},
        "message": r.placement,
        "event": event,
        "rule": {"id": i.kind.as_str(), "name": crate::text::headline(r), "ruleset": "honeytrail"},
        "cloud": {"provider": "aws"},
        "related": {"ip": ips, "user": users},
        "host": {"name": r.placed.iter().map(|p| p.host.clone()).collect::<Vec<_>>()},
        "tags": tags,
        "labels": r.token.labels,
        "honeytrail": {
            "schema": r.schema,
            "incident": {"id": i.id, "state": i.state, "kind": i.kind, "event_count": i.event_count, "severity": i.severity},
            "access_key_id": i.access_key_id,
            "placements": r.placements,
            "may_have_leaked_at": r.may_have_leaked_at,
            "apis": r.activity.apis,
            "read_before": r.read_before,
            "context": r.context,
        },
    });
    if let Some(region) = r.activity.regions.first() {
        doc["cloud"]["region"] = region.as_str().into();
    }
    if let Some(first) = ips.first() {
        let mut source = json!({"ip": first});
        if let Some(g) = context
            .and_then(|c| c.sources.iter().find(|s| ip(&s.address).as_deref() == Some(first)))
            .and_then(|s| s.geo.clone())
        {
            if let Some(c) = g.country {
                source["geo"] = json!({"country_iso_code": c});
            }
            if let Some(n) = g.asn {
                source["as"] = json!({"number": n});
                if let Some(org) = g.as_org {
                    source["as"]["organization"] = json!({"name": org});
                }
            }
        }
        doc["source"] = source;
    }
    if let Some(ua) = r.activity.user_agents.first() {
        doc["user_agent"] = json!({"original": ua});
    }
    if let Some(user) = &r.token.iam_user_name {
        doc["user"] = json!({"name": user});
    }
    doc
}

//! The alert record, `honeytrail.alert.v1`: everything about an incident as
//! one typed value. Every alert channel, the SIEM outputs, `incident show
//! --json` and the API are made from it; the generic webhook and JSON-lines
//! channels send it as it is. Its JSON Schema is published as
//! `docs/alert-schema.json` ([`schema_json`]).
//!
//! Fields are only ever added to version 1; a change that removes or
//! renames one is version 2.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::incident::{Activity, Incident, IncidentKind, IncidentLogEntry, IncidentState, Severity};
use crate::model::{TokenKind, TokenState};

/// At most this many events in a record: the earliest half and the latest
/// half when an incident has more.
pub const RECORD_EVENTS: usize = 500;

/// The schema name and version every record carries.
pub const SCHEMA: &str = "honeytrail.alert.v1";

/// One alert about one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AlertRecord {
    /// Always `honeytrail.alert.v1`.
    pub schema: String,
    /// Why this record was made: `incident.opened`, `incident.updated`
    /// (new events), `incident.state` (a state change), `incident.answer`
    /// (a placement owner answered), or `incident` / `question` when read
    /// rather than sent.
    #[serde(rename = "type")]
    pub kind: String,
    /// The delivery this record travels in: the same across retries, so a
    /// receiver can drop duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_id: Option<String>,
    /// The alert in the outbox this record was sent for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertRef>,
    pub incident: IncidentInfo,
    /// The owners of the token's current placements, sorted, once each.
    pub owners: Vec<String>,
    pub token: TokenInfo,
    /// The sentence that says where the key was placed.
    pub placement: String,
    /// Each current placement as a sentence.
    pub placements: Vec<String>,
    /// Each current placement with every field.
    #[serde(default)]
    pub placed: Vec<PlacementInfo>,
    /// Each custody hop as a sentence: the places that may have leaked it.
    pub may_have_leaked_at: Vec<String>,
    /// Each custody hop with every field, in order.
    #[serde(default)]
    pub custody: Vec<HopInfo>,
    pub activity: Activity,
    /// The incident's events, oldest first: all of them when there are at
    /// most [`RECORD_EVENTS`], else the earliest and the latest half of that
    /// each (`incident.event_count` says how many there are; every one is
    /// in `GET /api/v1/incidents/{id}/events`).
    pub events: Vec<EventInfo>,
    /// State changes, notes and answers, oldest first.
    pub history: Vec<IncidentLogEntry>,
    /// The runbook for this incident, rendered.
    pub runbook: String,
    /// "Was this you?" links, one per placement owner with an email address
    /// (email channels that ask owners only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_questions: Vec<OwnerQuestion>,
    /// Reads of the bait on its hosts, newest first (at most
    /// [`RECORD_READS`]): for a use, those before the first call; else those
    /// up to the incident's last event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<ReadInfo>,
    /// The latest read before the first call, as a sentence: "read by
    /// /usr/bin/cat, pid 4711, user deploy, via sshd ← bash, on db-3 at …,
    /// 14 minutes before the first call".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_before: Option<String>,
    /// What the source addresses and user agents say (own network, AWS,
    /// Tor, country, attacker tools), computed offline; absent when nothing
    /// matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<crate::enrich::IncidentContext>,
    /// Response actions on this incident that wait for a responder's
    /// approval (`honeytrail action approve RUN`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting_approval: Vec<PendingRun>,
}

/// A response action's run that waits for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PendingRun {
    /// The run's number (`honeytrail action approve RUN`).
    pub run: i64,
    /// The action's name.
    pub action: String,
    /// Its kind: `quarantine-ec2`, `deactivate-keys`, `deny-policy`, `webhook`, `command`.
    pub kind: String,
    /// What it would act on (`i-0abc… in 210987654321`).
    pub target: String,
}

/// At most this many reads in a record.
pub const RECORD_READS: usize = 20;

/// One read of a bait file, from a host's agent or an audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReadInfo {
    pub id: i64,
    pub host: String,
    /// What became of it: `pending`, `used`, `touched`, `quiet` (a listed
    /// backup or scanning program), `unmatched`.
    pub state: String,
    /// The sentence responders read.
    pub sentence: String,
    pub access: crate::evidence::Access,
}

/// The outbox entry a record was sent for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlertRef {
    pub id: i64,
    /// `incident.opened`, `incident.updated`, `incident.state` or `incident.answer`.
    pub kind: String,
}

/// The incident, with its severity and where to open it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentInfo {
    pub id: i64,
    pub token_id: i64,
    pub access_key_id: String,
    pub state: IncidentState,
    pub kind: IncidentKind,
    /// Event time of the first call.
    pub first_seen: DateTime<Utc>,
    /// Event time of the last call.
    pub last_seen: DateTime<Utc>,
    pub event_count: i64,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The key was retired before this use: whoever holds it copied it before.
    pub token_retired: bool,
    pub severity: Severity,
    /// The incident's page in the web UI (alerts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl IncidentInfo {
    pub fn new(incident: &Incident, severity: Severity) -> IncidentInfo {
        IncidentInfo {
            id: incident.id,
            token_id: incident.token_id,
            access_key_id: incident.access_key_id.clone(),
            state: incident.state,
            kind: incident.kind,
            first_seen: incident.first_seen,
            last_seen: incident.last_seen,
            event_count: incident.event_count,
            opened_at: incident.opened_at,
            updated_at: incident.updated_at,
            token_retired: incident.token_retired,
            severity,
            url: None,
        }
    }

    /// Whether this is an employee's report of a found key, not a use.
    pub fn is_report(&self) -> bool {
        self.kind == IncidentKind::Report
    }
}

/// The token the incident is about (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub access_key_id: String,
    pub kind: TokenKind,
    pub state: TokenState,
    pub iam_user_name: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub memo: String,
}

/// Where the key sits, field by field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlacementInfo {
    pub id: i64,
    pub host: String,
    pub path: String,
    pub owner: Option<String>,
    pub asset: Option<String>,
    pub serial: Option<String>,
    /// The bait format written there.
    pub format: Option<String>,
    pub placed_by: Option<String>,
    pub placed_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The EC2 instance the key sits on: what a quarantine isolates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The real IAM user of the place's owner: whose access a response cuts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_user: Option<String>,
    /// The AWS account that owns the instance and the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_account: Option<String>,
}

/// One place the secret passed through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HopInfo {
    /// Position in the chain, from 1.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub description: String,
    pub by: Option<String>,
    /// Recorded by honeytrail itself (minting, rendering), not by a person.
    pub automatic: bool,
}

/// One CloudTrail event (or safety-net finding) of the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventInfo {
    pub event_id: String,
    /// When AWS says the call was made.
    pub event_time: DateTime<Utc>,
    /// When honeytrail stored it.
    pub seen_at: Option<DateTime<Utc>>,
    /// `seen_at - event_time`.
    pub detection_delay_seconds: Option<i64>,
    pub event_source: String,
    pub event_name: String,
    pub aws_region: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The kind of input it came from (`s3`, `sqs`, `eventbridge-http`, `safety-net`…).
    pub source: String,
    /// The exact input (an S3 URI, a message ID).
    pub origin: String,
}

impl EventInfo {
    /// An event with only its ID: for tests and examples.
    pub fn skeleton(event_id: &str) -> EventInfo {
        EventInfo {
            event_id: event_id.into(),
            event_time: DateTime::<Utc>::default(),
            seen_at: None,
            detection_delay_seconds: None,
            event_source: String::new(),
            event_name: String::new(),
            aws_region: None,
            source_ip: None,
            user_agent: None,
            error_code: None,
            error_message: None,
            source: String::new(),
            origin: String::new(),
        }
    }
}

/// A "was this you?" link for one placement owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OwnerQuestion {
    pub owner: String,
    pub url: String,
}

impl AlertRecord {
    /// A record of incident `id` of key `key` with nothing in it yet: open,
    /// severity high, no events, no placements. For tests and examples.
    pub fn skeleton(id: i64, key: &str) -> AlertRecord {
        let epoch = DateTime::<Utc>::default();
        AlertRecord {
            schema: SCHEMA.into(),
            kind: "incident".into(),
            delivery_id: None,
            alert: None,
            incident: IncidentInfo {
                id,
                token_id: 1,
                access_key_id: key.into(),
                state: IncidentState::Open,
                kind: IncidentKind::Use,
                first_seen: epoch,
                last_seen: epoch,
                event_count: 0,
                opened_at: epoch,
                updated_at: epoch,
                token_retired: false,
                severity: Severity::High,
                url: None,
            },
            owners: Vec::new(),
            token: TokenInfo {
                id: 1,
                access_key_id: key.into(),
                kind: TokenKind::AwsMinted,
                state: TokenState::Active,
                iam_user_name: None,
                labels: BTreeMap::new(),
                memo: String::new(),
            },
            placement: format!("Key {key} has no recorded placement."),
            placements: Vec::new(),
            placed: Vec::new(),
            may_have_leaked_at: Vec::new(),
            custody: Vec::new(),
            activity: Activity::default(),
            events: Vec::new(),
            history: Vec::new(),
            runbook: String::new(),
            owner_questions: Vec::new(),
            reads: Vec::new(),
            read_before: None,
            context: None,
            awaiting_approval: Vec::new(),
        }
    }

    /// The kind of alert: the outbox entry's, else the record's own.
    pub fn alert_kind(&self) -> &str {
        self.alert.as_ref().map(|a| a.kind.as_str()).unwrap_or(&self.kind)
    }

    /// The latest response-action line of the history ("action run #3:
    /// quarantine failed on …"), what an `incident.action` alert is about.
    pub fn last_action(&self) -> Option<&str> {
        self.history.iter().rev().find(|h| h.kind == "action").and_then(|h| h.note.as_deref())
    }

    /// The detection delay of the newest event.
    pub fn last_delay(&self) -> Option<i64> {
        self.events.last().and_then(|e| e.detection_delay_seconds)
    }
}

/// A clearly marked test alert: no key was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TestAlert {
    /// Always `honeytrail.alert.v1`.
    pub schema: String,
    /// Always `true`.
    pub test: bool,
    /// Always `test`.
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub channel: String,
    pub sent_at: DateTime<Utc>,
    pub requested_by: String,
}

impl TestAlert {
    pub fn new(channel: &str, requested_by: &str, sent_at: DateTime<Utc>) -> TestAlert {
        TestAlert {
            schema: SCHEMA.into(),
            test: true,
            kind: "test".into(),
            message: "This is a test alert from honeytrail. No honey key was used.".into(),
            channel: channel.into(),
            sent_at,
            requested_by: requested_by.into(),
        }
    }
}

/// What a channel sends: an incident's record, or a test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Alert {
    Test(TestAlert),
    Incident(Box<AlertRecord>),
}

impl Alert {
    pub fn is_test(&self) -> bool {
        matches!(self, Alert::Test(_))
    }

    /// The incident record, unless this is a test.
    pub fn record(&self) -> Option<&AlertRecord> {
        match self {
            Alert::Incident(r) => Some(r),
            Alert::Test(_) => None,
        }
    }
}

/// The JSON Schema of what webhooks and JSON-lines files receive, as
/// published in `docs/alert-schema.json`.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Alert);
    let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialise");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_schema_is_the_generated_one() {
        let published = include_str!("../../../docs/alert-schema.json");
        let generated = schema_json();
        if published != generated {
            // Regenerate with: HONEYTRAIL_WRITE_SCHEMA=1 cargo test -p honeytrail-core the_published_schema
            if std::env::var_os("HONEYTRAIL_WRITE_SCHEMA").is_some() {
                std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/alert-schema.json"), &generated)
                    .unwrap();
            }
            panic!("docs/alert-schema.json differs from the AlertRecord types; regenerate it (see this test)");
        }
    }

    #[test]
    fn a_test_alert_reads_back_as_a_test() {
        let t = Alert::Test(TestAlert::new("soc", "alice", DateTime::from_timestamp(0, 0).unwrap()));
        let back: Alert = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert!(back.is_test());
    }
}

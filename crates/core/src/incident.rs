//! Incidents: the events of one token close together in time, handled as one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where an incident is in its handling.
///
/// `open → acknowledged → false-positive | confirmed → resolved`; steps may be
/// skipped forward (an obvious intrusion goes straight to confirmed), never back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentState {
    Open,
    Acknowledged,
    FalsePositive,
    Confirmed,
    Resolved,
}

impl IncidentState {
    pub const ALL: [IncidentState; 5] = [
        IncidentState::Open,
        IncidentState::Acknowledged,
        IncidentState::FalsePositive,
        IncidentState::Confirmed,
        IncidentState::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::FalsePositive => "false-positive",
            IncidentState::Confirmed => "confirmed",
            IncidentState::Resolved => "resolved",
        }
    }

    fn rank(self) -> u8 {
        match self {
            IncidentState::Open => 0,
            IncidentState::Acknowledged => 1,
            IncidentState::FalsePositive | IncidentState::Confirmed => 2,
            IncidentState::Resolved => 3,
        }
    }

    /// Checks a state change, explaining a refusal.
    pub fn check_move(self, next: IncidentState) -> Result<(), crate::Invalid> {
        if self == next {
            return Err(crate::Invalid(format!("the incident is already {self}")));
        }
        if self == IncidentState::Resolved {
            return Err(crate::Invalid::new("the incident is resolved; a new use of the key opens a new incident"));
        }
        if next.rank() <= self.rank() {
            return Err(crate::Invalid(format!("an incident that is {self} cannot go back to {next}")));
        }
        Ok(())
    }

    /// Whether new events of the token join this incident. A resolved or
    /// false-positive incident never swallows new activity: that opens a new one.
    pub fn accepts_events(self) -> bool {
        IncidentState::ACCEPTING_EVENTS.contains(&self)
    }

    /// The states whose incidents new events of their token join; the
    /// store builds its SQL from this list.
    pub const ACCEPTING_EVENTS: [IncidentState; 3] =
        [IncidentState::Open, IncidentState::Acknowledged, IncidentState::Confirmed];

    /// `'open', 'acknowledged', 'confirmed'`: [`Self::ACCEPTING_EVENTS`] as an
    /// SQL list (the names are fixed words, never user input).
    pub fn accepting_events_sql() -> String {
        IncidentState::ACCEPTING_EVENTS.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
    }
}

/// The most characters a note on an incident may have.
pub const NOTE_MAX_CHARS: usize = 5000;

/// A note as it is kept: trimmed, not empty, at most [`NOTE_MAX_CHARS`].
pub fn check_note(text: &str) -> Result<&str, crate::Invalid> {
    let text = text.trim();
    if text.is_empty() {
        return Err(crate::Invalid::new("the note is empty"));
    }
    if text.chars().count() > NOTE_MAX_CHARS {
        return Err(crate::Invalid(format!("the note is longer than {NOTE_MAX_CHARS} characters")));
    }
    Ok(text)
}

/// How urgent an incident is. Routing rules can ask for a minimum.
///
/// A use of a honey key is an intrusion until shown otherwise, so the base is
/// `high`; a token label `severity=<level>` sets another base (a key left in a
/// test lab may be `medium`), and a confirmed intrusion is always `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity of an incident of `kind` of a token with `labels` in `state`.
    /// A report of a found key is `low`: it is not an intrusion.
    pub fn of(labels: &crate::model::Labels, state: IncidentState, kind: IncidentKind) -> Severity {
        Severity::base(labels.get("severity").map(String::as_str), state, kind)
    }

    /// [`Severity::of`], given only the token's `severity` label.
    pub fn base(label: Option<&str>, state: IncidentState, kind: IncidentKind) -> Severity {
        if state == IncidentState::Confirmed {
            return Severity::Critical;
        }
        match kind {
            IncidentKind::Report | IncidentKind::Stale | IncidentKind::Touched => return Severity::Low,
            IncidentKind::Tampered | IncidentKind::Enrolment => return Severity::Medium,
            _ => {}
        }
        label.and_then(|v| v.parse().ok()).unwrap_or(Severity::High)
    }

    /// One step up (critical stays critical).
    pub fn raised(self) -> Severity {
        match self {
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = crate::Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| crate::Invalid(format!("unknown severity {s:?}; use low, medium, high or critical")))
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentState {
    type Err = crate::Invalid;
    fn from_str(s: &str) -> Result<Self, crate::Invalid> {
        IncidentState::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| {
            crate::Invalid(format!("unknown incident state {s:?}; expected one of: open, acknowledged, false-positive, confirmed, resolved"))
        })
    }
}

/// One use of a honey token, as recorded by CloudTrail (or a safety-net poll).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEvent {
    /// CloudTrail's `eventID`: the same event seen twice is stored once.
    pub event_id: String,
    pub token_id: i64,
    /// When the call was made (CloudTrail's `eventTime`), not when we saw it.
    pub event_time: DateTime<Utc>,
    pub event_source: String,
    pub event_name: String,
    pub aws_region: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub access_key_id: Option<String>,
    pub principal_arn: Option<String>,
    /// The VPC endpoint the call came through (`vpcEndpointId`): its
    /// `source_ip` is then a private address the caller may have chosen.
    #[serde(default)]
    pub vpc_endpoint: Option<String>,
    /// The account that owns that endpoint (`vpcEndpointAccountId`).
    #[serde(default)]
    pub vpc_endpoint_account: Option<String>,
    /// How honeytrail learned of it: `cloudtrail-file`, `s3`, `sqs`, …
    pub source: String,
    /// Where exactly: a file path, an S3 URI, a message ID.
    pub origin: String,
    /// The record as CloudTrail wrote it.
    pub raw: String,
}

/// How long after the last event a new one still joins the same incident.
pub const DEFAULT_WINDOW: Duration = Duration::hours(1);

/// Whether an event at `event_time` joins an incident spanning `first..=last`.
pub fn joins(first: DateTime<Utc>, last: DateTime<Utc>, event_time: DateTime<Utc>, window: Duration) -> bool {
    event_time >= first - window && event_time <= last + window
}

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentState::*;

    #[test]
    fn states_move_forward_only() {
        assert!(Open.check_move(Acknowledged).is_ok());
        assert!(Open.check_move(Confirmed).is_ok());
        assert!(Acknowledged.check_move(FalsePositive).is_ok());
        assert!(FalsePositive.check_move(Resolved).is_ok());
        assert!(Confirmed.check_move(FalsePositive).is_err());
        assert!(Acknowledged.check_move(Open).is_err());
        assert!(Resolved.check_move(Confirmed).unwrap_err().contains("resolved"));
        assert!(Open.check_move(Open).unwrap_err().contains("already open"));
    }

    #[test]
    fn closed_incidents_take_no_new_events() {
        assert!(Open.accepts_events() && Confirmed.accepts_events());
        assert!(!Resolved.accepts_events() && !FalsePositive.accepts_events());
    }

    #[test]
    fn window_joins_events_on_both_sides() {
        let t = |m: i64| DateTime::from_timestamp(1_700_000_000 + m * 60, 0).unwrap();
        let w = Duration::minutes(30);
        assert!(joins(t(0), t(10), t(40), w));
        assert!(!joins(t(0), t(10), t(41), w));
        assert!(joins(t(0), t(10), t(-30), w), "late-delivered earlier events join too");
    }

    #[test]
    fn states_parse() {
        for s in IncidentState::ALL {
            assert_eq!(s.as_str().parse::<IncidentState>().unwrap(), s);
        }
        assert!("closed".parse::<IncidentState>().is_err());
    }
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: i64,
    pub token_id: i64,
    pub access_key_id: String,
    pub state: IncidentState,
    /// Event time of the first and last event.
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub event_count: i64,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The token was already retired when the incident opened: a key that
    /// should be dead is in someone's hands.
    pub token_retired: bool,
    pub kind: IncidentKind,
    /// How urgent it is: [`Severity::of`] the token's labels, state and kind,
    /// one step higher when its context raised it (an attacker tool named,
    /// bait hidden from its agent) the last time its record was built.
    pub severity: Severity,
}

/// What an incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentKind {
    /// The key was used (CloudTrail, the safety net, canarytokens).
    #[default]
    Use,
    /// Someone found the key and reported it ("what is this?"): not an intrusion.
    Report,
    /// AWS found the key published (an AWS Health `AWS_RISK_CREDENTIALS_EXPOSED`
    /// event) and quarantined it: whoever reads that place has the key.
    Exposed,
    /// An enrolled host's agent found its bait changed or gone: someone on
    /// that host touched it.
    Tampered,
    /// An enrolled host stopped sending heartbeats: its bait is no longer
    /// attested.
    Stale,
    /// An enrolment secret was used in a way its creator did not expect
    /// (beyond the expected number of hosts, from an address outside its
    /// networks, used up, with a forged or reused EC2 identity): it may
    /// have leaked from a host it enrolled.
    Enrolment,
    /// A bait file was read on its host and the key was not used within
    /// `evidence.touch_window`: someone looked, and may come back.
    Touched,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Use => "use",
            IncidentKind::Report => "report",
            IncidentKind::Exposed => "exposed",
            IncidentKind::Tampered => "tampered",
            IncidentKind::Stale => "stale",
            IncidentKind::Enrolment => "enrolment",
            IncidentKind::Touched => "touched",
        }
    }

    /// How people read it: "use", "report", "exposed publicly".
    pub fn describe(self) -> &'static str {
        match self {
            IncidentKind::Use => "use",
            IncidentKind::Report => "report",
            IncidentKind::Exposed => "exposed publicly",
            IncidentKind::Tampered => "bait changed or removed",
            IncidentKind::Stale => "host silent",
            IncidentKind::Enrolment => "unexpected enrolment",
            IncidentKind::Touched => "bait touched",
        }
    }

    /// The headline of an opened incident about a host rather than a use
    /// of the key (the fleet's kinds); `None` for the others.
    pub fn fleet_headline(self, key: &str) -> Option<String> {
        match self {
            IncidentKind::Tampered => Some(format!("Bait holding honey key {key} was changed or removed on its host")),
            IncidentKind::Stale => Some(format!("The host holding honey key {key} stopped reporting")),
            IncidentKind::Enrolment => {
                Some(format!("An enrolment secret was used unexpectedly (honey key {key} went out through it)"))
            }
            IncidentKind::Touched => {
                Some(format!("Bait holding honey key {key} was read on its host (the key is unused so far)"))
            }
            _ => None,
        }
    }

    pub fn parse(raw: &str) -> Option<IncidentKind> {
        match raw {
            "use" => Some(IncidentKind::Use),
            "report" => Some(IncidentKind::Report),
            "exposed" => Some(IncidentKind::Exposed),
            "tampered" => Some(IncidentKind::Tampered),
            "stale" => Some(IncidentKind::Stale),
            "enrolment" => Some(IncidentKind::Enrolment),
            "touched" => Some(IncidentKind::Touched),
            _ => None,
        }
    }
}

/// The event name of AWS's own finding that a key was published.
pub const EXPOSED_EVENT: &str = "AWS_RISK_CREDENTIALS_EXPOSED";
/// The event source honeytrail gives AWS Health findings.
pub const HEALTH_SOURCE: &str = "health.amazonaws.com";

/// The event source of what enrolled hosts' agents report.
pub const FLEET_SOURCE: &str = "fleet";
/// A host's agent found the bait entry changed.
pub const BAIT_ALTERED_EVENT: &str = "BaitAltered";
/// A host's agent found the bait entry or file gone.
pub const BAIT_MISSING_EVENT: &str = "BaitMissing";
/// A host's agent found something at the bait's path it will not read (a
/// link another user planted, a FIFO or device, extra hard links, a file
/// too large or not text): the bait was replaced to hide a change.
pub const BAIT_UNREADABLE_EVENT: &str = "BaitUnreadable";
/// A host's agent would not write bait to a path the template names: what
/// it found there (a planted link, a hard-linked file) is someone's doing.
pub const BAIT_REFUSED_EVENT: &str = "BaitPathRefused";
/// An agent sent more reads of its bait than its quota allows.
pub const EVIDENCE_FLOOD_EVENT: &str = "EvidenceFlood";
/// A host sent no heartbeat for longer than `fleet.stale_after`.
pub const HOST_SILENT_EVENT: &str = "HostSilent";
/// A host enrolled beyond the number expected of its enrolment secret.
pub const ENROLMENT_UNEXPECTED_EVENT: &str = "UnexpectedEnrolment";
/// An enrolment with a known secret was refused (used up, expired,
/// revoked, from outside its networks, a bad or reused EC2 identity).
pub const ENROLMENT_REFUSED_EVENT: &str = "EnrolmentRefused";
/// A bait file was read and its key not used within `evidence.touch_window`.
pub const BAIT_READ_EVENT: &str = "BaitRead";

impl TokenEvent {
    /// The kind of incident this event belongs to: AWS Health's exposure
    /// finding and the fleet's reports open incidents of their own kinds;
    /// every other event is a use.
    pub fn incident_kind(&self) -> IncidentKind {
        match (self.event_source.as_str(), self.event_name.as_str()) {
            (HEALTH_SOURCE, EXPOSED_EVENT) => IncidentKind::Exposed,
            (
                FLEET_SOURCE,
                BAIT_ALTERED_EVENT
                | BAIT_MISSING_EVENT
                | BAIT_UNREADABLE_EVENT
                | BAIT_REFUSED_EVENT
                | EVIDENCE_FLOOD_EVENT,
            ) => IncidentKind::Tampered,
            (FLEET_SOURCE, HOST_SILENT_EVENT) => IncidentKind::Stale,
            (FLEET_SOURCE, ENROLMENT_UNEXPECTED_EVENT | ENROLMENT_REFUSED_EVENT) => IncidentKind::Enrolment,
            (FLEET_SOURCE, BAIT_READ_EVENT) => IncidentKind::Touched,
            _ => IncidentKind::Use,
        }
    }
}

/// One line of an incident's history: opened, a state change, a note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IncidentLogEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub from_state: Option<IncidentState>,
    pub to_state: Option<IncidentState>,
    pub note: Option<String>,
}

/// At most this many values of each [`Activity`] list: an intruder can make
/// every user agent different, and a record must stay a size a channel,
/// a SIEM and a browser can take.
pub const ACTIVITY_MAX: usize = 100;

/// What the intruder did, at a glance: distinct values, most frequent first,
/// at most [`ACTIVITY_MAX`] of each; `distinct` says how many there are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Activity {
    pub apis: Vec<String>,
    pub source_ips: Vec<String>,
    pub user_agents: Vec<String>,
    pub regions: Vec<String>,
    pub error_codes: Vec<String>,
    /// How many distinct values each list has in all (the lists hold the
    /// most frequent of them).
    #[serde(default)]
    pub distinct: ActivityCounts,
    /// Calls that came through a VPC endpoint: their source addresses are
    /// private addresses the caller may have chosen (most frequent first,
    /// at most [`ACTIVITY_MAX`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointUse>,
}

/// A source address seen through a VPC endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EndpointUse {
    pub address: Option<String>,
    /// `vpce-…`.
    pub endpoint: String,
    /// The account that owns the endpoint, when CloudTrail says.
    pub account: Option<String>,
}

/// The [`EndpointUse`]s of `(address, endpoint, account, count)` rows, most
/// frequent first, at most [`ACTIVITY_MAX`].
pub fn endpoint_uses(mut rows: Vec<(EndpointUse, u64)>) -> Vec<EndpointUse> {
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| (&a.0.endpoint, &a.0.address).cmp(&(&b.0.endpoint, &b.0.address))));
    rows.into_iter().take(ACTIVITY_MAX).map(|(u, _)| u).collect()
}

/// The number of distinct values of each [`Activity`] list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActivityCounts {
    pub apis: usize,
    pub source_ips: usize,
    pub user_agents: usize,
    pub regions: usize,
    pub error_codes: usize,
}

/// The most frequent [`ACTIVITY_MAX`] of `counts` (value, how often),
/// most frequent first and ties in byte order, and how many values there
/// were.
pub fn ranked<S: AsRef<str>>(counts: impl IntoIterator<Item = (S, u64)>) -> (Vec<String>, usize) {
    let mut counts: Vec<(S, u64)> = counts.into_iter().collect();
    let total = counts.len();
    counts.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_ref().cmp(b.0.as_ref())));
    (counts.into_iter().take(ACTIVITY_MAX).map(|(s, _)| s.as_ref().to_string()).collect(), total)
}

impl Activity {
    /// The activity from each list's value counts (what a database's
    /// `GROUP BY` gives), in the order apis, source IPs, user agents,
    /// regions, error codes.
    pub fn from_counts<S: AsRef<str>>(lists: [Vec<(S, u64)>; 5]) -> Activity {
        let [apis, ips, agents, regions, errors] = lists.map(ranked);
        Activity {
            distinct: ActivityCounts {
                apis: apis.1,
                source_ips: ips.1,
                user_agents: agents.1,
                regions: regions.1,
                error_codes: errors.1,
            },
            apis: apis.0,
            source_ips: ips.0,
            user_agents: agents.0,
            regions: regions.0,
            error_codes: errors.0,
            endpoints: Vec::new(),
        }
    }
}

/// The activity of `events`, counted in maps: one pass, whatever the number
/// of distinct values.
pub fn activity(events: &[TokenEvent]) -> Activity {
    fn count<'a>(values: impl Iterator<Item = &'a str>) -> Vec<(&'a str, u64)> {
        let mut counts: std::collections::HashMap<&'a str, u64> = std::collections::HashMap::new();
        for v in values {
            *counts.entry(v).or_default() += 1;
        }
        counts.into_iter().collect()
    }
    let mut activity = Activity::from_counts([
        count(events.iter().map(|e| e.event_name.as_str())),
        count(events.iter().filter_map(|e| e.source_ip.as_deref())),
        count(events.iter().filter_map(|e| e.user_agent.as_deref())),
        count(events.iter().filter_map(|e| e.aws_region.as_deref())),
        count(events.iter().filter_map(|e| e.error_code.as_deref())),
    ]);
    let mut endpoints: std::collections::HashMap<(Option<&str>, &str, Option<&str>), u64> = Default::default();
    for e in events {
        if let Some(endpoint) = e.vpc_endpoint.as_deref() {
            *endpoints.entry((e.source_ip.as_deref(), endpoint, e.vpc_endpoint_account.as_deref())).or_default() += 1;
        }
    }
    activity.endpoints = endpoint_uses(
        endpoints
            .into_iter()
            .map(|((address, endpoint, account), n)| {
                let owned = |v: Option<&str>| v.map(str::to_string);
                (EndpointUse { address: owned(address), endpoint: endpoint.to_string(), account: owned(account) }, n)
            })
            .collect(),
    );
    activity
}

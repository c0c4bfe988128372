//! Where alerts go, as records: channels (their configuration stays sealed
//! in the store and is never part of these), the deliveries of each alert
//! to each channel, and runbooks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A channel as listed: its configuration (URLs, tokens, passwords) stays
/// sealed and is never shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// One alert of an incident to one channel: its state and attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub alert_id: i64,
    pub alert_kind: String,
    pub incident_id: i64,
    pub channel_id: i64,
    pub channel: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A runbook: what responders do, rendered into every alert of the tokens
/// its selector picks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runbook {
    pub name: String,
    /// `label:NAME[=VALUE]`, `format:FORMAT` or `default`.
    pub selector: String,
    pub template: String,
}

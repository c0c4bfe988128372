//! One module per channel kind, and [`ChannelConfig`], the one interface the
//! dispatcher uses for all of them.

pub mod email;
pub mod jira;
pub mod jsonl;
pub mod pagerduty;
pub mod slack;
pub mod syslog;
pub mod teams;
pub mod webhook;

use honeytrail_core::record::Alert;

use crate::retry::{Failure, Retry};
use crate::Sender;

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// A channel's configuration, by kind. Stored sealed, as JSON.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelConfig {
    Webhook(webhook::WebhookConfig),
    JsonLines(jsonl::JsonLinesConfig),
    Slack(slack::SlackConfig),
    Teams(teams::TeamsConfig),
    PagerDuty(pagerduty::PagerDutyConfig),
    Syslog(syslog::SyslogConfig),
    Jira(jira::JiraConfig),
    Email(email::EmailConfig),
}

/// One alert on its way out.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The same across retries.
    pub delivery_id: &'a str,
    /// The alert: an incident's `honeytrail.alert.v1` record, or a test.
    pub alert: &'a Alert,
    /// What this channel created for the incident before (a Jira issue key).
    pub reference: Option<&'a str>,
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelConfig({})", self.kind())
    }
}

impl ChannelConfig {
    pub const KINDS: [&'static str; 8] = ["webhook", "jsonl", "slack", "teams", "pagerduty", "syslog", "jira", "email"];

    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Webhook(_) => "webhook",
            ChannelConfig::JsonLines(_) => "jsonl",
            ChannelConfig::Slack(_) => "slack",
            ChannelConfig::Teams(_) => "teams",
            ChannelConfig::PagerDuty(_) => "pagerduty",
            ChannelConfig::Syslog(_) => "syslog",
            ChannelConfig::Jira(_) => "jira",
            ChannelConfig::Email(_) => "email",
        }
    }

    /// Parses a stored configuration of `kind`.
    pub fn parse(kind: &str, json: &str) -> Result<ChannelConfig, Failure> {
        let damaged =
            |_| Failure { message: format!("the {kind} channel configuration is damaged"), retry: Retry::Never };
        match kind {
            "webhook" => serde_json::from_str(json).map(ChannelConfig::Webhook).map_err(damaged),
            "jsonl" => serde_json::from_str(json).map(ChannelConfig::JsonLines).map_err(damaged),
            "slack" => serde_json::from_str(json).map(ChannelConfig::Slack).map_err(damaged),
            "teams" => serde_json::from_str(json).map(ChannelConfig::Teams).map_err(damaged),
            "pagerduty" => serde_json::from_str(json).map(ChannelConfig::PagerDuty).map_err(damaged),
            "syslog" => serde_json::from_str(json).map(ChannelConfig::Syslog).map_err(damaged),
            "jira" => serde_json::from_str(json).map(ChannelConfig::Jira).map_err(damaged),
            "email" => serde_json::from_str(json).map(ChannelConfig::Email).map_err(damaged),
            other => Err(Failure {
                message: format!("unknown channel kind {other:?}; known: {}", Self::KINDS.join(", ")),
                retry: Retry::Never,
            }),
        }
    }

    /// The configuration as stored.
    pub fn to_json(&self) -> String {
        match self {
            ChannelConfig::Webhook(c) => serde_json::to_string(c),
            ChannelConfig::JsonLines(c) => serde_json::to_string(c),
            ChannelConfig::Slack(c) => serde_json::to_string(c),
            ChannelConfig::Teams(c) => serde_json::to_string(c),
            ChannelConfig::PagerDuty(c) => serde_json::to_string(c),
            ChannelConfig::Syslog(c) => serde_json::to_string(c),
            ChannelConfig::Jira(c) => serde_json::to_string(c),
            ChannelConfig::Email(c) => serde_json::to_string(c),
        }
        .expect("channel configurations serialise")
    }

    /// The URL an HTTP channel sends to (checked against the target policy).
    pub fn http_target(&self) -> Option<&str> {
        match self {
            ChannelConfig::Webhook(c) => Some(&c.url),
            ChannelConfig::Slack(c) => Some(&c.url),
            ChannelConfig::Teams(c) => Some(&c.url),
            ChannelConfig::PagerDuty(c) => Some(&c.endpoint),
            ChannelConfig::Jira(c) => Some(&c.base_url),
            ChannelConfig::JsonLines(_) | ChannelConfig::Syslog(_) | ChannelConfig::Email(_) => None,
        }
    }

    /// Whether alerts through this channel want "was this you?" links for
    /// placement owners.
    pub fn asks_owners(&self) -> bool {
        matches!(self, ChannelConfig::Email(c) if c.ask_owner)
    }

    /// Sends one alert. Returns what the channel created that later alerts
    /// of the incident refer to (a Jira issue key), if anything.
    pub async fn deliver(&self, sender: &Sender, out: &Outgoing<'_>) -> Result<Option<String>, Failure> {
        let alert = out.alert;
        match self {
            ChannelConfig::Webhook(c) => webhook::deliver(sender, c, out.delivery_id, &c.format.encode(alert)).await,
            ChannelConfig::JsonLines(c) => jsonl::deliver(c, &sender.files, &c.format.encode(alert)),
            ChannelConfig::Slack(c) => slack::deliver(sender, c, alert).await,
            ChannelConfig::Teams(c) => teams::deliver(sender, c, alert).await,
            ChannelConfig::PagerDuty(c) => pagerduty::deliver(sender, c, alert).await,
            ChannelConfig::Syslog(c) => syslog::deliver(sender, c, alert, &hostname()).await,
            ChannelConfig::Email(c) => email::deliver(sender, c, alert, &hostname()).await,
            ChannelConfig::Jira(c) => return jira::deliver(sender, c, alert, out.reference).await,
        }
        .map(|()| None)
    }
}

//! One module per channel kind, each implementing [`ChannelKind`] (its
//! settings and how to read them) and [`Channel`] (checking and sending),
//! and [`KINDS`], the registry everything else reads: the dispatcher, the
//! operations, and the command line, API and web UI that offer the kinds.
//!
//! To add a channel kind: one file here with a `…Config` implementing
//! [`Channel`] and a unit struct implementing [`ChannelKind`], and its line
//! in [`KINDS`]. Nothing else names a kind.

pub mod email;
pub mod jira;
pub mod jsonl;
pub mod pagerduty;
pub mod slack;
pub mod syslog;
pub mod teams;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use honeytrail_core::channel::KindSpec;
use honeytrail_core::record::Alert;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::retry::{Failure, Retry};
use crate::Sender;

/// Every channel kind, in the order the front doors offer them.
pub const KINDS: &[&dyn ChannelKind] = &[
    &webhook::Kind,
    &jsonl::Kind,
    &slack::Kind,
    &teams::Kind,
    &pagerduty::Kind,
    &syslog::Kind,
    &jira::Kind,
    &email::Kind,
];

/// A future a channel returns; channels are used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A kind of channel: its settings, and how a configuration of it is read.
pub trait ChannelKind: Sync {
    fn spec(&self) -> &'static KindSpec;

    /// Reads a configuration: as the API gives it, as the command line and
    /// the web form build it ([`honeytrail_core::channel::config_json`]),
    /// or as stored. The message names what is wrong.
    fn read(&self, config: Value) -> Result<Arc<dyn Channel>, String>;
}

/// A configured channel.
pub trait Channel: Send + Sync {
    fn kind(&self) -> &'static str;

    /// The configuration as stored (sealed): it holds the channel's secrets.
    fn to_json(&self) -> String;

    /// Where it sends, with no secret in it ("syslog to 10.0.0.5:514").
    fn summary(&self) -> String;

    /// Checks the channel before it is stored: its target against the
    /// allowlist (never a link-local or metadata address, also after DNS),
    /// its addresses and files.
    fn check<'a>(&'a self, sender: &'a Sender) -> BoxFuture<'a, Result<(), Failure>>;

    /// Whether alerts through it want "was this you?" links for owners.
    fn asks_owners(&self) -> bool {
        false
    }

    /// Sends one alert. Returns what the channel created that later alerts
    /// of the incident refer to (a Jira issue key), if anything.
    fn deliver<'a>(
        &'a self,
        sender: &'a Sender,
        out: &'a Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Option<String>, Failure>>;
}

/// The kind of this name.
pub fn kind(name: &str) -> Option<&'static dyn ChannelKind> {
    KINDS.iter().copied().find(|k| k.spec().name == name)
}

/// The settings of every kind, for the front doors to offer.
pub fn specs() -> Vec<&'static KindSpec> {
    KINDS.iter().map(|k| k.spec()).collect()
}

/// Reads a kind's configuration type from JSON, naming the kind on failure.
pub(crate) fn read_json<T: DeserializeOwned>(kind: &str, config: Value) -> Result<T, String> {
    serde_json::from_value(config).map_err(|e| format!("the {kind} channel's settings do not fit: {e}"))
}

/// The configuration JSON of a kind's settings.
pub(crate) fn stored<T: serde::Serialize>(config: &T) -> String {
    serde_json::to_string(config).expect("channel configurations serialise")
}

/// Checks an HTTP channel's target before it is stored.
pub(crate) fn check_http<'a>(url: &'a str, sender: &'a Sender) -> BoxFuture<'a, Result<(), Failure>> {
    Box::pin(webhook::check_target(url, &sender.allowed_hosts))
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// A channel's configuration, whatever its kind. Stored sealed, as JSON.
#[derive(Clone)]
pub struct ChannelConfig(Arc<dyn Channel>);

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

fn unknown(kind: &str) -> Failure {
    let known: Vec<&str> = KINDS.iter().map(|k| k.spec().name).collect();
    Failure { message: format!("unknown channel kind {kind:?}; known: {}", known.join(", ")), retry: Retry::Never }
}

impl<C: Channel + 'static> From<C> for ChannelConfig {
    fn from(channel: C) -> ChannelConfig {
        ChannelConfig(Arc::new(channel))
    }
}

impl ChannelConfig {
    /// A configuration of `kind` as given (the API's JSON, or built from
    /// flags or a form); the message says what does not fit.
    pub fn read(kind: &str, config: Value) -> Result<ChannelConfig, Failure> {
        let k = self::kind(kind).ok_or_else(|| unknown(kind))?;
        k.read(config).map(ChannelConfig).map_err(|message| Failure { message, retry: Retry::Never })
    }

    /// Parses a stored configuration of `kind`.
    pub fn parse(kind: &str, json: &str) -> Result<ChannelConfig, Failure> {
        let k = self::kind(kind).ok_or_else(|| unknown(kind))?;
        let damaged =
            || Failure { message: format!("the {kind} channel configuration is damaged"), retry: Retry::Never };
        let value = serde_json::from_str(json).map_err(|_| damaged())?;
        k.read(value).map(ChannelConfig).map_err(|_| damaged())
    }

    pub fn kind(&self) -> &'static str {
        self.0.kind()
    }

    /// The configuration as stored.
    pub fn to_json(&self) -> String {
        self.0.to_json()
    }

    /// Where it sends, with no secret in it.
    pub fn summary(&self) -> String {
        self.0.summary()
    }

    /// Checks the channel before it is stored.
    pub async fn check(&self, sender: &Sender) -> Result<(), Failure> {
        self.0.check(sender).await
    }

    /// Whether alerts through this channel want "was this you?" links for
    /// placement owners.
    pub fn asks_owners(&self) -> bool {
        self.0.asks_owners()
    }

    /// Sends one alert. Returns what the channel created that later alerts
    /// of the incident refer to (a Jira issue key), if anything.
    pub async fn deliver(&self, sender: &Sender, out: &Outgoing<'_>) -> Result<Option<String>, Failure> {
        self.0.deliver(sender, out).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_registered_once_and_describes_its_settings() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.spec().name).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "a kind is registered twice");
        for k in KINDS {
            let spec = k.spec();
            assert!(!spec.summary.is_empty(), "{}", spec.name);
            let mut keys: Vec<&str> = spec.fields.iter().map(|f| f.key).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), spec.fields.len(), "{} repeats a setting", spec.name);
            assert!(spec.fields.iter().all(|f| !f.help.is_empty()), "{} has a setting without help", spec.name);
        }
        assert!(ChannelConfig::read("carrier-pigeon", Value::Null).unwrap_err().message.contains("known: webhook"));
    }
}

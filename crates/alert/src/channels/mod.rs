//! One module per channel kind, each with a `…Config` implementing
//! [`Configured`] (its settings, described, and how a configuration is
//! checked) and [`Channel`] (checking its target and sending); and
//! [`KINDS`], the registry everything else reads: the dispatcher, the
//! operations, and the command line, API and web UI that offer the kinds.
//!
//! To add a channel kind: one file here with its `…Config`, and its line in
//! [`KINDS`]. Nothing else names a kind.

/// The [`Channel`] of a kind that posts each alert to the one URL in its
/// field `$url`, with its module's `deliver(sender, config, alert)`.
macro_rules! posting_channel {
    ($config:ty, $summary:literal, $url:ident) => {
        impl $crate::channels::Channel for $config {
            fn summary(&self) -> String {
                $summary.into()
            }

            fn check<'a>(
                &'a self,
                sender: &'a $crate::Sender,
            ) -> $crate::channels::BoxFuture<'a, Result<(), $crate::retry::Failure>> {
                $crate::channels::check_http(&self.$url, sender)
            }

            fn deliver<'a>(
                &'a self,
                sender: &'a $crate::Sender,
                out: &'a $crate::channels::Outgoing<'a>,
            ) -> $crate::channels::BoxFuture<'a, Result<Option<String>, $crate::retry::Failure>> {
                Box::pin(async move { deliver(sender, self, out.alert).await.map(|()| None) })
            }
        }
    };
}

pub mod email;
pub mod jira;
pub mod jsonl;
pub mod pagerduty;
pub mod slack;
pub mod syslog;
pub mod teams;
pub mod webhook;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use honeytrail_core::channel::KindSpec;
use honeytrail_core::record::Alert;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::retry::{Failure, Retry};
use crate::Sender;

/// Every channel kind, in the order the front doors offer them.
pub const KINDS: &[&dyn ChannelKind] = &[
    &KindOf::<webhook::WebhookConfig>::NEW,
    &KindOf::<jsonl::JsonLinesConfig>::NEW,
    &KindOf::<slack::SlackConfig>::NEW,
    &KindOf::<teams::TeamsConfig>::NEW,
    &KindOf::<pagerduty::PagerDutyConfig>::NEW,
    &KindOf::<syslog::SyslogConfig>::NEW,
    &KindOf::<jira::JiraConfig>::NEW,
    &KindOf::<email::EmailConfig>::NEW,
];

/// A future a channel returns; channels are used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A kind of channel: its settings, and how a configuration of it is read.
pub trait ChannelKind: Sync {
    fn spec(&self) -> &'static KindSpec;

    /// Reads a configuration: as the API gives it, as the command line and
    /// the web form build it ([`honeytrail_core::channel::config_json`]),
    /// or as stored. The message names what is wrong.
    fn read(&self, config: Value) -> Result<ChannelConfig, String>;
}

/// A channel configuration that is one serde type: what each kind's file
/// implements.
pub trait Configured: Channel + Serialize + DeserializeOwned + 'static {
    /// The kind's settings, described for the front doors.
    const SPEC: &'static KindSpec;

    /// Fills in what depends on other settings, before the type is read.
    fn prepare(_config: &mut Value) {}

    /// Checks (and tidies) what the type alone cannot say.
    fn validate(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// The kind of a [`Configured`] type, as [`KINDS`] lists it.
pub struct KindOf<C>(PhantomData<fn() -> C>);

impl<C> KindOf<C> {
    pub const NEW: KindOf<C> = KindOf(PhantomData);
}

impl<C: Configured> ChannelKind for KindOf<C> {
    fn spec(&self) -> &'static KindSpec {
        C::SPEC
    }

    fn read(&self, mut config: Value) -> Result<ChannelConfig, String> {
        C::prepare(&mut config);
        let mut channel: C = serde_json::from_value(config)
            .map_err(|e| format!("the {} channel's settings do not fit: {e}", C::SPEC.name))?;
        channel.validate()?;
        Ok(ChannelConfig::from(channel))
    }
}

/// A configured channel.
pub trait Channel: Send + Sync {
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

/// Checks an HTTP channel's target before it is stored.
pub(crate) fn check_http<'a>(url: &'a str, sender: &'a Sender) -> BoxFuture<'a, Result<(), Failure>> {
    Box::pin(webhook::check_target(url, &sender.allowed_hosts))
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// A channel's configuration, whatever its kind: its kind's name, the
/// configuration as stored (sealed, as JSON: it holds the channel's
/// secrets), and the channel.
#[derive(Clone)]
pub struct ChannelConfig {
    kind: &'static str,
    stored: Arc<str>,
    channel: Arc<dyn Channel>,
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

fn unknown(kind: &str) -> Failure {
    let known: Vec<&str> = KINDS.iter().map(|k| k.spec().name).collect();
    Failure { message: format!("unknown channel kind {kind:?}; known: {}", known.join(", ")), retry: Retry::Never }
}

impl<C: Configured> From<C> for ChannelConfig {
    fn from(channel: C) -> ChannelConfig {
        let stored = serde_json::to_string(&channel).expect("channel configurations serialise");
        ChannelConfig { kind: C::SPEC.name, stored: stored.into(), channel: Arc::new(channel) }
    }
}

impl ChannelConfig {
    /// A configuration of `kind` as given (the API's JSON, or built from
    /// flags or a form); the message says what does not fit.
    pub fn read(kind: &str, config: Value) -> Result<ChannelConfig, Failure> {
        let k = self::kind(kind).ok_or_else(|| unknown(kind))?;
        k.read(config).map_err(|message| Failure { message, retry: Retry::Never })
    }

    /// Parses a stored configuration of `kind`.
    pub fn parse(kind: &str, json: &str) -> Result<ChannelConfig, Failure> {
        let k = self::kind(kind).ok_or_else(|| unknown(kind))?;
        let damaged =
            || Failure { message: format!("the {kind} channel configuration is damaged"), retry: Retry::Never };
        let value = serde_json::from_str(json).map_err(|_| damaged())?;
        k.read(value).map_err(|_| damaged())
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The configuration as stored.
    pub fn to_json(&self) -> String {
        self.stored.to_string()
    }

    /// Where it sends, with no secret in it.
    pub fn summary(&self) -> String {
        self.channel.summary()
    }

    /// Checks the channel before it is stored.
    pub async fn check(&self, sender: &Sender) -> Result<(), Failure> {
        self.channel.check(sender).await
    }

    /// Whether alerts through this channel want "was this you?" links for
    /// placement owners.
    pub fn asks_owners(&self) -> bool {
        self.channel.asks_owners()
    }

    /// Sends one alert. Returns what the channel created that later alerts
    /// of the incident refer to (a Jira issue key), if anything.
    pub async fn deliver(&self, sender: &Sender, out: &Outgoing<'_>) -> Result<Option<String>, Failure> {
        self.channel.deliver(sender, out).await
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

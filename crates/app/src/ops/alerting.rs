//! Alerting: channels, routes, runbooks, deliveries and test alerts.

use std::collections::BTreeMap;

use honeytrail_alert::ChannelConfig;
use honeytrail_core::access::Permission;
use honeytrail_core::channel::KindSpec;
use honeytrail_core::route::Route;
use honeytrail_core::Secret;
use honeytrail_store::StoredRunbook;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dispatch::{send_test_alert, Settings};
use crate::ops::tokens::{cursor_at, page_limit, page_of};
use crate::ops::Page;
use crate::{Actor, OpError, OpResult, Ops};
pub use honeytrail_core::alerting::{Channel, Delivery, Runbook};

fn check_delivery_state(state: &str) -> OpResult<()> {
    if ["pending", "delivered", "dead"].contains(&state) {
        Ok(())
    } else {
        Err(OpError::invalid(format!("unknown delivery state {state:?}; use pending, delivered or dead")))
    }
}

/// A channel to add: its name, its kind (one of [`Ops::channel_kinds`]) and
/// its settings as the kind describes them. The API takes it as its body;
/// the command line and the web form build `config` from the kind's
/// settings ([`honeytrail_core::channel::config_json`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRequest {
    pub name: String,
    pub kind: String,
    pub config: Value,
}

/// A channel just added, and where it sends (no secret in it).
#[derive(Debug, Clone, Serialize)]
pub struct AddedChannel {
    #[serde(flatten)]
    pub channel: Channel,
    pub summary: String,
}

/// A runbook to store under a name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookRequest {
    pub selector: String,
    pub template: String,
}

/// The stored runbooks, and the one shipped for tokens no runbook selects.
#[derive(Debug, Clone, Serialize)]
pub struct Runbooks {
    pub runbooks: Vec<Runbook>,
    pub default_shipped: &'static str,
}

/// How a test alert through each channel of a route went.
#[derive(Debug, Clone, Serialize)]
pub struct RouteTest {
    pub route: String,
    /// Channel name → `delivered` or what went wrong.
    pub channels: BTreeMap<String, String>,
}

/// Which channels a test alert goes through.
#[derive(Debug, Clone)]
pub enum TestTarget {
    Channel(String),
    Route(String),
    /// Every enabled channel.
    Enabled,
}

/// The Alerting page: channels, routes, runbooks and what is dead-lettered.
#[derive(Debug, Clone)]
pub struct AlertingOverview {
    pub channels: Vec<Channel>,
    pub routes: Vec<Route>,
    pub runbooks: Runbooks,
    pub dead: Page<Delivery>,
}

/// The kinds of channel there are, and what each is configured with: what
/// the command line, the API and the web UI offer.
pub fn channel_kinds() -> Vec<&'static KindSpec> {
    honeytrail_alert::channels::specs()
}

impl Ops {
    /// The kinds of channel there are ([`channel_kinds`]).
    pub fn channel_kinds(&self) -> Vec<&'static KindSpec> {
        channel_kinds()
    }

    /// Reads and checks a channel configuration of `kind` as it would be
    /// stored: its shape, its target (allowlist, no link-local or metadata
    /// addresses, also after DNS), its addresses and files.
    async fn checked_channel_config(&self, kind: &str, config: &Value) -> OpResult<ChannelConfig> {
        let config = ChannelConfig::read(kind, config.clone()).map_err(|f| {
            OpError::invalid(format!("{}; see docs/alerts.md for each kind's configuration", f.message))
        })?;
        let sender = Settings::from_config(&self.config).sender()?;
        config.check(&sender).await.map_err(|f| OpError::invalid(f.message))?;
        Ok(config)
    }

    pub async fn channels(&self, actor: &Actor) -> OpResult<Vec<Channel>> {
        actor.require(Permission::Read)?;
        Ok(self.store.channels().await?)
    }

    pub async fn channel(&self, actor: &Actor, name: &str) -> OpResult<Channel> {
        actor.require(Permission::Read)?;
        Ok(self.store.channel(name).await?)
    }

    /// Adds a channel after checking its configuration and its target.
    pub async fn add_channel(&self, actor: &Actor, r: &ChannelRequest) -> OpResult<AddedChannel> {
        actor.require(Permission::Administer)?;
        let config = self.checked_channel_config(&r.kind, &r.config).await?;
        let name = r.name.trim();
        let channel = self
            .audited(actor, "channel.create", name, Some(config.kind()))
            .add_channel(name, config.kind(), &Secret::new(config.to_json()))
            .await?;
        Ok(AddedChannel { channel, summary: config.summary() })
    }

    /// The Alerting page of a viewer, responder or admin.
    pub async fn alerting_overview(&self, actor: &Actor, cursor: &Option<String>) -> OpResult<AlertingOverview> {
        Ok(AlertingOverview {
            channels: self.channels(actor).await?,
            routes: self.routes(actor).await?,
            runbooks: self.runbooks(actor).await?,
            dead: self.delivery_page(actor, "dead", None, cursor).await?,
        })
    }

    /// Replaces a channel's configuration, enables or disables it.
    pub async fn update_channel(
        &self,
        actor: &Actor,
        name: &str,
        config: Option<&Value>,
        enabled: Option<bool>,
    ) -> OpResult<Channel> {
        actor.require(Permission::Administer)?;
        let channel = self.store.channel(name).await?;
        let sealed = match config {
            Some(v) => Some(Secret::new(self.checked_channel_config(&channel.kind, v).await?.to_json())),
            None => None,
        };
        let what = match (config.is_some(), enabled) {
            (true, Some(e)) => format!("configuration replaced, {}", if e { "enabled" } else { "disabled" }),
            (true, None) => "configuration replaced".to_string(),
            (false, Some(e)) => (if e { "enabled" } else { "disabled" }).to_string(),
            (false, None) => "unchanged".to_string(),
        };
        Ok(self
            .audited(actor, "channel.update", name, Some(&what))
            .update_channel(name, sealed.as_ref(), enabled)
            .await?)
    }

    /// Sends a clearly marked test alert through a channel now.
    pub async fn test_channel(&self, actor: &Actor, name: &str) -> OpResult<()> {
        actor.require(Permission::Respond)?;
        let channel = self.store.channel(name).await?;
        let settings = Settings::from_config(&self.config);
        let sender = settings.sender()?;
        let outcome = send_test_alert(&self.store, &sender, &channel, &actor.name).await;
        let detail = if outcome.is_ok() { "delivered" } else { "failed" };
        self.store.audit(&actor.name, "channel.test", name, Some(detail), Some(&actor.from)).await?;
        outcome.map(|_| ()).map_err(|f| OpError::upstream("channel_failed", f.message))
    }

    /// Sends a test alert through every channel of a route; one failure
    /// fails it, and every channel's outcome is named.
    pub async fn test_route(&self, actor: &Actor, name: &str) -> OpResult<RouteTest> {
        actor.require(Permission::Respond)?;
        let route = self.route(name).await?;
        let mut channels = BTreeMap::new();
        let mut failed = Vec::new();
        for channel in &route.channels {
            match self.test_channel(actor, channel).await {
                Ok(()) => {
                    channels.insert(channel.clone(), "delivered".to_string());
                }
                Err(e) => {
                    failed.push(format!("{channel}: {}", e.message));
                    channels.insert(channel.clone(), e.message);
                }
            }
        }
        if !failed.is_empty() {
            return Err(OpError::upstream("channel_failed", failed.join("; ")));
        }
        Ok(RouteTest { route: name.to_string(), channels })
    }

    async fn route(&self, name: &str) -> OpResult<Route> {
        self.store.routes().await?.into_iter().find(|r| r.name == name).ok_or_else(|| {
            OpError::new(crate::OpErrorKind::NotFound, "not_found", format!("no route named {name:?}"))
                .with_cli_hint("`honeytrail route list` shows them")
        })
    }

    /// Test alerts through a channel, a route's channels or every enabled
    /// channel, each channel's outcome named: `(channel, kind, Ok or why)`.
    /// Refused when there is no channel to test.
    pub async fn test_alerts(
        &self,
        actor: &Actor,
        target: &TestTarget,
    ) -> OpResult<Vec<(Channel, Result<(), String>)>> {
        actor.require(Permission::Respond)?;
        let chosen: Vec<Channel> = match target {
            TestTarget::Channel(name) => vec![self.channel(actor, name).await?],
            TestTarget::Route(name) => {
                let route = self.route(name).await?;
                self.channels(actor).await?.into_iter().filter(|c| route.channels.contains(&c.name)).collect()
            }
            TestTarget::Enabled => self.channels(actor).await?.into_iter().filter(|c| c.enabled).collect(),
        };
        if chosen.is_empty() {
            return Err(OpError::conflict("no_channel", "no channel to test")
                .with_cli_hint("add one with `honeytrail channel add`"));
        }
        let mut outcomes = Vec::new();
        for c in chosen {
            let outcome = self.test_channel(actor, &c.name).await.map_err(|e| e.message);
            outcomes.push((c, outcome));
        }
        Ok(outcomes)
    }

    pub async fn routes(&self, actor: &Actor) -> OpResult<Vec<Route>> {
        actor.require(Permission::Read)?;
        Ok(self.store.routes().await?)
    }

    pub async fn add_route(&self, actor: &Actor, r: &Route) -> OpResult<()> {
        actor.require(Permission::Administer)?;
        self.audited(actor, "route.create", &r.name, Some(&r.channels.join(", "))).add_route(r).await?;
        Ok(())
    }

    pub async fn remove_route(&self, actor: &Actor, name: &str) -> OpResult<()> {
        actor.require(Permission::Administer)?;
        self.audited(actor, "route.remove", name, None).remove_route(name).await?;
        Ok(())
    }

    pub async fn runbooks(&self, actor: &Actor) -> OpResult<Runbooks> {
        actor.require(Permission::Read)?;
        Ok(Runbooks {
            runbooks: self.store.runbooks().await?,
            default_shipped: honeytrail_alert::runbook::DEFAULT_TEMPLATE,
        })
    }

    /// Stores a runbook after checking its selector and that it compiles.
    pub async fn set_runbook(&self, actor: &Actor, name: &str, r: &RunbookRequest) -> OpResult<Runbook> {
        actor.require(Permission::Administer)?;
        let (selector, template) = (&r.selector, &r.template);
        honeytrail_alert::runbook::check_selector(selector.trim()).map_err(OpError::invalid)?;
        honeytrail_alert::runbook::check(template).map_err(OpError::invalid)?;
        let stored = StoredRunbook {
            name: name.trim().to_string(),
            selector: selector.trim().to_string(),
            template: template.replace("\r\n", "\n"),
        };
        self.audited(actor, "runbook.set", &stored.name, Some(&stored.selector)).set_runbook(&stored).await?;
        Ok(stored)
    }

    pub async fn remove_runbook(&self, actor: &Actor, name: &str) -> OpResult<()> {
        actor.require(Permission::Administer)?;
        self.audited(actor, "runbook.remove", name, None).remove_runbook(name).await?;
        Ok(())
    }

    pub async fn deliveries(&self, actor: &Actor, state: &str) -> OpResult<Vec<Delivery>> {
        actor.require(Permission::Read)?;
        check_delivery_state(state)?;
        Ok(self.store.deliveries(state).await?)
    }

    /// One page of the deliveries in `state`, newest first.
    pub async fn delivery_page(
        &self,
        actor: &Actor,
        state: &str,
        limit: Option<i64>,
        cursor: &Option<String>,
    ) -> OpResult<Page<Delivery>> {
        actor.require(Permission::Read)?;
        check_delivery_state(state)?;
        let limit = page_limit(limit)?;
        let before = cursor_at(cursor, 'd', |id| id.parse::<i64>().ok())?;
        let items = self.store.deliveries_page(state, before, limit + 1).await?;
        Ok(page_of(items, limit, |d| format!("d{}", d.id)))
    }

    /// Puts a dead-lettered delivery back in line.
    pub async fn retry_delivery(&self, actor: &Actor, id: i64) -> OpResult<Delivery> {
        actor.require(Permission::Respond)?;
        let d = self.audited(actor, "delivery.retry", &format!("delivery #{id}"), None).retry_delivery(id).await?;
        self.alert_queued();
        Ok(d)
    }

    /// The deliveries of one incident's alerts, for its timeline.
    pub(crate) async fn incident_deliveries(&self, id: i64) -> OpResult<Vec<Delivery>> {
        Ok(self.store.incident_deliveries(id).await?)
    }
}

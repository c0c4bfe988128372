//! Alerting: channels, routes, runbooks, deliveries and test alerts.

use honeytrail_alert::ChannelConfig;
use honeytrail_core::access::Permission;
use honeytrail_core::route::Route;
use honeytrail_core::Secret;
use honeytrail_store::{Channel, Delivery, StoredRunbook};
use serde_json::{json, Value};

use crate::dispatch::{send_test_alert, Settings};
use crate::ops::tokens::{cursor_at, page_limit, page_of};
use crate::ops::Page;
use crate::{Actor, OpError, OpResult, Ops};

fn check_delivery_state(state: &str) -> OpResult<()> {
    if ["pending", "delivered", "dead"].contains(&state) {
        Ok(())
    } else {
        Err(OpError::invalid(format!("unknown delivery state {state:?}; use pending, delivered or dead")))
    }
}

impl Ops {
    /// Checks a channel configuration of `kind` as it would be stored: its
    /// shape, its HTTP target (allowlist, no link-local or metadata
    /// addresses, also after DNS) and, for email, its addresses and TLS.
    pub async fn checked_channel_config(&self, kind: &str, config: &Value) -> OpResult<ChannelConfig> {
        let config = ChannelConfig::parse(kind, &config.to_string()).map_err(|f| {
            OpError::invalid(format!("{}; see docs/alerts.md for each kind's configuration", f.message))
        })?;
        self.check_channel(&config).await?;
        Ok(config)
    }

    async fn check_channel(&self, config: &ChannelConfig) -> OpResult<()> {
        if let Some(url) = config.http_target() {
            honeytrail_alert::channels::webhook::check_target(url, &self.config.alerts.allowed_hosts)
                .await
                .map_err(|f| OpError::invalid(f.message))?;
        }
        let allowlist = &self.config.alerts.allowed_hosts;
        match config {
            ChannelConfig::Email(e) => {
                honeytrail_alert::channels::email::check(e).map_err(OpError::invalid)?;
                honeytrail_alert::target::check_host(&e.host, allowlist, "SMTP host")
                    .map_err(|f| OpError::invalid(f.message))?;
            }
            ChannelConfig::Syslog(c) => {
                honeytrail_alert::channels::syslog::check(c, allowlist).map_err(|f| OpError::invalid(f.message))?;
            }
            ChannelConfig::JsonLines(c) => {
                let policy = Settings::from_config(&self.config).files;
                honeytrail_alert::channels::jsonl::confine(&c.path, &policy)
                    .map_err(|f| OpError::invalid(f.message))?;
            }
            _ => {}
        }
        Ok(())
    }

    pub async fn channels(&self, actor: &Actor) -> OpResult<Vec<Channel>> {
        actor.require(Permission::Read)?;
        Ok(self.store.channels().await?)
    }

    /// Adds a channel after checking its configuration (JSON, as the API
    /// takes it) and its target.
    pub async fn create_channel(&self, actor: &Actor, name: &str, kind: &str, config: &Value) -> OpResult<Channel> {
        actor.require(Permission::Administer)?;
        let config = self.checked_channel_config(kind, config).await?;
        self.add_channel(actor, name, &config).await
    }

    /// Adds a channel built by a front door (the command line builds the
    /// configuration from flags and standard input).
    pub async fn add_channel(&self, actor: &Actor, name: &str, config: &ChannelConfig) -> OpResult<Channel> {
        actor.require(Permission::Administer)?;
        self.check_channel(config).await?;
        let name = name.trim();
        Ok(self
            .audited(actor, "channel.create", name, Some(config.kind()))
            .add_channel(name, config.kind(), &Secret::new(config.to_json()))
            .await?)
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
    pub async fn test_route(&self, actor: &Actor, name: &str) -> OpResult<Value> {
        actor.require(Permission::Respond)?;
        let route = self.store.routes().await?.into_iter().find(|r| r.name == name).ok_or_else(|| {
            OpError::not_found(format!("route {name:?}")).with_cli_hint("`honeytrail route list` shows them")
        })?;
        let mut results = serde_json::Map::new();
        let mut failed = Vec::new();
        for channel in &route.channels {
            match self.test_channel(actor, channel).await {
                Ok(()) => {
                    results.insert(channel.clone(), json!("delivered"));
                }
                Err(e) => {
                    failed.push(format!("{channel}: {}", e.message));
                    results.insert(channel.clone(), json!(e.message));
                }
            }
        }
        if !failed.is_empty() {
            return Err(OpError::upstream("channel_failed", failed.join("; ")));
        }
        Ok(json!({"route": name, "channels": results}))
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

    pub async fn runbooks(&self, actor: &Actor) -> OpResult<Vec<StoredRunbook>> {
        actor.require(Permission::Read)?;
        Ok(self.store.runbooks().await?)
    }

    /// Stores a runbook after checking its selector and that it compiles.
    pub async fn set_runbook(
        &self,
        actor: &Actor,
        name: &str,
        selector: &str,
        template: &str,
    ) -> OpResult<StoredRunbook> {
        actor.require(Permission::Administer)?;
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
}

//! The alert dispatcher: fans new alerts out into one delivery per channel,
//! claims due deliveries under a lease, renders each alert's record once per
//! pass, sends, remembers what a channel created (a Jira issue), and records
//! the outcome with the retry policy of `honeytrail-alert`.
//!
//! **Invariant:** a delivery is marked done only after the receiver accepted
//! it; a dispatcher that dies mid-delivery loses nothing: its lease runs out
//! and the delivery is sent again (at least once).

use std::time::Duration as StdDuration;

use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use honeytrail_alert::retry::MAX_ATTEMPTS;
use honeytrail_alert::{backoff, ChannelConfig, Failure, Outgoing, Retry, Sender};
use honeytrail_core::record::{Alert, AlertRecord, AlertRef, OwnerQuestion, TestAlert};
use honeytrail_store::{Channel, Delivery, Store};

use crate::config::Config;
use crate::record::incident_record;

/// How the dispatcher sends: timing, target policy and links.
#[derive(Debug, Clone)]
pub struct Settings {
    pub timeout: StdDuration,
    pub lease: Duration,
    pub allowed_hosts: Vec<String>,
    /// Where JSON-lines channels may write.
    pub files: honeytrail_alert::channels::jsonl::FilePolicy,
    /// Where people reach the UI, for links in alerts.
    pub public_url: String,
    /// How long a "was this you?" link works.
    pub owner_link_ttl: Duration,
    /// What incident context is computed from (routes test it).
    pub enrich: crate::config::EnrichSection,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let a = &config.alerts;
        Settings {
            timeout: StdDuration::from_secs(a.timeout_seconds.max(1)),
            lease: Duration::seconds(a.lease_seconds.max(1) as i64),
            allowed_hosts: a.allowed_hosts.clone(),
            files: honeytrail_alert::channels::jsonl::FilePolicy {
                dir: a.jsonl_dir.clone(),
                protected: config.data_dir.clone(),
            },
            public_url: config.serve.public_url(),
            owner_link_ttl: Duration::days(a.owner_link_days.max(1) as i64),
            enrich: config.enrich.clone(),
        }
    }

    pub fn sender(&self) -> Result<Sender> {
        let client = honeytrail_alert::target::client(self.timeout).context("cannot build the HTTP client")?;
        Ok(Sender { client, allowed_hosts: self.allowed_hosts.clone(), files: self.files.clone() })
    }
}

/// Opens a channel's configuration.
pub async fn channel_config(store: &Store, channel: &Channel) -> Result<ChannelConfig, Failure> {
    let config = store.channel_config(channel.id).await.map_err(|e| Failure {
        message: format!("cannot open the channel configuration: {e}"),
        retry: Retry::Backoff,
    })?;
    ChannelConfig::parse(&channel.kind, config.expose())
}

/// Sends a clearly marked test alert through a channel now, outside the
/// outbox (nothing is queued or retried); `requested_by` is named in it.
pub async fn send_test_alert(
    store: &Store,
    sender: &Sender,
    channel: &Channel,
    requested_by: &str,
) -> Result<(), Failure> {
    let alert = Alert::Test(TestAlert::new(&channel.name, requested_by, Utc::now()));
    let id = format!("test-{}", Utc::now().timestamp_millis());
    let config = channel_config(store, channel).await?;
    config.deliver(sender, &Outgoing { delivery_id: &id, alert: &alert, reference: None }).await.map(|_| ())
}

/// The alert of a delivery, from the incident record `base` (rendered once
/// per alert and pass, whatever the number of channels).
async fn alert_for(
    store: &Store,
    d: &Delivery,
    base: &AlertRecord,
    config: &ChannelConfig,
    settings: &Settings,
) -> Result<Alert> {
    let mut record = base.clone();
    record.delivery_id = Some(d.id.to_string());
    record.alert = Some(AlertRef { id: d.alert_id, kind: d.alert_kind.clone() });
    record.incident.url = Some(format!("{}/incidents/{}", settings.public_url, d.incident_id));
    if config.asks_owners() && d.alert_kind == "incident.opened" {
        let owners: Vec<String> = record
            .owners
            .iter()
            .filter(|o| honeytrail_alert::channels::email::is_address(o))
            .map(|o| o.trim().to_string())
            .collect();
        for owner in owners {
            let token = store.owner_question_token(d.incident_id, &owner, settings.owner_link_ttl).await?;
            let url = format!("{}/answer/{}", settings.public_url, token.expose());
            record.owner_questions.push(OwnerQuestion { owner, url });
        }
    }
    Ok(Alert::Incident(Box::new(record)))
}

/// What one dispatcher pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// Deliveries sent at once in a pass: of different incidents (one
/// incident's go in order, its opening before its updates), so a burst of
/// incidents is not sent one after another.
const DELIVERIES_AT_ONCE: usize = 8;

/// Fans out new alerts and tries every due delivery once.
pub async fn dispatch(store: &Store, sender: &Sender, settings: &Settings) -> Result<Pass> {
    use std::sync::Arc;
    let enricher = crate::enrichment::enricher(store, &settings.enrich).await?;
    store.fan_out(&enricher).await?;
    let due = store.claim_due(50, settings.lease).await?;
    if due.is_empty() {
        return Ok(Pass::default());
    }
    let channels = Arc::new(store.channels().await?);
    let mut groups: Vec<Vec<Delivery>> = Vec::new();
    for d in due {
        match groups.iter_mut().find(|g| g[0].incident_id == d.incident_id) {
            Some(g) => g.push(d),
            None => groups.push(vec![d]),
        }
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(DELIVERIES_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for group in groups {
        let (store, sender, settings) = (store.clone(), sender.clone(), settings.clone());
        let (enricher, channels, limit) = (enricher.clone(), channels.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            deliver_in_order(&store, &sender, &settings, &enricher, &channels, group).await
        });
    }
    // Every group runs to its end; the first failure is reported after.
    let mut pass = Pass::default();
    let mut failure = None;
    while let Some(done) = tasks.join_next().await {
        match done.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(p) => {
                pass.delivered += p.delivered;
                pass.retrying += p.retrying;
                pass.dead += p.dead;
            }
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(pass),
    }
}

/// Sends one incident's due deliveries, in order.
async fn deliver_in_order(
    store: &Store,
    sender: &Sender,
    settings: &Settings,
    enricher: &honeytrail_core::enrich::Enricher,
    channels: &[Channel],
    due: Vec<Delivery>,
) -> Result<Pass> {
    let mut pass = Pass::default();
    let mut incidents: std::collections::HashMap<i64, AlertRecord> = std::collections::HashMap::new();
    for d in due {
        let channel = channels.iter().find(|c| c.id == d.channel_id).context("a delivery's channel is gone")?;
        let outcome = match channel_config(store, channel).await {
            Ok(config) => {
                let base = match incidents.entry(d.alert_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(incident_record(store, enricher, d.incident_id, &d.alert_kind).await?)
                    }
                };
                let alert = alert_for(store, &d, base, &config, settings).await?;
                let reference = store.channel_ref(channel.id, d.incident_id).await?;
                let id = d.id.to_string();
                let out = Outgoing { delivery_id: &id, alert: &alert, reference: reference.as_deref() };
                config.deliver(sender, &out).await
            }
            Err(f) => Err(f),
        };
        match outcome {
            Ok(reference) => {
                if let Some(r) = reference {
                    store.set_channel_ref(channel.id, d.incident_id, &r).await?;
                }
                store.mark_delivered(d.id).await?;
                pass.delivered += 1;
            }
            Err(f) => {
                let retry_at = match f.retry {
                    _ if d.attempts + 1 >= MAX_ATTEMPTS => None,
                    Retry::Never => None,
                    Retry::After(wait) => Some(Utc::now() + Duration::from_std(wait).unwrap_or(Duration::minutes(1))),
                    Retry::Backoff => {
                        Some(Utc::now() + Duration::from_std(backoff(d.attempts)).unwrap_or(Duration::minutes(1)))
                    }
                };
                tracing::warn!(delivery = d.id, channel = %channel.name, error = %f.message, dead = retry_at.is_none(), "alert delivery failed");
                store.mark_failed(d.id, &f.message, retry_at).await?;
                if retry_at.is_some() {
                    pass.retrying += 1
                } else {
                    pass.dead += 1
                }
            }
        }
    }
    Ok(pass)
}

/// The dispatcher loop of `serve` and `deliver`.
///
/// With `stop`, it returns after the pass in progress once `stop` turns true,
/// so a shutdown never cuts a delivery in half.
/// With `wake`, a pass starts as soon as this process queues an alert;
/// otherwise (alerts queued by other processes or replicas, retries falling
/// due) every half second.
pub async fn run_dispatcher(
    store: Store,
    settings: Settings,
    mut stop: Option<tokio::sync::watch::Receiver<bool>>,
    wake: Option<std::sync::Arc<tokio::sync::Notify>>,
) -> Result<()> {
    let sender = settings.sender()?;
    loop {
        if let Err(e) = dispatch(&store, &sender, &settings).await {
            tracing::error!(error = %format!("{e:#}"), "dispatcher pass failed; retrying");
        }
        if stop.as_ref().is_some_and(|rx| *rx.borrow()) {
            return Ok(());
        }
        let pause = tokio::time::sleep(StdDuration::from_millis(500));
        let woken = async {
            match &wake {
                Some(n) => n.notified().await,
                None => std::future::pending().await,
            }
        };
        let stopped = async {
            match &mut stop {
                // A change, or the sender gone (the server stopping): either way, stop.
                Some(rx) => rx.changed().await.unwrap_or(()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = pause => {}
            _ = woken => {}
            _ = stopped => return Ok(()),
        }
    }
}

impl crate::Ops {
    /// One pass of the dispatcher: delivers what is due now.
    pub async fn deliver_due(&self) -> Result<Pass> {
        let settings = Settings::from_config(&self.config);
        dispatch(&self.store, &settings.sender()?, &settings).await
    }

    /// Runs the dispatcher until `stop` says so (or for ever), woken at once
    /// when an operation of this process queued an alert.
    pub async fn run_dispatcher(&self, stop: Option<tokio::sync::watch::Receiver<bool>>) -> Result<()> {
        let settings = Settings::from_config(&self.config);
        run_dispatcher(self.store.clone(), settings, stop, Some(self.signals().alerts_queued.clone())).await
    }
}

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

/// Deliveries sent at once: of different incidents (one incident's go in
/// order, its opening before its updates), so a burst of incidents is not
/// sent one after another.
const DELIVERIES_AT_ONCE: usize = 8;

/// Deliveries claimed and not yet sent, at most: what is claimed waits
/// under its lease, so the dispatcher claims little more than it can send.
const CLAIMED_AT_MOST: usize = 50;

/// The deliveries a dispatcher has claimed and is sending.
///
/// Sending never waits for a pass to end: a delivery claimed while others
/// are on their way starts as soon as a slot is free, so an alert queued in
/// the middle of a slow delivery is not held behind it. One incident's
/// deliveries still go one after another: those claimed while its earlier
/// ones are in flight wait for them.
struct InFlight {
    store: Store,
    sender: Sender,
    settings: Settings,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    tasks: tokio::task::JoinSet<Result<Pass>>,
    /// Each task's incident and the number of deliveries it sends.
    task_of: std::collections::HashMap<tokio::task::Id, (i64, usize)>,
    /// Incidents with a task sending, and what was claimed for them since.
    sending: std::collections::HashMap<i64, Vec<Delivery>>,
    /// Deliveries claimed and not yet done.
    claimed: usize,
    /// Whether the last claim took all it could, so more may be due.
    full: bool,
    /// The enricher and channels of the latest claim.
    latest: Option<(std::sync::Arc<honeytrail_core::enrich::Enricher>, std::sync::Arc<Vec<Channel>>)>,
}

impl InFlight {
    fn new(store: Store, sender: Sender, settings: Settings) -> InFlight {
        InFlight {
            store,
            sender,
            settings,
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(DELIVERIES_AT_ONCE)),
            tasks: tokio::task::JoinSet::new(),
            task_of: std::collections::HashMap::new(),
            sending: std::collections::HashMap::new(),
            claimed: 0,
            full: false,
            latest: None,
        }
    }

    /// Fans out new alerts and claims what is due, as far as there is room.
    async fn claim(&mut self) -> Result<()> {
        let room = CLAIMED_AT_MOST.saturating_sub(self.claimed);
        if room == 0 {
            self.full = true;
            return Ok(());
        }
        let enricher = crate::enrichment::enricher(&self.store, &self.settings.enrich).await?;
        self.store.fan_out(&enricher).await?;
        let due = self.store.claim_due(room as i64, self.settings.lease).await?;
        self.full = due.len() == room;
        if due.is_empty() {
            return Ok(());
        }
        let channels = std::sync::Arc::new(self.store.channels().await?);
        self.claimed += due.len();
        self.latest = Some((enricher.clone(), channels.clone()));
        let mut groups: Vec<Vec<Delivery>> = Vec::new();
        for d in due {
            if let Some(waiting) = self.sending.get_mut(&d.incident_id) {
                waiting.push(d);
                continue;
            }
            match groups.iter_mut().find(|g| g[0].incident_id == d.incident_id) {
                Some(g) => g.push(d),
                None => groups.push(vec![d]),
            }
        }
        for group in groups {
            self.spawn(group, enricher.clone(), channels.clone());
        }
        Ok(())
    }

    fn spawn(
        &mut self,
        group: Vec<Delivery>,
        enricher: std::sync::Arc<honeytrail_core::enrich::Enricher>,
        channels: std::sync::Arc<Vec<Channel>>,
    ) {
        let (incident, count) = (group[0].incident_id, group.len());
        self.sending.insert(incident, Vec::new());
        let (store, sender, settings, slots) =
            (self.store.clone(), self.sender.clone(), self.settings.clone(), self.slots.clone());
        let task = self.tasks.spawn(async move {
            let _slot = slots.acquire_owned().await?;
            deliver_in_order(&store, &sender, &settings, &enricher, &channels, group).await
        });
        self.task_of.insert(task.id(), (incident, count));
    }

    /// Waits for one incident's deliveries to be done, starts what was
    /// claimed for it meanwhile, and says what they came to. Cancel-safe:
    /// nothing is awaited after a task is joined.
    async fn next_done(&mut self) -> Option<Result<Pass>> {
        // A task that failed or panicked leaves its deliveries to their
        // leases: they run out and the deliveries are sent again.
        let (task, outcome) = match self.tasks.join_next_with_id().await? {
            Ok((task, outcome)) => (task, outcome),
            Err(e) => (e.id(), Err(anyhow::Error::from(e))),
        };
        let (incident, count) = self.task_of.remove(&task).unwrap_or_default();
        self.claimed = self.claimed.saturating_sub(count);
        let waiting = self.sending.remove(&incident).unwrap_or_default();
        if !waiting.is_empty() {
            // Claimed with the latest claim or before it: its channels and
            // enricher serve them (nothing here awaits, so a caller may
            // drop this future once a task is joined without losing them).
            match self.latest.clone() {
                Some((enricher, channels)) => self.spawn(waiting, enricher, channels),
                None => self.claimed = self.claimed.saturating_sub(waiting.len()),
            }
        }
        Some(outcome)
    }

    /// Whether every claimed delivery is done.
    fn idle(&self) -> bool {
        self.tasks.is_empty()
    }
}

/// Fans out new alerts and tries every due delivery once.
pub async fn dispatch(store: &Store, sender: &Sender, settings: &Settings) -> Result<Pass> {
    let mut flight = InFlight::new(store.clone(), sender.clone(), settings.clone());
    flight.claim().await?;
    // Every incident's deliveries run to their end; the first failure is
    // reported after.
    let mut pass = Pass::default();
    let mut failure = None;
    while let Some(done) = flight.next_done().await {
        match done {
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
/// With `stop`, it returns once `stop` turns true and the deliveries on
/// their way are done, so a shutdown never cuts a delivery in half.
/// With `wake`, it claims as soon as this process queues an alert;
/// otherwise (alerts queued by other processes or replicas, retries falling
/// due) every half second. Claimed deliveries start as slots free up,
/// without waiting for the others claimed with them.
pub async fn run_dispatcher(
    store: Store,
    settings: Settings,
    mut stop: Option<tokio::sync::watch::Receiver<bool>>,
    wake: Option<std::sync::Arc<tokio::sync::Notify>>,
) -> Result<()> {
    let sender = settings.sender()?;
    let mut flight = InFlight::new(store, sender, settings);
    let mut claim = true;
    // When the next claim is due whatever happens here: deliveries finishing
    // one after another must not keep putting off the half-second look for
    // what other processes queued and for retries falling due.
    let mut next_look = tokio::time::Instant::now();
    loop {
        if claim || tokio::time::Instant::now() >= next_look {
            next_look = tokio::time::Instant::now() + StdDuration::from_millis(500);
            if let Err(e) = flight.claim().await {
                tracing::error!(error = %format!("{e:#}"), "dispatcher pass failed; retrying");
            }
        }
        if stop.as_ref().is_some_and(|rx| *rx.borrow()) {
            return drain(&mut flight).await;
        }
        let pause = tokio::time::sleep_until(next_look);
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
        let busy = !flight.idle();
        claim = tokio::select! {
            Some(done) = flight.next_done(), if busy => {
                if let Err(e) = done {
                    tracing::error!(error = %format!("{e:#}"), "dispatcher pass failed; retrying");
                }
                // A slot is free: claim again if the last claim left some due.
                flight.full
            }
            _ = pause => true,
            _ = woken => true,
            _ = stopped => return drain(&mut flight).await,
        };
    }
}

/// Lets the deliveries on their way finish.
async fn drain(flight: &mut InFlight) -> Result<()> {
    while let Some(done) = flight.next_done().await {
        if let Err(e) = done {
            tracing::error!(error = %format!("{e:#}"), "dispatcher pass failed");
        }
    }
    Ok(())
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

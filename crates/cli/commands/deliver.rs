//! Alert delivery: `honeytrail deliver`, the dispatcher inside `serve`,
//! `honeytrail channel …` and `honeytrail delivery …`.

use std::process::ExitCode;
use std::time::Duration as StdDuration;

use anyhow::{bail, Context, Result};
use chrono::{Duration, Utc};
use clap::{Args, Subcommand};
use honeytrail_alert::channels::webhook;
use honeytrail_alert::retry::MAX_ATTEMPTS;
use honeytrail_alert::{backoff, ChannelConfig, Failure, JsonLinesConfig, Retry, WebhookConfig, SCHEMA};
use honeytrail_core::Secret;
use honeytrail_store::{Delivery, Store};
use serde_json::json;

use super::incident::incident_record;
use super::{print_json, print_table, when};
use crate::app::App;

#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Add a channel
    #[command(subcommand)]
    Add(AddKind),
    /// List channels (their configuration stays sealed)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Send a clearly marked test alert through a channel now
    Test { name: String },
}

#[derive(Subcommand, Debug)]
pub enum AddKind {
    /// Generic webhook: versioned JSON, HMAC-SHA256 signed
    Webhook(WebhookArgs),
    /// Slack incoming webhook (Block Kit); the webhook URL is read from standard input
    Slack { name: String },
    /// Microsoft Teams webhook (Adaptive Card); the webhook URL is read from standard input
    Teams { name: String },
    /// PagerDuty Events API v2 (one alert per incident; acknowledge/resolve follow); routing key from standard input
    Pagerduty {
        name: String,
        /// critical, error, warning or info
        #[arg(long, default_value = "critical", value_parser = ["critical", "error", "warning", "info"])]
        severity: String,
        /// Events API endpoint (change only for a proxy or a test receiver)
        #[arg(long, default_value = honeytrail_alert::channels::pagerduty::DEFAULT_ENDPOINT)]
        endpoint: String,
    },
    /// Syslog (RFC 5424) over UDP or TCP
    Syslog {
        name: String,
        /// host:port of the syslog receiver
        #[arg(long)]
        address: String,
        #[arg(long, default_value = "udp", value_parser = ["udp", "tcp"])]
        transport: String,
        /// Syslog facility number (10 = authpriv)
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=23))]
        facility: u8,
    },
    /// JSON lines appended to a file, for a SIEM agent to tail
    Jsonl {
        name: String,
        /// The file to append to (created if missing)
        #[arg(long)]
        path: std::path::PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct WebhookArgs {
    name: String,
    /// http(s) URL to POST alerts to
    #[arg(long)]
    url: String,
    /// Read the signing secret from standard input
    #[arg(long)]
    secret_stdin: bool,
    /// Extra header NAME=VALUE (repeatable)
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum RunbookCommand {
    /// List runbooks (the shipped default applies when none is selected)
    List,
    /// Print a runbook's template (`default-shipped` for the built-in one)
    Show { name: String },
    /// Create or replace a runbook from a MiniJinja template file
    Set {
        name: String,
        /// label:NAME[=VALUE], format:FORMAT (a placement's bait format) or default
        #[arg(long = "for")]
        selector: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Remove a runbook
    Remove { name: String },
}

pub async fn runbook(app: &App, cmd: RunbookCommand) -> Result<ExitCode> {
    use honeytrail_alert::runbook;
    let store = app.store().await?;
    match cmd {
        RunbookCommand::List => {
            let rows: Vec<Vec<String>> =
                store.runbooks().await?.into_iter().map(|r| vec![r.name, r.selector]).collect();
            if rows.is_empty() {
                eprintln!(
                    "no runbooks set: alerts carry the shipped default (`honeytrail runbook show default-shipped`)"
                );
            } else {
                print_table(&["NAME", "FOR"], &rows);
            }
        }
        RunbookCommand::Show { name } => {
            if name == "default-shipped" {
                print!("{}", runbook::DEFAULT_TEMPLATE);
            } else {
                let r = store
                    .runbooks()
                    .await?
                    .into_iter()
                    .find(|r| r.name == name)
                    .with_context(|| format!("no runbook named {name:?}"))?;
                println!("# for {}", r.selector);
                print!("{}", r.template);
            }
        }
        RunbookCommand::Set { name, selector, file } => {
            runbook::check_selector(&selector).map_err(anyhow::Error::msg)?;
            let template = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            runbook::check(&template).map_err(anyhow::Error::msg)?;
            store.set_runbook(&honeytrail_store::StoredRunbook { name: name.clone(), selector, template }).await?;
            println!("runbook {name:?} set");
        }
        RunbookCommand::Remove { name } => {
            store.remove_runbook(&name).await?;
            println!("runbook {name:?} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
pub enum RouteCommand {
    /// Send alerts matching all given conditions to the channels
    Add(RouteArgs),
    /// List routes
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a route
    Remove { name: String },
}

#[derive(Args, Debug)]
pub struct RouteArgs {
    name: String,
    /// Channel to send to (repeatable)
    #[arg(long = "channel", required = true)]
    channels: Vec<String>,
    /// Token label NAME or NAME=VALUE
    #[arg(long)]
    label: Option<String>,
    /// A placement owner contains this (case-insensitive)
    #[arg(long)]
    owner: Option<String>,
    /// A placement host contains this (case-insensitive)
    #[arg(long)]
    host: Option<String>,
    /// Only for incidents in these states (repeatable)
    #[arg(long = "state")]
    states: Vec<String>,
    /// Use only when no other route matches
    #[arg(long)]
    default: bool,
}

pub async fn route(app: &App, cmd: RouteCommand) -> Result<ExitCode> {
    let store = app.store().await?;
    match cmd {
        RouteCommand::Add(a) => {
            let label = a.label.as_deref().map(|l| match l.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (l.to_string(), None),
            });
            let states =
                a.states.iter().map(|s| s.parse()).collect::<Result<Vec<_>, String>>().map_err(anyhow::Error::msg)?;
            let route = honeytrail_core::route::Route {
                name: a.name,
                channels: a.channels,
                label,
                owner: a.owner,
                host: a.host,
                states,
                default: a.default,
            };
            store.add_route(&route).await?;
            println!("route {:?} added: → {}", route.name, route.channels.join(", "));
        }
        RouteCommand::List { json } => {
            let routes = store.routes().await?;
            if json {
                return print_json(&routes).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = routes
                .iter()
                .map(|r| {
                    let mut when = Vec::new();
                    if let Some((n, v)) = &r.label {
                        when.push(format!("label {n}{}", v.as_deref().map(|v| format!("={v}")).unwrap_or_default()));
                    }
                    if let Some(o) = &r.owner {
                        when.push(format!("owner ~ {o}"));
                    }
                    if let Some(h) = &r.host {
                        when.push(format!("host ~ {h}"));
                    }
                    if !r.states.is_empty() {
                        when.push(format!(
                            "state in {}",
                            r.states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("|")
                        ));
                    }
                    if r.default {
                        when.push("no other route matched".into());
                    }
                    vec![
                        r.name.clone(),
                        if when.is_empty() { "always".into() } else { when.join(", ") },
                        r.channels.join(", "),
                    ]
                })
                .collect();
            if rows.is_empty() {
                eprintln!("no routes: every channel gets every alert");
            } else {
                print_table(&["NAME", "WHEN", "CHANNELS"], &rows);
            }
        }
        RouteCommand::Remove { name } => {
            store.remove_route(&name).await?;
            println!("route {name:?} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
pub enum DeliveryCommand {
    /// List deliveries: dead-lettered ones by default
    List {
        #[arg(long, default_value = "dead")]
        state: String,
        #[arg(long)]
        json: bool,
    },
    /// Put a dead-lettered delivery back in line
    Retry { id: i64 },
}

#[derive(Args, Debug)]
pub struct DeliverArgs {
    /// Deliver what is due now and stop, instead of running until interrupted
    #[arg(long)]
    once: bool,
}

/// How the dispatcher times attempts and holds deliveries.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub timeout: StdDuration,
    pub lease: Duration,
}

impl Timing {
    pub fn from_config(app: &App) -> Timing {
        let a = &app.config.alerts;
        Timing {
            timeout: StdDuration::from_secs(a.timeout_seconds.max(1)),
            lease: Duration::seconds(a.lease_seconds.max(1) as i64),
        }
    }
}

fn client(timing: Timing) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timing.timeout)
        .connect_timeout(StdDuration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build the HTTP client")
}

async fn send(
    store: &Store,
    client: &reqwest::Client,
    channel_id: i64,
    kind: &str,
    delivery_id: &str,
    record: &serde_json::Value,
) -> Result<(), Failure> {
    let config = store.channel_config(channel_id).await.map_err(|e| Failure {
        message: format!("cannot open the channel configuration: {e}"),
        retry: Retry::Backoff,
    })?;
    ChannelConfig::parse(kind, config.expose())?.deliver(client, delivery_id, record).await
}

/// What one dispatcher pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

/// Fans out new alerts and tries every due delivery once.
pub async fn dispatch(store: &Store, client: &reqwest::Client, timing: Timing) -> Result<Pass> {
    store.fan_out().await?;
    let mut pass = Pass::default();
    let due = store.claim_due(50, timing.lease).await?;
    if due.is_empty() {
        return Ok(pass);
    }
    let channels = store.channels().await?;
    for d in due {
        let channel = channels.iter().find(|c| c.id == d.channel_id).context("a delivery's channel is gone")?;
        let mut record = incident_record(store, d.incident_id, &d.alert_kind).await?;
        record["schema"] = json!(SCHEMA);
        record["delivery_id"] = json!(d.id.to_string());
        record["alert"] = json!({"id": d.alert_id, "kind": d.alert_kind});
        match send(store, client, d.channel_id, &channel.kind, &d.id.to_string(), &record).await {
            Ok(()) => {
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
pub async fn run_dispatcher(store: Store, timing: Timing) -> Result<()> {
    let client = client(timing)?;
    loop {
        if let Err(e) = dispatch(&store, &client, timing).await {
            tracing::error!(error = %format!("{e:#}"), "dispatcher pass failed; retrying");
        }
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    }
}

pub async fn deliver(app: &App, args: DeliverArgs) -> Result<ExitCode> {
    let store = app.store().await?;
    let timing = Timing::from_config(app);
    if !args.once {
        eprintln!("delivering alerts until interrupted");
        tokio::select! {
            r = run_dispatcher(store, timing) => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        return Ok(ExitCode::SUCCESS);
    }
    let pass = dispatch(&store, &client(timing)?, timing).await?;
    eprintln!("delivered {}, retrying later {}, dead-lettered {}", pass.delivered, pass.retrying, pass.dead);
    Ok(ExitCode::SUCCESS)
}

/// Stores a channel; its configuration is sealed with the data key.
async fn save_channel(store: &Store, name: &str, config: &ChannelConfig) -> Result<honeytrail_store::Channel> {
    Ok(store.add_channel(name, config.kind(), &Secret::new(config.to_json())).await?)
}

/// Adds a channel whose whole configuration is a webhook URL. The URL is a
/// credential (anyone holding it can post), so it is read from standard
/// input, never from the command line.
async fn add_url_channel(store: &Store, name: &str, make: impl FnOnce(String) -> ChannelConfig) -> Result<()> {
    let url = super::token::read_secret_stdin()?.expose().to_string();
    webhook::check_target(&url).await.map_err(|f| anyhow::anyhow!(f.message))?;
    let config = make(url);
    let c = save_channel(store, name, &config).await?;
    println!("channel {:?} added ({}); its webhook URL is stored sealed", c.name, config.kind());
    Ok(())
}

pub async fn channel(app: &App, cmd: ChannelCommand) -> Result<ExitCode> {
    let store = app.store().await?;
    match cmd {
        ChannelCommand::Add(AddKind::Webhook(a)) => {
            webhook::check_target(&a.url).await.map_err(|f| anyhow::anyhow!(f.message))?;
            let secret =
                if a.secret_stdin { super::token::read_secret_stdin()?.expose().to_string() } else { String::new() };
            let mut headers = std::collections::BTreeMap::new();
            for h in &a.headers {
                let (k, v) = h.split_once('=').with_context(|| format!("header {h:?} is not NAME=VALUE"))?;
                headers.insert(k.trim().to_string(), v.trim().to_string());
            }
            let signed = if secret.is_empty() { ", unsigned" } else { ", signed" };
            let config = ChannelConfig::Webhook(WebhookConfig { url: a.url.clone(), secret, headers });
            let c = save_channel(&store, &a.name, &config).await?;
            println!("channel {:?} added (webhook{signed}); its URL and secret are stored sealed", c.name);
        }
        ChannelCommand::Add(AddKind::Slack { name }) => {
            add_url_channel(&store, &name, |url| {
                ChannelConfig::Slack(honeytrail_alert::channels::slack::SlackConfig { url })
            })
            .await?
        }
        ChannelCommand::Add(AddKind::Teams { name }) => {
            add_url_channel(&store, &name, |url| {
                ChannelConfig::Teams(honeytrail_alert::channels::teams::TeamsConfig { url })
            })
            .await?
        }
        ChannelCommand::Add(AddKind::Pagerduty { name, severity, endpoint }) => {
            let routing_key = super::token::read_secret_stdin()?.expose().to_string();
            webhook::check_target(&endpoint).await.map_err(|f| anyhow::anyhow!(f.message))?;
            let config = ChannelConfig::PagerDuty(honeytrail_alert::channels::pagerduty::PagerDutyConfig {
                routing_key,
                endpoint,
                severity,
            });
            let c = save_channel(&store, &name, &config).await?;
            println!("channel {:?} added (PagerDuty); its routing key is stored sealed", c.name);
        }
        ChannelCommand::Add(AddKind::Syslog { name, address, transport, facility }) => {
            use honeytrail_alert::channels::syslog::{SyslogConfig, Transport};
            if !address.contains(':') {
                bail!("--address {address:?} needs a port, like 10.0.0.5:514");
            }
            let transport = if transport == "tcp" { Transport::Tcp } else { Transport::Udp };
            let config = ChannelConfig::Syslog(SyslogConfig { address: address.clone(), transport, facility });
            let c = save_channel(&store, &name, &config).await?;
            println!("channel {:?} added: syslog to {address}", c.name);
        }
        ChannelCommand::Add(AddKind::Jsonl { name, path }) => {
            let path = std::path::absolute(&path).with_context(|| format!("cannot resolve {}", path.display()))?;
            let config = ChannelConfig::JsonLines(JsonLinesConfig { path: path.display().to_string() });
            let c = save_channel(&store, &name, &config).await?;
            println!("channel {:?} added: alerts are appended to {}", c.name, path.display());
        }
        ChannelCommand::List { json } => {
            let channels = store.channels().await?;
            if json {
                return print_json(&channels).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = channels
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.kind.clone(),
                        if c.enabled { "enabled".into() } else { "disabled".into() },
                        when(c.created_at),
                    ]
                })
                .collect();
            print_table(&["NAME", "KIND", "STATE", "ADDED"], &rows);
        }
        ChannelCommand::Test { name } => {
            let c = store.channel(&name).await?;
            let record = json!({
                "schema": SCHEMA, "test": true, "type": "test",
                "message": "This is a test alert from honeytrail. No honey key was used.",
                "channel": c.name, "sent_at": Utc::now(),
            });
            match send(
                &store,
                &client(Timing::from_config(app))?,
                c.id,
                &c.kind,
                &format!("test-{}", Utc::now().timestamp_millis()),
                &record,
            )
            .await
            {
                Ok(()) => println!("test alert delivered through {:?}", c.name),
                Err(f) => bail!("test alert through {:?} failed: {}", c.name, f.message),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn delivery(app: &App, cmd: DeliveryCommand) -> Result<ExitCode> {
    let store = app.store().await?;
    match cmd {
        DeliveryCommand::List { state, json } => {
            let list: Vec<Delivery> = store.deliveries(&state).await?;
            if json {
                return print_json(&list).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|d| {
                    vec![
                        format!("#{}", d.id),
                        format!("incident #{}", d.incident_id),
                        d.alert_kind.clone(),
                        d.channel.clone(),
                        d.attempts.to_string(),
                        d.last_error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["ID", "INCIDENT", "ALERT", "CHANNEL", "ATTEMPTS", "LAST ERROR"], &rows);
        }
        DeliveryCommand::Retry { id } => {
            let d = store.retry_delivery(id).await?;
            println!(
                "delivery #{} is pending again; the dispatcher (serve or `honeytrail deliver`) sends it next",
                d.id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

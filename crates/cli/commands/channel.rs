//! `honeytrail channel …` and `honeytrail alert test`: the places alerts go.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use honeytrail_alert::channels::{email, jira};
use honeytrail_alert::siem::Format;
use honeytrail_alert::{ChannelConfig, JsonLinesConfig, WebhookConfig};
use honeytrail_app::{Actor, App, Ops};

use super::{print_json, print_table, when};

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
    Slack {
        name: String,
        /// Add an "Approve" button to alerts of runs that wait for approval (needs the Slack
        /// app's interactivity pointed at /ingest/slack/actions and serve.slack_signing_secret)
        #[arg(long)]
        approve_buttons: bool,
    },
    /// Microsoft Teams webhook (Adaptive Card); the webhook URL is read from standard input
    Teams { name: String },
    /// PagerDuty Events API v2 (one alert per incident; acknowledge/resolve follow); routing key from standard input
    Pagerduty {
        name: String,
        /// critical, error, warning, info, or auto: from the incident's severity (a report of a found key is info)
        #[arg(long, default_value = "auto", value_parser = ["auto", "critical", "error", "warning", "info"])]
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
        /// The message: a summary of honeytrail.alert.v1, or an OCSF Detection Finding
        #[arg(long, default_value = "honeytrail", value_parser = ["honeytrail", "ocsf"])]
        format: String,
    },
    /// Jira: an issue per incident, a comment per update; the API token is read from standard input
    Jira {
        name: String,
        /// The Jira site, e.g. https://acme.atlassian.net
        #[arg(long)]
        url: String,
        /// Project key, e.g. SEC
        #[arg(long)]
        project: String,
        #[arg(long, default_value = "Task")]
        issue_type: String,
        /// Label for every issue (repeatable)
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Jira Cloud account email (Basic auth with the API token); omit for a Data Center personal access token
        #[arg(long)]
        email: Option<String>,
    },
    /// Email over SMTP (plain text + HTML); the password, if any, is read from standard input
    Email {
        name: String,
        /// SMTP server host name
        #[arg(long)]
        host: String,
        /// Default: 587 for starttls, 465 for tls, 25 for none
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, default_value = "starttls", value_parser = ["starttls", "tls", "none"])]
        tls: String,
        /// SMTP user name; its password is read from standard input
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        from: String,
        /// Recipient (repeatable)
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// Also ask placement owners (whose owner is an email address) "was this you?" when an incident opens
        #[arg(long)]
        ask_owner: bool,
        /// PEM file of an internal CA to trust for this SMTP server
        #[arg(long)]
        ca_file: Option<std::path::PathBuf>,
    },
    /// JSON lines appended to a file, for a SIEM agent to tail
    Jsonl {
        name: String,
        /// The file to append to (created if missing)
        #[arg(long)]
        path: std::path::PathBuf,
        /// Each line as honeytrail.alert.v1, an OCSF Detection Finding or an ECS document
        #[arg(long, default_value = "honeytrail", value_parser = ["honeytrail", "ocsf", "ecs"])]
        format: String,
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
    /// The body: honeytrail.alert.v1 or an OCSF Detection Finding
    #[arg(long, default_value = "honeytrail", value_parser = ["honeytrail", "ocsf"])]
    format: String,
}

/// Adds a channel whose whole configuration is a webhook URL. The URL is a
/// credential (anyone holding it can post), so it is read from standard
/// input, never from the command line.
async fn add_url_channel(
    ops: &Ops,
    actor: &Actor,
    name: &str,
    make: impl FnOnce(String) -> ChannelConfig,
) -> Result<()> {
    let url = super::token::read_secret_stdin()?.expose().to_string();
    let config = make(url);
    let c = ops.add_channel(actor, name, &config).await?;
    println!("channel {:?} added ({}); its webhook URL is stored sealed", c.name, config.kind());
    Ok(())
}

pub async fn channel(app: &App, cmd: ChannelCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        ChannelCommand::Add(AddKind::Webhook(a)) => {
            let secret =
                if a.secret_stdin { super::token::read_secret_stdin()?.expose().to_string() } else { String::new() };
            let mut headers = std::collections::BTreeMap::new();
            for h in &a.headers {
                let (k, v) = h.split_once('=').with_context(|| format!("header {h:?} is not NAME=VALUE"))?;
                headers.insert(k.trim().to_string(), v.trim().to_string());
            }
            let signed = if secret.is_empty() { ", unsigned" } else { ", signed" };
            let format = Format::parse(&a.format).map_err(anyhow::Error::msg)?;
            let config = ChannelConfig::Webhook(WebhookConfig { url: a.url.clone(), secret, headers, format });
            let c = ops.add_channel(&actor, &a.name, &config).await?;
            println!("channel {:?} added (webhook{signed}); its URL and secret are stored sealed", c.name);
        }
        ChannelCommand::Add(AddKind::Slack { name, approve_buttons }) => {
            add_url_channel(&ops, &actor, &name, |url| {
                ChannelConfig::Slack(honeytrail_alert::channels::slack::SlackConfig { url, approve_buttons })
            })
            .await?
        }
        ChannelCommand::Add(AddKind::Teams { name }) => {
            add_url_channel(&ops, &actor, &name, |url| {
                ChannelConfig::Teams(honeytrail_alert::channels::teams::TeamsConfig { url })
            })
            .await?
        }
        ChannelCommand::Add(AddKind::Pagerduty { name, severity, endpoint }) => {
            let routing_key = super::token::read_secret_stdin()?.expose().to_string();
            let config = ChannelConfig::PagerDuty(honeytrail_alert::channels::pagerduty::PagerDutyConfig {
                routing_key,
                endpoint,
                severity,
            });
            let c = ops.add_channel(&actor, &name, &config).await?;
            println!("channel {:?} added (PagerDuty); its routing key is stored sealed", c.name);
        }
        ChannelCommand::Add(AddKind::Syslog { name, address, transport, facility, format }) => {
            use honeytrail_alert::channels::syslog::{SyslogConfig, Transport};
            if !address.contains(':') {
                bail!("--address {address:?} needs a port, like 10.0.0.5:514");
            }
            let transport = if transport == "tcp" { Transport::Tcp } else { Transport::Udp };
            let format = Format::parse(&format).map_err(anyhow::Error::msg)?;
            let config = ChannelConfig::Syslog(SyslogConfig { address: address.clone(), transport, facility, format });
            let c = ops.add_channel(&actor, &name, &config).await?;
            println!("channel {:?} added: syslog to {address}", c.name);
        }
        ChannelCommand::Add(AddKind::Jira { name, url, project, issue_type, labels, email }) => {
            let token = super::token::read_secret_stdin()?.expose().to_string();
            let config = ChannelConfig::Jira(jira::JiraConfig {
                base_url: url.trim_end_matches('/').to_string(),
                project,
                issue_type,
                labels,
                email,
                token,
            });
            let c = ops.add_channel(&actor, &name, &config).await?;
            println!("channel {:?} added (Jira); its token is stored sealed", c.name);
        }
        ChannelCommand::Add(AddKind::Email { name, host, port, tls, username, from, to, ask_owner, ca_file }) => {
            let ca_file = match ca_file {
                Some(p) => Some(
                    std::path::absolute(&p)
                        .with_context(|| format!("cannot resolve {}", p.display()))?
                        .display()
                        .to_string(),
                ),
                None => None,
            };
            let tls: email::TlsMode = tls.parse().map_err(anyhow::Error::msg)?;
            let port = port.unwrap_or(match tls {
                email::TlsMode::Starttls => 587,
                email::TlsMode::Tls => 465,
                email::TlsMode::None => 25,
            });
            let password = match &username {
                Some(_) => Some(super::token::read_secret_stdin()?.expose().to_string()),
                None => None,
            };
            let config = email::EmailConfig { host, port, tls, username, password, from, to, ask_owner, ca_file };
            let summary = format!("{} recipient(s) via {}:{}", config.to.len(), config.host, config.port);
            let c = ops.add_channel(&actor, &name, &ChannelConfig::Email(config)).await?;
            println!("channel {:?} added (email to {summary}); its password is stored sealed", c.name);
        }
        ChannelCommand::Add(AddKind::Jsonl { name, path, format }) => {
            let path = std::path::absolute(&path).with_context(|| format!("cannot resolve {}", path.display()))?;
            let format = Format::parse(&format).map_err(anyhow::Error::msg)?;
            let config = ChannelConfig::JsonLines(JsonLinesConfig { path: path.display().to_string(), format });
            let c = ops.add_channel(&actor, &name, &config).await?;
            println!("channel {:?} added: alerts are appended to {}", c.name, path.display());
        }
        ChannelCommand::List { json } => {
            let channels = ops.channels(&actor).await?;
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
            let c = ops.store.channel(&name).await.map_err(honeytrail_app::OpError::from)?;
            send_test(&ops, &actor, &[c]).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
pub enum AlertCommand {
    /// Send a clearly marked test alert through a channel, a route's channels, or every enabled channel
    Test(AlertTestArgs),
}

#[derive(Args, Debug)]
pub struct AlertTestArgs {
    /// Through this channel
    #[arg(long, conflicts_with = "route")]
    channel: Option<String>,
    /// Through every channel of this route
    #[arg(long)]
    route: Option<String>,
}

pub async fn alert(app: &App, cmd: AlertCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    let AlertCommand::Test(a) = cmd;
    let all = ops.channels(&actor).await?;
    let chosen: Vec<honeytrail_store::Channel> = match (&a.channel, &a.route) {
        (Some(name), _) => vec![ops.store.channel(name).await.map_err(honeytrail_app::OpError::from)?],
        (None, Some(route)) => {
            let r = ops
                .routes(&actor)
                .await?
                .into_iter()
                .find(|r| &r.name == route)
                .with_context(|| format!("no route named {route:?} (`honeytrail route list` shows them)"))?;
            all.into_iter().filter(|c| r.channels.contains(&c.name)).collect()
        }
        (None, None) => all.into_iter().filter(|c| c.enabled).collect(),
    };
    if chosen.is_empty() {
        bail!("no channel to test; add one with `honeytrail channel add`");
    }
    send_test(&ops, &actor, &chosen).await
}

/// Sends the test alert through each channel; fails if any failed.
async fn send_test(ops: &Ops, actor: &Actor, channels: &[honeytrail_store::Channel]) -> Result<ExitCode> {
    let mut failed = 0;
    for c in channels {
        match ops.test_channel(actor, &c.name).await {
            Ok(()) => println!("test alert delivered through {:?} ({})", c.name, c.kind),
            Err(f) => {
                failed += 1;
                eprintln!("test alert through {:?} ({}) failed: {}", c.name, c.kind, f.message);
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} test alert(s) failed", channels.len());
    }
    Ok(ExitCode::SUCCESS)
}

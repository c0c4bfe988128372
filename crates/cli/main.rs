//! `honeytrail`: the command-line entry point.
//!
//! This crate only parses arguments, prints, and wires the library crates
//! together: the operations are in `honeytrail-app`, the server in
//! `honeytrail-server`.

// The doc comments of this crate are the `--help` text people read, written
// for a terminal (`<data-dir>`, `[default: …]`, bare URLs), not rustdoc pages.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links, rustdoc::bare_urls)]

mod commands;

/// Large blocks (the match index's tables) in huge pages: see `honeytrail_app::alloc`.
#[global_allocator]
static ALLOCATOR: honeytrail_app::alloc::HugePages = honeytrail_app::alloc::HugePages;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use honeytrail_app::config::{self, Overrides};
use honeytrail_app::App;

#[derive(Parser, Debug)]
#[command(name = "honeytrail", version, about = "Mint, place and track AWS honey keys.", long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Configuration file [default: <data-dir>/honeytrail.toml if present]
    #[arg(long, global = true, env = "HONEYTRAIL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory for the SQLite database and data key
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite:///path/file.sqlite or postgres://user:pass@host/db
    #[arg(long, global = true, value_name = "URL")]
    database: Option<String>,
    /// AWS endpoint override (e.g. moto's server)
    #[arg(long, global = true, value_name = "URL")]
    aws_endpoint: Option<String>,
    /// AWS region
    #[arg(long, global = true, value_name = "REGION")]
    aws_region: Option<String>,
    /// AWS profile for the canary account
    #[arg(long, global = true, value_name = "NAME")]
    aws_profile: Option<String>,
    /// Who is acting, for placements and custody [default: $USER@hostname]
    #[arg(long, global = true, env = "HONEYTRAIL_ACTOR", value_name = "NAME")]
    actor: Option<String>,
    /// Talk to a running `honeytrail serve` at this URL instead of a local store
    /// (incident, token, placement, render, delivery and audit commands)
    #[arg(long, global = true, env = "HONEYTRAIL_SERVER", value_name = "URL")]
    server: Option<String>,
    /// API token for --server (better: set HONEYTRAIL_TOKEN, which stays out of shell history)
    #[arg(
        long = "token",
        id = "api_token",
        global = true,
        env = "HONEYTRAIL_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    api_token: Option<String>,
    /// PEM file of the CA(s) to trust for --server instead of the public roots (a server with an internal CA)
    #[arg(long, global = true, env = "HONEYTRAIL_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// More log output (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Log lines as text, or as one JSON object per line for a log shipper
    #[arg(long, global = true, env = "HONEYTRAIL_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

/// `honeytrail serve`.
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Where to listen (ADDRESS:PORT); else serve.listen, HONEYTRAIL_SERVE_LISTEN, 127.0.0.1:8080
    #[arg(long, value_name = "ADDRESS:PORT")]
    listen: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a commented default configuration and create the database and data key
    Init(commands::init::InitArgs),
    /// A self-contained walkthrough on SQLite, no cloud account needed
    Demo(commands::demo::DemoArgs),
    /// Mint, import, list, show, describe, retire and rotate honey tokens
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Record where tokens are placed
    #[command(subcommand)]
    Placement(commands::placement::PlacementCommand),
    /// Record the chain of custody: every place a token's secret passed through
    #[command(subcommand)]
    Custody(commands::custody::CustodyCommand),
    /// Write a bait file for a token (and record its placement)
    Render(commands::render::RenderArgs),
    /// Check what a key gives away to an intruder (exit 0 pass, 2 warn, 3 fail)
    Check(commands::check::CheckArgs),
    /// Scan CloudTrail log files or folders for honey-key use and open incidents
    Ingest(commands::ingest::IngestArgs),
    /// Reads of bait files on hosts: which process, user and session opened them
    #[command(subcommand)]
    Evidence(commands::evidence::EvidenceCommand),
    /// Automated response: actions (quarantine, deactivate keys, deny policy,
    /// webhook, command), their runs, approval, cancel and undo
    #[command(subcommand)]
    Action(commands::action::ActionCommand),
    /// Incident context: load AWS's IP ranges and a Tor exit list, show what
    /// is in use, look an address or user agent up
    #[command(subcommand)]
    Enrich(commands::enrich::EnrichCommand),
    /// auditd: watch rules for the placements of a host
    #[command(subcommand)]
    Auditd(commands::evidence::AuditdCommand),
    /// List, show and handle incidents
    #[command(subcommand)]
    Incident(commands::incident::IncidentCommand),
    /// Set up and verify the canary account's trail, bucket, queues and rule
    #[command(subcommand)]
    Aws(commands::canary::AwsCommand),
    /// Consume CloudTrail notifications and events as they arrive
    #[command(subcommand)]
    Watch(commands::watch::WatchCommand),
    /// Alert channels: webhook, Slack, Teams, PagerDuty, Jira, email, syslog, JSON lines file
    #[command(subcommand)]
    Channel(commands::channel::ChannelCommand),
    /// Send a test alert through a channel, a route or every channel
    #[command(subcommand)]
    Alert(commands::channel::AlertCommand),
    /// Runbooks: what responders do, rendered into every alert
    #[command(subcommand)]
    Runbook(commands::routing::RunbookCommand),
    /// Routing rules: which alerts go to which channels
    #[command(subcommand)]
    Route(commands::routing::RouteCommand),
    /// Alert deliveries: dead letters and retries
    #[command(subcommand)]
    Delivery(commands::deliver::DeliveryCommand),
    /// Deliver queued alerts (serve does this too)
    Deliver(commands::deliver::DeliverArgs),
    /// Run the server: web UI, REST API, event receivers, alert dispatcher, health and metrics
    Serve(ServeArgs),
    /// Replicas of `serve` on one database and the periodic jobs they share
    #[command(subcommand)]
    Cluster(commands::cluster::ClusterCommand),
    /// The pool of canary accounts keys are minted in (IAM holds 5000 users an account)
    #[command(subcommand)]
    Account(commands::account::AccountCommand),
    /// Users of the web UI and API, and their API tokens
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Enrolment secrets, which hosts present to ask for their own key
    #[command(subcommand, alias = "enroll")]
    Enrol(commands::enrol::EnrolCommand),
    /// CI runs that took a canary: their tags, windows and expected uses
    #[command(subcommand)]
    Ci(commands::ci::CiCommand),
    /// Decoy resources in a canary account (buckets, parameters, secrets, a table, queues, roles): plan, apply, list, remove
    #[command(subcommand)]
    Decoy(commands::decoy::DecoyCommand),
    /// Enrolled hosts: host, key, last seen, bait state
    Agents {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// One enrolled host: show it, rotate or remove its bait
    #[command(subcommand)]
    Agent(commands::agents::AgentCommand),
    /// The fleet's key pool and sweep
    #[command(subcommand)]
    Fleet(commands::agents::FleetCommand),
    /// Bait placed by automation: snippets for cloud-init, Ansible, Terraform and shell
    #[command(subcommand)]
    Deploy(commands::deploy::DeployCommand),
    /// Placement templates: which bait goes where on an enrolled host
    #[command(subcommand)]
    Template(commands::template::TemplateCommand),
    /// The audit log of every change (server and command line)
    #[command(subcommand)]
    Audit(commands::user::AuditCommand),
    /// Poll IAM's last-used record of every minted key to catch calls CloudTrail never logs
    SafetyNet(commands::safety_net::SafetyNetArgs),
    /// Copy the SQLite database (while the server runs) and its data key to FILE and FILE.key
    Backup(commands::backup::BackupArgs),
    /// Restore a backup into an empty data directory (migrating it if it is older)
    Restore(commands::backup::RestoreArgs),
    /// Shell completions for bash, zsh, fish, elvish or PowerShell, on standard output
    Completions(commands::manual::CompletionsArgs),
    /// Write man pages: honeytrail(1) and one per subcommand (honeytrail-token-mint(1), …)
    Man(commands::manual::ManArgs),
    /// Measurements of the hot path (used by scripts/bench)
    #[command(subcommand, hide = true)]
    Bench(commands::bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !cli.command.keeps_running() {
        restore_sigpipe();
    }
    init_logging(cli.global.verbose, cli.global.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// Commands that serve, follow a source or feed the incident record to
    /// a command action's program. They keep Rust's default of ignoring
    /// SIGPIPE: a program that exits without reading its input, or a closed
    /// log pipe, must cost one write an error, not the whole process.
    fn keeps_running(&self) -> bool {
        matches!(
            self,
            Command::Serve(_)
                | Command::Action(_)
                | Command::Watch(_)
                | Command::Agent(_)
                | Command::Auditd(_)
                | Command::Deliver(_)
        )
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`| head`) would
/// fail with an error on every line; the default action ends the process
/// quietly instead, as other command-line tools do.
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to the default before any
    // thread starts has no memory-safety requirements.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(verbose: u8, format: LogFormat) {
    // The AWS SDK's credential chain logs each provider it tried as a
    // warning with a debug dump of the response; the command itself says in
    // one sentence when no credentials were found, so below -vv only its
    // errors are shown.
    let default = match verbose {
        0 => "warn,aws_config=error",
        1 => "info,honeytrail=info,aws_config=error",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HONEYTRAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only on a terminal, and never with NO_COLOR set (no-color.org):
    // a log file, a pipe or the journal gets no escape codes.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").map_or(true, |v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour);
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Made from the command tree alone: no configuration or store needed.
    match &cli.command {
        Command::Completions(args) => return commands::manual::completions(&mut Cli::command(), args),
        Command::Man(args) => return commands::manual::man(Cli::command(), args),
        _ => {}
    }
    let g = &cli.global;
    let overrides = Overrides {
        config: g.config.clone(),
        data_dir: g.data_dir.clone(),
        database: g.database.clone(),
        aws_endpoint: g.aws_endpoint.clone(),
        aws_region: g.aws_region.clone(),
        aws_profile: g.aws_profile.clone(),
    };
    if let Some(server) = &g.server {
        let remote = commands::remote::Remote::new(server, g.api_token.as_deref(), g.ca_file.as_deref())?;
        return match cli.command {
            Command::Incident(cmd) => commands::incident::remote(&remote, cmd).await,
            Command::Token(cmd) => commands::token::remote(&remote, cmd).await,
            Command::Placement(cmd) => commands::placement::remote(&remote, cmd).await,
            Command::Delivery(cmd) => commands::deliver::remote(&remote, cmd).await,
            Command::Audit(cmd) => commands::user::remote_audit(&remote, cmd).await,
            Command::Render(args) => commands::render::remote(&remote, args).await,
            Command::Action(cmd) => commands::action::remote(&remote, cmd).await,
            _ => anyhow::bail!(
                "this command works against a local store only; with --server, use incident, token, placement, render, action, delivery or audit"
            ),
        };
    }
    let mut config = config::Config::load(&overrides)?;
    if let Command::Serve(args) = &cli.command {
        if let Some(listen) = &args.listen {
            config.serve.listen = listen.clone();
        }
    }
    let app = App::new(config, g.actor.clone());
    // Every change is audited by its operation, with the command line's host.
    match cli.command {
        Command::Init(args) => commands::init::run(&app, args).await,
        Command::Demo(args) => commands::demo::run(args, overrides).await,
        Command::Token(cmd) => commands::token::run(&app, cmd).await,
        Command::Placement(cmd) => commands::placement::run(&app, cmd).await,
        Command::Custody(cmd) => commands::custody::run(&app, cmd).await,
        Command::Render(args) => commands::render::run(&app, args).await,
        Command::Check(args) => commands::check::run(&app, args).await,
        Command::Ingest(args) => commands::ingest::run(&app, args).await,
        Command::Evidence(cmd) => commands::evidence::run(&app, cmd).await,
        Command::Auditd(cmd) => commands::evidence::auditd(&app, cmd).await,
        Command::Enrich(cmd) => commands::enrich::run(&app, cmd).await,
        Command::Action(cmd) => commands::action::run(&app, cmd).await,
        Command::Incident(cmd) => commands::incident::run(&app, cmd).await,
        Command::Aws(cmd) => commands::canary::run(&app, cmd).await,
        Command::Watch(cmd) => commands::watch::run(&app, cmd).await,
        Command::Channel(cmd) => commands::channel::channel(&app, cmd).await,
        Command::Alert(cmd) => commands::channel::alert(&app, cmd).await,
        Command::Runbook(cmd) => commands::routing::runbook(&app, cmd).await,
        Command::Route(cmd) => commands::routing::route(&app, cmd).await,
        Command::Delivery(cmd) => commands::deliver::delivery(&app, cmd).await,
        Command::Deliver(args) => commands::deliver::deliver(&app, args).await,
        Command::Serve(_) => honeytrail_server::run(app).await,
        Command::Cluster(cmd) => commands::cluster::run(&app, cmd).await,
        Command::Account(cmd) => commands::account::run(&app, cmd).await,
        Command::User(cmd) => commands::user::run(&app, cmd).await,
        Command::Enrol(cmd) => commands::enrol::run(&app, cmd).await,
        Command::Ci(cmd) => commands::ci::run(&app, cmd).await,
        Command::Decoy(cmd) => commands::decoy::run(&app, cmd).await,
        Command::Template(cmd) => commands::template::run(&app, cmd).await,
        Command::Agents { json } => commands::agents::list(&app, json).await,
        Command::Agent(cmd) => commands::agents::agent(&app, cmd).await,
        Command::Fleet(cmd) => commands::agents::fleet(&app, cmd).await,
        Command::Deploy(cmd) => commands::deploy::run(&app, cmd).await,
        Command::Audit(cmd) => commands::user::audit(&app, cmd).await,
        Command::SafetyNet(args) => commands::safety_net::run(&app, args).await,
        Command::Bench(cmd) => tokio::task::block_in_place(|| commands::bench::run(&app, cmd)),
        Command::Backup(args) => commands::backup::backup(&app, args).await,
        Command::Restore(args) => commands::backup::restore(&app, args).await,
        Command::Completions(_) | Command::Man(_) => unreachable!("answered before the store is opened"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }

    /// `--help` describes every flag and argument of every command.
    #[test]
    fn every_flag_says_what_it_does() {
        use clap::CommandFactory as _;
        fn walk(cmd: &clap::Command, path: &str, bare: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if a.is_hide_set() || ["help", "version"].contains(&a.get_id().as_str()) {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    let name = a.get_long().map(|l| format!("--{l}")).unwrap_or_else(|| a.get_id().to_string());
                    bare.push(format!("{path} {name}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), bare);
            }
        }
        let mut bare = Vec::new();
        walk(&super::Cli::command(), "honeytrail", &mut bare);
        assert!(bare.is_empty(), "{} flag(s) without help:\n{}", bare.len(), bare.join("\n"));
    }

    /// Every command that changes a record can print it as JSON (`--json`),
    /// for scripts; the rest are named here with the reason they have none.
    #[test]
    fn every_command_that_changes_a_record_prints_it_as_json() {
        use clap::CommandFactory as _;
        const WITHOUT: &[(&str, &str)] = &[
            ("init", "writes a configuration file and says where"),
            ("demo", "a walkthrough for people"),
            ("render", "its output is the bait file itself"),
            ("ingest auditd", "reads a log; ingest's summary is JSON with `ingest --json`"),
            ("auditd rules", "prints audit rules"),
            ("aws verify", "a report for people; the exit code says pass or fail"),
            ("aws policy", "prints a policy document, which is JSON"),
            ("watch sqs", "runs until stopped"),
            ("watch s3", "runs until stopped"),
            ("channel test", "sends a test alert; changes nothing"),
            ("alert test", "sends a test alert; changes nothing"),
            ("runbook list", "reads"),
            ("runbook show", "prints a template"),
            ("deliver", "runs the dispatcher"),
            ("serve", "runs the server"),
            ("deploy snippet", "prints a snippet"),
            ("deploy installer", "prints an installer"),
            ("safety-net", "runs the poller"),
            ("completions", "prints a completion script"),
            ("man", "writes man pages"),
            ("bench", "measurements"),
        ];
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_subcommands().next().is_none() {
                let exempt = WITHOUT.iter().any(|(p, _)| path == *p || path.starts_with(&format!("{p} ")));
                if !exempt && !cmd.get_arguments().any(|a| a.get_id() == "json") {
                    missing.push(path.to_string());
                }
                return;
            }
            for sub in cmd.get_subcommands() {
                let path =
                    if path.is_empty() { sub.get_name().to_string() } else { format!("{path} {}", sub.get_name()) };
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "commands without --json: {missing:?}");
    }
}

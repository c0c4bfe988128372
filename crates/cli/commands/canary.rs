//! `honeytrail aws bootstrap|verify|policy`: the canary account's detection
//! plumbing, and the IAM policies of honeytrail's jobs there.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_aws::bootstrap::{Action, ItemReport, Status};
use honeytrail_aws::policies::Job;

use honeytrail_app::App;

#[derive(Subcommand, Debug)]
pub enum AwsCommand {
    /// Create or repair the trail, bucket, queues, EventBridge rules (every region) and guards (idempotent)
    Bootstrap(BootstrapArgs),
    /// Report, item by item and region by region, what is present, missing or misconfigured, with the fix
    Verify(RegionArgs),
    /// Print the IAM policy of one job: bootstrap, mint (mint and retire), ingest, or the honey users' boundary
    Policy(PolicyArgs),
}

#[derive(Args, Debug)]
pub struct RegionArgs {
    /// The regions to put rules in, comma-separated (default: canary.regions, else every enabled region);
    /// the home region and us-east-1 are always included
    #[arg(long, value_delimiter = ',')]
    regions: Option<Vec<String>>,
}

#[derive(Args, Debug)]
pub struct BootstrapArgs {
    /// Print the plan without changing anything
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    regions: RegionArgs,
}

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// bootstrap, mint, ingest or boundary
    job: String,
    /// The canary account's number (default: asked of STS)
    #[arg(long)]
    account: Option<String>,
}

fn print(reports: &[ItemReport]) {
    for r in reports {
        let status = match &r.status {
            Status::Ok => "ok".to_string(),
            Status::Missing => "MISSING".to_string(),
            Status::Misconfigured(why) => format!("MISCONFIGURED: {why}"),
            Status::Unreadable(why) => format!("CANNOT CHECK: {why}"),
        };
        let action = match r.action {
            None => String::new(),
            Some(Action::Unchanged) => "unchanged".into(),
            Some(Action::Created) => "created".into(),
            Some(Action::Repaired) => "repaired".into(),
            Some(Action::WouldCreate) => "would create".into(),
            Some(Action::WouldRepair) => "would repair".into(),
        };
        let status = if r.action.is_some() && r.status != Status::Ok { format!("(was {status})") } else { status };
        println!("{:<22} {:<12} {status}", r.item.to_string(), action);
        if r.status != Status::Ok && r.action.is_none() {
            println!("{:<22} fix: {}", "", r.item.fix());
        }
    }
}

pub async fn run(app: &App, cmd: AwsCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        AwsCommand::Bootstrap(a) => {
            let config = ops.canary_setup(None, a.regions.regions).await?;
            println!(
                "canary account {} (home region {}): bucket {}, trail {}, queues {} / {}, rule {} in {} region(s): {}{}",
                config.account,
                config.region,
                config.bucket,
                config.trail,
                config.notifications_queue,
                config.events_queue,
                config.rule,
                config.regions.len(),
                config.regions.join(", "),
                if a.dry_run { " — dry run, nothing changes" } else { "" }
            );
            let reports = ops.bootstrap(&actor, &config, a.dry_run).await?;
            print(&reports);
            let unreadable = reports.iter().filter(|r| matches!(r.status, Status::Unreadable(_))).count();
            if unreadable > 0 {
                println!("{unreadable} item(s) could not be checked and were left as they are; grant the bootstrap policy (`honeytrail aws policy bootstrap`) and run again");
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        AwsCommand::Policy(a) => {
            let Some(job) = Job::parse(&a.job) else {
                anyhow::bail!("no job \"{}\": choose bootstrap, mint, ingest or boundary", a.job);
            };
            // Only the names matter here: no region discovery.
            let config = ops.canary_setup(a.account, Some(Vec::new())).await?;
            println!("{}", serde_json::to_string_pretty(&job.policy(&config))?);
            Ok(ExitCode::SUCCESS)
        }
        AwsCommand::Verify(a) => {
            let config = ops.canary_setup(None, a.regions).await?;
            let reports = ops.verify(&actor, &config).await?;
            print(&reports);
            let bad = reports.iter().filter(|r| r.status != Status::Ok).count();
            if bad == 0 {
                println!("everything detection needs is in place");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{bad} item(s) need attention; `honeytrail aws bootstrap` creates or repairs them");
                Ok(ExitCode::from(1))
            }
        }
    }
}

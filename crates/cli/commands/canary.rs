//! `honeytrail aws bootstrap|verify|policy`: the canary account's detection
//! plumbing, and the IAM policies of honeytrail's jobs there.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_app::ops::canary::{CanaryReport, CanarySetup, ItemStatus, SetupItem};
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

fn print(items: &[SetupItem]) {
    for r in items {
        let status = match &r.status {
            ItemStatus::Ok => "ok".to_string(),
            ItemStatus::Missing => "MISSING".to_string(),
            ItemStatus::Misconfigured(why) => format!("MISCONFIGURED: {why}"),
            ItemStatus::Unreadable(why) => format!("CANNOT CHECK: {why}"),
        };
        let status = if r.action.is_some() && r.status != ItemStatus::Ok { format!("(was {status})") } else { status };
        println!("{:<22} {:<12} {status}", r.item, r.action.unwrap_or(""));
        if r.status != ItemStatus::Ok && r.action.is_none() {
            println!("{:<22} fix: {}", "", r.fix);
        }
    }
}

fn print_setup(c: &CanarySetup, dry_run: bool) {
    println!(
        "canary account {} (home region {}): bucket {}, trail {}, queues {} / {}, rule {} in {} region(s): {}{}",
        c.account,
        c.region,
        c.bucket,
        c.trail,
        c.notifications_queue,
        c.events_queue,
        c.rule,
        c.regions.len(),
        c.regions.join(", "),
        if dry_run { " — dry run, nothing changes" } else { "" }
    );
}

pub async fn run(app: &App, cmd: AwsCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        AwsCommand::Bootstrap(a) => {
            let CanaryReport { setup, items } = ops.bootstrap(&actor, a.regions.regions, a.dry_run).await?;
            print_setup(&setup, a.dry_run);
            print(&items);
            let unreadable = items.iter().filter(|r| matches!(r.status, ItemStatus::Unreadable(_))).count();
            if unreadable > 0 {
                println!("{unreadable} item(s) could not be checked and were left as they are; grant the bootstrap policy (`honeytrail aws policy bootstrap`) and run again");
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        AwsCommand::Policy(a) => {
            println!("{}", serde_json::to_string_pretty(&ops.aws_policy(&actor, &a.job, a.account).await?)?);
            Ok(ExitCode::SUCCESS)
        }
        AwsCommand::Verify(a) => {
            let report = ops.verify(&actor, a.regions).await?;
            print(&report.items);
            let bad = report.items.iter().filter(|r| r.status != ItemStatus::Ok).count();
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

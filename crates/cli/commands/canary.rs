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
    Verify(VerifyArgs),
    /// Print the IAM policy of one job: bootstrap, mint (mint and retire), ingest, or the honey users' boundary
    Policy(PolicyArgs),
    /// Finish or undo changes in AWS a killed process left half-done: keys without a row deleted, rows without a key
    /// retired (the server's fleet job does this for changes older than 10 minutes)
    Reconcile(ReconcileArgs),
}

#[derive(Args, Debug)]
pub struct ReconcileArgs {
    /// Take only changes begun at least this many minutes ago; 0 when no other honeytrail process is minting or
    /// retiring now
    #[arg(long, value_name = "MINUTES", default_value_t = 10)]
    older_than: u32,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct RegionArgs {
    /// The regions to put rules in, comma-separated (default: canary.regions, else every enabled region);
    /// the home region and us-east-1 are always included
    #[arg(long, value_delimiter = ',')]
    regions: Option<Vec<String>>,
}

#[derive(Args, Debug)]
pub struct AccountArg {
    /// The account of the pool to work on (`honeytrail account list`); default: every account of the pool,
    /// or the configured account when the pool is empty
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
}

#[derive(Args, Debug)]
pub struct BootstrapArgs {
    /// Print the plan without changing anything
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    account: AccountArg,
    #[command(flatten)]
    out: super::JsonOut,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    regions: RegionArgs,
    #[command(flatten)]
    account: AccountArg,
    #[command(flatten)]
    out: super::JsonOut,
}

#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// bootstrap, mint, ingest, decoys or boundary
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

fn print_setup(name: Option<&str>, c: &CanarySetup, dry_run: bool) {
    println!(
        "canary account {}{} (home region {}): bucket {}, trail {}, queues {} / {}, rule {} in {} region(s): {}{}",
        name.map(|n| format!("{n}, ")).unwrap_or_default(),
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
            let reports = ops.bootstrap(&actor, a.account.account.as_deref(), a.regions.regions, a.dry_run).await?;
            let mut unreadable = 0;
            for CanaryReport { pool_name, setup, items } in &reports {
                if !a.out.json {
                    print_setup(pool_name.as_deref(), setup, a.dry_run);
                    print(items);
                }
                unreadable += items.iter().filter(|r| matches!(r.status, ItemStatus::Unreadable(_))).count();
            }
            if a.out.json {
                super::print_json(&reports)?;
                return Ok(if unreadable > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS });
            }
            if unreadable > 0 {
                println!("{unreadable} item(s) could not be checked and were left as they are; grant the bootstrap policy (`honeytrail aws policy bootstrap`) and run again");
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        AwsCommand::Reconcile(a) => {
            let done = ops.reconcile_aws(&actor, chrono::Duration::minutes(a.older_than as i64)).await?;
            if a.json {
                return super::print_json(&done).map(|_| ExitCode::SUCCESS);
            }
            println!(
                "{} unfinished change(s) in AWS: {} key(s) without a row deleted, {} user(s) deleted, {} token(s) whose key was gone retired",
                done.intents,
                done.keys_deleted.len(),
                done.users_deleted.len(),
                done.tokens_retired.len()
            );
            for what in done
                .keys_deleted
                .iter()
                .map(|k| format!("deleted key {k}"))
                .chain(done.tokens_retired.iter().map(|t| format!("retired {t}")))
            {
                println!("  {what}");
            }
            for left in &done.left {
                println!("  left: {left}");
            }
            Ok(if done.left.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        AwsCommand::Policy(a) => {
            println!("{}", serde_json::to_string_pretty(&ops.aws_policy(&actor, &a.job, a.account).await?)?);
            Ok(ExitCode::SUCCESS)
        }
        AwsCommand::Verify(a) => {
            let reports = ops.verify(&actor, a.account.account.as_deref(), a.regions.regions).await?;
            let mut bad = 0;
            for CanaryReport { pool_name, setup, items } in &reports {
                bad += items.iter().filter(|r| r.status != ItemStatus::Ok).count();
                if a.out.json {
                    continue;
                }
                if reports.len() > 1 || pool_name.is_some() {
                    print_setup(pool_name.as_deref(), setup, false);
                }
                print(items);
            }
            if a.out.json {
                super::print_json(&reports)?;
                return Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) });
            }
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

//! `honeytrail aws bootstrap|verify`: the canary account's detection plumbing.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_aws::bootstrap::{Action, ItemReport, Status};

use honeytrail_app::App;

#[derive(Subcommand, Debug)]
pub enum AwsCommand {
    /// Create or repair the trail, bucket, queues, EventBridge rule and deny-all guard (idempotent)
    Bootstrap(BootstrapArgs),
    /// Report, item by item, what is present, missing or misconfigured, with the fix
    Verify,
}

#[derive(Args, Debug)]
pub struct BootstrapArgs {
    /// Print the plan without changing anything
    #[arg(long)]
    dry_run: bool,
}

fn print(reports: &[ItemReport]) {
    for r in reports {
        let status = match &r.status {
            Status::Ok => "ok".to_string(),
            Status::Missing => "MISSING".to_string(),
            Status::Misconfigured(why) => format!("MISCONFIGURED: {why}"),
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
    let config = ops.canary_setup().await?;
    match cmd {
        AwsCommand::Bootstrap(a) => {
            println!(
                "canary account {} ({}): bucket {}, trail {}, queues {} / {}, rule {}{}",
                config.account,
                config.region,
                config.bucket,
                config.trail,
                config.notifications_queue,
                config.events_queue,
                config.rule,
                if a.dry_run { " — dry run, nothing changes" } else { "" }
            );
            let reports = ops.bootstrap(&actor, &config, a.dry_run).await?;
            print(&reports);
            Ok(ExitCode::SUCCESS)
        }
        AwsCommand::Verify => {
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

//! `honeytrail custody …`: every place a token's secret passed through.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_core::encoding::printable;

use super::{parse_time, print_json, when};
use honeytrail_app::App;

#[derive(Subcommand, Debug)]
pub enum CustodyCommand {
    /// Append a hop: "sent by email to …", "committed to repo …", "copied to laptop …"
    Add(AddArgs),
    /// List a token's chain of custody, oldest first
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// Access key ID or token number (#N)
    token: String,
    /// What happened to the secret, as a responder should read it
    description: String,
    /// Who moved it [default: the actor]
    #[arg(long = "by")]
    by: Option<String>,
    /// When, RFC 3339 [default: now]
    #[arg(long)]
    at: Option<String>,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Access key ID or token number (#N)
    token: String,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

pub async fn run(app: &App, cmd: CustodyCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        CustodyCommand::Add(a) => {
            let at = a.at.as_deref().map(parse_time).transpose()?;
            let h = ops.add_hop(&actor, &a.token, &a.description, a.by.as_deref(), at).await?;
            if a.json {
                return print_json(&h).map(|_| ExitCode::SUCCESS);
            }
            let token = ops.find_token(&a.token).await?;
            println!("hop {} recorded for {}: {}", h.seq, token.access_key_id, h.description);
        }
        CustodyCommand::List(a) => {
            let (token, hops) = ops.hops(&actor, &a.token).await?;
            if a.json {
                return print_json(&hops).map(|_| ExitCode::SUCCESS);
            }
            if hops.is_empty() {
                eprintln!("no custody hops recorded for {}", token.access_key_id);
            }
            for h in hops {
                let by = h.actor.as_deref().map(|x| format!(" (by {})", printable(x))).unwrap_or_default();
                let auto = if h.automatic { " [recorded by honeytrail]" } else { "" };
                println!("{}. {} — {}{by}{auto}", h.seq, when(h.at), printable(&h.description));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `honeytrail custody …`: every place a token's secret passed through.

use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::Utc;
use clap::{Args, Subcommand};
use honeytrail_store::NewHop;

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
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    token: String,
    #[arg(long)]
    json: bool,
}

pub async fn run(app: &App, cmd: CustodyCommand) -> Result<ExitCode> {
    let store = app.store().await?;
    match cmd {
        CustodyCommand::Add(a) => {
            if a.description.trim().is_empty() {
                bail!("the hop description is empty; say where the secret went, e.g. \"sent by email to ops@example.com\"");
            }
            let token = store.find_token(&a.token).await?;
            let at = a.at.as_deref().map(parse_time).transpose()?.unwrap_or_else(Utc::now);
            let hop = NewHop {
                description: a.description.trim().to_string(),
                actor: Some(a.by.unwrap_or_else(|| app.actor())),
                automatic: false,
                at,
            };
            let h = store.add_hop(token.id, &hop).await?;
            if a.json {
                return print_json(&h).map(|_| ExitCode::SUCCESS);
            }
            println!("hop {} recorded for {}: {}", h.seq, token.access_key_id, h.description);
        }
        CustodyCommand::List(a) => {
            let token = store.find_token(&a.token).await?;
            let hops = store.hops(token.id).await?;
            if a.json {
                return print_json(&hops).map(|_| ExitCode::SUCCESS);
            }
            if hops.is_empty() {
                eprintln!("no custody hops recorded for {}", token.access_key_id);
            }
            for h in hops {
                let actor = h.actor.as_deref().map(|x| format!(" (by {x})")).unwrap_or_default();
                let auto = if h.automatic { " [recorded by honeytrail]" } else { "" };
                println!("{}. {} — {}{actor}{auto}", h.seq, when(h.at), h.description);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

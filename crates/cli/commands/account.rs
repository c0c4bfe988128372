//! `honeytrail account add|list|remove`: the pool of canary accounts keys
//! are minted in.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_app::ops::{AccountRequest, PoolAccount};
use honeytrail_app::App;

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Add a canary account to the pool, once honeytrail has reached it (STS tells its number)
    Add {
        #[command(flatten)]
        request: AccountRequest,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Every account of the pool: its number, how it is reached, honey users and keys held, room left
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove an account from the pool (refused while it holds live keys)
    Remove(RemoveArgs),
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// The account's name in the pool
    name: String,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

fn reached_by(a: &PoolAccount) -> String {
    match (&a.role_arn, &a.profile) {
        (Some(role), _) => role.clone(),
        (None, Some(profile)) => format!("profile {profile}"),
        (None, None) => "-".into(),
    }
}

pub async fn run(app: &App, cmd: AccountCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        AccountCommand::Add { request, json } => {
            let a = ops.add_account(&actor, &request).await?;
            if json {
                return print_json(&a).map(|_| ExitCode::SUCCESS);
            }
            println!(
                "added {} (account {}, through {}), up to {} honey users",
                a.name,
                a.account_id,
                reached_by(&a),
                a.max_users
            );
            println!("Make its detection plumbing with: honeytrail aws bootstrap --account {}", a.name);
        }
        AccountCommand::List { json } => {
            let accounts = ops.accounts(&actor).await?;
            if json {
                return print_json(&accounts).map(|_| ExitCode::SUCCESS);
            }
            if accounts.is_empty() {
                eprintln!("the pool is empty: keys are minted in the account [aws] configures; add one with `honeytrail account add NAME --role-arn ARN`");
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        a.account_id.clone(),
                        reached_by(a),
                        format!("{}/{}", a.users, a.max_users),
                        a.keys.to_string(),
                        a.room().to_string(),
                        when(a.added_at),
                    ]
                })
                .collect();
            print_table(&["NAME", "ACCOUNT", "REACHED THROUGH", "USERS", "KEYS", "ROOM", "ADDED"], &rows);
        }
        AccountCommand::Remove(RemoveArgs { name, json }) => {
            let a = ops.remove_account(&actor, &name).await?;
            if json {
                return print_json(&a).map(|_| ExitCode::SUCCESS);
            }
            println!("removed {} (account {}) from the pool", a.name, a.account_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `honeytrail user …` and `honeytrail audit …`: the people who use the web UI
//! and API, their API tokens, and the record of what they changed.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use honeytrail_core::access::Role;

use super::{print_json, print_table, when};
use crate::app::App;
use crate::server::auth::{hash_password, new_password};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user; a one-time password is printed (they choose their own at first sign-in)
    Add {
        name: String,
        /// admin, responder, viewer or employee
        #[arg(long)]
        role: String,
    },
    /// List users
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make a new one-time password for a user
    ResetPassword { name: String },
    /// Change a user's role
    SetRole {
        name: String,
        #[arg(long)]
        role: String,
    },
    /// Disable a user: their sessions end and their API tokens stop working
    Disable { name: String },
    /// Create an API token for a user (shown once; stored hashed)
    Token {
        name: String,
        /// What the token is for
        #[arg(long = "for")]
        purpose: String,
        /// The token's role (at most the user's); default: the user's
        #[arg(long)]
        role: Option<String>,
    },
    /// List API tokens (never the tokens themselves)
    Tokens {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token
    Revoke { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Show the newest entries
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: &App, cmd: UserCommand) -> Result<ExitCode> {
    let store = app.store().await?;
    let actor = app.actor();
    match cmd {
        UserCommand::Add { name, role } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let password = new_password();
            let user = store.add_user(&name, role, &hash_password(&password)?, true).await?;
            store.audit(&actor, "user.create", &user.name, Some(role.as_str()), Some("cli")).await?;
            println!("added {} ({role}); one-time password: {password}", user.name);
            println!("they sign in with it and choose their own; it is not shown again");
        }
        UserCommand::List { json } => {
            let users = store.users().await?;
            if json {
                return print_json(&users).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    let state = if u.disabled {
                        "disabled"
                    } else if u.must_change_password {
                        "must choose a password"
                    } else {
                        "active"
                    };
                    vec![u.name.clone(), u.role.to_string(), state.into(), when(u.created_at)]
                })
                .collect();
            print_table(&["NAME", "ROLE", "STATE", "ADDED"], &rows);
        }
        UserCommand::ResetPassword { name } => {
            let user = store.user(&name).await?;
            let password = new_password();
            store.set_password(user.id, &hash_password(&password)?, true).await?;
            store.audit(&actor, "user.password-reset", &name, None, Some("cli")).await?;
            println!("new one-time password for {name}: {password}");
        }
        UserCommand::SetRole { name, role } => {
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let user = store.set_user_role(&name, role).await?;
            store.audit(&actor, "user.role", &name, Some(role.as_str()), Some("cli")).await?;
            println!("{} is now {}", user.name, user.role);
        }
        UserCommand::Disable { name } => {
            store.disable_user(&name).await?;
            store.audit(&actor, "user.disable", &name, None, Some("cli")).await?;
            println!("{name} is disabled; their sessions ended and their API tokens stopped working");
        }
        UserCommand::Token { name, purpose, role } => {
            let user = store.user(&name).await?;
            if user.disabled {
                bail!("{name} is disabled");
            }
            let role = match role {
                Some(r) => r.parse().map_err(anyhow::Error::msg)?,
                None => user.role,
            };
            let (t, secret) = store.create_api_token(&user, &purpose, role).await?;
            store
                .audit(&actor, "api_token.create", &format!("API token #{}", t.id), Some(role.as_str()), Some("cli"))
                .await?;
            println!("{}", secret.expose());
            eprintln!("API token #{} for {name} ({role}); shown only now, stored hashed", t.id);
        }
        UserCommand::Tokens { json } => {
            let tokens = store.api_tokens(None).await?;
            if json {
                return print_json(&tokens).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        format!("#{}", t.id),
                        t.user.clone(),
                        t.name.clone(),
                        t.role.to_string(),
                        t.last_used_at.map(when).unwrap_or_else(|| "never".into()),
                        t.revoked_at.map(|r| format!("revoked {}", when(r))).unwrap_or_else(|| "active".into()),
                    ]
                })
                .collect();
            print_table(&["ID", "USER", "FOR", "ROLE", "LAST USED", "STATE"], &rows);
        }
        UserCommand::Revoke { id } => {
            store.revoke_api_token(id, None).await?;
            store.audit(&actor, "api_token.revoke", &format!("API token #{id}"), None, Some("cli")).await?;
            println!("API token #{id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit list` against a running server.
pub async fn remote_audit(r: &super::remote::Remote, cmd: AuditCommand) -> Result<ExitCode> {
    let AuditCommand::List { limit, json } = cmd;
    let entries: Vec<honeytrail_store::AuditEntry> =
        serde_json::from_value(r.get(&format!("/audit?limit={}", limit.max(1))).await?)?;
    print_audit(&entries, json)
}

pub async fn audit(app: &App, cmd: AuditCommand) -> Result<ExitCode> {
    let store = app.store().await?;
    let AuditCommand::List { limit, json } = cmd;
    let entries = store.audit_log(limit.max(1)).await?;
    print_audit(&entries, json)
}

fn print_audit(entries: &[honeytrail_store::AuditEntry], json: bool) -> Result<ExitCode> {
    if json {
        return print_json(&entries).map(|_| ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                when(e.at),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.detail.clone().unwrap_or_default(),
                e.from.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["WHEN", "WHO", "ACTION", "TARGET", "DETAIL", "FROM"], &rows);
    Ok(ExitCode::SUCCESS)
}

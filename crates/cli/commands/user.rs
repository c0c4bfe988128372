//! `honeytrail user …` and `honeytrail audit …`: the people who use the web UI
//! and API, their API tokens, and the record of what they changed.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use honeytrail_app::ops::{ApiTokenRequest, AuditEntry, UserRequest};
use honeytrail_app::App;

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user; a one-time password is printed (they choose their own at first sign-in)
    Add {
        #[command(flatten)]
        request: UserRequest,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// List users
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Make a new one-time password for a user
    ResetPassword {
        /// The user's name
        name: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Change a user's role
    SetRole {
        /// The user's name
        name: String,
        /// The new role: viewer, responder, admin or employee
        #[arg(long)]
        role: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Disable a user: their sessions end and their API tokens stop working
    Disable {
        /// The user's name
        name: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Create an API token for a user (shown once; stored hashed)
    Token {
        /// The user it acts as
        name: String,
        #[command(flatten)]
        request: ApiTokenRequest,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// List API tokens (never the tokens themselves)
    Tokens {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token
    Revoke {
        /// The API token's number (`user tokens`)
        id: i64,
        #[command(flatten)]
        out: super::JsonOut,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Show the newest entries
    List {
        /// At most this many entries, newest first
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: &App, cmd: UserCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        UserCommand::Add { request, out } => {
            let added = ops.add_user(&actor, &request).await?;
            return out.print(&added, |a| {
                format!(
                    "added {} ({}); one-time password: {}\nthey sign in with it and choose their own; it is not shown again",
                    a.user.name, a.user.role, a.one_time_password
                )
            });
        }
        UserCommand::List { json } => {
            let users = ops.users(&actor).await?;
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
        UserCommand::ResetPassword { name, out } => {
            let password = ops.reset_password(&actor, &name).await?;
            let record = serde_json::json!({"user": name, "one_time_password": password});
            return out.print(&record, |_| format!("new one-time password for {name}: {password}"));
        }
        UserCommand::SetRole { name, role, out } => {
            let user = ops.set_user_role(&actor, &name, &role).await?;
            return out.print(&user, |u| format!("{} is now {}", u.name, u.role));
        }
        UserCommand::Disable { name, out } => {
            ops.disable_user(&actor, &name).await?;
            return out.print(&serde_json::json!({"user": name, "disabled": true}), |_| {
                format!("{name} is disabled; their sessions ended and their API tokens stopped working")
            });
        }
        UserCommand::Token { name, request, out } => {
            let made = ops.create_api_token(&actor, &name, &request).await?;
            if out.json {
                return out.print(&made, |_| String::new());
            }
            println!("{}", made.token);
            eprintln!(
                "API token #{} for {name} ({}); shown only now, stored hashed",
                made.api_token.id, made.api_token.role
            );
        }
        UserCommand::Tokens { json } => {
            let tokens = ops.api_tokens(&actor).await?;
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
        UserCommand::Revoke { id, out } => {
            ops.revoke_api_token(&actor, id).await?;
            return out
                .print(&serde_json::json!({"api_token": id, "revoked": true}), |_| format!("API token #{id} revoked"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit list` against a running server.
pub async fn remote_audit(r: &super::remote::Remote, cmd: AuditCommand) -> Result<ExitCode> {
    let AuditCommand::List { limit, json } = cmd;
    let entries: Vec<AuditEntry> = serde_json::from_value(serde_json::Value::Array(
        r.get_up_to("/audit", usize::try_from(limit.max(1)).unwrap_or(1)).await?,
    ))?;
    print_audit(&entries, json)
}

pub async fn audit(app: &App, cmd: AuditCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let AuditCommand::List { limit, json } = cmd;
    let entries = ops.audit_log(&app.acting(), limit).await?;
    print_audit(&entries, json)
}

fn print_audit(entries: &[AuditEntry], json: bool) -> Result<ExitCode> {
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

//! `honeytrail enrol …`: the secrets hosts present to enrol themselves.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use honeytrail_app::ops::fleet::EnrolmentSecretRequest;
use honeytrail_app::App;

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum EnrolCommand {
    /// Make an enrolment secret (printed once, stored hashed)
    Create {
        #[command(flatten)]
        request: EnrolmentSecretRequest,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// List enrolment secrets (never the secrets themselves)
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Revoke an enrolment secret: no more hosts enrol with it
    Revoke {
        /// The enrolment secret's number (`enrol list`)
        id: i64,
        #[command(flatten)]
        out: super::JsonOut,
    },
}

pub async fn run(app: &App, cmd: EnrolCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        EnrolCommand::Create { request, out } => {
            let made = ops.create_enrolment(&actor, &request).await?;
            if out.json {
                return out.print(&made, |_| String::new());
            }
            let (e, secret) = (made.enrolment, made.secret);
            println!("{secret}");
            eprintln!(
                "enrolment secret #{} ({}, expires {}); shown only now, stored hashed. It grants a key to whoever holds it: keep it out of repositories and chat",
                e.id,
                e.uses.map(|u| format!("{u} use(s)")).unwrap_or_else(|| "unlimited uses".into()),
                when(e.expires_at)
            );
        }
        EnrolCommand::List { json } => {
            let all = ops.enrolments(&actor).await?;
            if json {
                return print_json(&all).map(|_| ExitCode::SUCCESS);
            }
            let now = chrono::Utc::now();
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|e| {
                    vec![
                        format!("#{}", e.id),
                        format!("{}/{}", e.used, e.uses.map(|u| u.to_string()).unwrap_or_else(|| "∞".into())),
                        when(e.expires_at),
                        honeytrail_core::model::labels_text(&e.labels),
                        e.template.clone().unwrap_or_default(),
                        guards(e),
                        e.refused.to_string(),
                        e.created_by.clone(),
                        e.state(now).into(),
                    ]
                })
                .collect();
            print_table(&["ID", "USED", "EXPIRES", "LABELS", "TEMPLATE", "GUARDS", "REFUSED", "BY", "STATE"], &rows);
        }
        EnrolCommand::Revoke { id, out } => {
            ops.revoke_enrolment(&actor, id).await?;
            return out.print(&serde_json::json!({"enrolment": id, "revoked": true}), |_| {
                format!("enrolment secret #{id} revoked; hosts already enrolled keep their keys")
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The guards of a secret in a few words: `from 10.0.0.0/8; 5 expected; ec2 123456789012`.
fn guards(e: &honeytrail_app::ops::EnrolmentSecret) -> String {
    let g = &e.guard;
    let mut parts = Vec::new();
    if !g.allowed_from.is_empty() {
        parts.push(format!("from {}", g.allowed_from.join(",")));
    }
    if let Some(n) = g.expected {
        parts.push(format!("{n} expected"));
    }
    if !g.ec2_accounts.is_empty() {
        parts.push(format!("ec2 {}", g.ec2_accounts.join(",")));
    }
    parts.join("; ")
}

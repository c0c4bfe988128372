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
    Create(CreateArgs),
    /// List enrolment secrets (never the secrets themselves)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an enrolment secret: no more hosts enrol with it
    Revoke { id: i64 },
}

/// `honeytrail enrol create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// How many hosts may enrol with it
    #[arg(long, conflicts_with = "unlimited", required_unless_present = "unlimited")]
    uses: Option<i64>,
    /// Any number of hosts, until it expires
    #[arg(long)]
    unlimited: bool,
    /// How long it lives: 30m, 12h, 7d, 2w (at most 90 days)
    #[arg(long, default_value = "7d")]
    expires: String,
    /// A label for every key handed out through it, name=value (repeatable)
    #[arg(long = "label")]
    labels: Vec<String>,
    /// The placement template the hosts use (`honeytrail template list`)
    #[arg(long)]
    template: Option<String>,
    /// Only hosts enrolling from this network (CIDR or address; repeatable);
    /// others are refused and raise an incident
    #[arg(long = "from", value_name = "CIDR")]
    allowed_from: Vec<String>,
    /// How many hosts are expected: each one beyond it raises an incident
    #[arg(long = "expect", value_name = "N")]
    expected: Option<i64>,
    /// Bind to EC2 instances: each host proves it is one with its signed
    /// identity document (`honeytrail-agent enrol --ec2-identity`), once per instance
    #[arg(long, value_parser = ["ec2"], requires = "ec2_accounts")]
    bind: Option<String>,
    /// With --bind ec2: an AWS account whose instances may enrol (repeatable)
    #[arg(long = "account", value_name = "ID", requires = "bind")]
    ec2_accounts: Vec<String>,
}

impl From<CreateArgs> for EnrolmentSecretRequest {
    fn from(a: CreateArgs) -> EnrolmentSecretRequest {
        EnrolmentSecretRequest {
            labels: a.labels,
            template: a.template,
            allowed_from: a.allowed_from,
            expected: a.expected,
            bind: a.bind,
            ec2_accounts: a.ec2_accounts,
            ..EnrolmentSecretRequest::new(a.uses, a.unlimited, &a.expires)
        }
    }
}

pub async fn run(app: &App, cmd: EnrolCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        EnrolCommand::Create(args) => {
            let request = EnrolmentSecretRequest::from(args);
            let (e, secret) = ops.create_enrolment(&actor, request).await?;
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
        EnrolCommand::Revoke { id } => {
            ops.revoke_enrolment(&actor, id).await?;
            println!("enrolment secret #{id} revoked; hosts already enrolled keep their keys");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The guards of a secret in a few words: `from 10.0.0.0/8; 5 expected; ec2 123456789012`.
fn guards(e: &honeytrail_store::EnrolmentSecret) -> String {
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

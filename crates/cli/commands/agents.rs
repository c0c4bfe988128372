//! `honeytrail agents`, `honeytrail agent …` and `honeytrail fleet …`: the
//! enrolled hosts, the commands sent to them, the key pool.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use honeytrail_app::ops::Agent;
use honeytrail_app::App;
use honeytrail_core::fleet::CommandKind;

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// One host: its facts, bait files and commands
    Show {
        /// The agent's number (`honeytrail agents`)
        id: i64,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Write a new key in place of the host's (on its next heartbeat); the old key is retired once it confirms.
    /// A session canary's host gets a fresh session of the same canary instead
    Rotate {
        /// The agent's number (`honeytrail agents`)
        id: i64,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Take the host's honey entries out (on its next heartbeat), every other byte unchanged; the key is retired
    Remove {
        /// The agent's number (`honeytrail agents`)
        id: i64,
        #[command(flatten)]
        out: super::JsonOut,
    },
}

#[derive(Subcommand, Debug)]
pub enum FleetCommand {
    /// The key pool and the canary account's IAM user count
    Pool {
        /// Mint keys until the pool holds fleet.pool_size (serve does this in the background)
        #[arg(long)]
        fill: bool,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Find silent hosts, enrolments never confirmed and reads of bait with no key use after them, now
    /// (serve does this every minute)
    Sweep {
        #[command(flatten)]
        out: super::JsonOut,
    },
}

fn last_seen(a: &Agent) -> String {
    a.last_seen_at.map(when).unwrap_or_else(|| "never".into())
}

pub async fn list(app: &App, json: bool) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let agents = ops.agents(&app.acting()).await?;
    if json {
        return print_json(&agents).map(|_| ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                format!("#{}", a.id),
                a.host.hostname.clone(),
                a.access_key_id.clone().unwrap_or_default(),
                a.state.as_str().into(),
                a.bait_state.clone(),
                a.files.iter().filter(|f| f.removed_at.is_none()).count().to_string(),
                last_seen(a),
                a.commands
                    .iter()
                    .rev()
                    .find(|c| c.open())
                    .map(|c| format!("{} {}", c.kind.as_str(), c.state))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["ID", "HOST", "KEY", "STATE", "BAIT", "FILES", "LAST SEEN", "COMMAND"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn agent(app: &App, cmd: AgentCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        AgentCommand::Show { id, json } => {
            let a = ops.agent(&actor, id).await?;
            if json {
                return print_json(&a).map(|_| ExitCode::SUCCESS);
            }
            let p = |s: &str| honeytrail_core::encoding::printable(s).into_owned();
            println!("agent #{} on {} ({}), bait {}", a.id, p(&a.host.hostname), a.state.as_str(), a.bait_state);
            for (name, v) in [
                ("machine id", &a.host.machine_id),
                ("serial", &a.host.dmi_serial),
                ("os", &a.host.os),
                ("instance", &a.host.instance_id),
                ("enrolled from", &a.source_address),
            ] {
                if let Some(v) = v {
                    println!("  {name}: {}", p(v));
                }
            }
            println!("  key: {}  template: {}", a.access_key_id.clone().unwrap_or_default(), a.template.name);
            if let Some(expires) = a.session_expires_at {
                let state = if expires <= chrono::Utc::now() { "expired" } else { "expires" };
                println!("  session canary: the session on the host {state} {}", when(expires));
            }
            println!("  enrolled {} (enrolment #{}), last seen {}", when(a.enrolled_at), a.enrolment_id, last_seen(&a));
            if let Some(d) = &a.detail {
                println!("  detail: {}", p(d));
            }
            if a.evidence_dropped > 0 || a.evidence_refused > 0 {
                println!(
                    "  reads of the bait: {} dropped by the agent, {} refused by the server (over quota or never placed)",
                    a.evidence_dropped, a.evidence_refused
                );
            }
            for f in &a.files {
                let gone = f.removed_at.map(|t| format!(" (removed {})", when(t))).unwrap_or_default();
                println!(
                    "  file {} of {}: {}{gone}",
                    p(&f.path),
                    p(f.local_user.as_deref().unwrap_or("?")),
                    f.presence.as_str()
                );
            }
            for c in &a.commands {
                println!(
                    "  command #{} {} {} (by {}, {})",
                    c.id,
                    c.kind.as_str(),
                    c.state,
                    p(&c.requested_by),
                    when(c.requested_at)
                );
            }
        }
        AgentCommand::Rotate { id, out } | AgentCommand::Remove { id, out } => {
            let kind =
                if matches!(cmd, AgentCommand::Rotate { .. }) { CommandKind::Rotate } else { CommandKind::Remove };
            let c = ops.command_agent(&actor, id, kind).await?;
            return out.print(&c, |c| {
                format!(
                    "command #{} ({}) is pending: agent #{id} carries it out on its next heartbeat",
                    c.id,
                    c.kind.as_str()
                )
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn fleet(app: &App, cmd: FleetCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    match cmd {
        FleetCommand::Pool { fill, out } => {
            let minted = if fill { Some(ops.fill_pool(usize::MAX).await?) } else { None };
            let s = ops.pool_state().await?;
            if out.json {
                return out.print(&serde_json::json!({"minted": minted, "pool": s}), |_| String::new());
            }
            if let Some(minted) = minted {
                println!("minted {minted} key(s) into the pool");
            }
            println!(
                "pool: {} of {} key(s) ready; honey IAM users: {} of a quota of {}",
                s.size, s.target, s.iam_users, s.quota
            );
            if let Some(w) = s.warning {
                eprintln!("warning: {w}");
            }
        }
        FleetCommand::Sweep { out } => {
            let s = ops.fleet_sweep().await?;
            let t = ops.evidence_sweep().await?;
            if out.json {
                return out.print(&serde_json::json!({"fleet": s, "evidence": t}), |_| String::new());
            }
            println!(
                "{} host(s) newly stale, {} enrolment(s) never confirmed (their keys retired)",
                s.stale, s.unconfirmed
            );
            println!(
                "{} read(s) of bait followed by a use of the key, {} with none (bait-touched incidents)",
                t.used, t.touched
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `honeytrail action`: automated response — define actions, list their
//! runs, approve, cancel and undo them, and run one pass of the runner.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_app::ops::{Action, ActionRequest, ActionRun};
use honeytrail_app::App;

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum ActionCommand {
    /// Add an action: what it does, when, and for which incidents
    Add(Box<AddArgs>),
    /// The actions, with their mode and targets
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Change an action's mode (off stops it deciding anything new)
    Set {
        /// The action's name (`action list`)
        name: String,
        /// off, dry-run, approval, grace:15m, automatic
        #[arg(long)]
        mode: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Remove an action that never ran
    Remove {
        /// The action's name (`action list`)
        name: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Runs of actions on incidents, newest first
    Runs {
        /// Only this incident's
        #[arg(long)]
        incident: Option<i64>,
        /// Only runs in this state (awaiting-approval, waiting, done, failed, …)
        #[arg(long)]
        state: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Approve a run that waits for approval: it starts within the rate limit
    Approve {
        /// The run's number (`action runs`)
        run: i64,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Cancel a run that has not started
    Cancel {
        /// The run's number (`action runs`)
        run: i64,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Undo a done run: restore exactly the state before it, or say why not
    Undo {
        /// The run's number (`action runs`)
        run: i64,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// One pass of the response runner (what `serve` does every few seconds)
    Pass {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

/// `action add`: the action, declared once for every front door, and how
/// to print it.
#[derive(Args, Debug)]
pub struct AddArgs {
    #[command(flatten)]
    pub request: ActionRequest,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

fn target_of(a: &Action) -> String {
    let s = &a.settings;
    let mut parts = Vec::new();
    if let Some(i) = &s.instance_id {
        parts.push(format!("instance {i}"));
    }
    if let Some(u) = &s.iam_user {
        parts.push(format!("user {u}"));
    }
    if let Some(r) = &s.iam_role {
        parts.push(format!("role {r}"));
    }
    if let Some(g) = &s.quarantine_group {
        parts.push(format!("quarantine {g}"));
    }
    if let Some(r) = &s.role_arn {
        parts.push(format!("via {r}"));
    }
    if !s.command.is_empty() {
        parts.push(s.command.join(" "));
    }
    if parts.is_empty() {
        "from the placement".into()
    } else {
        parts.join(", ")
    }
}

fn print_actions(actions: &[Action]) {
    let rows: Vec<Vec<String>> = actions
        .iter()
        .map(|a| {
            let mut conditions: Vec<String> = a.trigger.when.iter().map(|c| format!("if {c}")).collect();
            conditions.extend(a.trigger.unless.iter().map(|c| format!("unless {c}")));
            if let Some(r) = &a.route {
                conditions.push(format!("route {r}"));
            }
            vec![
                a.name.clone(),
                a.kind.as_str().into(),
                a.trigger.mode.to_string(),
                if conditions.is_empty() { "every incident".into() } else { conditions.join(", ") },
                target_of(a),
            ]
        })
        .collect();
    print_table(&["NAME", "KIND", "MODE", "FOR", "TARGET"], &rows);
}

fn print_runs(runs: &[ActionRun]) {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let detail = r.reason.clone().or_else(|| r.output.clone()).or_else(|| r.plan.clone()).unwrap_or_default();
            let detail: String = detail.lines().next().unwrap_or("").chars().take(120).collect();
            vec![
                r.id.to_string(),
                format!("#{}", r.incident_id),
                r.action.clone(),
                r.state.to_string(),
                r.target.clone(),
                when(r.updated_at),
                detail,
            ]
        })
        .collect();
    print_table(&["RUN", "INCIDENT", "ACTION", "STATE", "TARGET", "UPDATED", "DETAIL"], &rows);
}

fn print_run(verb: &str, run: &ActionRun, out: super::JsonOut) -> Result<ExitCode> {
    out.print(run, |run| {
        let mut text = format!(
            "action run #{} ({} on incident #{}) {verb}: now {}",
            run.id, run.action, run.incident_id, run.state
        );
        for line in [&run.output, &run.reason].into_iter().flatten() {
            text.push_str(&format!("\n  {}", honeytrail_core::encoding::printable(line)));
        }
        text
    })
}

pub async fn run(app: &App, cmd: ActionCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        ActionCommand::Add(a) => {
            let AddArgs { request, json } = *a;
            let action = ops.add_action(&actor, &request).await?;
            if json {
                return print_json(&action).map(|_| ExitCode::SUCCESS);
            }
            println!("action {} added: {} in mode {}", action.name, action.kind.as_str(), action.trigger.mode);
        }
        ActionCommand::List { json } => {
            let actions = ops.list_actions(&actor).await?;
            if json {
                return print_json(&actions).map(|_| ExitCode::SUCCESS);
            }
            print_actions(&actions);
        }
        ActionCommand::Set { name, mode, out } => {
            let action = ops.set_action_mode(&actor, &name, &mode).await?;
            return out.print(&action, |a| format!("action {} is now in mode {}", a.name, a.trigger.mode));
        }
        ActionCommand::Remove { name, out } => {
            ops.remove_action(&actor, &name).await?;
            return out.print(&serde_json::json!({"removed": name}), |_| format!("action {name} removed"));
        }
        ActionCommand::Runs { incident, state, json } => {
            let runs = ops.action_runs(&actor, incident, state.as_deref()).await?;
            if json {
                return print_json(&runs).map(|_| ExitCode::SUCCESS);
            }
            print_runs(&runs);
        }
        ActionCommand::Approve { run, out } => return print_run("approved", &ops.approve_run(&actor, run).await?, out),
        ActionCommand::Cancel { run, out } => return print_run("cancelled", &ops.cancel_run(&actor, run).await?, out),
        ActionCommand::Undo { run, out } => return print_run("undone", &ops.undo_action_run(&actor, run).await?, out),
        ActionCommand::Pass { json } => {
            let summary = ops.response_pass().await?;
            if json {
                return print_json(&summary).map(|_| ExitCode::SUCCESS);
            }
            println!(
                "response pass: {} decided, {} started ({} done, {} failed), {} held by the rate limit, {} cancelled",
                summary.decided, summary.started, summary.done, summary.failed, summary.held, summary.cancelled
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The action commands against a running server.
pub async fn remote(r: &super::remote::Remote, cmd: ActionCommand) -> Result<ExitCode> {
    use super::remote::q;
    match cmd {
        ActionCommand::List { json } => {
            let actions = r.get("/actions").await?;
            if json {
                return print_json(&actions).map(|_| ExitCode::SUCCESS);
            }
            let actions: Vec<serde_json::Value> = serde_json::from_value(actions)?;
            for a in actions {
                println!("{}\t{}\t{}", a["name"].as_str().unwrap_or(""), a["kind"].as_str().unwrap_or(""), a["trigger"]["mode"]);
            }
        }
        ActionCommand::Runs { incident, state, json } => {
            let mut path = "/actions/runs?".to_string();
            if let Some(i) = incident {
                path.push_str(&format!("incident={i}&"));
            }
            if let Some(s) = state {
                path.push_str(&format!("state={}", q(&s)));
            }
            let runs = r.get(&path).await?;
            if json {
                return print_json(&runs).map(|_| ExitCode::SUCCESS);
            }
            print_runs(&serde_json::from_value::<Vec<ActionRun>>(runs)?);
        }
        ActionCommand::Approve { run, out } => return remote_verb(r, run, "approve", "approved", out).await,
        ActionCommand::Cancel { run, out } => return remote_verb(r, run, "cancel", "cancelled", out).await,
        ActionCommand::Undo { run, out } => return remote_verb(r, run, "undo", "undone", out).await,
        _ => anyhow::bail!("with --server, use action list, runs, approve, cancel or undo; add, set, remove and pass work on the server's own command line"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn remote_verb(
    r: &super::remote::Remote,
    run: i64,
    verb: &str,
    done: &str,
    out: super::JsonOut,
) -> Result<ExitCode> {
    let v = r.post(&format!("/actions/runs/{run}/{verb}"), &serde_json::json!({})).await?;
    out.print(&v, |v| {
        format!(
            "action run #{run} ({} on incident #{}) {done}: now {}",
            v["action"].as_str().unwrap_or("?"),
            v["incident_id"],
            v["state"].as_str().unwrap_or("?")
        )
    })
}

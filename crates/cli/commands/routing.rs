//! `honeytrail route …` and `honeytrail runbook …`: which channels get an
//! alert, and what responders are told to do.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::{print_json, print_table};
use honeytrail_app::App;

#[derive(Subcommand, Debug)]
pub enum RunbookCommand {
    /// List runbooks (the shipped default applies when none is selected)
    List,
    /// Print a runbook's template (`default-shipped` for the built-in one)
    Show {
        /// The runbook's name
        name: String,
    },
    /// Create or replace a runbook from a MiniJinja template file
    Set {
        /// The runbook's name
        name: String,
        /// label:NAME[=VALUE], format:FORMAT (a placement's bait format) or default
        #[arg(long = "for")]
        selector: String,
        /// The MiniJinja template file (see `runbook show default-shipped`)
        #[arg(long)]
        file: std::path::PathBuf,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// Remove a runbook
    Remove {
        /// The runbook's name
        name: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
}

pub async fn runbook(app: &App, cmd: RunbookCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        RunbookCommand::List => {
            let rows: Vec<Vec<String>> =
                ops.runbooks(&actor).await?.runbooks.into_iter().map(|r| vec![r.name, r.selector]).collect();
            if rows.is_empty() {
                eprintln!(
                    "no runbooks set: alerts carry the shipped default (`honeytrail runbook show default-shipped`)"
                );
            } else {
                print_table(&["NAME", "FOR"], &rows);
            }
        }
        RunbookCommand::Show { name } => {
            let all = ops.runbooks(&actor).await?;
            if name == "default-shipped" {
                print!("{}", all.default_shipped);
            } else {
                let r = all
                    .runbooks
                    .into_iter()
                    .find(|r| r.name == name)
                    .with_context(|| format!("no runbook named {name:?}"))?;
                println!("# for {}", r.selector);
                print!("{}", r.template);
            }
        }
        RunbookCommand::Set { name, selector, file, out } => {
            let template = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let request = honeytrail_app::ops::RunbookRequest { selector, template };
            ops.set_runbook(&actor, &name, &request).await?;
            let record = serde_json::json!({"name": name, "selector": request.selector, "template": request.template});
            return out.print(&record, |_| format!("runbook {name:?} set"));
        }
        RunbookCommand::Remove { name, out } => {
            ops.remove_runbook(&actor, &name).await?;
            return out.print(&serde_json::json!({"removed": name}), |_| format!("runbook {name:?} removed"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
pub enum RouteCommand {
    /// Send alerts matching all given conditions to the channels
    Add(RouteArgs),
    /// List routes
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Remove a route
    Remove {
        /// The route's name (`route list`)
        name: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
}

#[derive(Args, Debug)]
pub struct RouteArgs {
    #[command(flatten)]
    out: super::JsonOut,
    /// The route's name
    name: String,
    /// Channel to send to (repeatable)
    #[arg(long = "channel", required = true)]
    channels: Vec<String>,
    /// Token label NAME or NAME=VALUE
    #[arg(long)]
    label: Option<String>,
    /// A placement owner contains this (case-insensitive)
    #[arg(long)]
    owner: Option<String>,
    /// A placement host contains this (case-insensitive)
    #[arg(long)]
    host: Option<String>,
    /// Only for incidents in these states (repeatable)
    #[arg(long = "state")]
    states: Vec<String>,
    /// Only for incidents at least this severe: low, medium, high or critical
    #[arg(long)]
    min_severity: Option<String>,
    /// Use only when no other route matches
    #[arg(long)]
    default: bool,
    /// Only when the incident's context has this (repeatable): network=NAME,
    /// tool=NAME or tool=*, tor, aws=SERVICE|REGION, country=CC, asn=N, own-network
    #[arg(long = "if", value_name = "CONDITION")]
    when: Vec<String>,
    /// Not when the incident's context has this (repeatable; as --if)
    #[arg(long, value_name = "CONDITION")]
    unless: Vec<String>,
}

pub async fn route(app: &App, cmd: RouteCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        RouteCommand::Add(a) => {
            let label =
                honeytrail_core::LabelFilter::parse(a.label.as_deref().unwrap_or(""))?.map(|l| (l.name, l.value));
            let states = a.states.iter().map(|s| s.parse()).collect::<Result<Vec<_>, _>>()?;
            let route = honeytrail_core::route::Route {
                name: a.name,
                channels: a.channels,
                label,
                owner: a.owner,
                host: a.host,
                states,
                min_severity: a.min_severity.as_deref().map(str::parse).transpose()?,
                default: a.default,
                when: honeytrail_core::enrich::parse_conditions(&a.when)?,
                unless: honeytrail_core::enrich::parse_conditions(&a.unless)?,
            };
            ops.add_route(&actor, &route).await?;
            return a.out.print(&route, |r| format!("route {:?} added: → {}", r.name, r.channels.join(", ")));
        }
        RouteCommand::List { json } => {
            let routes = ops.routes(&actor).await?;
            if json {
                return print_json(&routes).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = routes
                .iter()
                .map(|r| {
                    let mut when = Vec::new();
                    if let Some((n, v)) = &r.label {
                        when.push(format!("label {n}{}", v.as_deref().map(|v| format!("={v}")).unwrap_or_default()));
                    }
                    if let Some(o) = &r.owner {
                        when.push(format!("owner ~ {o}"));
                    }
                    if let Some(h) = &r.host {
                        when.push(format!("host ~ {h}"));
                    }
                    if !r.states.is_empty() {
                        when.push(format!(
                            "state in {}",
                            r.states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("|")
                        ));
                    }
                    if let Some(min) = r.min_severity {
                        when.push(format!("severity ≥ {min}"));
                    }
                    for c in &r.when {
                        when.push(format!("if {c}"));
                    }
                    for c in &r.unless {
                        when.push(format!("unless {c}"));
                    }
                    if r.default {
                        when.push("no other route matched".into());
                    }
                    vec![
                        r.name.clone(),
                        if when.is_empty() { "always".into() } else { when.join(", ") },
                        r.channels.join(", "),
                    ]
                })
                .collect();
            if rows.is_empty() {
                eprintln!("no routes: every channel gets every alert");
            } else {
                print_table(&["NAME", "WHEN", "CHANNELS"], &rows);
            }
        }
        RouteCommand::Remove { name, out } => {
            ops.remove_route(&actor, &name).await?;
            return out.print(&serde_json::json!({"removed": name}), |_| format!("route {name:?} removed"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `honeytrail route …` and `honeytrail runbook …`: which channels get an
//! alert, and what responders are told to do.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::{print_json, print_table};
use crate::app::App;

#[derive(Subcommand, Debug)]
pub enum RunbookCommand {
    /// List runbooks (the shipped default applies when none is selected)
    List,
    /// Print a runbook's template (`default-shipped` for the built-in one)
    Show { name: String },
    /// Create or replace a runbook from a MiniJinja template file
    Set {
        name: String,
        /// label:NAME[=VALUE], format:FORMAT (a placement's bait format) or default
        #[arg(long = "for")]
        selector: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Remove a runbook
    Remove { name: String },
}

pub async fn runbook(app: &App, cmd: RunbookCommand) -> Result<ExitCode> {
    use honeytrail_alert::runbook;
    let store = app.store().await?;
    match cmd {
        RunbookCommand::List => {
            let rows: Vec<Vec<String>> =
                store.runbooks().await?.into_iter().map(|r| vec![r.name, r.selector]).collect();
            if rows.is_empty() {
                eprintln!(
                    "no runbooks set: alerts carry the shipped default (`honeytrail runbook show default-shipped`)"
                );
            } else {
                print_table(&["NAME", "FOR"], &rows);
            }
        }
        RunbookCommand::Show { name } => {
            if name == "default-shipped" {
                print!("{}", runbook::DEFAULT_TEMPLATE);
            } else {
                let r = store
                    .runbooks()
                    .await?
                    .into_iter()
                    .find(|r| r.name == name)
                    .with_context(|| format!("no runbook named {name:?}"))?;
                println!("# for {}", r.selector);
                print!("{}", r.template);
            }
        }
        RunbookCommand::Set { name, selector, file } => {
            runbook::check_selector(&selector).map_err(anyhow::Error::msg)?;
            let template = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            runbook::check(&template).map_err(anyhow::Error::msg)?;
            store.set_runbook(&honeytrail_store::StoredRunbook { name: name.clone(), selector, template }).await?;
            println!("runbook {name:?} set");
        }
        RunbookCommand::Remove { name } => {
            store.remove_runbook(&name).await?;
            println!("runbook {name:?} removed");
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
        #[arg(long)]
        json: bool,
    },
    /// Remove a route
    Remove { name: String },
}

#[derive(Args, Debug)]
pub struct RouteArgs {
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
}

pub async fn route(app: &App, cmd: RouteCommand) -> Result<ExitCode> {
    let store = app.store().await?;
    match cmd {
        RouteCommand::Add(a) => {
            let label = a.label.as_deref().map(|l| match l.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (l.to_string(), None),
            });
            let states =
                a.states.iter().map(|s| s.parse()).collect::<Result<Vec<_>, String>>().map_err(anyhow::Error::msg)?;
            let route = honeytrail_core::route::Route {
                name: a.name,
                channels: a.channels,
                label,
                owner: a.owner,
                host: a.host,
                states,
                min_severity: a.min_severity.as_deref().map(str::parse).transpose().map_err(anyhow::Error::msg)?,
                default: a.default,
            };
            store.add_route(&route).await?;
            println!("route {:?} added: → {}", route.name, route.channels.join(", "));
        }
        RouteCommand::List { json } => {
            let routes = store.routes().await?;
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
        RouteCommand::Remove { name } => {
            store.remove_route(&name).await?;
            println!("route {name:?} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

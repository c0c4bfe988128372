//! `honeytrail enrich`: the data that gives every incident its context —
//! AWS's IP ranges and a Tor exit list loaded from files, the own networks
//! and user-agent lists of the configuration — and lookups against it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use honeytrail_app::App;
use honeytrail_core::enrich::DATA_FILE_MAX;

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum EnrichCommand {
    /// Load a data set, replacing the one before: `aws-ranges` (AWS's
    /// ip-ranges.json) or `tor` (the Tor bulk exit list or exit-addresses)
    Load {
        /// aws-ranges or tor
        kind: String,
        /// The file; `-` for standard input
        file: PathBuf,
        #[command(flatten)]
        out: super::JsonOut,
    },
    /// What incident context is computed from, with dates
    Show {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// What the context would say of an address and/or a user agent
    Lookup {
        /// A source IP address
        #[arg(long = "ip", value_name = "ADDRESS")]
        address: Option<String>,
        /// A user agent to look up (as CloudTrail recorded it)
        #[arg(long)]
        user_agent: Option<String>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Forget a loaded data set (aws-ranges or tor)
    Remove {
        /// What to remove: aws-ranges or tor
        kind: String,
        #[command(flatten)]
        out: super::JsonOut,
    },
}

fn read_file(path: &PathBuf) -> Result<String> {
    use std::io::Read;
    let mut text = String::new();
    let limit = DATA_FILE_MAX as u64 + 1;
    if path.as_os_str() == "-" {
        std::io::stdin().take(limit).read_to_string(&mut text).context("cannot read standard input as text")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(limit)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {} as text", path.display()))?;
    }
    Ok(text)
}

pub async fn run(app: &App, cmd: EnrichCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        EnrichCommand::Load { kind, file, out } => {
            let text = read_file(&file)?;
            let info = ops.enrich_load(&actor, &kind, &text).await?;
            return out.print(&info, |info| {
                format!(
                    "loaded {} ({} entries{}); incidents are labelled with it from now on",
                    info.kind,
                    info.entries,
                    info.published.as_deref().map(|p| format!(", published {p}")).unwrap_or_default()
                )
            });
        }
        EnrichCommand::Show { json } => {
            let status = ops.enrich_status(&actor).await?;
            if json {
                return print_json(&status).map(|_| ExitCode::SUCCESS);
            }
            for line in &status.data {
                println!("{line}");
            }
            for p in &status.problems {
                eprintln!("left out: {p}");
            }
            if !status.loaded.is_empty() {
                println!();
                let rows: Vec<Vec<String>> = status
                    .loaded
                    .iter()
                    .map(|i| {
                        vec![
                            i.kind.clone(),
                            i.published.clone().unwrap_or_else(|| "–".into()),
                            i.entries.to_string(),
                            when(i.loaded_at),
                            i.loaded_by.clone(),
                        ]
                    })
                    .collect();
                print_table(&["KIND", "PUBLISHED", "ENTRIES", "LOADED", "BY"], &rows);
            }
            if status.loaded.iter().all(|i| i.kind != "aws-ranges") {
                eprintln!("no AWS IP ranges: load https://ip-ranges.amazonaws.com/ip-ranges.json with `honeytrail enrich load aws-ranges FILE`");
            }
        }
        EnrichCommand::Lookup { address, user_agent, json } => {
            let found = ops.enrich_lookup(&actor, address.as_deref(), user_agent.as_deref()).await?;
            if json {
                return print_json(&found).map(|_| ExitCode::SUCCESS);
            }
            if let Some(s) = &found.source {
                let label = if s.label.is_empty() { "nothing known" } else { s.label.as_str() };
                println!("{}: {label}", honeytrail_core::encoding::printable(&s.address));
            }
            match (&found.agent, &user_agent) {
                (Some(a), _) => println!("user agent: {} ({})", a.label, a.sources.join("; ")),
                (None, Some(_)) => println!("user agent: no attacker distribution or tool known"),
                _ => {}
            }
        }
        EnrichCommand::Remove { kind, out } => {
            ops.enrich_remove(&actor, &kind).await?;
            return out.print(&serde_json::json!({"removed": kind}), |_| format!("removed {kind}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

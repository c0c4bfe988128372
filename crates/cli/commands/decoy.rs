//! `honeytrail decoy …`: decoy resources that make a canary account look
//! lived in; any access to one is an incident (docs/decoys.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use honeytrail_app::ops::{DecoyPlan, DecoyPlanRequest};
use honeytrail_app::App;
use honeytrail_core::encoding::printable;

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum DecoyCommand {
    /// Plan decoys: print the names (JSON with --json, or into --out), make nothing
    Plan {
        #[command(flatten)]
        what: PlanArgs,
        /// Write the plan to this file, for `decoy apply --plan`
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Make decoys in the canary account and register them: a plan file, or a new plan
    Apply {
        /// A plan written by `decoy plan --out`
        #[arg(long, conflicts_with_all = ["counts", "inventory"])]
        plan: Option<PathBuf>,
        #[command(flatten)]
        what: PlanArgs,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// List decoys, with what would give each away
    List {
        /// Removed decoys too
        #[arg(long)]
        all: bool,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Delete a decoy in AWS; its token stays (retired), so a later call on it is still an incident
    Remove {
        /// The decoy's token number (`decoy list`)
        id: i64,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// How many of a kind: KIND=N (s3-bucket, ssm-parameter, secret, dynamodb-table, sqs-queue, iam-role); repeatable.
    /// None: two of each kind and one table
    #[arg(long = "count", id = "counts")]
    counts: Vec<String>,
    /// Inventory file: the company's own words, one a line, and exact names as `KIND NAME`
    #[arg(long)]
    inventory: Option<PathBuf>,
    /// The canary account of the pool (`account list`); none: the configured account
    #[arg(long)]
    account: Option<String>,
}

impl PlanArgs {
    fn request(&self) -> Result<DecoyPlanRequest> {
        let inventory = match &self.inventory {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the inventory {}", path.display()))?,
            ),
            None => None,
        };
        Ok(DecoyPlanRequest { counts: self.counts.clone(), inventory, account: self.account.clone() })
    }
}

fn print_plan(plan: &DecoyPlan) {
    let rows: Vec<Vec<String>> =
        plan.decoys.iter().map(|d| vec![d.kind.to_string(), printable(&d.name).into_owned()]).collect();
    print_table(&["KIND", "NAME"], &rows);
}

pub async fn run(app: &App, cmd: DecoyCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        DecoyCommand::Plan { what, out, json } => {
            let plan = ops.decoy_plan(&actor, &what.request()?).await?;
            if let Some(path) = &out {
                std::fs::write(path, serde_json::to_vec_pretty(&plan)?)
                    .with_context(|| format!("cannot write the plan to {}", path.display()))?;
            }
            if json {
                print_json(&plan)?;
            } else {
                print_plan(&plan);
                match &out {
                    Some(path) => println!(
                        "plan written to {}; make it with: honeytrail decoy apply --plan {}",
                        path.display(),
                        path.display()
                    ),
                    None => {
                        println!("nothing was made; write the plan with --out FILE, then run decoy apply --plan FILE")
                    }
                }
            }
        }
        DecoyCommand::Apply { plan, what, json } => {
            let plan: DecoyPlan = match &plan {
                Some(path) => {
                    let text =
                        std::fs::read(path).with_context(|| format!("cannot read the plan {}", path.display()))?;
                    let mut plan: DecoyPlan = serde_json::from_slice(&text)
                        .with_context(|| format!("{} is not a plan written by decoy plan --out", path.display()))?;
                    if what.account.is_some() {
                        plan.account = what.account.clone();
                    }
                    plan
                }
                None => ops.decoy_plan(&actor, &what.request()?).await?,
            };
            let applied = ops.decoy_apply(&actor, &plan).await?;
            if json {
                print_json(&applied)?;
            } else {
                let rows: Vec<Vec<String>> = applied
                    .made
                    .iter()
                    .map(|d| {
                        vec![
                            format!("#{}", d.token_id),
                            d.kind.to_string(),
                            printable(&d.name).into_owned(),
                            d.arn.clone(),
                        ]
                    })
                    .collect();
                print_table(&["TOKEN", "KIND", "NAME", "ARN"], &rows);
                println!("{} decoy(s) made and watched", applied.made.len());
                if let Some(s) = &applied.selectors {
                    println!("trail selectors: {:?} ({})", s.status, s.action.unwrap_or("unchanged"));
                }
            }
            for (p, why) in &applied.failed {
                eprintln!("could not make {} {}: {}", p.kind, printable(&p.name), printable(why));
            }
            if !applied.failed.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        DecoyCommand::List { all, json } => {
            let decoys = ops.decoy_list(&actor, all).await?;
            if json {
                return print_json(&decoys).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = decoys
                .iter()
                .map(|v| {
                    let d = &v.decoy;
                    let worst =
                        v.findings.iter().max_by_key(|f| f.level).map(|f| f.level.to_string()).unwrap_or_default();
                    vec![
                        format!("#{}", d.token_id),
                        d.kind.to_string(),
                        printable(&d.name).into_owned(),
                        d.pool_account.clone().unwrap_or_else(|| d.account_id.clone()),
                        d.region.clone(),
                        when(d.created_at),
                        d.removed_at.map(when).unwrap_or_else(|| "-".into()),
                        worst,
                    ]
                })
                .collect();
            print_table(&["TOKEN", "KIND", "NAME", "ACCOUNT", "REGION", "MADE", "REMOVED", "CHECK"], &rows);
        }
        DecoyCommand::Remove { id, json } => {
            let d = ops.decoy_remove(&actor, id).await?;
            if json {
                return print_json(&d).map(|_| ExitCode::SUCCESS);
            }
            println!(
                "decoy #{} ({} {}) deleted in AWS; its token is retired and still watched",
                d.token_id,
                d.kind.label(),
                printable(&d.name)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

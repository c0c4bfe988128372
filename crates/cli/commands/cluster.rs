//! `honeytrail cluster status`: the replicas on this database and who runs
//! which periodic job.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use honeytrail_app::App;

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// The replicas (id, address, version, last heartbeat) and every job with its holder, lease end, last run and error
    Status {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: &App, cmd: ClusterCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let ClusterCommand::Status { json } = cmd;
    let status = ops.cluster_status(&app.acting()).await?;
    if json {
        return print_json(&status).map(|_| ExitCode::SUCCESS);
    }
    if status.replicas.is_empty() {
        eprintln!("no replica has run `honeytrail serve` on this database in the last day");
    } else {
        let rows: Vec<Vec<String>> = status
            .replicas
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.address.clone(),
                    r.version.clone(),
                    r.state.into(),
                    when(r.started_at),
                    r.last_heartbeat.format("%H:%M:%S UTC").to_string(),
                ]
            })
            .collect();
        print_table(&["REPLICA", "ADDRESS", "VERSION", "STATE", "STARTED", "LAST HEARTBEAT"], &rows);
    }
    println!();
    let rows: Vec<Vec<String>> = status
        .jobs
        .iter()
        .map(|j| {
            vec![
                j.name.clone(),
                j.holder.clone().unwrap_or_else(|| "-".into()),
                j.lease_end.map(|t| t.format("%H:%M:%S UTC").to_string()).unwrap_or_default(),
                j.last_run.map(when).unwrap_or_else(|| "never".into()),
                j.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["JOB", "HOLDER", "LEASE ENDS", "LAST RUN", "LAST ERROR"], &rows);
    println!("(leases of {} s: a replica that stops beating loses its jobs within one)", status.lease_seconds);
    Ok(ExitCode::SUCCESS)
}

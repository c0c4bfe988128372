//! `honeytrail ci …`: CI runs that took a canary, their windows and the
//! uses their windows expected. Runs open and close themselves
//! (`packaging/ci/honeytrail-ci.sh`, docs/ci.md).

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use honeytrail_app::ops::CiRunQuery;
use honeytrail_app::App;

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum CiCommand {
    /// List CI runs, newest first: run, key, window, expected uses
    List {
        /// At most this many
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Retire the keys of runs whose window ended more than N days ago now
    /// (what serve's fleet job does after fleet.ci_keep_days)
    Sweep {
        /// Days since the window ended (0: every run whose window ended)
        #[arg(long)]
        keep_days: u32,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// One CI run: its tags, its window, the uses it expected, the incidents on its key
    Show {
        /// The run's number (`ci list`)
        id: i64,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(app: &App, cmd: CiCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        CiCommand::List { limit, json } => {
            let page = ops.ci_runs(&actor, &CiRunQuery { cursor: None, limit: Some(limit) }).await?;
            if json {
                return print_json(&page.items).map(|_| ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = page
                .items
                .iter()
                .map(|r| {
                    vec![
                        format!("#{}", r.run.id),
                        r.described.clone(),
                        r.run.access_key_id.clone(),
                        when(r.run.opened_at),
                        r.state.to_string(),
                        r.run.expect.as_str().to_string(),
                        r.run.expected_uses.to_string(),
                    ]
                })
                .collect();
            print_table(&["ID", "RUN", "KEY", "OPENED", "WINDOW", "EXPECTS", "EXPECTED USES"], &rows);
        }
        CiCommand::Sweep { keep_days, json } => {
            // A sweep takes a bounded batch; a full one means more may wait.
            let mut sweep = honeytrail_app::ops::CiSweep::default();
            loop {
                let s = ops.retire_ci_keys(&actor, keep_days).await?;
                sweep.examined += s.examined;
                sweep.retired += s.retired;
                let stop = !s.failed.is_empty() || (s.examined as i64) < honeytrail_app::ops::ci::RETIRE_PER_SWEEP;
                sweep.failed.extend(s.failed);
                if stop {
                    break;
                }
            }
            if json {
                print_json(&sweep)?;
                return Ok(if sweep.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            println!("retired the keys of {} CI run(s)", sweep.retired);
            for f in &sweep.failed {
                eprintln!("could not retire: {f}");
            }
            if !sweep.failed.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        CiCommand::Show { id, json } => {
            let d = ops.ci_run(&actor, id).await?;
            if json {
                return print_json(&d).map(|_| ExitCode::SUCCESS);
            }
            let r = &d.view.run;
            let line = |k: &str, v: &str| println!("{k:<16}{}", honeytrail_core::encoding::printable(v));
            line("run", &format!("#{} {}", r.id, d.view.described));
            line("key", &r.access_key_id);
            line("from", &r.source_address);
            line("window", &format!("{} ({} to {})", d.view.state, when(r.opened_at), when(r.window_end())));
            line("expects", r.expect.as_str());
            if let Some(u) = &r.url {
                line("link", u);
            }
            line("incidents", &d.incidents.iter().map(|i| format!("#{i}")).collect::<Vec<_>>().join(", "));
            let rows: Vec<Vec<String>> = d
                .expected
                .iter()
                .map(|u| {
                    vec![
                        when(u.event_time),
                        format!("{} {}", u.event_source, u.event_name),
                        u.source_ip.clone().unwrap_or_default(),
                        u.user_agent.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            println!();
            print_table(&["EXPECTED USE", "CALL", "FROM", "USER AGENT"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

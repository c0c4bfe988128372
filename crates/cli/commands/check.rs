//! `honeytrail check`: what a key gives away.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use honeytrail_core::stealth::{self, Level};

use super::print_json;
use honeytrail_app::App;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A registered token (access key ID or #N), or any access key ID
    target: String,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

pub async fn run(app: &App, args: CheckArgs) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let honeytrail_app::ops::tokens::KeyCheck { access_key_id: key, token, report } =
        ops.check_key(&app.acting(), &args.target).await?;
    let verdict = report.verdict();
    if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            registered: bool,
            verdict: Level,
            #[serde(flatten)]
            report: &'a stealth::Report,
        }
        print_json(&Out { registered: token.is_some(), verdict, report: &report })?;
    } else {
        match &token {
            Some(t) => println!("{key} (token #{}, {})", t.id, t.kind),
            None => println!("{key} (not registered in honeytrail)"),
        }
        for f in &report.findings {
            println!("  {:<5} {}", f.level.to_string(), f.message);
        }
        println!("verdict: {verdict}");
    }
    Ok(ExitCode::from(match verdict {
        Level::Pass | Level::Note => 0,
        Level::Warn => 2,
        Level::Fail => 3,
    }))
}

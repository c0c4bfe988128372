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
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    target: Option<String>,
    /// Check every active token and list what would give each away
    #[arg(long)]
    all: bool,
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

/// The exit code of a verdict: 0 pass, 2 warn, 3 fail.
fn exit(verdict: Level) -> ExitCode {
    ExitCode::from(match verdict {
        Level::Pass | Level::Note => 0,
        Level::Warn => 2,
        Level::Fail => 3,
    })
}

/// `check --all`: every active token, one line each, the worst first.
async fn run_all(app: &App, json: bool) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let query = honeytrail_app::ops::TokenQuery { state: Some("active".into()), ..Default::default() };
    let tokens = ops.search_tokens(&app.acting(), &query).await?;
    let mut checked: Vec<(honeytrail_core::Token, stealth::Report)> = tokens
        .into_iter()
        .map(|t| {
            let report = stealth::report_for(&t);
            (t, report)
        })
        .collect();
    checked.sort_by(|a, b| b.1.verdict().cmp(&a.1.verdict()).then(a.0.id.cmp(&b.0.id)));
    let worst = checked.iter().map(|(_, r)| r.verdict()).max().unwrap_or(Level::Pass);
    if json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            token: i64,
            verdict: Level,
            #[serde(flatten)]
            report: &'a stealth::Report,
        }
        let out: Vec<Out> = checked.iter().map(|(t, r)| Out { token: t.id, verdict: r.verdict(), report: r }).collect();
        print_json(&out)?;
        return Ok(exit(worst));
    }
    if checked.is_empty() {
        eprintln!("no active tokens to check");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = checked
        .iter()
        .map(|(t, r)| {
            let worst = r.findings.iter().filter(|f| f.level > Level::Note).max_by_key(|f| f.level);
            vec![
                t.access_key_id.clone(),
                format!("#{}", t.id),
                r.verdict().to_string(),
                worst.map_or_else(|| "-".to_string(), |f| f.message.clone()),
            ]
        })
        .collect();
    super::print_table(&["ACCESS KEY", "TOKEN", "VERDICT", "WHAT GIVES IT AWAY"], &rows);
    let count = |l: Level| checked.iter().filter(|(_, r)| r.verdict() == l).count();
    println!(
        "{} token(s): {} would be spotted, {} look doubtful, {} pass",
        checked.len(),
        count(Level::Fail),
        count(Level::Warn),
        count(Level::Pass)
    );
    Ok(exit(worst))
}

pub async fn run(app: &App, args: CheckArgs) -> Result<ExitCode> {
    let Some(target) = args.target.as_deref().filter(|_| !args.all) else {
        return run_all(app, args.json).await;
    };
    let ops = app.ops().await?;
    let honeytrail_app::ops::tokens::KeyCheck { access_key_id: key, token, report } =
        ops.check_key(&app.acting(), target).await?;
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
    Ok(exit(verdict))
}

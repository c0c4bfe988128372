//! `honeytrail ingest PATH…`: backfill CloudTrail log files and folders.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use honeytrail_app::sources::files::{Files, Summary};
use honeytrail_app::sources::{Sink, Touched};
use honeytrail_app::{App, Ops};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct IngestArgs {
    #[command(subcommand)]
    from: Option<IngestFrom>,
    /// CloudTrail log files (.json, .json.gz) or folders in the S3 delivery layout
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print each incident opened or updated as a JSON line on standard
    /// output, and the summary as JSON on standard error
    #[arg(long)]
    json: bool,
}

/// Other logs than CloudTrail's.
#[derive(clap::Subcommand, Debug)]
pub enum IngestFrom {
    /// Linux audit logs (auditd): reads of bait files, as access evidence
    Auditd(super::evidence::IngestAuditdArgs),
}

pub async fn run(app: &App, args: IngestArgs) -> Result<ExitCode> {
    if let Some(IngestFrom::Auditd(a)) = args.from {
        return super::evidence::ingest(app, a).await;
    }
    let ops = app.ops().await?;
    let mut sink = Sink::new(&ops);
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} files {wide_bar} {binary_bytes_per_sec} {eta}")
            .expect("static template"),
    );
    let progress = |total: usize| {
        bar.set_length(total as u64);
        bar.inc(1);
    };
    let limit = app.config.detect.max_document_mib << 20;
    let mut summary = Files { paths: args.paths.clone() }.ingest(&mut sink, limit, &progress).await?;
    bar.finish_and_clear();
    let touched = sink.take_touched();
    summary.incidents_opened = touched.iter().filter(|(_, kind)| *kind == "incident.opened").count();
    summary.incidents_updated = touched.len() - summary.incidents_opened;
    if args.json {
        print_incidents(&ops, &touched).await?;
        eprintln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(ExitCode::SUCCESS)
}

/// One JSON line per incident opened or updated, for a SIEM or a script.
pub async fn print_incidents(ops: &Ops, touched: &[Touched]) -> Result<()> {
    for (id, kind) in touched {
        println!("{}", serde_json::to_string(&ops.record(*id, kind).await?)?);
    }
    Ok(())
}

fn print_summary(s: &Summary) {
    eprintln!(
        "ingested {} file(s), {} records ({} parsed in files with a honey key, the rest counted unparsed), {:.1} MiB ({:.1} MiB compressed) in {:.2} s",
        s.files,
        s.records,
        s.records_parsed,
        s.bytes as f64 / 1048576.0,
        s.compressed_bytes as f64 / 1048576.0,
        s.seconds
    );
    eprintln!(
        "matches: {} ({} already stored); incidents opened: {}, updated: {}",
        s.matches, s.duplicates, s.incidents_opened, s.incidents_updated
    );
    if s.expected > 0 {
        eprintln!("expected by a CI run's window (stored on the run, not alerted): {}", s.expected);
    }
    for (kind, files) in &s.skipped {
        eprintln!("skipped ({kind}): {} file(s)", files.len());
        for f in files.iter().take(5) {
            eprintln!("  {f}");
        }
        if files.len() > 5 {
            eprintln!("  … and {} more (--json lists all)", files.len() - 5);
        }
    }
    for h in &s.unparsed_hits {
        eprintln!("WARNING: a honey key appears in a file that could not be parsed; inspect it by hand: {h}");
    }
}

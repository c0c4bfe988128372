//! `honeytrail ingest PATH…`: backfill CloudTrail log files and folders.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::Duration;
use clap::Args;
use honeytrail_core::TokenState;
use honeytrail_ingest::files::{collect, scan_files, FileOutcome};
use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::{Detector, TokenEvent};
use honeytrail_store::{EventOutcome, Store, TokenFilter};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::incident::incident_record;
use crate::app::App;

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// CloudTrail log files (.json, .json.gz) or folders in the S3 delivery layout
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print the summary as JSON (on standard error, after the incident lines)
    #[arg(long)]
    json: bool,
}

/// The match index over every registered token, retired ones included: a
/// retired key that shows up still means something.
pub async fn build_index(store: &Store) -> Result<KeyIndex> {
    let tokens = store.list_tokens(&TokenFilter::default()).await?;
    let mut index = KeyIndex::with_capacity(tokens.len());
    for t in &tokens {
        let account_user = match (&t.account_id, &t.iam_user_name) {
            (Some(a), Some(u)) => Some((a.as_str(), u.as_str())),
            _ => None,
        };
        index.insert(
            TokenRef { token_id: t.id, retired: t.state == TokenState::Retired },
            &t.access_key_id,
            t.iam_user_arn.as_deref(),
            account_user,
        );
    }
    Ok(index)
}

/// Events stored so far in one run, and the incidents they opened or updated.
#[derive(Debug, Default)]
pub struct Stored {
    pub matches: usize,
    pub duplicates: usize,
    touched: BTreeMap<i64, &'static str>,
}

impl Stored {
    pub async fn add(&mut self, store: &Store, events: &[TokenEvent], window: Duration) -> Result<()> {
        for event in events {
            self.matches += 1;
            match store.record_event(event, window).await? {
                EventOutcome::Duplicate => self.duplicates += 1,
                EventOutcome::Opened(id) => {
                    self.touched.insert(id, "incident.opened");
                }
                EventOutcome::Joined(id) => {
                    self.touched.entry(id).or_insert("incident.updated");
                }
            }
        }
        Ok(())
    }

    /// Until alert channels exist, every new or updated incident is one JSON
    /// line on standard output, for a SIEM or a script to pick up. Returns
    /// (opened, updated) and forgets them.
    pub async fn emit(&mut self, store: &Store) -> Result<(usize, usize)> {
        let (mut opened, mut updated) = (0, 0);
        for (id, kind) in std::mem::take(&mut self.touched) {
            if kind == "incident.opened" {
                opened += 1;
            } else {
                updated += 1;
            }
            println!("{}", serde_json::to_string(&incident_record(store, id, kind).await?)?);
        }
        Ok((opened, updated))
    }
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    files: usize,
    compressed_bytes: u64,
    bytes: u64,
    records: usize,
    matches: usize,
    duplicates: usize,
    incidents_opened: usize,
    incidents_updated: usize,
    skipped: BTreeMap<String, Vec<String>>,
    unparsed_hits: Vec<String>,
    seconds: f64,
}

pub async fn run(app: &App, args: IngestArgs) -> Result<ExitCode> {
    let store = app.store().await?;
    let index = build_index(&store).await?;
    if index.is_empty() {
        bail!("no tokens are registered, so nothing can match; mint or import tokens first (`honeytrail token list`)");
    }
    for p in &args.paths {
        if !p.exists() {
            bail!("{} does not exist", p.display());
        }
    }
    let files = collect(&args.paths).context("cannot list the files to ingest")?;
    let detector = Detector::new(index);
    let limit = app.config.detect.max_document_mib << 20;
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} files {wide_bar} {binary_bytes_per_sec} {eta}")
            .expect("static template"),
    );
    let started = Instant::now();
    let outcomes: Vec<FileOutcome> =
        tokio::task::block_in_place(|| scan_files(&detector, &files, limit, &|_: &FileOutcome| bar.inc(1)));
    bar.finish_and_clear();

    let mut summary = Summary { files: files.len(), ..Summary::default() };
    let window = Duration::minutes(app.config.detect.window_minutes as i64);
    let mut stored = Stored::default();
    for o in &outcomes {
        summary.compressed_bytes += o.compressed_bytes;
        summary.bytes += o.outcome.bytes;
        summary.records += o.outcome.records;
        if let Some(reason) = &o.outcome.skipped {
            summary
                .skipped
                .entry(reason.kind().to_string())
                .or_default()
                .push(format!("{}: {reason}", o.path.display()));
        }
        for hit in &o.outcome.unparsed_hits {
            summary.unparsed_hits.push(format!("{}: {hit}", o.path.display()));
        }
        stored.add(&store, &o.outcome.events, window).await?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.matches = stored.matches;
    summary.duplicates = stored.duplicates;
    (summary.incidents_opened, summary.incidents_updated) = stored.emit(&store).await?;
    if args.json {
        eprintln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(s: &Summary) {
    eprintln!(
        "ingested {} file(s), {} records, {:.1} MiB ({:.1} MiB compressed) in {:.2} s",
        s.files,
        s.records,
        s.bytes as f64 / 1048576.0,
        s.compressed_bytes as f64 / 1048576.0,
        s.seconds
    );
    eprintln!(
        "matches: {} ({} already stored); incidents opened: {}, updated: {}",
        s.matches, s.duplicates, s.incidents_opened, s.incidents_updated
    );
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

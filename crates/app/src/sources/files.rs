//! CloudTrail log files and folders on this host (`honeytrail ingest`):
//! scanned on every core, then stored through the sink.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use honeytrail_ingest::files::{collect, scan_files, FileOutcome};
use serde::Serialize;

use super::Sink;

/// What one ingest run read and found.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub files: usize,
    pub compressed_bytes: u64,
    pub bytes: u64,
    pub records: usize,
    /// Of `records`, those parsed (documents with a honey identity); the
    /// others were counted by the fast path without being parsed.
    pub records_parsed: usize,
    pub matches: usize,
    pub duplicates: usize,
    /// Uses inside a CI run's expected-activity window (stored, not alerted).
    pub expected: usize,
    pub incidents_opened: usize,
    pub incidents_updated: usize,
    pub skipped: BTreeMap<String, Vec<String>>,
    pub unparsed_hits: Vec<String>,
    pub seconds: f64,
}

/// The files to read: paths given, folders walked.
pub struct Files {
    pub paths: Vec<PathBuf>,
}

impl Files {
    /// Reads every file, stores what matched, and sums it up. `progress`
    /// is called once per file read.
    pub async fn ingest(&self, sink: &mut Sink, limit: u64, progress: &(dyn Fn(usize) + Sync)) -> Result<Summary> {
        let detector = sink.detector().await?;
        if detector.index().is_empty() {
            bail!(
                "no tokens are registered, so nothing can match; mint or import tokens first (`honeytrail token list`)"
            );
        }
        for p in &self.paths {
            if !p.exists() {
                bail!("{} does not exist", p.display());
            }
        }
        let files = collect(&self.paths).context("cannot list the files to ingest")?;
        let started = Instant::now();
        let total = files.len();
        let outcomes: Vec<FileOutcome> =
            tokio::task::block_in_place(|| scan_files(&detector, &files, limit, &|_: &FileOutcome| progress(total)));
        let mut summary = Summary { files: files.len(), ..Summary::default() };
        for o in &outcomes {
            summary.compressed_bytes += o.compressed_bytes;
            summary.bytes += o.outcome.bytes;
            summary.records += o.outcome.records;
            if o.outcome.records_parsed {
                summary.records_parsed += o.outcome.records;
            }
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
            sink.unparsed_hits += o.outcome.unparsed_hits.len();
            sink.add(&o.outcome.events).await?;
        }
        summary.seconds = started.elapsed().as_secs_f64();
        summary.matches = sink.matches;
        summary.duplicates = sink.duplicates;
        summary.expected = sink.expected;
        Ok(summary)
    }
}

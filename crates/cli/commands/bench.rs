//! `honeytrail bench`: measurements of the hot path, used by `scripts/bench`.
//! Hidden from `--help`; the script prints the comparisons.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use honeytrail_ingest::files::{collect, scan_files, DEFAULT_MAX_DOCUMENT};
use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::Detector;
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Scan a corpus of CloudTrail files with N registered keys; prints JSON
    Scan(ScanArgs),
    /// Build a match index of N keys and report its resident memory; prints JSON
    Index(IndexArgs),
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    corpus: PathBuf,
    /// Registered keys (synthetic, plus --key)
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// A key that is in the corpus, to count its matches
    #[arg(long)]
    key: Vec<String>,
    /// Worker threads (1 = one core)
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
}

fn synthetic_index(n: usize, extra: &[String]) -> KeyIndex {
    let mut index = KeyIndex::with_capacity(n + extra.len());
    for i in 0..n {
        let key = honeytrail_core::keyid::synthesize(123456789012, i as u64 * 7919);
        // Every tenth token also carries a user ARN, as minted tokens do.
        let arn = (i % 10 == 0).then(|| format!("arn:aws:iam::123456789012:user/svc-{i}"));
        index.insert(TokenRef { token_id: i as i64, retired: false }, &key, arn.as_deref(), None);
    }
    for (i, k) in extra.iter().enumerate() {
        index.insert(TokenRef { token_id: (n + i) as i64, retired: false }, k, None, None);
    }
    index
}

/// Resident memory of this process, from /proc.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Scan(a) => {
            let files = collect(std::slice::from_ref(&a.corpus)).context("cannot list the corpus")?;
            let detector = Detector::new(synthetic_index(a.keys, &a.key));
            let pool = rayon::ThreadPoolBuilder::new().num_threads(a.threads).build()?;
            let start = Instant::now();
            let outcomes = pool.install(|| scan_files(&detector, &files, DEFAULT_MAX_DOCUMENT, &|_| {}));
            let seconds = start.elapsed().as_secs_f64();
            let compressed: u64 = outcomes.iter().map(|o| o.compressed_bytes).sum();
            let bytes: u64 = outcomes.iter().map(|o| o.outcome.bytes).sum();
            let records: usize = outcomes.iter().map(|o| o.outcome.records).sum();
            let matches: usize = outcomes.iter().map(|o| o.outcome.events.len()).sum();
            println!(
                "{}",
                json!({"files": files.len(), "seconds": seconds, "compressed_bytes": compressed, "bytes": bytes,
                       "records": records, "matches": matches, "keys": detector.index().len(), "threads": a.threads})
            );
        }
        BenchCommand::Index(a) => {
            let before = rss_bytes();
            let start = Instant::now();
            let index = synthetic_index(a.keys, &[]);
            let seconds = start.elapsed().as_secs_f64();
            let after = rss_bytes();
            println!(
                "{}",
                json!({"keys": index.len(), "rss_bytes": after.saturating_sub(before), "build_seconds": seconds})
            );
            drop(index);
        }
    }
    Ok(ExitCode::SUCCESS)
}

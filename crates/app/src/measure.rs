//! Measurements of the hot path (`honeytrail bench`, used by
//! `scripts/bench`): the scanner over a corpus with N synthetic keys
//! (and optionally decoys) registered, and the resident memory of a match index of N keys.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use honeytrail_ingest::files::{collect, scan_files, DEFAULT_MAX_DOCUMENT};
use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::Detector;
use serde_json::{json, Value};

fn synthetic_index(n: usize, extra: &[String]) -> KeyIndex {
    let mut index = KeyIndex::with_capacity(n + extra.len());
    // `BENCH_MINTED_EVERY=1` makes every token a minted one.
    let minted_every = std::env::var("BENCH_MINTED_EVERY").ok().and_then(|v| v.parse().ok()).unwrap_or(10).max(1);
    for i in 0..n {
        let key = honeytrail_core::keyid::synthesize(123456789012, i as u64 * 7919);
        // Every tenth token (imported ones are the rest) also carries a user
        // ARN and its account and user name, as minted tokens do (so user
        // names are looked for too).
        let user = (i % minted_every == 0).then(|| format!("svc-{i}"));
        let arn = user.as_ref().map(|u| format!("arn:aws:iam::123456789012:user/{u}"));
        let account_user = user.as_deref().map(|u| ("123456789012", u));
        index.insert(TokenRef { token_id: i as i64, retired: false }, &key, arn.as_deref(), account_user);
    }
    for (i, k) in extra.iter().enumerate() {
        index.insert(TokenRef { token_id: (n + i) as i64, retired: false }, k, None, None);
    }
    index.seal();
    index
}

/// `n` decoys of every kind with plausible names (the same every run), added to `index`.
fn add_decoys(index: &mut KeyIndex, n: usize) -> Result<()> {
    use honeytrail_core::decoy::{self, DecoyKind};
    use rand::SeedableRng;
    // `BENCH_DECOY_KINDS=s3-bucket,secret` measures some kinds alone.
    let kinds: Vec<DecoyKind> = match std::env::var("BENCH_DECOY_KINDS") {
        Ok(list) => list
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e: honeytrail_core::Invalid| anyhow::anyhow!(e.0))?,
        Err(_) => DecoyKind::ALL.to_vec(),
    };
    let counts: Vec<(DecoyKind, usize)> =
        kinds.iter().enumerate().map(|(i, k)| (*k, n / kinds.len() + usize::from(i < n % kinds.len()))).collect();
    let planned = decoy::plan(
        &counts,
        &decoy::Inventory::default(),
        &Default::default(),
        &mut rand::rngs::StdRng::seed_from_u64(1),
    )
    .map_err(|e| anyhow::anyhow!(e.0))?;
    let first = index.len() as i64;
    for (i, p) in planned.iter().enumerate() {
        let arn = p
            .kind
            .arn("aws", "us-east-1", "123456789012", &p.name)
            .unwrap_or_else(|| format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{}-AbCdEf", p.name));
        index.insert_decoy(TokenRef { token_id: first + i as i64, retired: false }, &arn);
    }
    index.decoys_mut().set_managers(["arn:aws:iam::123456789012:user/admin".to_string()]);
    index.seal();
    Ok(())
}

/// Resident memory of this process, from /proc.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Scans every file under `corpus` on `threads` worker threads with `keys`
/// synthetic keys and `extra` real ones registered: files, bytes, records,
/// matches and seconds, as JSON.
pub fn scan(corpus: &Path, keys: usize, extra: &[String], threads: usize, decoys: usize) -> Result<Value> {
    let files = collect(&[corpus.to_path_buf()]).context("cannot list the corpus")?;
    let mut index = synthetic_index(keys, extra);
    if decoys > 0 {
        add_decoys(&mut index, decoys)?;
    }
    let detector = Detector::new(index);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let start = Instant::now();
    let outcomes = pool.install(|| scan_files(&detector, &files, DEFAULT_MAX_DOCUMENT, &|_| {}));
    let seconds = start.elapsed().as_secs_f64();
    let compressed: u64 = outcomes.iter().map(|o| o.compressed_bytes).sum();
    let bytes: u64 = outcomes.iter().map(|o| o.outcome.bytes).sum();
    let records: usize = outcomes.iter().map(|o| o.outcome.records).sum();
    let matches: usize = outcomes.iter().map(|o| o.outcome.events.len()).sum();
    Ok(json!({"files": files.len(), "seconds": seconds, "compressed_bytes": compressed, "bytes": bytes,
              "records": records, "matches": matches, "keys": detector.index().len(), "threads": threads}))
}

/// Builds a match index of `keys` synthetic keys: its resident memory and
/// build time, as JSON.
pub fn index(keys: usize) -> Value {
    let before = rss_bytes();
    let start = Instant::now();
    let index = synthetic_index(keys, &[]);
    let seconds = start.elapsed().as_secs_f64();
    let after = rss_bytes();
    json!({"keys": index.len(), "rss_bytes": after.saturating_sub(before), "build_seconds": seconds})
}

/// What keeping the match index current costs a source's pass, on this
/// store: building it from every token (what each S3 and SQS pass did
/// before the live index), a pass when nothing changed (one fingerprint
/// query), and a pass after one token was added (the fingerprint and that
/// token). The token added is a synthetic key, retired again at the end.
pub async fn index_refresh(ops: &crate::Ops) -> Result<Value> {
    use crate::sources::Sink;
    let sink = Sink::new(ops);
    let start = Instant::now();
    let keys = sink.detector().await?.index().len();
    let full = start.elapsed().as_secs_f64();
    let start = Instant::now();
    sink.detector().await?;
    let unchanged = start.elapsed().as_secs_f64();
    let actor = crate::Actor::system("bench");
    let key = honeytrail_core::keyid::synthesize(210987654321, rand::random::<u32>().into());
    let request = crate::ops::ImportRequest { access_key_id: key.clone(), ..Default::default() };
    ops.import_token(&actor, request, "bench").await?;
    let start = Instant::now();
    let grown = sink.detector().await?.index().len();
    let added = start.elapsed().as_secs_f64();
    ops.retire(&actor, &key).await?;
    Ok(json!({"keys": keys, "full_build_seconds": full, "unchanged_pass_seconds": unchanged,
              "after_one_added_seconds": added, "keys_after": grown}))
}

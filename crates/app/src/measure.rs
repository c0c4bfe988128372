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

/// An index of `n` synthetic tokens (and `extra` real key IDs). The names
/// are written into one reused buffer, so what is measured is the index, not
/// a million allocations the product never makes (its tokens come from the
/// store's rows).
fn synthetic_index(n: usize, extra: &[String]) -> KeyIndex {
    const ARN_PREFIX: &str = "arn:aws:iam::123456789012:user/";
    let mut index = KeyIndex::with_capacity(n + extra.len());
    // `BENCH_MINTED_EVERY=1` makes every token a minted one.
    let minted_every = std::env::var("BENCH_MINTED_EVERY").ok().and_then(|v| v.parse().ok()).unwrap_or(10).max(1);
    let mut arn = String::from(ARN_PREFIX);
    for i in 0..n {
        let key = honeytrail_core::keyid::synthesize_bytes(123456789012, i as u64 * 7919);
        let key = std::str::from_utf8(&key).expect("key IDs are ASCII");
        let token = TokenRef { token_id: i as i64, retired: false };
        // Every tenth token (imported ones are the rest) also carries a user
        // ARN and its account and user name (`svc-{i}`), as minted tokens do
        // (so user names are looked for too).
        if i % minted_every == 0 {
            arn.truncate(ARN_PREFIX.len());
            arn.push_str("svc-");
            push_decimal(&mut arn, i);
            let user = &arn[ARN_PREFIX.len()..];
            index.insert(token, key, Some(&arn), Some(("123456789012", user)));
        } else {
            index.insert(token, key, None, None);
        }
    }
    for (i, k) in extra.iter().enumerate() {
        index.insert(TokenRef { token_id: (n + i) as i64, retired: false }, k, None, None);
    }
    index.seal();
    index
}

/// Appends `n` in decimal (what `write!` does, without the formatter's
/// cost a million times over).
fn push_decimal(out: &mut String, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("digits are ASCII"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_format_writes_them() {
        for n in [0, 7, 10, 99, 1_000_000, 123_456_789, usize::MAX] {
            let mut out = String::from("svc-");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("svc-{n}"));
        }
    }

    #[test]
    fn the_synthetic_index_holds_every_token_by_each_of_its_names() {
        let index = synthetic_index(25, &["AKIATFQR7NSCUXC3DDDP".to_string()]);
        assert_eq!(index.len(), 26);
        for i in [0usize, 10, 20] {
            let key = honeytrail_core::keyid::synthesize(123456789012, i as u64 * 7919);
            assert_eq!(index.get(key.as_bytes()).unwrap().token_id, i as i64);
            let arn = format!("arn:aws:iam::123456789012:user/svc-{i}");
            assert_eq!(index.get(arn.as_bytes()).unwrap().token_id, i as i64);
            assert!(index.has_user_name(format!("svc-{i}").as_bytes()));
        }
        assert!(index.get(b"arn:aws:iam::123456789012:user/svc-11").is_none());
        assert_eq!(index.get(b"AKIATFQR7NSCUXC3DDDP").unwrap().token_id, 25);
    }
}

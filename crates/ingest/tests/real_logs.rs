//! The real CloudTrail logs in `testdata/cloudtrail` (see its SOURCES.md):
//! every file is parsed or skipped with a reason, and keys imported from them
//! match exactly as often as they appear as the caller's key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use honeytrail_ingest::files::{collect, scan_files, DEFAULT_MAX_DOCUMENT};
use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::Detector;

fn data(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cloudtrail").join(dir)
}

fn detector(keys: &[&str]) -> Detector {
    let mut index = KeyIndex::new();
    for (i, k) in keys.iter().enumerate() {
        index.insert(TokenRef { token_id: i as i64 + 1, retired: false }, k, None, None);
    }
    Detector::new(index)
}

fn matches_per_token(detector: &Detector, dir: &str) -> BTreeMap<i64, usize> {
    let files = collect(&[data(dir)]).unwrap();
    let mut counts = BTreeMap::new();
    for f in scan_files(detector, &files, DEFAULT_MAX_DOCUMENT, &|_| {}) {
        for e in f.outcome.events {
            *counts.entry(e.token_id).or_default() += 1;
        }
    }
    counts
}

// Expected counts were computed independently with Python's json module:
// records whose userIdentity.accessKeyId is the key.
#[test]
fn invictus_gzipped_logs_match_exactly() {
    let d = detector(&["AKIATFQR7NSCUXC3DDDP", "ASIATFQR7NSCSUD2OWV6", "AKIATFQR7NSC8Q4X20BJ"]);
    let counts = matches_per_token(&d, "invictus-ir_aws_dataset");
    assert_eq!(counts, BTreeMap::from([(1, 43), (2, 55), (3, 2097)]));
}

#[test]
fn stratus_pretty_printed_arrays_match_exactly() {
    let d = detector(&["AKIAAM80VXLJF8NPK4VC", "AKIAW9X2Q2U25SK79UCX"]);
    let counts = matches_per_token(&d, "datadog_stratus-red-team");
    assert_eq!(counts, BTreeMap::from([(1, 43), (2, 56)]));
}

#[test]
fn every_file_is_parsed_or_skipped_with_a_reason() {
    let d = detector(&["AKIATFQR7NSCUXC3DDDP"]);
    let files = collect(&[data("")]).unwrap();
    let outcomes = scan_files(&d, &files, DEFAULT_MAX_DOCUMENT, &|_| {});
    assert_eq!(outcomes.len(), files.len());
    let mut reasons = BTreeMap::<&str, usize>::new();
    let mut records = 0;
    for o in &outcomes {
        records += o.outcome.records;
        if let Some(r) = &o.outcome.skipped {
            *reasons.entry(r.kind()).or_default() += 1;
            assert!(!matches!(r.kind(), "io" | "gzip" | "invalid-json"), "{}: {r}", o.path.display());
        }
    }
    // SOURCES.md is the only file that is not JSON; the Sigma rules and
    // StreamAlert schema are JSON without CloudTrail records.
    assert_eq!(reasons.get("extension"), Some(&1), "{reasons:?}");
    assert!(reasons.get("not-cloudtrail").copied().unwrap_or(0) >= 2, "{reasons:?}");
    assert!(records >= 2892 + 254, "the real logs' records are all counted: {records}");
}

//! The document detector on any bytes: it never panics, and on a document
//! that parses it reports exactly the records a full parse matches.
#![no_main]

use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::record::{match_record, records_of};
use honeytrail_ingest::Detector;
use libfuzzer_sys::fuzz_target;

fn detector() -> Detector {
    let mut index = KeyIndex::new();
    index.insert(
        TokenRef { token_id: 1, retired: false },
        "AKIARZPUZDIKAWS2LJNF",
        Some("arn:aws:iam::123456789012:user/svc-backup"),
        Some(("123456789012", "svc-backup")),
    );
    index.insert(TokenRef { token_id: 2, retired: false }, "AKIA-NAME-ONLY-00002", None, Some(("345678901234", "ops")));
    Detector::new(index)
}

fuzz_target!(|data: &[u8]| {
    let detector = detector();
    let outcome = detector.document(data, "fuzz", "fuzz input");
    // A mapped file's path (scanned in place, parsed from a copy) reports
    // the same; gzip is decoded there, so only plain documents compare.
    if !data.starts_with(&[0x1f, 0x8b]) {
        let shared = detector.read_shared(data, u64::MAX, "fuzz", "fuzz input");
        let brief = |o: &honeytrail_ingest::DocumentOutcome| (o.events.len(), o.records, o.skipped.clone());
        assert_eq!(brief(&shared), brief(&outcome), "a mapped document reads differently");
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(records) = records_of(value) {
            let expected = records.iter().filter(|r| match_record(r, detector.index()).is_some()).count();
            assert_eq!(outcome.events.len(), expected, "the fast path missed or invented a match");
        }
    }
});

//! An EventBridge event (as an API destination posts it) built around fuzzed
//! detail bytes: the detector never panics on it.
#![no_main]

use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::Detector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut index = KeyIndex::new();
    index.insert(TokenRef { token_id: 1, retired: false }, "AKIARZPUZDIKAWS2LJNF", None, None);
    let detector = Detector::new(index);
    let mut envelope = br#"{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.sts","detail":"#.to_vec();
    envelope.extend_from_slice(data);
    envelope.push(b'}');
    let _ = detector.document(&envelope, "eventbridge-http", "fuzz");
    let _ = detector.document(data, "eventbridge-http", "fuzz");
});

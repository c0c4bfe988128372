//! SQS message bodies (S3 notifications, SNS-wrapped or not, CloudTrail
//! notifications, EventBridge events): classified, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = std::str::from_utf8(data) {
        let _ = honeytrail_ingest::messages::classify(body);
    }
});

//! Merging bait into any existing file: never a panic, and every line of the
//! original that is not part of the entry added or replaced is kept, in order.
#![no_main]

use honeytrail_core::bait::{merge, BaitInput, Format, SessionPart};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(existing) = std::str::from_utf8(rest) else { return };
    let formats = [Format::AwsCredentials, Format::AwsConfig, Format::Dotenv, Format::Shell];
    let format = formats[selector as usize % formats.len()];
    let input = BaitInput {
        access_key_id: "AKIARZPUZDIKAWS2LJNF",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        profile: "prod",
        region: "us-east-1",
        // Session credentials too, their token a line of its own.
        session: (selector & 0x40 != 0).then_some(SessionPart {
            token: "IQoJb3JpZ2luX2VjEBAaCXVzLWVhc3QtMSJHMEUCIQD",
            expiration: "2026-12-07T23:04:11Z",
            role: None,
        }),
    };
    let force = selector & 0x80 != 0;
    if let Ok(merged) = merge(format, existing, &input, force) {
        assert!(merged.content.ends_with(&honeytrail_core::bait::render(format, &input)), "the entry ends the file");
        // Every line that is not an AWS key setting of the entry's own is
        // kept, in order (an INI section replaced with --force goes whole).
        let ours = |l: &str| {
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"]
                .iter()
                .any(|v| l.contains(v))
        };
        if !(merged.replaced && matches!(format, Format::AwsCredentials | Format::AwsConfig)) {
            let mut rest = merged.content.as_str();
            for line in existing.split_inclusive('\n').filter(|l| !ours(l)) {
                let line = line.trim_end_matches('\n');
                match rest.find(line) {
                    Some(at) => rest = &rest[at + line.len()..],
                    None => panic!("line {line:?} of the original was lost"),
                }
            }
        }
    }
});

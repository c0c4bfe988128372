//! Properties of the core's rules on generated input: bait merging never
//! changes a byte outside the entry it adds or replaces, and key-ID account
//! decoding round-trips.

use honeytrail_core::bait::{merge, render, BaitInput, Format};
use honeytrail_core::keyid::{decode_account, find_in_text, parse, synthesize, AccountDecode};
use proptest::prelude::*;

const INPUT: BaitInput<'static> = BaitInput {
    access_key_id: "AKIAQYLPMN5HHHFPZAM2",
    secret_access_key: "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",
    profile: "prod",
    region: "us-east-1",
    session: None,
};

/// One line of an existing credentials, config, `.env` or shell file.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[default]".to_string()),
        Just("[prod]".to_string()),
        Just("[ prod ]".to_string()),
        Just("[profile prod]".to_string()),
        Just("[profile  dev]".to_string()),
        Just("[backup]".to_string()),
        Just("aws_access_key_id = AKIAREALREALREALREAL".to_string()),
        Just("aws_secret_access_key = real/secret+value".to_string()),
        Just("region = eu-west-1".to_string()),
        Just("# a comment, [prod] in it".to_string()),
        Just(String::new()),
        Just("AWS_ACCESS_KEY_ID=AKIAREALREALREALREAL".to_string()),
        Just("export AWS_SECRET_ACCESS_KEY=real".to_string()),
        Just("AWS_DEFAULT_REGION=eu-west-1".to_string()),
        Just("DATABASE_URL=postgres://app@db/app".to_string()),
        Just("export PATH=$PATH:/opt/bin".to_string()),
        "[ -~]{0,30}",
    ]
}

fn file() -> impl Strategy<Value = String> {
    (prop::collection::vec(line(), 0..14), any::<bool>(), any::<bool>()).prop_map(|(lines, crlf, trailing)| {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = lines.join(eol);
        if trailing && !text.is_empty() {
            text.push_str(eol);
        }
        text
    })
}

/// `[ profile  x ]` → `profile x`, as the AWS CLI reads headers.
fn header(line: &str) -> Option<String> {
    let inner = line.trim().strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn assigned(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let t = t.strip_prefix("export ").map(str::trim_start).unwrap_or(t);
    Some(t.split_once('=')?.0.trim())
}

/// What must be left of `existing` around the entry, worked out line by
/// line: `Err(())` when the merge must refuse (the entry exists, no force).
fn expected_kept(format: Format, existing: &str, force: bool) -> Result<String, ()> {
    let lines: Vec<&str> = existing.split_inclusive('\n').collect();
    match format {
        Format::AwsCredentials | Format::AwsConfig => {
            let target = if format == Format::AwsCredentials { "prod" } else { "profile prod" };
            let mut kept = String::new();
            let mut inside = false;
            for l in lines {
                if let Some(h) = header(l) {
                    inside = h == target;
                    if inside && !force {
                        return Err(());
                    }
                }
                if !inside {
                    kept.push_str(l);
                }
            }
            Ok(kept)
        }
        _ => {
            let pair = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
            let conflict = lines.iter().any(|l| assigned(l).is_some_and(|n| pair.contains(&n)));
            if conflict && !force {
                return Err(());
            }
            Ok(lines
                .into_iter()
                .filter(|l| !assigned(l).is_some_and(|n| n == "AWS_DEFAULT_REGION" || pair.contains(&n)))
                .collect())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn merging_changes_nothing_outside_the_entry(existing in file(), force in any::<bool>(), which in 0usize..4) {
        let format = [Format::AwsCredentials, Format::AwsConfig, Format::Dotenv, Format::Shell][which];
        let entry = render(format, &INPUT);
        match (merge(format, &existing, &INPUT, force), expected_kept(format, &existing, force)) {
            (Ok(merged), Ok(kept)) => {
                let before = merged.content.strip_suffix(&entry).expect("the entry ends the file");
                // Between what was kept and the entry: only the line breaks that separate them.
                prop_assert!(before.starts_with(&kept), "kept {kept:?}\ngot {:?}", merged.content);
                prop_assert!(before[kept.len()..].chars().all(|c| c == '\n'), "{:?}", merged.content);
            }
            (Err(_), Err(())) => {}
            (got, want) => prop_assert!(false, "merge gave {got:?}, expected {want:?} for {existing:?}"),
        }
    }

    #[test]
    fn account_decoding_round_trips(account in 0u64..=999_999_999_999, random in any::<u64>()) {
        let key = synthesize(account, random);
        prop_assert_eq!(decode_account(&key), AccountDecode::Account(format!("{account:012}")));
        prop_assert!(parse(&key).is_ok_and(|k| k == key));
    }

    #[test]
    fn key_ids_are_found_where_they_stand_alone(
        account in 0u64..=999_999_999_999,
        random in any::<u64>(),
        before in "[ -/:-@\\[-`{-~]{1,3}",
        after in "[ -/:-@\\[-`{-~]{1,3}",
        noise in "[a-z ]{0,20}",
    ) {
        let key = synthesize(account, random);
        let text = format!("{noise}{before}{key}{after}{noise}");
        prop_assert_eq!(find_in_text(&text), Some(key.clone()));
        // Glued to a letter or digit it is not a key ID of its own.
        prop_assert_eq!(find_in_text(&format!("x{key}")), None);
    }
}

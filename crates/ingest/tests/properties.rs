//! The fast path finds exactly what a full parse finds.
//!
//! Documents are generated the way CloudTrail and the tools around it write
//! them — compact or pretty-printed, slashes escaped or not, some characters
//! as `\u` escapes, honey keys only inside `requestParameters` or
//! `responseElements` (an administrator handling the key is not a use), ARNs
//! of honey users in several partitions, users known by name only, and keys
//! that differ from a honey key in one character — and the events the
//! `Detector` reports are compared with those of parsing every record.

use std::collections::BTreeSet;

use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::record::{match_record, records_of};
use honeytrail_ingest::Detector;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const HONEY_KEY: &str = "AKIARZPUZDIKAWS2LJNF";
const HONEY_ARN: &str = "arn:aws:iam::123456789012:user/svc-backup";
const GOV_ARN: &str = "arn:aws-us-gov:iam::210987654321:user/ci/deployer";
const NAMED_ACCOUNT: &str = "345678901234";
const NAMED_USER: &str = "ops-reader";

fn index() -> KeyIndex {
    let mut index = KeyIndex::new();
    index.insert(
        TokenRef { token_id: 1, retired: false },
        HONEY_KEY,
        Some(HONEY_ARN),
        Some(("123456789012", "svc-backup")),
    );
    index.insert(TokenRef { token_id: 2, retired: true }, "AKIAGOVGOVGOVGOVGOV2", Some(GOV_ARN), None);
    // Known by user name and account only: no key ID or ARN on record.
    index.insert(
        TokenRef { token_id: 3, retired: false },
        "AKIA-NAME-ONLY-00003",
        None,
        Some((NAMED_ACCOUNT, NAMED_USER)),
    );
    index
}

/// Who made a call.
#[derive(Debug, Clone)]
enum Caller {
    HoneyKey,
    /// One character off the honey key.
    NearTwin(usize),
    Other,
    HoneyArn,
    GovArn,
    NamedUser,
    /// The named user's name in another account.
    NamedUserElsewhere,
    /// A federated user made by the honey user with `GetFederationToken`.
    FederatedByHoneyUser,
    /// A role session issued by someone else.
    OtherRoleSession,
}

fn caller() -> impl Strategy<Value = Caller> {
    prop_oneof![
        Just(Caller::HoneyKey),
        (4usize..20).prop_map(Caller::NearTwin),
        Just(Caller::Other),
        Just(Caller::HoneyArn),
        Just(Caller::GovArn),
        Just(Caller::NamedUser),
        Just(Caller::NamedUserElsewhere),
        Just(Caller::FederatedByHoneyUser),
        Just(Caller::OtherRoleSession),
    ]
}

fn identity(c: &Caller) -> Value {
    match c {
        Caller::HoneyKey => json!({"type": "IAMUser", "accessKeyId": HONEY_KEY, "accountId": "123456789012"}),
        Caller::NearTwin(i) => {
            let mut k: Vec<u8> = HONEY_KEY.bytes().collect();
            k[*i] = if k[*i] == b'Z' { b'Y' } else { b'Z' };
            json!({"type": "IAMUser", "accessKeyId": String::from_utf8(k).unwrap()})
        }
        Caller::Other => {
            json!({"type": "IAMUser", "accessKeyId": "AKIAOTHEROTHEROTHER1", "arn": "arn:aws:iam::999999999999:user/alice"})
        }
        Caller::HoneyArn => json!({"type": "IAMUser", "arn": HONEY_ARN, "accountId": "123456789012"}),
        Caller::GovArn => json!({"type": "IAMUser", "arn": GOV_ARN}),
        Caller::NamedUser => json!({"type": "IAMUser", "accountId": NAMED_ACCOUNT, "userName": NAMED_USER}),
        Caller::NamedUserElsewhere => json!({"type": "IAMUser", "accountId": "111111111111", "userName": NAMED_USER}),
        Caller::FederatedByHoneyUser => {
            json!({"type": "FederatedUser", "arn": "arn:aws:sts::123456789012:federated-user/x",
            "accessKeyId": "ASIAFEDERATEDSESSION", "accountId": "123456789012",
            "sessionContext": {"sessionIssuer": {"type": "IAMUser", "arn": HONEY_ARN, "accountId": "123456789012", "userName": "svc-backup"}}})
        }
        Caller::OtherRoleSession => {
            json!({"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/admin/s",
            "accessKeyId": "ASIAROLESESSIONROLE1", "accountId": "123456789012",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::123456789012:role/admin", "accountId": "123456789012", "userName": NAMED_USER}}})
        }
    }
}

/// Where else a honey identity may appear in the record (never a use).
#[derive(Debug, Clone, Copy)]
enum Mention {
    None,
    RequestKey,
    ResponseKey,
    RequestArn,
    RequestUserName,
}

fn mention() -> impl Strategy<Value = Mention> {
    prop_oneof![
        Just(Mention::None),
        Just(Mention::RequestKey),
        Just(Mention::ResponseKey),
        Just(Mention::RequestArn),
        Just(Mention::RequestUserName),
    ]
}

fn record(n: usize, caller: &Caller, mention: Mention, agent: &str) -> Value {
    let mut r = json!({
        "eventVersion": "1.09",
        "userIdentity": identity(caller),
        "eventTime": format!("2026-11-28T10:{:02}:00Z", n % 60),
        "eventSource": "iam.amazonaws.com",
        "eventName": "ListAccessKeys",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": agent,
        "eventID": format!("event-{n}"),
    });
    let extra = match mention {
        Mention::None => None,
        Mention::RequestKey => Some(("requestParameters", json!({"accessKeyId": HONEY_KEY, "userName": "svc-backup"}))),
        Mention::ResponseKey => {
            Some(("responseElements", json!({"accessKey": {"accessKeyId": HONEY_KEY, "status": "Active"}})))
        }
        Mention::RequestArn => Some(("requestParameters", json!({"policyArn": HONEY_ARN, "roleArn": GOV_ARN}))),
        Mention::RequestUserName => Some(("requestParameters", json!({"userName": NAMED_USER}))),
    };
    if let Some((field, value)) = extra {
        r[field] = value;
    }
    r
}

/// How string values are written.
#[derive(Debug, Clone, Copy)]
struct Style {
    pretty: bool,
    escape_slashes: bool,
    /// Every letter at a position divisible by this is written as `\u00XX`.
    unicode_every: Option<usize>,
}

fn style() -> impl Strategy<Value = Style> {
    (any::<bool>(), any::<bool>(), prop::option::of(2usize..7))
        .prop_map(|(pretty, escape_slashes, unicode_every)| Style { pretty, escape_slashes, unicode_every })
}

fn write_string(out: &mut String, s: &str, style: Style, is_key: bool) {
    out.push('"');
    for (i, c) in s.chars().enumerate() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if style.escape_slashes => out.push_str("\\/"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if !is_key && c.is_ascii_alphanumeric() && style.unicode_every.is_some_and(|n| i % n == 0) => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON writer with a choice of escapes; keys are written plainly, as
/// every CloudTrail emitter does.
fn write(out: &mut String, v: &Value, style: Style, depth: usize) {
    let nl = |out: &mut String, d: usize| {
        if style.pretty {
            out.push('\n');
            out.push_str(&"  ".repeat(d));
        }
    };
    match v {
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                write_string(out, k, style, true);
                out.push_str(if style.pretty { ": " } else { ":" });
                write(out, v, style, depth + 1);
            }
            nl(out, depth);
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                nl(out, depth + 1);
                write(out, v, style, depth + 1);
            }
            nl(out, depth);
            out.push(']');
        }
        Value::String(s) => write_string(out, s, style, false),
        other => out.push_str(&other.to_string()),
    }
}

/// The event IDs a full parse of every record finds.
fn parsed_matches(doc: &[u8], index: &KeyIndex) -> BTreeSet<String> {
    let value: Value = serde_json::from_slice(doc).expect("the generated document is JSON");
    records_of(value)
        .expect("the generated document is CloudTrail")
        .iter()
        .filter(|r| match_record(r, index).is_some())
        .map(|r| r["eventID"].as_str().unwrap().to_string())
        .collect()
}

fn agent() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("aws-cli/2.15.0 Python/3.11".to_string()),
        Just("Boto3/1.34 md/Botocore#1.34 ua/2.0 os/linux".to_string()),
        // An intruder's user agent: quotes, backslashes, needles of the scanner.
        Just(r#"x" "accessKeyId":"AKIARZPUZDIKAWS2LJNF" \"arn:aws:iam::123456789012:user/svc-backup"#.to_string()),
        "[ -~]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_scanner_finds_what_a_full_parse_finds(
        calls in prop::collection::vec((caller(), mention(), agent()), 1..12),
        style in style(),
        bare_array in any::<bool>(),
    ) {
        let index = index();
        let records: Vec<Value> = calls.iter().enumerate().map(|(n, (c, m, a))| record(n, c, *m, a)).collect();
        let doc = if bare_array { Value::Array(records) } else { Value::Object(Map::from_iter([("Records".to_string(), Value::Array(records))])) };
        let mut text = String::new();
        write(&mut text, &doc, style, 0);
        let expected = parsed_matches(text.as_bytes(), &index);
        let outcome = Detector::new(index.clone()).document(text.as_bytes(), "test", "generated");
        let found: BTreeSet<String> = outcome.events.iter().map(|e| e.event_id.clone()).collect();
        prop_assert_eq!(&found, &expected, "document: {}", text);
        prop_assert!(outcome.skipped.is_none());
    }

    /// Bytes a strict parser refuses, put into one record's request
    /// parameters, change nothing about what the other records match, and
    /// the hostile record itself is still matched when its caller is ours.
    #[test]
    fn hostile_bytes_blind_no_record(
        calls in prop::collection::vec((caller(), agent()), 1..8),
        victim in any::<prop::sample::Index>(),
        poison in prop_oneof![
            Just(b"\"\\ud800\"".to_vec()),
            Just(vec![b'"', 0xc3, 0x28, b'"']),
            Just(b"\"\x07\x1b]52;c;eA==\x07\"".to_vec()),
            (130usize..400).prop_map(|n| [b"[".repeat(n), b"0".to_vec(), b"]".repeat(n)].concat()),
        ],
    ) {
        let index = index();
        let records: Vec<Value> = calls.iter().enumerate().map(|(n, (c, a))| record(n, c, Mention::None, a)).collect();
        let clean = Value::Object(Map::from_iter([("Records".to_string(), Value::Array(records.clone()))]));
        let expected = parsed_matches(clean.to_string().as_bytes(), &index);
        let victim = victim.index(records.len());
        let mut parts: Vec<Vec<u8>> = records.iter().map(|r| r.to_string().into_bytes()).collect();
        let marked = {
            let mut r = records[victim].clone();
            r["requestParameters"] = json!({"poison": "@@POISON@@"});
            r.to_string()
        };
        let (before, after) = marked.split_once("\"@@POISON@@\"").unwrap();
        parts[victim] = [before.as_bytes(), &poison, after.as_bytes()].concat();
        let doc = [&b"{\"Records\":["[..], &parts.join(&b","[..]), b"]}"].concat();
        let outcome = Detector::new(index.clone()).document(&doc, "test", "generated");
        let found: BTreeSet<String> = outcome.events.iter().map(|e| e.event_id.clone()).collect();
        prop_assert_eq!(&found, &expected, "document: {}", String::from_utf8_lossy(&doc));
    }
}

//! The hot path: finding the few records that mention a honey identity in
//! gigabytes of CloudTrail JSON without parsing the rest.
//!
//! One SIMD pass ([`crate::fields`]) finds every `"accessKeyId"` field, every
//! `"arn"` field (honey users' ARNs, of any partition: `arn:aws:iam::`,
//! `arn:aws-us-gov:iam::`, `arn:aws-cn:iam::`…, and session canaries'
//! assumed-role ARNs), every `"userName"` field (read when tokens are known
//! by user name) and every record's `"eventVersion"`: the fields a caller
//! identity is matched on; each value is looked up in the [`KeyIndex`]. Values
//! written with JSON escapes (`user\/svc`, `\u0041KIA…`) are decoded first,
//! so the scanner finds exactly what a full parse would. The cost is one pass
//! over the bytes (and one more while decoys exist) plus a hash lookup per
//! identity, whatever the number of registered keys. Only documents with a hit are parsed in full.
//! Needles were chosen for speed: a multi-pattern automaton keyed on the
//! leading quote stops at every `"` in the document and ran at a third of this.

use std::borrow::Cow;

use crate::fields::Field;
use crate::index::KeyIndex;

/// Finds identity fields whose value is in the index.
#[derive(Debug, Clone, Default)]
pub struct Scanner;

/// What one pass over a document found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// `"eventVersion"` fields seen: one per CloudTrail record.
    pub records: usize,
    /// Identity values that are in the index, with their byte offsets.
    pub hits: Vec<(usize, String)>,
    /// Where a decoy's name may be mentioned (sorted): the records there are
    /// parsed and their parameters compared exactly.
    pub decoy_hits: Vec<usize>,
}

impl Scanner {
    pub fn new() -> Scanner {
        Scanner
    }

    /// Scans `bytes` (any JSON text) for identity values in `index`.
    pub fn scan(&self, bytes: &[u8], index: &KeyIndex) -> ScanResult {
        let mut hits = Vec::new();
        let mut check = |at: usize, value: Option<Cow<'_, [u8]>>, last: &mut Last, known: &dyn Fn(&[u8]) -> bool| {
            if let Some(value) = value {
                if last.known(&value, known) {
                    // Copied before it is read as text: `bytes` may be a
                    // mapped file that changes meanwhile (see `mapped`).
                    let owned = value.into_owned();
                    let text =
                        String::from_utf8(owned).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    hits.push((at, text));
                }
            }
        };
        let in_index = |v: &[u8]| index.get(v).is_some();
        let user = |v: &[u8]| index.has_user_name(v);
        let user_names = index.has_user_names();
        let (mut key, mut arn, mut name) = (Last::default(), Last::default(), Last::default());
        // The identity fields and the records, in one pass (see `fields`).
        let mut records = 0;
        crate::fields::find(bytes, |at, field| match field {
            Field::EventVersion => records += 1,
            Field::AccessKeyId => check(at, string_value_after(bytes, at + field.needle().len()), &mut key, &in_index),
            Field::Arn => check(at, string_value_after(bytes, at + field.needle().len()), &mut arn, &in_index),
            Field::UserName if user_names => {
                check(at, string_value_after(bytes, at + field.needle().len()), &mut name, &user)
            }
            Field::UserName => {}
        });
        let decoy_hits = if index.decoys().is_empty() { Vec::new() } else { index.decoys().find(bytes) };
        ScanResult { records, hits, decoy_hits }
    }
}

/// The longest value [`Last`] keeps: a user's or a session's ARN.
const LAST_MAX: usize = 192;

/// One identity field's last value and whether it was known. Consecutive
/// records mostly come from one caller (a role's session, a user's burst of
/// calls), so most lookups repeat the last: a comparison instead of an ARN's
/// parse and a hash probe. The value is copied: `bytes` may be a mapped file
/// that changes meanwhile (see `mapped`).
struct Last {
    value: [u8; LAST_MAX],
    /// `None` until a value of at most `LAST_MAX` bytes was looked up.
    len: Option<usize>,
    known: bool,
}

impl Default for Last {
    fn default() -> Last {
        Last { value: [0; LAST_MAX], len: None, known: false }
    }
}

impl Last {
    /// Whether `value` is known, asking `known` unless it is the last value.
    #[inline]
    fn known(&mut self, value: &[u8], known: &dyn Fn(&[u8]) -> bool) -> bool {
        if let Some(len) = self.len {
            if value.len() == len && value == &self.value[..len] {
                return self.known;
            }
        }
        let answer = known(value);
        self.len = None;
        if let Some(room) = self.value.get_mut(..value.len()) {
            room.copy_from_slice(value);
            (self.len, self.known) = (Some(value.len()), answer);
        }
        answer
    }
}

/// The JSON string whose content starts at `start` (just after its opening
/// quote), up to the closing quote, with escapes decoded. Identity values are
/// short; the bound keeps a hostile document from turning every match into a
/// long walk. A value that is not valid JSON text (a lone surrogate) is
/// returned raw, which matches nothing.
fn string_from(bytes: &[u8], start: usize) -> Option<Cow<'_, [u8]>> {
    let limit = (start + 2048).min(bytes.len());
    let mut end = start;
    let mut escaped = false;
    // To the closing quote, over escapes.
    loop {
        end += bytes.get(end..limit).and_then(crate::fields::quote_or_backslash)?;
        if bytes[end] == b'"' {
            break;
        }
        escaped = true;
        end += 2;
    }
    if !escaped {
        return Some(Cow::Borrowed(&bytes[start..end]));
    }
    // Parsed from a copy: `bytes` may change meanwhile (see `mapped`).
    let raw = bytes[start - 1..=end].to_vec();
    match serde_json::from_slice::<String>(&raw) {
        Ok(decoded) => Some(Cow::Owned(decoded.into_bytes())),
        Err(_) => Some(Cow::Borrowed(&bytes[start..end])),
    }
}

/// The string value of a JSON field whose name ends at `pos`: skips white
/// space, a colon and white space, then reads the string value.
pub(crate) fn string_value_after(bytes: &[u8], mut pos: usize) -> Option<Cow<'_, [u8]>> {
    let skip_ws = |p: &mut usize| {
        while *p < bytes.len() && matches!(bytes[*p], b' ' | b'\t' | b'\n' | b'\r') {
            *p += 1;
        }
    };
    skip_ws(&mut pos);
    if bytes.get(pos) != Some(&b':') {
        return None;
    }
    pos += 1;
    skip_ws(&mut pos);
    if bytes.get(pos) != Some(&b'"') {
        return None;
    }
    string_from(bytes, pos + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::TokenRef;

    fn index() -> KeyIndex {
        let mut i = KeyIndex::new();
        i.insert(
            TokenRef { token_id: 1, retired: false },
            "AKIARZPUZDIKAWS2LJNF",
            Some("arn:aws:iam::123456789012:user/svc"),
            None,
        );
        i
    }

    #[test]
    fn finds_keys_in_compact_and_pretty_json() {
        let s = Scanner::new();
        let compact = br#"{"Records":[{"eventVersion":"1.08","userIdentity":{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"}},{"eventVersion":"1.08","userIdentity":{"accessKeyId":"AKIAOTHEROTHEROTHER1"}}]}"#;
        let r = s.scan(compact, &index());
        assert_eq!(r.records, 2);
        assert_eq!(r.hits.len(), 1);
        assert_eq!(r.hits[0].1, "AKIARZPUZDIKAWS2LJNF");
        let pretty = b"{\n  \"eventVersion\": \"1.08\",\n  \"userIdentity\": {\n    \"arn\" :\n \"arn:aws:iam::123456789012:user/svc\"\n  }\n}";
        assert_eq!(s.scan(pretty, &index()).hits.len(), 1);
    }

    #[test]
    fn finds_escaped_values_arns_of_every_partition_and_user_names() {
        let s = Scanner::new();
        let mut i = index();
        i.insert(
            TokenRef { token_id: 2, retired: false },
            "AKIA-NEVER-SEEN-0002",
            Some("arn:aws-us-gov:iam::210987654321:user/ops"),
            Some(("210987654321", "ops-b")),
        );
        for doc in [
            &br#"{"userIdentity":{"arn":"arn:aws:iam::123456789012:user\/svc"}}"#[..],
            br#"{"userIdentity":{"arn":"\u0061rn:aws:iam::123456789012:user/svc"}}"#,
            br#"{"userIdentity":{"accessKeyId":"\u0041KIARZPUZDIKAWS2LJNF"}}"#,
            br#"{"userIdentity":{"arn":"arn:aws-us-gov:iam::210987654321:user/ops"}}"#,
            br#"{"userIdentity":{"accountId":"210987654321","userName":"ops-b"}}"#,
            br#"{"userIdentity":{"accountId":"210987654321","userName":"ops\u002db"}}"#,
        ] {
            assert_eq!(s.scan(doc, &i).hits.len(), 1, "{}", String::from_utf8_lossy(doc));
        }
        // Another ARN, an ARN that is not an identity field, or a lone surrogate: nothing.
        for doc in [
            &br#"{"arn":"arn:aws:s3:::svc"}"#[..],
            br#"{"policyArn":"arn:aws:iam::123456789012:user/svc"}"#,
            br#"{"arn":"arn:aws-cn:sts::123456789012:assumed-role/x"}"#,
            br#"{"accessKeyId":"\ud800KIARZPUZDIKAWS2LJNF"}"#,
        ] {
            assert!(s.scan(doc, &i).hits.is_empty(), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn a_repeated_value_is_answered_again_and_each_occurrence_is_a_hit() {
        let s = Scanner::new();
        let mut i = index();
        let long_arn = format!("arn:aws:sts::123456789012:assumed-role/{}/{}", "r".repeat(64), "s".repeat(120));
        assert!(long_arn.len() > LAST_MAX);
        i.insert(TokenRef { token_id: 2, retired: false }, "AKIA-LONG-SESSION-ID", Some(&long_arn), None);
        let record = |key: &str, arn: &str| {
            format!(r#"{{"eventVersion":"1.08","userIdentity":{{"accessKeyId":"{key}","arn":"{arn}"}}}}"#)
        };
        let honey = ("AKIARZPUZDIKAWS2LJNF", "arn:aws:iam::123456789012:user/svc");
        let other = ("AKIAOTHEROTHEROTHER1", "arn:aws:iam::123456789012:user/other");
        let doc = [honey, honey, other, other, honey, ("AKIAOTHEROTHEROTHER1", long_arn.as_str()), other]
            .iter()
            .map(|(k, a)| record(k, a))
            .collect::<Vec<_>>()
            .join(",");
        let r = s.scan(format!(r#"{{"Records":[{doc}]}}"#).as_bytes(), &i);
        assert_eq!(r.records, 7);
        let found: Vec<&str> = r.hits.iter().map(|(_, v)| v.as_str()).collect();
        let (k, a) = honey;
        assert_eq!(found, [k, a, k, a, k, a, long_arn.as_str()]);
        assert!(r.hits.windows(2).all(|w| w[0].0 < w[1].0), "each occurrence at its own offset");
    }

    #[test]
    fn a_value_written_with_escapes_is_remembered_as_what_it_decodes_to() {
        // The same ARN escaped, plain, escaped differently, then a near miss
        // and a value with an escaped quote: each honey occurrence is a hit,
        // and no escape makes a different value pass for the last.
        let s = Scanner::new();
        let doc = [
            r#""arn":"arn:aws:iam::123456789012:user\/svc""#,
            r#""arn":"arn:aws:iam::123456789012:user/svc""#,
            r#""arn":"\u0061rn:aws:iam::123456789012:user/svc""#,
            r#""arn":"arn:aws:iam::123456789012:user/svc\"""#,
            r#""arn":"arn:aws:iam::123456789012:user/sv\u0063x""#,
            r#""arn":"arn:aws:iam::123456789012:user/svc""#,
        ]
        .iter()
        .map(|field| format!(r#"{{"eventVersion":"1.08","userIdentity":{{{field}}}}}"#))
        .collect::<Vec<_>>()
        .join(",");
        let r = s.scan(format!(r#"{{"Records":[{doc}]}}"#).as_bytes(), &index());
        let found: Vec<&str> = r.hits.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(found, ["arn:aws:iam::123456789012:user/svc"; 4]);
    }

    #[test]
    fn the_last_value_is_only_reused_for_the_same_bytes() {
        let asked = std::cell::Cell::new(0);
        let known = |v: &[u8]| {
            asked.set(asked.get() + 1);
            v.starts_with(b"yes")
        };
        let mut last = Last::default();
        let long = vec![b'y'; LAST_MAX + 1];
        for (value, answer, asks) in [
            (&b"yes-1"[..], true, 1),
            (b"yes-1", true, 1),
            (b"yes-12", true, 2),
            (b"yes-1", true, 3),
            (b"no", false, 4),
            (b"no", false, 4),
            (b"", false, 5),
            (b"", false, 5),
            (&long, false, 6),
            (&long, false, 7),
            (b"no", false, 8),
        ] {
            assert_eq!(last.known(value, &known), answer, "{}", String::from_utf8_lossy(value));
            assert_eq!(asked.get(), asks, "{}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn ignores_near_misses_and_broken_values() {
        let s = Scanner::new();
        for doc in [
            &br#"{"accessKeyId":"AKIARZPUZDIKAWS2LJNFX"}"#[..],
            br#"{"accessKeyId":null}"#,
            br#"{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"#,
            br#"{"accessKeyId""#,
            br#"{"xaccessKeyId":1}"#,
        ] {
            assert!(s.scan(doc, &index()).hits.is_empty(), "{}", String::from_utf8_lossy(doc));
        }
    }
}

//! The hot path: finding the few records that mention a honey identity in
//! gigabytes of CloudTrail JSON without parsing the rest.
//!
//! A multi-pattern search (Aho-Corasick with SIMD prefilters) finds every
//! `"accessKeyId"`, `"arn"` and `"userName"` field; the value after each is
//! looked up in the [`KeyIndex`]. The cost is one pass over the bytes plus a
//! hash lookup per identity field, whatever the number of registered keys.
//! Only documents with a hit are parsed in full (see `record`).

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use memchr::memmem;

use crate::index::KeyIndex;

const FIELDS: [&str; 3] = ["\"accessKeyId\"", "\"arn\"", "\"userName\""];

/// Finds identity fields whose value is in the index.
#[derive(Debug, Clone)]
pub struct Scanner {
    fields: AhoCorasick,
    records: memmem::Finder<'static>,
}

/// What one pass over a document found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// `"eventVersion"` fields seen: one per CloudTrail record.
    pub records: usize,
    /// Identity values that are in the index, with their byte offsets.
    pub hits: Vec<(usize, String)>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new()
    }
}

impl Scanner {
    pub fn new() -> Scanner {
        let fields = AhoCorasick::builder()
            .kind(Some(AhoCorasickKind::DFA))
            .match_kind(MatchKind::LeftmostFirst)
            .build(FIELDS)
            .expect("field patterns are valid");
        Scanner { fields, records: memmem::Finder::new(b"\"eventVersion\"") }
    }

    /// Scans `bytes` (any JSON text) for identity values in `index`.
    pub fn scan(&self, bytes: &[u8], index: &KeyIndex) -> ScanResult {
        let mut hits = Vec::new();
        let user_names = index.has_user_names();
        for m in self.fields.find_iter(bytes) {
            if m.pattern().as_usize() == 2 && !user_names {
                continue;
            }
            if let Some(value) = string_value_after(bytes, m.end()) {
                if index.get(value).is_some() {
                    hits.push((m.start(), String::from_utf8_lossy(value).into_owned()));
                }
            }
        }
        ScanResult { records: self.records.find_iter(bytes).count(), hits }
    }
}

/// The string value of a JSON field whose name ends at `pos`: skips white
/// space, a colon and white space, then reads up to the closing quote. Values
/// with escapes are returned raw, which never matches a key ID or ARN anyway.
fn string_value_after(bytes: &[u8], mut pos: usize) -> Option<&[u8]> {
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
    let start = pos + 1;
    // Identity values are short; a bound keeps a hostile document from
    // turning every field into a long walk.
    let limit = (start + 2048).min(bytes.len());
    let end = start + bytes[start..limit].iter().position(|&b| b == b'"')?;
    Some(&bytes[start..end])
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

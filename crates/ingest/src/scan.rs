//! The hot path: finding the few records that mention a honey identity in
//! gigabytes of CloudTrail JSON without parsing the rest.
//!
//! Three substring searches (memchr's SIMD `memmem`) find every
//! `"accessKeyId"` field, every string value starting with `arn:aws:iam::`
//! (honey users' ARNs), and, when tokens are known by user name, every
//! `"userName"` field; each value is looked up in the [`KeyIndex`]. The cost
//! is a few passes over the bytes plus a hash lookup per identity, whatever the
//! number of registered keys. Only documents with a hit are parsed in full.
//! Needles were chosen for speed: a multi-pattern automaton keyed on the
//! leading quote stops at every `"` in the document and ran at a third of this.

use memchr::memmem;

use crate::index::KeyIndex;

/// Finds identity fields whose value is in the index.
#[derive(Debug, Clone)]
pub struct Scanner {
    access_key: memmem::Finder<'static>,
    iam_arn: memmem::Finder<'static>,
    user_name: memmem::Finder<'static>,
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
        Scanner {
            access_key: memmem::Finder::new(b"\"accessKeyId\""),
            iam_arn: memmem::Finder::new(b"\"arn:aws:iam::"),
            user_name: memmem::Finder::new(b"\"userName\""),
            records: memmem::Finder::new(b"\"eventVersion\""),
        }
    }

    /// Scans `bytes` (any JSON text) for identity values in `index`.
    pub fn scan(&self, bytes: &[u8], index: &KeyIndex) -> ScanResult {
        let mut hits = Vec::new();
        let mut check = |at: usize, value: Option<&[u8]>| {
            if let Some(value) = value {
                if index.get(value).is_some() {
                    hits.push((at, String::from_utf8_lossy(value).into_owned()));
                }
            }
        };
        for at in self.access_key.find_iter(bytes) {
            check(at, string_value_after(bytes, at + self.access_key.needle().len()));
        }
        for at in self.iam_arn.find_iter(bytes) {
            check(at, string_from(bytes, at + 1));
        }
        if index.has_user_names() {
            for at in self.user_name.find_iter(bytes) {
                check(at, string_value_after(bytes, at + self.user_name.needle().len()));
            }
        }
        hits.sort_unstable();
        ScanResult { records: self.records.find_iter(bytes).count(), hits }
    }
}

/// The string starting at `start` (just after its opening quote), up to the
/// closing quote. Identity values are short; the bound keeps a hostile
/// document from turning every match into a long walk.
fn string_from(bytes: &[u8], start: usize) -> Option<&[u8]> {
    let limit = (start + 2048).min(bytes.len());
    let end = start + bytes.get(start..limit)?.iter().position(|&b| b == b'"')?;
    Some(&bytes[start..end])
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

//! Reading what the intruder partly wrote: records found one by one, and
//! records a strict parser refuses read anyway.
//!
//! A CloudTrail record carries the caller's request parameters, user agent
//! and error messages. An intruder who puts a lone surrogate escape
//! (`"\ud800"`), invalid UTF-8 or a thousand nested arrays into a request
//! makes `serde_json` refuse the record, and with a whole-document parse
//! every other record of the same file too. So documents are split into
//! records by their structure alone ([`split_records`]: strings and
//! brackets, no validation), each record is parsed on its own, a refused
//! one is repaired ([`repair`]) and parsed again, and what still cannot be
//! parsed is read field by field ([`field`]) so that its sighting is kept.

use std::borrow::Cow;
use std::ops::Range;

use memchr::memmem;

use crate::fields::quote_or_backslash;

/// Nesting deeper than this is replaced by a marker when repairing:
/// `serde_json` refuses 128 levels, CloudTrail's own fields need fewer than ten.
pub const MAX_DEPTH: usize = 96;

/// What stands in for a part of a record that was nested too deeply.
pub const TOO_DEEP: &str = "[nested too deeply; removed by honeytrail]";

/// The records of a document, found by structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Split {
    /// Byte ranges of the records (or EventBridge envelopes), in order.
    pub records: Vec<Range<usize>>,
    /// Whether the document ended where its structure did (false: truncated).
    pub complete: bool,
}

/// Where the records of a document are: the objects of a top-level
/// `"Records"` array, the objects of a top-level array (records or
/// EventBridge envelopes), or the document itself when it is one object.
/// Never fails: a truncated document gives the records up to where it ends,
/// the last one open-ended.
pub fn split_records(bytes: &[u8]) -> Split {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let mut split = Split::default();
    let records_depth = match bytes.get(start) {
        Some(b'[') => 1,
        Some(b'{') => 2,
        _ => return split,
    };
    let mut depth = 0usize;
    // Inside the top-level object: whether its `"Records"` array is open.
    let mut in_records = records_depth == 1;
    let mut last_key_is_records = false;
    let mut records_array_seen = false;
    let mut open: Option<usize> = None;
    let mut ended = None;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let end = string_end(bytes, i + 1);
                if depth == 1 && records_depth == 2 {
                    last_key_is_records = &bytes[i + 1..end.min(bytes.len())] == b"Records";
                }
                i = end + 1;
                continue;
            }
            c @ (b'{' | b'[') => {
                if records_depth == 2 && depth == 1 && c == b'[' && last_key_is_records {
                    in_records = true;
                    records_array_seen = true;
                }
                if in_records && depth == records_depth && c == b'{' && open.is_none() {
                    open = Some(i);
                }
                depth += 1;
            }
            c @ (b'}' | b']') => {
                depth = depth.saturating_sub(1);
                if let (Some(from), true) = (open, depth == records_depth && c == b'}') {
                    split.records.push(from..i + 1);
                    open = None;
                }
                if records_depth == 2 && depth == 1 && c == b']' {
                    in_records = false;
                }
                if depth == 0 {
                    ended = Some(i + 1);
                    break;
                }
            }
            b',' if depth == 1 => last_key_is_records = false,
            _ => {}
        }
        i += 1;
    }
    split.complete = ended.is_some();
    if let Some(from) = open {
        split.records.push(from..bytes.len());
    }
    if records_depth == 2 && !records_array_seen {
        // One object that is not a log file: an event or an envelope.
        split.records.clear();
        split.records.push(start..ended.unwrap_or(bytes.len()));
    }
    split
}

/// The index of the closing quote of the string whose content starts at
/// `from` (or `bytes.len()` when it never closes).
fn string_end(bytes: &[u8], mut from: usize) -> usize {
    while let Some(at) = quote_or_backslash(&bytes[from.min(bytes.len())..]) {
        let at = from + at;
        if bytes[at] == b'"' {
            return at;
        }
        from = at + 2;
    }
    bytes.len()
}

/// The record as JSON a strict parser accepts: invalid UTF-8 becomes U+FFFD,
/// lone surrogate escapes become `\ufffd`, raw control characters in strings
/// are escaped, and anything nested deeper than [`MAX_DEPTH`] is replaced by
/// the string [`TOO_DEEP`]. What CloudTrail wrote otherwise stays as it was.
pub fn repair(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len() + 16);
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = copy_string(b, i, &mut out),
            c @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    i = skip_value(b, i);
                    out.push(b'"');
                    out.extend_from_slice(TOO_DEEP.as_bytes());
                    out.push(b'"');
                    continue;
                }
                depth += 1;
                out.push(c);
                i += 1;
            }
            c @ (b'}' | b']') => {
                depth = depth.saturating_sub(1);
                out.push(c);
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Copies the string starting at the quote `at` into `out`, repaired; returns
/// the index after its closing quote.
fn copy_string(b: &[u8], at: usize, out: &mut Vec<u8>) -> usize {
    out.push(b'"');
    let mut i = at + 1;
    while i < b.len() {
        match b[i] {
            b'"' => {
                out.push(b'"');
                return i + 1;
            }
            b'\\' if b.get(i + 1) == Some(&b'u') => {
                let unit = hex4(b, i + 2);
                match unit {
                    Some(0xD800..=0xDBFF) => {
                        let low = (b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u'))
                            .then(|| hex4(b, i + 8))
                            .flatten()
                            .filter(|l| (0xDC00..=0xDFFF).contains(l));
                        if low.is_some() {
                            out.extend_from_slice(&b[i..i + 12]);
                            i += 12;
                        } else {
                            out.extend_from_slice(b"\\ufffd");
                            i += 6;
                        }
                    }
                    Some(0xDC00..=0xDFFF) => {
                        out.extend_from_slice(b"\\ufffd");
                        i += 6;
                    }
                    Some(_) => {
                        out.extend_from_slice(&b[i..i + 6]);
                        i += 6;
                    }
                    None => {
                        out.extend_from_slice(b"\\ufffd");
                        i += 2;
                    }
                }
            }
            b'\\' => match b.get(i + 1) {
                Some(&e @ (b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't')) => {
                    out.extend_from_slice(&[b'\\', e]);
                    i += 2;
                }
                _ => {
                    // An escape JSON does not have: keep the backslash as text.
                    out.extend_from_slice(b"\\\\");
                    i += 1;
                }
            },
            c if c < 0x20 => {
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out.push(b'"');
    i
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok().filter(|_| digits.iter().all(u8::is_ascii_hexdigit))
}

/// The index after the object or array starting at `at`.
fn skip_value(b: &[u8], at: usize) -> usize {
    let mut depth = 0usize;
    let mut i = at;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = string_end(b, i + 1) + 1;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// The first string value of the field `name` in `bytes`, decoded as far as
/// it can be; for records that cannot be parsed at all. The first occurrence
/// is CloudTrail's own for the fields it writes before the request
/// parameters (`eventTime`, `eventSource`, `eventName`, `awsRegion`,
/// `sourceIPAddress`, `userAgent`, `accountId`).
pub fn field(bytes: &[u8], name: &str) -> Option<String> {
    let needle = format!("\"{name}\"");
    let at = memmem::find(bytes, needle.as_bytes())?;
    let value = crate::scan::string_value_after(bytes, at + needle.len())?;
    let text = match value {
        Cow::Borrowed(raw) => String::from_utf8_lossy(raw).into_owned(),
        Cow::Owned(decoded) => String::from_utf8_lossy(&decoded).into_owned(),
    };
    Some(text).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(doc: &[u8]) -> Vec<String> {
        split_records(doc).records.into_iter().map(|r| String::from_utf8_lossy(&doc[r]).into_owned()).collect()
    }

    #[test]
    fn escapes_and_structure_inside_strings_at_every_offset_split_nothing() {
        // A string holding escaped quotes, backslashes and braces, with its
        // escapes at every offset around the 16-byte steps of the search for
        // a string's end: the records are the two objects, whole.
        for pad in 0..40 {
            let hostile = format!(r#"{}\"}}],{{\\\"Records\":[{{\\"#, "x".repeat(pad));
            let first = format!(r#"{{"eventVersion":"1.08","userAgent":"{hostile}","n":1}}"#);
            let second = r#"{"eventVersion":"1.08","userAgent":"\\"}"#;
            let doc = format!(r#"{{"Records":[{first},{second}]}}"#);
            assert_eq!(texts(doc.as_bytes()), [first.as_str(), second], "pad {pad}");
            assert!(serde_json::from_str::<serde_json::Value>(&doc).is_ok(), "pad {pad}: the test's JSON is valid");
        }
    }

    #[test]
    fn splits_every_shape_by_structure() {
        let log = br#"{"Records":[{"a":"}{"},{"b":[1,{"c":2}]}],"x":[{"no":1}]}"#;
        assert_eq!(texts(log), [r#"{"a":"}{"}"#, r#"{"b":[1,{"c":2}]}"#]);
        assert!(split_records(log).complete);
        let later = br#"{"x":{"Records":[{"no":1}]},"Records":[{"yes":"\"]"}]}"#;
        assert_eq!(texts(later), [r#"{"yes":"\"]"}"#]);
        let array = br#" [{"detail-type":"x","detail":{"e":1}}, {"f":2}] "#;
        assert_eq!(texts(array), [r#"{"detail-type":"x","detail":{"e":1}}"#, r#"{"f":2}"#]);
        let tagged = br#"{"detail-type":"x","detail":{"p":{"Records":[{"n":1}]},"q":"Records"}}"#;
        assert_eq!(texts(tagged), [String::from_utf8_lossy(tagged)], "Records below the top level is not a log file");
        let one = br#"{"eventVersion":"1.08","userIdentity":{"arn":"x"}}"#;
        assert_eq!(texts(one), [String::from_utf8_lossy(one)]);
        let truncated = br#"{"Records":[{"a":1},{"b":"xy"#;
        let s = split_records(truncated);
        assert_eq!((s.records.len(), s.complete), (2, false));
        assert!(split_records(b"not json").records.is_empty());
        assert!(split_records(br#"{"Records":[]}"#).records.is_empty());
    }

    #[test]
    fn repairs_what_strict_parsing_refuses() {
        let parse = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b);
        let surrogate = br#"{"p":"\ud800x","q":"\udc00","ok":"\ud83d\ude00","bad":"\uzzzz"}"#;
        assert!(parse(surrogate).is_err());
        let v = parse(&repair(surrogate)).unwrap();
        assert_eq!(v["p"], "\u{fffd}x");
        assert_eq!(v["ok"], "\u{1f600}");
        let utf8 = [&br#"{"p":"a"#[..], &[0xff, b'\n', 0x01], br#"","q":1}"#].concat();
        assert!(parse(&utf8).is_err());
        assert_eq!(parse(&repair(&utf8)).unwrap()["p"], "a\u{fffd}\n\u{1}");
        let deep = format!(r#"{{"eventName":"X","p":{}1{}}}"#, "[".repeat(500), "]".repeat(500));
        assert!(parse(deep.as_bytes()).is_err());
        let v = parse(&repair(deep.as_bytes())).unwrap();
        assert_eq!(v["eventName"], "X");
        assert!(v.to_string().contains(TOO_DEEP));
    }

    #[test]
    fn reads_fields_of_what_cannot_be_parsed() {
        let broken = br#"{"eventTime":"2026-11-28T10:00:00Z","eventName":"List\u0042uckets","p":"\ud800"#;
        assert_eq!(field(broken, "eventTime").as_deref(), Some("2026-11-28T10:00:00Z"));
        assert_eq!(field(broken, "eventName").as_deref(), Some("ListBuckets"));
        assert_eq!(field(broken, "awsRegion"), None);
    }
}

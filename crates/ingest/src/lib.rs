//! honeytrail's detection input: CloudTrail documents from any source,
//! scanned for honey identities.
//!
//! Every source (local files, S3, SQS, EventBridge, …) hands documents to a
//! [`Detector`], which finds the records made with a honey key and turns them
//! into [`TokenEvent`]s for the store. The hot path is [`scan::Scanner`]: one
//! pass over the bytes with a hash lookup per identity field; only documents
//! with a hit are parsed.
//!
//! **Architecture invariant:** a bad document (truncated gzip, invalid JSON,
//! a digest file, an oversized record, non-CloudTrail JSON) is skipped with a
//! stated reason and never stops ingestion. A honey key found in a document
//! that cannot be parsed is still reported.
//!
//! # Example
//! ```
//! use honeytrail_ingest::{Detector, index::{KeyIndex, TokenRef}};
//! let mut index = KeyIndex::new();
//! index.insert(TokenRef { token_id: 1, retired: false }, "AKIARZPUZDIKAWS2LJNF", None, None);
//! let doc = br#"{"Records":[{"eventVersion":"1.08","eventID":"e1","eventTime":"2026-11-28T10:00:00Z","eventName":"GetCallerIdentity","userIdentity":{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"}}]}"#;
//! let out = Detector::new(index).document(doc, "cloudtrail-file", "example.json");
//! assert_eq!(out.events.len(), 1);
//! ```

pub mod canarytokens;
pub mod decoys;
pub mod fields;
pub mod files;
pub mod gunzip;
pub mod health;
pub mod index;
pub mod lenient;
pub mod mapped;
pub mod messages;
pub mod record;
pub mod scan;

use std::fmt;

use chrono::Utc;
pub use honeytrail_core::incident::TokenEvent;

use crate::index::KeyIndex;
use crate::scan::Scanner;

/// Why a document was not (fully) read. Each says what it means for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// A CloudTrail digest file (integrity hashes, no events).
    Digest,
    NotCloudTrail(String),
    InvalidJson(String),
    Gzip(String),
    TooLarge {
        limit: u64,
    },
    Io(String),
    Extension,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Digest => f.write_str("CloudTrail digest file (no events)"),
            SkipReason::NotCloudTrail(why) => write!(f, "not CloudTrail: {why}"),
            SkipReason::InvalidJson(why) => write!(f, "invalid JSON: {why}"),
            SkipReason::Gzip(why) => write!(f, "damaged gzip: {why}"),
            SkipReason::TooLarge { limit } => {
                write!(f, "larger than {} MiB when decompressed (ingest.max_document_mib)", limit / (1 << 20))
            }
            SkipReason::Io(why) => write!(f, "cannot read: {why}"),
            SkipReason::Extension => f.write_str("not a .json or .json.gz file"),
        }
    }
}

impl SkipReason {
    /// A short, stable name for counting reasons in summaries and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SkipReason::Digest => "digest",
            SkipReason::NotCloudTrail(_) => "not-cloudtrail",
            SkipReason::InvalidJson(_) => "invalid-json",
            SkipReason::Gzip(_) => "gzip",
            SkipReason::TooLarge { .. } => "too-large",
            SkipReason::Io(_) => "io",
            SkipReason::Extension => "extension",
        }
    }
}

/// What one document gave.
#[derive(Debug, Clone, Default)]
pub struct DocumentOutcome {
    pub bytes: u64,
    /// Records in the document: those parsed when it was parsed (it holds a
    /// honey identity), else the fast path's count of `"eventVersion"` keys
    /// (the document is never parsed; an intruder's key of that name inflates
    /// it, and no detection depends on it).
    pub records: usize,
    /// Whether `records` counts parsed records.
    pub records_parsed: bool,
    pub events: Vec<TokenEvent>,
    pub skipped: Option<SkipReason>,
    /// Honey identities that could not be tied to a token: outside every
    /// record, or a bare user name in a record too broken to name the
    /// account. Logged and counted: the sighting must not be lost.
    pub unparsed_hits: Vec<String>,
    /// Records with a hit that strict parsing refused but a repaired copy
    /// parsed (a lone surrogate, invalid UTF-8, nesting too deep).
    pub repaired: usize,
    /// Records with a hit that could not be parsed even when repaired: their
    /// events were read field by field.
    pub salvaged: usize,
}

thread_local! {
    /// A document in memory of its own: decoded from gzip, or copied from a
    /// mapped file to be parsed.
    static OWN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Finds honey-key use in CloudTrail documents.
#[derive(Debug, Clone)]
pub struct Detector {
    index: KeyIndex,
    scanner: Scanner,
}

impl Detector {
    pub fn new(mut index: KeyIndex) -> Detector {
        index.seal();
        Detector { index, scanner: Scanner::new() }
    }

    pub fn index(&self) -> &KeyIndex {
        &self.index
    }

    /// The index, taken back to be grown without a copy.
    pub fn into_index(self) -> KeyIndex {
        self.index
    }

    /// Reads a document (gzipped or not) and processes what could be read:
    /// a damaged or oversized document is still scanned as far as it goes,
    /// and keeps the reason it was not whole.
    /// Processes a document already in memory (a file read whole, an S3
    /// object): plain JSON is scanned where it lies, one gzip member is
    /// decoded in one call ([`gunzip`]); anything else goes through
    /// [`Detector::read`].
    pub fn read_bytes(&self, data: &[u8], limit: u64, source: &str, origin: &str) -> DocumentOutcome {
        if !gunzip::is_gzip(data) && data.len() as u64 <= limit {
            return self.document(data, source, origin);
        }
        let whole = files::with_buffer(&OWN, |out| {
            gunzip::single_member_into(data, limit, out).then(|| self.document(out, source, origin))
        });
        whole.unwrap_or_else(|| self.read(data, limit, source, origin))
    }

    pub fn read(&self, reader: impl std::io::Read, limit: u64, source: &str, origin: &str) -> DocumentOutcome {
        let (bytes, damaged) = files::read_partial(reader, limit);
        let mut out = self.document(&bytes, source, origin);
        if damaged.is_some() {
            out.skipped = damaged;
        }
        out
    }

    /// Whether a document is read once by the scan: no decoys to look for
    /// (their names are a pass of their own). A mapped file pays only then;
    /// each further pass over it reads memory a copied file would have in
    /// cache.
    pub fn reads_once(&self) -> bool {
        self.index.decoys().is_empty()
    }

    /// Processes a document read where it may change while it is read (a
    /// mapped file, [`mapped`]): it is only searched there, and copied when
    /// anything in it is to be parsed, so nothing is parsed from bytes that
    /// may change under the parser. A gzipped or oversized document is
    /// decoded or read into memory of its own ([`Detector::read_bytes`]).
    pub fn read_shared(&self, data: &[u8], limit: u64, source: &str, origin: &str) -> DocumentOutcome {
        if gunzip::is_gzip(data) || data.len() as u64 > limit {
            return self.read_bytes(data, limit, source, origin);
        }
        let scan = self.scanner.scan(data, &self.index);
        if scan.hits.is_empty() && scan.decoy_hits.is_empty() && !health::may_be_exposure(data) {
            let mut out =
                DocumentOutcome { bytes: data.len() as u64, records: scan.records, ..DocumentOutcome::default() };
            classify_unmatched(data, &mut out);
            return out;
        }
        // Parsed from a copy; where the scan found things stays where it was
        // (a file rewritten meanwhile is read torn, as `read()` would read it).
        files::with_buffer(&OWN, |copy| {
            copy.extend_from_slice(data);
            self.scanned(copy, scan, source, origin)
        })
    }

    /// Processes one decompressed document. `source` names the kind of input
    /// (`cloudtrail-file`, `s3`, …), `origin` the exact place (path, URI).
    pub fn document(&self, bytes: &[u8], source: &str, origin: &str) -> DocumentOutcome {
        self.scanned(bytes, self.scanner.scan(bytes, &self.index), source, origin)
    }

    /// [`Detector::document`] after the scan.
    fn scanned(&self, bytes: &[u8], scan: scan::ScanResult, source: &str, origin: &str) -> DocumentOutcome {
        let mut out =
            DocumentOutcome { bytes: bytes.len() as u64, records: scan.records, ..DocumentOutcome::default() };
        // AWS's own finding that a key was published names it outside any
        // caller identity: looked for apart (rare, so a substring test first).
        if health::may_be_exposure(bytes) {
            let found = self.exposures(bytes, source, origin);
            if !found.is_empty() {
                out.records = out.records.max(1);
                out.events.extend(found);
                if scan.hits.is_empty() && scan.decoy_hits.is_empty() {
                    return out;
                }
            }
        }
        if scan.hits.is_empty() && scan.decoy_hits.is_empty() {
            classify_unmatched(bytes, &mut out);
            return out;
        }
        let split = lenient::split_records(bytes);
        out.records = split.records.len();
        out.records_parsed = true;
        let seen = Utc::now();
        let mut hits = scan.hits.as_slice();
        let mut decoy_hits = scan.decoy_hits.as_slice();
        for (n, range) in split.records.iter().enumerate() {
            // A decoy's name in this record: parsed and compared exactly.
            while decoy_hits.first().is_some_and(|at| *at < range.start) {
                decoy_hits = &decoy_hits[1..];
            }
            let decoy = decoy_hits.first().is_some_and(|at| *at < range.end);
            // Hits before this record lie outside every record.
            while let Some(((at, id), rest)) = hits.split_first().filter(|((at, _), _)| *at < range.start) {
                out.unparsed_hits.push(format!("{id} at byte {at} (outside every record)"));
                hits = rest;
            }
            let inside = hits.iter().take_while(|(at, _)| *at < range.end).count();
            if inside == 0 && !decoy {
                continue;
            }
            let (here, rest) = hits.split_at(inside);
            hits = rest;
            let span = &bytes[range.clone()];
            match parse_record(span) {
                Ok((rec, repaired)) => {
                    if repaired {
                        out.repaired += 1;
                    }
                    let token = record::match_record(&rec, &self.index).or_else(|| self.index.match_decoy(&rec));
                    if let Some(token) = token {
                        out.events.push(record::to_event(&rec, token, source, origin, seen));
                    }
                }
                Err(_) if here.is_empty() => {
                    // Only a decoy's name, in a record that cannot be read:
                    // whether it was an access cannot be told.
                    tracing::warn!(origin, record = n + 1, "a record that mentions a decoy's name cannot be parsed");
                    out.salvaged += 1;
                }
                Err(why) => {
                    let place = format!("{origin} (record {}: not parseable: {why})", n + 1);
                    match record::salvage(span, here, &self.index, source, &place, seen) {
                        Some(event) => out.events.push(event),
                        None => out
                            .unparsed_hits
                            .extend(here.iter().map(|(at, id)| format!("{id} at byte {at} (record {}: {why})", n + 1))),
                    }
                    out.salvaged += 1;
                }
            }
        }
        for (at, id) in hits {
            out.unparsed_hits.push(format!("{id} at byte {at} (outside every record)"));
        }
        if !split.complete {
            out.skipped =
                Some(SkipReason::InvalidJson("the document ends before its structure does (truncated?)".into()));
        }
        out
    }
}

impl Detector {
    /// The honey keys AWS Health exposure findings in the document name: one
    /// event or an array of them (EventBridge envelopes or bare details).
    fn exposures(&self, bytes: &[u8], source: &str, origin: &str) -> Vec<TokenEvent> {
        let value = match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(v) => v,
            Err(_) => match serde_json::from_slice(&lenient::repair(bytes)) {
                Ok(v) => v,
                Err(_) => return Vec::new(),
            },
        };
        let seen = Utc::now();
        match &value {
            serde_json::Value::Array(items) => {
                items.iter().flat_map(|v| health::exposures(v, &self.index, source, origin, seen)).collect()
            }
            v => health::exposures(v, &self.index, source, origin, seen),
        }
    }
}

/// One record, parsed strictly or, when that is refused, repaired first
/// (`true`); an EventBridge envelope gives its CloudTrail record.
fn parse_record(span: &[u8]) -> Result<(serde_json::Value, bool), String> {
    let (value, repaired) = match serde_json::from_slice::<serde_json::Value>(span) {
        Ok(v) => (v, false),
        Err(strict) => match serde_json::from_slice(&lenient::repair(span)) {
            Ok(v) => (v, true),
            Err(_) => return Err(strict.to_string()),
        },
    };
    Ok((record::unwrap_envelope(value), repaired))
}

/// Classifies a document with nothing of ours in it, without parsing it:
/// cut short, not CloudTrail, a digest, or an empty log file.
fn classify_unmatched(bytes: &[u8], out: &mut DocumentOutcome) {
    let trimmed = bytes.trim_ascii();
    let framed = matches!((trimmed.first(), trimmed.last()), (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']')));
    if !framed {
        out.skipped = Some(SkipReason::InvalidJson("does not start and end like a JSON document (truncated?)".into()));
    } else if out.records == 0 {
        out.skipped = classify_without_records(trimmed);
    }
}

/// Why a document without records is skipped; `None` for a real, empty log
/// file (`{"Records":[]}`), which is read and simply holds nothing.
fn classify_without_records(trimmed: &[u8]) -> Option<SkipReason> {
    let has = |needle: &[u8]| memchr::memmem::find(trimmed, needle).is_some();
    if has(b"\"digestStartTime\"") {
        Some(SkipReason::Digest)
    } else if has(b"\"Records\"") {
        None
    } else {
        Some(SkipReason::NotCloudTrail("no CloudTrail records (no eventVersion field)".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::TokenRef;

    fn detector() -> Detector {
        let mut index = KeyIndex::new();
        index.insert(TokenRef { token_id: 1, retired: false }, "AKIARZPUZDIKAWS2LJNF", None, None);
        Detector::new(index)
    }

    const HIT: &str = r#"{"eventVersion":"1.08","eventID":"e1","eventTime":"2026-11-28T10:00:00Z","eventName":"ListBuckets","userIdentity":{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"}}"#;

    #[test]
    fn documents_of_every_kind() {
        let d = detector();
        let ok = d.document(format!(r#"{{"Records":[{HIT}]}}"#).as_bytes(), "test", "x");
        assert_eq!((ok.records, ok.events.len(), ok.skipped.clone()), (1, 1, None));
        let digest = d.document(br#"{"awsAccountId":"1","digestStartTime":"2023"}"#, "test", "x");
        assert_eq!(digest.skipped, Some(SkipReason::Digest));
        let empty = d.document(br#"{"Records":[]}"#, "test", "x");
        assert_eq!((empty.records, empty.skipped), (0, None), "an empty log file is read, not skipped");
        let other = d.document(br#"{"hello":"world"}"#, "test", "x");
        assert_eq!(other.skipped.unwrap().kind(), "not-cloudtrail");
        let truncated = d.document(br#"{"Records":[{"eventVersion":"1.08""#, "test", "x");
        assert_eq!(truncated.skipped.unwrap().kind(), "invalid-json");
    }

    #[test]
    fn a_hit_in_a_broken_document_is_still_reported() {
        let d = detector();
        // The record with the key is whole; the document is cut after it.
        let broken = format!(r#"{{"Records":[{HIT},{{"eventVersion":"#);
        let out = d.document(broken.as_bytes(), "test", "x");
        assert_eq!(out.skipped.unwrap().kind(), "invalid-json");
        assert_eq!((out.events.len(), out.events[0].event_id.as_str()), (1, "e1"));
        // The record with the key is itself cut: read field by field.
        let cut = r#"{"Records":[{"eventVersion":"1.08","eventTime":"2026-11-28T10:00:00Z","eventName":"ListBuckets","userIdentity":{"accessKeyId":"AKIARZPUZDIKAWS2LJNF"},"requestParameters":{"p":"#;
        let out = d.document(cut.as_bytes(), "test", "x");
        assert_eq!((out.events.len(), out.salvaged), (1, 1));
        let e = &out.events[0];
        assert!(e.event_id.starts_with("unparsed-"), "{}", e.event_id);
        assert_eq!(
            (e.event_name.as_str(), e.event_time.to_rfc3339().as_str()),
            ("ListBuckets", "2026-11-28T10:00:00+00:00")
        );
        assert!(e.origin.contains("not parseable"), "{}", e.origin);
    }

    /// What an intruder can put into request parameters must blind neither
    /// their own record nor the others of the same file.
    #[test]
    fn hostile_bytes_in_one_record_blind_nothing() {
        let d = detector();
        let with = |params: &[u8], id: &str| {
            let rec = HIT.replace("\"e1\"", &format!("\"{id}\"")).replace("}}", "},\"requestParameters\":{\"p\":@}}");
            let (a, b) = rec.split_once('@').unwrap();
            [a.as_bytes(), params, b.as_bytes()].concat()
        };
        let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
        let hostile: [(&str, Vec<u8>); 4] = [
            ("lone surrogate", br#""\ud800""#.to_vec()),
            ("invalid UTF-8", vec![b'"', 0xff, 0xfe, b'"']),
            ("raw control character", b"\"a\x01b\"".to_vec()),
            ("nesting too deep", deep.into_bytes()),
        ];
        for (what, params) in hostile {
            let doc = [&b"{\"Records\":["[..], &with(&params, "bad"), b",", HIT.as_bytes(), b"]}"].concat();
            assert!(serde_json::from_slice::<serde_json::Value>(&doc).is_err(), "{what}: strict parsing refuses it");
            let out = d.document(&doc, "test", "x");
            let ids: Vec<&str> = out.events.iter().map(|e| e.event_id.as_str()).collect();
            assert_eq!(ids, ["bad", "e1"], "{what}");
            assert_eq!((out.records, out.repaired, out.skipped.clone()), (2, 1, None), "{what}");
            assert_eq!(out.events[0].event_name, "ListBuckets", "{what}");
        }
    }

    #[test]
    fn a_call_on_a_decoy_is_found_whoever_made_it() {
        let mut index = KeyIndex::new();
        assert!(index.insert_decoy(TokenRef { token_id: 9, retired: false }, "arn:aws:s3:::ledger-exports-prod-1a2b"));
        index.decoys_mut().set_managers(["arn:aws:iam::123456789012:user/admin".to_string()]);
        let d = Detector::new(index);
        let call = |id: &str, user: &str, bucket: &str| {
            format!(
                r#"{{"eventVersion":"1.09","eventID":"{id}","eventTime":"2026-12-07T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/{user}","accessKeyId":"AKIAIOSFODNN7EXAMPLE"}},"requestParameters":{{"bucketName":"{bucket}","key":"README.txt"}},"resources":[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::{bucket}/README.txt"}}]}}"#
            )
        };
        let doc = format!(
            r#"{{"Records":[{},{},{},{HIT}]}}"#,
            call("mine", "admin", "ledger-exports-prod-1a2b"),
            call("theirs", "intruder", "ledger-exports-prod-1a2b"),
            call("elsewhere", "intruder", "ledger-exports-prod-1a2b-copy"),
        );
        let out = d.document(doc.as_bytes(), "test", "x");
        let found: Vec<(&str, i64)> = out.events.iter().map(|e| (e.event_id.as_str(), e.token_id)).collect();
        assert_eq!(found, [("theirs", 9)], "the manager's own call and another bucket are not accesses");
        assert!(out.unparsed_hits.is_empty(), "{:?}", out.unparsed_hits);
    }

    #[test]
    fn envelopes_arrays_and_derived_sessions() {
        let mut index = KeyIndex::new();
        index.insert(
            TokenRef { token_id: 4, retired: false },
            "AKIARZPUZDIKAWS2LJNF",
            Some("arn:aws:iam::123456789012:user/svc"),
            Some(("123456789012", "svc")),
        );
        let d = Detector::new(index);
        let envelope = format!(
            r#"{{"version":"0","detail-type":"AWS API Call via CloudTrail","source":"aws.sts","detail":{HIT}}}"#
        );
        let out = d.document(format!("[{envelope},{envelope}]").as_bytes(), "test", "x");
        assert_eq!((out.records, out.events.len()), (2, 2), "an array of EventBridge envelopes");
        let federated = r#"{"eventVersion":"1.08","eventID":"f1","eventTime":"2026-11-28T10:00:00Z","eventName":"ListBuckets","userIdentity":{"type":"FederatedUser","principalId":"123456789012:bob","arn":"arn:aws:sts::123456789012:federated-user/bob","accountId":"123456789012","accessKeyId":"ASIAFEDERATEDFEDERAT","sessionContext":{"sessionIssuer":{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::123456789012:user/svc","accountId":"123456789012","userName":"svc"}}}}"#;
        let out = d.document(federated.as_bytes(), "test", "x");
        assert_eq!(out.events.len(), 1, "a federated user of a honey user");
        let by_name = federated.replace(r#""arn":"arn:aws:iam::123456789012:user/svc","#, "");
        assert_eq!(d.document(by_name.as_bytes(), "test", "x").events.len(), 1, "an issuer named by account and user");
    }
}

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
pub mod files;
pub mod index;
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
    pub records: usize,
    pub events: Vec<TokenEvent>,
    pub skipped: Option<SkipReason>,
    /// Honey identities found in a document that could not be parsed: the
    /// events are lost to parsing, but the sighting must not be.
    pub unparsed_hits: Vec<String>,
}

/// Finds honey-key use in CloudTrail documents.
#[derive(Debug, Clone)]
pub struct Detector {
    index: KeyIndex,
    scanner: Scanner,
}

impl Detector {
    pub fn new(index: KeyIndex) -> Detector {
        Detector { index, scanner: Scanner::new() }
    }

    pub fn index(&self) -> &KeyIndex {
        &self.index
    }

    /// Processes one decompressed document. `source` names the kind of input
    /// (`cloudtrail-file`, `s3`, …), `origin` the exact place (path, URI).
    pub fn document(&self, bytes: &[u8], source: &str, origin: &str) -> DocumentOutcome {
        let scan = self.scanner.scan(bytes, &self.index);
        let mut out =
            DocumentOutcome { bytes: bytes.len() as u64, records: scan.records, ..DocumentOutcome::default() };
        let trimmed = bytes.trim_ascii();
        let framed = matches!((trimmed.first(), trimmed.last()), (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']')));
        if scan.hits.is_empty() {
            // Nothing of ours in it: classify without parsing, cheaply.
            if !framed {
                out.skipped =
                    Some(SkipReason::InvalidJson("does not start and end like a JSON document (truncated?)".into()));
            } else if scan.records == 0 {
                out.skipped = classify_without_records(trimmed);
            }
            return out;
        }
        let doc: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                out.skipped = Some(SkipReason::InvalidJson(e.to_string()));
                out.unparsed_hits = scan.hits.into_iter().map(|(at, id)| format!("{id} at byte {at}")).collect();
                return out;
            }
        };
        let records = match record::records_of(doc) {
            Ok(r) => r,
            Err(reason) => {
                out.skipped = Some(reason);
                return out;
            }
        };
        let seen = Utc::now();
        for rec in &records {
            if let Some(token) = record::match_record(rec, &self.index) {
                out.events.push(record::to_event(rec, token, source, origin, seen));
            }
        }
        out
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
        let broken = format!(r#"{{"Records":[{HIT},{{"eventVersion":"#);
        let out = d.document(broken.as_bytes(), "test", "x");
        assert_eq!(out.skipped.unwrap().kind(), "invalid-json");
        assert_eq!(out.unparsed_hits.len(), 1);
        assert!(out.unparsed_hits[0].starts_with("AKIARZPUZDIKAWS2LJNF"));
    }
}

//! Events pushed to us over HTTP: EventBridge API destinations and
//! canarytokens.org webhooks. The server authenticates the request and hands
//! the body here; what comes back says what to answer.
//!
//! The process's detector is checked against the token table when tokens
//! changed through this process, or every few seconds for changes made
//! elsewhere; a request between costs no query.

use std::time::Duration;

use anyhow::Result;

use super::Sink;
use crate::Ops;

/// How long a receiver trusts the index without looking at the token table.
const RECHECK: Duration = Duration::from_secs(5);

/// Why a pushed body was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON at all (HTTP 400).
    Malformed(String),
    /// JSON, but not what this receiver reads (HTTP 422).
    NotOurs { code: &'static str, message: String },
}

/// What a pushed body held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub records: usize,
    pub matched: usize,
}

/// The receivers: the operations they store through.
pub struct Receivers {
    ops: Ops,
}

impl Receivers {
    /// The receivers, with the process's index built now, so the first
    /// event does not wait for it.
    pub async fn new(ops: &Ops) -> Result<Receivers> {
        Sink::new(ops).detector().await?;
        Ok(Receivers { ops: ops.clone() })
    }

    /// An EventBridge event (or a batch) as an API destination posts it.
    /// The body is read leniently: bytes a strict parser refuses (which an
    /// intruder can put into request parameters) never cost the event.
    pub async fn eventbridge(&self, body: &[u8]) -> Result<Result<Accepted, Refusal>> {
        let mut sink = Sink::new(&self.ops);
        let mut detector = sink.detector_within(RECHECK).await?;
        let origin = "EventBridge API destination";
        let outcome = sink.scan(&mut detector, |d| d.document(body, "eventbridge-http", origin)).await?;
        if outcome.events.is_empty() && outcome.unparsed_hits.is_empty() {
            match &outcome.skipped {
                Some(reason) if reason.kind() == "invalid-json" => {
                    return Ok(Err(Refusal::Malformed(format!("the body is not a JSON EventBridge event: {reason}"))))
                }
                Some(reason) => {
                    return Ok(Err(Refusal::NotOurs { code: "not_cloudtrail", message: reason.to_string() }))
                }
                None => {}
            }
        }
        sink.document(origin, &outcome).await?;
        Ok(Ok(Accepted { records: outcome.records, matched: sink.matches }))
    }

    /// A canarytokens.org webhook alert, matched to an imported token by its
    /// label `canarytoken=<id>`.
    pub async fn canarytokens(&self, body: &[u8]) -> Result<Result<Accepted, Refusal>> {
        let Ok(payload) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Ok(Err(Refusal::Malformed("the body is not a canarytokens.org webhook payload".into())));
        };
        // Looked up by its label, not by reading every token per request.
        let label = honeytrail_ingest::canarytokens::token_id(&payload).map(|id| ("canarytoken".to_string(), Some(id)));
        let tokens = match label {
            Some(label) => {
                self.ops
                    .store
                    .list_tokens(&honeytrail_store::TokenFilter { label: Some(label), ..Default::default() })
                    .await?
            }
            None => Vec::new(),
        };
        let Some(event) = honeytrail_ingest::canarytokens::to_event(&payload, &tokens) else {
            return Ok(Err(Refusal::NotOurs {
                code: "unknown_canarytoken",
                message: "no imported token carries this canarytoken: import it with the label canarytoken=<token id from the manage URL>".into(),
            }));
        };
        let mut sink = Sink::new(&self.ops);
        sink.add(&[event]).await?;
        Ok(Ok(Accepted { records: 1, matched: sink.matches }))
    }
}

//! Events pushed to us over HTTP: EventBridge API destinations and
//! canarytokens.org webhooks. The server authenticates the request and hands
//! the body here; what comes back says what to answer.
//!
//! The detector is kept between requests and rebuilt when tokens changed
//! through this process, or every few seconds for changes made elsewhere.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use honeytrail_ingest::Detector;
use tokio::sync::Mutex;

use super::{build_index, Sink};
use crate::Ops;

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

/// The receivers' shared state: the operations and a cached detector.
pub struct Receivers {
    ops: Ops,
    detector: Mutex<(Instant, Arc<Detector>)>,
}

impl Receivers {
    pub async fn new(ops: &Ops) -> Result<Receivers> {
        let detector = Detector::new(build_index(&ops.store).await?);
        Ok(Receivers { ops: ops.clone(), detector: Mutex::new((Instant::now(), Arc::new(detector))) })
    }

    /// The detector, rebuilt when older than a few seconds or when tokens
    /// changed through this process, so new tokens match without a restart.
    async fn detector(&self) -> Result<Arc<Detector>> {
        let mut slot = self.detector.lock().await;
        let stale = self.ops.take_tokens_changed();
        if stale || slot.0.elapsed() > Duration::from_secs(5) {
            *slot = (Instant::now(), Arc::new(Detector::new(build_index(&self.ops.store).await?)));
        }
        Ok(slot.1.clone())
    }

    /// An EventBridge event (or a batch) as an API destination posts it.
    /// The body is read leniently: bytes a strict parser refuses (which an
    /// intruder can put into request parameters) never cost the event.
    pub async fn eventbridge(&self, body: &[u8]) -> Result<Result<Accepted, Refusal>> {
        let detector = self.detector().await?;
        let origin = "EventBridge API destination";
        let outcome = detector.document(body, "eventbridge-http", origin);
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
        let mut sink = Sink::new(&self.ops);
        sink.document(origin, &outcome).await?;
        Ok(Ok(Accepted { records: outcome.records, matched: sink.matches }))
    }

    /// A canarytokens.org webhook alert, matched to an imported token by its
    /// label `canarytoken=<id>`.
    pub async fn canarytokens(&self, body: &[u8]) -> Result<Result<Accepted, Refusal>> {
        let Ok(payload) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Ok(Err(Refusal::Malformed("the body is not a canarytokens.org webhook payload".into())));
        };
        let tokens = self.ops.store.list_tokens(&Default::default()).await?;
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

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
    detector: Mutex<Cached>,
}

/// The detector and what the token table looked like when it was made.
struct Cached {
    checked: Instant,
    fingerprint: (i64, i64, i64),
    detector: Arc<Detector>,
}

impl Receivers {
    pub async fn new(ops: &Ops) -> Result<Receivers> {
        let fingerprint = ops.store.token_fingerprint().await?;
        let detector = Arc::new(Detector::new(build_index(&ops.store).await?));
        Ok(Receivers {
            ops: ops.clone(),
            detector: Mutex::new(Cached { checked: Instant::now(), fingerprint, detector }),
        })
    }

    /// The detector, kept up to date so new tokens match without a restart:
    /// when tokens changed through this process, or every few seconds for
    /// changes made elsewhere, the token table's fingerprint is read; tokens
    /// that were only added are added to the index, anything else (a key
    /// retired, removed) rebuilds it.
    async fn detector(&self) -> Result<Arc<Detector>> {
        let mut slot = self.detector.lock().await;
        let stale = self.ops.take_tokens_changed();
        if !stale && slot.checked.elapsed() < Duration::from_secs(5) {
            return Ok(slot.detector.clone());
        }
        slot.checked = Instant::now();
        let now = self.ops.store.token_fingerprint().await?;
        let (count, max_id, retired) = slot.fingerprint;
        if now == slot.fingerprint {
            return Ok(slot.detector.clone());
        }
        let only_added = now.2 == retired && now.1 > max_id && now.0 - count == now.1 - max_id;
        let mut index = if only_added { slot.detector.index().clone() } else { Default::default() };
        let after = if only_added { max_id } else { 0 };
        self.ops
            .store
            .each_token_identity_after(after, |t| {
                index.insert(
                    honeytrail_ingest::index::TokenRef { token_id: t.id, retired: t.retired },
                    t.access_key_id,
                    t.iam_user_arn,
                    t.account_id.zip(t.iam_user_name),
                )
            })
            .await?;
        *slot = Cached { checked: Instant::now(), fingerprint: now, detector: Arc::new(Detector::new(index)) };
        Ok(slot.detector.clone())
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

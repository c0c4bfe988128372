//! The match index every source of a process uses, kept current.
//!
//! One [`LiveIndex`] per process (it lives in the operations' shared
//! signals, so the receivers, the S3 and SQS watchers, `ingest` and the
//! safety net all see the same one). It is built once, from the identity
//! columns alone, and then follows the token table: a cheap fingerprint
//! (count, highest ID, retired count) is compared before it is used; tokens
//! that were only added are added to the index, anything else (a key
//! retired or removed) rebuilds it. A pass of a watcher costs one small
//! query, not a rebuild, at a million keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::Detector;
use honeytrail_store::Store;
use tokio::sync::Mutex;

/// The detector of this process and what the token table looked like when
/// it was last brought up to date.
#[derive(Default)]
pub struct LiveIndex {
    slot: Mutex<Option<Current>>,
}

struct Current {
    checked: Instant,
    fingerprint: (i64, i64, i64),
    detector: Arc<Detector>,
}

/// The index over every registered token, retired ones included (a retired
/// key that shows up still means something), streamed from the store: a
/// million keys never sit in memory as whole token rows.
async fn build(store: &Store, after: i64, mut index: KeyIndex) -> Result<KeyIndex> {
    store
        .each_token_identity_after(after, |t| {
            index.insert(
                TokenRef { token_id: t.id, retired: t.retired },
                t.access_key_id,
                t.iam_user_arn,
                t.account_id.zip(t.iam_user_name),
            )
        })
        .await?;
    Ok(index)
}

impl LiveIndex {
    /// The detector, brought up to date when the token table may have
    /// changed: when `changed_here` (tokens changed through this process),
    /// or when it was last checked more than `max_age` ago (changes made by
    /// other processes). `Duration::ZERO` checks every time.
    pub async fn detector(&self, store: &Store, changed_here: bool, max_age: Duration) -> Result<Arc<Detector>> {
        let mut slot = self.slot.lock().await;
        if let Some(current) = slot.as_ref() {
            if !changed_here && !max_age.is_zero() && current.checked.elapsed() < max_age {
                return Ok(current.detector.clone());
            }
        }
        let now = store.token_fingerprint().await?;
        let (detector, fingerprint) = match slot.take() {
            Some(current) if current.fingerprint == now => (current.detector, now),
            Some(current) => {
                let (count, max_id, retired) = current.fingerprint;
                // Only additions: the old index plus the new tokens.
                let only_added = now.2 == retired && now.1 > max_id && now.0 - count == now.1 - max_id;
                let index = if only_added {
                    build(store, max_id, current.detector.index().clone()).await?
                } else {
                    build(store, 0, KeyIndex::with_capacity(usize::try_from(now.0).unwrap_or(0))).await?
                };
                (Arc::new(Detector::new(index)), now)
            }
            None => {
                let index = build(store, 0, KeyIndex::with_capacity(usize::try_from(now.0).unwrap_or(0))).await?;
                (Arc::new(Detector::new(index)), now)
            }
        };
        *slot = Some(Current { checked: Instant::now(), fingerprint, detector: detector.clone() });
        Ok(detector)
    }
}

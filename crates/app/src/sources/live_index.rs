//! The match index every source of a process uses, kept current.
//!
//! One [`LiveIndex`] per process (it lives in the operations' shared
//! signals, so the receivers, the S3 and SQS watchers, `ingest` and the
//! safety net all see the same one). It is built once, from the identity
//! columns alone, and then follows the token table through the store's
//! change counters (tokens ever added, tokens ever retired: one row, bumped
//! in the same transaction as each change). Unchanged counters cost one
//! one-row query; when only additions were counted, the tokens above the
//! highest ID indexed are added; anything else rebuilds the index.
//!
//! Transactions commit out of ID order, so an addition is only trusted when
//! the counters read the same before and after the read of the new tokens
//! (nothing committed in between) and exactly as many new tokens were seen
//! as were counted. Otherwise the index is rebuilt; a rebuild that raced a
//! change is kept but marked inexact, so the next change rebuilds again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use honeytrail_ingest::index::{KeyIndex, TokenRef};
use honeytrail_ingest::Detector;
use honeytrail_store::{Store, TokenFingerprint};
use tokio::sync::Mutex;

/// Rebuilds tried before one that raced a change is kept as inexact.
const REBUILD_ATTEMPTS: usize = 3;

/// The detector of this process and what the token table looked like when
/// it was last brought up to date.
#[derive(Default)]
pub struct LiveIndex {
    slot: Mutex<Option<Current>>,
}

struct Current {
    checked: Instant,
    fingerprint: TokenFingerprint,
    /// The highest token ID in the index.
    max_id: i64,
    /// Whether the index holds exactly the tokens `fingerprint` counts.
    exact: bool,
    detector: Arc<Detector>,
}

/// What one read of the token table added to an index.
struct Scan {
    index: KeyIndex,
    max_id: i64,
    visited: i64,
}

/// Adds every registered token above `after` to `index`, retired ones
/// included (a retired key that shows up still means something), streamed
/// from the store: a million keys never sit in memory as whole token rows.
async fn scan(store: &Store, after: i64, mut index: KeyIndex) -> Result<Scan> {
    let (mut max_id, mut visited) = (after, 0);
    store
        .each_token_identity_after(after, |t| {
            max_id = max_id.max(t.id);
            visited += 1;
            let token = TokenRef { token_id: t.id, retired: t.retired };
            if t.decoy {
                if !index.insert_decoy(token, t.access_key_id) {
                    tracing::warn!(
                        token = t.id,
                        "decoy token #{} has no ARN honeytrail can read; it is not watched",
                        t.id
                    );
                }
            } else {
                index.insert(token, t.access_key_id, t.iam_user_arn, t.account_id.zip(t.iam_user_name))
            }
        })
        .await?;
    if !index.decoys().is_empty() {
        index.decoys_mut().set_managers(store.decoy_managers().await?);
    }
    Ok(Scan { index, max_id, visited })
}

/// The index built anew; `before` is the counters read just before.
async fn rebuild(store: &Store, mut before: TokenFingerprint) -> Result<Current> {
    let mut attempt = 1;
    loop {
        let capacity = usize::try_from(before.added).unwrap_or(0);
        let Scan { index, max_id, .. } = scan(store, 0, KeyIndex::with_capacity(capacity)).await?;
        let after = store.token_fingerprint().await?;
        let exact = after == before;
        if exact || attempt == REBUILD_ATTEMPTS {
            if !exact {
                tracing::debug!("the token table kept changing while the match index was rebuilt; rebuilding again at the next change");
            }
            let detector = Arc::new(Detector::new(index));
            return Ok(Current { checked: Instant::now(), fingerprint: before, max_id, exact, detector });
        }
        before = after;
        attempt += 1;
    }
}

/// The index of `current` with the tokens added since, when the counters
/// show additions only and the read of them can be trusted; `Err` gives
/// `current` back otherwise.
async fn grow(store: &Store, current: Current, now: TokenFingerprint) -> Result<Result<Current, Current>> {
    let added = now.added - current.fingerprint.added;
    if !current.exact || now.retired != current.fingerprint.retired || added <= 0 {
        return Ok(Err(current));
    }
    // Growing the index this process alone holds avoids copying it; a pass
    // still using the old detector keeps it, and the index is copied.
    let index = Arc::try_unwrap(current.detector).map(Detector::into_index).unwrap_or_else(|d| d.index().clone());
    let Scan { index, max_id, visited } = scan(store, current.max_id, index).await?;
    let after = store.token_fingerprint().await?;
    let detector = Arc::new(Detector::new(index));
    let grown = Current { checked: Instant::now(), fingerprint: now, max_id, exact: true, detector };
    Ok(if after == now && visited == added { Ok(grown) } else { Err(grown) })
}

impl LiveIndex {
    /// The detector, brought up to date when the token table may have
    /// changed: when `changed_here` (tokens changed through this process),
    /// or when it was last checked more than `max_age` ago (changes made by
    /// other processes). `Duration::ZERO` checks every time.
    pub async fn detector(&self, store: &Store, changed_here: bool, max_age: Duration) -> Result<Arc<Detector>> {
        let mut slot = self.slot.lock().await;
        if let Some(current) = slot.as_mut() {
            if !changed_here && !max_age.is_zero() && current.checked.elapsed() < max_age {
                return Ok(current.detector.clone());
            }
        }
        let now = store.token_fingerprint().await?;
        let current = match slot.take() {
            Some(mut current) if current.fingerprint == now => {
                current.checked = Instant::now();
                current
            }
            Some(current) => match grow(store, current, now).await? {
                Ok(grown) => grown,
                Err(_) => rebuild(store, store.token_fingerprint().await?).await?,
            },
            None => rebuild(store, now).await?,
        };
        let detector = current.detector.clone();
        *slot = Some(current);
        Ok(detector)
    }
}

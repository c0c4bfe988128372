//! Where CloudTrail arrives from, one file each: local files ([`files`]),
//! S3 polling ([`s3`]), SQS ([`sqs`]), the EventBridge and canarytokens
//! receivers ([`receivers`]), and the safety net ([`safety_net`]).
//!
//! Every source feeds one [`Sink`]: the events the detector found are
//! stored (deduplicated by event ID, grouped into incidents, each change
//! queuing its alert in the same transaction) and the dispatcher is woken.
//!
//! **Invariant:** a source marks its input done (an SQS message deleted, an
//! S3 object marked read) only after the sink stored every event it carried.
//!
//! To add a source: one file here with a type that implements [`Source`],
//! and a line in `parse_watch` if `serve.watch` should run it.

pub mod files;
pub mod live_index;
pub mod receivers;
pub mod s3;
pub mod safety_net;
pub mod sqs;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use anyhow::Result;
use chrono::Duration;
use honeytrail_ingest::{Detector, DocumentOutcome, TokenEvent};
use honeytrail_store::{EventOutcome, Store};

use crate::Ops;

/// Honey identities seen in documents that could not be parsed, by every
/// sink of this process (each also logged as an error); `/metrics` shows it.
pub static UNPARSED_HITS: AtomicU64 = AtomicU64::new(0);

/// An incident a source opened or updated, and how.
pub type Touched = (i64, &'static str);

/// Where every source puts what it found.
pub struct Sink {
    ops: Ops,
    window: Duration,
    /// Events stored or found already stored, since the sink was made.
    pub matches: usize,
    /// Events that were already stored (read before, by any source).
    pub duplicates: usize,
    /// Events a CI run's window expected: stored on the run, not alerted.
    pub expected: usize,
    /// Documents that could not be read and held a honey key nonetheless.
    pub unparsed_hits: usize,
    touched: BTreeMap<i64, &'static str>,
}

impl Sink {
    pub fn new(ops: &Ops) -> Sink {
        let window = Duration::minutes(ops.config.detect.window_minutes as i64);
        Sink {
            ops: ops.clone(),
            window,
            matches: 0,
            duplicates: 0,
            expected: 0,
            unparsed_hits: 0,
            touched: BTreeMap::new(),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.ops.store
    }

    /// The process's detector ([`live_index::LiveIndex`]), checked against
    /// the token table first: a source's pass matches every token
    /// registered before it began, without rebuilding the index.
    pub async fn detector(&self) -> Result<Arc<Detector>> {
        self.detector_within(std::time::Duration::ZERO).await
    }

    /// Scans one document with `detector`; when nothing in it matched, the
    /// token table is looked at once more (one small query) and, if keys
    /// were registered since `detector` was made, the document is scanned
    /// again with the index brought up to date. So no event is answered "no
    /// match" for a key registered before it was read, whichever process or
    /// replica registered it.
    pub async fn scan(
        &self,
        detector: &mut Arc<Detector>,
        scan: impl Fn(&Detector) -> DocumentOutcome,
    ) -> Result<DocumentOutcome> {
        let outcome = scan(detector);
        if outcome.records == 0 || !outcome.events.is_empty() || !outcome.unparsed_hits.is_empty() {
            return Ok(outcome);
        }
        let fresh = self.detector().await?;
        if Arc::ptr_eq(&fresh, detector) {
            return Ok(outcome);
        }
        *detector = fresh;
        Ok(scan(detector))
    }

    /// The detector, checked against the token table when it was last
    /// checked more than `max_age` ago (or tokens changed here).
    pub(crate) async fn detector_within(&self, max_age: std::time::Duration) -> Result<Arc<Detector>> {
        let changed = self.ops.take_tokens_changed();
        self.ops.signals().index.detector(&self.ops.store, changed, max_age).await
    }

    /// Stores events, then wakes the dispatcher for the alerts they queued.
    pub async fn add(&mut self, events: &[TokenEvent]) -> Result<()> {
        // What raises an incident's severity (an attacker tool in the user
        // agent, bait hidden from its agent) is noted as the event is stored,
        // so every list shows the raised severity at once. Without the
        // enricher (its data unreadable) events are still stored.
        let enricher = match events.is_empty() {
            true => None,
            false => self
                .ops
                .recent_enricher()
                .await
                .map_err(|e| tracing::warn!(error = %e, "no enricher for severity"))
                .ok(),
        };
        let mut raised = std::collections::BTreeSet::new();
        for event in events {
            self.matches += 1;
            let id = match self.ops.store.record_event(event, self.window).await? {
                EventOutcome::Duplicate => {
                    self.duplicates += 1;
                    continue;
                }
                EventOutcome::Expected(run) => {
                    self.expected += 1;
                    tracing::info!(run, event = %honeytrail_core::encoding::printable(&event.event_name), "a use inside a CI run's expected-activity window; stored on the run, not alerted");
                    continue;
                }
                EventOutcome::Opened(id) => {
                    self.touched.insert(id, "incident.opened");
                    id
                }
                EventOutcome::Joined(id) => {
                    self.touched.entry(id).or_insert("incident.updated");
                    id
                }
            };
            if enricher.as_deref().is_some_and(|e| e.raises_severity(event)) {
                raised.insert(id);
            }
            crate::failpoint("ingest.after-event");
        }
        for id in raised {
            self.ops.store.note_context_raise(id, true).await?;
        }
        if !events.is_empty() {
            self.ops.alert_queued();
        }
        Ok(())
    }

    /// Stores what one document held, and says what could not be read.
    pub async fn document(&mut self, origin: &str, outcome: &DocumentOutcome) -> Result<()> {
        if let Some(reason) = &outcome.skipped {
            tracing::warn!(origin, reason = %reason, kind = reason.kind(), "skipped a document");
        }
        for hit in &outcome.unparsed_hits {
            self.unparsed_hits += 1;
            UNPARSED_HITS.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                origin,
                hit = %hit,
                "a honey key appears in a document that could not be parsed; inspect it by hand"
            );
        }
        self.add(&outcome.events).await
    }

    /// The incidents opened or updated since the last call.
    pub fn take_touched(&mut self) -> Vec<Touched> {
        std::mem::take(&mut self.touched).into_iter().collect()
    }
}

/// A source of CloudTrail: each pass reads what is new and hands it to the
/// sink; the caller decides how often to pass.
pub trait Source {
    /// What this source reads, for logs and messages (`s3://bucket/prefix`).
    fn describe(&self) -> String;

    /// Reads what is new. `Ok(false)`: nothing was waiting.
    fn pass(&mut self, sink: &mut Sink) -> impl std::future::Future<Output = Result<bool>> + Send;
}

/// A source `serve` runs for as long as it serves, from `serve.watch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Worker {
    Sqs { queue: String },
    S3 { bucket: String, prefix: String },
}

/// `sqs:QUEUE` or `s3:BUCKET[/PREFIX]`, read with honeytrail's own
/// credentials; `sqs@NAME:QUEUE` or `s3@NAME:BUCKET[/PREFIX]`, read in the
/// pool's account NAME through its role; `@*`: in every account of the
/// pool. The account's name (or `*`), if any, and the worker.
pub fn parse_watch(spec: &str) -> Result<(Option<String>, Worker)> {
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let (kind, account) = match kind.split_once('@') {
        Some((kind, "*")) => (kind, Some("*".to_string())),
        Some((kind, name)) => {
            honeytrail_core::pool::validate_name(name)
                .map_err(|e| anyhow::anyhow!("serve.watch entry {spec:?}: {e}"))?;
            (kind, Some(name.to_string()))
        }
        None => (kind, None),
    };
    let worker = match (kind, rest) {
        ("sqs", queue) if !queue.is_empty() => Worker::Sqs { queue: queue.to_string() },
        ("s3", rest) if !rest.is_empty() => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            Worker::S3 { bucket: bucket.to_string(), prefix: prefix.to_string() }
        }
        _ => anyhow::bail!(
            "serve.watch entry {spec:?} is none of sqs:QUEUE, s3:BUCKET[/PREFIX], sqs@ACCOUNT:QUEUE, s3@ACCOUNT:BUCKET[/PREFIX]"
        ),
    };
    Ok((account, worker))
}

/// Runs a `serve.watch` worker until the process ends. A failure (AWS
/// unreachable, the database down) is logged and the worker starts again
/// after a pause; nothing is lost, since messages are deleted and objects
/// marked read only after their events are stored.
pub async fn run_worker(ops: &Ops, spec: &str) {
    let (account, worker) = match parse_watch(spec) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(worker = spec, error = %format!("{e:#}"), "not a watcher; fix serve.watch");
            return;
        }
    };
    if account.as_deref() == Some("*") {
        return in_every_account(ops, spec, worker).await;
    }
    watch_forever(ops, spec, account, worker).await
}

/// Runs one watcher in one account until the process ends.
async fn watch_forever(ops: &Ops, spec: &str, account: Option<String>, worker: Worker) {
    loop {
        let mut sink = Sink::new(ops);
        let result = match watch_account(ops, account.as_deref()).await {
            Err(e) => Err(e),
            Ok(aws) => match &worker {
                // SQS gives each message to one consumer: every replica reads.
                Worker::Sqs { queue } => match sqs::SqsSource::connect_in(ops, aws, queue, 20).await {
                    Ok(mut source) => forever(&mut source, &mut sink, std::time::Duration::ZERO, None).await,
                    Err(e) => Err(e),
                },
                // A bucket is polled by one replica at a time, under a lease.
                Worker::S3 { bucket, prefix } => {
                    let mut source = s3::S3Source::connect_in(ops, aws, bucket, prefix);
                    let job = format!("watch {spec}");
                    forever(&mut source, &mut sink, std::time::Duration::from_secs(60), Some(&job)).await
                }
            },
        };
        if let Err(e) = result {
            tracing::error!(worker = spec, error = %format!("{e:#}"), "watcher failed; starting again in 30 s");
        }
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
}

/// Runs `spec` (`…@*:…`) in each account of the pool, and in each account
/// added later (the pool is read again every minute). A watcher whose
/// account leaves the pool logs so and tries again until `serve` restarts.
async fn in_every_account(ops: &Ops, spec: &str, worker: Worker) {
    let mut started = std::collections::BTreeSet::new();
    loop {
        match ops.store.pool_accounts().await {
            Ok(accounts) => {
                if accounts.is_empty() && started.is_empty() {
                    tracing::warn!(worker = spec, "the pool of canary accounts is empty: nothing to watch yet");
                }
                for a in accounts {
                    if started.insert(a.name.clone()) {
                        let one = spec.replacen("@*:", &format!("@{}:", a.name), 1);
                        let (ops, worker) = (ops.clone(), worker.clone());
                        tracing::info!(worker = %one, "watching an account of the pool");
                        tokio::spawn(async move { watch_forever(&ops, &one, Some(a.name), worker).await });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(worker = spec, error = %e, "cannot read the pool of canary accounts; trying again")
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}

/// The account a watcher reads in: the pool's account `name`, else the
/// configured one.
async fn watch_account(ops: &Ops, name: Option<&str>) -> Result<honeytrail_aws::CanaryAccount> {
    match name {
        None => Ok(ops.canary_account().await),
        Some(name) => {
            let account = ops.store.pool_account(name).await.map_err(|e| match e {
                honeytrail_store::StoreError::NotFound(_) => anyhow::anyhow!(
                    "serve.watch names the canary account \"{name}\", which is not in the pool (honeytrail account list)"
                ),
                other => other.into(),
            })?;
            Ok(ops.connect_pool_account(&account).await)
        }
    }
}

/// Passes over a source until an error, pausing `interval` between passes.
/// With a `job`, a pass runs only while this replica holds its lease; the
/// others ask again every half lease, so one of them takes over within a
/// lease when the holder dies.
async fn forever(
    source: &mut impl Source,
    sink: &mut Sink,
    interval: std::time::Duration,
    job: Option<&str>,
) -> Result<()> {
    loop {
        if let Some(job) = job {
            if !sink.ops.hold(job).await? {
                let lease = sink.ops.membership().map_or(interval, |m| {
                    std::time::Duration::from_secs(u64::try_from(m.lease.num_seconds() / 2).unwrap_or(1).max(1))
                });
                tokio::time::sleep(lease.min(interval)).await;
                continue;
            }
        }
        let outcome = source.pass(sink).await;
        if let Some(job) = job {
            sink.ops.job_ran(job, outcome.as_ref().err().map(|e| format!("{e:#}")).as_deref()).await;
        }
        outcome?;
        sink.take_touched();
        if !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_entries_name_a_source_and_maybe_an_account_of_the_pool() {
        let sqs = |q: &str| Worker::Sqs { queue: q.into() };
        assert_eq!(parse_watch("sqs:cloudtrail-log-files").unwrap(), (None, sqs("cloudtrail-log-files")));
        let east = parse_watch("sqs@east:cloudtrail-log-files").unwrap();
        assert_eq!(east, (Some("east".into()), sqs("cloudtrail-log-files")));
        assert_eq!(parse_watch("sqs@*:q").unwrap(), (Some("*".into()), sqs("q")));
        let s3 = Worker::S3 { bucket: "trail".into(), prefix: "AWSLogs/o-1@x/".into() };
        assert_eq!(parse_watch("s3@west:trail/AWSLogs/o-1@x/").unwrap(), (Some("west".into()), s3));
        assert_eq!(
            parse_watch("s3:trail").unwrap(),
            (None, Worker::S3 { bucket: "trail".into(), prefix: String::new() })
        );
        for bad in ["sqs:", "sqs@:q", "sqs@a b:q", "kinesis:x", "s3@east:", "sqs"] {
            let e = parse_watch(bad).unwrap_err().to_string();
            assert!(e.contains("serve.watch entry"), "{bad}: {e}");
        }
    }
}

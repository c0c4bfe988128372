//! Consuming an SQS queue of S3 notifications (direct or SNS-wrapped),
//! CloudTrail notifications or EventBridge events.
//!
//! A message is deleted only after every event it carried is stored; if
//! anything fails (S3 unreachable, the database down), it stays in the queue
//! and comes back after its visibility timeout. A log file that cannot be
//! read costs only its own message (kept for SQS to retry, then moved to the
//! dead-letter queue); the others go on. An SNS subscription confirmation is
//! reported (log, audit) for a person to confirm, never fetched.

use anyhow::Result;
use honeytrail_aws::CanaryAccount;
use honeytrail_core::encoding::printable;
use honeytrail_ingest::messages::{classify, Message};

use super::{Sink, Source};
use crate::Ops;

pub struct SqsSource {
    account: CanaryAccount,
    queue: String,
    queue_url: String,
    wait_seconds: i32,
    limit: u64,
    /// Messages and S3 objects read since the source was made.
    pub messages: usize,
    pub objects: usize,
    /// Log files that could not be read (their messages stay for a retry).
    pub failed: Vec<String>,
    /// SNS subscriptions waiting for a person to confirm them.
    pub subscriptions: Vec<String>,
    /// The dead-letter queue, where SQS moves a message received
    /// `MAX_RECEIVES` times without being deleted.
    dead_letters_url: Option<String>,
    dead_letters_seen: u64,
    dead_letters_checked: Option<std::time::Instant>,
    /// Whether a message failed in the last pass: SQS may move it to the
    /// dead-letter queue on the next receive, so the next pass looks too.
    failed_last_pass: bool,
    /// What the dead-letter queue holds, once it holds something new.
    pub dead_letters: Option<String>,
}

/// How often a watcher looks into its dead-letter queue (besides right
/// after a message failed).
const DEAD_LETTER_CHECK: std::time::Duration = std::time::Duration::from_secs(300);

impl SqsSource {
    /// Resolves the queue (name or URL). `wait_seconds` is the long-poll wait.
    pub async fn connect(ops: &Ops, queue: &str, wait_seconds: i32) -> Result<SqsSource> {
        Self::connect_in(ops, ops.canary_account().await, queue, wait_seconds).await
    }

    /// [`SqsSource::connect`] to a queue in `account`.
    pub async fn connect_in(ops: &Ops, account: CanaryAccount, queue: &str, wait_seconds: i32) -> Result<SqsSource> {
        let queue_url = account.queue_url(queue).await?;
        let dead_letters_url = match account.dead_letter_queue_url(queue).await {
            Ok(url) => url,
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "cannot look up the dead-letter queue; messages moved there will not be reported");
                None
            }
        };
        if dead_letters_url.is_none() {
            tracing::warn!(queue = %queue, "the queue has no dead-letter queue; `honeytrail aws bootstrap` adds one");
        }
        Ok(SqsSource {
            dead_letters_url,
            dead_letters_seen: 0,
            dead_letters_checked: None,
            failed_last_pass: false,
            dead_letters: None,
            account,
            queue: queue.to_string(),
            queue_url,
            wait_seconds,
            limit: ops.config.detect.max_document_mib << 20,
            messages: 0,
            objects: 0,
            failed: Vec::new(),
            subscriptions: Vec::new(),
        })
    }
}

impl Source for SqsSource {
    fn describe(&self) -> String {
        format!("sqs:{}", self.queue)
    }

    async fn pass(&mut self, sink: &mut Sink) -> Result<bool> {
        // Checked against the token table every pass, so tokens registered
        // meanwhile are matched; rebuilt only when tokens were retired.
        let mut detector = sink.detector().await?;
        let batch = self.account.receive(&self.queue_url, self.wait_seconds).await?;
        let any = !batch.is_empty();
        let mut failed_this_pass = false;
        for m in batch {
            self.messages += 1;
            match classify(&m.body) {
                Message::TestEvent => {}
                Message::Unknown(why) => {
                    // Not a shape we know, but a honey key in it still counts.
                    let origin = format!("sqs message {}", m.id);
                    let outcome = sink.scan(&mut detector, |d| d.document(m.body.as_bytes(), "sqs", &origin)).await?;
                    if !outcome.events.is_empty() || !outcome.unparsed_hits.is_empty() {
                        sink.document(&origin, &outcome).await?;
                    } else {
                        let shown: String = m.body.chars().take(300).collect();
                        tracing::warn!(
                            message = %m.id,
                            why = %why,
                            body = %shown.escape_debug(),
                            "deleting a message that is not something honeytrail reads"
                        );
                    }
                }
                Message::Document(body) => {
                    let origin = format!("sqs message {}", m.id);
                    let outcome = sink.scan(&mut detector, |d| d.document(body.as_bytes(), "sqs", &origin)).await?;
                    sink.document(&origin, &outcome).await?;
                }
                Message::SubscriptionConfirmation { topic_arn, subscribe_url } => {
                    // Reported for a person, never fetched: whoever can send
                    // to the queue can write this URL.
                    let detail = format!(
                        "SNS topic {} asks to deliver to this queue; if it is yours, confirm at {}",
                        printable(&topic_arn),
                        printable(&subscribe_url)
                    );
                    tracing::error!(queue = %self.queue, topic = %printable(&topic_arn), url = %printable(&subscribe_url), "an SNS subscription waits for confirmation");
                    sink.store()
                        .audit("honeytrail", "sqs.subscription", &format!("sqs:{}", self.queue), Some(&detail), None)
                        .await?;
                    self.subscriptions.push(detail);
                }
                Message::Objects(list) => {
                    let mut failed = false;
                    for (bucket, key) in list {
                        self.objects += 1;
                        let bytes = match self.account.get_object(&bucket, &key).await {
                            Ok(b) => b,
                            Err(e) => {
                                // This message only: kept in the queue for SQS
                                // to retry, and moved to its dead-letter
                                // queue after the redrive policy's receives.
                                tracing::error!(object = %printable(&format!("s3://{bucket}/{key}")), error = %e, "cannot read a log file; the message stays for a retry");
                                let failure = format!("s3://{bucket}/{key}: {e}");
                                if !self.failed.contains(&failure) {
                                    self.failed.push(failure);
                                }
                                failed = true;
                                failed_this_pass = true;
                                continue;
                            }
                        };
                        let origin = format!("s3://{bucket}/{key}");
                        let limit = self.limit;
                        let outcome = sink.scan(&mut detector, |d| d.read_bytes(&bytes, limit, "s3", &origin)).await?;
                        sink.document(&origin, &outcome).await?;
                    }
                    if failed {
                        continue;
                    }
                }
            }
            self.account.delete_message(&self.queue_url, &m.receipt_handle).await?;
        }
        let due = failed_this_pass || self.failed_last_pass;
        self.failed_last_pass = failed_this_pass;
        self.check_dead_letters(sink, due).await?;
        Ok(any)
    }
}

impl SqsSource {
    /// Reports messages newly moved to the dead-letter queue: log, audit
    /// (`sqs.dead_letters`) and [`SqsSource::dead_letters`] for the CLI.
    async fn check_dead_letters(&mut self, sink: &mut Sink, due: bool) -> Result<()> {
        let Some(url) = &self.dead_letters_url else { return Ok(()) };
        if !due && self.dead_letters_checked.is_some_and(|t| t.elapsed() < DEAD_LETTER_CHECK) {
            return Ok(());
        }
        self.dead_letters_checked = Some(std::time::Instant::now());
        let depth = match self.account.queue_depth(url).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(queue = %url, error = %e, "cannot read the dead-letter queue's depth");
                return Ok(());
            }
        };
        if depth > self.dead_letters_seen {
            let detail = format!(
                "{depth} message(s) in the dead-letter queue {url}: notifications whose log files could not be read after {} tries, so their events may be missing. Read them with `aws sqs receive-message --queue-url {url}`, fix the cause (permissions, KMS, a deleted object), then move them back with `aws sqs start-message-move-task --source-arn <the dead-letter queue's ARN>`",
                honeytrail_aws::bootstrap::MAX_RECEIVES
            );
            tracing::error!(queue = %self.queue, dead_letters = depth, "messages were moved to the dead-letter queue");
            sink.store()
                .audit("honeytrail", "sqs.dead_letters", &format!("sqs:{}", self.queue), Some(&detail), None)
                .await?;
            self.dead_letters = Some(detail);
        }
        self.dead_letters_seen = depth;
        Ok(())
    }
}

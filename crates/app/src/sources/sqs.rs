//! Consuming an SQS queue of S3 notifications (direct or SNS-wrapped),
//! CloudTrail notifications or EventBridge events.
//!
//! A message is deleted only after every event it carried is stored; if
//! anything fails (S3 unreachable, the database down), it stays in the queue
//! and comes back after its visibility timeout.

use anyhow::Result;
use honeytrail_aws::CanaryAccount;
use honeytrail_ingest::messages::{classify, Message};
use honeytrail_ingest::Detector;

use super::{build_index, Sink, Source};
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
}

impl SqsSource {
    /// Resolves the queue (name or URL). `wait_seconds` is the long-poll wait.
    pub async fn connect(ops: &Ops, queue: &str, wait_seconds: i32) -> Result<SqsSource> {
        let account = ops.canary_account().await;
        let queue_url = account.queue_url(queue).await?;
        Ok(SqsSource {
            account,
            queue: queue.to_string(),
            queue_url,
            wait_seconds,
            limit: ops.config.detect.max_document_mib << 20,
            messages: 0,
            objects: 0,
        })
    }
}

impl Source for SqsSource {
    fn describe(&self) -> String {
        format!("sqs:{}", self.queue)
    }

    async fn pass(&mut self, sink: &mut Sink) -> Result<bool> {
        // Rebuilt every pass so tokens registered meanwhile are matched.
        let detector = Detector::new(build_index(sink.store()).await?);
        let batch = self.account.receive(&self.queue_url, self.wait_seconds).await?;
        let any = !batch.is_empty();
        for m in batch {
            self.messages += 1;
            match classify(&m.body) {
                Message::TestEvent => {}
                Message::Unknown(why) => {
                    // Not a shape we know, but a honey key in it still counts.
                    let origin = format!("sqs message {}", m.id);
                    let outcome = detector.document(m.body.as_bytes(), "sqs", &origin);
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
                    let outcome = detector.document(body.as_bytes(), "sqs", &origin);
                    sink.document(&origin, &outcome).await?;
                }
                Message::Objects(list) => {
                    for (bucket, key) in list {
                        self.objects += 1;
                        // A failure here leaves the message in the queue: retried later.
                        let bytes = self.account.get_object(&bucket, &key).await?;
                        let origin = format!("s3://{bucket}/{key}");
                        let outcome = detector.read(&bytes[..], self.limit, "s3", &origin);
                        sink.document(&origin, &outcome).await?;
                    }
                }
            }
            self.account.delete_message(&self.queue_url, &m.receipt_handle).await?;
        }
        Ok(any)
    }
}

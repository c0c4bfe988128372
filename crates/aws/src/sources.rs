//! Reading CloudTrail data out of the canary account: SQS messages and S3
//! objects. What the bytes mean is the ingest crate's business.

use crate::{AwsError, CanaryAccount};

/// One received SQS message.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    pub id: String,
    pub receipt_handle: String,
    pub body: String,
}

impl CanaryAccount {
    /// The URL of a queue given by name or URL.
    pub async fn queue_url(&self, name_or_url: &str) -> Result<String, AwsError> {
        if name_or_url.starts_with("http://") || name_or_url.starts_with("https://") {
            return Ok(name_or_url.to_string());
        }
        let out =
            self.sqs.get_queue_url().queue_name(name_or_url).send().await.map_err(self.fail("sqs:GetQueueUrl"))?;
        Ok(out.queue_url().unwrap_or_default().to_string())
    }

    /// Long-polls a queue for up to `wait_seconds` and returns up to 10 messages.
    pub async fn receive(&self, queue_url: &str, wait_seconds: i32) -> Result<Vec<QueueMessage>, AwsError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .map_err(self.fail("sqs:ReceiveMessage"))?;
        Ok(out
            .messages()
            .iter()
            .map(|m| QueueMessage {
                id: m.message_id().unwrap_or_default().to_string(),
                receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                body: m.body().unwrap_or_default().to_string(),
            })
            .collect())
    }

    /// The URL of `queue`'s dead-letter queue (`<queue>-dead-letters`,
    /// bootstrap's name), if it exists.
    pub async fn dead_letter_queue_url(&self, queue: &str) -> Result<Option<String>, AwsError> {
        let name = match queue.rsplit_once('/') {
            Some((_, name)) if queue.starts_with("http") => name,
            _ => queue,
        };
        self.existing_queue_url(&crate::bootstrap::dead_letter_queue(name)).await
    }

    /// The URL of the queue `name`, or `None` when there is no such queue.
    pub(crate) async fn existing_queue_url(&self, name: &str) -> Result<Option<String>, AwsError> {
        match self.sqs.get_queue_url().queue_name(name).send().await {
            Ok(out) => Ok(out.queue_url().map(str::to_string)),
            Err(e) => match AwsError::from_sdk("sqs:GetQueueUrl", &self.endpoint, e) {
                e if crate::bootstrap::is_not_found(&e) => Ok(None),
                AwsError::Other { message, .. }
                    if message.contains("NonExistentQueue") || message.contains("QueueDoesNotExist") =>
                {
                    Ok(None)
                }
                other => Err(other),
            },
        }
    }

    /// How many messages a queue holds, visible or in flight.
    pub async fn queue_depth(&self, queue_url: &str) -> Result<u64, AwsError> {
        use aws_sdk_sqs::types::QueueAttributeName as N;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(N::ApproximateNumberOfMessages)
            .attribute_names(N::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(self.fail("sqs:GetQueueAttributes"))?;
        let count =
            |n: &N| out.attributes().and_then(|a| a.get(n)).and_then(|v| v.parse::<u64>().ok()).unwrap_or_default();
        Ok(count(&N::ApproximateNumberOfMessages) + count(&N::ApproximateNumberOfMessagesNotVisible))
    }

    /// Deletes a message once everything it carried is stored.
    pub async fn delete_message(&self, queue_url: &str, receipt_handle: &str) -> Result<(), AwsError> {
        self.sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(self.fail("sqs:DeleteMessage"))?;
        Ok(())
    }

    /// Every object under `prefix`, in key order: `(key, etag)`.
    pub async fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<(String, Option<String>)>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(self.fail("s3:ListObjectsV2"))?;
            for o in page.contents() {
                if let Some(key) = o.key() {
                    out.push((key.to_string(), o.e_tag().map(str::to_string)));
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Fetches an object's bytes as stored (still gzipped for log files).
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Vec<u8>, AwsError> {
        let out = self.s3.get_object().bucket(bucket).key(key).send().await.map_err(self.fail("s3:GetObject"))?;
        let body = out.body.collect().await.map_err(|e| AwsError::Other {
            op: "s3:GetObject",
            message: format!("reading s3://{bucket}/{key}: {e}"),
        })?;
        Ok(body.into_bytes().to_vec())
    }

    /// Writes an object (used by tests, and to replay logs into a bucket).
    pub async fn put_object(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), AwsError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .map_err(self.fail("s3:PutObject"))?;
        Ok(())
    }
}

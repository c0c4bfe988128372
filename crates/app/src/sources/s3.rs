//! Polling a bucket (and prefix) for new CloudTrail log files.
//!
//! Each pass lists the prefix and reads every object not read before. The
//! set of read objects is in the store, so a restart neither rereads nor
//! skips anything; an object is marked read only after its events are stored.

use anyhow::Result;
use honeytrail_aws::CanaryAccount;
use honeytrail_ingest::files::skip_by_name;

use super::{Sink, Source};
use crate::Ops;

pub struct S3Source {
    account: CanaryAccount,
    bucket: String,
    prefix: String,
    limit: u64,
    /// Objects read in the last pass.
    pub last_read: usize,
}

impl S3Source {
    pub async fn connect(ops: &Ops, bucket: &str, prefix: &str) -> S3Source {
        Self::connect_in(ops, ops.canary_account().await, bucket, prefix)
    }

    /// [`S3Source::connect`] to a bucket in `account`.
    pub fn connect_in(ops: &Ops, account: CanaryAccount, bucket: &str, prefix: &str) -> S3Source {
        S3Source {
            account,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            limit: ops.config.detect.max_document_mib << 20,
            last_read: 0,
        }
    }
}

impl Source for S3Source {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    async fn pass(&mut self, sink: &mut Sink) -> Result<bool> {
        let source = self.describe();
        let store = sink.store().clone();
        let mut detector = sink.detector().await?;
        let read = store.s3_objects_read(&source).await?;
        let listed = self.account.list_objects(&self.bucket, &self.prefix).await?;
        let new: Vec<_> = listed.into_iter().filter(|(k, _)| !read.contains(k)).collect();
        for (key, etag) in &new {
            let origin = format!("s3://{}/{key}", self.bucket);
            if skip_by_name(key).is_none() {
                let bytes = self.account.get_object(&self.bucket, key).await?;
                let limit = self.limit;
                let outcome = sink.scan(&mut detector, |d| d.read_bytes(&bytes, limit, "s3", &origin)).await?;
                sink.document(&origin, &outcome).await?;
            }
            store.mark_s3_object_read(&source, key, etag.as_deref()).await?;
        }
        self.last_read = new.len();
        Ok(!new.is_empty())
    }
}

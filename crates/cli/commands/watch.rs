//! `honeytrail watch sqs`: consume a queue of S3 notifications (direct or via
//! SNS), CloudTrail notifications or EventBridge events.
//!
//! A message is deleted only after every event it carried is stored; if
//! anything fails (S3 unreachable, the database down), it stays in the queue
//! and comes back after its visibility timeout.

use std::process::ExitCode;

use anyhow::Result;
use chrono::Duration;
use clap::{Args, Subcommand};
use honeytrail_ingest::files::{read_document, skip_by_name};
use honeytrail_ingest::messages::{classify, Message};
use honeytrail_ingest::{Detector, DocumentOutcome};

use super::ingest::{build_index, Stored};
use crate::app::App;

#[derive(Subcommand, Debug)]
pub enum WatchCommand {
    /// Consume an SQS queue (S3 notifications, SNS-wrapped or not, or EventBridge events)
    Sqs(SqsArgs),
    /// Poll a bucket (and prefix) for new log files; resumes where it stopped
    S3(S3Args),
}

#[derive(Args, Debug)]
pub struct S3Args {
    #[arg(long)]
    bucket: String,
    /// Only keys under this prefix (e.g. AWSLogs/123456789012/CloudTrail/)
    #[arg(long, default_value = "")]
    prefix: String,
    /// Stop after one pass instead of polling
    #[arg(long)]
    once: bool,
    /// Seconds between passes
    #[arg(long, default_value_t = 60)]
    interval_seconds: u64,
}

#[derive(Args, Debug)]
pub struct SqsArgs {
    /// Queue name or URL
    #[arg(long)]
    queue: String,
    /// Stop when the queue is empty instead of waiting for more
    #[arg(long)]
    once: bool,
    /// Long-poll wait per receive, in seconds (0–20)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(0..=20))]
    wait_seconds: i32,
}

/// A watcher `serve` runs for as long as it serves: `sqs:QUEUE` or
/// `s3:BUCKET[/PREFIX]`. A failure (AWS unreachable, a bad object) is logged
/// and the watcher starts again after a pause; nothing is lost, since messages
/// are deleted and objects marked read only after their events are stored.
pub async fn serve_worker(app: &App, spec: &str) {
    loop {
        let result = match parse_worker(spec) {
            Ok(WatchCommand::Sqs(args)) => sqs(app, args).await,
            Ok(WatchCommand::S3(args)) => s3(app, args).await,
            Err(e) => {
                tracing::error!(worker = spec, error = %format!("{e:#}"), "not a watcher; fix serve.watch");
                return;
            }
        };
        if let Err(e) = result {
            tracing::error!(worker = spec, error = %format!("{e:#}"), "watcher failed; starting again in 30 s");
        }
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
}

/// `sqs:QUEUE` or `s3:BUCKET[/PREFIX]` as the watch command it stands for.
pub fn parse_worker(spec: &str) -> Result<WatchCommand> {
    if let Some(queue) = spec.strip_prefix("sqs:").filter(|q| !q.is_empty()) {
        return Ok(WatchCommand::Sqs(SqsArgs { queue: queue.to_string(), once: false, wait_seconds: 20 }));
    }
    if let Some(rest) = spec.strip_prefix("s3:").filter(|r| !r.is_empty()) {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        return Ok(WatchCommand::S3(S3Args {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            once: false,
            interval_seconds: 60,
        }));
    }
    anyhow::bail!("serve.watch entry {spec:?} is neither sqs:QUEUE nor s3:BUCKET[/PREFIX]")
}

pub async fn run(app: &App, cmd: WatchCommand) -> Result<ExitCode> {
    match cmd {
        WatchCommand::Sqs(args) => sqs(app, args).await,
        WatchCommand::S3(args) => s3(app, args).await,
    }
}

/// Lists the bucket each pass and reads every object not read before. The
/// set of read objects is in the store, so a restart neither rereads nor
/// skips anything; an object is marked read only after its events are stored.
async fn s3(app: &App, args: S3Args) -> Result<ExitCode> {
    let store = app.store().await?;
    let account = app.canary_account().await;
    let source = format!("s3://{}/{}", args.bucket, args.prefix);
    let window = Duration::minutes(app.config.detect.window_minutes as i64);
    let limit = app.config.detect.max_document_mib << 20;
    let mut stored = Stored::default();
    loop {
        let detector = Detector::new(build_index(&store).await?);
        let read = store.s3_objects_read(&source).await?;
        let listed = account.list_objects(&args.bucket, &args.prefix).await?;
        let new: Vec<_> = listed.into_iter().filter(|(k, _)| !read.contains(k)).collect();
        for (key, etag) in &new {
            let origin = format!("s3://{}/{key}", args.bucket);
            if skip_by_name(key).is_some() {
                store.mark_s3_object_read(&source, key, etag.as_deref()).await?;
                continue;
            }
            let bytes = account.get_object(&args.bucket, key).await?;
            match read_document(&bytes[..], limit) {
                Ok(doc) => {
                    let o = detector.document(&doc, "s3", &origin);
                    if let Some(reason) = &o.skipped {
                        eprintln!("skipped {origin}: {reason}");
                    }
                    for hit in &o.unparsed_hits {
                        eprintln!("WARNING: a honey key appears in unparseable {origin}: {hit}");
                    }
                    stored.add(&store, &o.events, window).await?;
                }
                Err(reason) => eprintln!("skipped {origin}: {reason}"),
            }
            store.mark_s3_object_read(&source, key, etag.as_deref()).await?;
        }
        stored.emit(&store).await?;
        eprintln!("{source}: {} new object(s) read, {} match(es) so far", new.len(), stored.matches);
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(std::time::Duration::from_secs(args.interval_seconds)).await;
    }
}

async fn sqs(app: &App, args: SqsArgs) -> Result<ExitCode> {
    let store = app.store().await?;
    let account = app.canary_account().await;
    let queue = account.queue_url(&args.queue).await?;
    let window = Duration::minutes(app.config.detect.window_minutes as i64);
    let limit = app.config.detect.max_document_mib << 20;
    let mut stored = Stored::default();
    let (mut messages, mut objects) = (0usize, 0usize);
    loop {
        // Rebuilt every round so tokens registered meanwhile are matched.
        let detector = Detector::new(build_index(&store).await?);
        let batch = account.receive(&queue, if args.once { 1 } else { args.wait_seconds }).await?;
        if batch.is_empty() && args.once {
            break;
        }
        for m in batch {
            messages += 1;
            let outcomes: Vec<DocumentOutcome> = match classify(&m.body) {
                Message::TestEvent => Vec::new(),
                Message::Unknown(why) => {
                    let shown: String = m.body.chars().take(300).collect();
                    eprintln!(
                        "warning: message {} is not something honeytrail reads ({why}); deleting it. Body: {shown}",
                        m.id
                    );
                    Vec::new()
                }
                Message::Document(body) => {
                    vec![detector.document(body.as_bytes(), "sqs", &format!("sqs message {}", m.id))]
                }
                Message::Objects(list) => {
                    let mut out = Vec::new();
                    for (bucket, key) in list {
                        objects += 1;
                        // A failure here leaves the message in the queue: retried later.
                        let bytes = account.get_object(&bucket, &key).await?;
                        let origin = format!("s3://{bucket}/{key}");
                        match read_document(&bytes[..], limit) {
                            Ok(doc) => out.push(detector.document(&doc, "s3", &origin)),
                            Err(reason) => eprintln!("skipped {origin}: {reason}"),
                        }
                    }
                    out
                }
            };
            for o in &outcomes {
                if let Some(reason) = &o.skipped {
                    eprintln!("skipped a document of message {}: {reason}", m.id);
                }
                for hit in &o.unparsed_hits {
                    eprintln!("WARNING: a honey key appears in an unparseable document of message {}: {hit}", m.id);
                }
                stored.add(&store, &o.events, window).await?;
            }
            account.delete_message(&queue, &m.receipt_handle).await?;
        }
        stored.emit(&store).await?;
    }
    eprintln!(
        "queue empty: {messages} message(s), {objects} object(s), {} match(es) ({} already stored)",
        stored.matches, stored.duplicates
    );
    Ok(ExitCode::SUCCESS)
}

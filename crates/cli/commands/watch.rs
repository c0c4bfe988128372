//! `honeytrail watch sqs|s3`: consume CloudTrail as it arrives, printing each
//! incident opened or updated as a JSON line.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use honeytrail_app::sources::s3::S3Source;
use honeytrail_app::sources::sqs::SqsSource;
use honeytrail_app::sources::{Sink, Source};
use honeytrail_app::App;

use super::ingest::print_incidents;

#[derive(Subcommand, Debug)]
pub enum WatchCommand {
    /// Consume an SQS queue (S3 notifications, SNS-wrapped or not, or EventBridge events)
    Sqs(SqsArgs),
    /// Poll a bucket (and prefix) for new log files; resumes where it stopped
    S3(S3Args),
}

#[derive(Args, Debug)]
pub struct S3Args {
    /// The S3 bucket CloudTrail writes its log files to
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

pub async fn run(app: &App, cmd: WatchCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let mut sink = Sink::new(&ops);
    match cmd {
        WatchCommand::Sqs(args) => {
            let mut source =
                SqsSource::connect(&ops, &args.queue, if args.once { 1 } else { args.wait_seconds }).await?;
            loop {
                let more = source.pass(&mut sink).await?;
                print_incidents(&ops, &sink.take_touched()).await?;
                if !more && args.once {
                    break;
                }
            }
            eprintln!(
                "queue empty: {} message(s), {} object(s), {} match(es) ({} already stored)",
                source.messages, source.objects, sink.matches, sink.duplicates
            );
            for s in &source.subscriptions {
                eprintln!("action needed: {s}");
            }
            if let Some(d) = &source.dead_letters {
                eprintln!("action needed: {d}");
            }
            if !source.failed.is_empty() {
                for f in &source.failed {
                    eprintln!("error: cannot read {f}; its message stays in the queue for a retry (and goes to the dead-letter queue after repeated failures)");
                }
                return Ok(ExitCode::FAILURE);
            }
        }
        WatchCommand::S3(args) => {
            let mut source = S3Source::connect(&ops, &args.bucket, &args.prefix).await;
            loop {
                source.pass(&mut sink).await?;
                print_incidents(&ops, &sink.take_touched()).await?;
                eprintln!(
                    "{}: {} new object(s) read, {} match(es) so far",
                    source.describe(),
                    source.last_read,
                    sink.matches
                );
                if args.once {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_secs(args.interval_seconds)).await;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

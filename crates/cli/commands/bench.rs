//! `honeytrail bench`: measurements of the hot path, used by `scripts/bench`.
//! Hidden from `--help`; the script prints the comparisons.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use honeytrail_app::measure;
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Scan a corpus of CloudTrail files with N registered keys; prints JSON
    Scan(ScanArgs),
    /// Build a match index of N keys and report its resident memory; prints JSON
    Index(IndexArgs),
    /// What keeping the match index current costs a source's pass on this store; prints JSON
    IndexRefresh,
    /// N simulated hosts enrol (and confirm one bait file each) at once against a server; prints JSON
    #[command(alias = "enroll")]
    Enrol(EnrolArgs),
    /// EventBridge events at a steady rate, spread over servers; logs when each was posted; prints JSON
    Events(EventsArgs),
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// A server (repeatable), e.g. http://127.0.0.1:8080: events go to each in turn
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// A file holding the EventBridge receiver's secret
    #[arg(long)]
    secret_file: PathBuf,
    /// A file of access key IDs, one a line: each key makes an equal run of consecutive calls, as an intruder's
    /// key does, so its first call (which opens its incident) comes at an even rate through the run
    #[arg(long)]
    keys: PathBuf,
    /// Events a second
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long to send events, in seconds
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Requests in flight at most
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Where to write each accepted event's ID, when it was posted (Unix ns) and its key, one a line
    #[arg(long)]
    sent_log: PathBuf,
}

#[derive(Args, Debug)]
pub struct EnrolArgs {
    /// A server (repeatable), e.g. http://127.0.0.1:8080: hosts go to each in turn
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// A file holding an enrolment secret with at least --hosts uses
    #[arg(long)]
    secret_file: PathBuf,
    /// How many hosts enrol
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Enrolments in flight at once
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// A directory of CloudTrail log files (.json or .json.gz) to scan
    corpus: PathBuf,
    /// Registered keys (synthetic, plus --key)
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// A key that is in the corpus, to count its matches
    #[arg(long)]
    key: Vec<String>,
    /// Worker threads (1 = one core)
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Decoy resources registered too (synthetic names of every kind)
    #[arg(long, default_value_t = 0)]
    decoys: usize,
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    /// How many keys the index holds
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
}

pub fn run(app: &honeytrail_app::App, cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Scan(a) => println!("{}", measure::scan(&a.corpus, a.keys, &a.key, a.threads, a.decoys)?),
        BenchCommand::Index(a) => println!("{}", measure::index(a.keys)),
        BenchCommand::IndexRefresh => {
            let report = tokio::runtime::Handle::current()
                .block_on(async { measure::index_refresh(&app.ops().await?).await })?;
            println!("{report}");
        }
        BenchCommand::Enrol(a) => {
            let report = tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(enrol(a))?;
            println!("{report}");
        }
        BenchCommand::Events(a) => {
            let report = tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(events(a))?;
            println!("{report}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One simulated host: enrol, then confirm the one file it "wrote". Returns
/// the seconds both calls took.
async fn enrol_one(client: &reqwest::Client, server: &str, secret: &str, i: usize) -> Result<f64> {
    use honeytrail_core::fleet::{Confirm, EnrolRequest, Enrolled, HostFacts, PlacedFile};
    let request = EnrolRequest {
        secret: secret.to_string(),
        host: HostFacts {
            hostname: format!("bench-{i:05}"),
            machine_id: Some(format!("{i:032x}")),
            os: Some("Debian GNU/Linux 12 (bookworm)".into()),
            ..HostFacts::default()
        },
        ec2_identity: None,
    };
    let start = Instant::now();
    let reply = client
        .post(format!("{server}/api/v1/fleet/enroll"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&request)?)
        .send()
        .await?;
    let status = reply.status();
    if !status.is_success() {
        anyhow::bail!("enrolment {i}: {status}: {}", reply.text().await.unwrap_or_default());
    }
    let enrolled: Enrolled = serde_json::from_slice(&reply.bytes().await?)?;
    let confirm = Confirm {
        files: vec![PlacedFile {
            path: "/home/deploy/.aws/credentials".into(),
            user: Some("deploy".into()),
            digest: format!("sha256:{:064x}", i),
        }],
        refused: Vec::new(),
    };
    let reply = client
        .post(format!("{server}/api/v1/fleet/confirm"))
        .bearer_auth(&enrolled.credential)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&confirm)?)
        .send()
        .await?;
    let status = reply.status();
    if !status.is_success() {
        anyhow::bail!("confirmation {i}: {status}: {}", reply.text().await.unwrap_or_default());
    }
    Ok(start.elapsed().as_secs_f64())
}

async fn enrol(a: EnrolArgs) -> Result<serde_json::Value> {
    use std::sync::Arc;
    let secret = std::fs::read_to_string(&a.secret_file)
        .with_context(|| format!("cannot read {}", a.secret_file.display()))?
        .trim()
        .to_string();
    let client = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build()?;
    let limit = Arc::new(tokio::sync::Semaphore::new(a.concurrency.max(1)));
    let servers: Vec<String> = a.urls.iter().map(|u| u.trim_end_matches('/').to_string()).collect();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..a.hosts {
        let server = servers[i % servers.len()].clone();
        let (client, secret, limit) = (client.clone(), secret.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            enrol_one(&client, &server, &secret, i).await
        });
    }
    let mut latencies = Vec::with_capacity(a.hosts);
    let mut errors = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done? {
            Ok(seconds) => latencies.push(seconds),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    errors.truncate(5);
    Ok(json!({
        "hosts": a.hosts, "enrolled": latencies.len(), "seconds": seconds,
        "per_second": latencies.len() as f64 / seconds,
        "p50_ms": quantile(&latencies, 0.50).map(|s| s * 1000.0),
        "p99_ms": quantile(&latencies, 0.99).map(|s| s * 1000.0),
        "concurrency": a.concurrency, "first_errors": errors,
    }))
}

/// The value at quantile `q` of sorted samples.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    sorted.get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied()
}

/// Posts `rate` EventBridge events a second for `seconds`, each a CloudTrail
/// call by one of the keys, to the servers in turn, on a fixed schedule (an
/// event late because the servers were slow is sent at once, never
/// dropped). Every accepted event's ID and posting time go to the sent log.
async fn events(a: EventsArgs) -> Result<serde_json::Value> {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    let read = |p: &PathBuf| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
    let secret = read(&a.secret_file)?.trim().to_string();
    let keys: Vec<String> = read(&a.keys)?.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    anyhow::ensure!(!keys.is_empty(), "{} holds no access key IDs", a.keys.display());
    let servers: Vec<String> = a.urls.iter().map(|u| u.trim_end_matches('/').to_string()).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build()?;
    let limit = Arc::new(tokio::sync::Semaphore::new(a.concurrency.max(1)));
    let sent = Arc::new(Mutex::new(Vec::<(String, u128, String)>::new()));
    let total = a.rate * a.seconds;
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        tokio::time::sleep_until(start + std::time::Duration::from_nanos(i * 1_000_000_000 / a.rate.max(1))).await;
        let permit = limit.clone().acquire_owned().await?;
        let key = keys[(i * keys.len() as u64 / total.max(1)) as usize].clone();
        let server = servers[(i as usize) % servers.len()].clone();
        let (client, secret, sent) = (client.clone(), secret.clone(), sent.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let id = format!("bench-{i:08}");
            let now = chrono::Utc::now();
            let at = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let body = json!({
                "version": "0", "id": format!("eb-{id}"), "detail-type": "AWS API Call via CloudTrail",
                "source": "aws.sts", "account": "123456789012", "time": at, "region": "us-east-1", "resources": [],
                "detail": {
                    "eventVersion": "1.09", "eventID": id, "eventTime": at,
                    "eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity", "awsRegion": "us-east-1",
                    "sourceIPAddress": format!("203.0.113.{}", i % 250 + 1), "userAgent": "aws-cli/2.15.0",
                    "userIdentity": {"type": "IAMUser", "accessKeyId": key, "accountId": "123456789012"},
                    "eventType": "AwsApiCall", "recipientAccountId": "123456789012"
                }
            });
            let posted = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
            let t = Instant::now();
            let reply = client
                .post(format!("{server}/ingest/eventbridge"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("x-honeytrail-secret", secret)
                .body(serde_json::to_vec(&body)?)
                .send()
                .await?;
            let status = reply.status().as_u16();
            let text = reply.text().await.unwrap_or_default();
            let seconds = t.elapsed().as_secs_f64();
            if status == 202 {
                sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push((id, posted, key));
            }
            Ok::<_, anyhow::Error>((status, seconds, text))
        });
    }
    let scheduled = start.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(total as usize);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    let mut errors = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done? {
            Ok((status, seconds, text)) => {
                *statuses.entry(status).or_default() += 1;
                latencies.push(seconds);
                if status != 202 && errors.len() < 5 {
                    errors.push(format!("{status}: {}", text.chars().take(200).collect::<String>()));
                }
            }
            Err(e) if errors.len() < 5 => errors.push(format!("{e:#}")),
            Err(_) => {}
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let sent = std::mem::take(&mut *sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let mut log = std::io::BufWriter::new(std::fs::File::create(&a.sent_log)?);
    for (id, at, key) in &sent {
        writeln!(log, "{id} {at} {key}")?;
    }
    log.flush()?;
    Ok(json!({
        "events": total, "accepted": sent.len(), "statuses": statuses, "seconds": seconds,
        "scheduled_seconds": scheduled, "per_second": total as f64 / seconds,
        "post_p50_ms": quantile(&latencies, 0.50).map(|s| s * 1000.0),
        "post_p99_ms": quantile(&latencies, 0.99).map(|s| s * 1000.0),
        "servers": servers.len(), "first_errors": errors,
    }))
}

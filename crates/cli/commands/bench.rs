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
}

#[derive(Args, Debug)]
pub struct EnrolArgs {
    /// The server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    url: String,
    /// A file holding an enrolment secret with at least --hosts uses
    #[arg(long)]
    secret_file: PathBuf,
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Enrolments in flight at once
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
}

#[derive(Args, Debug)]
pub struct ScanArgs {
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
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
}

pub fn run(app: &honeytrail_app::App, cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Scan(a) => println!("{}", measure::scan(&a.corpus, a.keys, &a.key, a.threads)?),
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
    let server = a.url.trim_end_matches('/').to_string();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..a.hosts {
        let (client, server, secret, limit) = (client.clone(), server.clone(), secret.clone(), limit.clone());
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
    let at = |q: f64| latencies.get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
    errors.truncate(5);
    Ok(json!({
        "hosts": a.hosts, "enrolled": latencies.len(), "seconds": seconds,
        "per_second": latencies.len() as f64 / seconds,
        "p50_ms": at(0.50).map(|s| s * 1000.0), "p99_ms": at(0.99).map(|s| s * 1000.0),
        "concurrency": a.concurrency, "first_errors": errors,
    }))
}

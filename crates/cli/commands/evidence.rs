//! `honeytrail evidence list`, `honeytrail auditd rules` and `honeytrail
//! ingest auditd`: reads of bait files, from hosts' agents and audit logs.

use std::io::{BufRead, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use honeytrail_app::ops::evidence::AuditIngest;
use honeytrail_app::ops::{EvidenceQuery, FiledRead};
use honeytrail_app::{Actor, App, Ops};
use honeytrail_core::auditd::{AuditEvent, Parser, DEFAULT_KEY};

use super::{print_json, print_table, when};

#[derive(Subcommand, Debug)]
pub enum EvidenceCommand {
    /// Reads of bait files, newest first: who opened which file, when, how
    List {
        /// Only reads on this host
        #[arg(long)]
        host: Option<String>,
        /// Only reads of this key's bait (an access key ID; `--token` is the
        /// API token of --server)
        #[arg(long = "key", value_name = "ACCESS_KEY_ID")]
        token: Option<String>,
        /// At most this many reads, newest first
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditdCommand {
    /// Print auditctl watch rules (read access) for every placement on a host,
    /// for /etc/audit/rules.d/
    Rules {
        /// The host whose placements to watch [default: every host]
        #[arg(long)]
        host: Option<String>,
        /// The key the rules tag records with (auditctl -k)
        #[arg(long, default_value = DEFAULT_KEY)]
        key: String,
    },
}

/// `honeytrail ingest auditd FILE|-`.
#[derive(Args, Debug)]
pub struct IngestAuditdArgs {
    /// The audit log (raw or enriched format); `-` for standard input
    #[arg(required_unless_present = "follow")]
    file: Option<PathBuf>,
    /// Keep reading the log as it grows (and across rotation) until stopped,
    /// from its end, e.g. /var/log/audit/audit.log
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    follow: Option<PathBuf>,
    /// The host the log is from, when its lines have no node= field
    #[arg(long)]
    host: Option<String>,
    /// Also keep events tagged with this audit key that match no placement
    #[arg(long, default_value = DEFAULT_KEY)]
    key: String,
}

pub async fn run(app: &App, cmd: EvidenceCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    match cmd {
        EvidenceCommand::List { host, token, limit, json } => {
            let query = EvidenceQuery { host, token, limit: Some(limit), ..Default::default() };
            let reads = ops.evidence(&actor, &query).await?;
            if json {
                return print_json(&reads).map(|_| ExitCode::SUCCESS);
            }
            print_reads(&reads);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The table `evidence list` prints (also used by `token show`).
pub fn print_reads(reads: &[FiledRead]) {
    let rows: Vec<Vec<String>> = reads
        .iter()
        .map(|r| {
            let a = &r.access;
            let p = a.process.as_ref();
            vec![
                format!("#{}", r.id),
                when(a.at),
                r.host.clone(),
                a.path.clone(),
                r.access_key_id.clone().unwrap_or_else(|| "-".into()),
                a.program().unwrap_or("(no process information)").to_string(),
                p.map(|p| p.pid.to_string()).unwrap_or_default(),
                p.and_then(|p| p.user.clone().or_else(|| p.uid.map(|u| format!("uid {u}")))).unwrap_or_default(),
                p.map(|p| p.chain()).unwrap_or_default(),
                a.count.to_string(),
                a.source.as_str().into(),
                r.touch.as_str().into(),
            ]
        })
        .collect();
    print_table(
        &["ID", "AT", "HOST", "PATH", "KEY", "PROGRAM", "PID", "USER", "VIA", "OPENS", "SOURCE", "STATE"],
        &rows,
    );
}

pub async fn auditd(app: &App, cmd: AuditdCommand) -> Result<ExitCode> {
    let ops = app.ops().await?;
    match cmd {
        AuditdCommand::Rules { host, key } => {
            let rules = ops.audit_rules(&app.acting(), host.as_deref(), &key).await?;
            print!("{rules}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ingest(app: &App, args: IngestAuditdArgs) -> Result<ExitCode> {
    let ops = app.ops().await?;
    let actor = app.acting();
    let host = args.host.as_deref().map(str::trim).filter(|h| !h.is_empty());
    if let Some(path) = &args.follow {
        return follow(&ops, &actor, path, host, &args.key).await;
    }
    let file = args.file.as_deref().expect("clap requires FILE without --follow");
    let mut parser = Parser::new();
    let mut events = Vec::new();
    let reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot read the audit log {}", file.display()))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut total = AuditIngest::default();
    for line in reader.split(b'\n') {
        let line = line.with_context(|| format!("reading {}", file.display()))?;
        events.extend(parser.feed(&String::from_utf8_lossy(&line)));
        if events.len() >= 10_000 {
            add(&mut total, ops.ingest_audit(&actor, host, &std::mem::take(&mut events), &args.key).await?);
        }
    }
    events.extend(parser.flush());
    add(&mut total, ops.ingest_audit(&actor, host, &events, &args.key).await?);
    eprintln!(
        "read {} audit event(s) ({} line(s) were not audit records); {} read(s) of bait, {} filed now, {} known already",
        total.events, parser.skipped, total.matched, total.filed, total.known
    );
    Ok(ExitCode::SUCCESS)
}

fn add(total: &mut AuditIngest, part: AuditIngest) {
    total.events += part.events;
    total.filed += part.filed;
    total.known += part.known;
    total.matched += part.matched;
}

/// Follows a growing audit log from its end: new events filed every half
/// second, a rotated or truncated log read again from its start.
async fn follow(ops: &Ops, actor: &Actor, path: &Path, host: Option<&str>, key: &str) -> Result<ExitCode> {
    let open = || -> Result<(std::fs::File, u64)> {
        let f = std::fs::File::open(path).with_context(|| format!("cannot read the audit log {}", path.display()))?;
        let ino = f.metadata()?.ino();
        Ok((f, ino))
    };
    let (mut file, mut ino) = open()?;
    file.seek(SeekFrom::End(0))?;
    eprintln!("following {} (Ctrl-C to stop)", path.display());
    let mut parser = Parser::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut quiet = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        let mut events: Vec<AuditEvent> = Vec::new();
        if n > 0 {
            partial.extend_from_slice(&buf[..n]);
            while let Some(nl) = partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = partial.drain(..=nl).collect();
                events.extend(parser.feed(&String::from_utf8_lossy(&line)));
            }
            quiet = Instant::now();
        } else {
            if quiet.elapsed() > Duration::from_secs(1) {
                events.extend(parser.flush());
            }
            let moved =
                std::fs::metadata(path).map(|m| m.ino() != ino || m.len() < file.stream_position().unwrap_or(0));
            if moved.unwrap_or(false) {
                (file, ino) = open()?;
                partial.clear();
            }
        }
        if !events.is_empty() {
            match ops.ingest_audit(actor, host, &events, key).await {
                Ok(r) if r.filed > 0 => eprintln!("{} read(s) of bait filed", r.filed),
                Ok(_) => {}
                Err(e) => eprintln!("error: {}", e.message),
            }
        }
        if n == 0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            }
        }
    }
}

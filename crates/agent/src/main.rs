//! The fleet agent: enrols this host with the server, writes its bait,
//! reports whether the bait is still there, and rotates or removes it when
//! asked. It holds no database and no AWS credentials of its own: only its
//! agent credential and what it placed, in its state directory.
//!
//! Nothing it writes on the host names the product: its installed name,
//! unit and state directory are chosen at `install` (`--service-name`),
//! with a neutral default.
// Doc comments here are `--help` text, where <…> around a URL would show.
#![allow(rustdoc::bare_urls)]

mod check;
mod client;
mod host;
mod imds;
mod install;
mod place;
#[cfg(target_os = "linux")]
mod queue;
mod state;
#[cfg(target_os = "linux")]
mod watch;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use honeytrail_core::fleet::{
    Abort, CommandDone, CommandKind, Confirm, DeliveredKey, EnrolRequest, Enrolled, FileReport, Heartbeat,
    HeartbeatReply, Preflight, RefusedPath,
};

use client::Client;
use place::{Kept, Placer, Undo};
use state::{Dir, State};

/// The service name installs get unless told otherwise: a plausible
/// inventory daemon, nothing that says what it is.
pub const DEFAULT_NAME: &str = honeytrail_core::snippet::DEFAULT_SERVICE_NAME;

fn default_state_dir() -> PathBuf {
    PathBuf::from(format!("/var/lib/{DEFAULT_NAME}"))
}

#[derive(Parser)]
#[command(version, about = "Enrols this host and keeps its bait in place.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ask the server for this host's own key and write the bait.
    #[command(alias = "enroll")]
    Enrol {
        /// The server, e.g. https://honeytrail.example.com
        #[arg(long)]
        server: String,
        /// A file holding the enrolment secret; without it, standard input.
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// PEM certificates of the CA that signed the server's certificate.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        #[arg(long, default_value_os_t = default_state_dir())]
        state_dir: PathBuf,
        /// Place under another root (an image being built, a mounted disk):
        /// users and homes come from its /etc/passwd.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Enrol, write the bait, confirm, and exit (cloud-init, image builds).
        #[arg(long)]
        once: bool,
        /// Prove this host is an EC2 instance with its signed identity
        /// document (from the metadata service), for secrets bound to EC2.
        #[arg(long)]
        ec2_identity: bool,
        /// The metadata service to ask with --ec2-identity.
        #[arg(long, default_value = imds::DEFAULT_URL, requires = "ec2_identity")]
        imds_url: String,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// Send heartbeats, report reads of the bait, carry out the server's commands.
    Run {
        #[arg(long, default_value_os_t = default_state_dir())]
        state_dir: PathBuf,
        /// One heartbeat (and its commands, and queued reads), then exit.
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        watch: WatchArgs,
    },
    /// List what on this host could give the bait away.
    Check {
        #[arg(long, default_value_os_t = default_state_dir())]
        state_dir: PathBuf,
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Install this binary and its systemd unit under a name of your choice.
    Install {
        #[arg(long, default_value = DEFAULT_NAME)]
        service_name: String,
        #[arg(long, default_value = "/usr/local/sbin")]
        bin_dir: PathBuf,
        #[arg(long, default_value = "/etc/systemd/system")]
        unit_dir: PathBuf,
    },
}

/// How the agent watches its bait for reads.
#[derive(clap::Args, Clone, Debug)]
struct WatchArgs {
    /// What reports reads of the bait: auto (fanotify, else inotify without
    /// process details), fanotify, inotify, auditd (read --audit-log), off.
    #[arg(long, default_value = "auto")]
    source: String,
    /// The audit log --source auditd reads.
    #[arg(long, default_value = "/var/log/audit/audit.log")]
    audit_log: PathBuf,
}

fn say(line: &str) {
    eprintln!("{line}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            say(&format!("error: cannot start: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Enrol { server, secret_file, ca_file, state_dir, root, once, ec2_identity, imds_url, watch } => {
                check_watch(&watch)?;
                let secret = read_secret(secret_file.as_deref())?;
                let dir = Dir::open(&state_dir);
                let imds = ec2_identity.then_some(imds_url.as_str());
                enrol(&server, &secret, ca_file, &state_dir, &root, imds).await?;
                if once {
                    return Ok(ExitCode::SUCCESS);
                }
                run(&dir, false, &watch).await
            }
            Command::Run { state_dir, once, watch } => {
                check_watch(&watch)?;
                run(&Dir::open(&state_dir), once, &watch).await
            }
            Command::Check { state_dir, root } => check::run(&Dir::open(&state_dir), &root),
            Command::Install { service_name, bin_dir, unit_dir } => {
                install::install(&service_name, &bin_dir, &unit_dir).map(|()| ExitCode::SUCCESS)
            }
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            say(&format!("error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn read_secret(file: Option<&Path>) -> Result<String> {
    let mut text = String::new();
    match file {
        Some(f) => {
            std::fs::File::open(f)
                .and_then(|mut h| h.by_ref().take(4096).read_to_string(&mut text))
                .with_context(|| format!("cannot read --secret-file {}", f.display()))?;
        }
        None => {
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut text)
                .context("cannot read the secret from standard input")?;
        }
    }
    let secret = text.trim().to_string();
    if secret.is_empty() {
        bail!("the enrolment secret is empty: give it with --secret-file or on standard input");
    }
    Ok(secret)
}

/// Enrols: preflight, ask for the key, write every file that can be written
/// safely, confirm (naming the paths refused and what was found there). On
/// any other failure every file written is put back, the server is told (so
/// the key is retired), and the state directory is left as it was. A host
/// where no path can be written safely is refused before the secret is used
/// or a key minted.
async fn enrol(
    server: &str,
    secret: &str,
    ca_file: Option<PathBuf>,
    state_dir: &Path,
    root: &Path,
    imds: Option<&str>,
) -> Result<()> {
    // Preflight, before a use of the secret is spent.
    let root = root.canonicalize().with_context(|| format!("--root {} does not exist", root.display()))?;
    if Dir::open(state_dir).enrolled() {
        bail!(
            "this host is already enrolled (state in {}); to enrol it again, remove that directory first",
            state_dir.display()
        );
    }
    host::users(&root)?;
    let client = Client::new(server, ca_file.as_deref())?;
    let ec2_identity = match imds {
        Some(url) => Some(imds::identity(url).await.context("enrolment failed; nothing was written on this host")?),
        None => None,
    };
    let request = EnrolRequest { secret: secret.to_string(), host: host::facts(&root), ec2_identity };
    let preflight: Preflight = client
        .post("/fleet/preflight", &request)
        .await
        .context("enrolment failed; nothing was written on this host")?;
    let placer = Placer::new(&root, state_dir, &preflight.template, "")?;
    let targets = place::targets(&root, &preflight.template)?;
    let refused: Vec<RefusedPath> = targets
        .iter()
        .filter_map(|t| placer.check(t).err().map(|found| RefusedPath { path: t.path.clone(), found }))
        .collect();
    if refused.len() == targets.len() {
        let each: Vec<String> = refused.iter().map(|r| format!("{}: {}", r.path, r.found)).collect();
        bail!(
            "no path template {} names can be written safely on this host, so no key was asked for and no use of the \
             enrolment secret spent: {}",
            preflight.template.name,
            each.join("; ")
        );
    }
    let dir = Dir::prepare(state_dir)?;
    let enrolled: Enrolled = match client.post("/fleet/enroll", &request).await {
        Ok(e) => e,
        Err(e) => {
            dir.clean();
            return Err(e.context("enrolment failed; nothing was written on this host"));
        }
    };
    let agent = client.with_credential(&enrolled.credential);
    match place_all(&dir, &root, &enrolled, ca_file, &agent).await {
        Ok((files, refused)) => {
            say(&format!(
                "enrolled as agent #{} with {}; bait in {} file(s):",
                enrolled.agent_id,
                agent.base(),
                files.len()
            ));
            for f in &files {
                say(&format!("  {}", f.path));
            }
            for r in &refused {
                say(&format!("  not written, reported to the server: {}: {}", r.path, r.found));
            }
            Ok(())
        }
        Err(e) => {
            let reason = format!("{e:#}");
            if let Err(told) =
                agent.post::<_, serde_json::Value>("/fleet/abort", &Abort { reason: reason.clone() }).await
            {
                say(&format!(
                    "warning: could not tell the server the enrolment failed ({told:#}); it retires the key by itself when no confirmation comes"
                ));
            }
            dir.clean();
            Err(e.context("enrolment failed; this host was left as it was"))
        }
    }
}

async fn place_all(
    dir: &Dir,
    root: &Path,
    enrolled: &Enrolled,
    ca_file: Option<PathBuf>,
    agent: &Client,
) -> Result<(Vec<Kept>, Vec<RefusedPath>)> {
    dir.save_credential(&enrolled.credential)?;
    let placer = Placer::new(root, &dir.path, &enrolled.template, &enrolled.key.profile)?;
    let targets = place::targets(root, &enrolled.template)?;
    let mut kept = Vec::new();
    let mut undo: Vec<Undo> = Vec::new();
    let mut refused = Vec::new();
    for t in &targets {
        // A path that is unsafe (or became so since the preflight) is
        // skipped and reported; the others are written.
        if let Err(found) = placer.check(t) {
            refused.push(RefusedPath { path: t.path.clone(), found });
            continue;
        }
        match placer.write(t, &enrolled.key) {
            Ok((k, u)) => {
                kept.push(k);
                undo.push(u);
            }
            Err(e) => refused.push(RefusedPath { path: t.path.clone(), found: format!("{e:#}") }),
        }
    }
    let mut outcome = if kept.is_empty() {
        let each: Vec<String> = refused.iter().map(|r| format!("{}: {}", r.path, r.found)).collect();
        Err(anyhow!("no bait file could be written: {}", each.join("; ")))
    } else {
        Ok(())
    };
    if outcome.is_ok() {
        let state = State {
            server: agent.base().to_string(),
            ca_file,
            root: root.to_path_buf(),
            agent_id: enrolled.agent_id,
            template: enrolled.template.clone(),
            profile: enrolled.key.profile.clone(),
            heartbeat_seconds: enrolled.heartbeat_seconds,
            files: kept.clone(),
        };
        outcome = dir.save(&state);
    }
    if outcome.is_ok() {
        let confirm = Confirm { files: kept.iter().map(Kept::placed).collect(), refused: refused.clone() };
        outcome = agent.post::<_, serde_json::Value>("/fleet/confirm", &confirm).await.map(|_| ());
    }
    if let Err(e) = outcome {
        put_back(&placer, &undo);
        return Err(e);
    }
    Ok((kept, refused))
}

/// Undoes writes, newest first; says what could not be undone.
fn put_back(placer: &Placer<'_>, undo: &[Undo]) {
    for u in undo.iter().rev() {
        if let Err(e) = placer.undo(u) {
            say(&format!("error: could not put a file back as it was: {e:#}"));
        }
    }
}

fn check_watch(w: &WatchArgs) -> Result<()> {
    match w.source.as_str() {
        "auto" | "fanotify" | "inotify" | "auditd" | "off" => Ok(()),
        other => bail!("--source {other:?}: use auto, fanotify, inotify, auditd or off"),
    }
}

/// The file watch of a running agent, and its evidence queue.
struct Evidence {
    /// What the heartbeat says of the watch.
    watch: String,
    #[cfg(target_os = "linux")]
    shared: std::sync::Arc<watch::Shared>,
}

impl Evidence {
    /// Starts watching the bait files (not for a one-shot run, which only
    /// delivers what is queued).
    #[cfg(target_os = "linux")]
    fn start(dir: &Dir, state: &State, args: &WatchArgs, once: bool) -> Evidence {
        let shared = std::sync::Arc::new(watch::Shared::new(queue::Queue::new(&dir.path)));
        if once {
            return Evidence { watch: "off: one-shot run".into(), shared };
        }
        let users = host::users(&state.root).unwrap_or_default();
        let files = state
            .files
            .iter()
            .map(|k| watch::Watched {
                host_path: k.path.clone(),
                real: host::under(&state.root, &k.path),
                owner: if k.created {
                    None
                } else {
                    k.user.as_ref().and_then(|n| users.iter().find(|u| &u.name == n)).map(|u| u.uid)
                },
            })
            .collect();
        let watch = match watch::Source::parse(&args.source, &args.audit_log)
            .and_then(|source| watch::start(source, files, state.root.clone(), shared.clone()))
        {
            Ok(kind) => {
                say(&format!("watching the bait for reads ({})", kind.as_str()));
                kind.as_str().to_string()
            }
            Err(e) => {
                say(&format!("warning: the bait is not watched for reads: {e:#}"));
                format!("off: {e:#}")
            }
        };
        Evidence { watch, shared }
    }

    #[cfg(not(target_os = "linux"))]
    fn start(_dir: &Dir, _state: &State, _args: &WatchArgs, _once: bool) -> Evidence {
        Evidence { watch: "off: file watching is Linux only".into() }
    }

    /// Runs the agent's own work on the bait files.
    fn own<T>(&self, f: impl FnOnce() -> T) -> T {
        #[cfg(target_os = "linux")]
        return self.shared.own(f);
        #[cfg(not(target_os = "linux"))]
        f()
    }

    /// Delivers queued reads, oldest first; `Ok(false)` when the server
    /// could not take them (they stay queued).
    async fn deliver(&self, client: &Client) -> bool {
        #[cfg(target_os = "linux")]
        loop {
            let batch = match self.shared.queue.peek(honeytrail_core::fleet::MAX_EVIDENCE_BATCH) {
                Ok(b) => b,
                Err(e) => {
                    say(&format!("error: reading the evidence queue: {e:#}"));
                    return false;
                }
            };
            if batch.lines.is_empty() && batch.dropped == 0 {
                return true;
            }
            let body = honeytrail_core::fleet::EvidenceBatch { records: batch.records.clone(), dropped: batch.dropped };
            match client.post::<_, honeytrail_core::fleet::EvidenceReply>("/fleet/evidence", &body).await {
                Ok(_) => {
                    if let Err(e) = self.shared.queue.ack(&batch) {
                        say(&format!("error: updating the evidence queue: {e:#}"));
                        return false;
                    }
                }
                Err(e) => {
                    say(&format!(
                        "error: delivering {} read(s) of the bait (kept, sent later): {e:#}",
                        batch.records.len()
                    ));
                    return false;
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = client;
            true
        }
    }

    async fn queued(&self) {
        #[cfg(target_os = "linux")]
        self.shared.queued.notified().await;
        #[cfg(not(target_os = "linux"))]
        std::future::pending::<()>().await;
    }
}

/// Heartbeats until stopped: the presence of every bait file, then the
/// commands the server answers with; reads of the bait are delivered as
/// they happen (and kept on disk while the server cannot be reached).
async fn run(dir: &Dir, once: bool, args: &WatchArgs) -> Result<ExitCode> {
    let evidence = Evidence::start(dir, &dir.load()?, args, once);
    let mut next_heartbeat = tokio::time::Instant::now();
    let mut undelivered = false;
    loop {
        let state = dir.load()?;
        let client = Client::new(&state.server, state.ca_file.as_deref())?.with_credential(&dir.credential()?);
        if tokio::time::Instant::now() >= next_heartbeat {
            let placer = Placer::new(&state.root, &dir.path, &state.template, &state.profile)?;
            let files = evidence.own(|| {
                state
                    .files
                    .iter()
                    .map(|k| {
                        let (presence, seen) = placer.presence(k);
                        FileReport { path: k.path.clone(), presence, seen }
                    })
                    .collect()
            });
            let mut wait = state.heartbeat_seconds.max(1);
            let beat = Heartbeat { files, watch: Some(evidence.watch.clone()) };
            match client.post::<_, HeartbeatReply>("/fleet/heartbeat", &beat).await {
                Ok(reply) => {
                    wait = reply.heartbeat_seconds.max(1);
                    for command in reply.commands {
                        let gone = evidence.own(|| carry_out(dir, &placer, state.clone(), &command));
                        report(&client, &command, gone.1).await;
                        if gone.0? {
                            evidence.deliver(&client).await;
                            say("the bait was removed from this host and the server released it; stopping");
                            dir.clean();
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                }
                Err(e) => {
                    say(&format!("error: heartbeat: {e:#}"));
                    if once {
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            next_heartbeat = tokio::time::Instant::now() + Duration::from_secs(wait);
            undelivered = true;
        }
        if undelivered {
            undelivered = !evidence.deliver(&client).await;
        }
        if once {
            return Ok(ExitCode::SUCCESS);
        }
        // Undelivered reads are tried again within seconds, not a heartbeat later.
        let retry = tokio::time::Instant::now() + Duration::from_secs(5);
        let until = if undelivered { next_heartbeat.min(retry) } else { next_heartbeat };
        tokio::select! {
            () = tokio::time::sleep_until(until) => { undelivered = true; }
            () = evidence.queued() => { undelivered = true; }
        }
    }
}

/// Carries out one command (the file work, nothing sent). `.0` is
/// `Ok(true)` when the bait is gone and the agent's work on this host is
/// over; `.1` is what to report, `None` when the state could not be saved
/// (the server asks again, and doing it twice is harmless).
fn carry_out(
    dir: &Dir,
    placer: &Placer<'_>,
    mut state: State,
    command: &honeytrail_core::fleet::Command,
) -> (Result<bool>, Option<CommandDone>) {
    let (result, removed): (Result<Vec<Kept>>, Vec<String>) = match command.kind {
        // A refresh writes fresh session credentials of the same canary
        // exactly as a rotation writes a new key.
        CommandKind::Rotate | CommandKind::Refresh => match &command.key {
            Some(key) => (rotate(placer, &state.files, key), Vec::new()),
            None => (Err(anyhow!("the server sent a {} without credentials", command.kind.as_str())), Vec::new()),
        },
        CommandKind::Remove => {
            let (left, removed, failed) = remove(placer, &state.files);
            let result = if failed.is_empty() { Ok(Vec::new()) } else { Err(anyhow!("{}", failed.join("; "))) };
            if !failed.is_empty() && !removed.is_empty() {
                // Some files are done: the state follows what the host
                // really holds, so no heartbeat reports them missing.
                state.files = left;
                if let Err(e) = dir.save(&state) {
                    return (Err(e), None);
                }
            }
            (result, removed)
        }
    };
    let done = match &result {
        Ok(files) => {
            CommandDone { ok: true, files: files.iter().map(Kept::placed).collect(), removed: Vec::new(), error: None }
        }
        Err(e) => CommandDone {
            ok: false,
            files: state.files.iter().map(Kept::placed).collect(),
            removed,
            error: Some(format!("{e:#}")),
        },
    };
    if let Ok(files) = &result {
        state.files = files.clone();
        if command.kind != CommandKind::Remove {
            if let Err(e) = dir.save(&state) {
                return (Err(e), None);
            }
        }
    }
    let outcome = match result {
        Ok(_) => {
            say(&format!("command #{} ({}) done", command.id, command.kind.as_str()));
            Ok(command.kind == CommandKind::Remove)
        }
        Err(e) => {
            say(&format!("error: command #{} ({}) failed: {e:#}", command.id, command.kind.as_str()));
            Ok(false)
        }
    };
    (outcome, Some(done))
}

/// Tells the server how a command went.
async fn report(client: &Client, command: &honeytrail_core::fleet::Command, done: Option<CommandDone>) {
    let Some(done) = done else { return };
    let path = format!("/fleet/commands/{}", command.id);
    if let Err(e) = client.post::<_, serde_json::Value>(&path, &done).await {
        // The server asks again next time; carrying a command out twice is harmless.
        say(&format!("error: reporting command #{}: {e:#}", command.id));
    }
}

/// Writes the new key into every file, or into none.
fn rotate(placer: &Placer<'_>, files: &[Kept], key: &DeliveredKey) -> Result<Vec<Kept>> {
    let mut done = Vec::new();
    let mut undo = Vec::new();
    for k in files {
        match placer.rotate(k, key) {
            Ok((new, u)) => {
                done.push(new);
                undo.push(u);
            }
            Err(e) => {
                put_back(placer, &undo);
                return Err(e);
            }
        }
    }
    Ok(done)
}

/// Takes the bait out of every file it can, each file all or nothing:
/// the files still holding it, the paths done, and what failed.
fn remove(placer: &Placer<'_>, files: &[Kept]) -> (Vec<Kept>, Vec<String>, Vec<String>) {
    let mut left = Vec::new();
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for k in files {
        match placer.remove(k) {
            Ok(()) => removed.push(k.path.clone()),
            Err(e) => {
                failed.push(format!("{e:#}"));
                left.push(k.clone());
            }
        }
    }
    (left, removed, failed)
}

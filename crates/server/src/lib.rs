//! `honeytrail serve`: the one long-running process. It serves the web UI
//! (`ui`), the REST API under `/api/v1` (`api`, described by `openapi.json`),
//! the event receivers and "was this you?" answers (`receivers`), health and
//! metrics, and runs the alert dispatcher in the background.
//!
//! Sign-in (`auth`): browser sessions in an HttpOnly SameSite=Strict cookie
//! with a CSRF token for every change, or API tokens as bearer credentials.
//! Every change is written to the audit log with who, what and from where.

// Handlers answer early with a whole `Response` as the error of a check
// (sign-in, CSRF); boxing it would only move the allocation.
#![allow(clippy::result_large_err)]

mod api;
pub mod auth;
mod receivers;
mod tls;
mod ui;
mod web;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use anyhow::{Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use honeytrail_app::sources::receivers::Receivers;
use honeytrail_app::{App, Ops};

pub use receivers::SECRET_HEADER;

#[derive(Default)]
struct Counters {
    eventbridge_accepted: AtomicU64,
    eventbridge_rejected: AtomicU64,
    canarytokens_accepted: AtomicU64,
    canarytokens_rejected: AtomicU64,
    malformed: AtomicU64,
    matches: AtomicU64,
    logins_failed: AtomicU64,
    logins_throttled: AtomicU64,
}

/// What every handler shares.
pub struct Shared {
    /// The operations every request goes through.
    ops: Ops,
    receivers: Receivers,
    eventbridge_secret: Option<String>,
    canarytokens_secret: Option<String>,
    counters: Counters,
    refusals: std::sync::Mutex<receivers::RefusalLimiter>,
    /// Cookies carry `Secure` when people reach us over https.
    secure_cookies: bool,
    /// Keys the CSRF tokens of people signed in by the SSO header.
    sso_key: String,
}

impl Shared {
    fn config(&self) -> &honeytrail_app::config::Config {
        &self.ops.config
    }
}

/// An HTML page with the headers every page gets: no caching, no framing,
/// no scripts, forms only to us.
pub(crate) fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (axum::http::header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

pub(crate) fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let error = !status.is_success();
    page(status, crate::web::render("message.html", minijinja::context! {title, message, error}))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(receivers::readyz))
        .route("/metrics", get(receivers::metrics_guarded))
        .route("/ingest/eventbridge", post(receivers::eventbridge))
        .route("/ingest/canarytokens/{secret}", post(receivers::canarytokens))
        .route("/ingest/slack/actions", post(receivers::slack_actions))
        .route("/answer/{token}", get(receivers::answer_page).post(receivers::answer_submit))
        .route("/deploy/install.sh", get(api::install_script))
        .route("/ci/honeytrail-ci.sh", get(api::ci::ci_script))
        .route("/ci/gitlab.yml", get(api::ci::gitlab_template))
        .route("/deploy/agent", get(api::agent_binary))
        .merge(auth::routes())
        .merge(ui::routes())
        .nest("/api/v1", api::routes())
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(shared)
}

/// Serves until SIGTERM or Ctrl-C: the web UI, the API, the receivers, the
/// `serve.watch` sources and the dispatcher.
pub async fn run(mut app: App) -> Result<ExitCode> {
    app.config.serve.check()?;
    honeytrail_app::enrichment::check(&app.config.enrich)?;
    app.config.actions.check()?;
    app.config.fleet.check()?;
    let addr: SocketAddr =
        app.config.serve.listen.parse().with_context(|| {
            format!("serve.listen {:?} is not an address like 127.0.0.1:8080", app.config.serve.listen)
        })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (in use? change serve.listen)"))?;
    let local = listener.local_addr()?;
    // Listening on port 0 (the system picks): links in alerts, the
    // installer and the UI name the port actually bound.
    if app.config.serve.public_url.is_none() {
        app.config.serve.listen = local.to_string();
    }
    let serve = app.config.serve.clone();
    let ops = app.ops().await?;
    let public_url = serve.public_url();
    let shared = Arc::new(Shared {
        receivers: Receivers::new(&ops).await?,
        eventbridge_secret: serve.eventbridge_secret.clone().filter(|s| !s.is_empty()),
        canarytokens_secret: serve.canarytokens_secret.clone().filter(|s| !s.is_empty()),
        counters: Counters::default(),
        refusals: std::sync::Mutex::new(receivers::RefusalLimiter::default()),
        secure_cookies: public_url.starts_with("https://"),
        sso_key: honeytrail_core::new_bearer("").expose().to_string(),
        ops,
    });
    let tls = match (&serve.tls_cert, &serve.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    // Only now that the address is ours: a start that cannot bind creates
    // no admin whose one-time password nobody saw. Of replicas starting
    // together, one makes it.
    let admin_password = shared.ops.first_admin().await.map_err(|e| anyhow::anyhow!(e.for_cli()))?;
    let membership = shared.ops.join_cluster(&local.to_string()).await.map_err(|e| anyhow::anyhow!(e.for_cli()))?;
    let metrics_listener = match serve.metrics_listen.as_deref().filter(|l| !l.is_empty()) {
        Some(spec) => {
            let addr: SocketAddr = spec
                .parse()
                .with_context(|| format!("serve.metrics_listen {spec:?} is not an address like 127.0.0.1:9090"))?;
            Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} for metrics (in use? change serve.metrics_listen)")
            })?)
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!("honeytrail is serving on {scheme}://{local}");
    eprintln!("  web UI: {public_url}/  (API: {public_url}/api/v1, described at /api/v1/openapi.json)");
    match &admin_password {
        Some(p) => eprintln!(
            "  first start: created user \"admin\" with the one-time password {p}\n  \
             log in with it and choose a new password (it is shown only this once; `honeytrail user reset-password admin` makes a new one)"
        ),
        None => eprintln!("  log in with your honeytrail user; `honeytrail user add NAME --role ROLE` adds one"),
    }
    eprintln!(
        "  replica {} (version {}); jobs run under {} s leases (`honeytrail cluster status`)",
        membership.id,
        env!("CARGO_PKG_VERSION"),
        membership.lease.num_seconds()
    );
    let off =
        |set: bool, var: &str| if set { String::new() } else { format!(" (no secret set: refusing all; set {var})") };
    eprintln!(
        "  EventBridge API destination: POST {public_url}/ingest/eventbridge with header {SECRET_HEADER}{}",
        off(shared.eventbridge_secret.is_some(), "HONEYTRAIL_EVENTBRIDGE_SECRET")
    );
    eprintln!(
        "  canarytokens.org webhook:    POST {public_url}/ingest/canarytokens/<secret>{}",
        off(shared.canarytokens_secret.is_some(), "HONEYTRAIL_CANARYTOKENS_SECRET")
    );
    if serve.slack_signing_secret.as_deref().is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "  Slack approve buttons:       POST {public_url}/ingest/slack/actions ({} approver(s) in actions.slack_approvers)",
            app.config.actions.slack_approvers.len()
        );
    }
    let metrics_at = match (&metrics_listener, &serve.metrics_token) {
        (Some(l), _) => format!("http://{}/metrics", l.local_addr()?),
        (None, Some(_)) => "/metrics with the metrics token".to_string(),
        (None, None) => "off (set serve.metrics_token or serve.metrics_listen)".to_string(),
    };
    eprintln!(
        "  fleet: hosts enrol at POST {public_url}/api/v1/fleet/enroll (`honeytrail enrol create`); key pool {} (fleet.pool_size)",
        app.config.fleet.pool_size
    );
    eprintln!("  health: /healthz /readyz   metrics: {metrics_at}; delivering alerts to the configured channels");
    if let Some(listener) = metrics_listener {
        let only_metrics = Router::new().route("/metrics", get(receivers::metrics)).with_state(shared.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, only_metrics).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    for spec in &serve.watch {
        honeytrail_app::sources::parse_watch(spec)?;
        eprintln!("  reading CloudTrail from {spec}");
        // Each watcher runs on its own thread and runtime, with its own
        // connections: a slow bucket never holds up the web UI. It shares
        // the server's match index and signals.
        let config = app.config.clone();
        let spec = spec.clone();
        let server_ops = shared.ops.clone();
        std::thread::Builder::new().name(format!("watch {spec}")).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(async {
                    let app = App::new(config, Some("honeytrail serve".into()));
                    match app.ops().await {
                        Ok(ops) => honeytrail_app::sources::run_worker(&server_ops.sharing_with(ops), &spec).await,
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "a watcher cannot open the store"),
                    }
                }),
                Err(e) => tracing::error!(error = %e, "cannot start a watcher"),
            }
        })?;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dispatcher = {
        let ops = shared.ops.clone();
        tokio::spawn(async move { ops.run_dispatcher(Some(stopped)).await })
    };
    tokio::spawn(heartbeat_loop(shared.ops.clone(), stop.subscribe()));
    tokio::spawn(fleet_loop(shared.ops.clone(), stop.subscribe()));
    tokio::spawn(response_loop(shared.ops.clone(), stop.subscribe()));
    tokio::spawn(safety_net_loop(shared.ops.clone(), stop.subscribe()));
    let limits = Limits {
        connections: serve.max_connections.max(1),
        header_read: StdDuration::from_secs(serve.header_timeout_seconds.max(1)),
        request: StdDuration::from_secs(serve.request_timeout_seconds.max(1)),
    };
    serve_connections(listener, router(shared.clone()), limits, tls, shutdown_signal()).await;
    // In-flight requests are done; let the dispatcher finish its pass.
    if stop.send(true).is_err() {
        tracing::warn!("the dispatcher had already stopped");
    }
    let stopped = match tokio::time::timeout(StdDuration::from_secs(30), dispatcher).await {
        Ok(_) => "honeytrail stopped",
        Err(_) => "honeytrail stopped; the dispatcher was still sending, its deliveries will be retried",
    };
    // The jobs this replica held go to the others at once.
    if let Err(e) = shared.ops.leave_cluster().await {
        tracing::warn!(error = %e.message, "cannot give up this replica's leases; they run out by themselves");
    }
    eprintln!("{stopped}");
    Ok(ExitCode::SUCCESS)
}

/// How often a replica beats: a third of a lease, so a lease it holds never
/// runs out while it lives.
fn beat(ops: &honeytrail_app::Ops) -> StdDuration {
    let lease = ops.membership().map_or(30, |m| m.lease.num_seconds().max(3));
    StdDuration::from_millis(u64::try_from(lease * 1000 / 3).unwrap_or(10_000))
}

/// The replica's heartbeat, renewing the leases it holds.
async fn heartbeat_loop(ops: honeytrail_app::Ops, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if let Err(e) = ops.cluster_heartbeat().await {
            tracing::warn!(error = %e.message, "the replica's heartbeat failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(beat(&ops)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The fleet's upkeep while serving: the key pool refilled (paced by
/// `fleet.mint_interval_ms`), silent hosts and unconfirmed enrolments
/// found, reads of bait with no key use after them raised. One replica runs
/// it at a time (the job `fleet`); the others ask for it every beat. Every
/// failure is logged and retried on the next pass.
async fn fleet_loop(ops: honeytrail_app::Ops, mut stop: tokio::sync::watch::Receiver<bool>) {
    let f = ops.config.fleet.clone();
    let window = ops.config.evidence.window().map(|w| w.num_seconds().max(1) as u64).unwrap_or(3600);
    let every = StdDuration::from_secs((f.stale_after_seconds / 4).min(window / 4).clamp(1, 60));
    let mut warned: Option<std::time::Instant> = None;
    let mut last_run: Option<std::time::Instant> = None;
    loop {
        let due = last_run.is_none_or(|t| t.elapsed() >= every);
        let held = due
            && ops.hold("fleet").await.unwrap_or_else(|e| {
                tracing::warn!(error = %e.message, "cannot ask for the fleet job's lease");
                false
            });
        if !held {
            // Not due, or another replica's: ask again within a beat (and,
            // once it is ours, run at once).
            if due {
                last_run = None;
            }
            tokio::select! {
                _ = tokio::time::sleep(beat(&ops).min(every)) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        last_run = Some(std::time::Instant::now());
        let mut failures: Vec<String> = Vec::new();
        match ops.pool_state().await {
            Ok(state) => {
                if let Some(w) = &state.warning {
                    if warned.is_none_or(|t| t.elapsed() > StdDuration::from_secs(3600)) {
                        tracing::warn!("{w}");
                        warned = Some(std::time::Instant::now());
                    }
                }
                if state.size < i64::from(state.target) {
                    match ops.fill_pool(50).await {
                        Ok(n) => tracing::info!(minted = n, "refilled the fleet's key pool"),
                        Err(e) => {
                            tracing::warn!(error = %e.message, "cannot refill the fleet's key pool; retrying");
                            failures.push(format!("key pool: {}", e.message));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "cannot read the fleet's key pool");
                failures.push(format!("key pool: {}", e.message));
            }
        }
        match ops.fleet_sweep().await {
            Ok(s) if s.stale + s.unconfirmed > 0 => {
                tracing::warn!(
                    stale = s.stale,
                    unconfirmed = s.unconfirmed,
                    "fleet sweep: hosts silent or never confirmed"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.message, "the fleet sweep failed; retrying");
                failures.push(format!("fleet sweep: {}", e.message));
            }
        }
        match ops.ci_sweep().await {
            Ok(s) => {
                if s.retired > 0 {
                    tracing::info!(retired = s.retired, "retired the keys of CI runs past fleet.ci_keep_days");
                }
                if let Some(first) = s.failed.first() {
                    tracing::warn!(failed = s.failed.len(), error = %first, "could not retire some CI run keys; retrying");
                    failures.push(format!("CI keep-days: {first}"));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "the CI keep-days sweep failed; retrying");
                failures.push(format!("CI keep-days: {}", e.message));
            }
        }
        match ops.evidence_sweep().await {
            Ok(s) if s.touched > 0 => {
                tracing::warn!(reads = s.touched, "bait read on its host and the key not used: bait-touched incident")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e.message, "the evidence sweep failed; retrying");
                failures.push(format!("evidence sweep: {}", e.message));
            }
        }
        let error = (!failures.is_empty()).then(|| failures.join("; "));
        ops.job_ran("fleet", error.as_deref()).await;
        tokio::select! {
            _ = tokio::time::sleep(beat(&ops).min(every)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The response runner while serving: a pass every few seconds, and at
/// once when an action was approved or an incident changed here, on the
/// replica holding the job `response`. A failed pass is logged and tried
/// again; one run's failure is on its incident.
async fn response_loop(ops: honeytrail_app::Ops, mut stop: tokio::sync::watch::Receiver<bool>) {
    let due = ops.signals().actions_due.clone();
    loop {
        let held = ops.hold("response").await.unwrap_or_else(|e| {
            tracing::warn!(error = %e.message, "cannot ask for the response job's lease");
            false
        });
        if !held {
            tokio::select! {
                _ = tokio::time::sleep(beat(&ops).min(StdDuration::from_secs(5))) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let pass = ops.response_pass().await;
        ops.job_ran("response", pass.as_ref().err().map(|e| format!("{e:#}")).as_deref()).await;
        match pass {
            Ok(s) if s.started + s.decided + s.cancelled > 0 => tracing::info!(
                decided = s.decided,
                started = s.started,
                done = s.done,
                failed = s.failed,
                held = s.held,
                cancelled = s.cancelled,
                "response pass"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "the response pass failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(StdDuration::from_secs(5)) => {}
            _ = due.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// The safety net while serving: every `detect.safety_net_every_minutes`
/// (0: never), on the replica holding the job `safety-net`. When it last ran
/// is read from the store, so a replica taking the job over does not run it
/// again early. Keys nobody minted (imported ones) are not asked about, and
/// without minted keys nothing is asked of AWS at all.
async fn safety_net_loop(ops: honeytrail_app::Ops, mut stop: tokio::sync::watch::Receiver<bool>) {
    use honeytrail_app::sources::{safety_net::SafetyNet, Sink, Source};
    const JOB: &str = "safety-net";
    let d = &ops.config.detect;
    if d.safety_net_every_minutes == 0 {
        return;
    }
    let every = chrono::Duration::minutes(i64::from(d.safety_net_every_minutes));
    let grace = chrono::Duration::minutes(i64::from(d.safety_net_grace_minutes));
    // This replica's own last run too, should the store not record runs.
    let mut ran: Option<std::time::Instant> = None;
    loop {
        let mine_due = ran.is_none_or(|t| t.elapsed() >= every.to_std().unwrap_or_default());
        let held = mine_due
            && ops.hold(JOB).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e.message, "cannot ask for the safety net's lease");
                false
            });
        let due = match held {
            false => false,
            true => match ops.job_last_run(JOB).await {
                Ok(last) => last.is_none_or(|t| chrono::Utc::now() - t >= every),
                Err(e) => {
                    tracing::warn!(error = %e.message, "cannot read when the safety net last ran");
                    false
                }
            },
        };
        if due {
            ran = Some(std::time::Instant::now());
            let mut net = SafetyNet::new(&ops, grace);
            let mut sink = Sink::new(&ops);
            let pass = net.pass(&mut sink).await;
            let error = match (&pass, net.failures.first()) {
                (Err(e), _) => Some(format!("{e:#}")),
                (Ok(_), Some(f)) => {
                    Some(format!("{} key(s) or report(s) could not be checked, e.g. {f}", net.failures.len()))
                }
                (Ok(_), None) => None,
            };
            ops.job_ran(JOB, error.as_deref()).await;
            match error {
                Some(e) => tracing::warn!(error = %e, checked = net.checked, raised = net.raised, "safety net pass"),
                None if net.raised > 0 => {
                    tracing::info!(checked = net.checked, raised = net.raised, "safety net raised unlogged uses")
                }
                None => {}
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(beat(&ops)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; one more is answered 503 and closed.
    pub connections: usize,
    /// The time a client has to send a request's headers.
    pub header_read: StdDuration,
    /// The time a whole request may take, its body included (else 408).
    pub request: StdDuration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { connections: 1024, header_read: StdDuration::from_secs(10), request: StdDuration::from_secs(60) }
    }
}

/// Serves HTTP/1.1 connections until `shutdown`, within `limits`: slow or
/// idle clients cannot hold the server (headers must arrive within a
/// deadline, a request must finish within one), and past the connection
/// limit a client gets a 503 at once instead of a hang. On shutdown no new
/// connection is taken and those open finish what they are doing.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use tokio::io::AsyncWriteExt;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.connections));
    let (closing, closed) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause, do not spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(StdDuration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let mut stream = stream;
                let busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                let refused = tokio::time::timeout(StdDuration::from_secs(2), async {
                    stream.write_all(busy).await?;
                    // Closing with the request unread would make the kernel
                    // reset the connection, and the client could lose the
                    // 503 before reading it: say we are done, read what the
                    // client sent (a little, briefly), then close.
                    stream.shutdown().await?;
                    let mut sink = [0u8; 4096];
                    let mut read = 0;
                    while read < 64 * 1024 {
                        match tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? {
                            0 => break,
                            n => read += n,
                        }
                    }
                    Ok::<_, std::io::Error>(())
                })
                .await;
                if !matches!(refused, Ok(Ok(()))) {
                    tracing::debug!(%peer, "could not tell a refused client why");
                }
            });
            tracing::warn!(%peer, limit = limits.connections, "connection limit reached; answered 503");
            continue;
        };
        let app = app.clone();
        let closed = closed.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_http(stream, app, peer, limits, closed).await,
                // The handshake has the time a client has for its headers.
                Some(tls) => match tokio::time::timeout(limits.header_read, tls.accept(stream)).await {
                    Ok(Ok(stream)) => serve_http(stream, app, peer, limits, closed).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "a TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "a TLS handshake took too long"),
                },
            }
        });
    }
    // Finish what is in flight: tell every connection, then wait for them.
    if closing.send(true).is_err() {
        tracing::debug!("no connection was open at shutdown");
    }
    let all = u32::try_from(limits.connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(StdDuration::from_secs(30), slots.acquire_many(all)).await.is_err() {
        tracing::warn!("connections were still open 30 s after shutdown began");
    }
}

/// Serves one connection's requests until it ends, or, once the server
/// shuts down, until the request in flight is answered.
async fn serve_http<I>(
    io: I,
    app: Router,
    peer: SocketAddr,
    limits: Limits,
    mut closed: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let mut app = app.clone();
        async move {
            match tokio::time::timeout(limits.request, tower_service::Service::call(&mut app, request)).await {
                Ok(answer) => answer,
                Err(_) => Ok(StatusCode::REQUEST_TIMEOUT.into_response()),
            }
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = closed.changed() => {
            connection.as_mut().graceful_shutdown();
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a connection ended badly during shutdown");
            }
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    eprintln!("shutting down: finishing requests in flight");
}

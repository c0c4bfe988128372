//! `honeytrail serve`: the one long-running process. It serves the web UI
//! (`ui`), the REST API under `/api/v1` (`api`, described by `openapi.json`),
//! the event receivers and "was this you?" answers (`receivers`), health and
//! metrics, and runs the alert dispatcher in the background.
//!
//! Sign-in (`auth`): browser sessions in an HttpOnly SameSite=Strict cookie
//! with a CSRF token for every change, or API tokens as bearer credentials.
//! Every change is written to the audit log with who, what and from where.

mod api;
pub(crate) mod auth;
mod receivers;
mod ui;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Duration;
use honeytrail_core::access::Role;
use honeytrail_core::incident::TokenEvent;
use honeytrail_ingest::Detector;
use honeytrail_store::Store;
use tokio::sync::Mutex;

use crate::app::App;
use crate::commands::ingest::{build_index, Stored};

pub use receivers::SECRET_HEADER;

#[derive(Default)]
pub(crate) struct Counters {
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
pub(crate) struct Shared {
    store: Store,
    app: App,
    window: Duration,
    eventbridge_secret: Option<String>,
    canarytokens_secret: Option<String>,
    detector: Mutex<(Instant, Arc<Detector>)>,
    /// Set when tokens change through this server: rebuild before the next match.
    detector_stale: std::sync::atomic::AtomicBool,
    counters: Counters,
    logins: std::sync::Mutex<auth::LoginLimiter>,
    /// Cookies carry `Secure` when people reach us over https.
    secure_cookies: bool,
    /// Keys the CSRF tokens of people signed in by the SSO header.
    sso_key: String,
    /// Wakes the dispatcher when this process queued an alert, so it goes
    /// out now rather than at the next poll.
    alerts_queued: Arc<tokio::sync::Notify>,
}

impl Shared {
    /// The detector, rebuilt when older than a few seconds so that tokens
    /// registered meanwhile match without a restart.
    async fn detector(&self) -> Result<Arc<Detector>> {
        let mut slot = self.detector.lock().await;
        let stale = self.detector_stale.swap(false, std::sync::atomic::Ordering::AcqRel);
        if stale || slot.0.elapsed() > StdDuration::from_secs(5) {
            *slot = (Instant::now(), Arc::new(Detector::new(build_index(&self.store).await?)));
        }
        Ok(slot.1.clone())
    }

    /// An incident changed: deliver its alert now.
    fn alert_queued(&self) {
        self.alerts_queued.notify_one();
    }

    /// Tokens changed: the next event is matched against a fresh index.
    fn tokens_changed(&self) {
        self.detector_stale.store(true, std::sync::atomic::Ordering::Release);
    }

    async fn store_events(&self, events: &[TokenEvent]) -> Result<usize> {
        let mut stored = Stored::default();
        stored.add(&self.store, events, self.window).await?;
        self.counters.matches.fetch_add(stored.matches as u64, std::sync::atomic::Ordering::Relaxed);
        self.alert_queued();
        stored.emit(&self.store).await?;
        Ok(stored.matches)
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

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(receivers::readyz))
        .route("/metrics", get(receivers::metrics))
        .route("/ingest/eventbridge", post(receivers::eventbridge))
        .route("/ingest/canarytokens/{secret}", post(receivers::canarytokens))
        .route("/answer/{token}", get(receivers::answer_page).post(receivers::answer_submit))
        .merge(auth::routes())
        .merge(ui::routes())
        .nest("/api/v1", api::routes())
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(shared)
}

/// Creates the first admin on first start, printing its one-time password once.
async fn first_admin(store: &Store) -> Result<Option<String>> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let password = auth::new_password();
    store.add_user("admin", Role::Admin, &auth::hash_password(&password)?, true).await?;
    store.audit("honeytrail", "user.create", "admin", Some("first admin, created on first start"), None).await?;
    Ok(Some(password))
}

pub async fn run(app: App) -> Result<ExitCode> {
    let store = app.store().await?;
    let detector = Detector::new(build_index(&store).await?);
    let serve = app.config.serve.clone();
    let public_url = serve.public_url();
    let admin_password = first_admin(&store).await?;
    let settings = crate::commands::deliver::Settings::from_config(&app);
    let shared = Arc::new(Shared {
        store,
        window: Duration::minutes(app.config.detect.window_minutes as i64),
        eventbridge_secret: serve.eventbridge_secret.clone().filter(|s| !s.is_empty()),
        canarytokens_secret: serve.canarytokens_secret.clone().filter(|s| !s.is_empty()),
        detector: Mutex::new((Instant::now(), Arc::new(detector))),
        detector_stale: std::sync::atomic::AtomicBool::new(false),
        counters: Counters::default(),
        logins: std::sync::Mutex::new(auth::LoginLimiter::default()),
        secure_cookies: public_url.starts_with("https://"),
        sso_key: honeytrail_core::new_bearer("").expose().to_string(),
        alerts_queued: Arc::new(tokio::sync::Notify::new()),
        app,
    });
    let addr: SocketAddr = serve
        .listen
        .parse()
        .with_context(|| format!("serve.listen {:?} is not an address like 127.0.0.1:8080", serve.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (in use? change serve.listen)"))?;
    let local = listener.local_addr()?;
    eprintln!("honeytrail is serving on http://{local}");
    eprintln!("  web UI: {public_url}/  (API: {public_url}/api/v1, described at /api/v1/openapi.json)");
    match &admin_password {
        Some(p) => eprintln!(
            "  first start: created user \"admin\" with the one-time password {p}\n  \
             log in with it and choose a new password (it is shown only this once; `honeytrail user reset-password admin` makes a new one)"
        ),
        None => eprintln!("  log in with your honeytrail user; `honeytrail user add NAME --role ROLE` adds one"),
    }
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
    eprintln!("  health: /healthz /readyz   metrics: /metrics; delivering alerts to the configured channels");
    for spec in &serve.watch {
        crate::commands::watch::parse_worker(spec)?;
        eprintln!("  reading CloudTrail from {spec}");
        // Each watcher runs on its own thread and runtime, with its own
        // connections: a slow bucket never holds up the web UI.
        let config = shared.app.config.clone();
        let spec = spec.clone();
        std::thread::Builder::new().name(format!("watch {spec}")).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(async {
                    let app = App::new(config, Some("honeytrail serve".into()));
                    crate::commands::watch::serve_worker(&app, &spec).await
                }),
                Err(e) => tracing::error!(error = %e, "cannot start a watcher"),
            }
        })?;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(crate::commands::deliver::run_dispatcher(
        shared.store.clone(),
        settings,
        Some(stopped),
        Some(shared.alerts_queued.clone()),
    ));
    axum::serve(listener, router(shared).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // In-flight requests are done; let the dispatcher finish its pass.
    let _ = stop.send(true);
    match tokio::time::timeout(StdDuration::from_secs(30), dispatcher).await {
        Ok(_) => eprintln!("honeytrail stopped"),
        Err(_) => eprintln!("honeytrail stopped; the dispatcher was still sending, its deliveries will be retried"),
    }
    Ok(ExitCode::SUCCESS)
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

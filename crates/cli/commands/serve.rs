//! `honeytrail serve`: the long-running process. For now it receives
//! EventBridge events (an API destination) and canarytokens.org webhook
//! alerts, and serves health and metrics; the web UI and REST API come with
//! the server issue.
//!
//! Every receiver authenticates with a shared secret before reading anything;
//! a refused request is counted and never stored as a hit.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Duration;
use honeytrail_core::incident::TokenEvent;
use honeytrail_ingest::Detector;
use honeytrail_store::Store;
use serde_json::json;
use tokio::sync::Mutex;

use super::ingest::{build_index, Stored};
use crate::app::App;

/// The header an EventBridge API destination sends the shared secret in.
pub const SECRET_HEADER: &str = "x-honeytrail-secret";

#[derive(Default)]
struct Counters {
    eventbridge_accepted: AtomicU64,
    eventbridge_rejected: AtomicU64,
    canarytokens_accepted: AtomicU64,
    canarytokens_rejected: AtomicU64,
    malformed: AtomicU64,
    matches: AtomicU64,
}

struct Shared {
    store: Store,
    window: Duration,
    eventbridge_secret: Option<String>,
    canarytokens_secret: Option<String>,
    detector: Mutex<(Instant, Arc<Detector>)>,
    counters: Counters,
}

impl Shared {
    /// The detector, rebuilt when older than a few seconds so that tokens
    /// registered meanwhile match without a restart.
    async fn detector(&self) -> Result<Arc<Detector>> {
        let mut slot = self.detector.lock().await;
        if slot.0.elapsed() > StdDuration::from_secs(5) {
            *slot = (Instant::now(), Arc::new(Detector::new(build_index(&self.store).await?)));
        }
        Ok(slot.1.clone())
    }

    async fn store_events(&self, events: &[TokenEvent]) -> Result<usize> {
        let mut stored = Stored::default();
        stored.add(&self.store, events, self.window).await?;
        self.counters.matches.fetch_add(stored.matches as u64, Ordering::Relaxed);
        stored.emit(&self.store).await?;
        Ok(stored.matches)
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(given: &[u8], expected: &str) -> bool {
    let expected = expected.as_bytes();
    if given.len() != expected.len() {
        return false;
    }
    given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "request failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the event could not be stored; the sender should retry",
    )
}

/// An HTML page with the headers every page gets: no caching, no framing,
/// no scripts, forms only to us.
fn page(status: StatusCode, body: String) -> Response {
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
        ],
        body,
    )
        .into_response()
}

fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let error = !status.is_success();
    page(status, crate::web::render("message.html", minijinja::context! {title, message, error}))
}

/// Why a "was this you?" link cannot be answered, as a page.
fn question_refused(e: honeytrail_store::StoreError) -> Response {
    use honeytrail_store::StoreError;
    match e {
        StoreError::NotFound(_) => message_page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            "This link is not valid. It may have been cut short by your mail program; open it from the email again.",
        ),
        StoreError::Refused(why) => message_page(StatusCode::CONFLICT, "Cannot record an answer", &why),
        other => {
            tracing::error!(error = %other, "cannot read an owner question");
            message_page(StatusCode::SERVICE_UNAVAILABLE, "Try again later", "The answer cannot be recorded right now.")
        }
    }
}

/// GET of a "was this you?" link: shows the question. It records nothing,
/// so a mail scanner opening the link answers nothing.
async fn answer_page(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let q = match s.store.owner_question(&token).await {
        Ok(q) => q,
        Err(e) => return question_refused(e),
    };
    if q.answered_at.is_some() {
        return message_page(StatusCode::OK, "Already answered", "Thank you: your answer was recorded before.");
    }
    if q.expires_at < chrono::Utc::now() {
        return question_refused(honeytrail_store::StoreError::Refused(
            "This link has expired; please reply to the security team directly.".into(),
        ));
    }
    let record = match super::incident::incident_record(&s.store, q.incident_id, "question").await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)).collect()
    };
    page(
        StatusCode::OK,
        crate::web::render(
            "answer.html",
            minijinja::context! {
                title => "Was this you?",
                placement => record["placement"].as_str().unwrap_or(""),
                first_seen => record["incident"]["first_seen"].as_str().unwrap_or(""),
                apis => strings(&record["activity"]["apis"]),
                ips => strings(&record["activity"]["source_ips"]),
            },
        ),
    )
}

#[derive(serde::Deserialize)]
struct AnswerForm {
    answer: String,
    #[serde(default)]
    comment: String,
}

/// POST of a "was this you?" link: records the answer once.
async fn answer_submit(
    State(s): State<Arc<Shared>>,
    Path(token): Path<String>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    axum::Form(form): axum::Form<AnswerForm>,
) -> Response {
    let it_was_me = match form.answer.as_str() {
        "yes" => true,
        "no" => false,
        _ => return message_page(StatusCode::BAD_REQUEST, "Choose an answer", "Answer yes or no."),
    };
    match s.store.answer_owner_question(&token, it_was_me, Some(&form.comment), &peer.ip().to_string()).await {
        Ok(_) => message_page(
            StatusCode::OK,
            "Thank you",
            if it_was_me {
                "Your answer was recorded: it was you. The security team will follow up. Please do not use the key again."
            } else {
                "Your answer was recorded: it was not you. The security team has been told and will follow up."
            },
        ),
        Err(e) => question_refused(e),
    }
}

async fn eventbridge(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    match &s.eventbridge_secret {
        Some(secret) if same_secret(given, secret) => {}
        _ => {
            s.counters.eventbridge_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("refused an EventBridge delivery without the right {SECRET_HEADER} header");
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                &format!("send the shared secret in the {SECRET_HEADER} header"),
            );
        }
    }
    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
        s.counters.malformed.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::BAD_REQUEST, "malformed_json", "the body is not a JSON EventBridge event");
    }
    let detector = match s.detector().await {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let outcome = detector.document(&body, "eventbridge-http", "EventBridge API destination");
    if let Some(reason) = &outcome.skipped {
        s.counters.malformed.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::UNPROCESSABLE_ENTITY, "not_cloudtrail", &reason.to_string());
    }
    s.counters.eventbridge_accepted.fetch_add(1, Ordering::Relaxed);
    match s.store_events(&outcome.events).await {
        Ok(matched) => {
            (StatusCode::ACCEPTED, Json(json!({"records": outcome.records, "matched": matched}))).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn canarytokens(State(s): State<Arc<Shared>>, Path(secret): Path<String>, body: Bytes) -> Response {
    match &s.canarytokens_secret {
        Some(expected) if same_secret(secret.as_bytes(), expected) => {}
        _ => {
            s.counters.canarytokens_rejected.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::UNAUTHORIZED, "unauthenticated", "unknown webhook path");
        }
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) else {
        s.counters.malformed.fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::BAD_REQUEST, "malformed_json", "the body is not a canarytokens.org webhook payload");
    };
    let tokens = match s.store.list_tokens(&Default::default()).await {
        Ok(t) => t,
        Err(e) => return internal(e.into()),
    };
    let Some(event) = honeytrail_ingest::canarytokens::to_event(&payload, &tokens) else {
        s.counters.malformed.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_canarytoken",
            "no imported token carries this canarytoken: import it with --label canarytoken=<token id from the manage URL>",
        );
    };
    s.counters.canarytokens_accepted.fetch_add(1, Ordering::Relaxed);
    match s.store_events(&[event]).await {
        Ok(matched) => (StatusCode::ACCEPTED, Json(json!({"matched": matched}))).into_response(),
        Err(e) => internal(e),
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> String {
    let c = &s.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    format!(
        "# HELP honeytrail_receiver_requests_total Requests to the event receivers, by receiver and outcome.\n\
         # TYPE honeytrail_receiver_requests_total counter\n\
         honeytrail_receiver_requests_total{{receiver=\"eventbridge\",outcome=\"accepted\"}} {}\n\
         honeytrail_receiver_requests_total{{receiver=\"eventbridge\",outcome=\"unauthenticated\"}} {}\n\
         honeytrail_receiver_requests_total{{receiver=\"canarytokens\",outcome=\"accepted\"}} {}\n\
         honeytrail_receiver_requests_total{{receiver=\"canarytokens\",outcome=\"unauthenticated\"}} {}\n\
         honeytrail_receiver_requests_total{{receiver=\"any\",outcome=\"malformed\"}} {}\n\
         # HELP honeytrail_matches_total Honey-key events received and stored.\n\
         # TYPE honeytrail_matches_total counter\n\
         honeytrail_matches_total {}\n",
        get(&c.eventbridge_accepted),
        get(&c.eventbridge_rejected),
        get(&c.canarytokens_accepted),
        get(&c.canarytokens_rejected),
        get(&c.malformed),
        get(&c.matches),
    )
}

pub async fn run(app: &App) -> Result<ExitCode> {
    let store = app.store().await?;
    let detector = Detector::new(build_index(&store).await?);
    let serve = &app.config.serve;
    let shared = Arc::new(Shared {
        store,
        window: Duration::minutes(app.config.detect.window_minutes as i64),
        eventbridge_secret: serve.eventbridge_secret.clone().filter(|s| !s.is_empty()),
        canarytokens_secret: serve.canarytokens_secret.clone().filter(|s| !s.is_empty()),
        detector: Mutex::new((Instant::now(), Arc::new(detector))),
        counters: Counters::default(),
    });
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/ingest/eventbridge", post(eventbridge))
        .route("/ingest/canarytokens/{secret}", post(canarytokens))
        .route("/answer/{token}", get(answer_page).post(answer_submit))
        .layer(DefaultBodyLimit::max(1 << 20))
        .with_state(shared.clone());
    let addr: SocketAddr = serve
        .listen
        .parse()
        .with_context(|| format!("serve.listen {:?} is not an address like 127.0.0.1:8080", serve.listen))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (in use? change serve.listen)"))?;
    let local = listener.local_addr()?;
    eprintln!("honeytrail serving on http://{local}");
    eprintln!(
        "  EventBridge API destination: POST http://{local}/ingest/eventbridge with header {SECRET_HEADER}{}",
        if shared.eventbridge_secret.is_none() {
            " (no secret set: refusing all; set HONEYTRAIL_EVENTBRIDGE_SECRET)"
        } else {
            ""
        }
    );
    eprintln!(
        "  canarytokens.org webhook:    POST http://{local}/ingest/canarytokens/<secret>{}",
        if shared.canarytokens_secret.is_none() {
            " (no secret set: refusing all; set HONEYTRAIL_CANARYTOKENS_SECRET)"
        } else {
            ""
        }
    );
    eprintln!("  health: /healthz   metrics: /metrics; delivering alerts to the configured channels");
    let dispatcher =
        tokio::spawn(super::deliver::run_dispatcher(shared.store.clone(), super::deliver::Settings::from_config(app)));
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    dispatcher.abort();
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_exactly() {
        assert!(super::same_secret(b"s3cret", "s3cret"));
        assert!(!super::same_secret(b"s3cres", "s3cret"));
        assert!(!super::same_secret(b"s3cre", "s3cret"));
        assert!(!super::same_secret(b"", "s3cret"));
    }
}

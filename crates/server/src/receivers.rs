//! The receivers of `serve`: EventBridge events (an API destination),
//! canarytokens.org webhook alerts, "was this you?" answers, health and metrics.
//!
//! Every event receiver authenticates with a shared secret before reading
//! anything; a refused request is counted and never stored as a hit.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use honeytrail_app::ops::answers::{OwnerAnswer, OwnerQuestion, SlackClick};
use honeytrail_app::sources::receivers::{Accepted, Refusal};
use honeytrail_app::OpErrorKind;

use super::auth::{same, ApiError};
use super::{message_page, page, Shared};

/// The header an EventBridge API destination sends the shared secret in.
pub const SECRET_HEADER: &str = "x-honeytrail-secret";

fn error(status: StatusCode, code: &'static str, message: &str) -> Response {
    ApiError::new(status, code, message).into_response()
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "request failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the event could not be stored; the sender should retry",
    )
}

/// Why a "was this you?" link cannot be answered, as a page.
fn question_refused(e: honeytrail_app::OpError) -> Response {
    match e.kind {
        OpErrorKind::NotFound => message_page(StatusCode::NOT_FOUND, "Link not valid", &e.message),
        OpErrorKind::Conflict => message_page(StatusCode::CONFLICT, "Cannot record an answer", &e.message),
        OpErrorKind::Invalid => message_page(StatusCode::BAD_REQUEST, "Choose an answer", &e.message),
        _ => {
            tracing::error!(error = %e.message, "cannot read an owner question");
            message_page(StatusCode::SERVICE_UNAVAILABLE, "Try again later", "The answer cannot be recorded right now.")
        }
    }
}

/// GET of a "was this you?" link: shows the question. It records nothing,
/// so a mail scanner opening the link answers nothing.
pub(super) async fn answer_page(State(s): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    match s.ops.owner_question(&token).await {
        Ok(OwnerQuestion::Answered) => {
            message_page(StatusCode::OK, "Already answered", "Thank you: your answer was recorded before.")
        }
        Ok(OwnerQuestion::Open { placement, first_seen, apis, source_ips }) => page(
            StatusCode::OK,
            crate::web::render(
                "answer.html",
                minijinja::context! {
                    title => "Was this you?",
                    placement => placement,
                    first_seen => first_seen.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    apis => apis,
                    ips => source_ips,
                },
            ),
        ),
        Err(e) => question_refused(e),
    }
}

/// POST of a "was this you?" link: records the answer once.
pub(super) async fn answer_submit(
    State(s): State<Arc<Shared>>,
    Path(token): Path<String>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    axum::Form(form): axum::Form<OwnerAnswer>,
) -> Response {
    match s.ops.answer_owner_question(&token, &form, &peer.ip().to_string()).await {
        Ok(it_was_me) => message_page(
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

/// Refused receiver requests per address: after this many in a minute, an
/// address is answered 429 without its secret being compared.
const REFUSALS_PER_MINUTE: u32 = 20;

/// Refused requests to the receivers, per client address (an IPv6 client
/// by its /64).
#[derive(Default)]
pub struct RefusalLimiter {
    by_address: std::collections::HashMap<String, (u32, std::time::Instant)>,
}

impl RefusalLimiter {
    fn throttled(&mut self, addr: &str) -> bool {
        let addr = &honeytrail_core::net::limit_key(addr);
        let now = std::time::Instant::now();
        if self.by_address.len() > 10_000 {
            self.by_address.retain(|_, (_, since)| now.duration_since(*since).as_secs() < 60);
        }
        match self.by_address.get(addr) {
            Some((n, since)) if now.duration_since(*since).as_secs() < 60 => *n >= REFUSALS_PER_MINUTE,
            _ => false,
        }
    }

    fn refused(&mut self, addr: &str) {
        let now = std::time::Instant::now();
        let entry = self.by_address.entry(honeytrail_core::net::limit_key(addr)).or_insert((0, now));
        if now.duration_since(entry.1).as_secs() >= 60 {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

impl Shared {
    /// An unauthenticated request from `addr` held back for earlier refusals.
    pub(crate) fn held_back(&self, addr: &str) -> Option<super::auth::ApiError> {
        self.refusals.lock().expect("refusal lock").throttled(addr).then(|| {
            super::auth::ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_refusals",
                "too many refused requests from this address; wait a minute",
            )
        })
    }

    /// Counts a refused unauthenticated request from `addr`.
    pub(crate) fn refused(&self, addr: &str) {
        self.refusals.lock().expect("refusal lock").refused(addr);
    }
}

/// Whether a receiver request from `addr` is held back for earlier refusals.
fn held_back(s: &Shared, addr: &str) -> Option<Response> {
    s.refusals.lock().expect("refusal lock").throttled(addr).then(|| {
        let mut r =
            error(StatusCode::TOO_MANY_REQUESTS, "too_many_refusals", "too many refused requests; wait a minute");
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("60"));
        r
    })
}

pub(super) async fn eventbridge(
    State(s): State<Arc<Shared>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let addr = super::auth::client_address(Some(peer.ip()), &headers, &s.config().serve.trusted_proxies);
    if let Some(r) = held_back(&s, &addr) {
        return r;
    }
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    match &s.eventbridge_secret {
        Some(secret) if same(given, secret) => {}
        _ => {
            s.refusals.lock().expect("refusal lock").refused(&addr);
            s.counters.eventbridge_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("refused an EventBridge delivery without the right {SECRET_HEADER} header");
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                &format!("send the shared secret in the {SECRET_HEADER} header"),
            );
        }
    }
    answer(&s, s.receivers.eventbridge(&body).await, true)
}

/// A click on a Slack message's Approve button (the Slack app's
/// interactivity Request URL). Slack's request signature is checked before
/// the body is read; the clicking Slack member must be listed in
/// `actions.slack_approvers`, and approves as that honeytrail user, whose
/// role must allow it.
pub(super) async fn slack_actions(
    State(s): State<Arc<Shared>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let addr = super::auth::client_address(Some(peer.ip()), &headers, &s.config().serve.trusted_proxies);
    if let Some(r) = held_back(&s, &addr) {
        return r;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let click = SlackClick {
        timestamp: header("x-slack-request-timestamp"),
        signature: header("x-slack-signature"),
        body: &body,
    };
    match s.ops.approve_from_slack(click).await {
        Ok(run) => {
            let by = run.decided_by.clone().unwrap_or_default();
            Json(json!({"text": format!("Run #{} ({}) approved by {by}", run.id, run.action)})).into_response()
        }
        Err(e) => {
            if e.kind == OpErrorKind::Unauthenticated {
                s.refusals.lock().expect("refusal lock").refused(&addr);
                tracing::warn!(from = %addr, reason = %e.message, "refused a Slack interaction");
            }
            ApiError::from(e).into_response()
        }
    }
}

/// The answer to a pushed body, counted.
fn answer(s: &Shared, result: anyhow::Result<Result<Accepted, Refusal>>, eventbridge: bool) -> Response {
    match result {
        Ok(Ok(accepted)) => {
            let accepted_counter =
                if eventbridge { &s.counters.eventbridge_accepted } else { &s.counters.canarytokens_accepted };
            accepted_counter.fetch_add(1, Ordering::Relaxed);
            s.counters.matches.fetch_add(accepted.matched as u64, Ordering::Relaxed);
            let body = if eventbridge {
                json!({"records": accepted.records, "matched": accepted.matched})
            } else {
                json!({"matched": accepted.matched})
            };
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Ok(Err(Refusal::Malformed(message))) => {
            s.counters.malformed.fetch_add(1, Ordering::Relaxed);
            error(StatusCode::BAD_REQUEST, "malformed_json", &message)
        }
        Ok(Err(Refusal::NotOurs { code, message })) => {
            s.counters.malformed.fetch_add(1, Ordering::Relaxed);
            error(StatusCode::UNPROCESSABLE_ENTITY, code, &message)
        }
        Err(e) => internal(e),
    }
}

pub(super) async fn canarytokens(
    State(s): State<Arc<Shared>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(secret): Path<String>,
    body: Bytes,
) -> Response {
    let addr = super::auth::client_address(Some(peer.ip()), &headers, &s.config().serve.trusted_proxies);
    if let Some(r) = held_back(&s, &addr) {
        return r;
    }
    match &s.canarytokens_secret {
        Some(expected) if same(&secret, expected) => {}
        _ => {
            s.refusals.lock().expect("refusal lock").refused(&addr);
            s.counters.canarytokens_rejected.fetch_add(1, Ordering::Relaxed);
            return error(StatusCode::UNAUTHORIZED, "unauthenticated", "unknown webhook path");
        }
    }
    answer(&s, s.receivers.canarytokens(&body).await, false)
}

/// `/metrics` on the main address: only with the configured bearer token.
/// The figures tell whoever reads them whether a key was used.
pub(super) async fn metrics_guarded(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(token) = s.config().serve.metrics_token.as_deref().filter(|t| !t.is_empty()) else {
        return error(
            StatusCode::NOT_FOUND,
            "metrics_off",
            "metrics are off here: set serve.metrics_token (then send Authorization: Bearer <token>) or serve.metrics_listen",
        );
    };
    let given = headers.get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or_default();
    if !same(given, format!("Bearer {token}")) {
        return error(StatusCode::UNAUTHORIZED, "unauthenticated", "send the metrics token as Authorization: Bearer …");
    }
    metrics(State(s)).await
}

pub(super) async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    use std::fmt::Write;
    let c = &s.counters;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    write!(
        out,
        "# HELP honeytrail_receiver_requests_total Requests to the event receivers, by receiver and outcome.\n\
         # TYPE honeytrail_receiver_requests_total counter\n\
         honeytrail_receiver_requests_total{{receiver=\"eventbridge\",outcome=\"accepted\"}} {}\n\
         honeytrail_receiver_requests_total{{receiver=\"eventbridge\",outcome=\"unauthenticated\"}} {}\n\
         honeytrail_receiver_requests_total{{receiver=\"canarytokens\",outcome=\"accepted\"}} {}\n\
         honeytrail_receiver_requests_total{{receiver=\"canarytokens\",outcome=\"unauthenticated\"}} {}\n\
         honeytrail_receiver_requests_total{{receiver=\"any\",outcome=\"malformed\"}} {}\n\
         # HELP honeytrail_matches_total Honey-key events received and stored.\n\
         # TYPE honeytrail_matches_total counter\n\
         honeytrail_matches_total {}\n\
         # HELP honeytrail_unparsed_hits_total Honey keys seen in documents that could not be parsed (inspect the logs).\n\
         # TYPE honeytrail_unparsed_hits_total counter\n\
         honeytrail_unparsed_hits_total {}\n\
         # HELP honeytrail_logins_total Failed and throttled sign-ins.\n\
         # TYPE honeytrail_logins_total counter\n\
         honeytrail_logins_total{{outcome=\"failed\"}} {}\n\
         honeytrail_logins_total{{outcome=\"throttled\"}} {}\n",
        get(&c.eventbridge_accepted),
        get(&c.eventbridge_rejected),
        get(&c.canarytokens_accepted),
        get(&c.canarytokens_rejected),
        get(&c.malformed),
        get(&c.matches),
        honeytrail_app::sources::UNPARSED_HITS.load(Ordering::Relaxed),
        get(&c.logins_failed),
        get(&c.logins_throttled),
    )
    .expect("writing to a String cannot fail");
    let m = match s.ops.metrics().await {
        Ok(m) => m,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let label = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ");
    out.push_str("# HELP honeytrail_incidents Incidents by state.\n# TYPE honeytrail_incidents gauge\n");
    for (state, n) in &m.stats.incidents {
        writeln!(out, "honeytrail_incidents{{state=\"{}\"}} {n}", label(state))
            .expect("writing to a String cannot fail");
    }
    out.push_str("# HELP honeytrail_tokens Honey tokens by state.\n# TYPE honeytrail_tokens gauge\n");
    for (state, n) in &m.stats.tokens {
        writeln!(out, "honeytrail_tokens{{state=\"{}\"}} {n}", label(state)).expect("writing to a String cannot fail");
    }
    out.push_str("# HELP honeytrail_alert_deliveries Alert deliveries by channel and state (pending, delivered, dead).\n# TYPE honeytrail_alert_deliveries gauge\n");
    for (channel, state, n) in &m.stats.deliveries {
        writeln!(out, "honeytrail_alert_deliveries{{channel=\"{}\",state=\"{}\"}} {n}", label(channel), label(state))
            .expect("writing to a String cannot fail");
    }
    out.push_str("# HELP honeytrail_source_last_read_age_seconds Seconds since an S3 source's newest object was read (lag).\n# TYPE honeytrail_source_last_read_age_seconds gauge\n");
    out.push_str("# HELP honeytrail_source_objects_read Objects read per S3 source.\n# TYPE honeytrail_source_objects_read counter\n");
    let now = chrono::Utc::now();
    for src in &m.sources {
        writeln!(
            out,
            "honeytrail_source_last_read_age_seconds{{source=\"{}\"}} {}",
            label(&src.source),
            (now - src.last_read).num_seconds().max(0)
        )
        .expect("writing to a String cannot fail");
        writeln!(out, "honeytrail_source_objects_read{{source=\"{}\"}} {}", label(&src.source), src.objects)
            .expect("writing to a String cannot fail");
    }
    writeln!(
        out,
        "# HELP honeytrail_fleet_pool_keys Keys minted ahead for enrolling hosts.\n# TYPE honeytrail_fleet_pool_keys gauge\n\
         honeytrail_fleet_pool_keys {}\n\
         # HELP honeytrail_fleet_pool_target The pool size kept (fleet.pool_size).\n# TYPE honeytrail_fleet_pool_target gauge\n\
         honeytrail_fleet_pool_target {}\n\
         # HELP honeytrail_fleet_stale_agents Active hosts silent for longer than fleet.stale_after_seconds.\n# TYPE honeytrail_fleet_stale_agents gauge\n\
         honeytrail_fleet_stale_agents {}\n\
         # HELP honeytrail_evidence_refused_total Read records refused from agents (over quota, or for paths never placed).\n# TYPE honeytrail_evidence_refused_total counter\n\
         honeytrail_evidence_refused_total {}\n\
         # HELP honeytrail_fleet_agents Enrolled hosts by state.\n# TYPE honeytrail_fleet_agents gauge",
        m.pool, m.pool_target, m.stale_agents, m.evidence_refused
    )
    .expect("writing to a String cannot fail");
    for (state, n) in &m.agents {
        writeln!(out, "honeytrail_fleet_agents{{state=\"{}\"}} {n}", label(state))
            .expect("writing to a String cannot fail");
    }
    writeln!(
        out,
        "# HELP honeytrail_cluster_replicas Replicas of serve on this database with a recent heartbeat.\n\
         # TYPE honeytrail_cluster_replicas gauge\n\
         honeytrail_cluster_replicas {}\n\
         # HELP honeytrail_job_held A periodic job and the replica holding its lease (1), or none (0).\n\
         # TYPE honeytrail_job_held gauge\n\
         # HELP honeytrail_job_last_run_age_seconds Seconds since a periodic job last ran, on any replica.\n\
         # TYPE honeytrail_job_last_run_age_seconds gauge",
        m.replicas_up
    )
    .expect("writing to a String cannot fail");
    for (job, holder, last_run) in &m.jobs {
        writeln!(
            out,
            "honeytrail_job_held{{job=\"{}\",replica=\"{}\"}} {}",
            label(job),
            label(holder.as_deref().unwrap_or("")),
            u8::from(holder.is_some())
        )
        .expect("writing to a String cannot fail");
        if let Some(at) = last_run {
            writeln!(
                out,
                "honeytrail_job_last_run_age_seconds{{job=\"{}\"}} {}",
                label(job),
                (now - *at).num_seconds().max(0)
            )
            .expect("writing to a String cannot fail");
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Ready when the store answers.
pub(super) async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    match s.ops.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", e.message)).into_response(),
    }
}

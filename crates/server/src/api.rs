//! The REST API under `/api/v1`: JSON in and out, errors as
//! `{"error": {"code", "message"}}`, described by `openapi.json` (served at
//! `/api/v1/openapi.json`; a test checks every route here is in it).
//!
//! Handlers only translate: each takes the caller, calls one operation of
//! `honeytrail_app::Ops` (which checks permission, validates and audits),
//! and answers its result or its `OpError` as JSON.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use honeytrail_app::ops::{ImportRequest, IncidentQuery, MintRequest, PlacementQuery, PlacementRequest, TokenQuery};
use honeytrail_core::access::Permission;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{AdminCaller, ApiCaller, ApiError, ResponderCaller};
use super::fleet::{
    get_agent, get_audit_rules, get_snippet, list_agents, list_evidence, post_abort, post_agent_remove,
    post_agent_rotate, post_command_done, post_confirm, post_deploy_lambda, post_deploy_mailbox, post_enrol,
    post_evidence, post_heartbeat,
};
use super::Shared;

pub const OPENAPI: &str = include_str!("openapi.json");

type ApiResult = Result<Response, ApiError>;

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(Json(v).into_response())
}

fn created(v: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// A JSON body whose problems are answered as API errors.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            )),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", format!("the body does not fit: {e}")))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

// ------------------------------------------------------------------ handlers

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn me(ApiCaller(c): ApiCaller) -> ApiResult {
    ok(json!({"user": c.user, "role": c.role, "csrf_token": c.csrf}))
}

async fn list_incidents(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<IncidentQuery>,
) -> ApiResult {
    page("/incidents", uri.query().unwrap_or(""), s.ops.incident_page(&c.actor, &q).await?)
}

async fn get_incident(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    ok(s.ops.incident_record(&c.actor, id).await?)
}

async fn list_incident_events(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
    uri: axum::http::Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let path = format!("/incidents/{id}/events");
    page(&path, uri.query().unwrap_or(""), s.ops.event_page(&c.actor, id, q.limit, &q.cursor).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRequest {
    state: String,
    #[serde(default)]
    note: Option<String>,
}

async fn post_state(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
    Body(r): Body<StateRequest>,
) -> ApiResult {
    ok(s.ops.change_state(&c.actor, id, &r.state, r.note.as_deref()).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteRequest {
    text: String,
}

async fn post_note(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
    Body(r): Body<NoteRequest>,
) -> ApiResult {
    let note = s.ops.add_note(&c.actor, id, &r.text).await?;
    created(json!({"incident": id, "note": note}))
}

/// A page of a list: the items as a JSON array, and, when there are more,
/// the cursor of the next page in `X-Next-Cursor` and a `Link: <…>; rel="next"`.
fn page<T: serde::Serialize>(path: &str, query: &str, page: honeytrail_app::ops::Page<T>) -> ApiResult {
    let mut r = Json(page.items).into_response();
    if let Some(next) = page.next {
        let kept: Vec<&str> = query.split('&').filter(|p| !p.is_empty() && !p.starts_with("cursor=")).collect();
        let mut link = format!("</api/v1{path}?");
        for p in kept {
            link.push_str(p);
            link.push('&');
        }
        link.push_str(&format!("cursor={next}>; rel=\"next\""));
        let h = r.headers_mut();
        if let (Ok(cursor), Ok(link)) = (next.parse(), link.parse()) {
            h.insert("x-next-cursor", cursor);
            h.insert(axum::http::header::LINK, link);
        }
    }
    Ok(r)
}

async fn list_tokens(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<TokenQuery>,
) -> ApiResult {
    page("/tokens", uri.query().unwrap_or(""), s.ops.token_page(&c.actor, &q).await?)
}

async fn post_token(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<ImportRequest>,
) -> ApiResult {
    let via = format!("through the honeytrail web UI/API from {}", c.from);
    created(s.ops.import_token(&c.actor, r, &via).await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MintBody {
    #[serde(default)]
    labels: honeytrail_core::Labels,
    #[serde(default)]
    memo: String,
}

async fn post_mint(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<MintBody>,
) -> ApiResult {
    let request = MintRequest { labels: r.labels, memo: r.memo, ..MintRequest::default() };
    created(s.ops.mint(&c.actor, request).await?)
}

async fn get_token(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(key): Path<String>) -> ApiResult {
    ok(s.ops.token_detail(&c.actor, &key).await?)
}

async fn post_retire(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(key): Path<String>) -> ApiResult {
    ok(s.ops.retire(&c.actor, &key).await?.token)
}

async fn get_bait(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path((key, format)): Path<(String, String)>,
) -> ApiResult {
    let (file_name, text) = s.ops.render_bait(&c.actor, &key, &format).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        text,
    )
        .into_response())
}

async fn list_placements(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<PlacementQuery>,
) -> ApiResult {
    page("/placements", uri.query().unwrap_or(""), s.ops.placement_page(&c.actor, &q).await?)
}

pub(super) fn csv_response(placements: &[honeytrail_store::PlacedToken]) -> ApiResult {
    let mut out = Vec::new();
    honeytrail_app::ops::placements::write_csv(placements, &mut out)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"placements.csv\""),
        ],
        out,
    )
        .into_response())
}

async fn get_placements_csv(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<PlacementQuery>,
) -> ApiResult {
    csv_response(&s.ops.search_placements(&c.actor, &q).await?)
}

async fn post_placement(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<PlacementRequest>,
) -> ApiResult {
    created(s.ops.add_placement(&c.actor, &r).await?)
}

async fn delete_placement(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    ok(s.ops.remove_placement(&c.actor, id).await?)
}

async fn list_channels(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.channels(&c.actor).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelRequest {
    name: String,
    kind: String,
    config: Value,
}

async fn post_channel(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<ChannelRequest>,
) -> ApiResult {
    created(s.ops.create_channel(&c.actor, &r.name, &r.kind, &r.config).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelUpdate {
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    enabled: Option<bool>,
}

async fn put_channel(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
    Body(r): Body<ChannelUpdate>,
) -> ApiResult {
    ok(s.ops.update_channel(&c.actor, &name, r.config.as_ref(), r.enabled).await?)
}

async fn post_channel_test(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult {
    s.ops.test_channel(&c.actor, &name).await?;
    ok(json!({"channel": name, "delivered": true}))
}

async fn list_routes(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.routes(&c.actor).await?)
}

async fn post_route(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<honeytrail_core::route::Route>,
) -> ApiResult {
    s.ops.add_route(&c.actor, &r).await?;
    created(r)
}

async fn post_route_test(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(name): Path<String>) -> ApiResult {
    ok(s.ops.test_route(&c.actor, &name).await?)
}

async fn delete_route(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(name): Path<String>) -> ApiResult {
    s.ops.remove_route(&c.actor, &name).await?;
    ok(json!({"removed": name}))
}

async fn list_actions(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.list_actions(&c.actor).await?)
}

async fn post_action(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<honeytrail_app::ops::ActionRequest>,
) -> ApiResult {
    created(s.ops.add_action(&c.actor, &r).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeRequest {
    mode: String,
}

async fn put_action(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
    Body(r): Body<ModeRequest>,
) -> ApiResult {
    ok(s.ops.set_action_mode(&c.actor, &name, &r.mode).await?)
}

async fn delete_action(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
) -> ApiResult {
    s.ops.remove_action(&c.actor, &name).await?;
    ok(json!({"removed": name}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunQuery {
    incident: Option<i64>,
    state: Option<String>,
}

async fn list_action_runs(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<RunQuery>,
) -> ApiResult {
    ok(s.ops.action_runs(&c.actor, q.incident, q.state.as_deref()).await?)
}

async fn get_action_run(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    ok(s.ops.action_run(&c.actor, id).await?)
}

async fn post_run_approve(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.approve_run(&c.actor, id).await?)
}

async fn post_run_cancel(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.cancel_run(&c.actor, id).await?)
}

async fn post_run_undo(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.undo_action_run(&c.actor, id).await?)
}

async fn get_enrich(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.enrich_status(&c.actor).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrichLookupQuery {
    ip: Option<String>,
    user_agent: Option<String>,
}

async fn get_enrich_lookup(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<EnrichLookupQuery>,
) -> ApiResult {
    ok(s.ops.enrich_lookup(&c.actor, q.ip.as_deref(), q.user_agent.as_deref()).await?)
}

/// The data set is the request body as it is (AWS's ip-ranges.json, a Tor
/// list), up to [`DATA_FILE_MAX`](honeytrail_core::enrich::DATA_FILE_MAX):
/// larger than other requests, so read here with its own limit.
async fn put_enrich(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(kind): Path<String>,
    body: axum::body::Body,
) -> ApiResult {
    let bytes = axum::body::to_bytes(body, honeytrail_core::enrich::DATA_FILE_MAX).await.map_err(|_| {
        ApiError::bad_request(format!(
            "the body could not be read or is over {} MiB",
            honeytrail_core::enrich::DATA_FILE_MAX >> 20
        ))
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("the data set must be UTF-8 text"))?;
    ok(s.ops.enrich_load(&c.actor, &kind, text).await?)
}

async fn delete_enrich(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(kind): Path<String>,
) -> ApiResult {
    s.ops.enrich_remove(&c.actor, &kind).await?;
    ok(json!({"removed": kind}))
}

async fn list_runbooks(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(json!({
        "runbooks": s.ops.runbooks(&c.actor).await?,
        "default_shipped": honeytrail_alert::runbook::DEFAULT_TEMPLATE,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunbookRequest {
    selector: String,
    template: String,
}

async fn put_runbook(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
    Body(r): Body<RunbookRequest>,
) -> ApiResult {
    ok(s.ops.set_runbook(&c.actor, &name, &r.selector, &r.template).await?)
}

async fn delete_runbook(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(name): Path<String>) -> ApiResult {
    s.ops.remove_runbook(&c.actor, &name).await?;
    ok(json!({"removed": name}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    state: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list_deliveries(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult {
    let state = q.state.as_deref().unwrap_or("dead");
    page("/deliveries", uri.query().unwrap_or(""), s.ops.delivery_page(&c.actor, state, q.limit, &q.cursor).await?)
}

async fn post_delivery_retry(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    ok(s.ops.retry_delivery(&c.actor, id).await?)
}

/// A page asked for: its size and where it starts.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list_users(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    page("/users", uri.query().unwrap_or(""), s.ops.user_page(&c.actor, q.limit, &q.cursor).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRequest {
    name: String,
    role: String,
}

async fn post_user(State(s): State<Arc<Shared>>, AdminCaller(c): AdminCaller, Body(r): Body<UserRequest>) -> ApiResult {
    let added = s.ops.add_user(&c.actor, &r.name, &r.role).await?;
    created(json!({"user": added.user, "one_time_password": added.one_time_password}))
}

async fn list_enrolments(State(s): State<Arc<Shared>>, AdminCaller(c): AdminCaller) -> ApiResult {
    ok(s.ops.enrolments(&c.actor).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrolmentBody {
    #[serde(default)]
    uses: Option<i64>,
    #[serde(default)]
    unlimited: bool,
    #[serde(default = "default_lifetime")]
    expires: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    template: Option<String>,
    /// Networks hosts enrol from (CIDR or addresses).
    #[serde(default)]
    allowed_from: Vec<String>,
    #[serde(default)]
    expected: Option<i64>,
    /// `"ec2"`: hosts prove they are EC2 instances of `ec2_accounts`.
    #[serde(default)]
    bind: Option<String>,
    #[serde(default)]
    ec2_accounts: Vec<String>,
}

fn default_lifetime() -> String {
    "7d".into()
}

async fn post_enrolment(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<EnrolmentBody>,
) -> ApiResult {
    let request = honeytrail_app::ops::fleet::EnrolmentSecretRequest {
        uses: r.uses,
        unlimited: r.unlimited,
        expires: r.expires,
        labels: r.labels,
        template: r.template,
        allowed_from: r.allowed_from,
        expected: r.expected,
        bind: r.bind,
        ec2_accounts: r.ec2_accounts,
    };
    let (enrolment, secret) = s.ops.create_enrolment(&c.actor, request).await?;
    created(json!({"enrollment": enrolment, "secret": secret}))
}

async fn post_enrolment_revoke(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.revoke_enrolment(&c.actor, id).await?)
}

async fn list_templates(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.templates(&c.actor).await?)
}

async fn post_template(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(t): Body<honeytrail_core::template::PlacementTemplate>,
) -> ApiResult {
    created(s.ops.put_template(&c.actor, t).await?)
}

async fn get_template(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(name): Path<String>) -> ApiResult {
    ok(s.ops.template(&c.actor, &name).await?)
}

async fn delete_template(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
) -> ApiResult {
    s.ops.remove_template(&c.actor, &name).await?;
    ok(json!({"removed": name}))
}

async fn list_api_tokens(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.api_tokens(&c.actor).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiTokenRequest {
    name: String,
    #[serde(default)]
    role: Option<String>,
}

async fn post_api_token(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Body(r): Body<ApiTokenRequest>,
) -> ApiResult {
    let (token, secret) = s.ops.create_api_token(&c.actor, &c.user.name, &r.name, r.role.as_deref()).await?;
    created(json!({"api_token": token, "token": secret}))
}

async fn delete_api_token(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    ok(s.ops.revoke_api_token(&c.actor, id).await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    format: Option<String>,
}

pub(super) fn audit_csv(entries: &[honeytrail_store::AuditEntry]) -> ApiResult {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e.to_string());
    w.write_record(["id", "at", "actor", "action", "target", "detail", "from"]).map_err(fail)?;
    for e in entries {
        let row = [
            e.id.to_string(),
            e.at.to_rfc3339(),
            e.actor.clone(),
            e.action.clone(),
            e.target.clone(),
            e.detail.clone().unwrap_or_default(),
            e.from.clone().unwrap_or_default(),
        ];
        // Actors, targets and details can be written by others (an employee's
        // report, a user name): defused for the spreadsheet it will open in.
        w.write_record(row.iter().map(|c| honeytrail_core::encoding::spreadsheet_cell(c).into_owned()))
            .map_err(fail)?;
    }
    let out =
        w.into_inner().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"audit.csv\""),
        ],
        out,
    )
        .into_response())
}

async fn get_audit(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<AuditQuery>,
) -> ApiResult {
    c.require(Permission::Administer)?;
    match q.format.as_deref() {
        // An export: the newest `limit` entries (1 000 unless asked) in one file.
        Some("csv") => audit_csv(&s.ops.audit_log(&c.actor, q.limit.unwrap_or(1000)).await?),
        None | Some("json") => {
            page("/audit", uri.query().unwrap_or(""), s.ops.audit_page(&c.actor, q.limit, &q.cursor).await?)
        }
        Some(other) => Err(ApiError::bad_request(format!("unknown format {other:?}; use json or csv"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupRequest {
    text: String,
    #[serde(default)]
    found_at: String,
}

async fn post_lookup(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Body(r): Body<LookupRequest>) -> ApiResult {
    ok(s.ops.lookup(&c.actor, &r.text, &r.found_at).await?)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint; see /api/v1/openapi.json")
}

/// Declares the API's routes once: the router is built from this list, and
/// `ROUTES` (what the OpenAPI test reads) is the same list, so a route cannot
/// be served without being listed or listed without being served.
macro_rules! api_routes {
    ($($path:literal => $($method:ident($handler:ident))+;)*) => {
        pub fn routes() -> Router<Arc<Shared>> {
            Router::new()
                $(.route($path, axum::routing::MethodRouter::new()$(.$method($handler))+))*
                .fallback(not_found)
        }

        /// Every (method, path) the router serves.
        #[cfg_attr(not(test), allow(dead_code))]
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)*];
    };
}

api_routes! {
    "/openapi.json" => get(openapi);
    "/me" => get(me);
    "/incidents" => get(list_incidents);
    "/incidents/{id}" => get(get_incident);
    "/incidents/{id}/events" => get(list_incident_events);
    "/incidents/{id}/state" => post(post_state);
    "/incidents/{id}/notes" => post(post_note);
    "/tokens" => get(list_tokens) post(post_token);
    "/tokens/mint" => post(post_mint);
    "/tokens/{key}" => get(get_token);
    "/tokens/{key}/retire" => post(post_retire);
    "/tokens/{key}/bait/{format}" => get(get_bait);
    "/placements" => get(list_placements) post(post_placement);
    "/placements.csv" => get(get_placements_csv);
    "/placements/{id}" => delete(delete_placement);
    "/channels" => get(list_channels) post(post_channel);
    "/channels/{name}" => put(put_channel);
    "/channels/{name}/test" => post(post_channel_test);
    "/routes" => get(list_routes) post(post_route);
    "/routes/{name}" => delete(delete_route);
    "/routes/{name}/test" => post(post_route_test);
    "/runbooks" => get(list_runbooks);
    "/runbooks/{name}" => put(put_runbook) delete(delete_runbook);
    "/deliveries" => get(list_deliveries);
    "/deliveries/{id}/retry" => post(post_delivery_retry);
    "/users" => get(list_users) post(post_user);
    "/api-tokens" => get(list_api_tokens) post(post_api_token);
    "/api-tokens/{id}" => delete(delete_api_token);
    "/enrollments" => get(list_enrolments) post(post_enrolment);
    "/enrollments/{id}/revoke" => post(post_enrolment_revoke);
    "/templates" => get(list_templates) post(post_template);
    "/templates/{name}" => get(get_template) delete(delete_template);
    "/fleet/enroll" => post(post_enrol);
    "/fleet/confirm" => post(post_confirm);
    "/fleet/abort" => post(post_abort);
    "/fleet/heartbeat" => post(post_heartbeat);
    "/fleet/commands/{id}" => post(post_command_done);
    "/fleet/evidence" => post(post_evidence);
    "/evidence" => get(list_evidence);
    "/auditd/rules" => get(get_audit_rules);
    "/agents" => get(list_agents);
    "/agents/{id}" => get(get_agent);
    "/agents/{id}/rotate" => post(post_agent_rotate);
    "/agents/{id}/remove" => post(post_agent_remove);
    "/deploy/snippet" => get(get_snippet);
    "/deploy/lambda" => post(post_deploy_lambda);
    "/deploy/mailbox" => post(post_deploy_mailbox);
    "/actions" => get(list_actions) post(post_action);
    "/actions/runs" => get(list_action_runs);
    "/actions/runs/{id}" => get(get_action_run);
    "/actions/runs/{id}/approve" => post(post_run_approve);
    "/actions/runs/{id}/cancel" => post(post_run_cancel);
    "/actions/runs/{id}/undo" => post(post_run_undo);
    "/actions/{name}" => put(put_action) delete(delete_action);
    "/enrich" => get(get_enrich);
    "/enrich/lookup" => get(get_enrich_lookup);
    "/enrich/{kind}" => put(put_enrich) delete(delete_enrich);
    "/audit" => get(get_audit);
    "/lookup" => post(post_lookup);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves, as (method, path) pairs.
    fn routes_served() -> Vec<(String, String)> {
        ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
    }

    #[test]
    fn the_openapi_document_parses_and_lists_every_route() {
        let doc: openapiv3::OpenAPI =
            serde_json::from_str(OPENAPI).expect("openapi.json is a valid OpenAPI 3 document");
        assert!(doc.openapi.starts_with("3."));
        let routes = routes_served();
        assert!(routes.len() > 25, "{routes:?}");
        for (method, path) in &routes {
            let item = doc.paths.paths.get(path).unwrap_or_else(|| panic!("{path} is not in openapi.json"));
            let item = item.as_item().unwrap();
            let op = match method.as_str() {
                "get" => &item.get,
                "post" => &item.post,
                "put" => &item.put,
                "delete" => &item.delete,
                _ => unreachable!(),
            };
            let op = op.as_ref().unwrap_or_else(|| panic!("{} {path} is not in openapi.json", method.to_uppercase()));
            assert!(!op.responses.responses.is_empty(), "{method} {path} documents no responses");
        }
        // And nothing documented that does not exist.
        for (path, item) in &doc.paths.paths {
            let item = item.as_item().unwrap();
            for (method, op) in [("get", &item.get), ("post", &item.post), ("put", &item.put), ("delete", &item.delete)]
            {
                if op.is_some() {
                    assert!(
                        routes.contains(&(method.to_string(), path.clone())),
                        "{method} {path} is documented but not served"
                    );
                }
            }
        }
    }
}

//! The web UI: server-rendered pages (no JavaScript), one form per action,
//! each carrying the session's CSRF token. Every change goes through the same
//! operation as the API (`api.rs`), so permissions and audit are the same.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use honeytrail_core::access::{Permission, Role};
use honeytrail_core::incident::IncidentState;
use honeytrail_store::IncidentFilter;
use serde::Deserialize;
use serde_json::{json, Value};

use honeytrail_app::ops::{ImportRequest, IncidentQuery, MintRequest, PlacementQuery, PlacementRequest, TokenQuery};

use super::api;
use super::auth::{ApiError, Caller, UiCaller};
use super::{message_page, page, Shared};

fn fail(e: impl Into<ApiError>) -> Response {
    let e: ApiError = e.into();
    let title = match e.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        _ => "That did not work",
    };
    message_page(e.status, title, &e.message)
}

fn render(name: &str, ctx: Value) -> Response {
    page(StatusCode::OK, crate::web::render(name, ctx))
}

fn back(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// After a change: on to the page `to` names, or the error as a page.
fn redirect<T, E: Into<ApiError>>(done: Result<T, E>, to: impl FnOnce(T) -> String) -> Response {
    match done {
        Ok(v) => back(&to(v)),
        Err(e) => fail(e),
    }
}

/// Checks the form's CSRF token and the permission, in that order.
fn guard(ui: &UiCaller, csrf: &str, p: Permission) -> Result<(), Response> {
    ui.check_csrf(csrf)?;
    ui.0.require(p).map_err(fail)
}

/// `a=b, c=d` into labels.
fn labels(raw: &str) -> Result<honeytrail_core::Labels, ApiError> {
    honeytrail_core::parse_label_text(raw).map_err(|e| ApiError::bad_request(e.0))
}

fn base(c: &Caller) -> (Value, Option<String>) {
    (serde_json::to_value(&c.user).unwrap_or_default(), c.csrf.clone())
}

/// The unresolved incidents the dashboard lists; the Incidents page has all.
const DASHBOARD_MAX: i64 = 50;

async fn dashboard(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    if c.role == Role::Employee {
        return back("/lookup");
    }
    let result = async {
        let open = s
            .store
            .incidents(&IncidentFilter { unresolved: true, limit: Some(DASHBOARD_MAX), ..Default::default() })
            .await?;
        let stats = s.store.stats().await?;
        // How many are dead-lettered, up to one more than a page shows.
        let dead = s.store.deliveries_page("dead", None, honeytrail_app::ops::PAGE_DEFAULT + 1).await?.len();
        let events = s.store.recent_events(15).await?;
        let sources = s.store.s3_sources().await?;
        Ok::<_, honeytrail_store::StoreError>((open, stats, dead, events, sources))
    }
    .await;
    let (open, stats, dead, events, sources) = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(&c);
    render(
        "dashboard.html",
        serde_json::json!({"title": "Dashboard", "me": me, "csrf": csrf, "open": open, "open_more": open.len() as i64 >= DASHBOARD_MAX, "stats": stats, "dead": dead, "dead_more": dead as i64 > honeytrail_app::ops::PAGE_DEFAULT, "events": events, "sources": sources}),
    )
}

async fn incidents(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<IncidentQuery>) -> Response {
    if let Err(e) = c.require(Permission::Read) {
        return fail(e);
    }
    let page = match s.ops.incident_page(&c.actor, &q).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let next = next_link(
        "/incidents",
        &[("state", &q.state), ("token", &q.token), ("kind", &q.kind)],
        q.unresolved.then_some("unresolved=true"),
        page.next,
    );
    let states: Vec<&str> = IncidentState::ALL.iter().map(|s| s.as_str()).collect();
    let (me, csrf) = base(&c);
    render(
        "incidents.html",
        serde_json::json!({"title": "Incidents", "me": me, "csrf": csrf, "incidents": page.items, "next": next, "states": states, "state": q.state.unwrap_or_default(), "token": q.token.unwrap_or_default(), "kind": q.kind.unwrap_or_default(), "unresolved": q.unresolved}),
    )
}

async fn incident(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Path(id): Path<i64>) -> Response {
    if let Err(e) = c.require(Permission::Read) {
        return fail(e);
    }
    let record = match s.ops.incident_record(&c.actor, id).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let state = record.incident.state;
    let record = json!(record);
    let deliveries = s.store.incident_deliveries(id).await.unwrap_or_default();
    let timeline = timeline(&record, &deliveries);
    let runs = s.ops.action_runs(&c.actor, Some(id), None).await.map(|r| run_rows(&r)).unwrap_or_default();
    let actions: Vec<(&str, &str)> = [
        (IncidentState::Acknowledged, "Acknowledge"),
        (IncidentState::FalsePositive, "False positive"),
        (IncidentState::Confirmed, "Confirm intrusion"),
        (IncidentState::Resolved, "Resolve"),
    ]
    .into_iter()
    .filter(|(next, _)| state.check_move(*next).is_ok())
    .map(|(next, label)| (next.as_str(), label))
    .collect();
    let (me, csrf) = base(&c);
    render(
        "incident.html",
        serde_json::json!({"title": format!("Incident #{id}"), "me": me, "csrf": csrf, "r": record, "timeline": timeline, "actions": actions, "runs": runs, "from_incident": true, "can_respond": c.role.allows(Permission::Respond)}),
    )
}

/// Events, state changes, notes, answers, reports and alerts sent, by time.
fn timeline(record: &Value, deliveries: &[honeytrail_store::Delivery]) -> Vec<Value> {
    use serde_json::json;
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut out: Vec<Value> = Vec::new();
    for e in record["events"].as_array().into_iter().flatten() {
        out.push(json!({
            "at": s(&e["event_time"]), "kind": "event",
            "what": format!("{}:{}{}", s(&e["event_source"]).trim_end_matches(".amazonaws.com"), s(&e["event_name"]),
                e["error_code"].as_str().map(|c| format!(" ({c})")).unwrap_or_default()),
            "who": format!("{} · {}", s(&e["source_ip"]), s(&e["user_agent"])),
            "detail": format!("{} · via {} · detected after {} s", s(&e["aws_region"]), s(&e["source"]), e["detection_delay_seconds"]),
        }));
    }
    // Reads of the bait on its host: how the key was found, before its use.
    for r in record["reads"].as_array().into_iter().flatten() {
        let a = &r["access"];
        let p = &a["process"];
        let who = match p["exe"].as_str().or(p["name"].as_str()) {
            Some(exe) => format!(
                "{exe} · pid {} · {}",
                p["pid"],
                p["user"].as_str().map(str::to_string).unwrap_or_else(|| format!("uid {}", p["uid"]))
            ),
            None => "no process information".to_string(),
        };
        out.push(json!({
            "at": s(&a["at"]), "kind": "read",
            "what": honeytrail_core::encoding::printable(&format!("bait read on {}: {}", s(&r["host"]), s(&a["path"]))).into_owned(),
            "who": honeytrail_core::encoding::printable(&who).into_owned(),
            "detail": format!("{} [{}]", s(&r["sentence"]), s(&r["state"])),
        }));
    }
    for h in record["history"].as_array().into_iter().flatten() {
        let what = match h["kind"].as_str() {
            Some("state") => format!("state → {}", s(&h["to_state"])),
            Some("owner-answer") => "owner answered \"was this you?\"".to_string(),
            Some(k) => k.to_string(),
            None => String::new(),
        };
        out.push(json!({"at": s(&h["at"]), "kind": s(&h["kind"]), "what": what, "who": s(&h["actor"]), "detail": s(&h["note"])}));
    }
    for d in deliveries {
        let at = d.delivered_at.unwrap_or(d.next_attempt_at);
        out.push(json!({
            "at": at, "kind": "alert",
            "what": format!("alert {} → {}", d.alert_kind, d.channel),
            "who": "honeytrail",
            "detail": match d.state.as_str() {
                "delivered" => "delivered".to_string(),
                other => format!("{other} after {} attempt(s) {}", d.attempts, d.last_error.clone().unwrap_or_default()),
            },
        }));
    }
    out.sort_by(|a, b| a["at"].as_str().unwrap_or("").cmp(b["at"].as_str().unwrap_or("")));
    out
}

#[derive(Deserialize)]
struct StateForm {
    csrf: String,
    state: String,
    #[serde(default)]
    note: String,
}

async fn post_state(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<StateForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    redirect(s.ops.change_state(&ui.0.actor, id, &f.state, Some(&f.note)).await, |_| format!("/incidents/{id}"))
}

#[derive(Deserialize)]
struct NoteForm {
    csrf: String,
    text: String,
}

async fn post_note(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<NoteForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    redirect(s.ops.add_note(&ui.0.actor, id, &f.text).await, |_| format!("/incidents/{id}"))
}

/// The link to a list's next page: its path, the filters it was asked
/// with, a switch that was on (`unresolved=true`) and the cursor; `None` on
/// the last page.
fn next_link(
    path: &str,
    filters: &[(&str, &Option<String>)],
    on: Option<&str>,
    cursor: Option<String>,
) -> Option<String> {
    let cursor = cursor?;
    let mut link = format!("{path}?");
    for (k, v) in filters {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            link.push_str(&format!("{k}={}&", percent_encode(v)));
        }
    }
    if let Some(on) = on {
        link.push_str(on);
        link.push('&');
    }
    link.push_str(&format!("cursor={cursor}"));
    Some(link)
}

/// A query value for a link.
fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn tokens(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<TokenQuery>) -> Response {
    if let Err(e) = c.require(Permission::Read) {
        return fail(e);
    }
    // Searched and paged in the database: a page costs the same with ten
    // tokens or a million.
    let page = match s.ops.token_page(&c.actor, &q).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(&c);
    let next = next_link(
        "/tokens",
        &[("label", &q.label), ("host", &q.host), ("owner", &q.owner), ("state", &q.state)],
        None,
        page.next,
    );
    render(
        "tokens.html",
        serde_json::json!({"title": "Tokens", "me": me, "csrf": csrf, "tokens": page.items, "next": next, "first_page": q.cursor.is_none(), "label": q.label.unwrap_or_default(), "host": q.host.unwrap_or_default(), "owner": q.owner.unwrap_or_default(), "can_respond": c.role.allows(Permission::Respond)}),
    )
}

#[derive(Deserialize)]
struct ImportForm {
    csrf: String,
    access_key_id: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    memo: String,
}

async fn post_import(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<ImportForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    let labels = match labels(&f.labels) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let request = ImportRequest {
        access_key_id: f.access_key_id,
        secret_access_key: Some(f.secret),
        labels,
        memo: f.memo,
        ..Default::default()
    };
    let via = format!("through the honeytrail web UI/API from {}", ui.0.from);
    redirect(s.ops.import_token(&ui.0.actor, request, &via).await, |t| format!("/tokens/{}", t.access_key_id))
}

#[derive(Deserialize)]
struct MintForm {
    csrf: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    memo: String,
}

async fn post_mint(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<MintForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    let labels = match labels(&f.labels) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    match s.ops.mint(&ui.0.actor, MintRequest { labels, memo: f.memo, ..MintRequest::default() }).await {
        Ok(t) => back(&format!("/tokens/{}", t.access_key_id)),
        Err(e) => fail(e),
    }
}

async fn token(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Path(key): Path<String>) -> Response {
    if let Err(e) = c.require(Permission::Read) {
        return fail(e);
    }
    let detail = s.ops.token_detail(&c.actor, &key).await;
    let d = match detail {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(&c);
    render(
        "token.html",
        serde_json::json!({"title": key, "me": me, "csrf": csrf, "d": d, "can_respond": c.role.allows(Permission::Respond)}),
    )
}

#[derive(Deserialize)]
struct BaitForm {
    csrf: String,
    format: String,
    /// `download` (an attachment) or `show` (a page to copy from).
    #[serde(default)]
    action: String,
}

async fn post_bait(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(key): Path<String>,
    Form(f): Form<BaitForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    match s.ops.render_bait(&ui.0.actor, &key, &f.format).await {
        Ok((_, text)) if f.action == "show" => {
            let (me, csrf) = base(&ui.0);
            render(
                "bait.html",
                serde_json::json!({"title": "Bait", "me": me, "csrf": csrf, "format": f.format, "key": key, "text": text}),
            )
        }
        Ok((file_name, text)) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            text,
        )
            .into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn post_retire(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(key): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    redirect(s.ops.retire(&ui.0.actor, &key).await, |r| format!("/tokens/{}", r.token.access_key_id))
}

async fn placements(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<PlacementQuery>) -> Response {
    if let Err(e) = c.require(Permission::Read) {
        return fail(e);
    }
    let page = match s.ops.placement_page(&c.actor, &q).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let next = next_link(
        "/placements",
        &[("host", &q.host), ("owner", &q.owner), ("token", &q.token)],
        q.all.then_some("all=true"),
        page.next,
    );
    let (me, csrf) = base(&c);
    let q = serde_json::json!({"host": q.host, "owner": q.owner, "all": q.all});
    render(
        "placements.html",
        serde_json::json!({"title": "Placements", "me": me, "csrf": csrf, "placements": page.items, "next": next, "q": q, "can_respond": c.role.allows(Permission::Respond)}),
    )
}

async fn placements_csv(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Query(q): Query<PlacementQuery>,
) -> Response {
    let result = async {
        c.require(Permission::Read)?;
        api::csv_response(&s.ops.search_placements(&c.actor, &q).await?)
    }
    .await;
    result.unwrap_or_else(fail)
}

#[derive(Deserialize)]
struct PlacementForm {
    csrf: String,
    access_key_id: String,
    host: String,
    path: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    asset: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    iam_user: String,
    #[serde(default)]
    aws_account: String,
}

async fn post_placement(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<PlacementForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    let opt = |v: String| Some(v).filter(|v| !v.trim().is_empty());
    let key = f.access_key_id.clone();
    let request = PlacementRequest {
        access_key_id: f.access_key_id,
        host: f.host,
        path: f.path,
        owner: opt(f.owner),
        asset: opt(f.asset),
        serial: opt(f.serial),
        format: opt(f.format),
        instance_id: opt(f.instance_id),
        iam_user: opt(f.iam_user),
        aws_account: opt(f.aws_account),
        ..PlacementRequest::default()
    };
    redirect(s.ops.add_placement(&ui.0.actor, &request).await, |_| format!("/tokens/{key}"))
}

async fn post_remove_placement(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    redirect(s.ops.remove_placement(&ui.0.actor, id).await, |_| "/placements".to_string())
}

async fn alerting(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<PageQuery>) -> Response {
    if let Err(e) = c.require(Permission::Read) {
        return fail(e);
    }
    let result = async {
        Ok::<_, ApiError>((
            s.store.channels().await?,
            s.store.routes().await?,
            s.store.runbooks().await?,
            s.ops.delivery_page(&c.actor, "dead", None, &q.cursor).await?,
        ))
    }
    .await;
    let (channels, routes, runbooks, dead) = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(&c);
    render(
        "alerting.html",
        serde_json::json!({"title": "Alerting", "me": me, "csrf": csrf, "channels": channels, "routes": routes, "runbooks": runbooks, "dead": dead.items, "next": next_link("/channels", &[], None, dead.next), "kinds": honeytrail_alert::ChannelConfig::KINDS, "default_runbook": honeytrail_alert::runbook::DEFAULT_TEMPLATE, "can_respond": c.role.allows(Permission::Respond), "is_admin": c.role == Role::Admin}),
    )
}

async fn post_channel_test(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    match s.ops.test_channel(&ui.0.actor, &name).await {
        Ok(()) => {
            message_page(StatusCode::OK, "Test alert sent", &format!("A test alert was delivered through {name}."))
        }
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
struct EnableForm {
    csrf: String,
    enabled: bool,
}

async fn post_channel_enabled(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<EnableForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    redirect(s.ops.update_channel(&ui.0.actor, &name, None, Some(f.enabled)).await, |_| "/channels".to_string())
}

#[derive(Deserialize)]
struct ChannelForm {
    csrf: String,
    name: String,
    kind: String,
    config: String,
}

async fn post_channel(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<ChannelForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    let result = async {
        let value: Value = serde_json::from_str(&f.config)
            .map_err(|e| ApiError::bad_request(format!("the configuration is not valid JSON: {e}")))?;
        s.ops.create_channel(&ui.0.actor, &f.name, &f.kind, &value).await.map(|_| ()).map_err(ApiError::from)
    }
    .await;
    result.map(|()| back("/channels")).unwrap_or_else(fail)
}

#[derive(Deserialize)]
struct RouteForm {
    csrf: String,
    name: String,
    channels: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    min_severity: String,
    #[serde(default)]
    default: Option<String>,
    /// Context conditions that must hold (`network=corp, tool=*`).
    #[serde(default, rename = "if")]
    when: String,
    #[serde(default)]
    unless: String,
}

async fn post_route(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<RouteForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    let opt = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let result = async {
        let min_severity = opt(&f.min_severity)
            .map(|v| v.parse())
            .transpose()
            .map_err(|e: honeytrail_core::Invalid| ApiError::bad_request(e.0))?;
        let route = honeytrail_core::route::Route {
            name: f.name.trim().to_string(),
            channels: f.channels.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(),
            label: honeytrail_core::LabelFilter::parse(&f.label)
                .map_err(|e| ApiError::bad_request(e.0))?
                .map(|l| (l.name, l.value)),
            owner: opt(&f.owner),
            host: opt(&f.host),
            states: Vec::new(),
            min_severity,
            default: f.default.is_some(),
            when: honeytrail_core::enrich::parse_conditions(&[&f.when]).map_err(|e| ApiError::bad_request(e.0))?,
            unless: honeytrail_core::enrich::parse_conditions(&[&f.unless]).map_err(|e| ApiError::bad_request(e.0))?,
        };
        s.ops.add_route(&ui.0.actor, &route).await.map_err(ApiError::from)
    }
    .await;
    result.map(|()| back("/channels")).unwrap_or_else(fail)
}

async fn post_route_test(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    match s.ops.test_route(&ui.0.actor, &name).await {
        Ok(_) => message_page(
            StatusCode::OK,
            "Test alerts sent",
            &format!("A test alert went through every channel of {name}."),
        ),
        Err(e) => fail(e),
    }
}

async fn post_remove_route(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    s.ops.remove_route(&ui.0.actor, &name).await.map(|()| back("/channels")).unwrap_or_else(fail)
}

#[derive(Deserialize)]
struct RunbookForm {
    csrf: String,
    name: String,
    selector: String,
    template: String,
}

async fn post_runbook(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<RunbookForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    let result = s.ops.set_runbook(&ui.0.actor, &f.name, &f.selector, &f.template).await.map(|_| ());
    result.map(|()| back("/channels")).unwrap_or_else(fail)
}

async fn post_retry(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    s.ops.retry_delivery(&ui.0.actor, id).await.map(|_| back("/channels")).unwrap_or_else(fail)
}

async fn users_view(s: &Shared, c: &Caller, created: Option<(Value, String)>, cursor: &Option<String>) -> Response {
    let users = match s.ops.user_page(&c.actor, None, cursor).await {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(c);
    let (created, password) = match created {
        Some((u, p)) => (Some(u), Some(p)),
        None => (None, None),
    };
    render(
        "users.html",
        serde_json::json!({"title": "Users", "me": me, "csrf": csrf, "users": users.items, "next": next_link("/users", &[], None, users.next), "created": created, "password": password}),
    )
}

async fn users(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<PageQuery>) -> Response {
    if let Err(e) = c.require(Permission::Administer) {
        return fail(e);
    }
    users_view(&s, &c, None, &q.cursor).await
}

/// Where a page of a UI list starts.
#[derive(Deserialize, Default)]
struct PageQuery {
    cursor: Option<String>,
}

#[derive(Deserialize)]
struct UserForm {
    csrf: String,
    name: String,
    role: String,
}

async fn post_user(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<UserForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    match s.ops.add_user(&ui.0.actor, &f.name, &f.role).await {
        Ok(created) => users_view(&s, &ui.0, Some((json!(created.user), created.one_time_password)), &None).await,
        Err(e) => fail(e),
    }
}

async fn api_tokens_view(s: &Shared, c: &Caller, created: Option<(honeytrail_store::ApiToken, String)>) -> Response {
    let owner = if c.role == Role::Admin { None } else { Some(c.user.name.as_str()) };
    let tokens = match s.store.api_tokens(owner).await {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let roles: Vec<&str> = Role::ALL.iter().filter(|r| r.within(c.user.role)).map(|r| r.as_str()).collect();
    let (me, csrf) = base(c);
    let (created, secret) = match created {
        Some((t, secret)) => (Some(t), Some(secret)),
        None => (None, None),
    };
    render(
        "api_tokens.html",
        serde_json::json!({"title": "API tokens", "me": me, "csrf": csrf, "tokens": tokens, "roles": roles, "created": created, "secret": secret}),
    )
}

async fn api_tokens(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    api_tokens_view(&s, &c, None).await
}

#[derive(Deserialize)]
struct TokenForm {
    csrf: String,
    name: String,
    role: String,
}

async fn post_api_token(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<TokenForm>) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    match s.ops.create_api_token(&ui.0.actor, &ui.0.user.name, &f.name, Some(&f.role)).await {
        Ok(created) => api_tokens_view(&s, &ui.0, Some(created)).await,
        Err(e) => fail(e),
    }
}

async fn post_revoke(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    redirect(s.ops.revoke_api_token(&ui.0.actor, id).await, |_| "/api-tokens".to_string())
}

async fn enrolments_view(
    s: &Shared,
    c: &Caller,
    created: Option<(honeytrail_store::EnrolmentSecret, String)>,
) -> Response {
    let all = match s.ops.enrolments(&c.actor).await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let now = chrono::Utc::now();
    let rows: Vec<Value> = all
        .iter()
        .map(|e| {
            let mut v = json!(e);
            v["state"] = json!(e.state(now));
            v["labels_text"] = json!(honeytrail_core::model::labels_text(&e.labels));
            v["allowed_text"] = json!(e.guard.allowed_from.join(", "));
            v["ec2_text"] = json!(e.guard.ec2_accounts.join(", "));
            v
        })
        .collect();
    let templates: Vec<String> = match s.ops.templates(&c.actor).await {
        Ok(t) => t.into_iter().map(|t| t.name).collect(),
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(c);
    let (created, secret) = match created {
        Some((e, secret)) => (Some(e), Some(secret)),
        None => (None, None),
    };
    render(
        "enrollments.html",
        json!({"title": "Enrolment", "me": me, "csrf": csrf, "enrollments": rows, "templates": templates, "created": created, "secret": secret}),
    )
}

async fn enrolments(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    enrolments_view(&s, &c, None).await
}

#[derive(Deserialize)]
struct EnrolmentForm {
    csrf: String,
    #[serde(default)]
    uses: String,
    #[serde(default)]
    unlimited: Option<String>,
    expires: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    template: String,
    /// Networks, separated by commas, spaces or lines.
    #[serde(default)]
    allowed_from: String,
    #[serde(default)]
    expected: String,
    /// Accounts whose EC2 instances may enrol; given, the secret is bound to EC2.
    #[serde(default)]
    ec2_accounts: String,
}

/// Items typed together in one field: separated by commas, spaces or lines.
fn items(field: &str) -> Vec<String> {
    field.split([',', ' ', '\n', '\r', '\t']).filter(|i| !i.is_empty()).map(String::from).collect()
}

async fn post_enrolment(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<EnrolmentForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    let uses = match f.uses.trim() {
        "" => None,
        n => match n.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return fail(honeytrail_app::OpError::invalid(format!("\"{n}\" is not a number of uses"))),
        },
    };
    // Labels typed together (`fleet=web, env=prod`); the operation checks them.
    let labels = f.labels.split([',', '\n']).map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    let expected = match f.expected.trim() {
        "" => None,
        n => match n.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return fail(honeytrail_app::OpError::invalid(format!("\"{n}\" is not a number of hosts"))),
        },
    };
    let ec2_accounts = items(&f.ec2_accounts);
    let request = honeytrail_app::ops::fleet::EnrolmentSecretRequest {
        uses,
        unlimited: f.unlimited.is_some(),
        expires: f.expires,
        labels,
        template: Some(f.template),
        allowed_from: items(&f.allowed_from),
        expected,
        bind: (!ec2_accounts.is_empty()).then(|| "ec2".to_string()),
        ec2_accounts,
    };
    match s.ops.create_enrolment(&ui.0.actor, request).await {
        Ok(created) => enrolments_view(&s, &ui.0, Some(created)).await,
        Err(e) => fail(e),
    }
}

async fn post_enrolment_revoke(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    redirect(s.ops.revoke_enrolment(&ui.0.actor, id).await, |_| "/enrollments".to_string())
}

async fn fleet(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    let agents = match s.ops.agents(&c.actor).await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let pool = match s.ops.pool_state().await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let rows: Vec<Value> = agents
        .iter()
        .map(|a| {
            let mut v = a.json();
            v["open_command"] = json!(a.commands.iter().any(|c| c.open()));
            v
        })
        .collect();
    let stale = s.config().fleet.stale_after_seconds;
    let stale_after = if stale % 3600 == 0 { format!("{} h", stale / 3600) } else { format!("{stale} s") };
    let (me, csrf) = base(&c);
    render(
        "fleet.html",
        json!({"title": "Fleet", "me": me, "csrf": csrf, "agents": rows, "stale_after": stale_after,
               "can_respond": c.actor.role.allows(Permission::Respond),
               "pool": {"size": pool.size, "target": pool.target, "iam_users": pool.iam_users, "quota": pool.quota, "warning": pool.warning}}),
    )
}

#[derive(Deserialize)]
struct DeployQuery {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    secret_name: Option<String>,
    #[serde(default)]
    service_name: Option<String>,
}

async fn deploy(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<DeployQuery>) -> Response {
    use honeytrail_core::snippet::{SnippetKind, DEFAULT_SECRET_NAME, DEFAULT_SERVICE_NAME};
    let kind = q.kind.unwrap_or_else(|| "cloud-init".into());
    let secret_name = q.secret_name.unwrap_or_else(|| DEFAULT_SECRET_NAME.into());
    let service_name = q.service_name.unwrap_or_else(|| DEFAULT_SERVICE_NAME.into());
    let rendered = match SnippetKind::parse(&kind) {
        Ok(k) => s.ops.snippet(&c.actor, k, &secret_name, &service_name).await,
        Err(e) => Err(e.into()),
    };
    let (snippet, error) = match rendered {
        Ok(text) => (Some(text), None),
        Err(e) if e.kind == honeytrail_app::OpErrorKind::Forbidden => return fail(e),
        Err(e) => (None, Some(e.message)),
    };
    let kinds: Vec<&str> = SnippetKind::ALL.iter().map(|k| k.as_str()).collect();
    let (me, csrf) = base(&c);
    render(
        "deploy.html",
        json!({"title": "Deploy", "me": me, "csrf": csrf, "kinds": kinds, "kind": kind, "secret_name": secret_name,
               "service_name": service_name, "snippet": snippet, "error": error, "server": s.config().serve.public_url(),
               "can_respond": c.actor.role.allows(Permission::Respond)}),
    )
}

/// The Deploy page's Lambda form.
#[derive(Deserialize)]
struct LambdaForm {
    csrf: String,
    function: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    remove: Option<String>,
}

fn given(field: String) -> Option<String> {
    let t = field.trim();
    (!t.is_empty()).then(|| t.to_string())
}

async fn post_deploy_lambda(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<LambdaForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    let r = honeytrail_app::ops::deploy::LambdaRequest {
        function: f.function,
        region: given(f.region),
        account: given(f.account),
        profile: None,
        key: given(f.key),
    };
    if f.remove.is_some() {
        redirect(s.ops.remove_lambda(&ui.0.actor, &r).await, |d| format!("/tokens/{}", d.access_key_id))
    } else {
        redirect(s.ops.deploy_lambda(&ui.0.actor, &r).await, |d| format!("/tokens/{}", d.access_key_id))
    }
}

/// The Deploy page's mailbox form; the password is used once, kept nowhere.
#[derive(Deserialize)]
struct MailboxForm {
    csrf: String,
    imap_url: String,
    user: String,
    password: String,
    folder: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    ca_pem: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    remove: Option<String>,
}

async fn post_deploy_mailbox(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<MailboxForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    let body = crate::fleet::MailboxBody {
        imap_url: f.imap_url,
        user: f.user,
        password: f.password,
        folder: f.folder,
        address: Some(f.address),
        ca_pem: Some(f.ca_pem),
        key: Some(f.key),
        remove: f.remove.is_some(),
    };
    let (r, remove) = body.request();
    if remove {
        redirect(s.ops.remove_mailbox(&ui.0.actor, &r).await, |d| format!("/tokens/{}", d.access_key_id))
    } else {
        redirect(s.ops.deploy_mailbox(&ui.0.actor, &r).await, |d| format!("/tokens/{}", d.access_key_id))
    }
}

async fn post_agent_command(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path((id, kind)): Path<(i64, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    let Some(kind) = honeytrail_core::fleet::CommandKind::parse(&kind) else {
        return fail(honeytrail_app::OpError::not_found(format!("agent command {kind}")));
    };
    redirect(s.ops.command_agent(&ui.0.actor, id, kind).await, |_| "/fleet".to_string())
}

async fn audit(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<PageQuery>) -> Response {
    let entries = match s.ops.audit_page(&c.actor, None, &q.cursor).await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let next = next_link("/audit", &[], None, entries.next);
    let (me, csrf) = base(&c);
    render(
        "audit.html",
        serde_json::json!({"title": "Audit log", "me": me, "csrf": csrf, "entries": entries.items, "next": next}),
    )
}

/// Every event of an incident, a page at a time.
async fn incident_events(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Response {
    let events = match s.ops.event_page(&c.actor, id, None, &q.cursor).await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let next = next_link(&format!("/incidents/{id}/events"), &[], None, events.next);
    let (me, csrf) = base(&c);
    render(
        "events.html",
        serde_json::json!({"title": format!("Incident #{id}: events"), "me": me, "csrf": csrf, "id": id, "events": events.items, "next": next}),
    )
}

async fn audit_csv(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    let result = async {
        c.require(Permission::Administer)?;
        api::audit_csv(&s.ops.audit_log(&c.actor, 100_000).await?)
    }
    .await;
    result.unwrap_or_else(fail)
}

async fn lookup_page(UiCaller(c): UiCaller) -> Response {
    let (me, csrf) = base(&c);
    render("lookup.html", serde_json::json!({"title": "What is this?", "me": me, "csrf": csrf}))
}

#[derive(Deserialize)]
struct LookupForm {
    csrf: String,
    text: String,
    #[serde(default)]
    found_at: String,
}

async fn post_lookup(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<LookupForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Lookup) {
        return r;
    }
    let (me, csrf) = base(&ui.0);
    match s.ops.lookup(&ui.0.actor, &f.text, &f.found_at).await {
        Ok(result) => render(
            "lookup.html",
            serde_json::json!({"title": "What is this?", "me": me, "csrf": csrf, "result": result}),
        ),
        Err(e) if e.kind == honeytrail_app::OpErrorKind::Invalid => page(
            StatusCode::BAD_REQUEST,
            crate::web::render(
                "lookup.html",
                serde_json::json!({"title": "What is this?", "me": me, "csrf": csrf, "error": e.message}),
            ),
        ),
        Err(e) => fail(e),
    }
}

/// Runs as the pages show them, with the buttons each one allows.
fn run_rows(runs: &[honeytrail_store::ActionRun]) -> Vec<Value> {
    use honeytrail_core::action::RunState;
    runs.iter()
        .map(|r| {
            let mut row = json!(r);
            row["can_approve"] = json!(RunState::APPROVABLE.contains(&r.state));
            row["can_cancel"] = json!(r.state.pending());
            row["can_undo"] = json!(r.kind.undoable() && r.state.undoable());
            row
        })
        .collect()
}

/// Actions as the Response page lists them: conditions and targets spelled out.
fn action_rows(actions: &[honeytrail_store::Action]) -> Vec<Value> {
    actions
        .iter()
        .map(|a| {
            let t = &a.settings;
            let target: Vec<String> = [
                ("account", &t.account),
                ("region", &t.region),
                ("role", &t.role_arn),
                ("instance", &t.instance_id),
                ("IAM user", &t.iam_user),
                ("IAM role", &t.iam_role),
                ("quarantine group", &t.quarantine_group),
                ("policy", &t.policy_arn),
            ]
            .into_iter()
            .filter_map(|(what, v)| v.as_ref().map(|v| format!("{what} {v}")))
            .chain((!t.command.is_empty()).then(|| format!("runs {}", t.command.join(" "))))
            .collect();
            let conditions: Vec<String> = a
                .trigger
                .when
                .iter()
                .map(|c| format!("if {c}"))
                .chain(a.trigger.unless.iter().map(|c| format!("unless {c}")))
                .chain(a.trigger.allow_own_network.then(|| "also from our own networks".to_string()))
                .collect();
            json!({"name": a.name, "kind": a.kind.as_str(), "mode": a.trigger.mode.to_string(), "route": a.route,
                "conditions": conditions, "target": target, "sealed": a.has_secret, "created_by": a.created_by})
        })
        .collect()
}

async fn actions_page(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<RunsQuery>) -> Response {
    let result = async {
        let actions = s.ops.list_actions(&c.actor).await?;
        let runs = s.ops.action_runs(&c.actor, None, q.state.as_deref()).await?;
        Ok::<_, honeytrail_app::OpError>((actions, runs))
    }
    .await;
    let (actions, runs) = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let runs = run_rows(&runs[..runs.len().min(RUNS_SHOWN)]);
    let kinds: Vec<&str> = honeytrail_core::action::ActionKind::ALL
        .into_iter()
        .filter(|k| *k != honeytrail_core::action::ActionKind::Command)
        .map(|k| k.as_str())
        .collect();
    let states: Vec<&str> = honeytrail_core::action::RunState::ALL.iter().map(|s| s.as_str()).collect();
    let (me, csrf) = base(&c);
    render(
        "actions.html",
        json!({"title": "Response", "me": me, "csrf": csrf, "actions": action_rows(&actions), "runs": runs,
            "kinds": kinds, "states": states, "from_incident": false, "state": q.state.unwrap_or_default(),
            "can_respond": c.role.allows(Permission::Respond), "can_administer": c.role.allows(Permission::Administer)}),
    )
}

/// The runs the Response page shows, newest first.
const RUNS_SHOWN: usize = 200;

#[derive(Deserialize)]
struct RunsQuery {
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
    name: String,
    kind: String,
    mode: String,
    #[serde(default)]
    route: String,
    #[serde(default)]
    when: String,
    #[serde(default)]
    unless: String,
    #[serde(default)]
    allow_own_network: Option<String>,
    #[serde(default)]
    role_arn: String,
    #[serde(default)]
    account: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    iam_user: String,
    #[serde(default)]
    iam_role: String,
    #[serde(default)]
    quarantine_group: String,
    #[serde(default)]
    policy_arn: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    secret: String,
}

async fn post_action(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<ActionForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    let request = honeytrail_app::ops::ActionRequest {
        name: f.name,
        kind: f.kind,
        mode: f.mode,
        route: given(f.route),
        // The operation splits a comma-separated field and checks each condition.
        when: vec![f.when],
        unless: vec![f.unless],
        allow_own_network: f.allow_own_network.is_some(),
        role_arn: given(f.role_arn),
        account: given(f.account),
        region: given(f.region),
        instance_id: given(f.instance_id),
        iam_user: given(f.iam_user),
        iam_role: given(f.iam_role),
        quarantine_group: given(f.quarantine_group),
        policy_arn: given(f.policy_arn),
        url: given(f.url),
        secret: given(f.secret),
        ..Default::default()
    };
    redirect(s.ops.add_action(&ui.0.actor, &request).await, |_| "/actions".into())
}

#[derive(Deserialize)]
struct ModeForm {
    csrf: String,
    mode: String,
}

async fn post_action_mode(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<ModeForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    redirect(s.ops.set_action_mode(&ui.0.actor, &name, &f.mode).await, |_| "/actions".into())
}

async fn post_action_remove(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    redirect(s.ops.remove_action(&ui.0.actor, &name).await, |_| "/actions".into())
}

#[derive(Deserialize)]
struct RunForm {
    csrf: String,
    /// Back to the incident's page rather than the Response page.
    #[serde(default)]
    from_incident: Option<String>,
}

/// Approve, cancel or undo a run; back where the button was.
async fn post_run(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path((id, verb)): Path<(i64, String)>,
    Form(f): Form<RunForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    let actor = &ui.0.actor;
    let done = match verb.as_str() {
        "approve" => s.ops.approve_run(actor, id).await,
        "cancel" => s.ops.cancel_run(actor, id).await,
        "undo" => s.ops.undo_action_run(actor, id).await,
        _ => return message_page(StatusCode::NOT_FOUND, "Not found", "a run can be approved, cancelled or undone"),
    };
    let to_incident = f.from_incident.is_some();
    redirect(done, |run| if to_incident { format!("/incidents/{}", run.incident_id) } else { "/actions".into() })
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(dashboard))
        .route("/incidents", get(incidents))
        .route("/incidents/{id}", get(incident))
        .route("/incidents/{id}/events", get(incident_events))
        .route("/incidents/{id}/state", post(post_state))
        .route("/incidents/{id}/notes", post(post_note))
        .route("/tokens", get(tokens))
        .route("/tokens/import", post(post_import))
        .route("/tokens/mint", post(post_mint))
        .route("/tokens/{key}", get(token))
        .route("/tokens/{key}/bait", post(post_bait))
        .route("/tokens/{key}/retire", post(post_retire))
        .route("/placements", get(placements).post(post_placement))
        .route("/placements.csv", get(placements_csv))
        .route("/placements/{id}/remove", post(post_remove_placement))
        .route("/channels", get(alerting).post(post_channel))
        .route("/channels/{name}/test", post(post_channel_test))
        .route("/channels/{name}/enabled", post(post_channel_enabled))
        .route("/routes", post(post_route))
        .route("/routes/{name}/remove", post(post_remove_route))
        .route("/routes/{name}/test", post(post_route_test))
        .route("/runbooks", post(post_runbook))
        .route("/deliveries/{id}/retry", post(post_retry))
        .route("/users", get(users).post(post_user))
        .route("/api-tokens", get(api_tokens).post(post_api_token))
        .route("/api-tokens/{id}/revoke", post(post_revoke))
        .route("/enrollments", get(enrolments).post(post_enrolment))
        .route("/fleet", get(fleet))
        .route("/deploy", get(deploy))
        .route("/deploy/lambda", post(post_deploy_lambda))
        .route("/deploy/mailbox", post(post_deploy_mailbox))
        .route("/fleet/agents/{id}/{kind}", post(post_agent_command))
        .route("/enrollments/{id}/revoke", post(post_enrolment_revoke))
        .route("/actions", get(actions_page).post(post_action))
        .route("/actions/{name}/mode", post(post_action_mode))
        .route("/actions/{name}/remove", post(post_action_remove))
        .route("/actions/runs/{id}/{verb}", post(post_run))
        .route("/audit", get(audit))
        .route("/audit.csv", get(audit_csv))
        .route("/lookup", get(lookup_page).post(post_lookup))
}

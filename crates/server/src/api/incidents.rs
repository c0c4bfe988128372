//! `/incidents…`: list, read, move through their states, add notes; and
//! `/me`, who is asking.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use honeytrail_app::ops::{IncidentQuery, NoteRequest, StateChange};
use serde_json::json;

use super::{created, ok, page, ApiResult, Body, PageQuery};
use crate::auth::{ApiCaller, ResponderCaller};
use crate::Shared;

pub(super) async fn me(ApiCaller(c): ApiCaller) -> ApiResult {
    ok(json!({"user": c.user, "role": c.role, "csrf_token": c.csrf}))
}

pub(super) async fn list_incidents(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<IncidentQuery>,
) -> ApiResult {
    page("/incidents", uri.query().unwrap_or(""), s.ops.incident_page(&c.actor, &q).await?)
}

pub(super) async fn get_incident(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.incident_record(&c.actor, id).await?)
}

pub(super) async fn list_incident_events(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
    uri: axum::http::Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    let path = format!("/incidents/{id}/events");
    page(&path, uri.query().unwrap_or(""), s.ops.event_page(&c.actor, id, q.limit, &q.cursor).await?)
}

pub(super) async fn post_state(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
    Body(r): Body<StateChange>,
) -> ApiResult {
    ok(s.ops.change_state(&c.actor, id, &r).await?)
}

pub(super) async fn post_note(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
    Body(r): Body<NoteRequest>,
) -> ApiResult {
    let note = s.ops.add_note(&c.actor, id, &r).await?;
    created(json!({"incident": id, "note": note}))
}

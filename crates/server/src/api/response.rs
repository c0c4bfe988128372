//! `/actions…`: automated response — actions, their runs, approve, cancel
//! and undo.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use honeytrail_app::ops::ActionRequest;
use serde::Deserialize;
use serde_json::json;

use super::{created, ok, ApiResult, Body};
use crate::auth::{AdminCaller, ApiCaller, ResponderCaller};
use crate::Shared;

pub(super) async fn list_actions(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.list_actions(&c.actor).await?)
}

pub(super) async fn post_action(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<ActionRequest>,
) -> ApiResult {
    created(s.ops.add_action(&c.actor, &r).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModeRequest {
    mode: String,
}

pub(super) async fn put_action(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
    Body(r): Body<ModeRequest>,
) -> ApiResult {
    ok(s.ops.set_action_mode(&c.actor, &name, &r.mode).await?)
}

pub(super) async fn delete_action(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
) -> ApiResult {
    s.ops.remove_action(&c.actor, &name).await?;
    ok(json!({"removed": name}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RunQuery {
    incident: Option<i64>,
    state: Option<String>,
}

pub(super) async fn list_action_runs(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<RunQuery>,
) -> ApiResult {
    ok(s.ops.action_runs(&c.actor, q.incident, q.state.as_deref()).await?)
}

pub(super) async fn get_action_run(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.action_run(&c.actor, id).await?)
}

pub(super) async fn post_run_approve(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.approve_run(&c.actor, id).await?)
}

pub(super) async fn post_run_cancel(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.cancel_run(&c.actor, id).await?)
}

pub(super) async fn post_run_undo(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.undo_action_run(&c.actor, id).await?)
}

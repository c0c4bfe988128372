//! Decoy resources (`/api/v1/decoys…`): plan, apply, list, remove.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use honeytrail_app::ops::{DecoyPlan, DecoyPlanRequest};
use serde::Deserialize;

use super::{created, ok, ApiResult, Body};
use crate::auth::ApiCaller;
use crate::Shared;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DecoyQuery {
    /// Removed decoys too.
    #[serde(default)]
    all: bool,
}

pub(super) async fn list_decoys(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<DecoyQuery>,
) -> ApiResult {
    ok(s.ops.decoy_list(&c.actor, q.all).await?)
}

/// `POST /decoys/plan`: names only; nothing is made.
pub(super) async fn post_decoy_plan(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Body(r): Body<DecoyPlanRequest>,
) -> ApiResult {
    ok(s.ops.decoy_plan(&c.actor, &r).await?)
}

/// `POST /decoys`: makes a plan's decoys in the canary account.
pub(super) async fn post_decoys(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Body(plan): Body<DecoyPlan>,
) -> ApiResult {
    created(s.ops.decoy_apply(&c.actor, &plan).await?)
}

pub(super) async fn delete_decoy(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.decoy_remove(&c.actor, id).await?)
}

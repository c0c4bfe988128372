//! `/placements…`: where tokens sit; a page, a CSV export, add, remove.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use honeytrail_app::ops::{PlacementQuery, PlacementRequest};

use super::{attachment, created, ok, page, ApiResult, Body};
use crate::auth::{ApiCaller, ResponderCaller};
use crate::Shared;

pub(super) async fn list_placements(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<PlacementQuery>,
) -> ApiResult {
    page("/placements", uri.query().unwrap_or(""), s.ops.placement_page(&c.actor, &q).await?)
}

pub(super) async fn get_placements_csv(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<PlacementQuery>,
) -> ApiResult {
    attachment("text/csv; charset=utf-8", "placements.csv", s.ops.placements_csv(&c.actor, &q).await?)
}

pub(super) async fn post_placement(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<PlacementRequest>,
) -> ApiResult {
    created(s.ops.add_placement(&c.actor, &r).await?)
}

pub(super) async fn delete_placement(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.remove_placement(&c.actor, id).await?)
}

//! `/channels…`, `/routes…`, `/runbooks…`, `/deliveries…`: where alerts go,
//! what responders read in them, and what could not be delivered.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use honeytrail_app::ops::{ChannelRequest, RunbookRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{created, ok, page, ApiResult, Body};
use crate::auth::{AdminCaller, ApiCaller};
use crate::Shared;

pub(super) async fn list_channels(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.channels(&c.actor).await?)
}

pub(super) async fn post_channel(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<ChannelRequest>,
) -> ApiResult {
    created(s.ops.add_channel(&c.actor, &r).await?.channel)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChannelUpdate {
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    enabled: Option<bool>,
}

pub(super) async fn put_channel(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
    Body(r): Body<ChannelUpdate>,
) -> ApiResult {
    ok(s.ops.update_channel(&c.actor, &name, r.config.as_ref(), r.enabled).await?)
}

pub(super) async fn post_channel_test(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult {
    s.ops.test_channel(&c.actor, &name).await?;
    ok(json!({"channel": name, "delivered": true}))
}

pub(super) async fn list_routes(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.routes(&c.actor).await?)
}

pub(super) async fn post_route(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<honeytrail_core::route::Route>,
) -> ApiResult {
    s.ops.add_route(&c.actor, &r).await?;
    created(r)
}

pub(super) async fn post_route_test(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult {
    ok(s.ops.test_route(&c.actor, &name).await?)
}

pub(super) async fn delete_route(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult {
    s.ops.remove_route(&c.actor, &name).await?;
    ok(json!({"removed": name}))
}

pub(super) async fn list_runbooks(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.runbooks(&c.actor).await?)
}

pub(super) async fn put_runbook(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
    Body(r): Body<RunbookRequest>,
) -> ApiResult {
    ok(s.ops.set_runbook(&c.actor, &name, &r).await?)
}

pub(super) async fn delete_runbook(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult {
    s.ops.remove_runbook(&c.actor, &name).await?;
    ok(json!({"removed": name}))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DeliveryQuery {
    state: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub(super) async fn list_deliveries(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult {
    let state = q.state.as_deref().unwrap_or("dead");
    page("/deliveries", uri.query().unwrap_or(""), s.ops.delivery_page(&c.actor, state, q.limit, &q.cursor).await?)
}

pub(super) async fn post_delivery_retry(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.retry_delivery(&c.actor, id).await?)
}

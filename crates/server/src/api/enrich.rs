//! `/enrich…`: the data incident context is made from.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::json;

use super::{ok, ApiResult};
use crate::auth::{AdminCaller, ApiCaller, ApiError};
use crate::Shared;

pub(super) async fn get_enrich(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.enrich_status(&c.actor).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnrichLookupQuery {
    ip: Option<String>,
    user_agent: Option<String>,
}

pub(super) async fn get_enrich_lookup(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<EnrichLookupQuery>,
) -> ApiResult {
    ok(s.ops.enrich_lookup(&c.actor, q.ip.as_deref(), q.user_agent.as_deref()).await?)
}

/// The data set is the request body as it is (AWS's ip-ranges.json, a Tor
/// list), up to [`DATA_FILE_MAX`](honeytrail_core::enrich::DATA_FILE_MAX):
/// larger than other requests, so read here with its own limit.
pub(super) async fn put_enrich(
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

pub(super) async fn delete_enrich(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(kind): Path<String>,
) -> ApiResult {
    s.ops.enrich_remove(&c.actor, &kind).await?;
    ok(json!({"removed": kind}))
}

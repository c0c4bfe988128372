//! `/users`, `/api-tokens…`, `/audit`, `/lookup`: people, their tokens, the
//! audit log, and an employee's "what is this?".

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use honeytrail_app::ops::{ApiTokenRequest, LookupRequest, UserRequest};
use honeytrail_core::access::Permission;
use serde::Deserialize;

use super::{attachment, created, ok, page, ApiResult, Body, PageQuery};
use crate::auth::{AdminCaller, ApiCaller, ApiError};
use crate::Shared;

pub(super) async fn list_users(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult {
    page("/users", uri.query().unwrap_or(""), s.ops.user_page(&c.actor, q.limit, &q.cursor).await?)
}

pub(super) async fn post_user(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<UserRequest>,
) -> ApiResult {
    created(s.ops.add_user(&c.actor, &r).await?)
}

pub(super) async fn list_api_tokens(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.api_tokens(&c.actor).await?)
}

pub(super) async fn post_api_token(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Body(r): Body<ApiTokenRequest>,
) -> ApiResult {
    created(s.ops.create_api_token(&c.actor, &c.user.name, &r).await?)
}

pub(super) async fn delete_api_token(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.revoke_api_token(&c.actor, id).await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    format: Option<String>,
}

pub(super) async fn get_audit(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    uri: axum::http::Uri,
    Query(q): Query<AuditQuery>,
) -> ApiResult {
    c.require(Permission::Administer)?;
    match q.format.as_deref() {
        // An export: the newest `limit` entries (1 000 unless asked) in one file.
        Some("csv") => attachment(
            "text/csv; charset=utf-8",
            "audit.csv",
            s.ops.audit_csv(&c.actor, q.limit.unwrap_or(1000)).await?,
        ),
        None | Some("json") => {
            page("/audit", uri.query().unwrap_or(""), s.ops.audit_page(&c.actor, q.limit, &q.cursor).await?)
        }
        Some(other) => Err(ApiError::bad_request(format!("unknown format {other:?}; use json or csv"))),
    }
}

pub(super) async fn get_cluster(State(s): State<Arc<Shared>>, AdminCaller(c): AdminCaller) -> ApiResult {
    ok(s.ops.cluster_status(&c.actor).await?)
}

pub(super) async fn post_lookup(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Body(r): Body<LookupRequest>,
) -> ApiResult {
    ok(s.ops.lookup(&c.actor, &r).await?)
}

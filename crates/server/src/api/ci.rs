//! CI canaries (`/api/v1/ci/…`). A run opens with an enrolment secret as
//! `Authorization: Bearer …` and closes with the close token it was given;
//! both are open to anyone who can reach the server, so refusals are counted
//! per address and held back like the enrolment's. Reading runs is a user's
//! call like any other.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use honeytrail_app::ops::CiRunQuery;
use honeytrail_core::ci::CiRunRequest;

use super::fleet::From;
use super::{created, ok, ApiResult, Body};
use crate::auth::{ApiCaller, ApiError};
use crate::Shared;

/// The bearer credential of an unauthenticated caller (a run's enrolment
/// secret or close token), with its address.
pub struct RunCaller {
    from: String,
    bearer: String,
}

impl FromRequestParts<Arc<Shared>> for RunCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        let From(from) = From::from_request_parts(parts, s).await?;
        if let Some(held) = s.held_back(&from) {
            return Err(held);
        }
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        match bearer {
            Some(bearer) => Ok(RunCaller { from, bearer }),
            None => {
                s.refused(&from);
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "send the enrolment secret (to open a run) or the run's close token (to close it) as Authorization: Bearer …",
                ))
            }
        }
    }
}

/// A refusal of an unauthenticated run call, counted against its address.
fn counted(s: &Shared, from: &str, e: honeytrail_app::OpError) -> ApiError {
    if matches!(e.code, "enrollment_refused" | "forbidden") {
        s.refused(from);
        tracing::warn!(from = %from, reason = %e.message, "a CI run call was refused");
    }
    e.into()
}

/// `POST /ci/runs`: a CI run takes its key and opens its window.
pub(super) async fn post_ci_run(
    State(s): State<Arc<Shared>>,
    caller: RunCaller,
    Body(r): Body<CiRunRequest>,
) -> ApiResult {
    let opened = s.ops.open_ci_run(&caller.bearer, &r, &caller.from).await.map_err(|e| counted(&s, &caller.from, e))?;
    created(opened)
}

/// `POST /ci/runs/{id}/close`: the run's end closes its window.
pub(super) async fn post_ci_close(State(s): State<Arc<Shared>>, caller: RunCaller, Path(id): Path<i64>) -> ApiResult {
    ok(s.ops.close_ci_run(id, &caller.bearer, &caller.from).await.map_err(|e| counted(&s, &caller.from, e))?)
}

pub(super) async fn list_ci_runs(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<CiRunQuery>,
) -> ApiResult {
    ok(s.ops.ci_runs(&c.actor, &q).await?)
}

pub(super) async fn get_ci_run(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.ci_run(&c.actor, id).await?)
}

/// `/ci/honeytrail-ci.sh`: the script a CI job runs to open and close its
/// run. Open to anyone; it holds no secret.
pub async fn ci_script() -> Response {
    ([(header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8")], honeytrail_app::ops::ci::SCRIPT).into_response()
}

/// `/ci/gitlab.yml`: the GitLab CI template (`include: remote`).
pub async fn gitlab_template() -> Response {
    ([(header::CONTENT_TYPE, "text/yaml; charset=utf-8")], honeytrail_app::ops::ci::GITLAB_TEMPLATE).into_response()
}

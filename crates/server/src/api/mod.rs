//! The REST API under `/api/v1`: JSON in and out, errors as
//! `{"error": {"code", "message"}}`, described by `openapi.json` (served at
//! `/api/v1/openapi.json`; a test checks every route here is in it).
//!
//! Handlers only translate: each takes the caller, calls one operation of
//! `honeytrail_app::Ops` (which checks permission, validates and audits),
//! and answers its typed result or its `OpError` as JSON. One module per
//! subject, as in `honeytrail_app::ops`; the routes are declared once, at
//! the end of this file.

mod accounts;
mod alerting;
pub(crate) mod ci;
mod decoys;
mod enrich;
mod fleet;
mod incidents;
mod placements;
mod response;
mod tokens;
mod users;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::auth::ApiError;
use super::Shared;
use accounts::*;
use alerting::*;
use ci::*;
use decoys::*;
use enrich::*;
use fleet::*;
use incidents::*;
use placements::*;
use response::*;
use tokens::*;
use users::*;

pub use fleet::{agent_binary, install_script};

pub const OPENAPI: &str = include_str!("openapi.json");

type ApiResult = Result<Response, ApiError>;

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(Json(v).into_response())
}

fn created(v: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// A file to download: its type, its name and its bytes.
fn attachment(content_type: &'static str, file_name: &str, body: impl Into<axum::body::Body>) -> ApiResult {
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body.into(),
    )
        .into_response())
}

/// A page asked for: its size and where it starts.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<i64>,
    cursor: Option<String>,
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

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
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
    "/fleet/preflight" => post(post_preflight);
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
    "/ci/runs" => get(list_ci_runs) post(post_ci_run);
    "/ci/runs/{id}" => get(get_ci_run);
    "/ci/runs/{id}/close" => post(post_ci_close);
    "/decoys" => get(list_decoys) post(post_decoys);
    "/decoys/plan" => post(post_decoy_plan);
    "/decoys/{id}" => delete(delete_decoy);
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
    "/cluster" => get(get_cluster);
    "/accounts" => get(list_accounts) post(post_account);
    "/accounts/{name}" => delete(delete_account);
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

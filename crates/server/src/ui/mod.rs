//! The web UI: server-rendered pages (no JavaScript), one form per action,
//! each carrying the session's CSRF token. Every page reads and every form
//! changes through the same operation as the API (`api/`), so permissions
//! and audit are the same. One module per subject, as in
//! `honeytrail_app::ops`; the routes are declared once, at the end here.

mod accounts;
mod alerting;
mod decoys;
mod fleet;
mod incidents;
mod placements;
mod response;
mod tokens;
mod users;

use std::sync::Arc;

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use honeytrail_core::access::Permission;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::auth::{ApiError, Caller, UiCaller};
use super::{message_page, page, Shared};

pub(crate) fn fail(e: impl Into<ApiError>) -> Response {
    let e: ApiError = e.into();
    let title = match e.status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        _ => "That did not work",
    };
    message_page(e.status, title, &e.message)
}

pub(crate) fn render(name: &str, ctx: Value) -> Response {
    page(StatusCode::OK, crate::web::render(name, ctx))
}

pub(crate) fn back(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// After a change: on to the page `to` names, or the error as a page.
pub(crate) fn redirect<T, E: Into<ApiError>>(done: Result<T, E>, to: impl FnOnce(T) -> String) -> Response {
    match done {
        Ok(v) => back(&to(v)),
        Err(e) => fail(e),
    }
}

/// Checks the form's CSRF token and the permission, in that order.
pub(crate) fn guard(ui: &UiCaller, csrf: &str, p: Permission) -> Result<(), Response> {
    ui.check_csrf(csrf)?;
    ui.0.require(p).map_err(fail)
}

pub(crate) fn base(c: &Caller) -> (Value, Option<String>) {
    (serde_json::to_value(&c.user).unwrap_or_default(), c.csrf.clone())
}

/// A form of the UI: the session's CSRF token, and the rest read as the
/// operation's request type `T` (the same type the API takes as its JSON
/// body). Blank fields count as not given. Whether the rest fits is told
/// only after the token and the permission are checked ([`CsrfForm::checked`]).
pub(crate) struct CsrfForm<T> {
    csrf: String,
    value: Result<T, String>,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Form(pairs) = Form::<Vec<(String, String)>>::from_request(req, state)
            .await
            .map_err(|e| message_page(StatusCode::BAD_REQUEST, "That did not work", &e.body_text()))?;
        let mut csrf = String::new();
        let mut given = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            if name == "csrf" {
                csrf = value;
            } else if !value.trim().is_empty() {
                given.push((name, value));
            }
        }
        let value = serde_urlencoded::to_string(&given).map_err(|e| e.to_string()).and_then(|encoded| {
            serde_urlencoded::from_str::<T>(&encoded).map_err(|e| format!("the form does not fit: {e}"))
        });
        Ok(CsrfForm { csrf, value })
    }
}

impl<T> CsrfForm<T> {
    /// The request, after the form's CSRF token and the caller's permission
    /// were checked, in that order.
    fn checked(self, ui: &UiCaller, p: Permission) -> Result<T, Response> {
        guard(ui, &self.csrf, p)?;
        self.value.map_err(|e| fail(ApiError::bad_request(e)))
    }
}

/// A form that carries nothing but the CSRF token.
#[derive(Deserialize)]
struct TokenOnly {
    csrf: String,
}

/// Where a page of a UI list starts.
#[derive(Deserialize, Default)]
pub(crate) struct PageQuery {
    pub(crate) cursor: Option<String>,
}

/// The link to a list's next page: its path, the filters it was asked
/// with, a switch that was on (`unresolved=true`) and the cursor; `None` on
/// the last page.
pub(crate) fn next_link(
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

/// The guides the console links to, served from our own origin so a link
/// works on a server with no outside access.
const DOCS: &[(&str, &str)] = &[
    ("actions.md", include_str!("../../../../docs/actions.md")),
    ("alerts.md", include_str!("../../../../docs/alerts.md")),
    ("aws.md", include_str!("../../../../docs/aws.md")),
    ("enrichment.md", include_str!("../../../../docs/enrichment.md")),
    ("ci.md", include_str!("../../../../docs/ci.md")),
    ("decoys.md", include_str!("../../../../docs/decoys.md")),
    ("evidence.md", include_str!("../../../../docs/evidence.md")),
    ("fleet.md", include_str!("../../../../docs/fleet.md")),
    ("operations.md", include_str!("../../../../docs/operations.md")),
    ("scale.md", include_str!("../../../../docs/scale.md")),
];

async fn doc(UiCaller(c): UiCaller, axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let Some((name, text)) = DOCS.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = DOCS.iter().map(|(n, _)| *n).collect();
        return message_page(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("There is no guide by that name; the guides are {}.", known.join(", ")),
        );
    };
    let (me, csrf) = base(&c);
    render("doc.html", serde_json::json!({"title": name, "me": me, "csrf": csrf, "text": text}))
}

pub fn routes() -> Router<Arc<Shared>> {
    use self::alerting::*;
    use self::fleet::*;
    use self::incidents::*;
    use self::placements::*;
    use self::response::*;
    use self::tokens::*;
    use self::users::*;

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
        .route("/ci", get(ci_runs))
        .route("/decoys", get(decoys::decoys))
        .route("/decoys/plan", post(decoys::post_decoy_plan))
        .route("/decoys/apply", post(decoys::post_decoy_apply))
        .route("/decoys/{id}/remove", post(decoys::post_decoy_remove))
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
        .route("/cluster", get(cluster))
        .route("/accounts", get(accounts::accounts).post(accounts::post_account))
        .route("/accounts/{name}/remove", post(accounts::post_account_remove))
        .route("/lookup", get(lookup_page).post(post_lookup))
        .route("/docs/{name}", get(doc))
}

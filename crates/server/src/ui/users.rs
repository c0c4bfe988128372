//! People: users, API tokens, the audit log, and the employee's "what is
//! this?" page.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use honeytrail_app::ops::{ApiTokenRequest, LookupRequest, NewApiToken, UserRequest};
use honeytrail_app::OpErrorKind;
use honeytrail_core::access::{Permission, Role};
use serde_json::{json, Value};

use super::{base, fail, next_link, redirect, render, CsrfForm, PageQuery, TokenOnly};
use crate::auth::{Caller, UiCaller};
use crate::{page, Shared};

async fn users_view(s: &Shared, c: &Caller, created: Option<(Value, String)>, cursor: &Option<String>) -> Response {
    let users = match s.ops.user_page(&c.actor, None, cursor).await {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(c);
    let (created, password) = match created {
        Some((u, p)) => (Some(u), Some(p)),
        None => (None, None),
    };
    render(
        "users.html",
        json!({"title": "Users", "me": me, "csrf": csrf, "users": users.items, "next": next_link("/users", &[], None, users.next), "created": created, "password": password}),
    )
}

pub(super) async fn users(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<PageQuery>) -> Response {
    if let Err(e) = c.require(Permission::Administer) {
        return fail(e);
    }
    users_view(&s, &c, None, &q.cursor).await
}

pub(super) async fn post_user(State(s): State<Arc<Shared>>, ui: UiCaller, form: CsrfForm<UserRequest>) -> Response {
    let request = match form.checked(&ui, Permission::Administer) {
        Ok(r) => r,
        Err(page) => return page,
    };
    match s.ops.add_user(&ui.0.actor, &request).await {
        Ok(created) => users_view(&s, &ui.0, Some((json!(created.user), created.one_time_password)), &None).await,
        Err(e) => fail(e),
    }
}

async fn api_tokens_view(s: &Shared, c: &Caller, created: Option<NewApiToken>) -> Response {
    let tokens = match s.ops.api_tokens(&c.actor).await {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let roles: Vec<&str> = Role::ALL.iter().filter(|r| r.within(c.user.role)).map(|r| r.as_str()).collect();
    let (me, csrf) = base(c);
    let (created, secret) = match created {
        Some(t) => (Some(t.api_token), Some(t.token)),
        None => (None, None),
    };
    render(
        "api_tokens.html",
        json!({"title": "API tokens", "me": me, "csrf": csrf, "tokens": tokens, "roles": roles, "created": created, "secret": secret}),
    )
}

pub(super) async fn api_tokens(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    api_tokens_view(&s, &c, None).await
}

pub(super) async fn post_api_token(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    form: CsrfForm<ApiTokenRequest>,
) -> Response {
    let request = match form.checked(&ui, Permission::Lookup) {
        Ok(r) => r,
        Err(page) => return page,
    };
    match s.ops.create_api_token(&ui.0.actor, &ui.0.user.name, &request).await {
        Ok(created) => api_tokens_view(&s, &ui.0, Some(created)).await,
        Err(e) => fail(e),
    }
}

pub(super) async fn post_revoke(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    redirect(s.ops.revoke_api_token(&ui.0.actor, id).await, |_| "/api-tokens".to_string())
}

pub(super) async fn audit(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<PageQuery>) -> Response {
    let entries = match s.ops.audit_page(&c.actor, None, &q.cursor).await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let next = next_link("/audit", &[], None, entries.next);
    let (me, csrf) = base(&c);
    render("audit.html", json!({"title": "Audit log", "me": me, "csrf": csrf, "entries": entries.items, "next": next}))
}

pub(super) async fn audit_csv(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    match s.ops.audit_csv(&c.actor, 100_000).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"audit.csv\""),
            ],
            csv,
        )
            .into_response(),
        Err(e) => fail(e),
    }
}

/// The replicas and who runs which job (admins).
pub(super) async fn cluster(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    let status = match s.ops.cluster_status(&c.actor).await {
        Ok(st) => st,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(&c);
    render(
        "cluster.html",
        json!({"title": "Cluster", "me": me, "csrf": csrf, "replicas": status.replicas, "jobs": status.jobs,
            "lease_seconds": status.lease_seconds}),
    )
}

pub(super) async fn lookup_page(UiCaller(c): UiCaller) -> Response {
    let (me, csrf) = base(&c);
    render("lookup.html", json!({"title": "What is this?", "me": me, "csrf": csrf}))
}

pub(super) async fn post_lookup(State(s): State<Arc<Shared>>, ui: UiCaller, form: CsrfForm<LookupRequest>) -> Response {
    let request = match form.checked(&ui, Permission::Lookup) {
        Ok(r) => r,
        Err(page) => return page,
    };
    let (me, csrf) = base(&ui.0);
    match s.ops.lookup(&ui.0.actor, &request).await {
        Ok(result) => {
            render("lookup.html", json!({"title": "What is this?", "me": me, "csrf": csrf, "result": result}))
        }
        Err(e) if e.kind == OpErrorKind::Invalid => page(
            StatusCode::BAD_REQUEST,
            crate::web::render(
                "lookup.html",
                json!({"title": "What is this?", "me": me, "csrf": csrf, "error": e.message}),
            ),
        ),
        Err(e) => fail(e),
    }
}

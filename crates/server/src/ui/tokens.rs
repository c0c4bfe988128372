//! Tokens: the list with search, mint and import forms, a token's page,
//! bait to download or copy, retirement.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Form;
use honeytrail_app::ops::{ImportRequest, MintRequest, TokenQuery};
use honeytrail_core::access::Permission;
use serde::Deserialize;
use serde_json::json;

use super::{back, base, fail, guard, next_link, redirect, render, CsrfForm, TokenOnly};
use crate::auth::UiCaller;
use crate::Shared;

pub(super) async fn tokens(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Query(q): Query<TokenQuery>,
) -> Response {
    if let Err(e) = c.require(Permission::Read) {
        return fail(e);
    }
    // Searched and paged in the database: a page costs the same with ten
    // tokens or a million.
    let page = match s.ops.token_page(&c.actor, &q).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(&c);
    let next = next_link(
        "/tokens",
        &[("label", &q.label), ("host", &q.host), ("owner", &q.owner), ("state", &q.state)],
        None,
        page.next,
    );
    render(
        "tokens.html",
        json!({"title": "Tokens", "me": me, "csrf": csrf, "tokens": page.items, "next": next, "first_page": q.cursor.is_none(), "label": q.label.unwrap_or_default(), "host": q.host.unwrap_or_default(), "owner": q.owner.unwrap_or_default(), "can_respond": c.role.allows(Permission::Respond)}),
    )
}

pub(super) async fn post_import(State(s): State<Arc<Shared>>, ui: UiCaller, form: CsrfForm<ImportRequest>) -> Response {
    let request = match form.checked(&ui, Permission::Respond) {
        Ok(r) => r,
        Err(page) => return page,
    };
    let via = format!("through the honeytrail web UI/API from {}", ui.0.from);
    redirect(s.ops.import_token(&ui.0.actor, request, &via).await, |t| format!("/tokens/{}", t.access_key_id))
}

pub(super) async fn post_mint(State(s): State<Arc<Shared>>, ui: UiCaller, form: CsrfForm<MintRequest>) -> Response {
    let request = match form.checked(&ui, Permission::Respond) {
        Ok(r) => r,
        Err(page) => return page,
    };
    redirect(s.ops.mint(&ui.0.actor, request).await, |t| format!("/tokens/{}", t.access_key_id))
}

pub(super) async fn token(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Path(key): Path<String>) -> Response {
    let d = match s.ops.token_detail(&c.actor, &key).await {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let chart = match s.ops.token_chart(&c.actor, &key).await {
        Ok(chart) => chart,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(&c);
    render(
        "token.html",
        json!({"title": key, "me": me, "csrf": csrf, "d": d, "chart": chart, "can_respond": c.role.allows(Permission::Respond)}),
    )
}

#[derive(Deserialize)]
pub(super) struct BaitForm {
    csrf: String,
    format: String,
    /// `download` (an attachment) or `show` (a page to copy from).
    #[serde(default)]
    action: String,
}

pub(super) async fn post_bait(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(key): Path<String>,
    Form(f): Form<BaitForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    match s.ops.render_bait(&ui.0.actor, &key, &f.format).await {
        Ok((_, text)) if f.action == "show" => {
            let (me, csrf) = base(&ui.0);
            render(
                "bait.html",
                json!({"title": "Bait", "me": me, "csrf": csrf, "format": f.format, "key": key, "text": text}),
            )
        }
        Ok((file_name, text)) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            text,
        )
            .into_response(),
        Err(e) => fail(e),
    }
}

pub(super) async fn post_retire(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(key): Path<String>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    match s.ops.retire(&ui.0.actor, &key).await {
        Ok(r) => back(&format!("/tokens/{}", r.token.id)),
        Err(e) => fail(e),
    }
}

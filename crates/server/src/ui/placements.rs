//! Placements: where tokens sit, searched, exported, added and removed.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Form;
use honeytrail_app::ops::{PlacementQuery, PlacementRequest};
use honeytrail_core::access::Permission;
use serde_json::json;

use super::{base, fail, guard, next_link, redirect, render, CsrfForm, TokenOnly};
use crate::auth::UiCaller;
use crate::Shared;

pub(super) async fn placements(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Query(q): Query<PlacementQuery>,
) -> Response {
    if let Err(e) = c.require(Permission::Read) {
        return fail(e);
    }
    let page = match s.ops.placement_page(&c.actor, &q).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let next = next_link(
        "/placements",
        &[("host", &q.host), ("owner", &q.owner), ("token", &q.token)],
        q.all.then_some("all=true"),
        page.next,
    );
    let (me, csrf) = base(&c);
    let q = json!({"host": q.host, "owner": q.owner, "all": q.all});
    render(
        "placements.html",
        json!({"title": "Placements", "me": me, "csrf": csrf, "placements": page.items, "next": next, "q": q, "can_respond": c.role.allows(Permission::Respond)}),
    )
}

pub(super) async fn placements_csv(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Query(q): Query<PlacementQuery>,
) -> Response {
    match s.ops.placements_csv(&c.actor, &q).await {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"placements.csv\""),
            ],
            csv,
        )
            .into_response(),
        Err(e) => fail(e),
    }
}

pub(super) async fn post_placement(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    form: CsrfForm<PlacementRequest>,
) -> Response {
    let request = match form.checked(&ui, Permission::Respond) {
        Ok(r) => r,
        Err(page) => return page,
    };
    let key = request.access_key_id.clone();
    redirect(s.ops.add_placement(&ui.0.actor, &request).await, |_| format!("/tokens/{key}"))
}

pub(super) async fn post_remove_placement(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    redirect(s.ops.remove_placement(&ui.0.actor, id).await, |_| "/placements".to_string())
}

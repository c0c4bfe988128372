//! The pool of canary accounts (admins): what each holds, add and remove.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use honeytrail_app::ops::AccountRequest;
use honeytrail_core::access::Permission;
use serde_json::json;

use super::{base, fail, redirect, render, CsrfForm, TokenOnly};
use crate::auth::UiCaller;
use crate::Shared;

pub(super) async fn accounts(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    let accounts = match s.ops.accounts(&c.actor).await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let rows: Vec<_> = accounts.iter().map(|a| json!({"account": a, "room": a.room()})).collect();
    let (me, csrf) = base(&c);
    render(
        "accounts.html",
        json!({"title": "Canary accounts", "me": me, "csrf": csrf, "accounts": rows,
            "default_max_users": honeytrail_core::pool::DEFAULT_MAX_USERS}),
    )
}

pub(super) async fn post_account(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    form: CsrfForm<AccountRequest>,
) -> Response {
    let request = match form.checked(&ui, Permission::Administer) {
        Ok(r) => r,
        Err(page) => return page,
    };
    redirect(s.ops.add_account(&ui.0.actor, &request).await, |_| "/accounts".to_string())
}

pub(super) async fn post_account_remove(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    redirect(s.ops.remove_account(&ui.0.actor, &name).await, |_| "/accounts".to_string())
}

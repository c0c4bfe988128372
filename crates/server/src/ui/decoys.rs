//! `/decoys`: decoy resources, what would give each away, a plan to make
//! more (previewed, then made) and removal.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use honeytrail_app::ops::{DecoyPlan, DecoyPlanRequest};
use honeytrail_core::access::Permission;
use serde::Deserialize;
use serde_json::json;

use super::{base, fail, redirect, render, CsrfForm, TokenOnly};
use crate::auth::{ApiError, UiCaller};
use crate::Shared;

/// The plan form: counts as `kind=n, kind=n`, an inventory's text, the account.
#[derive(Debug, Deserialize)]
pub(super) struct PlanForm {
    counts: Option<String>,
    inventory: Option<String>,
    account: Option<String>,
}

/// The preview's form: the plan, as the preview showed it.
#[derive(Debug, Deserialize)]
pub(super) struct ApplyForm {
    plan: String,
}

async fn page(s: &Shared, ui: &UiCaller, extra: serde_json::Value) -> Response {
    let c = &ui.0;
    let decoys = match s.ops.decoy_list(&c.actor, true).await {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let rows: Vec<_> = decoys
        .iter()
        .map(|v| {
            let worst =
                v.findings.iter().filter(|f| f.level > honeytrail_core::stealth::Level::Note).max_by_key(|f| f.level);
            json!({"decoy": v.decoy, "label": v.decoy.kind.label(), "verdict": worst.map(|f| f.level.to_string()),
                   "finding": worst.map(|f| f.message.clone())})
        })
        .collect();
    let (me, csrf) = base(c);
    let mut ctx = json!({"title": "Decoys", "me": me, "csrf": csrf, "decoys": rows,
        "plan": null, "plan_json": null, "applied": null});
    if let (Some(ctx), Some(extra)) = (ctx.as_object_mut(), extra.as_object()) {
        ctx.extend(extra.clone());
    }
    render("decoys.html", ctx)
}

pub(super) async fn decoys(State(s): State<Arc<Shared>>, ui: UiCaller) -> Response {
    page(&s, &ui, json!({})).await
}

/// Shows a plan without making anything.
pub(super) async fn post_decoy_plan(State(s): State<Arc<Shared>>, ui: UiCaller, form: CsrfForm<PlanForm>) -> Response {
    let f = match form.checked(&ui, Permission::Administer) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let request = DecoyPlanRequest {
        counts: f.counts.map(|c| vec![c]).unwrap_or_default(),
        inventory: f.inventory,
        account: f.account.map(|a| a.trim().to_string()),
    };
    let plan = match s.ops.decoy_plan(&ui.0.actor, &request).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let text = serde_json::to_string(&plan).unwrap_or_default();
    page(&s, &ui, json!({"plan": plan, "plan_json": text})).await
}

/// Makes the previewed plan.
pub(super) async fn post_decoy_apply(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    form: CsrfForm<ApplyForm>,
) -> Response {
    let f = match form.checked(&ui, Permission::Administer) {
        Ok(f) => f,
        Err(page) => return page,
    };
    let plan: DecoyPlan = match serde_json::from_str(&f.plan) {
        Ok(p) => p,
        Err(e) => return fail(ApiError::bad_request(format!("the plan does not fit: {e}"))),
    };
    match s.ops.decoy_apply(&ui.0.actor, &plan).await {
        Ok(applied) => {
            let failed: Vec<_> =
                applied.failed.iter().map(|(p, why)| json!({"kind": p.kind, "name": p.name, "why": why})).collect();
            page(&s, &ui, json!({"applied": {"made": applied.made.len(), "failed": failed}})).await
        }
        Err(e) => fail(e),
    }
}

pub(super) async fn post_decoy_remove(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = ui.check_csrf(&f.csrf) {
        return r;
    }
    redirect(s.ops.decoy_remove(&ui.0.actor, id).await, |_| "/decoys".to_string())
}

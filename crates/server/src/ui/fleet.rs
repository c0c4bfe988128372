//! Deploy and the fleet: enrolment secrets, enrolled hosts and their
//! commands, snippets, Lambda and mailbox bait.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Form;
use honeytrail_app::ops::deploy::{LambdaRequest, MailboxRequest, SnippetRequest};
use honeytrail_app::ops::CiRunQuery;
use honeytrail_app::ops::{EnrolmentSecretRequest, NewEnrolmentSecret};
use honeytrail_core::access::Permission;
use serde_json::{json, Value};

use super::{base, fail, guard, redirect, render, CsrfForm, TokenOnly};
use crate::auth::{Caller, UiCaller};
use crate::Shared;

async fn enrolments_view(s: &Shared, c: &Caller, created: Option<NewEnrolmentSecret>) -> Response {
    let all = match s.ops.enrolments(&c.actor).await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let now = chrono::Utc::now();
    let rows: Vec<Value> = all
        .iter()
        .map(|e| {
            let mut v = json!(e);
            v["state"] = json!(e.state(now));
            v["labels_text"] = json!(honeytrail_core::model::labels_text(&e.labels));
            v["allowed_text"] = json!(e.guard.allowed_from.join(", "));
            v["ec2_text"] = json!(e.guard.ec2_accounts.join(", "));
            v
        })
        .collect();
    let templates: Vec<String> = match s.ops.templates(&c.actor).await {
        Ok(t) => t.into_iter().map(|t| t.name).collect(),
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(c);
    let (created, secret) = match created {
        Some(n) => (Some(n.enrolment), Some(n.secret)),
        None => (None, None),
    };
    render(
        "enrollments.html",
        json!({"title": "Enrolment", "me": me, "csrf": csrf, "enrollments": rows, "templates": templates, "created": created, "secret": secret}),
    )
}

pub(super) async fn enrolments(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    enrolments_view(&s, &c, None).await
}

pub(super) async fn post_enrolment(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    form: CsrfForm<EnrolmentSecretRequest>,
) -> Response {
    let request = match form.checked(&ui, Permission::Administer) {
        Ok(r) => r,
        Err(page) => return page,
    };
    match s.ops.create_enrolment(&ui.0.actor, &request).await {
        Ok(created) => enrolments_view(&s, &ui.0, Some(created)).await,
        Err(e) => fail(e),
    }
}

pub(super) async fn post_enrolment_revoke(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    redirect(s.ops.revoke_enrolment(&ui.0.actor, id).await, |_| "/enrollments".to_string())
}

pub(super) async fn fleet(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    let agents = match s.ops.agents(&c.actor).await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let pool = match s.ops.pool_state().await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let charts = match s.ops.fleet_charts(&c.actor, &agents).await {
        Ok(charts) => charts,
        Err(e) => return fail(e),
    };
    let rows: Vec<Value> = agents
        .iter()
        .map(|a| {
            let mut v = json!(a);
            v["open_command"] = json!(a.commands.iter().any(|c| c.open()));
            // Always there (null for a key), as the page asks of every agent.
            v["session_expires_at"] = json!(a.session_expires_at);
            v["session_expired"] = json!(a.session_expires_at.is_some_and(|e| e <= chrono::Utc::now()));
            v
        })
        .collect();
    let stale = s.config().fleet.stale_after_seconds;
    let stale_after = honeytrail_core::describe::duration_words(i64::try_from(stale).unwrap_or(i64::MAX));
    let (me, csrf) = base(&c);
    render(
        "fleet.html",
        json!({"title": "Fleet", "me": me, "csrf": csrf, "agents": rows, "charts": charts, "stale_after": stale_after,
               "can_respond": c.actor.role.allows(Permission::Respond),
               "pool": {"size": pool.size, "target": pool.target, "iam_users": pool.iam_users, "quota": pool.quota, "warning": pool.warning}}),
    )
}

pub(super) async fn deploy(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Query(mut q): Query<SnippetRequest>,
) -> Response {
    use honeytrail_core::snippet::SnippetKind;
    if q.kind.is_empty() {
        q.kind = SnippetKind::ALL[0].as_str().into();
    }
    let (snippet, error) = match s.ops.snippet(&c.actor, &q).await {
        Ok(made) => (Some(made.snippet), None),
        Err(e) if e.kind == honeytrail_app::OpErrorKind::Forbidden => return fail(e),
        Err(e) => (None, Some(e.message)),
    };
    let kinds: Vec<&str> = SnippetKind::ALL.iter().map(|k| k.as_str()).collect();
    let (me, csrf) = base(&c);
    render(
        "deploy.html",
        json!({"title": "Deploy", "me": me, "csrf": csrf, "kinds": kinds, "kind": q.kind, "secret_name": q.secret_name,
               "service_name": q.service_name, "snippet": snippet, "error": error, "server": s.config().serve.public_url(),
               "can_respond": c.actor.role.allows(Permission::Respond)}),
    )
}

pub(super) async fn post_deploy_lambda(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    form: CsrfForm<LambdaRequest>,
) -> Response {
    let request = match form.checked(&ui, Permission::Respond) {
        Ok(r) => r,
        Err(page) => return page,
    };
    redirect(s.ops.lambda_bait(&ui.0.actor, &request).await, |d| format!("/tokens/{}", d.access_key_id))
}

/// The Deploy page's mailbox form; the password is used once, kept nowhere.
pub(super) async fn post_deploy_mailbox(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    form: CsrfForm<MailboxRequest>,
) -> Response {
    let request = match form.checked(&ui, Permission::Respond) {
        Ok(r) => r,
        Err(page) => return page,
    };
    redirect(s.ops.mailbox_bait(&ui.0.actor, &request).await, |d| format!("/tokens/{}", d.access_key_id))
}

pub(super) async fn post_agent_command(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path((id, kind)): Path<(i64, String)>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    let Some(kind) = honeytrail_core::fleet::CommandKind::parse(&kind) else {
        return fail(honeytrail_app::OpError::not_found(format!("agent command {kind}")));
    };
    redirect(s.ops.command_agent(&ui.0.actor, id, kind).await, |_| "/fleet".to_string())
}

/// Which page of CI runs `/ci` shows.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct CiPage {
    #[serde(default)]
    cursor: Option<String>,
}

/// `/ci`: the CI runs that took a canary, newest first, with the uses each
/// window expected and the incidents on each run's key.
pub(super) async fn ci_runs(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Query(q): Query<CiPage>) -> Response {
    let page = match s.ops.ci_runs_detailed(&c.actor, &CiRunQuery { cursor: q.cursor, limit: Some(50) }).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let runs: Vec<_> = page
        .items
        .iter()
        .map(|d| {
            let mut v = json!(d.view);
            v["expected"] = json!(d.expected);
            v["incidents"] = json!(d.incidents);
            v
        })
        .collect();
    let next = page.next.map(|c| format!("/ci?cursor={c}"));
    let (me, csrf) = base(&c);
    render("ci.html", json!({"title": "CI runs", "me": me, "csrf": csrf, "runs": runs, "next": next}))
}

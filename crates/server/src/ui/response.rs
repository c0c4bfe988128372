//! Response: actions, their modes and runs; approve, cancel and undo.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use honeytrail_app::ops::{Action, ActionRequest, ActionRun};
use honeytrail_core::access::Permission;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{base, fail, guard, redirect, render, CsrfForm, TokenOnly};
use crate::auth::UiCaller;
use crate::{message_page, Shared};

/// Runs as the pages show them, with the buttons each one allows.
pub(super) fn run_rows(runs: &[ActionRun]) -> Vec<Value> {
    runs.iter()
        .map(|r| {
            let mut row = json!(r);
            row["can_approve"] = json!(r.can_approve());
            row["can_cancel"] = json!(r.can_cancel());
            row["can_undo"] = json!(r.can_undo());
            row
        })
        .collect()
}

/// Actions as the Response page lists them: conditions and targets spelled out.
fn action_rows(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .map(|a| {
            let t = &a.settings;
            let target: Vec<String> = [
                ("account", &t.account),
                ("region", &t.region),
                ("role", &t.role_arn),
                ("instance", &t.instance_id),
                ("IAM user", &t.iam_user),
                ("IAM role", &t.iam_role),
                ("quarantine group", &t.quarantine_group),
                ("policy", &t.policy_arn),
            ]
            .into_iter()
            .filter_map(|(what, v)| v.as_ref().map(|v| format!("{what} {v}")))
            .chain((!t.command.is_empty()).then(|| format!("runs {}", t.command.join(" "))))
            .collect();
            let conditions: Vec<String> = a
                .trigger
                .when
                .iter()
                .map(|c| format!("if {c}"))
                .chain(a.trigger.unless.iter().map(|c| format!("unless {c}")))
                .chain(a.trigger.allow_own_network.then(|| "also from our own networks".to_string()))
                .collect();
            json!({"name": a.name, "kind": a.kind.as_str(), "mode": a.trigger.mode.to_string(), "route": a.route,
                "conditions": conditions, "target": target, "sealed": a.has_secret, "created_by": a.created_by})
        })
        .collect()
}

pub(super) async fn actions_page(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Query(q): Query<RunsQuery>,
) -> Response {
    let result = async {
        let actions = s.ops.list_actions(&c.actor).await?;
        let runs = s.ops.action_runs(&c.actor, None, q.state.as_deref()).await?;
        Ok::<_, honeytrail_app::OpError>((actions, runs))
    }
    .await;
    let (actions, runs) = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let runs = run_rows(&runs[..runs.len().min(RUNS_SHOWN)]);
    use honeytrail_core::action::ActionKind;
    let kinds: Vec<Value> = ActionKind::ALL
        .into_iter()
        .filter(|k| *k != ActionKind::Command)
        .map(|k| {
            let about = match k {
                ActionKind::QuarantineEc2 => "swap the instance's security groups for a quarantine group",
                ActionKind::DeactivateKeys => "deactivate an IAM user's access keys",
                ActionKind::DenyPolicy => "attach a deny-all policy to an IAM user or role",
                _ => "POST the incident record to a signed webhook",
            };
            json!({"name": k.as_str(), "about": about})
        })
        .collect();
    // The modes offered as a choice; any other grace period stays settable from the CLI and API.
    let modes = [
        ("off", "off"),
        ("dry-run", "dry run: record what would change"),
        ("approval", "wait for a responder's approval"),
        ("grace:15m", "after 15 min unless marked false positive"),
        ("grace:1h", "after 1 h unless marked false positive"),
        ("automatic", "at once"),
    ];
    let states: Vec<&str> = honeytrail_core::action::RunState::ALL.iter().map(|s| s.as_str()).collect();
    let (me, csrf) = base(&c);
    render(
        "actions.html",
        json!({"title": "Response", "me": me, "csrf": csrf, "actions": action_rows(&actions), "runs": runs,
            "kinds": kinds, "modes": modes, "states": states, "from_incident": false, "state": q.state.unwrap_or_default(),
            "can_respond": c.role.allows(Permission::Respond), "can_administer": c.role.allows(Permission::Administer)}),
    )
}

/// The runs the Response page shows, newest first.
const RUNS_SHOWN: usize = 200;

#[derive(Deserialize)]
pub(super) struct RunsQuery {
    #[serde(default)]
    state: Option<String>,
}

pub(super) async fn post_action(State(s): State<Arc<Shared>>, ui: UiCaller, form: CsrfForm<ActionRequest>) -> Response {
    let request = match form.checked(&ui, Permission::Administer) {
        Ok(r) => r,
        Err(page) => return page,
    };
    redirect(s.ops.add_action(&ui.0.actor, &request).await, |_| "/actions".into())
}

#[derive(Deserialize)]
pub(super) struct ModeForm {
    csrf: String,
    mode: String,
}

pub(super) async fn post_action_mode(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<ModeForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    redirect(s.ops.set_action_mode(&ui.0.actor, &name, &f.mode).await, |_| "/actions".into())
}

pub(super) async fn post_action_remove(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    redirect(s.ops.remove_action(&ui.0.actor, &name).await, |_| "/actions".into())
}

#[derive(Deserialize)]
pub(super) struct RunForm {
    csrf: String,
    /// Back to the incident's page rather than the Response page.
    #[serde(default)]
    from_incident: Option<String>,
}

/// Approve, cancel or undo a run; back where the button was.
pub(super) async fn post_run(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path((id, verb)): Path<(i64, String)>,
    Form(f): Form<RunForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    let actor = &ui.0.actor;
    let done = match verb.as_str() {
        "approve" => s.ops.approve_run(actor, id).await,
        "cancel" => s.ops.cancel_run(actor, id).await,
        "undo" => s.ops.undo_action_run(actor, id).await,
        _ => return message_page(StatusCode::NOT_FOUND, "Not found", "a run can be approved, cancelled or undone"),
    };
    let to_incident = f.from_incident.is_some();
    redirect(done, |run| if to_incident { format!("/incidents/{}", run.incident_id) } else { "/actions".into() })
}

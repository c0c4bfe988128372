//! Investigate: the dashboard, the incident list, an incident's page with
//! its timeline, state moves and notes, and every event of it.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use honeytrail_app::ops::{Delivery, IncidentQuery, NoteRequest, StateChange};
use honeytrail_core::access::{Permission, Role};
use honeytrail_core::incident::IncidentState;
use serde_json::{json, Value};

use super::response::run_rows;
use super::{back, base, fail, next_link, redirect, render, CsrfForm, PageQuery};
use crate::auth::UiCaller;
use crate::Shared;

pub(super) async fn dashboard(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller) -> Response {
    if c.role == Role::Employee {
        return back("/lookup");
    }
    let d = match s.ops.dashboard(&c.actor).await {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let charts = match s.ops.dashboard_charts(&c.actor, &d.stats.tokens).await {
        Ok(charts) => charts,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(&c);
    render(
        "dashboard.html",
        json!({"title": "Dashboard", "me": me, "csrf": csrf, "charts": charts, "open": d.open, "open_more": d.open_more, "stats": d.stats, "dead": d.dead, "dead_more": d.dead_more, "events": d.events, "sources": d.sources}),
    )
}

pub(super) async fn incidents(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Query(q): Query<IncidentQuery>,
) -> Response {
    if let Err(e) = c.require(Permission::Read) {
        return fail(e);
    }
    let page = match s.ops.incident_page(&c.actor, &q).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let next = next_link(
        "/incidents",
        &[("state", &q.state), ("token", &q.token), ("kind", &q.kind)],
        q.unresolved.then_some("unresolved=true"),
        page.next,
    );
    let states: Vec<&str> = IncidentState::ALL.iter().map(|s| s.as_str()).collect();
    let (me, csrf) = base(&c);
    render(
        "incidents.html",
        json!({"title": "Incidents", "me": me, "csrf": csrf, "incidents": page.items, "next": next, "states": states, "state": q.state.unwrap_or_default(), "token": q.token.unwrap_or_default(), "kind": q.kind.unwrap_or_default(), "unresolved": q.unresolved}),
    )
}

pub(super) async fn incident(State(s): State<Arc<Shared>>, UiCaller(c): UiCaller, Path(id): Path<i64>) -> Response {
    let view = match s.ops.incident_view(&c.actor, id).await {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let charts = match s.ops.incident_charts(&c.actor, id).await {
        Ok(charts) => charts,
        Err(e) => return fail(e),
    };
    let record = json!(view.record);
    let timeline = timeline(&record, &view.deliveries);
    let actions: Vec<(&str, &str)> = view
        .moves
        .iter()
        .map(|next| {
            let label = match next {
                IncidentState::Acknowledged => "Acknowledge",
                IncidentState::FalsePositive => "False positive",
                IncidentState::Confirmed => "Confirm intrusion",
                _ => "Resolve",
            };
            (next.as_str(), label)
        })
        .collect();
    let (me, csrf) = base(&c);
    render(
        "incident.html",
        json!({"title": format!("Incident #{id}"), "me": me, "csrf": csrf, "r": record, "charts": charts, "timeline": timeline, "actions": actions, "runs": run_rows(&view.runs), "from_incident": true, "can_respond": c.role.allows(Permission::Respond)}),
    )
}

/// Events, state changes, notes, answers, reports and alerts sent, by time.
fn timeline(record: &Value, deliveries: &[Delivery]) -> Vec<Value> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut out: Vec<Value> = Vec::new();
    for e in record["events"].as_array().into_iter().flatten() {
        out.push(json!({
            "at": s(&e["event_time"]), "kind": "event",
            "what": format!("{}:{}{}", s(&e["event_source"]).trim_end_matches(".amazonaws.com"), s(&e["event_name"]),
                e["error_code"].as_str().map(|c| format!(" ({c})")).unwrap_or_default()),
            "who": format!("{} · {}", s(&e["source_ip"]), s(&e["user_agent"])),
            "detail": format!(
                "{} · via {} · detected after {}",
                s(&e["aws_region"]),
                s(&e["source"]),
                e["detection_delay_seconds"].as_i64().map_or_else(|| "?".into(), honeytrail_core::describe::duration_words)
            ),
        }));
    }
    // Reads of the bait on its host: how the key was found, before its use.
    for r in record["reads"].as_array().into_iter().flatten() {
        let a = &r["access"];
        let p = &a["process"];
        let who = match p["exe"].as_str().or(p["name"].as_str()) {
            Some(exe) => format!(
                "{exe} · pid {} · {}",
                p["pid"],
                p["user"].as_str().map(str::to_string).unwrap_or_else(|| format!("uid {}", p["uid"]))
            ),
            None => "no process information".to_string(),
        };
        out.push(json!({
            "at": s(&a["at"]), "kind": "read",
            "what": honeytrail_core::encoding::printable(&format!("bait read on {}: {}", s(&r["host"]), s(&a["path"]))).into_owned(),
            "who": honeytrail_core::encoding::printable(&who).into_owned(),
            "detail": format!("{} [{}]", s(&r["sentence"]), s(&r["state"])),
        }));
    }
    for h in record["history"].as_array().into_iter().flatten() {
        let what = match h["kind"].as_str() {
            Some("state") => format!("state → {}", s(&h["to_state"])),
            Some("owner-answer") => "owner answered \"was this you?\"".to_string(),
            Some(k) => k.to_string(),
            None => String::new(),
        };
        out.push(json!({"at": s(&h["at"]), "kind": s(&h["kind"]), "what": what, "who": s(&h["actor"]), "detail": s(&h["note"])}));
    }
    for d in deliveries {
        let at = d.delivered_at.unwrap_or(d.next_attempt_at);
        out.push(json!({
            "at": at, "kind": "alert",
            "what": format!("alert {} → {}", d.alert_kind, d.channel),
            "who": "honeytrail",
            "detail": match d.state.as_str() {
                "delivered" => "delivered".to_string(),
                other => format!("{other} after {} attempt(s) {}", d.attempts, d.last_error.clone().unwrap_or_default()),
            },
        }));
    }
    out.sort_by(|a, b| a["at"].as_str().unwrap_or("").cmp(b["at"].as_str().unwrap_or("")));
    out
}

pub(super) async fn post_state(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    form: CsrfForm<StateChange>,
) -> Response {
    let r = match form.checked(&ui, Permission::Respond) {
        Ok(r) => r,
        Err(page) => return page,
    };
    redirect(s.ops.change_state(&ui.0.actor, id, &r).await, |_| format!("/incidents/{id}"))
}

pub(super) async fn post_note(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    form: CsrfForm<NoteRequest>,
) -> Response {
    let r = match form.checked(&ui, Permission::Respond) {
        Ok(r) => r,
        Err(page) => return page,
    };
    redirect(s.ops.add_note(&ui.0.actor, id, &r).await, |_| format!("/incidents/{id}"))
}

/// Every event of an incident, a page at a time.
pub(super) async fn incident_events(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Response {
    let events = match s.ops.event_page(&c.actor, id, None, &q.cursor).await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let next = next_link(&format!("/incidents/{id}/events"), &[], None, events.next);
    let (me, csrf) = base(&c);
    render(
        "events.html",
        json!({"title": format!("Incident #{id}: events"), "me": me, "csrf": csrf, "id": id, "events": events.items, "next": next}),
    )
}

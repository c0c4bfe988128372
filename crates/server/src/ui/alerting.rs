//! Alerting: channels (offered per kind from the registry), routes,
//! runbooks and dead-lettered deliveries.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use honeytrail_app::ops::{ChannelRequest, RunbookRequest};
use honeytrail_core::access::{Permission, Role};
use honeytrail_core::channel::{config_json, FieldValue};
use serde::Deserialize;
use serde_json::json;

use super::{back, base, fail, guard, next_link, redirect, render, PageQuery, TokenOnly};
use crate::auth::{ApiError, UiCaller};
use crate::{message_page, Shared};

pub(super) async fn alerting(
    State(s): State<Arc<Shared>>,
    UiCaller(c): UiCaller,
    Query(q): Query<PageQuery>,
) -> Response {
    let o = match s.ops.alerting_overview(&c.actor, &q.cursor).await {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let (me, csrf) = base(&c);
    render(
        "alerting.html",
        json!({"title": "Alerting", "me": me, "csrf": csrf, "channels": o.channels, "routes": o.routes,
            "runbooks": o.runbooks.runbooks, "dead": o.dead.items, "next": next_link("/channels", &[], None, o.dead.next),
            "kinds": s.ops.channel_kinds(), "default_runbook": o.runbooks.default_shipped,
            "can_respond": c.role.allows(Permission::Respond), "is_admin": c.role == Role::Admin}),
    )
}

pub(super) async fn post_channel_test(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    match s.ops.test_channel(&ui.0.actor, &name).await {
        Ok(()) => {
            message_page(StatusCode::OK, "Test alert sent", &format!("A test alert was delivered through {name}."))
        }
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
pub(super) struct EnableForm {
    csrf: String,
    enabled: bool,
}

pub(super) async fn post_channel_enabled(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<EnableForm>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    redirect(s.ops.update_channel(&ui.0.actor, &name, None, Some(f.enabled)).await, |_| "/channels".to_string())
}

/// A channel kind's form: its name and kind, and each of the kind's
/// settings under its key (lists and `NAME=VALUE` maps one per line),
/// turned into the configuration the API takes.
pub(super) async fn post_channel(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    if let Err(r) = guard(&ui, &field("csrf"), Permission::Administer) {
        return r;
    }
    let kind = field("kind");
    let Some(spec) = s.ops.channel_kinds().into_iter().find(|k| k.name == kind) else {
        return fail(ApiError::bad_request(format!("there is no channel kind {kind:?}")));
    };
    let given: Vec<(&str, Vec<String>)> = spec
        .fields
        .iter()
        .map(|f| {
            let values = pairs.iter().filter(|(k, _)| k == f.key).map(|(_, v)| v.as_str());
            let values: Vec<String> = match f.value {
                FieldValue::List | FieldValue::Map => values.flat_map(str::lines).map(str::to_string).collect(),
                _ => values.map(str::to_string).collect(),
            };
            (f.key, values)
        })
        .collect();
    let config = match config_json(spec, &given) {
        Ok(c) => c,
        Err(e) => return fail(ApiError::bad_request(e.0)),
    };
    let request = ChannelRequest { name: field("name"), kind, config };
    redirect(s.ops.add_channel(&ui.0.actor, &request).await, |_| "/channels".to_string())
}

#[derive(Deserialize)]
pub(super) struct RouteForm {
    csrf: String,
    name: String,
    channels: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    min_severity: String,
    #[serde(default)]
    default: Option<String>,
    /// Context conditions that must hold (`network=corp, tool=*`).
    #[serde(default, rename = "if")]
    when: String,
    #[serde(default)]
    unless: String,
}

pub(super) async fn post_route(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<RouteForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    let opt = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let result = async {
        let min_severity = opt(&f.min_severity)
            .map(|v| v.parse())
            .transpose()
            .map_err(|e: honeytrail_core::Invalid| ApiError::bad_request(e.0))?;
        let route = honeytrail_core::route::Route {
            name: f.name.trim().to_string(),
            channels: f.channels.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(),
            label: honeytrail_core::LabelFilter::parse(&f.label)
                .map_err(|e| ApiError::bad_request(e.0))?
                .map(|l| (l.name, l.value)),
            owner: opt(&f.owner),
            host: opt(&f.host),
            states: Vec::new(),
            min_severity,
            default: f.default.is_some(),
            when: honeytrail_core::enrich::parse_conditions(&[&f.when]).map_err(|e| ApiError::bad_request(e.0))?,
            unless: honeytrail_core::enrich::parse_conditions(&[&f.unless]).map_err(|e| ApiError::bad_request(e.0))?,
        };
        s.ops.add_route(&ui.0.actor, &route).await.map_err(ApiError::from)
    }
    .await;
    result.map(|()| back("/channels")).unwrap_or_else(fail)
}

pub(super) async fn post_route_test(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    match s.ops.test_route(&ui.0.actor, &name).await {
        Ok(_) => message_page(
            StatusCode::OK,
            "Test alerts sent",
            &format!("A test alert went through every channel of {name}."),
        ),
        Err(e) => fail(e),
    }
}

pub(super) async fn post_remove_route(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(name): Path<String>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    s.ops.remove_route(&ui.0.actor, &name).await.map(|()| back("/channels")).unwrap_or_else(fail)
}

#[derive(Deserialize)]
pub(super) struct RunbookForm {
    csrf: String,
    name: String,
    selector: String,
    template: String,
}

pub(super) async fn post_runbook(State(s): State<Arc<Shared>>, ui: UiCaller, Form(f): Form<RunbookForm>) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Administer) {
        return r;
    }
    let request = RunbookRequest { selector: f.selector, template: f.template };
    redirect(s.ops.set_runbook(&ui.0.actor, &f.name, &request).await, |_| "/channels".to_string())
}

pub(super) async fn post_retry(
    State(s): State<Arc<Shared>>,
    ui: UiCaller,
    Path(id): Path<i64>,
    Form(f): Form<TokenOnly>,
) -> Response {
    if let Err(r) = guard(&ui, &f.csrf, Permission::Respond) {
        return r;
    }
    s.ops.retry_delivery(&ui.0.actor, id).await.map(|_| back("/channels")).unwrap_or_else(fail)
}

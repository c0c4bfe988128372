//! The fleet's API: what enrolling hosts and their agents call
//! (`/api/v1/fleet/…`); what people call about them (`/api/v1/agents…`,
//! `/enrollments…`, `/templates…`, `/evidence`, `/auditd/rules`); and
//! bait placed by automation (`/deploy/…`).
//!
//! The agent's calls are not a user's. `POST /fleet/enrol` is authorised
//! by the enrolment secret in its body; every later call by the agent's own
//! credential as `Authorization: Bearer …`. Both are open to anyone who can
//! reach the server, so refusals are counted per address and held back like
//! the receivers'.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use honeytrail_app::ops::deploy::{LambdaRequest, MailboxRequest, SnippetRequest};
use honeytrail_app::ops::{AgentSession, EnrolmentSecretRequest, EvidenceQuery};
use honeytrail_core::fleet::{Abort, CommandDone, CommandKind, Confirm, EnrolRequest, Heartbeat};
use serde_json::json;

use super::{created, ok, ApiResult, Body};
use crate::auth::{client_address, AdminCaller, ApiCaller, ApiError, ResponderCaller};
use crate::Shared;

/// An agent, authenticated by its credential.
pub struct AgentCaller(pub AgentSession);

impl FromRequestParts<Arc<Shared>> for AgentCaller {
    type Rejection = ApiError;

    /// The limit is keyed by the credential: a valid one is served whatever
    /// its address did, so an intruder behind the same NAT cannot get real
    /// agents refused (and then reported silent); only refused requests
    /// count against an address, and only they are held back.
    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        let from = address(parts, s);
        let unauthenticated = |why: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", why);
        let credential = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let refused = |why: &str| {
            if let Some(held) = s.held_back(&from) {
                return held;
            }
            s.refused(&from);
            unauthenticated(why)
        };
        let Some(credential) = credential else {
            return Err(refused("send the agent credential as Authorization: Bearer …"));
        };
        match s.ops.agent_for(credential).await {
            Ok(agent) => Ok(AgentCaller(agent)),
            Err(e) if e.kind == honeytrail_app::OpErrorKind::Unavailable => Err(e.into()),
            Err(e) => Err(refused(&e.message)),
        }
    }
}

fn address(parts: &Parts, s: &Shared) -> String {
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    client_address(peer, &parts.headers, &s.config().serve.trusted_proxies)
}

/// The caller's address, for the enrolment (which has no other identity).
pub struct From(pub String);

impl FromRequestParts<Arc<Shared>> for From {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        Ok(From(address(parts, s)))
    }
}

pub(super) async fn post_enrol(
    State(s): State<Arc<Shared>>,
    From(from): From,
    Body(r): Body<EnrolRequest>,
) -> ApiResult {
    if let Some(held) = s.held_back(&from) {
        return Err(held);
    }
    created(s.ops.enrol_host(&r, &from).await.map_err(|e| counted(&s, &from, &r, e))?)
}

/// `POST /fleet/preflight`: what the secret's template asks of this host,
/// checked like an enrolment but spending no use and minting no key.
pub(super) async fn post_preflight(
    State(s): State<Arc<Shared>>,
    From(from): From,
    Body(r): Body<EnrolRequest>,
) -> ApiResult {
    if let Some(held) = s.held_back(&from) {
        return Err(held);
    }
    ok(s.ops.preflight_host(&r, &from).await.map_err(|e| counted(&s, &from, &r, e))?)
}

/// An enrolment call's error, a refused secret counted against its address
/// (repeated refusals are held back) and logged.
fn counted(s: &Shared, from: &str, r: &EnrolRequest, e: honeytrail_app::OpError) -> ApiError {
    if e.code == "enrollment_refused" {
        s.refused(from);
        tracing::warn!(from = %from, host = %honeytrail_core::encoding::printable(&r.host.hostname), reason = %e.message, "an enrolment was refused");
    }
    e.into()
}

pub(super) async fn post_confirm(
    State(s): State<Arc<Shared>>,
    AgentCaller(a): AgentCaller,
    Body(c): Body<Confirm>,
) -> ApiResult {
    ok(s.ops.confirm_host(&a, &c).await?)
}

pub(super) async fn post_abort(
    State(s): State<Arc<Shared>>,
    AgentCaller(a): AgentCaller,
    Body(r): Body<Abort>,
) -> ApiResult {
    s.ops.abort_host(&a, &r.reason).await?;
    ok(json!({"agent_id": a.id(), "state": "failed"}))
}

pub(super) async fn post_heartbeat(
    State(s): State<Arc<Shared>>,
    AgentCaller(a): AgentCaller,
    Body(h): Body<Heartbeat>,
) -> ApiResult {
    ok(s.ops.heartbeat(&a, &h).await?)
}

/// `POST /fleet/evidence`: reads of the bait the agent observed.
pub(super) async fn post_evidence(
    State(s): State<Arc<Shared>>,
    AgentCaller(a): AgentCaller,
    Body(b): Body<honeytrail_core::fleet::EvidenceBatch>,
) -> ApiResult {
    ok(s.ops.agent_evidence(&a, &b).await?)
}

pub(super) async fn post_command_done(
    State(s): State<Arc<Shared>>,
    AgentCaller(a): AgentCaller,
    Path(id): Path<i64>,
    Body(d): Body<CommandDone>,
) -> ApiResult {
    ok(s.ops.command_done(&a, id, &d).await?)
}

pub(super) async fn list_evidence(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<EvidenceQuery>,
) -> ApiResult {
    ok(s.ops.evidence(&c.actor, &q).await?)
}

/// Which rules `GET /auditd/rules` prints.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesQuery {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    key: Option<String>,
}

/// `GET /auditd/rules`: `auditctl` rules for the placements of a host, as
/// text for `/etc/audit/rules.d/`.
pub(super) async fn get_audit_rules(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<RulesQuery>,
) -> ApiResult {
    let key = q.key.as_deref().unwrap_or(honeytrail_core::auditd::DEFAULT_KEY);
    let rules = s.ops.audit_rules(&c.actor, q.host.as_deref().filter(|h| !h.trim().is_empty()), key).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], rules).into_response())
}

pub(super) async fn list_agents(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.agents(&c.actor).await?)
}

pub(super) async fn get_agent(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    ok(s.ops.agent(&c.actor, id).await?)
}

pub(super) async fn post_agent_rotate(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    created(s.ops.command_agent(&c.actor, id, CommandKind::Rotate).await?)
}

pub(super) async fn post_agent_remove(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    created(s.ops.command_agent(&c.actor, id, CommandKind::Remove).await?)
}

pub(super) async fn list_enrolments(State(s): State<Arc<Shared>>, AdminCaller(c): AdminCaller) -> ApiResult {
    ok(s.ops.enrolments(&c.actor).await?)
}

pub(super) async fn post_enrolment(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<EnrolmentSecretRequest>,
) -> ApiResult {
    created(s.ops.create_enrolment(&c.actor, &r).await?)
}

pub(super) async fn post_enrolment_revoke(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    ok(s.ops.revoke_enrolment(&c.actor, id).await?)
}

pub(super) async fn list_templates(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    ok(s.ops.templates(&c.actor).await?)
}

pub(super) async fn post_template(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(t): Body<honeytrail_core::template::PlacementTemplate>,
) -> ApiResult {
    created(s.ops.put_template(&c.actor, t).await?)
}

pub(super) async fn get_template(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult {
    ok(s.ops.template(&c.actor, &name).await?)
}

pub(super) async fn delete_template(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
) -> ApiResult {
    s.ops.remove_template(&c.actor, &name).await?;
    ok(json!({"removed": name}))
}

/// `/deploy/install.sh`: the installer hosts run. Open to anyone (a host
/// has no credential yet); it holds no secret, only this server's public
/// URL and the agent binary's SHA-256.
pub async fn install_script(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let installer = s.ops.installer().await?;
    Ok(([(header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8")], installer.script).into_response())
}

/// `/deploy/agent`: the agent binary the installer checks and installs.
pub async fn agent_binary(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let agent = s.ops.agent_download().await?;
    let body = axum::body::Body::from(axum::body::Bytes::from_owner(agent.bytes));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

pub(super) async fn get_snippet(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<SnippetRequest>,
) -> ApiResult {
    ok(s.ops.snippet(&c.actor, &q).await?)
}

/// `POST /deploy/lambda`: a honey key into a function's environment, or
/// (`"remove": true`) out of it again.
pub(super) async fn post_deploy_lambda(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<LambdaRequest>,
) -> ApiResult {
    let done = s.ops.lambda_bait(&c.actor, &r).await?;
    if r.remove {
        ok(done)
    } else {
        created(done)
    }
}

/// `POST /deploy/mailbox`: a message with a honey key into a mailbox folder
/// over IMAP, or (`"remove": true`) that message out again. The password is
/// used for this one connection and kept nowhere.
pub(super) async fn post_deploy_mailbox(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<MailboxRequest>,
) -> ApiResult {
    let done = s.ops.mailbox_bait(&c.actor, &r).await?;
    if r.remove {
        ok(done)
    } else {
        created(done)
    }
}

//! The fleet's API: what enrolling hosts and their agents call
//! (`/api/v1/fleet/…`), and what people call about them (`/api/v1/agents…`).
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
use axum::Json;
use honeytrail_core::fleet::{Abort, CommandDone, CommandKind, Confirm, EnrolRequest, Heartbeat};
use honeytrail_store::Agent;
use serde_json::{json, Value};

use super::api::Body;
use super::auth::{client_address, ApiCaller, ApiError, ResponderCaller};
use super::Shared;

type ApiResult = Result<Response, ApiError>;

/// An agent, authenticated by its credential.
pub struct AgentCaller(pub Agent);

impl FromRequestParts<Arc<Shared>> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        let from = address(parts, s);
        if let Some(held) = s.held_back(&from) {
            return Err(held);
        }
        let unauthenticated = |why: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", why);
        let credential = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthenticated("send the agent credential as Authorization: Bearer …"))?;
        match s.ops.agent_for(credential).await {
            Ok(agent) => Ok(AgentCaller(agent)),
            Err(e) => {
                s.refused(&from);
                Err(unauthenticated(&e.message))
            }
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

fn agent_json(a: &Agent) -> Value {
    a.json()
}

pub async fn post_enrol(State(s): State<Arc<Shared>>, From(from): From, Body(r): Body<EnrolRequest>) -> ApiResult {
    if let Some(held) = s.held_back(&from) {
        return Err(held);
    }
    match s.ops.enrol_host(&r, &from).await {
        Ok(enrolled) => Ok((StatusCode::CREATED, Json(enrolled)).into_response()),
        Err(e) => {
            if e.code == "enrollment_refused" {
                s.refused(&from);
                tracing::warn!(from = %from, host = %honeytrail_core::encoding::printable(&r.host.hostname), reason = %e.message, "an enrolment was refused");
            }
            Err(e.into())
        }
    }
}

pub async fn post_confirm(
    State(s): State<Arc<Shared>>,
    AgentCaller(a): AgentCaller,
    Body(c): Body<Confirm>,
) -> ApiResult {
    let agent = s.ops.confirm_host(&a, &c).await?;
    Ok(Json(agent_json(&agent)).into_response())
}

pub async fn post_abort(State(s): State<Arc<Shared>>, AgentCaller(a): AgentCaller, Body(r): Body<Abort>) -> ApiResult {
    s.ops.abort_host(&a, &r.reason).await?;
    Ok(Json(json!({"agent_id": a.id, "state": "failed"})).into_response())
}

pub async fn post_heartbeat(
    State(s): State<Arc<Shared>>,
    AgentCaller(a): AgentCaller,
    Body(h): Body<Heartbeat>,
) -> ApiResult {
    Ok(Json(s.ops.heartbeat(&a, &h).await?).into_response())
}

/// `POST /fleet/evidence`: reads of the bait the agent observed.
pub async fn post_evidence(
    State(s): State<Arc<Shared>>,
    AgentCaller(a): AgentCaller,
    Body(b): Body<honeytrail_core::fleet::EvidenceBatch>,
) -> ApiResult {
    Ok(Json(s.ops.agent_evidence(&a, &b).await?).into_response())
}

/// Which reads `GET /evidence` lists.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    #[serde(default)]
    pub host: Option<String>,
    /// An access key ID.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
}

pub async fn list_evidence(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<EvidenceQuery>,
) -> ApiResult {
    c.actor.require(honeytrail_core::access::Permission::Read)?;
    let token_id = match q.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(key) => Some(s.ops.find_token(key).await?.id),
        None => None,
    };
    let filter = honeytrail_store::EvidenceFilter {
        host: q.host.map(|h| h.trim().to_string()).filter(|h| !h.is_empty()),
        token_id,
        limit: q.limit,
        ..Default::default()
    };
    Ok(Json(s.ops.evidence(&c.actor, &filter).await?).into_response())
}

/// Which rules `GET /auditd/rules` prints.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesQuery {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

/// `GET /auditd/rules`: `auditctl` rules for the placements of a host, as
/// text for `/etc/audit/rules.d/`.
pub async fn get_audit_rules(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<RulesQuery>,
) -> ApiResult {
    let key = q.key.as_deref().unwrap_or(honeytrail_core::auditd::DEFAULT_KEY);
    let rules = s.ops.audit_rules(&c.actor, q.host.as_deref().filter(|h| !h.trim().is_empty()), key).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], rules).into_response())
}

pub async fn post_command_done(
    State(s): State<Arc<Shared>>,
    AgentCaller(a): AgentCaller,
    Path(id): Path<i64>,
    Body(d): Body<CommandDone>,
) -> ApiResult {
    Ok(Json(s.ops.command_done(&a, id, &d).await?).into_response())
}

pub async fn list_agents(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    let agents = s.ops.agents(&c.actor).await?;
    Ok(Json(agents.iter().map(agent_json).collect::<Vec<_>>()).into_response())
}

pub async fn get_agent(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    Ok(Json(agent_json(&s.ops.agent(&c.actor, id).await?)).into_response())
}

pub async fn post_agent_rotate(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    Ok((StatusCode::CREATED, Json(s.ops.command_agent(&c.actor, id, CommandKind::Rotate).await?)).into_response())
}

pub async fn post_agent_remove(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
) -> ApiResult {
    Ok((StatusCode::CREATED, Json(s.ops.command_agent(&c.actor, id, CommandKind::Remove).await?)).into_response())
}

/// `/deploy/install.sh`: the installer hosts run. Open to anyone (a host
/// has no credential yet); it holds no secret, only this server's public
/// URL and the agent binary's SHA-256.
pub async fn install_script(State(s): State<Arc<Shared>>) -> ApiResult {
    let installer = s.ops.installer().await?;
    Ok(([(header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8")], installer.script).into_response())
}

/// `/deploy/agent`: the agent binary the installer checks and installs.
pub async fn agent_binary(State(s): State<Arc<Shared>>) -> ApiResult {
    let agent = s.ops.agent_download().await?;
    let body = axum::body::Body::from(axum::body::Bytes::from_owner(agent.bytes));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

/// What a snippet is asked for with.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnippetQuery {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub secret_name: Option<String>,
    #[serde(default)]
    pub service_name: Option<String>,
}

pub async fn get_snippet(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<SnippetQuery>,
) -> ApiResult {
    use honeytrail_core::snippet::{SnippetKind, DEFAULT_SECRET_NAME, DEFAULT_SERVICE_NAME};
    // Who may ask comes before what was asked.
    c.actor.require(honeytrail_core::access::Permission::Read)?;
    let kind = SnippetKind::parse(q.kind.as_deref().unwrap_or_default()).map_err(honeytrail_app::OpError::from)?;
    let secret_name = q.secret_name.as_deref().unwrap_or(DEFAULT_SECRET_NAME);
    let service_name = q.service_name.as_deref().unwrap_or(DEFAULT_SERVICE_NAME);
    let text = s.ops.snippet(&c.actor, kind, secret_name, service_name).await?;
    Ok(Json(json!({"kind": kind.as_str(), "secret_name": secret_name, "service_name": service_name, "snippet": text}))
        .into_response())
}

/// `POST /deploy/lambda`: a honey key into a function's environment, or
/// (`"remove": true`) out of it again.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaBody {
    pub function: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub remove: bool,
}

pub async fn post_deploy_lambda(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(b): Body<LambdaBody>,
) -> ApiResult {
    let r = honeytrail_app::ops::deploy::LambdaRequest {
        function: b.function,
        region: b.region,
        account: b.account,
        profile: b.profile,
        key: b.key,
    };
    if b.remove {
        Ok(Json(s.ops.remove_lambda(&c.actor, &r).await?.json()).into_response())
    } else {
        Ok((StatusCode::CREATED, Json(s.ops.deploy_lambda(&c.actor, &r).await?.json())).into_response())
    }
}

/// `POST /deploy/mailbox`: a message with a honey key into a mailbox folder
/// over IMAP, or (`"remove": true`) that message out again. The password is
/// used for this one connection and kept nowhere.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxBody {
    pub imap_url: String,
    pub user: String,
    pub password: String,
    pub folder: String,
    #[serde(default)]
    pub address: Option<String>,
    /// The IMAP server's CA, PEM, when it is an internal one.
    #[serde(default)]
    pub ca_pem: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub remove: bool,
}

impl MailboxBody {
    pub fn request(self) -> (honeytrail_app::ops::deploy::MailboxRequest, bool) {
        let empty_none = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        (
            honeytrail_app::ops::deploy::MailboxRequest {
                imap_url: self.imap_url,
                user: self.user,
                password: self.password,
                folder: self.folder,
                address: empty_none(self.address),
                ca_file: None,
                ca_pem: empty_none(self.ca_pem),
                key: empty_none(self.key),
            },
            self.remove,
        )
    }
}

pub async fn post_deploy_mailbox(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(b): Body<MailboxBody>,
) -> ApiResult {
    let (r, remove) = b.request();
    if remove {
        Ok(Json(s.ops.remove_mailbox(&c.actor, &r).await?.json()).into_response())
    } else {
        Ok((StatusCode::CREATED, Json(s.ops.deploy_mailbox(&c.actor, &r).await?.json())).into_response())
    }
}

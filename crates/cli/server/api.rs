//! The REST API under `/api/v1`: JSON in and out, errors as
//! `{"error": {"code", "message"}}`, described by `openapi.json` (served at
//! `/api/v1/openapi.json`; a test checks every route here is in it).
//!
//! The operations behind the handlers (`pub(super)` functions) are shared
//! with the web UI, so both check the same permissions and write the same
//! audit entries.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::Utc;
use honeytrail_core::access::{Permission, Role};
use honeytrail_core::bait::{self, BaitInput, Format};
use honeytrail_core::incident::IncidentState;
use honeytrail_core::{keyid, Labels, NewToken, Spot, Token, TokenKind, TokenState};
use honeytrail_store::{IncidentFilter, NewHop, PlacementFilter, TokenFilter};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{hash_password, new_password, AdminCaller, ApiCaller, ApiError, Caller, ResponderCaller};
use super::Shared;

pub const OPENAPI: &str = include_str!("openapi.json");

type ApiResult = Result<Response, ApiError>;

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(Json(v).into_response())
}

fn created(v: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// A JSON body whose problems are answered as API errors.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {e}"),
            )),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", format!("the body does not fit: {e}")))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

// ---------------------------------------------------------------- operations

pub(super) async fn find_token(s: &Shared, key: &str) -> Result<Token, ApiError> {
    Ok(s.store.find_token(key).await?)
}

/// A token with its placements, custody and the sentence alerts carry.
pub(super) async fn token_detail(s: &Shared, token: &Token) -> Result<Value, ApiError> {
    let placements = s
        .store
        .placements(&PlacementFilter { token_id: Some(token.id), include_removed: true, ..Default::default() })
        .await?;
    let hops = s.store.hops(token.id).await?;
    let described = s.store.describe_token(token).await?;
    let incidents = s.store.incidents(&IncidentFilter { token_id: Some(token.id), ..Default::default() }).await?;
    let report = crate::commands::check::report_for(token);
    let stealth = json!({"verdict": report.verdict(), "findings": report.findings});
    Ok(json!({
        "token": token,
        "description": described,
        "placements": placements.iter().map(|p| &p.placement).collect::<Vec<_>>(),
        "custody": hops,
        "incidents": incidents,
        "stealth": stealth,
        "bait_formats": Format::ALL.iter().map(|f| f.name()).collect::<Vec<_>>(),
    }))
}

pub(super) async fn change_state(
    s: &Shared,
    c: &Caller,
    id: i64,
    state: &str,
    note: Option<&str>,
) -> Result<honeytrail_core::incident::Incident, ApiError> {
    c.require(Permission::Respond)?;
    let next: IncidentState = state.parse().map_err(|e: String| ApiError::bad_request(e))?;
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    let incident = s.store.change_incident_state(id, next, &c.user.name, note).await?;
    s.alert_queued();
    c.audit(s, "incident.state", &format!("incident #{id}"), Some(next.as_str())).await;
    Ok(incident)
}

pub(super) async fn add_note(s: &Shared, c: &Caller, id: i64, text: &str) -> Result<(), ApiError> {
    c.require(Permission::Respond)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request("the note is empty"));
    }
    if text.chars().count() > 5000 {
        return Err(ApiError::bad_request("the note is longer than 5000 characters"));
    }
    s.store.add_incident_note(id, &c.user.name, text).await?;
    c.audit(s, "incident.note", &format!("incident #{id}"), None).await;
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportRequest {
    pub access_key_id: String,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    #[serde(default)]
    pub iam_user_name: Option<String>,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub memo: String,
    #[serde(default)]
    pub source: Option<String>,
}

pub(super) async fn import_token(s: &Shared, c: &Caller, r: ImportRequest) -> Result<Token, ApiError> {
    c.require(Permission::Respond)?;
    let key = keyid::parse(&r.access_key_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let secret = r.secret_access_key.filter(|s| !s.trim().is_empty()).map(|s| honeytrail_core::Secret::new(s.trim()));
    let mut hops = Vec::new();
    if secret.is_some() {
        hops.push(NewHop {
            description: format!("secret pasted into the honeytrail web UI/API by {} from {}", c.user.name, c.from),
            actor: Some(c.user.name.clone()),
            automatic: true,
            at: Utc::now(),
        });
    }
    let new = NewToken {
        kind: Some(TokenKind::AwsImported),
        account_id: match keyid::decode_account(&key) {
            keyid::AccountDecode::Account(a) => Some(a),
            _ => None,
        },
        access_key_id: key,
        secret,
        iam_user_name: r.iam_user_name.filter(|n| !n.trim().is_empty()),
        source: r.source,
        memo: r.memo,
        labels: r.labels,
        ..NewToken::default()
    };
    let token = s.store.insert_token(&new, &[], &hops).await?;
    s.tokens_changed();
    c.audit(s, "token.import", &token.access_key_id, None).await;
    Ok(token)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct MintRequest {
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub memo: String,
}

pub(super) async fn mint_token(s: &Shared, c: &Caller, r: MintRequest) -> Result<Token, ApiError> {
    c.require(Permission::Respond)?;
    let token = crate::commands::token::mint_one(&s.app, &s.store, &c.user.name, r.labels, r.memo)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "aws_failed", format!("{e:#}")))?;
    s.tokens_changed();
    c.audit(s, "token.mint", &token.access_key_id, None).await;
    Ok(token)
}

pub(super) async fn retire_token(s: &Shared, c: &Caller, key: &str) -> Result<Token, ApiError> {
    c.require(Permission::Respond)?;
    let token = find_token(s, key).await?;
    let (retired, _) = crate::commands::token::retire_one(&s.app, &s.store, &token)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "aws_failed", format!("{e:#}")))?;
    c.audit(s, "token.retire", &retired.access_key_id, None).await;
    Ok(retired)
}

/// Renders bait for a token; records a custody hop, since the secret leaves.
pub(super) async fn render_bait(s: &Shared, c: &Caller, key: &str, format: &str) -> Result<(String, String), ApiError> {
    c.require(Permission::Respond)?;
    let format: Format = format.parse().map_err(|e: String| ApiError::bad_request(e))?;
    let token = find_token(s, key).await?;
    if token.state == TokenState::Retired {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "retired",
            format!("{} is retired: bait made from it would never fire", token.access_key_id),
        ));
    }
    let secret = s.store.reveal_secret(token.id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_secret",
            format!("honeytrail holds no secret for {}; import it again with its secret", token.access_key_id),
        )
    })?;
    let render = &s.app.config.render;
    let text = bait::render(
        format,
        &BaitInput {
            access_key_id: &token.access_key_id,
            secret_access_key: secret.expose(),
            profile: &render.profile,
            region: &render.region,
        },
    );
    s.store
        .add_hop(
            token.id,
            &NewHop {
                description: format!(
                    "rendered as {format} in the honeytrail web UI/API for {} from {}",
                    c.user.name, c.from
                ),
                actor: Some(c.user.name.clone()),
                automatic: true,
                at: Utc::now(),
            },
        )
        .await?;
    c.audit(s, "token.render", &token.access_key_id, Some(format.name())).await;
    let file_name = format.typical_path().rsplit('/').next().unwrap_or("bait").trim_start_matches('.').to_string();
    Ok((if file_name.is_empty() { "env".into() } else { file_name }, text))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct PlacementRequest {
    pub access_key_id: String,
    pub host: String,
    pub path: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub asset: Option<String>,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

pub(super) async fn add_placement(
    s: &Shared,
    c: &Caller,
    r: PlacementRequest,
) -> Result<honeytrail_core::Placement, ApiError> {
    c.require(Permission::Respond)?;
    let token = find_token(s, &r.access_key_id).await?;
    let clean = |o: Option<String>| o.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if r.host.trim().is_empty() || r.path.trim().is_empty() {
        return Err(ApiError::bad_request("a placement needs a host and a path"));
    }
    if let Some(f) = clean(r.format.clone()) {
        f.parse::<Format>().map_err(|e: String| ApiError::bad_request(e))?;
    }
    let spot = Spot {
        host: r.host.trim().to_string(),
        path: r.path.trim().to_string(),
        owner: clean(r.owner),
        asset: clean(r.asset),
        serial: clean(r.serial),
        format: clean(r.format),
        placed_by: Some(c.user.name.clone()),
        notes: clean(r.notes),
        labels: Labels::new(),
    };
    let p = s.store.add_placement(token.id, &spot, Utc::now()).await?;
    c.audit(s, "placement.add", &token.access_key_id, Some(&format!("#{} on {} in {}", p.id, spot.host, spot.path)))
        .await;
    Ok(p)
}

pub(super) async fn remove_placement(s: &Shared, c: &Caller, id: i64) -> Result<honeytrail_core::Placement, ApiError> {
    c.require(Permission::Respond)?;
    let p = s.store.remove_placement(id, Utc::now()).await?;
    c.audit(s, "placement.remove", &format!("placement #{id}"), None).await;
    Ok(p)
}

pub(super) async fn test_channel(s: &Shared, c: &Caller, name: &str) -> Result<(), ApiError> {
    c.require(Permission::Respond)?;
    let channel = s.store.channel(name).await?;
    let settings = crate::commands::deliver::Settings::from_config(&s.app);
    let sender = settings.sender()?;
    let outcome = crate::commands::deliver::send_test_alert(&s.store, &sender, &channel, &c.user.name).await;
    c.audit(s, "channel.test", name, Some(if outcome.is_ok() { "delivered" } else { "failed" })).await;
    outcome.map(|_| ()).map_err(|f| ApiError::new(StatusCode::BAD_GATEWAY, "channel_failed", f.message))
}

/// What an employee learns about a credential they found. The answer never
/// touches AWS, so asking does not fire the token.
pub(super) async fn lookup(s: &Shared, c: &Caller, text: &str, found_at: &str) -> Result<Value, ApiError> {
    c.require(Permission::Lookup)?;
    let key = find_key_id(text).ok_or_else(|| {
        ApiError::bad_request("no AWS access key ID (AKIA… or ASIA…, 20 characters) found in what was pasted")
    })?;
    let found_at = found_at.trim();
    let token = match s.store.find_token(&key).await {
        Ok(t) => Some(t),
        Err(honeytrail_store::StoreError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let Some(token) = token else {
        c.audit(s, "lookup", &key, Some("not a decoy")).await;
        return Ok(json!({
            "access_key_id": key, "decoy": false,
            "message": "This key is not one of our decoys. If it is a real credential, treat it as exposed: do not use it, and report it to the security team so it can be revoked.",
        }));
    };
    let note = if found_at.is_empty() {
        format!("{} reported finding this key", c.user.name)
    } else {
        format!("{} reported finding this key at: {}", c.user.name, found_at.chars().take(500).collect::<String>())
    };
    let incident = s.store.report_found_key(token.id, &c.user.name, &note).await?;
    s.alert_queued();
    c.audit(s, "lookup", &token.access_key_id, Some(&format!("decoy; reported as incident #{incident}"))).await;
    Ok(json!({
        "access_key_id": token.access_key_id, "decoy": true, "report": incident,
        "message": "This is a monitored decoy credential. Do not use it. Your report was sent to the security team, who will follow up; thank you.",
    }))
}

/// The first AWS access key ID in pasted text.
pub(super) fn find_key_id(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(19)).find_map(|i| {
        let w = &text[i..i + 20];
        let starts = w.starts_with("AKIA") || w.starts_with("ASIA");
        let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let end = bytes.get(i + 20).is_none_or(|b| !b.is_ascii_alphanumeric());
        (starts && boundary && end && w.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
            .then(|| w.to_string())
    })
}

pub(super) async fn add_user(s: &Shared, c: &Caller, name: &str, role: &str) -> Result<(Value, String), ApiError> {
    c.require(Permission::Administer)?;
    let role: Role = role.parse().map_err(|e: String| ApiError::bad_request(e))?;
    let password = new_password();
    let user = s.store.add_user(name.trim(), role, &hash_password(&password)?, true).await?;
    c.audit(s, "user.create", &user.name, Some(role.as_str())).await;
    Ok((json!(user), password))
}

pub(super) async fn create_api_token(
    s: &Shared,
    c: &Caller,
    name: &str,
    role: Option<&str>,
) -> Result<(honeytrail_store::ApiToken, String), ApiError> {
    let role = match role {
        Some(r) => r.parse().map_err(|e: String| ApiError::bad_request(e))?,
        None => c.user.role,
    };
    let (token, secret) = s.store.create_api_token(&c.user, name, role).await?;
    c.audit(s, "api_token.create", &format!("API token #{}", token.id), Some(role.as_str())).await;
    Ok((token, secret.expose().to_string()))
}

pub(super) async fn revoke_api_token(s: &Shared, c: &Caller, id: i64) -> Result<honeytrail_store::ApiToken, ApiError> {
    let owner = if c.role == Role::Admin { None } else { Some(c.user.name.as_str()) };
    let t = s.store.revoke_api_token(id, owner).await?;
    c.audit(s, "api_token.revoke", &format!("API token #{id}"), None).await;
    Ok(t)
}

// ------------------------------------------------------------------ handlers

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn me(ApiCaller(c): ApiCaller) -> ApiResult {
    ok(json!({"user": c.user, "role": c.role, "csrf_token": c.csrf}))
}

#[derive(Deserialize, Default)]
pub(super) struct IncidentQuery {
    pub state: Option<String>,
    #[serde(default)]
    pub unresolved: bool,
    /// Access key ID or token number.
    pub token: Option<String>,
    /// `use` or `report`.
    pub kind: Option<String>,
}

pub(super) async fn search_incidents(
    s: &Shared,
    q: &IncidentQuery,
) -> Result<Vec<honeytrail_core::incident::Incident>, ApiError> {
    let blank = |o: &Option<String>| o.clone().filter(|v| !v.trim().is_empty());
    let state = blank(&q.state).as_deref().map(str::parse).transpose().map_err(|e: String| ApiError::bad_request(e))?;
    let token_id = match blank(&q.token) {
        Some(t) => Some(find_token(s, t.trim()).await?.id),
        None => None,
    };
    let mut list = s.store.incidents(&IncidentFilter { state, unresolved: q.unresolved, token_id }).await?;
    match blank(&q.kind).as_deref() {
        None => {}
        Some("use") => list.retain(|i| i.kind == honeytrail_core::incident::IncidentKind::Use),
        Some("report") => list.retain(|i| i.kind == honeytrail_core::incident::IncidentKind::Report),
        Some(other) => {
            return Err(ApiError::bad_request(format!("unknown incident kind {other:?}; use use or report")))
        }
    }
    Ok(list)
}

async fn list_incidents(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<IncidentQuery>,
) -> ApiResult {
    c.require(Permission::Read)?;
    ok(search_incidents(&s, &q).await?)
}

async fn get_incident(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    c.require(Permission::Read)?;
    s.store.incident(id).await?;
    ok(crate::commands::incident::incident_record(&s.store, id, "incident").await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRequest {
    state: String,
    #[serde(default)]
    note: Option<String>,
}

async fn post_state(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
    Body(r): Body<StateRequest>,
) -> ApiResult {
    ok(change_state(&s, &c, id, &r.state, r.note.as_deref()).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteRequest {
    text: String,
}

async fn post_note(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Path(id): Path<i64>,
    Body(r): Body<NoteRequest>,
) -> ApiResult {
    add_note(&s, &c, id, &r.text).await?;
    created(json!({"incident": id, "note": r.text.trim()}))
}

#[derive(Deserialize, Default)]
pub(super) struct TokenQuery {
    pub state: Option<String>,
    pub label: Option<String>,
    /// Placed on a host whose name contains this.
    pub host: Option<String>,
    /// Placed with an owner whose name contains this.
    pub owner: Option<String>,
}

/// Tokens by state and label, and by where they are placed.
pub(super) async fn search_tokens(s: &Shared, q: &TokenQuery) -> Result<Vec<Token>, ApiError> {
    let blank = |o: &Option<String>| o.clone().filter(|v| !v.trim().is_empty());
    let state = blank(&q.state).as_deref().map(str::parse).transpose().map_err(|e: String| ApiError::bad_request(e))?;
    let label = blank(&q.label).map(|l| match l.split_once('=') {
        Some((n, v)) => (n.trim().to_string(), Some(v.trim().to_string())),
        None => (l.trim().to_string(), None),
    });
    let mut tokens = s.store.list_tokens(&TokenFilter { state, label, ..Default::default() }).await?;
    let (host, owner) = (blank(&q.host), blank(&q.owner));
    if host.is_some() || owner.is_some() {
        let placed: std::collections::HashSet<i64> = s
            .store
            .placements(&PlacementFilter { host, owner, include_removed: true, ..Default::default() })
            .await?
            .iter()
            .map(|p| p.placement.token_id)
            .collect();
        tokens.retain(|t| placed.contains(&t.id));
    }
    Ok(tokens)
}

async fn list_tokens(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Query(q): Query<TokenQuery>) -> ApiResult {
    c.require(Permission::Read)?;
    ok(search_tokens(&s, &q).await?)
}

async fn post_token(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<ImportRequest>,
) -> ApiResult {
    created(import_token(&s, &c, r).await?)
}

async fn post_mint(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<MintRequest>,
) -> ApiResult {
    created(mint_token(&s, &c, r).await?)
}

async fn get_token(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(key): Path<String>) -> ApiResult {
    c.require(Permission::Read)?;
    let token = find_token(&s, &key).await?;
    ok(token_detail(&s, &token).await?)
}

async fn post_retire(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(key): Path<String>) -> ApiResult {
    ok(retire_token(&s, &c, &key).await?)
}

async fn get_bait(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path((key, format)): Path<(String, String)>,
) -> ApiResult {
    let (file_name, text) = render_bait(&s, &c, &key, &format).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        text,
    )
        .into_response())
}

#[derive(Deserialize, Default)]
pub(super) struct PlacementQuery {
    pub host: Option<String>,
    pub owner: Option<String>,
    pub token: Option<String>,
    #[serde(default)]
    pub all: bool,
}

pub(super) async fn placements_for(
    s: &Shared,
    q: &PlacementQuery,
) -> Result<Vec<honeytrail_store::PlacedToken>, ApiError> {
    let token_id = match q.token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Some(find_token(s, t).await?.id),
        None => None,
    };
    let blank = |o: &Option<String>| o.clone().filter(|v| !v.trim().is_empty());
    Ok(s.store
        .placements(&PlacementFilter { token_id, host: blank(&q.host), owner: blank(&q.owner), include_removed: q.all })
        .await?)
}

async fn list_placements(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<PlacementQuery>,
) -> ApiResult {
    c.require(Permission::Read)?;
    ok(placements_for(&s, &q).await?)
}

pub(super) fn csv_response(placements: &[honeytrail_store::PlacedToken]) -> ApiResult {
    let mut out = Vec::new();
    crate::commands::placement::write_csv(placements, &mut out)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"placements.csv\""),
        ],
        out,
    )
        .into_response())
}

async fn get_placements_csv(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<PlacementQuery>,
) -> ApiResult {
    c.require(Permission::Read)?;
    csv_response(&placements_for(&s, &q).await?)
}

async fn post_placement(
    State(s): State<Arc<Shared>>,
    ResponderCaller(c): ResponderCaller,
    Body(r): Body<PlacementRequest>,
) -> ApiResult {
    created(add_placement(&s, &c, r).await?)
}

async fn delete_placement(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    ok(remove_placement(&s, &c, id).await?)
}

async fn list_channels(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    c.require(Permission::Read)?;
    ok(s.store.channels().await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelRequest {
    name: String,
    kind: String,
    config: Value,
}

async fn post_channel(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<ChannelRequest>,
) -> ApiResult {
    created(create_channel(&s, &c, &r.name, &r.kind, &r.config).await?)
}

/// Adds a channel after checking its configuration and targets.
pub(super) async fn create_channel(
    s: &Shared,
    c: &Caller,
    name: &str,
    kind: &str,
    config: &Value,
) -> Result<honeytrail_store::Channel, ApiError> {
    c.require(Permission::Administer)?;
    let config = checked_config(s, kind, config).await?;
    let channel =
        s.store.add_channel(name.trim(), config.kind(), &honeytrail_core::Secret::new(config.to_json())).await?;
    c.audit(s, "channel.create", &channel.name, Some(&channel.kind)).await;
    Ok(channel)
}

pub(super) async fn add_route(s: &Shared, c: &Caller, r: &honeytrail_core::route::Route) -> Result<(), ApiError> {
    c.require(Permission::Administer)?;
    s.store.add_route(r).await?;
    c.audit(s, "route.create", &r.name, Some(&r.channels.join(", "))).await;
    Ok(())
}

pub(super) async fn remove_route(s: &Shared, c: &Caller, name: &str) -> Result<(), ApiError> {
    c.require(Permission::Administer)?;
    s.store.remove_route(name).await?;
    c.audit(s, "route.remove", name, None).await;
    Ok(())
}

pub(super) async fn set_runbook(
    s: &Shared,
    c: &Caller,
    name: &str,
    selector: &str,
    template: &str,
) -> Result<honeytrail_store::StoredRunbook, ApiError> {
    c.require(Permission::Administer)?;
    honeytrail_alert::runbook::check_selector(selector.trim()).map_err(ApiError::bad_request)?;
    honeytrail_alert::runbook::check(template).map_err(ApiError::bad_request)?;
    let stored = honeytrail_store::StoredRunbook {
        name: name.trim().to_string(),
        selector: selector.trim().to_string(),
        template: template.replace("\r\n", "\n"),
    };
    s.store.set_runbook(&stored).await?;
    c.audit(s, "runbook.set", &stored.name, Some(&stored.selector)).await;
    Ok(stored)
}

pub(super) async fn retry_delivery(s: &Shared, c: &Caller, id: i64) -> Result<honeytrail_store::Delivery, ApiError> {
    c.require(Permission::Respond)?;
    let d = s.store.retry_delivery(id).await?;
    c.audit(s, "delivery.retry", &format!("delivery #{id}"), None).await;
    Ok(d)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelUpdate {
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// Checks a channel configuration of `kind` as it would be stored.
async fn checked_config(s: &Shared, kind: &str, config: &Value) -> Result<honeytrail_alert::ChannelConfig, ApiError> {
    use honeytrail_alert::ChannelConfig;
    let config = ChannelConfig::parse(kind, &config.to_string()).map_err(|f| {
        ApiError::bad_request(format!("{}; see docs/alerts.md for each kind's configuration", f.message))
    })?;
    if let Some(url) = config.http_target() {
        honeytrail_alert::channels::webhook::check_target(url, &s.app.config.alerts.allowed_hosts)
            .await
            .map_err(|f| ApiError::bad_request(f.message))?;
    }
    if let ChannelConfig::Email(e) = &config {
        honeytrail_alert::channels::email::check(e).map_err(ApiError::bad_request)?;
    }
    Ok(config)
}

pub(super) async fn update_channel(
    s: &Shared,
    c: &Caller,
    name: &str,
    config: Option<&Value>,
    enabled: Option<bool>,
) -> Result<honeytrail_store::Channel, ApiError> {
    c.require(Permission::Administer)?;
    let channel = s.store.channel(name).await?;
    let sealed = match config {
        Some(v) => Some(honeytrail_core::Secret::new(checked_config(s, &channel.kind, v).await?.to_json())),
        None => None,
    };
    let updated = s.store.update_channel(name, sealed.as_ref(), enabled).await?;
    let what = match (config.is_some(), enabled) {
        (true, Some(e)) => format!("configuration replaced, {}", if e { "enabled" } else { "disabled" }),
        (true, None) => "configuration replaced".to_string(),
        (false, Some(e)) => (if e { "enabled" } else { "disabled" }).to_string(),
        (false, None) => "unchanged".to_string(),
    };
    c.audit(s, "channel.update", name, Some(&what)).await;
    Ok(updated)
}

async fn put_channel(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
    Body(r): Body<ChannelUpdate>,
) -> ApiResult {
    ok(update_channel(&s, &c, &name, r.config.as_ref(), r.enabled).await?)
}

async fn post_channel_test(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Path(name): Path<String>,
) -> ApiResult {
    test_channel(&s, &c, &name).await?;
    ok(json!({"channel": name, "delivered": true}))
}

async fn list_routes(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    c.require(Permission::Read)?;
    ok(s.store.routes().await?)
}

async fn post_route(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Body(r): Body<honeytrail_core::route::Route>,
) -> ApiResult {
    add_route(&s, &c, &r).await?;
    created(r)
}

async fn post_route_test(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(name): Path<String>) -> ApiResult {
    ok(test_route(&s, &c, &name).await?)
}

/// Sends a test alert through every channel of a route; one failure fails it.
pub(super) async fn test_route(s: &Shared, c: &Caller, name: &str) -> Result<Value, ApiError> {
    c.require(Permission::Respond)?;
    let route = s
        .store
        .routes()
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("route {name:?} not found")))?;
    let mut results = serde_json::Map::new();
    let mut failed = Vec::new();
    for channel in &route.channels {
        match test_channel(s, c, channel).await {
            Ok(()) => {
                results.insert(channel.clone(), json!("delivered"));
            }
            Err(e) => {
                failed.push(format!("{channel}: {}", e.message));
                results.insert(channel.clone(), json!(e.message));
            }
        }
    }
    if !failed.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_GATEWAY, "channel_failed", failed.join("; ")));
    }
    Ok(json!({"route": name, "channels": results}))
}

async fn delete_route(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(name): Path<String>) -> ApiResult {
    remove_route(&s, &c, &name).await?;
    ok(json!({"removed": name}))
}

async fn list_runbooks(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    c.require(Permission::Read)?;
    ok(json!({
        "runbooks": s.store.runbooks().await?,
        "default_shipped": honeytrail_alert::runbook::DEFAULT_TEMPLATE,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunbookRequest {
    selector: String,
    template: String,
}

async fn put_runbook(
    State(s): State<Arc<Shared>>,
    AdminCaller(c): AdminCaller,
    Path(name): Path<String>,
    Body(r): Body<RunbookRequest>,
) -> ApiResult {
    ok(set_runbook(&s, &c, &name, &r.selector, &r.template).await?)
}

async fn delete_runbook(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(name): Path<String>) -> ApiResult {
    c.require(Permission::Administer)?;
    s.store.remove_runbook(&name).await?;
    c.audit(&s, "runbook.remove", &name, None).await;
    ok(json!({"removed": name}))
}

#[derive(Deserialize, Default)]
struct DeliveryQuery {
    state: Option<String>,
}

async fn list_deliveries(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult {
    c.require(Permission::Read)?;
    let state = q.state.unwrap_or_else(|| "dead".into());
    if !["pending", "delivered", "dead"].contains(&state.as_str()) {
        return Err(ApiError::bad_request(format!("unknown delivery state {state:?}; use pending, delivered or dead")));
    }
    ok(s.store.deliveries(&state).await?)
}

async fn post_delivery_retry(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    ok(retry_delivery(&s, &c, id).await?)
}

async fn list_users(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    c.require(Permission::Administer)?;
    ok(s.store.users().await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRequest {
    name: String,
    role: String,
}

async fn post_user(State(s): State<Arc<Shared>>, AdminCaller(c): AdminCaller, Body(r): Body<UserRequest>) -> ApiResult {
    let (user, password) = add_user(&s, &c, &r.name, &r.role).await?;
    created(json!({"user": user, "one_time_password": password}))
}

async fn list_api_tokens(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller) -> ApiResult {
    let owner = if c.role == Role::Admin { None } else { Some(c.user.name.as_str()) };
    ok(s.store.api_tokens(owner).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiTokenRequest {
    name: String,
    #[serde(default)]
    role: Option<String>,
}

async fn post_api_token(
    State(s): State<Arc<Shared>>,
    ApiCaller(c): ApiCaller,
    Body(r): Body<ApiTokenRequest>,
) -> ApiResult {
    let (token, secret) = create_api_token(&s, &c, &r.name, r.role.as_deref()).await?;
    created(json!({"api_token": token, "token": secret}))
}

async fn delete_api_token(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Path(id): Path<i64>) -> ApiResult {
    ok(revoke_api_token(&s, &c, id).await?)
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    limit: Option<i64>,
    format: Option<String>,
}

pub(super) fn audit_csv(entries: &[honeytrail_store::AuditEntry]) -> ApiResult {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e.to_string());
    w.write_record(["id", "at", "actor", "action", "target", "detail", "from"]).map_err(fail)?;
    for e in entries {
        w.write_record([
            e.id.to_string(),
            e.at.to_rfc3339(),
            e.actor.clone(),
            e.action.clone(),
            e.target.clone(),
            e.detail.clone().unwrap_or_default(),
            e.from.clone().unwrap_or_default(),
        ])
        .map_err(fail)?;
    }
    let out =
        w.into_inner().map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"audit.csv\""),
        ],
        out,
    )
        .into_response())
}

async fn get_audit(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Query(q): Query<AuditQuery>) -> ApiResult {
    c.require(Permission::Administer)?;
    let entries = s.store.audit_log(q.limit.unwrap_or(1000).clamp(1, 100_000)).await?;
    match q.format.as_deref() {
        Some("csv") => audit_csv(&entries),
        None | Some("json") => ok(entries),
        Some(other) => Err(ApiError::bad_request(format!("unknown format {other:?}; use json or csv"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupRequest {
    text: String,
    #[serde(default)]
    found_at: String,
}

async fn post_lookup(State(s): State<Arc<Shared>>, ApiCaller(c): ApiCaller, Body(r): Body<LookupRequest>) -> ApiResult {
    ok(lookup(&s, &c, &r.text, &r.found_at).await?)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API endpoint; see /api/v1/openapi.json")
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/me", get(me))
        .route("/incidents", get(list_incidents))
        .route("/incidents/{id}", get(get_incident))
        .route("/incidents/{id}/state", post(post_state))
        .route("/incidents/{id}/notes", post(post_note))
        .route("/tokens", get(list_tokens).post(post_token))
        .route("/tokens/mint", post(post_mint))
        .route("/tokens/{key}", get(get_token))
        .route("/tokens/{key}/retire", post(post_retire))
        .route("/tokens/{key}/bait/{format}", get(get_bait))
        .route("/placements", get(list_placements).post(post_placement))
        .route("/placements.csv", get(get_placements_csv))
        .route("/placements/{id}", delete(delete_placement))
        .route("/channels", get(list_channels).post(post_channel))
        .route("/channels/{name}", put(put_channel))
        .route("/channels/{name}/test", post(post_channel_test))
        .route("/routes", get(list_routes).post(post_route))
        .route("/routes/{name}", delete(delete_route))
        .route("/routes/{name}/test", post(post_route_test))
        .route("/runbooks", get(list_runbooks))
        .route("/runbooks/{name}", put(put_runbook).delete(delete_runbook))
        .route("/deliveries", get(list_deliveries))
        .route("/deliveries/{id}/retry", post(post_delivery_retry))
        .route("/users", get(list_users).post(post_user))
        .route("/api-tokens", get(list_api_tokens).post(post_api_token))
        .route("/api-tokens/{id}", delete(delete_api_token))
        .route("/audit", get(get_audit))
        .route("/lookup", post(post_lookup))
        .fallback(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.route(...)` above, as (method, path) pairs.
    fn routes_in_source() -> Vec<(String, String)> {
        let source = include_str!("api.rs");
        let table = &source[source.find("pub fn routes()").unwrap()..source.find("#[cfg(test)]").unwrap()];
        let mut out = Vec::new();
        for line in table.lines().filter(|l| l.trim_start().starts_with(".route(\"")) {
            let path = line.split('"').nth(1).unwrap().to_string();
            for method in ["get", "post", "put", "delete"] {
                if line.contains(&format!("{method}(")) {
                    out.push((method.to_string(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_openapi_document_parses_and_lists_every_route() {
        let doc: openapiv3::OpenAPI =
            serde_json::from_str(OPENAPI).expect("openapi.json is a valid OpenAPI 3 document");
        assert!(doc.openapi.starts_with("3."));
        let routes = routes_in_source();
        assert!(routes.len() > 25, "{routes:?}");
        for (method, path) in &routes {
            let item = doc.paths.paths.get(path).unwrap_or_else(|| panic!("{path} is not in openapi.json"));
            let item = item.as_item().unwrap();
            let op = match method.as_str() {
                "get" => &item.get,
                "post" => &item.post,
                "put" => &item.put,
                "delete" => &item.delete,
                _ => unreachable!(),
            };
            let op = op.as_ref().unwrap_or_else(|| panic!("{} {path} is not in openapi.json", method.to_uppercase()));
            assert!(!op.responses.responses.is_empty(), "{method} {path} documents no responses");
        }
        // And nothing documented that does not exist.
        for (path, item) in &doc.paths.paths {
            let item = item.as_item().unwrap();
            for (method, op) in [("get", &item.get), ("post", &item.post), ("put", &item.put), ("delete", &item.delete)]
            {
                if op.is_some() {
                    assert!(
                        routes.contains(&(method.to_string(), path.clone())),
                        "{method} {path} is documented but not served"
                    );
                }
            }
        }
    }

    #[test]
    fn key_ids_are_found_in_pasted_text() {
        assert_eq!(find_key_id("aws_access_key_id = AKIARZPUZDIKAWS2LJNF\n").as_deref(), Some("AKIARZPUZDIKAWS2LJNF"));
        assert_eq!(
            find_key_id("export AWS_ACCESS_KEY_ID=ASIAXXXXXXXXXXXXXXXX;").as_deref(),
            Some("ASIAXXXXXXXXXXXXXXXX")
        );
        assert_eq!(find_key_id("xAKIARZPUZDIKAWS2LJNF"), None);
        assert_eq!(find_key_id("AKIARZPUZDIKAWS2LJNFZ"), None);
        assert_eq!(find_key_id("nothing here"), None);
    }
}

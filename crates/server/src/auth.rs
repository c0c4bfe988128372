//! The credentials of the web: browser sessions (an HttpOnly,
//! SameSite=Strict cookie; every change carries the session's CSRF token)
//! and API tokens (bearer), turned into the acting identity by the
//! operations (`honeytrail_app::ops::sessions`: password checks, the
//! sign-in limiter, audit entries); the request extractors the UI and API
//! handlers take; the sign-in, sign-out and account pages.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use honeytrail_app::ops::sessions::SESSION_HOURS;
use honeytrail_app::ops::User;
use honeytrail_app::{Actor, OpError, OpErrorKind};
use honeytrail_core::access::{Permission, Role};
use serde::Deserialize;
use serde_json::json;

use super::{page, Shared};

pub const SESSION_COOKIE: &str = "ht_session";
const LOGIN_COOKIE: &str = "ht_login";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An API error: a status, a stable code and a message, as JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        let status = match e.kind {
            OpErrorKind::NotFound => StatusCode::NOT_FOUND,
            OpErrorKind::Invalid => StatusCode::BAD_REQUEST,
            OpErrorKind::Conflict => StatusCode::CONFLICT,
            OpErrorKind::Forbidden => StatusCode::FORBIDDEN,
            OpErrorKind::Upstream => StatusCode::BAD_GATEWAY,
            OpErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            OpErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            OpErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        };
        // The message only: command-line hints are not for the web.
        ApiError::new(status, e.code, e.message)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        OpError::from(e).into()
    }
}

/// Who is making a request, and how they proved it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// The role in force: the user's, or the API token's (never more).
    pub role: Role,
    /// The session's CSRF token; `None` for API tokens.
    pub csrf: Option<String>,
    /// The peer address, for the audit log.
    pub from: String,
    /// The identity the operations act as.
    pub actor: Actor,
}

impl Caller {
    fn new(user: User, role: Role, csrf: Option<String>, from: String) -> Caller {
        let actor = Actor { name: user.name.clone(), role, from: from.clone() };
        Caller { user, role, csrf, from, actor }
    }

    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        Ok(self.actor.require(p)?)
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

fn is_proxy(ip: IpAddr, trusted: &[String]) -> bool {
    trusted.iter().any(|p| p.trim().parse::<IpAddr>().is_ok_and(|t| t == ip))
}

/// The client's address: the connection's peer, or, when the peer is one of
/// `serve.trusted_proxies`, the address it names in `X-Forwarded-For` (the
/// right-most one that is not itself a trusted proxy: what the proxies saw,
/// not what the client wrote). From anyone else the header is ignored.
pub fn client_address(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[String]) -> String {
    let Some(peer) = peer else { return "unknown".into() };
    if !is_proxy(peer, trusted) {
        return peer.to_string();
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded.into_iter().rev().find(|ip| !is_proxy(*ip, trusted)).unwrap_or(peer).to_string()
}

fn peer(parts: &Parts, s: &Shared) -> String {
    client_address(peer_ip(parts), &parts.headers, &s.config().serve.trusted_proxies)
}

/// Compares secrets in time independent of where they differ.
pub fn same(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    let (a, b) = (a.as_ref(), b.as_ref());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller of an API request: a bearer API token, or a session cookie
/// (then a change must carry the CSRF token in `X-CSRF-Token`).
pub struct ApiCaller(pub Caller);

impl FromRequestParts<Arc<Shared>> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        let from = peer(parts, s);
        let unauthenticated = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in, or send an API token as Authorization: Bearer htk_…",
            )
        };
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).ok_or_else(unauthenticated)?;
            let (user, role) = s.ops.api_token_caller(token.trim()).await?.ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "the API token is unknown or revoked")
            })?;
            return Ok(ApiCaller(Caller::new(user, role, None, from)));
        }
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(unauthenticated)?;
        let session = s.ops.session(token).await?.ok_or_else(unauthenticated)?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let given = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !same(given, &session.csrf) {
                return Err(ApiError::forbidden(
                    "missing or wrong CSRF token: send the session's token in the X-CSRF-Token header",
                ));
            }
        }
        if session.user.must_change_password {
            return Err(ApiError::forbidden("choose a new password first (the account page)"));
        }
        let role = session.user.role;
        Ok(ApiCaller(Caller::new(session.user, role, Some(session.csrf), from)))
    }
}

/// An API caller who holds a permission, checked before the body is read
/// (so an unauthorised request learns nothing about what it sent).
macro_rules! permitted {
    ($name:ident, $perm:expr) => {
        pub struct $name(pub Caller);

        impl FromRequestParts<Arc<Shared>> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, Self::Rejection> {
                let ApiCaller(c) = ApiCaller::from_request_parts(parts, s).await?;
                c.require($perm)?;
                Ok($name(c))
            }
        }
    };
}

permitted!(ResponderCaller, Permission::Respond);
permitted!(AdminCaller, Permission::Administer);

/// The caller of a UI page: a session, else a redirect to the sign-in page.
pub struct UiCaller(pub Caller);

impl FromRequestParts<Arc<Shared>> for UiCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Self, Self::Rejection> {
        let from = peer(parts, s);
        // A page asked for without a session: sign in, then back to it.
        let asked = (parts.method == axum::http::Method::GET)
            .then(|| parts.uri.path_and_query().map(|p| p.as_str().to_string()))
            .flatten()
            .and_then(|p| safe_next(&p));
        let to_login = || match &asked {
            Some(next) => Redirect::to(&format!("/login?next={}", encode_component(next))).into_response(),
            None => Redirect::to("/login").into_response(),
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return sso_employee(parts, s, from).map(UiCaller).ok_or_else(to_login);
        };
        let session = match s.ops.session(token).await {
            Ok(Some(session)) => session,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(ApiError::from(e).into_response()),
        };
        if session.user.must_change_password && parts.uri.path() != "/account" {
            return Err(Redirect::to("/account").into_response());
        }
        let role = session.user.role;
        Ok(UiCaller(Caller::new(session.user, role, Some(session.csrf), from)))
    }
}

/// Someone a trusted reverse proxy signed in, named in the configured header:
/// an employee, for the "what is this?" page only.
fn sso_employee(parts: &Parts, s: &Shared, from: String) -> Option<Caller> {
    let serve = &s.config().serve;
    let header = serve.sso_header.as_deref()?;
    // The proxy is the connection itself, whatever X-Forwarded-For says.
    let via_proxy = peer_ip(parts).is_some_and(|ip| is_proxy(ip, &serve.sso_trusted_proxies));
    if parts.uri.path() != "/lookup" || !via_proxy {
        return None;
    }
    let name = parts.headers.get(header)?.to_str().ok()?.trim();
    if name.is_empty() || name.len() > 200 {
        return None;
    }
    let user = User::signed_in_by_proxy(name);
    let csrf = honeytrail_core::bearer_hash(&format!("{}:{}", s.sso_key, user.name));
    Some(Caller::new(user, Role::Employee, Some(csrf), from))
}

impl UiCaller {
    /// Checks a form's CSRF token.
    pub fn check_csrf(&self, given: &str) -> Result<(), Response> {
        match &self.0.csrf {
            Some(csrf) if same(given, csrf) => Ok(()),
            _ => Err(super::message_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not sent from your current session. Go back, reload the page and try again.",
            )),
        }
    }
}

fn set_cookie(s: &Shared, name: &str, value: &str, max_age: i64) -> String {
    let secure = if s.secure_cookies { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    error: Option<String>,
    /// The page to return to after signing in.
    #[serde(default)]
    next: Option<String>,
}

/// `raw` when it is a path on this site to return to after signing in:
/// absolute (`/…`), not `//host` or `/\host` (which browsers take for another
/// site), no scheme, no control or hidden characters, not the sign-in pages
/// themselves, at most 2 KiB. Anything else is dropped: a link an attacker
/// sends cannot make the sign-in page forward to their site.
pub(crate) fn safe_next(raw: &str) -> Option<String> {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.contains('\\')
        && raw.len() <= 2048
        && !honeytrail_core::encoding::has_hidden(raw)
        && !raw.chars().any(char::is_whitespace)
        && !["/login", "/logout"].iter().any(|p| raw == *p || raw.starts_with(&format!("{p}?")));
    ok.then(|| raw.to_string())
}

/// `s` percent-encoded for a query value (RFC 3986 unreserved kept).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn login_page(State(s): State<Arc<Shared>>, Query(q): Query<LoginQuery>) -> Response {
    let nonce = honeytrail_core::new_bearer("").expose().to_string();
    let mut response = page(
        StatusCode::OK,
        crate::web::render(
            "login.html",
            serde_json::json!({"title": "Sign in", "csrf": &nonce, "error": q.error,
                               "next": q.next.as_deref().and_then(safe_next)}),
        ),
    );
    if let Ok(v) = set_cookie(&s, LOGIN_COOKIE, &nonce, 3600).parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login(
    State(s): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    use std::sync::atomic::Ordering;
    let next = form.next.as_deref().and_then(safe_next);
    let back = |why: &str| {
        let also = next.as_deref().map(|n| format!("&next={}", encode_component(n))).unwrap_or_default();
        Redirect::to(&format!("/login?error={why}{also}")).into_response()
    };
    // Login CSRF: the form must come from our page (double-submit cookie).
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same(c, &form.csrf)) {
        return back("expired");
    }
    let addr = client_address(Some(addr.ip()), &headers, &s.config().serve.trusted_proxies);
    let signed_in = match s.ops.sign_in(&form.user, &form.password, &addr).await {
        Ok(signed_in) => signed_in,
        Err(e) if e.kind == OpErrorKind::Throttled => {
            s.counters.logins_throttled.fetch_add(1, Ordering::Relaxed);
            let mut r = super::message_page(StatusCode::TOO_MANY_REQUESTS, "Too many attempts", &e.message);
            if let Some(Ok(v)) = e.retry_after_seconds.map(|w| w.to_string().parse()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(e) if e.kind == OpErrorKind::Unauthenticated => {
            s.counters.logins_failed.fetch_add(1, Ordering::Relaxed);
            return back("invalid");
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Back to the page asked for; an employee only to the pages they have.
    let target = match (signed_in.user.role, next) {
        (Role::Employee, Some(n)) if n.starts_with("/lookup") || n.starts_with("/answer") => n,
        (Role::Employee, _) => "/lookup".to_string(),
        (_, Some(n)) => n,
        (_, None) => "/".to_string(),
    };
    let mut r = Redirect::to(&target).into_response();
    let h = r.headers_mut();
    if let Ok(v) = set_cookie(&s, SESSION_COOKIE, signed_in.session.expose(), SESSION_HOURS * 3600).parse() {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = set_cookie(&s, LOGIN_COOKIE, "", 0).parse() {
        h.append(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(s): State<Arc<Shared>>,
    caller: UiCaller,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = caller.check_csrf(&form.csrf) {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = s.ops.sign_out(&caller.0.actor, token).await {
            tracing::error!(error = %e.message, "cannot end a session");
        }
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = set_cookie(&s, SESSION_COOKIE, "", 0).parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn account_page(caller: UiCaller) -> Response {
    account_view(&caller, None, StatusCode::OK)
}

fn account_view(caller: &UiCaller, error: Option<&str>, status: StatusCode) -> Response {
    let c = &caller.0;
    page(
        status,
        crate::web::render(
            "account.html",
            serde_json::json!({"title": "Account", "me": &c.user, "csrf": &c.csrf, "error": error, "must_change": c.user.must_change_password}),
        ),
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

async fn change_password(State(s): State<Arc<Shared>>, caller: UiCaller, Form(form): Form<PasswordForm>) -> Response {
    if let Err(r) = caller.check_csrf(&form.csrf) {
        return r;
    }
    let user = &caller.0.user;
    if form.new != form.repeat {
        return account_view(&caller, Some("the two new passwords differ"), StatusCode::BAD_REQUEST);
    }
    // The change ends every session, this one included: the new one is here.
    let token = match s.ops.change_password(&caller.0.actor, &form.current, &form.new).await {
        Ok(token) => token,
        Err(e) if e.kind == OpErrorKind::NotFound => return Redirect::to("/login").into_response(),
        Err(e) if e.kind == OpErrorKind::Invalid => {
            return account_view(&caller, Some(&e.message), StatusCode::BAD_REQUEST);
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut r = Redirect::to(if user.role == Role::Employee { "/lookup" } else { "/" }).into_response();
    if let Ok(v) = set_cookie(&s, SESSION_COOKIE, token.expose(), SESSION_HOURS * 3600).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/account", get(account_page).post(change_password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(same(b"s3cret", "s3cret"));
        assert!(!same(b"s3cres", "s3cret"));
        assert!(!same(b"s3cre", "s3cret"));
        assert!(!same(b"", "s3cret"));
    }

    #[test]
    fn client_addresses_come_from_trusted_proxies_only() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.5, 10.0.0.2".parse().unwrap());
        let proxies = vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(client_address(ip("10.0.0.1"), &h, &proxies), "203.0.113.5", "behind two proxies");
        assert_eq!(
            client_address(ip("198.51.100.1"), &h, &proxies),
            "198.51.100.1",
            "a client's own header is ignored"
        );
        assert_eq!(client_address(ip("10.0.0.1"), &h, &[]), "10.0.0.1", "no proxies configured: none trusted");
        h.insert("x-forwarded-for", "not-an-address".parse().unwrap());
        assert_eq!(client_address(ip("10.0.0.1"), &h, &proxies), "10.0.0.1");
    }
}

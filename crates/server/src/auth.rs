//! Signing in: passwords (argon2id), browser sessions (an HttpOnly,
//! SameSite=Strict cookie; every change carries the session's CSRF token),
//! API tokens (bearer), login rate limiting, and the request extractors the
//! UI and API handlers take.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use honeytrail_app::ops::people::{verify_password, DUMMY_HASH};
use honeytrail_app::{Actor, OpError, OpErrorKind};
use honeytrail_core::access::{Permission, Role};
use honeytrail_store::{StoreError, User};
use serde::Deserialize;
use serde_json::json;

use super::{page, Shared};

pub const SESSION_COOKIE: &str = "ht_session";
const LOGIN_COOKIE: &str = "ht_login";
pub const CSRF_HEADER: &str = "x-csrf-token";
const SESSION_HOURS: i64 = 12;

/// Failed sign-ins, counted per (user name, address) and per address.
///
/// Wrong passwords for one user from one address slow that pair down
/// progressively (after [`FREE_FAILURES`], a wait of [`FIRST_DELAY`] that
/// doubles with each further failure, up to [`MAX_DELAY`]); nobody else is locked out:
/// the same user signs in from another address, another user from the same
/// one. An address that fails for many names is held back as a whole.
#[derive(Default)]
pub struct LoginLimiter {
    failures: HashMap<String, Tally>,
}

#[derive(Clone, Copy)]
struct Tally {
    count: u32,
    first: Instant,
    last: Instant,
}

const WINDOW: StdDuration = StdDuration::from_secs(15 * 60);
/// Failures of one (user, address) pair before it is slowed down.
pub const FREE_FAILURES: u32 = 5;
/// The wait after [`FREE_FAILURES`]; it doubles with every further failure.
pub const FIRST_DELAY: StdDuration = StdDuration::from_secs(5);
/// The longest one pair waits between tries.
pub const MAX_DELAY: StdDuration = StdDuration::from_secs(15 * 60);
/// Failures from one address, for any names, within the window.
const PER_ADDRESS: u32 = 50;

fn pair_key(user: &str, addr: &str) -> String {
    format!("pair:{}|{addr}", user.to_lowercase())
}

impl LoginLimiter {
    /// How long to wait before another attempt is allowed, if it is not.
    pub fn wait(&mut self, user: &str, addr: &str) -> Option<StdDuration> {
        let now = Instant::now();
        // Forget old tallies, so the map stays small whatever names an attacker tries.
        if self.failures.len() > 10_000 {
            self.failures.retain(|_, t| now.duration_since(t.last) < WINDOW.max(MAX_DELAY));
        }
        let mut longest: Option<StdDuration> = None;
        let mut hold = |wait: StdDuration| longest = Some(longest.map_or(wait, |w| w.max(wait)));
        if let Some(t) = self.failures.get(&pair_key(user, addr)).copied() {
            if t.count >= FREE_FAILURES {
                let delay = (FIRST_DELAY * (1u32 << (t.count - FREE_FAILURES).min(16))).min(MAX_DELAY);
                if let Some(left) = delay.checked_sub(now.duration_since(t.last)).filter(|d| !d.is_zero()) {
                    hold(left);
                }
            }
        }
        let addr_key = format!("addr:{addr}");
        if let Some(t) = self.failures.get(&addr_key).copied() {
            if now.duration_since(t.first) >= WINDOW {
                self.failures.remove(&addr_key);
            } else if t.count >= PER_ADDRESS {
                hold(WINDOW - now.duration_since(t.first));
            }
        }
        longest
    }

    pub fn failed(&mut self, user: &str, addr: &str) {
        let now = Instant::now();
        for key in [pair_key(user, addr), format!("addr:{addr}")] {
            let t = self.failures.entry(key).or_insert(Tally { count: 0, first: now, last: now });
            if now.duration_since(t.last) >= WINDOW.max(MAX_DELAY) {
                *t = Tally { count: 0, first: now, last: now };
            }
            t.count += 1;
            t.last = now;
        }
    }

    pub fn succeeded(&mut self, user: &str, addr: &str) {
        self.failures.remove(&pair_key(user, addr));
    }
}

/// A sign-in form's user name as it is checked, counted and logged: what a
/// visitor typed, unauthenticated, so without control characters (which
/// would forge log lines) and at most 64 characters long.
pub fn sign_in_name(raw: &str) -> String {
    raw.trim().chars().filter(|c| !c.is_control()).take(64).collect()
}

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
        };
        // The message only: command-line hints are not for the web.
        ApiError::new(status, e.code, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        OpError::from(e).into()
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

    /// Writes an audit entry for something this caller did that changes no
    /// row of its own (signing out). A failure is logged, never dropped.
    pub async fn audit(&self, s: &Shared, action: &str, target: &str, detail: Option<&str>) {
        audit_or_log(s, &self.user.name, action, target, detail, &self.from).await;
    }
}

/// Writes an audit entry; if the database refuses it, says so in the log.
pub(crate) async fn audit_or_log(
    s: &Shared,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<&str>,
    from: &str,
) {
    if let Err(e) = s.store.audit(actor, action, target, detail, Some(from)).await {
        tracing::error!(error = %e, action, target, "cannot write the audit log");
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
            let (user, role) = s.store.api_token_user(token.trim()).await?.ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "the API token is unknown or revoked")
            })?;
            return Ok(ApiCaller(Caller::new(user, role, None, from)));
        }
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(unauthenticated)?;
        let session = s.store.session(token).await?.ok_or_else(unauthenticated)?;
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
        let to_login = || Redirect::to("/login").into_response();
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return sso_employee(parts, s, from).map(UiCaller).ok_or_else(to_login);
        };
        let session = match s.store.session(token).await {
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
    let user = User {
        id: 0,
        name: format!("{name} (sso)"),
        role: Role::Employee,
        must_change_password: false,
        disabled: false,
        created_at: chrono::Utc::now(),
    };
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
}

async fn login_page(State(s): State<Arc<Shared>>, Query(q): Query<LoginQuery>) -> Response {
    let nonce = honeytrail_core::new_bearer("").expose().to_string();
    let mut response = page(
        StatusCode::OK,
        crate::web::render("login.html", serde_json::json!({"title": "Sign in", "csrf": &nonce, "error": q.error})),
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
}

async fn login(
    State(s): State<Arc<Shared>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    use std::sync::atomic::Ordering;
    let back = |why: &str| Redirect::to(&format!("/login?error={}", why)).into_response();
    // Login CSRF: the form must come from our page (double-submit cookie).
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same(c, &form.csrf)) {
        return back("expired");
    }
    let addr = client_address(Some(addr.ip()), &headers, &s.config().serve.trusted_proxies);
    let user = sign_in_name(&form.user);
    if let Some(wait) = s.logins.lock().expect("limiter lock").wait(&user, &addr) {
        s.counters.logins_throttled.fetch_add(1, Ordering::Relaxed);
        let minutes = wait.as_secs().div_ceil(60);
        let mut r = super::message_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            &format!("Too many failed sign-ins. Try again in {minutes} minute(s)."),
        );
        if let Ok(v) = wait.as_secs().to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let found = match s.store.user_credentials(&user).await {
        Ok(f) => f,
        Err(e) => return ApiError::from(e).into_response(),
    };
    // Verify against a fixed hash when the user is unknown, so timing does not
    // tell; argon2 is deliberately slow, so it runs off the async workers.
    let hash = found.as_ref().map_or(DUMMY_HASH.to_string(), |(_, h)| h.clone());
    let password = form.password.clone();
    let verified = tokio::task::spawn_blocking(move || verify_password(&hash, &password)).await.unwrap_or(false);
    let (ok, found) = match found {
        Some((u, _)) => (verified && !u.disabled, Some(u)),
        None => (false, None),
    };
    let Some(u) = found.filter(|_| ok) else {
        s.logins.lock().expect("limiter lock").failed(&user, &addr);
        s.counters.logins_failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(user = %user, from = %addr, "failed sign-in");
        audit_or_log(&s, &user, "login.failed", &user, None, &addr).await;
        return back("invalid");
    };
    s.logins.lock().expect("limiter lock").succeeded(&user, &addr);
    let token = match s.store.create_session(u.id, chrono::Duration::hours(SESSION_HOURS)).await {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    audit_or_log(&s, &u.name, "login", &u.name, None, &addr).await;
    let target = if u.role == Role::Employee { "/lookup" } else { "/" };
    let mut r = Redirect::to(target).into_response();
    let h = r.headers_mut();
    if let Ok(v) = set_cookie(&s, SESSION_COOKIE, token.expose(), SESSION_HOURS * 3600).parse() {
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
        if let Err(e) = s.store.end_session(token).await {
            tracing::error!(error = %e, "cannot end a session");
        }
    }
    caller.0.audit(&s, "logout", &caller.0.user.name, None).await;
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
    match s.ops.change_password(&caller.0.actor, &form.current, &form.new).await {
        Ok(()) => {}
        Err(e) if e.kind == OpErrorKind::NotFound => return Redirect::to("/login").into_response(),
        Err(e) if e.kind == OpErrorKind::Invalid => {
            return account_view(&caller, Some(&e.message), StatusCode::BAD_REQUEST);
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    // The change ended every session, this one included: start a new one here.
    let token = match s.store.create_session(user.id, chrono::Duration::hours(SESSION_HOURS)).await {
        Ok(t) => t,
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
    fn the_limiter_slows_one_pair_down_and_locks_nobody_else_out() {
        let mut l = LoginLimiter::default();
        for _ in 0..FREE_FAILURES {
            assert!(l.wait("bob", "10.0.0.1").is_none());
            l.failed("bob", "10.0.0.1");
        }
        let first = l.wait("BOB", "10.0.0.1").expect("the pair waits");
        assert!(first <= FIRST_DELAY && first > FIRST_DELAY / 2);
        l.failed("bob", "10.0.0.1");
        l.failed("bob", "10.0.0.1");
        let later = l.wait("bob", "10.0.0.1").unwrap();
        assert!(later > FIRST_DELAY * 3 && later <= FIRST_DELAY * 4, "{later:?}");
        assert!(l.wait("bob", "10.0.0.2").is_none(), "the same user from elsewhere is not locked out");
        assert!(l.wait("alice", "10.0.0.1").is_none(), "another user from the same address is not");
        l.succeeded("bob", "10.0.0.1");
        assert!(l.wait("bob", "10.0.0.1").is_none());
        // One address failing for many names is held back as a whole.
        for n in 0..PER_ADDRESS {
            l.failed(&format!("u{n}"), "10.0.0.9");
        }
        assert!(l.wait("anyone", "10.0.0.9").is_some());
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
        assert_eq!(sign_in_name(" ro\nb\u{1b}[2J "), "rob[2J");
        assert_eq!(sign_in_name(&"x".repeat(500)).len(), 64);
    }
}

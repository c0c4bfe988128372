//! Signing in and out: passwords checked against their argon2id hashes,
//! failed attempts slowed down per (user, address), browser sessions and
//! API tokens turned into the acting identity, password changes.
//!
//! The front doors carry the credentials (a cookie, a bearer header); what
//! a credential stands for, and every audit entry about it, is decided here.

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant};

use honeytrail_core::access::Role;
use honeytrail_core::Secret;
use honeytrail_store::AuditRecord;

use super::people::{hash_password_off_thread, verify_password, User, DUMMY_HASH};
use crate::{Actor, OpError, OpErrorKind, OpResult, Ops};

/// How long a browser session lives.
pub const SESSION_HOURS: i64 = 12;

/// Failed sign-ins, counted per (user name, address) and per address.
///
/// Wrong passwords for one user from one address slow that pair down
/// progressively (after [`FREE_FAILURES`], a wait of [`FIRST_DELAY`] that
/// doubles with each further failure, up to [`MAX_DELAY`]); nobody else is
/// locked out: the same user signs in from another address, another user
/// from the same one. An address that fails for many names is held back as
/// a whole.
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
    format!("pair:{}|{}", user.to_lowercase(), honeytrail_core::net::limit_key(addr))
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
    raw.trim().chars().filter(|&c| !honeytrail_core::encoding::hidden(c)).take(64).collect()
}

/// A sign-in that worked: the session's bearer token (for the cookie) and
/// who signed in.
#[derive(Debug)]
pub struct SignedIn {
    pub session: Secret,
    pub user: User,
}

/// A live browser session: who it belongs to and the token every change
/// made with it must carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf: String,
}

impl Ops {
    /// Signs `name` in with `password`, from the client address `from`.
    ///
    /// Refused (`Throttled`, with the seconds to wait) while that user and
    /// address are held back for earlier failures; a wrong password, an
    /// unknown or disabled user all fail alike (`Unauthenticated`) and in
    /// the same time. Both outcomes are audited (`login`, `login.failed`).
    pub async fn sign_in(&self, name: &str, password: &str, from: &str) -> OpResult<SignedIn> {
        let name = sign_in_name(name);
        let held = self.signals().logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).wait(&name, from);
        if let Some(wait) = held {
            let minutes = wait.as_secs().div_ceil(60);
            return Err(OpError {
                retry_after_seconds: Some(wait.as_secs().max(1)),
                ..OpError::new(
                    OpErrorKind::Throttled,
                    "too_many_sign_ins",
                    format!("Too many failed sign-ins. Try again in {minutes} minute(s)."),
                )
            });
        }
        let found = self.store.user_credentials(&name).await?;
        // Verified against a fixed hash when the user is unknown, so timing
        // does not tell; argon2 is slow on purpose, so it runs off the async
        // workers.
        let hash = found.as_ref().map_or(DUMMY_HASH.to_string(), |(_, h)| h.clone());
        let given = password.to_string();
        let verified = tokio::task::spawn_blocking(move || verify_password(&hash, &given)).await.unwrap_or(false);
        let user = found.map(|(u, _)| u).filter(|u| verified && !u.disabled);
        let limiter = || self.signals().logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(user) = user else {
            limiter().failed(&name, from);
            tracing::warn!(user = %name, from = %from, "failed sign-in");
            self.store.audit(&name, "login.failed", &name, None, Some(from)).await?;
            return Err(OpError::new(OpErrorKind::Unauthenticated, "invalid", "wrong user name or password"));
        };
        limiter().succeeded(&name, from);
        let session = self
            .store
            .audited(AuditRecord {
                actor: user.name.clone(),
                action: "login".into(),
                target: user.name.clone(),
                detail: None,
                from: Some(from.to_string()),
            })
            .create_session(user.id, chrono::Duration::hours(SESSION_HOURS))
            .await?;
        Ok(SignedIn { session, user })
    }

    /// The live session a cookie's token stands for, if any.
    pub async fn session(&self, token: &str) -> OpResult<Option<Session>> {
        Ok(self.store.session(token).await?.map(|s| Session { user: s.user, csrf: s.csrf }))
    }

    /// The user and role an API token stands for, if it is live: the role is
    /// the token's, never more than its user holds now.
    pub async fn api_token_caller(&self, token: &str) -> OpResult<Option<(User, Role)>> {
        Ok(self.store.api_token_user(token).await?)
    }

    /// Ends the actor's session of `token` (signing out), audited.
    pub async fn sign_out(&self, actor: &Actor, token: &str) -> OpResult<()> {
        self.audited(actor, "logout", &actor.name, None).end_session(token).await?;
        Ok(())
    }

    /// Changes the actor's own password: the current one must match, the
    /// new one follow the policy. Every session of theirs ends with it
    /// (whoever held a cookie made with the old password is signed out);
    /// the returned token is the actor's new session.
    pub async fn change_password(&self, actor: &Actor, current: &str, new: &str) -> OpResult<Secret> {
        let Some((user, hash)) = self.store.user_credentials(&actor.name).await? else {
            return Err(OpError::not_found(format!("user {:?}", actor.name)));
        };
        let current = current.to_string();
        let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &current)).await.unwrap_or(false);
        if !matches {
            return Err(OpError::invalid("the current password is wrong"));
        }
        honeytrail_core::access::check_new_password(&user.name, new)?;
        let hashed = hash_password_off_thread(new.to_string()).await?;
        self.audited(actor, "user.password", &user.name, None).set_password(user.id, &hashed, false).await?;
        Ok(self.store.create_session(user.id, chrono::Duration::hours(SESSION_HOURS)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(sign_in_name(" ro\nb\u{1b}[2J "), "rob[2J");
        assert_eq!(sign_in_name(&"x".repeat(500)).len(), 64);
    }
}

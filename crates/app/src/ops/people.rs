//! People: users and their roles, API tokens, the audit log, and the
//! employee's "what is this?" report of a found key.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use honeytrail_core::access::{Permission, Role};
use honeytrail_store::StoreError;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ops::tokens::{cursor_at, page_limit, page_of};
use crate::ops::Page;
use crate::{Actor, OpError, OpResult, Ops};
pub use honeytrail_core::access::{ApiToken, AuditEntry, User};

pub fn hash_password(password: &str) -> OpResult<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| {
        OpError::new(crate::OpErrorKind::Unavailable, "hash_failed", format!("cannot hash the password: {e}"))
    })
}

/// An argon2 hash of a random string, verified against for unknown users so
/// that timing does not tell which user names exist.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2b9zwM1x1yHh3ugGfS8CdpUvo6j9lfeQ5wY6N0Y7hYk";

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A one-time password: 20 characters without look-alikes (~114 bits).
pub fn new_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

/// A user to add: their name and role.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    /// The user's name (what they sign in with)
    pub name: String,
    /// admin, responder, viewer or employee
    #[cfg_attr(feature = "clap", arg(long))]
    pub role: String,
}

/// A user just added, with the one-time password to hand them.
#[derive(Debug, Clone, Serialize)]
pub struct NewUser {
    pub user: User,
    pub one_time_password: String,
}

/// An API token just made, with the bearer token itself, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct NewApiToken {
    pub api_token: ApiToken,
    pub token: String,
}

/// What an API token is asked for: its purpose and, optionally, a role
/// lower than its user's.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct ApiTokenRequest {
    /// What the token is for
    #[cfg_attr(feature = "clap", arg(id = "purpose", long = "for", value_name = "PURPOSE"))]
    pub name: String,
    /// The token's role (at most the user's); default: the user's
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub role: Option<String>,
}

/// What an employee pasted and where they found it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupRequest {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub found_at: String,
}

/// What an employee learns about a credential they found.
#[derive(Debug, Clone, Serialize)]
pub struct LookupAnswer {
    pub access_key_id: String,
    pub decoy: bool,
    /// The number of the incident their report opened, for a decoy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<i64>,
    pub message: &'static str,
}

impl Ops {
    pub async fn users(&self, actor: &Actor) -> OpResult<Vec<User>> {
        actor.require(Permission::Administer)?;
        Ok(self.store.users().await?)
    }

    /// One page of the users, by name.
    pub async fn user_page(&self, actor: &Actor, limit: Option<i64>, cursor: &Option<String>) -> OpResult<Page<User>> {
        actor.require(Permission::Administer)?;
        let limit = page_limit(limit)?;
        // The name in hex: whatever it holds, the cursor is safe in a URL.
        let after = cursor_at(cursor, 'u', |hex| {
            let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok());
            String::from_utf8(bytes.collect::<Option<Vec<u8>>>()?).ok()
        })?;
        let users = self.store.users_page(after.as_deref(), limit + 1).await?;
        Ok(page_of(users, limit, |u| format!("u{}", u.name.bytes().map(|b| format!("{b:02x}")).collect::<String>())))
    }

    /// Adds a user with a one-time password (changed at first sign-in).
    pub async fn add_user(&self, actor: &Actor, r: &UserRequest) -> OpResult<NewUser> {
        actor.require(Permission::Administer)?;
        let role: Role = r.role.parse()?;
        let name = r.name.trim();
        honeytrail_core::access::check_user_name(name)?;
        let password = new_password();
        let hash = hash_password_off_thread(password.clone()).await?;
        let user =
            self.audited(actor, "user.create", name, Some(role.as_str())).add_user(name, role, &hash, true).await?;
        Ok(NewUser { user, one_time_password: password })
    }

    /// Creates the first admin on first start; `None` when users exist.
    /// Replicas starting together on one database make it once: the others
    /// find it made and start normally.
    pub async fn first_admin(&self) -> OpResult<Option<String>> {
        if self.store.user_count().await? > 0 {
            return Ok(None);
        }
        let password = new_password();
        let hash = hash_password_off_thread(password.clone()).await?;
        let actor = Actor::system("honeytrail");
        let made = self
            .store
            .audited(honeytrail_store::AuditRecord {
                actor: actor.name,
                action: "user.create".into(),
                target: "admin".into(),
                detail: Some("first admin, created on first start".into()),
                from: None,
            })
            .add_first_user("admin", Role::Admin, &hash)
            .await?;
        Ok(made.then_some(password))
    }

    /// A new one-time password for a user.
    pub async fn reset_password(&self, actor: &Actor, name: &str) -> OpResult<String> {
        actor.require(Permission::Administer)?;
        let user = self.store.user(name).await?;
        let password = new_password();
        let hash = hash_password_off_thread(password.clone()).await?;
        self.audited(actor, "user.password-reset", name, None).set_password(user.id, &hash, true).await?;
        Ok(password)
    }

    pub async fn set_user_role(&self, actor: &Actor, name: &str, role: &str) -> OpResult<User> {
        actor.require(Permission::Administer)?;
        let role: Role = role.parse()?;
        Ok(self.audited(actor, "user.role", name, Some(role.as_str())).set_user_role(name, role).await?)
    }

    pub async fn disable_user(&self, actor: &Actor, name: &str) -> OpResult<User> {
        actor.require(Permission::Administer)?;
        Ok(self.audited(actor, "user.disable", name, None).disable_user(name).await?)
    }

    /// Creates an API token for `for_user` (an admin may name anyone; others
    /// only themselves), with a role no higher than that user's.
    pub async fn create_api_token(&self, actor: &Actor, for_user: &str, r: &ApiTokenRequest) -> OpResult<NewApiToken> {
        if for_user != actor.name {
            actor.require(Permission::Administer)?;
        }
        let user = self.store.user(for_user).await?;
        if user.disabled {
            return Err(OpError::conflict("disabled", format!("{for_user} is disabled")));
        }
        let role = match r.role.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => r.parse()?,
            None => user.role,
        };
        let store = self.store.audited(honeytrail_store::AuditRecord {
            actor: actor.name.clone(),
            action: "api_token.create".into(),
            target: format!("API token for {for_user}"),
            detail: Some(role.as_str().to_string()),
            from: Some(actor.from.clone()),
        });
        let (token, secret) = store.create_api_token(&user, &r.name, role).await?;
        Ok(NewApiToken { api_token: token, token: secret.expose().to_string() })
    }

    /// API tokens: an admin sees all, anyone else their own.
    pub async fn api_tokens(&self, actor: &Actor) -> OpResult<Vec<ApiToken>> {
        let owner = if actor.role == Role::Admin { None } else { Some(actor.name.as_str()) };
        Ok(self.store.api_tokens(owner).await?)
    }

    pub async fn revoke_api_token(&self, actor: &Actor, id: i64) -> OpResult<ApiToken> {
        let owner = if actor.role == Role::Admin { None } else { Some(actor.name.as_str()) };
        Ok(self
            .audited(actor, "api_token.revoke", &format!("API token #{id}"), None)
            .revoke_api_token(id, owner)
            .await?)
    }

    pub async fn audit_log(&self, actor: &Actor, limit: i64) -> OpResult<Vec<AuditEntry>> {
        actor.require(Permission::Administer)?;
        Ok(self.store.audit_log(limit.clamp(1, 100_000)).await?)
    }

    /// The newest `limit` audit entries as a CSV file. Actors, targets and
    /// details can be written by others (an employee's report, a user
    /// name): every cell is defused for the spreadsheet it will open in.
    pub async fn audit_csv(&self, actor: &Actor, limit: i64) -> OpResult<Vec<u8>> {
        let entries = self.audit_log(actor, limit).await?;
        let mut w = csv::Writer::from_writer(Vec::new());
        let failed = |e: &dyn std::fmt::Display| {
            OpError::new(crate::OpErrorKind::Unavailable, "export_failed", format!("cannot write the CSV: {e}"))
        };
        w.write_record(["id", "at", "actor", "action", "target", "detail", "from"]).map_err(|e| failed(&e))?;
        for e in &entries {
            let row = [
                e.id.to_string(),
                e.at.to_rfc3339(),
                e.actor.clone(),
                e.action.clone(),
                e.target.clone(),
                e.detail.clone().unwrap_or_default(),
                e.from.clone().unwrap_or_default(),
            ];
            w.write_record(row.iter().map(|c| honeytrail_core::encoding::spreadsheet_cell(c).into_owned()))
                .map_err(|e| failed(&e))?;
        }
        w.into_inner().map_err(|e| failed(&e))
    }

    /// One page of the audit log, newest first.
    pub async fn audit_page(
        &self,
        actor: &Actor,
        limit: Option<i64>,
        cursor: &Option<String>,
    ) -> OpResult<Page<AuditEntry>> {
        actor.require(Permission::Administer)?;
        let limit = page_limit(limit)?;
        let before = cursor_at(cursor, 'a', |id| id.parse::<i64>().ok())?;
        let entries = self.store.audit_page(before, limit + 1).await?;
        Ok(page_of(entries, limit, |e| format!("a{}", e.id)))
    }

    /// What an employee learns about a credential they found. The answer
    /// never touches AWS, so asking does not fire the token; a decoy is
    /// reported as an incident of kind `report`.
    pub async fn lookup(&self, actor: &Actor, r: &LookupRequest) -> OpResult<LookupAnswer> {
        let (text, found_at) = (&r.text, &r.found_at);
        actor.require(Permission::Lookup)?;
        if let Err(wait) = self.signals().count_lookup(&actor.name) {
            tracing::warn!(user = %actor.name, from = %actor.from, "lookups refused: too many");
            return Err(OpError::new(
                crate::OpErrorKind::Throttled,
                "too_many_lookups",
                format!(
                    "more than {} lookups in {} minutes; try again in {} minutes, or send what you found to the security team",
                    crate::context::LOOKUPS_PER_WINDOW,
                    crate::context::LOOKUP_WINDOW.as_secs() / 60,
                    wait.div_ceil(60)
                ),
            ));
        }
        let key = honeytrail_core::keyid::find_in_text(text).ok_or_else(|| {
            OpError::invalid("no AWS access key ID (AKIA… or ASIA…, 20 characters) found in what was pasted")
        })?;
        let found_at = found_at.trim();
        let token = match self.store.find_token(&key).await {
            Ok(t) => Some(t),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let Some(token) = token else {
            self.store.audit(&actor.name, "lookup", &key, Some("not a decoy"), Some(&actor.from)).await?;
            return Ok(LookupAnswer {
                access_key_id: key,
                decoy: false,
                report: None,
                message: "This key is not one of our decoys. If it is a real credential, treat it as exposed: do not use it, and report it to the security team so it can be revoked.",
            });
        };
        let note = if found_at.is_empty() {
            format!("{} reported finding this key", actor.name)
        } else {
            format!("{} reported finding this key at: {}", actor.name, found_at.chars().take(500).collect::<String>())
        };
        let incident = self
            .audited(actor, "lookup", &token.access_key_id, Some("decoy; reported as an incident"))
            .report_found_key(token.id, &actor.name, &note)
            .await?;
        self.alert_queued();
        Ok(LookupAnswer {
            access_key_id: token.access_key_id,
            decoy: true,
            report: Some(incident),
            message: "This is a monitored decoy credential. Do not use it. Your report was sent to the security team, who will follow up; thank you.",
        })
    }
}

/// Argon2 is slow on purpose; it runs off the async workers.
pub async fn hash_password_off_thread(password: String) -> OpResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| OpError::new(crate::OpErrorKind::Unavailable, "hash_failed", e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use honeytrail_core::access::check_new_password;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "wrong"));
        assert!(!verify_password(DUMMY_HASH, ""));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok(), "the dummy hash parses, so unknown users cost the same");
        assert_eq!(new_password().len(), 20);
        assert!(check_new_password("bob", "short").is_err());
        assert!(check_new_password("bob", "a long enough one").is_ok());
    }
}

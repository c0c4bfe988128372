//! Users, browser sessions, API tokens, the audit log, and employee reports.
//!
//! Passwords arrive already hashed (argon2 PHC strings made by the server);
//! session and API tokens are looked up by their SHA-256 only, so a copy of
//! the database lets no one log in.

use chrono::{DateTime, Duration, Utc};
use honeytrail_core::access::Role;
use honeytrail_core::{bearer_hash, new_bearer, Secret};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::incidents::{log, queue_alert};
use crate::registry::{from_millis, millis};
use crate::{Store, StoreError};
pub use honeytrail_core::access::{ApiToken, AuditEntry, User};

/// A signed-in browser session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    /// The token forms and API calls made with the cookie must carry.
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

fn role_of(raw: String) -> Result<Role, StoreError> {
    raw.parse().map_err(|e: honeytrail_core::Invalid| StoreError::Corrupt { what: "role", detail: e.0 })
}

const USER_COLUMNS: &str = "u.id AS user_id, u.name AS user_name, u.role AS user_role, u.must_change_password, u.disabled, u.created_at AS user_created_at";

fn user_from_row(r: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: r.try_get("user_id")?,
        name: r.try_get("user_name")?,
        role: role_of(r.try_get("user_role")?)?,
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: from_millis(r.try_get("user_created_at")?)?,
    })
}

/// An audit entry to write: who did what to which thing, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
    pub from: Option<String>,
}

pub(crate) async fn insert_audit(conn: &mut sqlx::AnyConnection, r: &AuditRecord) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail, from_addr) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(millis(Utc::now()))
        .bind(&r.actor)
        .bind(&r.action)
        .bind(&r.target)
        .bind(&r.detail)
        .bind(&r.from)
        .execute(conn)
        .await?;
    Ok(())
}

/// A user name, by the core's policy.
fn check_name(name: &str) -> Result<(), StoreError> {
    honeytrail_core::access::check_user_name(name).map_err(|e| StoreError::Refused(e.0))
}

impl Store {
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?.try_get(0)?)
    }

    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        must_change_password: bool,
    ) -> Result<User, StoreError> {
        check_name(name)?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        if exists.is_some() {
            return Err(StoreError::Refused(format!("a user named {name:?} exists")));
        }
        self.exec(sqlx::query(
            "INSERT INTO users (name, role, password_hash, must_change_password, disabled, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(must_change_password as i64)
        .bind(millis(Utc::now()))
        )
        .await?;
        self.user(name).await
    }

    /// Adds the first user, only while there is none, in one statement: of
    /// replicas starting together on one database exactly one makes it
    /// (with the pending audit entry); the others get `false`.
    pub async fn add_first_user(&self, name: &str, role: Role, password_hash: &str) -> Result<bool, StoreError> {
        check_name(name)?;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO users (name, role, password_hash, must_change_password, disabled, created_at)              SELECT $1, $2, $3, 1, 0, $4 WHERE NOT EXISTS (SELECT 1 FROM users) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(millis(Utc::now()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.commit(tx).await?;
        Ok(true)
    }

    pub async fn user(&self, name: &str) -> Result<User, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {name:?}")))?;
        user_from_row(&row)
    }

    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.users_page(None, i64::MAX).await
    }

    /// Users by name: those after `after`, at most `limit`.
    pub async fn users_page(&self, after: Option<&str>, limit: i64) -> Result<Vec<User>, StoreError> {
        let rows = match after {
            None => {
                sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.name LIMIT $1"))
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(name) => {
                sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users u WHERE u.name > $1 ORDER BY u.name LIMIT $2"))
                    .bind(name)
                    .bind(limit.max(0))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(user_from_row).collect()
    }

    /// A user and their password hash, for signing in.
    pub async fn user_credentials(&self, name: &str) -> Result<Option<(User, String)>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?))).transpose()
    }

    /// Sets a user's password and ends every session they have, in one
    /// transaction: whoever knew the old password (or stole a cookie made
    /// with it) is signed out by the change or the reset.
    pub async fn set_password(&self, user_id: i64, password_hash: &str, must_change: bool) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1, must_change_password = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(must_change as i64)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user #{user_id}")));
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        self.commit(tx).await?;
        Ok(())
    }

    pub async fn set_user_role(&self, name: &str, role: Role) -> Result<User, StoreError> {
        let user = self.user(name).await?;
        self.exec(sqlx::query("UPDATE users SET role = $1 WHERE id = $2").bind(role.as_str()).bind(user.id)).await?;
        self.user(name).await
    }

    /// Disables a user: their sessions end and their API tokens stop working.
    pub async fn disable_user(&self, name: &str) -> Result<User, StoreError> {
        let user = self.user(name).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET disabled = 1 WHERE id = $1").bind(user.id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user.id).execute(&mut *tx).await?;
        self.commit(tx).await?;
        self.user(name).await
    }

    /// Starts a session (and forgets expired ones) in one transaction, with
    /// the pending audit entry; returns its bearer token (for the cookie).
    pub async fn create_session(&self, user_id: i64, ttl: Duration) -> Result<Secret, StoreError> {
        let token = new_bearer("hts_");
        let csrf = new_bearer("");
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(millis(now)).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(bearer_hash(token.expose()))
        .bind(user_id)
        .bind(csrf.expose())
        .bind(millis(now))
        .bind(millis(now + ttl))
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(token)
    }

    /// The live session of a cookie's token, if any.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0"
        ))
        .bind(bearer_hash(token))
        .bind(millis(Utc::now()))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Session {
                user: user_from_row(&r)?,
                csrf: r.try_get("csrf")?,
                expires_at: from_millis(r.try_get("expires_at")?)?,
            })
        })
        .transpose()
    }

    pub async fn end_session(&self, token: &str) -> Result<(), StoreError> {
        self.exec(sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(bearer_hash(token))).await?;
        Ok(())
    }

    /// Creates an API token for a user; the token is returned once, only its hash is kept.
    pub async fn create_api_token(
        &self,
        user: &User,
        name: &str,
        role: Role,
    ) -> Result<(ApiToken, Secret), StoreError> {
        if !role.within(user.role) {
            return Err(StoreError::Refused(format!(
                "a {} cannot hold a {role} token; choose {} or less",
                user.role, user.role
            )));
        }
        if name.trim().is_empty() || name.len() > 100 {
            return Err(StoreError::Refused("give the API token a name of 1–100 characters".into()));
        }
        let token = new_bearer("htk_");
        let row = sqlx::query(
            "INSERT INTO api_tokens (user_id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user.id)
        .bind(name.trim())
        .bind(role.as_str())
        .bind(bearer_hash(token.expose()))
        .bind(millis(Utc::now()))
        .fetch_one(&self.pool)
        .await?;
        let id: i64 = row.try_get(0)?;
        let made = self.api_tokens(None).await?.into_iter().find(|t| t.id == id).expect("just inserted");
        Ok((made, token))
    }

    /// API tokens, of one user or of everyone.
    pub async fn api_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, u.name AS user_name, t.name, t.role, t.created_at, t.last_used_at, t.revoked_at FROM api_tokens t \
             JOIN users u ON u.id = t.user_id WHERE ($1 = '' OR u.name = $1) ORDER BY t.id",
        )
        .bind(user.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiToken {
                    id: r.try_get("id")?,
                    user: r.try_get("user_name")?,
                    name: r.try_get("name")?,
                    role: role_of(r.try_get("role")?)?,
                    created_at: from_millis(r.try_get("created_at")?)?,
                    last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(from_millis).transpose()?,
                    revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_millis).transpose()?,
                })
            })
            .collect()
    }

    /// The user and role an API token stands for, if it is live.
    pub async fn api_token_user(&self, token: &str) -> Result<Option<(User, Role)>, StoreError> {
        let hash = bearer_hash(token);
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, t.role AS token_role, t.id AS token_id FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled = 0"
        ))
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let user = user_from_row(&r)?;
        let role = role_of(r.try_get("token_role")?)?;
        let id: i64 = r.try_get("token_id")?;
        self.exec(
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2").bind(millis(Utc::now())).bind(id),
        )
        .await?;
        // A token never grants more than its user has now.
        let role = if role.within(user.role) { role } else { user.role };
        Ok(Some((user, role)))
    }

    /// Revokes an API token; `owner` limits it to that user's tokens.
    pub async fn revoke_api_token(&self, id: i64, owner: Option<&str>) -> Result<ApiToken, StoreError> {
        let token = self
            .api_tokens(owner)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("API token #{id}")))?;
        if token.revoked_at.is_some() {
            return Err(StoreError::Refused(format!("API token #{id} is already revoked")));
        }
        self.exec(sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2").bind(millis(Utc::now())).bind(id))
            .await?;
        Ok(self.api_tokens(None).await?.into_iter().find(|t| t.id == id).expect("exists"))
    }

    /// Records something done that changed nothing in the store (a test
    /// alert sent, a lookup): who, what, on what, from where. Changes are
    /// audited through [`Store::audited`], in their own transaction.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: Option<&str>,
        from: Option<&str>,
    ) -> Result<(), StoreError> {
        let record = AuditRecord {
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail: detail.map(str::to_string),
            from: from.map(str::to_string),
        };
        let mut conn = self.pool.acquire().await?;
        insert_audit(&mut conn, &record).await
    }

    /// The audit log, newest first, at most `limit` entries.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_page(None, limit).await
    }

    /// The audit log, newest first: entries before entry `before`, at most
    /// `limit`.
    pub async fn audit_page(&self, before: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, detail, from_addr FROM audit_log WHERE id < $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: from_millis(r.try_get("at")?)?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                    from: r.try_get("from_addr")?,
                })
            })
            .collect()
    }

    /// Files an employee's report of a found key as an incident of kind
    /// `report` (not an intrusion), with an alert. Returns the incident id.
    /// The same person reporting the same key again while their report is
    /// still open files nothing new (no incident, no alert): thirty lookups
    /// of one decoy are one report.
    pub async fn report_found_key(&self, token_id: i64, reporter: &str, note: &str) -> Result<i64, StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        let earlier = sqlx::query(&format!(
            "SELECT i.id FROM incidents i JOIN incident_log l ON l.incident_id = i.id \
             WHERE i.token_id = $1 AND i.kind = 'report' AND i.state IN ({}) AND l.kind = 'report' AND l.actor = $2 \
             ORDER BY i.id DESC LIMIT 1",
            honeytrail_core::incident::IncidentState::accepting_events_sql()
        ))
        .bind(token_id)
        .bind(reporter)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = earlier {
            tx.rollback().await?;
            return Ok(row.try_get(0)?);
        }
        let retired: String = sqlx::query("SELECT state FROM tokens WHERE id = $1")
            .bind(token_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token #{token_id}")))?
            .try_get(0)?;
        let row = sqlx::query(
            "INSERT INTO incidents (token_id, state, first_seen, last_seen, event_count, opened_at, updated_at, token_retired, kind) \
             VALUES ($1, 'open', $2, $3, 0, $4, $5, $6, 'report') RETURNING id",
        )
        .bind(token_id)
        .bind(millis(now))
        .bind(millis(now))
        .bind(millis(now))
        .bind(millis(now))
        .bind((retired == "retired") as i64)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get(0)?;
        log(
            &mut tx,
            id,
            now,
            reporter,
            "report",
            None,
            Some(honeytrail_core::incident::IncidentState::Open),
            Some(note),
        )
        .await?;
        queue_alert(&mut tx, id, "incident.opened", now, self.update_interval).await?;
        self.commit(tx).await?;
        Ok(id)
    }
}

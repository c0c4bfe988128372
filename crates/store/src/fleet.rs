//! Fleet enrolment secrets: what a host presents to ask for its own key.
//!
//! A secret is shown once when made and kept only as its SHA-256. It is
//! limited in uses (or explicitly unlimited) and always in time, because it
//! travels in places others can read (EC2 user-data, an image build); using
//! it is one atomic statement, so two hosts racing for the last use cannot
//! both get it.

use chrono::{DateTime, Utc};
use honeytrail_core::fleet::EnrolmentGuard;
use honeytrail_core::template::PlacementTemplate;
use honeytrail_core::{bearer_hash, new_bearer, Labels, Secret};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::registry::{from_millis, millis};
use crate::{Store, StoreError};
pub use honeytrail_core::fleet::EnrolmentSecret;

/// The longest an enrolment secret may live.
pub const MAX_ENROLMENT_DAYS: i64 = 90;

fn list(raw: Option<String>) -> Vec<String> {
    raw.map(|r| r.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

fn joined(items: &[String]) -> Option<String> {
    (!items.is_empty()).then(|| items.join(","))
}

pub(crate) const COLUMNS: &str = "id, uses, used, expires_at, labels, template, created_by, created_at, last_used_at, \
     revoked_at, allowed_from, expected, ec2_accounts, refused, last_refused_at, last_refusal";

pub(crate) fn enrolment(r: &AnyRow) -> Result<EnrolmentSecret, StoreError> {
    let labels: String = r.try_get("labels")?;
    Ok(EnrolmentSecret {
        id: r.try_get("id")?,
        uses: r.try_get("uses")?,
        used: r.try_get("used")?,
        expires_at: from_millis(r.try_get("expires_at")?)?,
        labels: serde_json::from_str(&labels)
            .map_err(|e| StoreError::Corrupt { what: "enrolment labels", detail: e.to_string() })?,
        template: r.try_get("template")?,
        created_by: r.try_get("created_by")?,
        created_at: from_millis(r.try_get("created_at")?)?,
        last_used_at: r.try_get::<Option<i64>, _>("last_used_at")?.map(from_millis).transpose()?,
        revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_millis).transpose()?,
        guard: EnrolmentGuard {
            allowed_from: list(r.try_get("allowed_from")?),
            expected: r.try_get("expected")?,
            ec2_accounts: list(r.try_get("ec2_accounts")?),
        },
        refused: r.try_get("refused")?,
        last_refused_at: r.try_get::<Option<i64>, _>("last_refused_at")?.map(from_millis).transpose()?,
        last_refusal: r.try_get("last_refusal")?,
    })
}

impl Store {
    /// Makes an enrolment secret; the secret is returned once, only its
    /// hash is kept.
    pub async fn create_enrolment(
        &self,
        uses: Option<i64>,
        expires_at: DateTime<Utc>,
        labels: &Labels,
        template: Option<&str>,
        guard: &EnrolmentGuard,
        created_by: &str,
    ) -> Result<(EnrolmentSecret, Secret), StoreError> {
        if let Some(t) = template {
            self.template(t).await.map_err(|_| {
                StoreError::Refused(format!(
                    "there is no placement template {t}; `honeytrail template list` shows them"
                ))
            })?;
        }
        if guard.expected.is_some_and(|e| e < 1 || uses.is_some_and(|u| e > u)) {
            return Err(StoreError::Refused(
                "the expected number of hosts is at least one and at most the number of uses".into(),
            ));
        }
        if uses.is_some_and(|u| u < 1) {
            return Err(StoreError::Refused("an enrolment secret needs at least one use (or --unlimited)".into()));
        }
        let now = Utc::now();
        if expires_at <= now || expires_at > now + chrono::Duration::days(MAX_ENROLMENT_DAYS) {
            return Err(StoreError::Refused(format!(
                "an enrolment secret expires within {MAX_ENROLMENT_DAYS} days, and in the future"
            )));
        }
        let secret = new_bearer("");
        let labels = serde_json::to_string(labels).map_err(|e| StoreError::Refused(e.to_string()))?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO enrollment_secrets (secret_hash, uses, used, expires_at, labels, template, created_by, created_at, \
             allowed_from, expected, ec2_accounts) VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
        ))
        .bind(bearer_hash(secret.expose()))
        .bind(uses)
        .bind(millis(expires_at))
        .bind(labels)
        .bind(template)
        .bind(created_by)
        .bind(millis(now))
        .bind(joined(&guard.allowed_from))
        .bind(guard.expected)
        .bind(joined(&guard.ec2_accounts))
        .fetch_one(&mut *tx)
        .await?;
        let made = enrolment(&row)?;
        self.commit(tx).await?;
        Ok((made, secret))
    }

    /// Every enrolment secret, newest first.
    pub async fn enrolments(&self) -> Result<Vec<EnrolmentSecret>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM enrollment_secrets ORDER BY id DESC"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(enrolment).collect()
    }

    /// Revokes an enrolment secret: no host enrols with it any more (hosts
    /// already enrolled keep their keys).
    pub async fn revoke_enrolment(&self, id: i64) -> Result<EnrolmentSecret, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "UPDATE enrollment_secrets SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(millis(Utc::now()))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(match self.enrolments().await?.into_iter().find(|e| e.id == id) {
                Some(_) => StoreError::Refused(format!("enrolment secret #{id} is already revoked")),
                None => StoreError::NotFound(format!("enrolment secret #{id}")),
            });
        };
        let revoked = enrolment(&row)?;
        self.commit(tx).await?;
        Ok(revoked)
    }

    /// Spends one use of the secret, atomically: the enrolment it belongs
    /// to, or why it cannot be used (unknown, revoked, expired, used up).
    pub async fn use_enrolment(&self, secret: &str) -> Result<EnrolmentSecret, StoreError> {
        let mut tx = self.begin_write().await?;
        match self.spend_enrolment(&mut tx, secret, Utc::now()).await? {
            Some(used) => {
                self.commit(tx).await?;
                Ok(used)
            }
            None => {
                tx.rollback().await?;
                Err(self.why_unusable(secret).await?)
            }
        }
    }

    /// Spends one use of the secret inside `tx`; `None` when it cannot be used.
    pub(crate) async fn spend_enrolment(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        secret: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<EnrolmentSecret>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE enrollment_secrets SET used = used + 1, last_used_at = $1 \
             WHERE secret_hash = $2 AND revoked_at IS NULL AND expires_at > $1 AND (uses IS NULL OR used < uses) \
             RETURNING {COLUMNS}"
        ))
        .bind(millis(now))
        .bind(bearer_hash(secret.trim()))
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(enrolment).transpose()
    }

    /// The enrolment secret `secret` is, whatever its state.
    pub async fn enrolment_by_secret(&self, secret: &str) -> Result<Option<EnrolmentSecret>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM enrollment_secrets WHERE secret_hash = $1"))
            .bind(bearer_hash(secret.trim()))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(enrolment).transpose()
    }

    /// Counts a refused attempt with enrolment secret `id` and keeps why.
    pub async fn record_refusal(&self, id: i64, why: &str) -> Result<(), StoreError> {
        let why: String = why.chars().take(500).collect();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE enrollment_secrets SET refused = refused + 1, last_refused_at = $1, last_refusal = $2 WHERE id = $3",
        )
        .bind(millis(Utc::now()))
        .bind(why)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }

    /// The key of the host that last enrolled with secret `id`, if any:
    /// where an incident about the secret's misuse goes (the secret most
    /// likely leaked from a host it enrolled).
    pub async fn last_enrolled_key(&self, id: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT token_id FROM agents WHERE enrollment_id = $1 AND token_id IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Why `secret` cannot enrol a host: unknown, revoked, expired or used up.
    pub(crate) async fn why_unusable(&self, secret: &str) -> Result<StoreError, StoreError> {
        Ok(enrolment_refusal(self.enrolment_by_secret(secret).await?.as_ref()))
    }
}

/// The refusal for a secret that is unknown (`None`) or not active.
pub fn enrolment_refusal(known: Option<&EnrolmentSecret>) -> StoreError {
    match known {
        None => StoreError::Refused("the enrolment secret is not known: check that it was copied whole".into()),
        Some(e) => StoreError::Refused(format!(
            "enrolment secret #{} is {}: ask an admin for a new one (`honeytrail enrol create`)",
            e.id,
            e.state(Utc::now())
        )),
    }
}

const TEMPLATE_COLUMNS: &str = "name, format, path, profile, owner, mode, credential";

fn template(r: &AnyRow) -> Result<PlacementTemplate, StoreError> {
    let mode: i64 = r.try_get("mode")?;
    Ok(PlacementTemplate {
        name: r.try_get("name")?,
        format: r.try_get("format")?,
        path: r.try_get("path")?,
        profile: r.try_get("profile")?,
        owner: r.try_get("owner")?,
        mode: u32::try_from(mode).map_err(|e| StoreError::Corrupt { what: "template mode", detail: e.to_string() })?,
        credential: r
            .try_get::<String, _>("credential")?
            .parse()
            .map_err(|e: honeytrail_core::Invalid| StoreError::Corrupt { what: "template credential", detail: e.0 })?,
    })
}

impl Store {
    /// Adds a placement template, or replaces the one of that name.
    pub async fn put_template(&self, t: &PlacementTemplate, by: &str) -> Result<PlacementTemplate, StoreError> {
        t.validate().map_err(|e| StoreError::Refused(e.0))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO placement_templates (name, format, path, profile, owner, mode, credential, created_by, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO UPDATE SET \
             format = excluded.format, path = excluded.path, profile = excluded.profile, owner = excluded.owner, \
             mode = excluded.mode, credential = excluded.credential, created_by = excluded.created_by, \
             created_at = excluded.created_at",
        )
        .bind(&t.name)
        .bind(&t.format)
        .bind(&t.path)
        .bind(&t.profile)
        .bind(&t.owner)
        .bind(i64::from(t.mode))
        .bind(t.credential.as_str())
        .bind(by)
        .bind(millis(Utc::now()))
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        self.template(&t.name).await
    }

    pub async fn templates(&self) -> Result<Vec<PlacementTemplate>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {TEMPLATE_COLUMNS} FROM placement_templates ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(template).collect()
    }

    pub async fn template(&self, name: &str) -> Result<PlacementTemplate, StoreError> {
        template_on(&mut *self.pool.acquire().await?, name).await
    }

    pub async fn remove_template(&self, name: &str) -> Result<(), StoreError> {
        let done = self.exec(sqlx::query("DELETE FROM placement_templates WHERE name = $1").bind(name)).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("template {name}")));
        }
        Ok(())
    }
}

/// A template, read on `conn` (a transaction's own connection: a query on
/// the pool from inside a transaction waits for a second connection, and
/// with every connection held by a waiting writer, forever).
pub(crate) async fn template_on(conn: &mut sqlx::AnyConnection, name: &str) -> Result<PlacementTemplate, StoreError> {
    let row = sqlx::query(&format!("SELECT {TEMPLATE_COLUMNS} FROM placement_templates WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(template).transpose()?.ok_or_else(|| StoreError::NotFound(format!("template {name}")))
}

//! Decoy resources: each a token of kind `aws-decoy` (so its accesses are
//! incidents like a key's uses) and a row of what the token does not hold.
//!
//! **Invariants.** A decoy's token, placement, custody hop and row are
//! written in one transaction. A removed decoy keeps its token (retired) and
//! its history: a call on it afterwards still means something. Only one
//! decoy of a kind and name is live in an account and region at a time.

use chrono::{DateTime, Utc};
use honeytrail_core::decoy::{Decoy, DecoyKind};
use honeytrail_core::{NewToken, Spot, TokenKind};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::registry::{count_changes, from_millis, millis};
use crate::{NewHop, Store, StoreError};

/// A decoy that exists in AWS, to register.
#[derive(Debug, Clone)]
pub struct NewDecoy {
    pub kind: DecoyKind,
    pub name: String,
    pub arn: String,
    pub account_id: String,
    pub region: String,
    pub pool_account: Option<String>,
    pub managed_by: String,
    pub spot: Spot,
    /// Who made it: the custody hop's actor.
    pub actor: String,
}

const COLUMNS: &str = "d.token_id, d.kind, d.name, t.access_key_id AS arn, d.account_id, d.region, d.pool_account, \
                       d.managed_by, d.created_at, d.removed_at";
const FROM: &str = "decoys d JOIN tokens t ON t.id = d.token_id";

fn decoy_row(r: &AnyRow) -> Result<Decoy, StoreError> {
    let kind: String = r.try_get("kind")?;
    Ok(Decoy {
        token_id: r.try_get("token_id")?,
        kind: kind.parse().map_err(|_| StoreError::Corrupt { what: "decoy kind", detail: kind })?,
        name: r.try_get("name")?,
        arn: r.try_get("arn")?,
        account_id: r.try_get("account_id")?,
        region: r.try_get("region")?,
        pool_account: r.try_get("pool_account")?,
        managed_by: r.try_get("managed_by")?,
        created_at: from_millis(r.try_get("created_at")?)?,
        removed_at: r.try_get::<Option<i64>, _>("removed_at")?.map(from_millis).transpose()?,
    })
}

impl Store {
    /// Registers a decoy made in AWS: its token, placement, custody hop and
    /// row, in one transaction. Refused (`Duplicate`) when its ARN is
    /// already registered.
    pub async fn add_decoy(&self, new: &NewDecoy) -> Result<Decoy, StoreError> {
        let now = Utc::now();
        let token = NewToken {
            kind: Some(TokenKind::AwsDecoy),
            access_key_id: new.arn.clone(),
            account_id: Some(new.account_id.clone()),
            memo: format!("decoy {} {}", new.kind.label(), new.name),
            labels: [("decoy".to_string(), new.kind.as_str().to_string())].into(),
            ..NewToken::default()
        };
        let hop = NewHop {
            description: format!("made in AWS account {} by honeytrail decoy apply", new.account_id),
            actor: Some(new.actor.clone()),
            automatic: true,
            at: now,
        };
        let mut tx = self.begin_write().await?;
        let id = self.insert_token_tx(&mut tx, &token, std::slice::from_ref(&new.spot), &[hop]).await?;
        sqlx::query(
            "INSERT INTO decoys (token_id, kind, name, account_id, region, pool_account, managed_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(new.kind.as_str())
        .bind(&new.name)
        .bind(&new.account_id)
        .bind(&new.region)
        .bind(&new.pool_account)
        .bind(&new.managed_by)
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        self.decoy(id).await
    }

    /// The decoy whose token is `token_id`.
    pub async fn decoy(&self, token_id: i64) -> Result<Decoy, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM {FROM} WHERE d.token_id = $1"))
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("decoy (token #{token_id})")))?;
        decoy_row(&row)
    }

    /// Every decoy, newest last; removed ones only when asked.
    pub async fn decoys(&self, include_removed: bool) -> Result<Vec<Decoy>, StoreError> {
        let filter = if include_removed { "" } else { "WHERE d.removed_at IS NULL" };
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM {FROM} {filter} ORDER BY d.token_id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decoy_row).collect()
    }

    /// The principals that made decoys: their calls on decoys are
    /// honeytrail's own.
    pub async fn decoy_managers(&self) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT DISTINCT managed_by FROM decoys ORDER BY managed_by").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Marks a decoy removed (deleted in AWS) and retires its token; its
    /// history stays. Removing it again changes nothing.
    pub async fn remove_decoy(&self, token_id: i64, at: DateTime<Utc>, actor: &str) -> Result<Decoy, StoreError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE decoys SET removed_at = $1 WHERE token_id = $2 AND removed_at IS NULL")
            .bind(millis(at))
            .bind(token_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 {
            let retired =
                sqlx::query("UPDATE tokens SET state = 'retired', retired_at = $1 WHERE id = $2 AND state = 'active'")
                    .bind(millis(at))
                    .bind(token_id)
                    .execute(&mut *tx)
                    .await?;
            count_changes(&mut tx, 0, retired.rows_affected()).await?;
            crate::registry::insert_hop(
                &mut tx,
                token_id,
                &NewHop {
                    description: "deleted in AWS by honeytrail decoy remove".into(),
                    actor: Some(actor.to_string()),
                    automatic: true,
                    at,
                },
            )
            .await?;
        }
        self.commit(tx).await?;
        self.decoy(token_id).await
    }
}

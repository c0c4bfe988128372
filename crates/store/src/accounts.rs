//! The pool of canary accounts, and what each holds.

use honeytrail_core::pool::PoolAccount;
use honeytrail_core::TokenState;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::registry::{from_millis, millis};
use crate::{Store, StoreError};

/// An account to add to the pool.
#[derive(Debug, Clone)]
pub struct NewPoolAccount {
    pub name: String,
    pub account_id: String,
    pub role_arn: Option<String>,
    pub profile: Option<String>,
    pub max_users: i64,
    pub added_by: String,
}

/// Each account with its live honey users and keys, counted on the
/// `(account_id, state)` index.
const SELECT: &str = "SELECT a.name, a.account_id, a.role_arn, a.profile, a.max_users, a.added_at, a.added_by, \
     (SELECT COUNT(DISTINCT t.iam_user_name) FROM tokens t \
        WHERE t.account_id = a.account_id AND t.state = $1 AND t.iam_user_name IS NOT NULL) AS users, \
     (SELECT COUNT(*) FROM tokens t WHERE t.account_id = a.account_id AND t.state = $1) AS live_keys \
     FROM canary_accounts a";

fn account_from_row(r: &AnyRow) -> Result<PoolAccount, StoreError> {
    Ok(PoolAccount {
        name: r.try_get("name")?,
        account_id: r.try_get("account_id")?,
        role_arn: r.try_get("role_arn")?,
        profile: r.try_get("profile")?,
        max_users: r.try_get("max_users")?,
        added_at: from_millis(r.try_get("added_at")?)?,
        added_by: r.try_get("added_by")?,
        users: r.try_get("users")?,
        keys: r.try_get("live_keys")?,
    })
}

impl Store {
    /// Adds an account to the pool; refused when the name or the account
    /// number is in it already.
    pub async fn add_pool_account(&self, new: &NewPoolAccount) -> Result<PoolAccount, StoreError> {
        let mut tx = self.begin_write().await?;
        let taken: Option<(String, String)> =
            sqlx::query("SELECT name, account_id FROM canary_accounts WHERE name = $1 OR account_id = $2")
                .bind(&new.name)
                .bind(&new.account_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
                .transpose()?;
        if let Some((name, account_id)) = taken {
            return Err(StoreError::Refused(if name == new.name {
                format!("an account named \"{name}\" is in the pool already (account {account_id})")
            } else {
                format!("account {account_id} is in the pool already, as \"{name}\"")
            }));
        }
        sqlx::query(
            "INSERT INTO canary_accounts (name, account_id, role_arn, profile, max_users, added_at, added_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&new.name)
        .bind(&new.account_id)
        .bind(&new.role_arn)
        .bind(&new.profile)
        .bind(new.max_users)
        .bind(millis(chrono::Utc::now()))
        .bind(&new.added_by)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        self.pool_account(&new.name).await
    }

    /// One account of the pool, by name.
    pub async fn pool_account(&self, name: &str) -> Result<PoolAccount, StoreError> {
        let row = sqlx::query(&format!("{SELECT} WHERE a.name = $2"))
            .bind(TokenState::Active.as_str())
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("canary account \"{name}\"")))?;
        account_from_row(&row)
    }

    /// The account of the pool with this number, if it is in the pool.
    pub async fn pool_account_holding(&self, account_id: &str) -> Result<Option<PoolAccount>, StoreError> {
        sqlx::query(&format!("{SELECT} WHERE a.account_id = $2"))
            .bind(TokenState::Active.as_str())
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    /// Every account of the pool, by name.
    pub async fn pool_accounts(&self) -> Result<Vec<PoolAccount>, StoreError> {
        sqlx::query(&format!("{SELECT} ORDER BY a.name"))
            .bind(TokenState::Active.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(account_from_row)
            .collect()
    }

    /// Changes how many honey users an account takes.
    pub async fn set_pool_account_max_users(&self, name: &str, max_users: i64) -> Result<PoolAccount, StoreError> {
        let done = self
            .exec(sqlx::query("UPDATE canary_accounts SET max_users = $1 WHERE name = $2").bind(max_users).bind(name))
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("canary account \"{name}\"")));
        }
        self.pool_account(name).await
    }

    /// Removes an account from the pool; refused while it holds live keys,
    /// in the same transaction as the removal, so a key minted meanwhile
    /// cannot be orphaned.
    pub async fn remove_pool_account(&self, name: &str) -> Result<PoolAccount, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!("{SELECT} WHERE a.name = $2"))
            .bind(TokenState::Active.as_str())
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("canary account \"{name}\"")))?;
        let account = account_from_row(&row)?;
        if account.keys > 0 {
            return Err(StoreError::Refused(format!(
                "canary account \"{name}\" ({}) holds {} live key(s); retire them first (honeytrail token list --json shows each key's account_id)",
                account.account_id, account.keys
            )));
        }
        sqlx::query("DELETE FROM canary_accounts WHERE name = $1").bind(name).execute(&mut *tx).await?;
        self.commit(tx).await?;
        Ok(account)
    }

    /// A honey user in `account_id` that holds exactly one live key (IAM
    /// allows two), for packing a second key on it.
    pub async fn user_with_one_key(&self, account_id: Option<&str>) -> Result<Option<String>, StoreError> {
        let in_account = if account_id.is_some() { "AND account_id = $3" } else { "" };
        let sql = format!(
            "SELECT iam_user_name FROM tokens \
             WHERE kind = $1 AND state = $2 AND iam_user_name IS NOT NULL {in_account} \
             GROUP BY iam_user_name HAVING COUNT(*) = 1 ORDER BY iam_user_name LIMIT 1"
        );
        let mut query =
            sqlx::query(&sql).bind(honeytrail_core::TokenKind::AwsMinted.as_str()).bind(TokenState::Active.as_str());
        if let Some(a) = account_id {
            query = query.bind(a);
        }
        let row = query.fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }
}

/// What a change in AWS was about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentKind {
    /// Create a user and a key, or a second key on a user.
    Mint,
    /// Delete a token's key (and its user once unused).
    Retire,
}

impl IntentKind {
    fn as_str(self) -> &'static str {
        match self {
            IntentKind::Mint => "mint",
            IntentKind::Retire => "retire",
        }
    }
}

/// A change in AWS that began and was not seen to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsIntent {
    pub id: i64,
    pub kind: IntentKind,
    /// The account it was in; `None`: the configured account.
    pub account_id: Option<String>,
    pub user_name: String,
    /// For a retire: the token whose key it deletes.
    pub token_id: Option<i64>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub started_by: String,
}

impl Store {
    /// Records a change about to be made in AWS; ended with
    /// [`Store::end_aws_intent`] once the store agrees with AWS.
    pub async fn begin_aws_intent(
        &self,
        kind: IntentKind,
        account_id: Option<&str>,
        user_name: &str,
        token_id: Option<i64>,
        by: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO aws_intents (kind, account_id, user_name, token_id, started_at, started_by) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(kind.as_str())
        .bind(account_id)
        .bind(user_name)
        .bind(token_id)
        .bind(millis(chrono::Utc::now()))
        .bind(by)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// The change is done (or undone) in AWS and the store agrees.
    pub async fn end_aws_intent(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM aws_intents WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Changes begun before `before` and not ended, oldest first.
    pub async fn aws_intents(&self, before: chrono::DateTime<chrono::Utc>) -> Result<Vec<AwsIntent>, StoreError> {
        sqlx::query(
            "SELECT id, kind, account_id, user_name, token_id, started_at, started_by FROM aws_intents \
             WHERE started_at <= $1 ORDER BY id",
        )
        .bind(millis(before))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(AwsIntent {
                id: r.try_get("id")?,
                kind: match kind.as_str() {
                    "mint" => IntentKind::Mint,
                    "retire" => IntentKind::Retire,
                    other => return Err(StoreError::Corrupt { what: "aws intent", detail: format!("kind {other:?}") }),
                },
                account_id: r.try_get("account_id")?,
                user_name: r.try_get("user_name")?,
                token_id: r.try_get("token_id")?,
                started_at: from_millis(r.try_get("started_at")?)?,
                started_by: r.try_get("started_by")?,
            })
        })
        .collect()
    }
}

//! The pool of canary accounts: `account add|list|remove`, and which
//! account a key is minted in, retired from or checked in.
//!
//! **Invariant:** with no account in the pool, everything works on the
//! account `[aws]` configures, as before there was a pool. With accounts in
//! it, new honey users go only to them, each to the one with the most room
//! left; a key minted elsewhere is still retired, rotated and checked in the
//! account that holds it.

use std::collections::BTreeMap;

use honeytrail_aws::{account_of_arn, AwsSettings, CanaryAccount};
use honeytrail_core::access::Permission;
use honeytrail_core::pool::{self, PoolAccount, DEFAULT_MAX_USERS};
use honeytrail_core::TokenState;
use honeytrail_store::{AwsIntent, IntentKind, NewPoolAccount, StoreError};
use serde::{Deserialize, Serialize};

use crate::{Actor, OpError, OpResult, Ops};

/// An account to add to the pool: the API's body and `account add`'s
/// arguments.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    /// What honeytrail calls the account: 1 to 64 letters, digits, '-', '_' or '.'
    #[cfg_attr(feature = "clap", arg(value_name = "NAME"))]
    pub name: String,
    /// The role honeytrail assumes to reach it (arn:aws:iam::ACCOUNT:role/NAME), with its own credentials
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "ARN", required_unless_present = "profile", conflicts_with = "profile")
    )]
    #[serde(default)]
    pub role_arn: Option<String>,
    /// A profile in ~/.aws/config that reaches it, instead of a role
    #[cfg_attr(feature = "clap", arg(long, value_name = "PROFILE"))]
    #[serde(default)]
    pub profile: Option<String>,
    /// How many honey users it may hold, at most IAM's 5000 [default: 4500]
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    #[serde(default)]
    pub max_users: Option<i64>,
}

/// Whether `arn` is an IAM role's ARN, and the account it is in.
fn role_account(arn: &str) -> OpResult<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].strip_prefix("role/").is_some_and(|n| !n.is_empty())
        && arn.bytes().all(|b| b.is_ascii_graphic());
    if !well_formed {
        return Err(OpError::invalid(format!(
            "\"{}\" is not an IAM role's ARN; give one such as arn:aws:iam::111111111111:role/honeytrail",
            arn.escape_debug()
        )));
    }
    Ok(account_of_arn(arn).unwrap_or_default())
}

impl Ops {
    /// Every account of the pool, with the honey users and keys it holds.
    pub async fn accounts(&self, actor: &Actor) -> OpResult<Vec<PoolAccount>> {
        actor.require(Permission::Read)?;
        Ok(self.store.pool_accounts().await?)
    }

    /// Adds an account to the pool once honeytrail has reached it: its
    /// number is what STS answers there, and must be the role's.
    pub async fn add_account(&self, actor: &Actor, r: &AccountRequest) -> OpResult<PoolAccount> {
        actor.require(Permission::Administer)?;
        pool::validate_name(&r.name)?;
        let max_users = r.max_users.unwrap_or(DEFAULT_MAX_USERS);
        pool::validate_max_users(max_users)?;
        let role_arn = crate::ops::tokens::blank(&r.role_arn);
        let profile = crate::ops::tokens::blank(&r.profile);
        let expected = match (&role_arn, &profile) {
            (Some(arn), None) => Some(role_account(arn)?),
            (None, Some(p)) => {
                pool::validate_profile(p)?;
                None
            }
            _ => {
                return Err(OpError::invalid(
                    "give either --role-arn or --profile for how honeytrail reaches the account",
                ))
            }
        };
        let how = role_arn
            .as_deref()
            .map(|a| format!("role {a}"))
            .unwrap_or_else(|| format!("profile {}", profile.as_deref().unwrap_or_default()));
        let connection = self.connect_with(role_arn.clone(), profile.clone()).await;
        let account_id = connection.account_id().await.map_err(|e| {
            OpError::upstream(
                "account_unreachable",
                format!("cannot reach the account through {how}: {e}; check that the role exists and trusts the identity honeytrail runs as (honeytrail aws policy mint shows what it needs)"),
            )
        })?;
        if let Some(expected) = expected.filter(|e| *e != account_id) {
            return Err(OpError::invalid(format!(
                "the role is in account {expected} but STS answered {account_id}; check the endpoint and the role's ARN"
            )));
        }
        let new = NewPoolAccount {
            name: r.name.clone(),
            account_id: account_id.clone(),
            role_arn,
            profile,
            max_users,
            added_by: actor.name.clone(),
        };
        let detail = format!("{account_id} through {how}, up to {max_users} users");
        Ok(self.audited(actor, "account.add", &r.name, Some(&detail)).add_pool_account(&new).await?)
    }

    /// Removes an account from the pool; refused while it holds live keys.
    pub async fn remove_account(&self, actor: &Actor, name: &str) -> OpResult<PoolAccount> {
        actor.require(Permission::Administer)?;
        Ok(self.audited(actor, "account.remove", name, None).remove_pool_account(name).await?)
    }

    /// A connection through `role_arn` or `profile`, with the configured
    /// endpoint and region.
    async fn connect_with(&self, role_arn: Option<String>, profile: Option<String>) -> CanaryAccount {
        let base = crate::context::aws_settings(&self.config);
        CanaryAccount::connect(&AwsSettings { role_arn, profile: profile.or(base.profile.clone()), ..base }).await
    }

    /// A connection to an account of the pool.
    pub(crate) async fn connect_pool_account(&self, a: &PoolAccount) -> CanaryAccount {
        self.connect_with(a.role_arn.clone(), a.profile.clone()).await
    }

    /// The connection to the account that holds a key (`account_id` as
    /// recorded with it): its pool entry's, else the configured account.
    pub(crate) async fn account_holding(&self, account_id: Option<&str>) -> OpResult<CanaryAccount> {
        if let Some(id) = account_id {
            if let Some(a) = self.store.pool_account_holding(id).await? {
                return Ok(self.connect_pool_account(&a).await);
            }
        }
        Ok(self.canary_account().await)
    }

    /// Where each of the next `count` new honey users goes: the pool's
    /// accounts by room left, or the configured account when the pool is
    /// empty. Refused, before anything is minted, when the pool lacks room.
    pub(crate) async fn mint_targets(&self, count: usize) -> OpResult<Vec<CanaryAccount>> {
        let accounts = self.store.pool_accounts().await?;
        if accounts.is_empty() {
            return Ok(vec![self.canary_account().await; count]);
        }
        let picks = pool::spread(&accounts, count).map_err(|e| OpError::conflict("pool_full", e.to_string()))?;
        let mut connections = BTreeMap::new();
        let mut targets = Vec::with_capacity(count);
        for at in picks {
            if let std::collections::btree_map::Entry::Vacant(slot) = connections.entry(at) {
                slot.insert(self.connect_pool_account(&accounts[at]).await);
            }
            targets.push(connections[&at].clone());
        }
        Ok(targets)
    }

    /// Connections to every account keys may be in, with the account
    /// numbers they hold: the pool's, and the configured account.
    pub(crate) async fn every_account(&self) -> OpResult<Vec<(Option<String>, CanaryAccount)>> {
        let mut all = Vec::new();
        for a in self.store.pool_accounts().await? {
            let connection = self.connect_pool_account(&a).await;
            all.push((Some(a.account_id), connection));
        }
        all.push((None, self.canary_account().await));
        Ok(all)
    }
}

/// What `aws reconcile` found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciled {
    /// Changes in AWS that began and were not seen to end.
    pub intents: usize,
    /// Keys found in AWS with no row, deleted (`user/key`).
    pub keys_deleted: Vec<String>,
    /// Honey users deleted once they held no key.
    pub users_deleted: Vec<String>,
    /// Tokens whose key was gone from AWS, now retired.
    pub tokens_retired: Vec<String>,
    /// What was left alone, and why (e.g. a user that is not a honey user).
    pub left: Vec<String>,
}

impl Ops {
    /// The name this process records its intents under.
    pub(crate) fn process_name(&self) -> String {
        format!("{} pid {}", crate::context::hostname(), std::process::id())
    }

    /// Ends intents once the store agrees with AWS. A failure only leaves
    /// them for the next reconcile, which finds nothing to do.
    pub(crate) async fn end_intents(&self, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            if let Err(e) = self.store.end_aws_intent(id).await {
                tracing::warn!(intent = id, error = %e, "cannot end an AWS intent; the next reconcile will");
            }
        }
    }

    /// Finishes or undoes changes in AWS that a process began and did not
    /// see through (it was killed between AWS and the store): a key in AWS
    /// with no row is deleted (and its user once empty), a row whose key is
    /// gone from AWS is retired, a retired row whose key is still in AWS
    /// has it deleted. Only intents older than `older_than` are taken, so a
    /// change still in flight elsewhere is not raced; keys are deleted only
    /// on users that carry honeytrail's deny-all guard.
    pub async fn reconcile_aws(&self, actor: &Actor, older_than: chrono::Duration) -> OpResult<Reconciled> {
        actor.require(Permission::Respond)?;
        let intents = self.store.aws_intents(chrono::Utc::now() - older_than).await?;
        let mut done = Reconciled { intents: intents.len(), ..Reconciled::default() };
        let mut connections: BTreeMap<Option<String>, CanaryAccount> = BTreeMap::new();
        for intent in intents {
            if let std::collections::btree_map::Entry::Vacant(slot) = connections.entry(intent.account_id.clone()) {
                slot.insert(self.account_holding(intent.account_id.as_deref()).await?);
            }
            let account = &connections[&intent.account_id];
            match self.reconcile_one(actor, account, &intent, &mut done).await {
                Ok(()) => self.store.end_aws_intent(intent.id).await?,
                Err(e) => done.left.push(format!("{} (kept for the next reconcile): {}", intent.user_name, e.message)),
            }
        }
        if !done.keys_deleted.is_empty() || !done.tokens_retired.is_empty() {
            let detail = format!(
                "{} key(s) without a row deleted, {} token(s) whose key was gone retired",
                done.keys_deleted.len(),
                done.tokens_retired.len()
            );
            self.store.audit(&actor.name, "aws.reconcile", "aws", Some(&detail), Some(&actor.from)).await?;
            self.tokens_changed();
        }
        Ok(done)
    }

    async fn reconcile_one(
        &self,
        actor: &Actor,
        account: &CanaryAccount,
        intent: &AwsIntent,
        done: &mut Reconciled,
    ) -> OpResult<()> {
        let user = &intent.user_name;
        let in_aws = account.key_ids(user).await?;
        if intent.kind == IntentKind::Retire {
            let Some(token_id) = intent.token_id else { return Ok(()) };
            let token = match self.store.token(token_id).await {
                Ok(t) => t,
                Err(StoreError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let present = in_aws.as_ref().is_some_and(|keys| keys.contains(&token.access_key_id));
            match (token.state, present) {
                (TokenState::Active, false) => {
                    self.store.drop_from_pool(token.id).await?;
                    self.audited(
                        actor,
                        "token.retire",
                        &token.access_key_id,
                        Some("its key was deleted in AWS by a process that stopped before recording it"),
                    )
                    .retire_token(token.id, chrono::Utc::now())
                    .await?;
                    done.tokens_retired.push(token.access_key_id.clone());
                }
                (TokenState::Retired, true) => {
                    account.delete_key(user, &token.access_key_id).await?;
                    done.keys_deleted.push(format!("{user}/{}", token.access_key_id));
                }
                _ => {}
            }
        } else {
            let Some(keys) = in_aws else { return Ok(()) };
            if !account.is_honey_user(user, &self.config.mint.policy_name, &self.config.mint.group_name).await? {
                done.left.push(format!("{user}: not a honey user (no deny-all guard of honeytrail's); left alone"));
                return Ok(());
            }
            for key in &keys {
                match self.store.find_token(key).await {
                    Ok(_) => {}
                    Err(StoreError::NotFound(_)) => {
                        account.delete_key(user, key).await?;
                        done.keys_deleted.push(format!("{user}/{key}"));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // A honey user that holds no key now goes too.
        let live = self
            .store
            .list_tokens(&honeytrail_store::TokenFilter {
                state: Some(TokenState::Active),
                iam_user_name: Some(user.clone()),
                ..Default::default()
            })
            .await?;
        if live.is_empty()
            && account.key_ids(user).await?.is_some_and(|k| k.is_empty())
            && account.is_honey_user(user, &self.config.mint.policy_name, &self.config.mint.group_name).await?
            && account.delete_user_if_unused(user).await?
        {
            done.users_deleted.push(user.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_role_arns_are_taken() {
        assert_eq!(role_account("arn:aws:iam::111111111111:role/honeytrail").unwrap(), "111111111111");
        assert_eq!(role_account("arn:aws-cn:iam::222222222222:role/path/x").unwrap(), "222222222222");
        for bad in [
            "arn:aws:iam::111111111111:user/x",
            "arn:aws:iam::11111111111:role/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::111111111111:role/",
            "arn:aws:iam::111111111111:role/x\u{1b}[31m",
            "role/x",
        ] {
            assert!(role_account(bad).is_err(), "{bad}");
        }
    }
}

//! Tokens: mint, import, retire, rotate, look up, render bait.
//!
//! **Invariant:** a minted key exists in AWS and in the store, or in
//! neither: the store records it right after AWS creates it, and if the
//! store refuses it, it is deleted in AWS again.

use chrono::Utc;
use honeytrail_aws::{AwsError, CanaryAccount, DenyGuard, MintSpec, MintedKey};
use honeytrail_core::access::Permission;
use honeytrail_core::bait::Format;
use honeytrail_core::describe::Description;
use honeytrail_core::incident::Incident;
use honeytrail_core::stealth::{Finding, Level};
use honeytrail_core::{naming, stealth, CustodyHop, Labels, NewToken, Placement, Secret, Token, TokenKind, TokenState};
use honeytrail_store::{IncidentFilter, IntentKind, NewHop, PlacementFilter, TokenFilter};
use serde::{Deserialize, Serialize};

use super::evidence::FiledRead;

use crate::config::Guard;
use crate::context::hostname;
use crate::{Actor, OpError, OpResult, Ops};

/// What to mint: the API's body, and what `token mint aws` asks for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    #[serde(default, deserialize_with = "crate::ops::input::labels")]
    pub labels: Labels,
    #[serde(default)]
    pub memo: String,
    /// The IAM user name; generated from `mint.naming_pattern` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Put the key on a honey user that holds one key (IAM allows two).
    #[serde(default)]
    pub pack: bool,
}

/// Which tokens to list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenQuery {
    pub state: Option<String>,
    /// `NAME` or `NAME=VALUE`.
    pub label: Option<String>,
    /// Placed on a host whose name contains this.
    pub host: Option<String>,
    /// Placed with an owner whose name contains this.
    pub owner: Option<String>,
    /// A page of at most this many ([`PAGE_DEFAULT`] when not given, at
    /// most [`PAGE_MAX`]); for [`Ops::token_page`].
    pub limit: Option<i64>,
    /// Where the page starts: the `next` cursor of the page before.
    pub cursor: Option<String>,
}

/// The page size of lists when none is asked for.
pub const PAGE_DEFAULT: i64 = 100;
/// The largest page a list gives.
pub const PAGE_MAX: i64 = 1000;

/// One page of a list and the cursor of the next one (`None`: the last page).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// The page size asked for, checked; what to ask the store for is one more,
/// which tells whether there is a next page.
pub(crate) fn page_limit(limit: Option<i64>) -> OpResult<i64> {
    let limit = limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(OpError::invalid(format!("limit must be between 1 and {PAGE_MAX}")));
    }
    Ok(limit)
}

/// The position a cursor stands for: cursors are opaque to clients, a
/// letter naming the list and what `parse` reads.
pub(crate) fn cursor_at<T>(
    cursor: &Option<String>,
    list: char,
    parse: impl Fn(&str) -> Option<T>,
) -> OpResult<Option<T>> {
    match blank(cursor) {
        None => Ok(None),
        Some(c) => c
            .strip_prefix(list)
            .and_then(parse)
            .map(Some)
            .ok_or_else(|| OpError::invalid("the cursor is not one this server gave; start again without it")),
    }
}

/// A page from the `limit + 1` items the store gave: the first `limit`, and
/// the cursor of the last of them when there were more.
pub(crate) fn page_of<T>(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next }
}

/// A retired token, and whether its IAM user went with it.
#[derive(Debug, Clone)]
pub struct Retired {
    pub token: Token,
    pub user_deleted: bool,
}

/// A rotation: the new token, and what could not be cleaned up.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub old: Token,
    pub token: Token,
    pub user_name: String,
    /// The placements carried over (their bait still holds the old key).
    pub placements: Vec<Placement>,
    /// Set when the old key is retired here but deleting it in AWS failed.
    pub old_key_left_in_aws: Option<String>,
}

/// Blank text as no value.
pub(crate) fn blank(o: &Option<String>) -> Option<String> {
    o.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

/// A token with everything a responder looks at: where it was placed and
/// by whom, every place its secret passed through, its incidents, the
/// stealth check, the reads of its bait, and the sentence alerts carry.
#[derive(Debug, Clone, Serialize)]
pub struct TokenDetail {
    pub token: Token,
    pub description: Description,
    /// Every placement, removed ones included.
    pub placements: Vec<Placement>,
    pub custody: Vec<CustodyHop>,
    pub incidents: Vec<Incident>,
    pub stealth: Stealth,
    /// The bait formats it can be rendered in.
    pub bait_formats: Vec<&'static str>,
    /// The newest reads of its bait on hosts.
    pub reads: Vec<FiledRead>,
}

/// What the stealth check found.
#[derive(Debug, Clone, Serialize)]
pub struct Stealth {
    pub verdict: Level,
    pub findings: Vec<Finding>,
}

/// What a key gives away to an intruder, and whether it is one of ours.
#[derive(Debug, Clone)]
pub struct KeyCheck {
    pub access_key_id: String,
    /// The token, when the key is registered here.
    pub token: Option<Token>,
    pub report: stealth::Report,
}

impl Ops {
    pub async fn find_token(&self, key: &str) -> OpResult<Token> {
        Ok(self.store.find_token(key.trim()).await?)
    }

    /// The stealth check of a registered token (access key ID or `#N`), or
    /// of any access key ID.
    pub async fn check_key(&self, actor: &Actor, reference: &str) -> OpResult<KeyCheck> {
        actor.require(Permission::Read)?;
        let reference = reference.trim();
        let token = match self.store.find_token(reference).await {
            Ok(t) => Some(t),
            Err(honeytrail_store::StoreError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(match token {
            Some(t) => {
                KeyCheck { access_key_id: t.access_key_id.clone(), report: stealth::report_for(&t), token: Some(t) }
            }
            None => {
                let key = honeytrail_core::keyid::parse(reference).map_err(|e| OpError::invalid(e.to_string()))?;
                let report = stealth::check(&stealth::Subject {
                    access_key_id: &key,
                    iam_user_name: None,
                    iam_path: None,
                    account_id: None,
                });
                KeyCheck { access_key_id: key, token: None, report }
            }
        })
    }

    /// A token with its placements, custody, incidents, stealth check, reads
    /// and the sentence alerts carry.
    pub async fn token_detail(&self, actor: &Actor, key: &str) -> OpResult<TokenDetail> {
        actor.require(Permission::Read)?;
        let token = self.find_token(key).await?;
        let placements: Vec<Placement> = self
            .store
            .placements(&PlacementFilter { token_id: Some(token.id), include_removed: true, ..Default::default() })
            .await?
            .into_iter()
            .map(|p| p.placement)
            .collect();
        let custody = self.store.hops(token.id).await?;
        let description = self.store.describe_token(&token).await?;
        let incidents =
            self.store.incidents(&IncidentFilter { token_id: Some(token.id), ..Default::default() }).await?;
        let report = stealth::report_for(&token);
        let reads = self
            .store
            .evidence(&honeytrail_store::EvidenceFilter {
                token_id: Some(token.id),
                limit: Some(honeytrail_core::record::RECORD_READS as i64),
                ..Default::default()
            })
            .await?;
        Ok(TokenDetail {
            stealth: Stealth { verdict: report.verdict(), findings: report.findings },
            bait_formats: Format::ALL.iter().map(|f| f.name()).collect(),
            token,
            description,
            placements,
            custody,
            incidents,
            reads,
        })
    }

    fn token_filter(q: &TokenQuery) -> OpResult<TokenFilter> {
        let state = blank(&q.state).as_deref().map(str::parse).transpose()?;
        let label = honeytrail_core::LabelFilter::parse(q.label.as_deref().unwrap_or(""))?.map(|l| (l.name, l.value));
        Ok(TokenFilter { state, label, host: blank(&q.host), owner: blank(&q.owner), ..Default::default() })
    }

    /// Every token by state and label, and by where they are placed (the
    /// command line's list; the API and the UI take [`Ops::token_page`]).
    pub async fn search_tokens(&self, actor: &Actor, q: &TokenQuery) -> OpResult<Vec<Token>> {
        actor.require(Permission::Read)?;
        Ok(self.store.list_tokens(&Self::token_filter(q)?).await?)
    }

    /// One page of [`Ops::search_tokens`], filtered and cut in the database
    /// (keyset on the token ID: the same cost for the first page and the
    /// ten-thousandth), with the cursor of the next page.
    pub async fn token_page(&self, actor: &Actor, q: &TokenQuery) -> OpResult<Page<Token>> {
        actor.require(Permission::Read)?;
        let limit = page_limit(q.limit)?;
        let mut filter = Self::token_filter(q)?;
        filter.after_id = cursor_at(&q.cursor, 't', |id| id.parse().ok())?;
        filter.limit = Some(limit + 1);
        Ok(page_of(self.store.list_tokens(&filter).await?, limit, |t| format!("t{}", t.id)))
    }

    /// Mints one key in the canary account and records it.
    pub async fn mint(&self, actor: &Actor, r: MintRequest) -> OpResult<Token> {
        Ok(self.mint_batch(actor, r, 1).await?.remove(0))
    }

    /// Mints `count` keys, spread over the canary-account pool by room
    /// left. A pool without room for all of them refuses before minting
    /// any; a failure part-way names the keys already minted and recorded.
    pub async fn mint_batch(&self, actor: &Actor, r: MintRequest, count: usize) -> OpResult<Vec<Token>> {
        actor.require(Permission::Respond)?;
        if count == 0 {
            return Err(OpError::invalid("--count must be at least 1"));
        }
        if r.name.is_some() && count > 1 {
            return Err(OpError::invalid(format!(
                "--name names one IAM user; drop it to mint --count {count} keys with generated names"
            )));
        }
        if let Some(name) = &r.name {
            naming::validate_user_name(name).map_err(|e| OpError::invalid(e.to_string()))?;
        }
        let pack = r.pack || self.config.mint.pack_two_keys;
        let mut minted: Vec<Token> = Vec::with_capacity(count);
        for account in self.mint_targets(count).await? {
            let step = async {
                let key = self.mint_in_aws(&account, r.name.as_deref(), pack).await?;
                self.record_minted(actor, &account, &key, r.memo.clone(), r.labels.clone(), false).await
            };
            match step.await {
                Ok(token) => {
                    self.tokens_changed();
                    minted.push(token)
                }
                Err(e) if !minted.is_empty() => {
                    let done: Vec<&str> = minted.iter().map(|t| t.access_key_id.as_str()).collect();
                    return Err(OpError {
                        message: format!(
                            "{}; {} key(s) were minted and registered before this failure: {}",
                            e.message,
                            done.len(),
                            done.join(", ")
                        ),
                        ..e
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(minted)
    }

    /// Mints one key for the fleet's pool: recorded with its first custody
    /// hop, placed nowhere, handed to the next host that enrols.
    pub(crate) async fn mint_for_pool(&self, actor: &Actor) -> OpResult<Token> {
        let account = self.mint_targets(1).await?.remove(0);
        let key = self.mint_in_aws(&account, None, self.config.mint.pack_two_keys).await?;
        let token = self.record_minted(actor, &account, &key, String::new(), Labels::default(), true).await?;
        self.tokens_changed();
        Ok(token)
    }

    /// Retires a minted key honeytrail itself decided to retire (a host
    /// never confirmed it, a rotation or removal on a host finished):
    /// deleted in AWS, then marked retired, audited as `actor`.
    pub(crate) async fn retire_by(&self, actor: &Actor, token_id: i64, why: &str) -> OpResult<Retired> {
        let token = self.store.token(token_id).await?;
        let (mut user_deleted, mut intents) = (false, Vec::new());
        if token.state == TokenState::Active && token.kind == TokenKind::AwsMinted {
            let account = self.account_holding(token.account_id.as_deref()).await?;
            let (deleted, intent) = self.delete_in_aws(&account, &token).await?;
            user_deleted = deleted;
            intents.push(intent);
        }
        self.store.drop_from_pool(token.id).await?;
        let retired = self
            .audited(actor, "token.retire", &token.access_key_id, Some(why))
            .retire_token(token.id, Utc::now())
            .await?;
        self.end_intents(intents).await;
        Ok(Retired { token: retired, user_deleted })
    }

    fn guard(&self) -> DenyGuard {
        let m = &self.config.mint;
        match m.guard {
            Guard::Inline => DenyGuard::Inline { policy_name: m.policy_name.clone() },
            Guard::Group => DenyGuard::Group { group_name: m.group_name.clone(), policy_name: m.policy_name.clone() },
        }
    }

    /// Creates one key in AWS: on a packed user when asked and possible, else
    /// on a new user with a generated (or the given) name. Each attempt is
    /// recorded as an intent first (see [`Ops::reconcile_aws`]); the caller
    /// ends it once the key is recorded or undone.
    pub(crate) async fn mint_in_aws(
        &self,
        account: &CanaryAccount,
        name: Option<&str>,
        pack: bool,
    ) -> OpResult<Minted> {
        let account_id = account.account_id().await?;
        let attempt = |user: String, new_user: bool| {
            let account_id = account_id.clone();
            async move {
                let intent = self
                    .store
                    .begin_aws_intent(IntentKind::Mint, Some(&account_id), &user, None, &self.process_name())
                    .await?;
                crate::failpoint("mint.before-aws");
                let made = if new_user {
                    let spec = MintSpec {
                        user_name: user,
                        guard: self.guard(),
                        boundary: self.config.mint.boundary_name.clone(),
                    };
                    account.mint(&spec).await
                } else {
                    account.add_key(&user).await
                };
                match made {
                    Ok(key) => {
                        crate::failpoint("mint.after-aws");
                        Ok(Ok(Minted { key, intent }))
                    }
                    // Someone else's user (or ours from another process): not
                    // ours to clean up.
                    Err(e @ AwsError::AlreadyExists { .. }) => {
                        self.end_intents([intent]).await;
                        Ok(Err(e))
                    }
                    // A mint that failed part-way undid itself, or its error
                    // names what is left; the intent stays for reconcile.
                    Err(e) => Err(OpError::from(e)),
                }
            }
        };
        if pack {
            if let Some(user) = self.store.user_with_one_key(Some(&account_id)).await? {
                return attempt(user, false).await?.map_err(OpError::from);
            }
        }
        if let Some(name) = name {
            return attempt(name.to_string(), true).await?.map_err(OpError::from);
        }
        // A generated name can collide with an existing user; draw again a few times.
        let mut last = None;
        for _ in 0..5 {
            let candidate = naming::generate(&self.config.mint.naming_pattern, &mut rand::thread_rng())
                .map_err(|e| OpError::invalid(e.to_string()))?;
            let taken = !self
                .store
                .list_tokens(&TokenFilter { iam_user_name: Some(candidate.clone()), ..Default::default() })
                .await?
                .is_empty();
            if taken {
                continue;
            }
            match attempt(candidate, true).await? {
                Ok(minted) => return Ok(minted),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => e.into(),
            None => OpError::conflict("no_free_name", "could not find a free IAM user name; widen mint.naming_pattern"),
        })
    }

    /// Records a key just minted in AWS, or deletes it again in AWS if the
    /// store refuses it, so a key exists in both or in neither.
    async fn record_minted(
        &self,
        actor: &Actor,
        account: &CanaryAccount,
        key: &Minted,
        memo: String,
        labels: Labels,
        for_pool: bool,
    ) -> OpResult<Token> {
        let new = minted_token(key, memo, labels);
        let hop = generated_hop(&actor.name, key);
        let detail = for_pool.then_some("for the fleet's key pool");
        let store = self.audited(actor, "token.mint", &key.access_key_id, detail);
        let recorded = if for_pool {
            store.insert_pool_token(&new, &hop).await
        } else {
            store.insert_token(&new, &[], &[hop]).await
        };
        match recorded {
            Ok(token) => {
                self.end_intents([key.intent]).await;
                Ok(token)
            }
            Err(e) => {
                let cleanup = undo_mint(account, key).await;
                if cleanup.is_ok() {
                    self.end_intents([key.intent]).await;
                }
                let e = OpError::from(e);
                Err(match cleanup {
                    Ok(_) => OpError {
                        message: format!(
                            "minted {} but could not record it, so it was deleted again in AWS: {}",
                            key.access_key_id, e.message
                        ),
                        ..e
                    },
                    Err(c) => OpError {
                        message: format!(
                            "minted {} but could not record it ({}), and deleting it in AWS failed too ({c}); delete it by hand: aws iam delete-access-key --user-name {} --access-key-id {}",
                            key.access_key_id, e.message, key.user_name, key.access_key_id
                        ),
                        ..e
                    },
                })
            }
        }
    }

    /// Retires a token: for a minted key, deletes it in AWS first (if that
    /// fails the store still says active, and retrying is safe).
    pub async fn retire(&self, actor: &Actor, key: &str) -> OpResult<Retired> {
        actor.require(Permission::Respond)?;
        let token = self.find_token(key).await?;
        refuse_decoy(&token, "retired")?;
        let (mut user_deleted, mut intents) = (false, Vec::new());
        if token.kind == TokenKind::AwsMinted {
            let account = self.account_holding(token.account_id.as_deref()).await?;
            let (deleted, intent) = self.delete_in_aws(&account, &token).await?;
            user_deleted = deleted;
            intents.push(intent);
        }
        let retired =
            self.audited(actor, "token.retire", &token.access_key_id, None).retire_token(token.id, Utc::now()).await?;
        self.end_intents(intents).await;
        Ok(Retired { token: retired, user_deleted })
    }

    /// Replaces an active minted key with a fresh one and carries its
    /// placements and labels over; the old key is deleted in AWS.
    pub async fn rotate(&self, actor: &Actor, key: &str) -> OpResult<Rotated> {
        actor.require(Permission::Respond)?;
        let old = self.find_token(key).await?;
        refuse_decoy(&old, "rotated")?;
        if old.state == TokenState::Retired {
            return Err(OpError::conflict(
                "retired",
                format!("{} is retired; rotation replaces an active token", old.access_key_id),
            ));
        }
        let account = self.mint_targets(1).await?.remove(0);
        let key = self.mint_in_aws(&account, None, self.config.mint.pack_two_keys).await?;
        // Empty labels: the rotation carries the old token's labels over.
        let new = minted_token(&key, old.memo.clone(), Labels::default());
        let hop = generated_hop(&actor.name, &key);
        let store = self.audited(actor, "token.rotate", &old.access_key_id, Some(&key.access_key_id));
        let token = match store.record_rotation(old.id, &new, &[hop], Utc::now()).await {
            Ok(t) => {
                self.end_intents([key.intent]).await;
                t
            }
            Err(e) => {
                let cleanup = undo_mint(&account, &key).await;
                if cleanup.is_ok() {
                    self.end_intents([key.intent]).await;
                }
                let e = OpError::from(e);
                let what = match cleanup {
                    Ok(_) => "the new key was deleted again".to_string(),
                    Err(c) => {
                        format!("deleting the new key {} in AWS failed too ({c}); delete it by hand", key.access_key_id)
                    }
                };
                return Err(OpError {
                    message: format!(
                        "could not record the rotation ({}); {what} and the old one is untouched",
                        e.message
                    ),
                    ..e
                });
            }
        };
        self.tokens_changed();
        let mut old_key_left_in_aws = None;
        if old.kind == TokenKind::AwsMinted {
            let holder = self.account_holding(old.account_id.as_deref()).await?;
            // The store says retired already: a failure here leaves the
            // intent, and the next reconcile deletes the key.
            match self.delete_in_aws(&holder, &old).await {
                Ok((_, intent)) => self.end_intents([intent]).await,
                Err(e) => old_key_left_in_aws = Some(e.message),
            }
        }
        let placements = self
            .store
            .placements(&PlacementFilter { token_id: Some(token.id), ..Default::default() })
            .await?
            .into_iter()
            .map(|p| p.placement)
            .collect();
        Ok(Rotated { old, token, user_name: key.user_name.clone(), placements, old_key_left_in_aws })
    }

    /// Renders bait for a token to hand out over the web (the API, the UI):
    /// a custody hop, since the secret leaves. Returns a file name to offer
    /// and the text.
    pub async fn render_bait(&self, actor: &Actor, key: &str, format: &str) -> OpResult<(String, String)> {
        let to = format!("in the honeytrail web UI/API for {} from {}", actor.name, actor.from);
        let text = self.render_text(actor, key, format, None, None, &to).await?;
        let format: Format = format.parse()?;
        let file_name = format.typical_path().rsplit('/').next().unwrap_or("bait").trim_start_matches('.').to_string();
        Ok((if file_name.is_empty() { "env".into() } else { file_name }, text))
    }

    /// The secret to write into bait: refused for retired tokens (bait made
    /// from them would never fire) and for keys registered by ID only.
    pub async fn secret_for_bait(&self, token: &Token) -> OpResult<Secret> {
        if token.state == TokenState::Retired {
            return Err(OpError::conflict(
                "retired",
                format!("{} is retired: bait made from it would never fire", token.access_key_id),
            )
            .with_cli_hint("mint or rotate to get an active key"));
        }
        self.store.reveal_secret(token.id).await?.ok_or_else(|| {
            OpError::conflict(
                "no_secret",
                format!("honeytrail holds no secret for {}; import it again with its secret", token.access_key_id),
            )
            .with_cli_hint(
                "`honeytrail token import aws --secret-stdin`, or write the bait on the host where the key was made",
            )
        })
    }
}

/// A key just created in AWS, and the intent that records it until the
/// store has it too.
pub(crate) struct Minted {
    pub key: MintedKey,
    pub intent: i64,
}

impl std::ops::Deref for Minted {
    type Target = MintedKey;
    fn deref(&self) -> &MintedKey {
        &self.key
    }
}

/// Deletes a key just minted (and its user, unless it holds another key).
async fn undo_mint(account: &CanaryAccount, key: &MintedKey) -> Result<bool, AwsError> {
    account.delete_key(&key.user_name, &key.access_key_id).await?;
    account.delete_user_if_unused(&key.user_name).await
}

/// The registry record of a key just minted in AWS.
fn minted_token(key: &MintedKey, memo: String, labels: Labels) -> NewToken {
    NewToken {
        kind: Some(TokenKind::AwsMinted),
        access_key_id: key.access_key_id.clone(),
        secret: Some(key.secret_access_key.clone()),
        iam_user_name: Some(key.user_name.clone()),
        iam_user_arn: Some(key.user_arn.clone()),
        account_id: key.account_id.clone(),
        memo,
        labels,
        created_at: Some(key.created_at),
        ..NewToken::default()
    }
}

fn generated_hop(actor: &str, key: &MintedKey) -> NewHop {
    NewHop {
        description: format!(
            "generated in canary account {} by honeytrail on {}",
            key.account_id.as_deref().unwrap_or("?"),
            hostname()
        ),
        actor: Some(actor.to_string()),
        automatic: true,
        at: key.created_at,
    }
}

impl Ops {
    /// Deletes a minted key in AWS, and its user once no active token uses
    /// it, after recording the intent; returns whether the user went, and
    /// the intent for the caller to end once the store agrees.
    async fn delete_in_aws(&self, account: &CanaryAccount, token: &Token) -> OpResult<(bool, i64)> {
        let user = token.iam_user_name.as_deref().ok_or_else(|| {
            OpError::conflict(
                "no_iam_user",
                format!("token #{} was minted but has no IAM user on record; delete its key in AWS by hand", token.id),
            )
        })?;
        let intent = self
            .store
            .begin_aws_intent(
                IntentKind::Retire,
                token.account_id.as_deref(),
                user,
                Some(token.id),
                &self.process_name(),
            )
            .await?;
        account.delete_key(user, &token.access_key_id).await?;
        crate::failpoint("retire.after-aws");
        let others = self
            .store
            .list_tokens(&TokenFilter {
                state: Some(TokenState::Active),
                iam_user_name: Some(user.to_string()),
                ..Default::default()
            })
            .await?
            .into_iter()
            .filter(|t| t.id != token.id)
            .count();
        if others > 0 {
            return Ok((false, intent));
        }
        Ok((account.delete_user_if_unused(user).await?, intent))
    }
}

/// A decoy's token is made and removed by `decoy`, never as a key is; a
/// session canary's lives and goes with its host's bait.
fn refuse_decoy(token: &Token, what: &str) -> OpResult<()> {
    match token.kind {
        TokenKind::AwsDecoy => Err(OpError::invalid(format!(
            "token #{} is a decoy, not a key: it cannot be {what}; delete it with `honeytrail decoy remove {}`",
            token.id, token.id
        ))),
        TokenKind::AwsSession if token.state == TokenState::Active => Err(OpError::invalid(format!(
            "token #{} is a host's session canary, not a key: it cannot be {what}; `honeytrail agent rotate` gives \
             the host a fresh session, `honeytrail agent remove` takes it out and retires the canary",
            token.id
        ))),
        _ => Ok(()),
    }
}

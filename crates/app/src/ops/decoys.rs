//! Decoy resources: `plan` (names, nothing made), `apply` (made in the
//! canary account, registered, their reads logged), `list` and `remove`.
//!
//! A decoy is registered as a token of kind `aws-decoy` known by its ARN,
//! with its place as its placement: any access to it from anywhere is an
//! incident that names it. Calls of the principal that made it are
//! honeytrail's own (see `honeytrail_ingest::decoys`).

use std::collections::HashSet;

use chrono::Utc;
use honeytrail_aws::bootstrap::Item;
use honeytrail_aws::CanaryAccount;
use honeytrail_core::access::Permission;
use honeytrail_core::decoy::{self, Decoy, DecoyKind, PlannedDecoy};
use honeytrail_core::stealth::Finding;
use honeytrail_store::NewDecoy;
use serde::{Deserialize, Serialize};

use super::canary::SetupItem;
use crate::{Actor, OpError, OpResult, Ops};

/// Most bytes of an inventory a request may carry.
pub const INVENTORY_MAX_BYTES: usize = 256 * 1024;

/// What to plan: how many of each kind (the defaults when none), words and
/// exact names from an inventory, and the canary account of the pool.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoyPlanRequest {
    /// `kind=count` each; none: two of each kind and one table.
    #[serde(default)]
    pub counts: Vec<String>,
    /// An inventory's text (see `docs/decoys.md`).
    pub inventory: Option<String>,
    /// The pool's name of the canary account; none: the configured account.
    pub account: Option<String>,
}

/// A plan: the decoys to make and what the self-test says of each name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoyPlan {
    pub account: Option<String>,
    #[serde(default)]
    pub decoys: Vec<PlannedDecoy>,
}

/// What apply did.
#[derive(Debug, Clone, Serialize)]
pub struct DecoyApplied {
    pub made: Vec<Decoy>,
    /// Decoys that could not be made, each with the reason.
    pub failed: Vec<(PlannedDecoy, String)>,
    /// The trail's selectors after the new decoys' data events were added.
    pub selectors: Option<SetupItem>,
}

/// A decoy with what would give it away.
#[derive(Debug, Clone, Serialize)]
pub struct DecoyView {
    #[serde(flatten)]
    pub decoy: Decoy,
    pub findings: Vec<Finding>,
}

/// `kind=count` pairs.
pub fn parse_counts(raw: &[String]) -> OpResult<Vec<(DecoyKind, usize)>> {
    if raw.is_empty() {
        return Ok(decoy::DEFAULT_COUNTS.to_vec());
    }
    raw.iter()
        .flat_map(|r| r.split(','))
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let (kind, n) = r.split_once('=').unwrap_or((r, "1"));
            let kind: DecoyKind = kind.parse().map_err(|e: honeytrail_core::Invalid| OpError::invalid(e.0))?;
            let n: usize = n.trim().parse().map_err(|_| {
                OpError::invalid(format!("{r:?}: the count must be a number (kind=count, like s3-bucket=2)"))
            })?;
            Ok((kind, n))
        })
        .collect()
}

impl Ops {
    /// The canary account of the pool named `account`, else the configured one.
    async fn decoy_account(&self, account: Option<&str>) -> OpResult<(Option<String>, CanaryAccount)> {
        match account {
            Some(name) => {
                let a = self.store.pool_account(name).await?;
                Ok((Some(a.name.clone()), self.connect_pool_account(&a).await))
            }
            None => Ok((None, self.canary_account().await)),
        }
    }

    /// Plans decoys: names only, nothing is made. Names of every decoy ever
    /// registered are left out.
    pub async fn decoy_plan(&self, actor: &Actor, req: &DecoyPlanRequest) -> OpResult<DecoyPlan> {
        // A plan is for the admins who make it.
        actor.require(Permission::Administer)?;
        let counts = parse_counts(&req.counts)?;
        let inventory = match &req.inventory {
            Some(text) if text.len() > INVENTORY_MAX_BYTES => {
                return Err(OpError::invalid(format!(
                    "the inventory is larger than {} KiB",
                    INVENTORY_MAX_BYTES / 1024
                )))
            }
            Some(text) => decoy::parse_inventory(text).map_err(|e| OpError::invalid(e.0))?,
            None => decoy::Inventory::default(),
        };
        let taken: HashSet<(DecoyKind, String)> =
            self.store.decoys(true).await?.into_iter().map(|d| (d.kind, d.name)).collect();
        let decoys =
            decoy::plan(&counts, &inventory, &taken, &mut rand::thread_rng()).map_err(|e| OpError::invalid(e.0))?;
        Ok(DecoyPlan { account: req.account.clone(), decoys })
    }

    /// Makes a plan's decoys in the canary account and registers each; then
    /// adds their data events to the trail's selectors. A decoy that cannot
    /// be made or registered is reported and nothing of it is left in AWS.
    pub async fn decoy_apply(&self, actor: &Actor, plan: &DecoyPlan) -> OpResult<DecoyApplied> {
        actor.require(Permission::Administer)?;
        if plan.decoys.is_empty() {
            return Err(OpError::invalid("the plan holds no decoys; make one with decoy plan (POST /decoys/plan)"));
        }
        if plan.decoys.len() > decoy::PLAN_MAX {
            return Err(OpError::invalid(format!("a plan makes at most {} decoys", decoy::PLAN_MAX)));
        }
        for p in &plan.decoys {
            p.kind.check_name(&p.name).map_err(|e| OpError::invalid(e.0))?;
        }
        let (pool_account, aws) = self.decoy_account(plan.account.as_deref()).await?;
        let me = aws.identity().await?;
        let region = aws.region();
        let mut out = DecoyApplied { made: Vec::new(), failed: Vec::new(), selectors: None };
        for p in &plan.decoys {
            let arn = match aws.create_decoy(p.kind, &p.name, &self.config.mint.boundary_name).await {
                Ok(arn) => arn,
                Err(e) => {
                    out.failed.push((p.clone(), e.to_string()));
                    continue;
                }
            };
            let region = if p.kind.regional() { region.clone() } else { "global".to_string() };
            let new = NewDecoy {
                kind: p.kind,
                name: p.name.clone(),
                spot: decoy::spot(p.kind, &p.name, &arn, &me.account, &region, &actor.name),
                arn,
                account_id: me.account.clone(),
                region,
                pool_account: pool_account.clone(),
                managed_by: me.arn.clone(),
                actor: actor.name.clone(),
            };
            match self.store.add_decoy(&new).await {
                Ok(d) => out.made.push(d),
                Err(e) => {
                    // Unregistered, it would be a decoy no one watches.
                    if let Err(undo) = aws.delete_decoy(p.kind, &p.name).await {
                        tracing::warn!(%undo, "decoy {} {:?} could not be deleted after its registration failed", p.kind.label(), p.name);
                    }
                    out.failed.push((p.clone(), e.to_string()));
                }
            }
        }
        if !out.made.is_empty() {
            self.tokens_changed();
            let detail = format!("{} made, {} failed", out.made.len(), out.failed.len());
            self.store.audit(&actor.name, "decoy.apply", &me.account, Some(&detail), Some(&actor.from)).await?;
            // The decoys are made and registered either way; an identity
            // that may not change the trail (the decoys policy) leaves the
            // selectors to bootstrap, and the answer says so.
            out.selectors = Some(match self.decoy_selectors(&aws).await {
                Ok(item) => item,
                Err(e) => SetupItem {
                    item: Item::EventSelectors.to_string(),
                    status: crate::ops::canary::ItemStatus::Misconfigured(format!(
                        "the decoys' data events could not be added to the trail's selectors ({}); run `honeytrail \
                         aws bootstrap` with the bootstrap identity",
                        e.message
                    )),
                    action: None,
                    fix: Item::EventSelectors.fix(),
                },
            });
        }
        Ok(out)
    }

    /// Brings the trail's selectors in line with the account's decoys, when
    /// the trail exists (else `bootstrap` makes it with them).
    async fn decoy_selectors(&self, aws: &CanaryAccount) -> OpResult<SetupItem> {
        let setup = self.canary_setup(aws, None, Some(Vec::new())).await?;
        Ok(aws.ensure(&setup, Item::EventSelectors).await?.into())
    }

    /// The decoys, with what would give each away.
    pub async fn decoy_list(&self, actor: &Actor, include_removed: bool) -> OpResult<Vec<DecoyView>> {
        actor.require(Permission::Read)?;
        let decoys = self.store.decoys(include_removed).await?;
        Ok(decoys.into_iter().map(|d| DecoyView { findings: decoy::check(d.kind, &d.name), decoy: d }).collect())
    }

    /// Deletes a decoy in AWS and marks it removed; its token is retired and
    /// kept, so a later call on it is still an incident.
    pub async fn decoy_remove(&self, actor: &Actor, token_id: i64) -> OpResult<Decoy> {
        actor.require(Permission::Administer)?;
        let d = self.store.decoy(token_id).await?;
        if d.removed_at.is_some() {
            return Ok(d);
        }
        let (_, aws) = self.decoy_account(d.pool_account.as_deref()).await?;
        aws.delete_decoy(d.kind, &d.name).await?;
        let removed = self.store.remove_decoy(token_id, Utc::now(), &actor.name).await?;
        self.tokens_changed();
        let detail = format!("{} {}", d.kind.label(), d.name);
        self.store.audit(&actor.name, "decoy.remove", &d.arn, Some(&detail), Some(&actor.from)).await?;
        if d.kind.data_event_type().is_some() {
            if let Err(e) = self.decoy_selectors(&aws).await {
                tracing::warn!(error = %e, "the trail's decoy selectors could not be brought up to date; run honeytrail bootstrap");
            }
        }
        Ok(removed)
    }
}

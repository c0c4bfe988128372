//! The canary account's detection plumbing: bootstrap (create or repair)
//! and verify, item by item; and the IAM policies of honeytrail's jobs.

use honeytrail_aws::bootstrap::{self, rule_regions, BootstrapConfig, ItemReport};
use honeytrail_aws::policies::Job;
use honeytrail_aws::CanaryAccount;
use honeytrail_core::access::Permission;
use serde::Serialize;

use crate::{Actor, OpError, OpResult, Ops};

/// What bootstrap and verify work on in the canary account.
#[derive(Debug, Clone, Serialize)]
pub struct CanarySetup {
    pub account: String,
    /// The home region, where the bucket and queues are.
    pub region: String,
    pub bucket: String,
    pub trail: String,
    /// The queue the bucket notifies of new log files.
    pub notifications_queue: String,
    /// The queue the EventBridge rule forwards API calls to.
    pub events_queue: String,
    pub rule: String,
    /// Every region with rules.
    pub regions: Vec<String>,
}

/// One item of the canary account: how it stands, what bootstrap did, and
/// the fix when it is not in order.
#[derive(Debug, Clone, Serialize)]
pub struct SetupItem {
    pub item: String,
    pub status: ItemStatus,
    /// `unchanged`, `created`, `repaired`, `would create`, `would repair`
    /// (bootstrap only).
    pub action: Option<&'static str>,
    pub fix: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "why")]
pub enum ItemStatus {
    Ok,
    Missing,
    Misconfigured(String),
    /// AWS refused the read: the item's state is unknown, so nothing was
    /// changed. Says which permission is lacking.
    Unreadable(String),
}

/// A bootstrap's or a verification's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryReport {
    /// The pool's name of the account; none for the configured account.
    pub pool_name: Option<String>,
    pub setup: CanarySetup,
    pub items: Vec<SetupItem>,
}

impl From<ItemReport> for SetupItem {
    fn from(r: ItemReport) -> SetupItem {
        let status = match r.status {
            bootstrap::Status::Ok => ItemStatus::Ok,
            bootstrap::Status::Missing => ItemStatus::Missing,
            bootstrap::Status::Misconfigured(why) => ItemStatus::Misconfigured(why),
            bootstrap::Status::Unreadable(why) => ItemStatus::Unreadable(why),
        };
        let action = r.action.map(|a| match a {
            bootstrap::Action::Unchanged => "unchanged",
            bootstrap::Action::Created => "created",
            bootstrap::Action::Repaired => "repaired",
            bootstrap::Action::WouldCreate => "would create",
            bootstrap::Action::WouldRepair => "would repair",
        });
        SetupItem { item: r.item.to_string(), status, action, fix: r.item.fix() }
    }
}

fn setup_view(c: &BootstrapConfig) -> CanarySetup {
    CanarySetup {
        account: c.account.clone(),
        region: c.region.clone(),
        bucket: c.bucket.clone(),
        trail: c.trail.clone(),
        notifications_queue: c.notifications_queue.clone(),
        events_queue: c.events_queue.clone(),
        rule: c.rule.clone(),
        regions: c.regions.clone(),
    }
}

impl Ops {
    /// What bootstrap and verify work on: the configured names, with
    /// defaults made from the account (asked of STS, unless given) and
    /// region. `regions`, else `canary.regions`, else every enabled region
    /// (asked of EC2) gets rules; the home region and us-east-1 always do.
    pub(crate) async fn canary_setup(
        &self,
        aws: &CanaryAccount,
        account: Option<String>,
        regions: Option<Vec<String>>,
    ) -> OpResult<BootstrapConfig> {
        let account = match account {
            Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => a,
            Some(a) => return Err(OpError::invalid(format!("\"{a}\" is not an AWS account number (12 digits)"))),
            None => aws.account_id().await?,
        };
        let region = self.config.aws.region.clone().unwrap_or_else(|| "us-east-1".into());
        let c = &self.config.canary;
        let asked = match regions.or_else(|| c.regions.clone()) {
            Some(r) => r,
            None => aws.enabled_regions().await.map_err(|e| {
                OpError::invalid(format!(
                    "{e}. Name the regions instead: --regions eu-west-1,us-east-1 (or canary.regions in the config)"
                ))
            })?,
        };
        let regions = rule_regions(&region, asked).map_err(OpError::invalid)?;
        let rule = c.rule.clone().unwrap_or_else(|| "cloudtrail-api-calls".into());
        let decoys = self
            .store
            .decoys(false)
            .await?
            .into_iter()
            .filter(|d| d.account_id == account)
            .map(|d| bootstrap::DecoyRef { kind: d.kind, name: d.name, arn: d.arn })
            .collect();
        Ok(BootstrapConfig {
            decoys,
            bucket: c.bucket.clone().unwrap_or_else(|| format!("cloudtrail-{account}-{region}")),
            trail: c.trail.clone().unwrap_or_else(|| "account-trail".into()),
            notifications_queue: c.notifications_queue.clone().unwrap_or_else(|| "cloudtrail-log-files".into()),
            events_queue: c.events_queue.clone().unwrap_or_else(|| "cloudtrail-api-calls".into()),
            forwarder_role: c.forwarder_role.clone().unwrap_or_else(|| format!("{rule}-forwarder")),
            session_role: self.config.fleet.session_role.clone(),
            rule,
            deny_group: self.config.mint.group_name.clone(),
            deny_policy: self.config.mint.policy_name.clone(),
            boundary: self.config.mint.boundary_name.clone(),
            regions,
            account,
            region,
        })
    }

    /// The accounts bootstrap and verify work on: the one named, else every
    /// account of the pool, else (an empty pool) the configured account.
    async fn setup_targets(&self, name: Option<&str>) -> OpResult<Vec<(Option<String>, CanaryAccount)>> {
        if let Some(name) = name {
            let a = self.store.pool_account(name).await?;
            return Ok(vec![(Some(a.name.clone()), self.connect_pool_account(&a).await)]);
        }
        let pool = self.store.pool_accounts().await?;
        if pool.is_empty() {
            return Ok(vec![(None, self.canary_account().await)]);
        }
        let mut targets = Vec::with_capacity(pool.len());
        for a in &pool {
            targets.push((Some(a.name.clone()), self.connect_pool_account(a).await));
        }
        Ok(targets)
    }

    /// Creates or repairs every item (`dry_run`: only says what it would
    /// do), with rules in `regions` (see [`CanarySetup::regions`]), in the
    /// account of the pool named `account`, else in each account of the
    /// pool, else (an empty pool) in the configured account.
    pub async fn bootstrap(
        &self,
        actor: &Actor,
        account: Option<&str>,
        regions: Option<Vec<String>>,
        dry_run: bool,
    ) -> OpResult<Vec<CanaryReport>> {
        actor.require(Permission::Administer)?;
        let mut out = Vec::new();
        for (pool_name, aws) in self.setup_targets(account).await? {
            let setup = self.canary_setup(&aws, None, regions.clone()).await?;
            let reports = aws.bootstrap(&setup, dry_run).await?;
            if !dry_run {
                let detail = format!("{} item(s) checked", reports.len());
                self.store
                    .audit(&actor.name, "aws.bootstrap", &setup.account, Some(&detail), Some(&actor.from))
                    .await?;
            }
            let items = reports.into_iter().map(SetupItem::from).collect();
            out.push(CanaryReport { pool_name, setup: setup_view(&setup), items });
        }
        Ok(out)
    }

    /// Reports what is present, missing or misconfigured, in the account of
    /// the pool named `account`, or in each.
    pub async fn verify(
        &self,
        actor: &Actor,
        account: Option<&str>,
        regions: Option<Vec<String>>,
    ) -> OpResult<Vec<CanaryReport>> {
        actor.require(Permission::Read)?;
        let mut out = Vec::new();
        for (pool_name, aws) in self.setup_targets(account).await? {
            let setup = self.canary_setup(&aws, None, regions.clone()).await?;
            let items = aws.verify(&setup).await?.into_iter().map(SetupItem::from).collect();
            out.push(CanaryReport { pool_name, setup: setup_view(&setup), items });
        }
        Ok(out)
    }

    /// The IAM policy of one of honeytrail's jobs in the canary account
    /// (`bootstrap`, `mint`, `ingest`, `boundary`); the account is asked of
    /// STS unless given.
    pub async fn aws_policy(&self, actor: &Actor, job: &str, account: Option<String>) -> OpResult<serde_json::Value> {
        actor.require(Permission::Read)?;
        let Some(job) = Job::parse(job) else {
            return Err(OpError::invalid(format!(
                "no job \"{job}\": choose bootstrap, mint, ingest, decoys or boundary"
            )));
        };
        // Only the names matter here: no region discovery.
        let setup = self.canary_setup(&self.canary_account().await, account, Some(Vec::new())).await?;
        Ok(job.policy(&setup))
    }
}

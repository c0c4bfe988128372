//! The canary account's detection plumbing: bootstrap (create or repair)
//! and verify, item by item.

use honeytrail_aws::bootstrap::{BootstrapConfig, ItemReport};
use honeytrail_core::access::Permission;

use crate::{Actor, OpResult, Ops};

impl Ops {
    /// What bootstrap and verify work on: the configured names, with
    /// defaults made from the account (asked of STS) and region.
    pub async fn canary_setup(&self) -> OpResult<BootstrapConfig> {
        let account = self.canary_account().await.identity().await?.account;
        let region = self.config.aws.region.clone().unwrap_or_else(|| "us-east-1".into());
        let c = &self.config.canary;
        Ok(BootstrapConfig {
            bucket: c.bucket.clone().unwrap_or_else(|| format!("cloudtrail-{account}-{region}")),
            trail: c.trail.clone().unwrap_or_else(|| "account-trail".into()),
            notifications_queue: c.notifications_queue.clone().unwrap_or_else(|| "cloudtrail-log-files".into()),
            events_queue: c.events_queue.clone().unwrap_or_else(|| "cloudtrail-api-calls".into()),
            rule: c.rule.clone().unwrap_or_else(|| "cloudtrail-api-calls".into()),
            deny_group: self.config.mint.group_name.clone(),
            deny_policy: self.config.mint.policy_name.clone(),
            account,
            region,
        })
    }

    /// Creates or repairs every item (`dry_run`: only says what it would do).
    pub async fn bootstrap(&self, actor: &Actor, setup: &BootstrapConfig, dry_run: bool) -> OpResult<Vec<ItemReport>> {
        actor.require(Permission::Administer)?;
        let reports = self.canary_account().await.bootstrap(setup, dry_run).await?;
        if !dry_run {
            let detail = format!("{} item(s) checked", reports.len());
            self.store.audit(&actor.name, "aws.bootstrap", &setup.account, Some(&detail), Some(&actor.from)).await?;
        }
        Ok(reports)
    }

    /// Reports what is present, missing or misconfigured.
    pub async fn verify(&self, actor: &Actor, setup: &BootstrapConfig) -> OpResult<Vec<ItemReport>> {
        actor.require(Permission::Read)?;
        Ok(self.canary_account().await.verify(setup).await?)
    }
}

//! The canary account's detection plumbing: bootstrap (create or repair)
//! and verify, item by item.

use honeytrail_aws::bootstrap::{rule_regions, BootstrapConfig, ItemReport};
use honeytrail_core::access::Permission;

use crate::{Actor, OpError, OpResult, Ops};

impl Ops {
    /// What bootstrap and verify work on: the configured names, with
    /// defaults made from the account (asked of STS, unless given) and
    /// region. `regions`, else `canary.regions`, else every enabled region
    /// (asked of EC2) gets rules; the home region and us-east-1 always do.
    pub async fn canary_setup(
        &self,
        account: Option<String>,
        regions: Option<Vec<String>>,
    ) -> OpResult<BootstrapConfig> {
        let aws = self.canary_account().await;
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
        Ok(BootstrapConfig {
            bucket: c.bucket.clone().unwrap_or_else(|| format!("cloudtrail-{account}-{region}")),
            trail: c.trail.clone().unwrap_or_else(|| "account-trail".into()),
            notifications_queue: c.notifications_queue.clone().unwrap_or_else(|| "cloudtrail-log-files".into()),
            events_queue: c.events_queue.clone().unwrap_or_else(|| "cloudtrail-api-calls".into()),
            forwarder_role: c.forwarder_role.clone().unwrap_or_else(|| format!("{rule}-forwarder")),
            rule,
            deny_group: self.config.mint.group_name.clone(),
            deny_policy: self.config.mint.policy_name.clone(),
            boundary: self.config.mint.boundary_name.clone(),
            regions,
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

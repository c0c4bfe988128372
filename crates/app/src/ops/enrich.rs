//! Enrichment data: loading AWS's IP ranges and a Tor exit list into the
//! store, what is in use, and looking an address or a user agent up.

use std::collections::BTreeMap;

use chrono::Utc;
use honeytrail_core::access::Permission;
use honeytrail_core::enrich::{AgentContext, AwsRanges, SourceContext, TorExits, DATA_FILE_MAX};
use honeytrail_store as store;
use serde::Serialize;

use crate::enrichment::{AWS_RANGES, KINDS, TOR_EXITS};
use crate::{Actor, OpError, OpResult, Ops};
pub use honeytrail_core::enrich::EnrichmentInfo;

/// What enrichment uses now.
#[derive(Debug, Clone, Serialize)]
pub struct EnrichStatus {
    /// The loaded data sets, with when they were published and loaded.
    pub loaded: Vec<EnrichmentInfo>,
    /// Every source in use, one line each.
    pub data: Vec<String>,
    /// The declared own networks.
    pub networks: BTreeMap<String, Vec<String>>,
    /// A configured file that cannot be used (and is left out until fixed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// What is known of an address and a user agent.
#[derive(Debug, Clone, Serialize)]
pub struct EnrichLookup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentContext>,
}

/// `tor` is the short name of `tor-exits`.
pub fn kind_of(raw: &str) -> Result<&'static str, OpError> {
    match raw.trim() {
        "aws-ranges" | "aws" => Ok(AWS_RANGES),
        "tor-exits" | "tor" => Ok(TOR_EXITS),
        other => {
            Err(OpError::invalid(format!("{other:?} is not a kind of enrichment data; use {}", KINDS.join(" or "))))
        }
    }
}

impl Ops {
    /// Keeps a new data set of `kind`, replacing the one before, after
    /// checking that it is what it claims to be.
    pub async fn enrich_load(&self, actor: &Actor, kind: &str, body: &str) -> OpResult<EnrichmentInfo> {
        actor.require(Permission::Administer)?;
        let kind = kind_of(kind)?;
        if body.len() > DATA_FILE_MAX {
            return Err(OpError::invalid(format!(
                "the file is over {} MiB; is it the right one?",
                DATA_FILE_MAX >> 20
            )));
        }
        let (published, entries, skipped) = match kind {
            AWS_RANGES => {
                let (r, skipped) = AwsRanges::parse(body)?;
                (Some(r.published.clone()), r.len(), skipped)
            }
            _ => {
                let t = TorExits::parse(body)?;
                (t.published.clone(), t.len(), 0)
            }
        };
        let info = store::EnrichmentInfo {
            kind: kind.to_string(),
            published,
            entries: entries as i64,
            loaded_at: Utc::now(),
            loaded_by: actor.name.clone(),
        };
        let detail = format!(
            "{entries} entries{}{}",
            info.published.as_deref().map(|p| format!(", published {p}")).unwrap_or_default(),
            if skipped > 0 { format!(", {skipped} unreadable skipped") } else { String::new() }
        );
        self.audited(actor, "enrich.load", kind, Some(&detail)).put_enrichment(&info, body).await?;
        Ok(info)
    }

    pub async fn enrich_remove(&self, actor: &Actor, kind: &str) -> OpResult<()> {
        actor.require(Permission::Administer)?;
        let kind = kind_of(kind)?;
        Ok(self.audited(actor, "enrich.remove", kind, None).remove_enrichment(kind).await?)
    }

    pub async fn enrich_status(&self, actor: &Actor) -> OpResult<EnrichStatus> {
        actor.require(Permission::Read)?;
        let enricher = self.enricher().await?;
        Ok(EnrichStatus {
            loaded: self.store.enrichment_list().await?,
            data: enricher.data(),
            networks: self.config.enrich.networks.clone(),
            problems: enricher.left_out.clone(),
        })
    }

    /// What enrichment says of `address` and `user_agent` (either may be absent).
    pub async fn enrich_lookup(
        &self,
        actor: &Actor,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> OpResult<EnrichLookup> {
        actor.require(Permission::Read)?;
        if address.is_none() && user_agent.is_none() {
            return Err(OpError::invalid("give an address, a user agent or both"));
        }
        if let Some(a) = address {
            a.trim()
                .parse::<std::net::IpAddr>()
                .map_err(|_| OpError::invalid(format!("{a:?} is not an IP address")))?;
        }
        let e = self.enricher().await?;
        Ok(EnrichLookup { source: address.map(|a| e.source(a.trim())), agent: user_agent.and_then(|u| e.agent(u)) })
    }
}

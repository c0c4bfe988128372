//! The [`Enricher`] in use: the configured own networks and user-agent
//! lists, MaxMind-format databases, and the data sets loaded into the store
//! (`honeytrail enrich load`). Built once and kept until one of them changes
//! (a load, a new file), so a record costs one small query, not a parse of
//! AWS's ranges.
//!
//! A data source that cannot be read while serving (a database file gone)
//! is left out with a warning and named in every incident context's data list (and by `enrich show`): the
//! incident is still recorded and alerted.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use honeytrail_core::enrich::{parse_tools, AwsRanges, Enricher, Geo, GeoLookup, TorExits, BUILTIN_USER_AGENTS};
use honeytrail_store::Store;
use serde::Deserialize;

use crate::config::EnrichSection;

/// Kinds of data set `honeytrail enrich load` takes.
pub const KINDS: [&str; 2] = [AWS_RANGES, TOR_EXITS];
pub const AWS_RANGES: &str = "aws-ranges";
pub const TOR_EXITS: &str = "tor-exits";

/// One MaxMind-format database.
struct MaxMind {
    path: PathBuf,
    reader: maxminddb::Reader<Vec<u8>>,
}

#[derive(Deserialize)]
struct MmCountry {
    iso_code: Option<String>,
}

#[derive(Deserialize)]
struct MmRecord {
    country: Option<MmCountry>,
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
}

/// Several databases read as one (a Country and an ASN database).
struct GeoDatabases(Vec<MaxMind>);

fn clean(s: String, max: usize) -> Option<String> {
    let s: String = s.chars().filter(|&c| !honeytrail_core::encoding::hidden(c)).take(max).collect();
    (!s.trim().is_empty()).then_some(s)
}

impl GeoLookup for GeoDatabases {
    fn lookup(&self, ip: IpAddr) -> Option<Geo> {
        let mut geo = Geo::default();
        for db in &self.0 {
            let Ok(found) = db.reader.lookup(ip) else { continue };
            let Ok(Some(r)) = found.decode::<MmRecord>() else { continue };
            if geo.country.is_none() {
                geo.country = r.country.and_then(|c| c.iso_code).and_then(|c| clean(c, 8));
            }
            if geo.asn.is_none() {
                geo.asn = r.autonomous_system_number;
                geo.as_org = r.autonomous_system_organization.and_then(|o| clean(o, 120));
            }
        }
        (geo != Geo::default()).then_some(geo)
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self
            .0
            .iter()
            .map(|db| {
                let built = chrono::DateTime::from_timestamp(db.reader.metadata().build_epoch as i64, 0)
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_else(|| "?".into());
                format!("{} built {built}", db.reader.metadata().database_type)
            })
            .collect();
        format!("MaxMind-format: {}", names.join(", "))
    }
}

/// Opens a MaxMind-format database, with an error that names the file.
fn open_geo(path: &Path) -> Result<MaxMind> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the GeoIP database {}", path.display()))?;
    let reader = maxminddb::Reader::from_source(bytes).with_context(|| {
        format!("{} is not a MaxMind-format database (GeoLite2 or DB-IP lite, .mmdb)", path.display())
    })?;
    Ok(MaxMind { path: path.to_path_buf(), reader })
}

/// Checks every configured file at start: a wrong path is said before the
/// first incident needs it.
pub fn check(section: &EnrichSection) -> Result<()> {
    section.own_networks()?;
    if let Some(p) = &section.user_agents {
        user_agent_file(p)?;
    }
    for p in &section.geoip {
        open_geo(p)?;
    }
    Ok(())
}

fn user_agent_file(path: &Path) -> Result<Vec<honeytrail_core::enrich::ToolRule>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the user-agent list {} (enrich.user_agents)", path.display()))?;
    parse_tools(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn stamp(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) => format!("{}:{}:{:?}", path.display(), m.len(), m.modified().ok()),
        Err(_) => format!("{}:missing", path.display()),
    }
}

/// What the kept enricher was built from.
static KEPT: Mutex<Option<(String, Arc<Enricher>)>> = Mutex::new(None);

/// The enricher for `section` and the data sets in `store`.
pub async fn enricher(store: &Store, section: &EnrichSection) -> Result<Arc<Enricher>> {
    let sets = store.enrichment_list().await?;
    let mut key = format!("{section:?}|{sets:?}");
    for p in section.user_agents.iter().chain(&section.geoip) {
        key.push('|');
        key.push_str(&stamp(p));
    }
    if let Some((k, e)) = KEPT.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        if *k == key {
            return Ok(e.clone());
        }
    }
    let built = Arc::new(build(store, section).await?);
    *KEPT.lock().unwrap_or_else(PoisonError::into_inner) = Some((key, built.clone()));
    Ok(built)
}

/// When [`recent_enricher`] last checked the enricher against the store.
static CHECKED: Mutex<Option<(std::time::Instant, Arc<Enricher>)>> = Mutex::new(None);

/// The enricher, checked against the store at most once per `max_age`: for
/// the ingest path, which asks per batch of events and must not add a query
/// to each (what it asks, whether a user agent names an attacker tool, does
/// not depend on the loaded data sets).
pub async fn recent_enricher(
    store: &Store,
    section: &EnrichSection,
    max_age: std::time::Duration,
) -> Result<Arc<Enricher>> {
    if let Some((at, e)) = CHECKED.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        if at.elapsed() < max_age {
            return Ok(e.clone());
        }
    }
    let e = enricher(store, section).await?;
    *CHECKED.lock().unwrap_or_else(PoisonError::into_inner) = Some((std::time::Instant::now(), e.clone()));
    Ok(e)
}

/// Says (once per build of the enricher) why a source is not used.
fn left_out(e: &mut Enricher, why: String) {
    tracing::warn!(reason = %why, "an enrichment source is left out");
    e.left_out.push(why);
}

async fn build(store: &Store, section: &EnrichSection) -> Result<Enricher> {
    let mut e = Enricher {
        networks: section.own_networks()?,
        endpoint_accounts: section.endpoint_accounts()?,
        ..Default::default()
    };
    e.tools = parse_tools(BUILTIN_USER_AGENTS).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(p) = &section.user_agents {
        match user_agent_file(p) {
            Ok(more) => e.tools.extend(more),
            Err(err) => left_out(&mut e, format!("{err:#}")),
        }
    }
    let mut dbs = Vec::new();
    for p in &section.geoip {
        match open_geo(p) {
            Ok(db) => dbs.push(db),
            Err(err) => left_out(&mut e, format!("{err:#}")),
        }
    }
    if !dbs.is_empty() {
        tracing::debug!(files = ?dbs.iter().map(|d| d.path.display().to_string()).collect::<Vec<_>>(), "GeoIP databases");
        e.geo = Some(Arc::new(GeoDatabases(dbs)));
    }
    if let Some(d) = store.enrichment(AWS_RANGES).await? {
        match AwsRanges::parse(&d.body) {
            Ok((r, _)) => e.aws = Some(Arc::new(r)),
            Err(err) => left_out(&mut e, format!("the stored AWS ranges do not parse ({err}); load them again")),
        }
    }
    if let Some(d) = store.enrichment(TOR_EXITS).await? {
        match TorExits::parse(&d.body) {
            Ok(t) => e.tor = Some(Arc::new(t)),
            Err(err) => left_out(&mut e, format!("the stored Tor exit list does not parse ({err}); load it again")),
        }
    }
    Ok(e)
}

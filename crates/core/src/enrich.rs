//! Context that tells a curious colleague from an intruder, computed offline
//! from data the team loads: its own networks, AWS's published IP ranges, a
//! Tor exit list, an optional MaxMind-format database (through [`GeoLookup`])
//! and a list of attacker distributions and tools by user agent.
//!
//! An [`Enricher`] holds all of it and turns an incident's [`Activity`] into
//! an [`IncidentContext`]: what responders read, what routes and actions
//! test (`network=corp`, `tool=*`, `tor`), and whether every call came from
//! the team's own networks. Nothing here reaches the network.
//!
//! Every value it is given about a call (addresses, user agents) is written
//! by whoever holds the key. Labels name only what matched the team's own
//! data; the one piece of a user agent they repeat, the client's name, is cut
//! to letters, digits and `._-`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::incident::{Activity, Severity};
use crate::net::{masked, Network};
use crate::Invalid;

/// Events that say someone hid a change of the bait from its agent.
const HIDING_EVENTS: [&str; 2] = [crate::incident::BAIT_UNREADABLE_EVENT, crate::incident::BAIT_REFUSED_EVENT];

/// A team's own networks, by name (`corp`, `vpn`, `ci`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnNetworks(Vec<(String, Vec<Network>)>);

impl OwnNetworks {
    /// Networks from `name = ["10.0.0.0/8", …]` pairs; a bad block is refused
    /// with the name it was listed under.
    pub fn parse<S: AsRef<str>>(named: &[(String, Vec<S>)]) -> Result<OwnNetworks, Invalid> {
        let mut out = Vec::with_capacity(named.len());
        for (name, blocks) in named {
            if !valid_name(name) {
                return Err(Invalid(format!(
                    "enrich.networks: {name:?} is not a network name (letters, digits, '-' and '_', at most 64)"
                )));
            }
            let nets =
                crate::net::parse_networks(blocks).map_err(|e| Invalid(format!("enrich.networks.{name}: {e}")))?;
            if nets.is_empty() {
                return Err(Invalid(format!("enrich.networks.{name} lists no network")));
            }
            out.push((name.clone(), nets));
        }
        Ok(OwnNetworks(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The name of the first declared network that holds `ip`.
    pub fn name_of(&self, ip: IpAddr) -> Option<&str> {
        self.0.iter().find(|(_, nets)| nets.iter().any(|n| n.contains(ip))).map(|(name, _)| name.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Longest-prefix lookup over many blocks: one hash probe per prefix length
/// in use.
#[derive(Debug, Clone)]
struct PrefixTable<T> {
    /// `(is_v6, prefix)` lengths in use, longest first.
    lengths: Vec<(bool, u8)>,
    blocks: HashMap<(bool, u8, u128), T>,
}

impl<T> Default for PrefixTable<T> {
    fn default() -> Self {
        PrefixTable { lengths: Vec::new(), blocks: HashMap::new() }
    }
}

impl<T> PrefixTable<T> {
    fn insert_with(&mut self, net: Network, value: T, keep: impl FnOnce(&T, &T) -> bool) {
        let key = (net.is_v6(), net.prefix(), net.bits());
        match self.blocks.get(&key) {
            Some(old) if keep(old, &value) => {}
            _ => {
                self.blocks.insert(key, value);
            }
        }
        if !self.lengths.contains(&(key.0, key.1)) {
            self.lengths.push((key.0, key.1));
            self.lengths.sort_by_key(|l| std::cmp::Reverse(l.1));
        }
    }

    fn longest(&self, ip: IpAddr) -> Option<&T> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let v6 = ip.is_ipv6();
        self.lengths
            .iter()
            .filter(|(is_v6, _)| *is_v6 == v6)
            .find_map(|&(_, prefix)| self.blocks.get(&(v6, prefix, masked(ip, prefix))))
    }

    fn len(&self) -> usize {
        self.blocks.len()
    }
}

/// Where in AWS an address is, from `ip-ranges.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AwsPlace {
    /// `EC2`, `CLOUDFRONT`, `AMAZON` (any AWS service)…
    pub service: String,
    /// `eu-west-1`, or `GLOBAL`.
    pub region: String,
    /// The block it is in.
    pub prefix: String,
}

/// AWS's published IP ranges (`https://ip-ranges.amazonaws.com/ip-ranges.json`).
#[derive(Debug, Clone)]
pub struct AwsRanges {
    /// The file's `createDate` (`2024-05-02-21-43-13`).
    pub published: String,
    table: PrefixTable<AwsPlace>,
}

#[derive(Deserialize)]
struct RangesFile {
    #[serde(rename = "createDate")]
    create_date: String,
    #[serde(default)]
    prefixes: Vec<RangeEntry>,
    #[serde(default)]
    ipv6_prefixes: Vec<RangeEntry>,
}

#[derive(Deserialize)]
struct RangeEntry {
    #[serde(alias = "ipv6_prefix")]
    ip_prefix: String,
    region: String,
    service: String,
}

/// At most this many bytes of a data file are read.
pub const DATA_FILE_MAX: usize = 64 << 20;

impl AwsRanges {
    /// Reads `ip-ranges.json`. A block that does not parse is skipped and
    /// counted (the second value); a file with none that parses is refused.
    pub fn parse(json: &str) -> Result<(AwsRanges, usize), Invalid> {
        let file: RangesFile = serde_json::from_str(json).map_err(|e| {
            Invalid(format!("this is not AWS's ip-ranges.json ({e}); download it from https://ip-ranges.amazonaws.com/ip-ranges.json"))
        })?;
        let mut table = PrefixTable::default();
        let mut skipped = 0;
        for e in file.prefixes.into_iter().chain(file.ipv6_prefixes) {
            let Ok(net) = Network::parse(&e.ip_prefix) else {
                skipped += 1;
                continue;
            };
            let place = AwsPlace {
                service: clip_token(&e.service, 40),
                region: clip_token(&e.region, 40),
                prefix: net.to_string(),
            };
            // The same block is listed once for AMAZON and once per service
            // that uses it: keep the service, it says more.
            table.insert_with(net, place, |old, _| old.service != "AMAZON");
        }
        if table.len() == 0 {
            return Err(Invalid("ip-ranges.json lists no address block".into()));
        }
        Ok((AwsRanges { published: clip_token(&file.create_date, 40), table }, skipped))
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<&AwsPlace> {
        self.table.longest(ip)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }
}

/// Tor exit addresses: the bulk exit list (one address a line) or the
/// `exit-addresses` format (`ExitAddress 192.0.2.1 2024-05-01 10:00:00`).
#[derive(Debug, Clone, Default)]
pub struct TorExits {
    addresses: HashSet<IpAddr>,
    /// The newest `Published` or `ExitAddress` date in the file, if any.
    pub published: Option<String>,
}

impl TorExits {
    pub fn parse(text: &str) -> Result<TorExits, Invalid> {
        let mut out = TorExits::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or_default();
            let addr = match first {
                "ExitAddress" => {
                    let addr = words.next();
                    if let Some(date) = words.next() {
                        if out.published.as_deref().is_none_or(|p| p < date) {
                            out.published = Some(clip_token(date, 20));
                        }
                    }
                    addr
                }
                "ExitNode" | "Published" | "LastStatus" => continue,
                other => Some(other),
            };
            if let Some(ip) = addr.and_then(|a| a.parse::<IpAddr>().ok()) {
                out.addresses.insert(ip);
            }
        }
        if out.addresses.is_empty() {
            return Err(Invalid(
                "no Tor exit address in this file; give the bulk exit list (https://check.torproject.org/torbulkexitlist) \
                 or exit-addresses (https://check.torproject.org/exit-addresses)"
                    .into(),
            ));
        }
        Ok(out)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.addresses.contains(&ip)
            || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| self.addresses.contains(&IpAddr::V4(v4))))
    }

    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }
}

/// Country and network owner of an address, from a MaxMind-format database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 (`DE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The autonomous system's organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_org: Option<String>,
}

/// A MaxMind-format database (GeoLite2, DB-IP lite), read elsewhere.
pub trait GeoLookup: Send + Sync {
    fn lookup(&self, ip: IpAddr) -> Option<Geo>;
    /// What it is, for the data list: `GeoLite2-Country built 2024-05-01`.
    fn describe(&self) -> String;
}

/// Which kind of user-agent entry matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    Distribution,
    Tool,
}

/// One entry of the user-agent list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ToolRule {
    pub name: String,
    #[serde(rename = "match")]
    pub needles: Vec<String>,
    pub source: String,
    #[serde(skip, default = "default_kind")]
    pub kind: ToolKind,
}

fn default_kind() -> ToolKind {
    ToolKind::Tool
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolFile {
    #[serde(default)]
    distribution: Vec<ToolRule>,
    #[serde(default)]
    tool: Vec<ToolRule>,
}

/// The list that ships with honeytrail (`crates/core/data/user-agents.toml`).
pub const BUILTIN_USER_AGENTS: &str = include_str!("../data/user-agents.toml");

/// Reads a user-agent list (`[[distribution]]` and `[[tool]]` entries with
/// `name`, `match` and `source`).
pub fn parse_tools(text: &str) -> Result<Vec<ToolRule>, Invalid> {
    let file: ToolFile = toml::from_str(text).map_err(|e| Invalid(format!("user-agent list: {e}")))?;
    let mut out = Vec::new();
    for (kind, rules) in [(ToolKind::Distribution, file.distribution), (ToolKind::Tool, file.tool)] {
        for mut rule in rules {
            if rule.name.trim().is_empty() || rule.name.chars().any(char::is_control) || rule.name.len() > 80 {
                return Err(Invalid(format!("user-agent list: {:?} is not a name", rule.name)));
            }
            rule.needles = rule.needles.iter().map(|n| n.trim().to_lowercase()).filter(|n| !n.is_empty()).collect();
            if rule.needles.is_empty() {
                return Err(Invalid(format!("user-agent list: {} has no match string", rule.name)));
            }
            rule.kind = kind;
            out.push(rule);
        }
    }
    Ok(out)
}

/// What the user-agent list says of one user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentContext {
    pub user_agent: String,
    /// "aws-cli on Kali Linux", "TruffleHog", "Scout Suite on Parrot Security".
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// Where the matching entries come from.
    pub sources: Vec<String>,
}

/// What is known of one source address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceContext {
    pub address: String,
    /// The declared own network it is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsPlace>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tor: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<Geo>,
    /// "from our network corp", "from AWS EC2 in eu-west-1", "from a Tor
    /// exit", "from DE, AS3320 Deutsche Telekom AG"; empty when nothing is known.
    pub label: String,
}

/// The context of one incident: every source address and user agent that
/// matched something, and what follows from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IncidentContext {
    /// One line per finding, most telling first: "from a Tor exit:
    /// 185.220.101.4", "aws-cli on Kali Linux".
    pub summary: Vec<String>,
    /// Every call came from a declared own network: likely one of us. An
    /// automatic action does not run on such an incident unless its action
    /// says so.
    pub own_network_only: bool,
    /// The names of the own networks calls came from.
    pub networks: Vec<String>,
    /// The tools and distributions named.
    pub tools: Vec<String>,
    /// A call came from a Tor exit.
    pub tor: bool,
    /// A call came from an AWS address (`EC2 eu-west-1`).
    pub aws: Vec<String>,
    /// Countries of the source addresses (with a MaxMind database).
    pub countries: Vec<String>,
    /// AS numbers of the source addresses (with a MaxMind database).
    pub asns: Vec<u32>,
    /// Addresses that matched anything, with what.
    pub sources: Vec<SourceContext>,
    /// User agents that matched the list, with what.
    pub agents: Vec<AgentContext>,
    /// The data this was computed with: "AWS ranges of 2024-05-02-21-43-13
    /// (7 812 blocks)", "Tor exits (1 204)".
    pub data: Vec<String>,
    /// Source addresses seen through a VPC endpoint of an account not listed
    /// in `enrich.vpc_endpoint_accounts`: a private address the caller may
    /// have chosen, so no own-network, AWS, Tor, country or ASN rule counts it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untrusted_sources: Vec<String>,
    /// The bait was replaced by something its agent will not read, or a
    /// planted link or hard link kept it out of a path: someone hid a
    /// change. Raises the severity one step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bait_hidden: bool,
}

impl IncidentContext {
    /// Whether there is anything to show.
    pub fn is_empty(&self) -> bool {
        self.summary.is_empty()
    }

    /// `severity` raised one step when an attacker tool or distribution was
    /// named, or the bait was hidden from its agent.
    pub fn raise(&self, severity: Severity) -> Severity {
        if self.raises() {
            severity.raised()
        } else {
            severity
        }
    }

    /// Whether [`IncidentContext::raise`] raises.
    pub fn raises(&self) -> bool {
        !self.tools.is_empty() || self.bait_hidden
    }

    /// Whether `condition` holds: see [`Condition`].
    pub fn holds(&self, condition: &Condition) -> bool {
        let any = |values: &[String]| values.iter().any(|v| condition.accepts(v));
        match condition.key {
            ConditionKey::Network => any(&self.networks),
            ConditionKey::Tool => any(&self.tools),
            ConditionKey::Tor => self.tor,
            ConditionKey::Aws => any(&self.aws),
            ConditionKey::Country => any(&self.countries),
            ConditionKey::Asn => self.asns.iter().any(|a| condition.accepts(&a.to_string())),
            ConditionKey::OwnNetwork => self.own_network_only,
        }
    }
}

/// What a route or an action may test of an incident's context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConditionKey {
    /// A call from the named own network.
    Network,
    /// A named tool or distribution.
    Tool,
    /// A call from a Tor exit (no value).
    Tor,
    /// A call from AWS (`EC2 eu-west-1`; the value matches service or region).
    Aws,
    Country,
    Asn,
    /// Every call from own networks (no value).
    OwnNetwork,
}

/// `network=corp`, `tool=*`, `tool=TruffleHog`, `tor`, `aws=EC2`,
/// `country=DE`, `asn=3320`, `own-network`. Values compare ignoring case;
/// `*` is any value, and a value ending in `*` any value it begins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub key: ConditionKey,
    /// `None`: any value (the same as `*`).
    #[serde(default)]
    pub value: Option<String>,
}

impl Condition {
    pub fn parse(raw: &str) -> Result<Condition, Invalid> {
        let raw = raw.trim();
        let (key, value) = match raw.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (raw, None),
        };
        let key = match key.to_ascii_lowercase().as_str() {
            "network" => ConditionKey::Network,
            "tool" => ConditionKey::Tool,
            "tor" => ConditionKey::Tor,
            "aws" => ConditionKey::Aws,
            "country" => ConditionKey::Country,
            "asn" => ConditionKey::Asn,
            "own-network" => ConditionKey::OwnNetwork,
            _ => {
                return Err(Invalid(format!(
                    "{raw:?} is not a condition; use network=NAME, tool=NAME|*, tor, aws=SERVICE|REGION, country=CC, asn=N or own-network"
                )))
            }
        };
        let value = match value {
            None | Some("*") => None,
            Some("") => return Err(Invalid(format!("{raw:?}: give a value after '=' (or * for any)"))),
            Some(v) if v.len() > 80 || v.chars().any(char::is_control) => {
                return Err(Invalid(format!("{raw:?}: the value is not a name")))
            }
            Some(v) => Some(v.to_string()),
        };
        if value.is_some() && matches!(key, ConditionKey::Tor | ConditionKey::OwnNetwork) {
            return Err(Invalid(format!("{raw:?}: this condition takes no value")));
        }
        Ok(Condition { key, value })
    }

    fn accepts(&self, candidate: &str) -> bool {
        match &self.value {
            None => true,
            Some(v) => match v.strip_suffix('*') {
                Some(prefix) => candidate.to_lowercase().starts_with(&prefix.to_lowercase()),
                None => candidate.split_whitespace().chain([candidate]).any(|c| c.eq_ignore_ascii_case(v)),
            },
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = serde_json::to_value(self.key).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        match &self.value {
            Some(v) => write!(f, "{key}={v}"),
            None if matches!(self.key, ConditionKey::Tor | ConditionKey::OwnNetwork) => f.write_str(&key),
            None => write!(f, "{key}=*"),
        }
    }
}

/// Conditions from `items`, each of which may be a comma-separated list.
pub fn parse_conditions<S: AsRef<str>>(items: &[S]) -> Result<Vec<Condition>, Invalid> {
    crate::net::comma_separated(items).map(Condition::parse).collect()
}

/// Whether `when` all hold and none of `unless` do (empty lists hold).
pub fn conditions_hold(context: &IncidentContext, when: &[Condition], unless: &[Condition]) -> bool {
    when.iter().all(|c| context.holds(c)) && !unless.iter().any(|c| context.holds(c))
}

/// Everything enrichment knows.
#[derive(Clone, Default)]
pub struct Enricher {
    pub networks: OwnNetworks,
    pub aws: Option<Arc<AwsRanges>>,
    pub tor: Option<Arc<TorExits>>,
    pub geo: Option<Arc<dyn GeoLookup>>,
    pub tools: Vec<ToolRule>,
    /// The accounts whose VPC endpoints are trusted (`enrich.vpc_endpoint_accounts`):
    /// a source address seen through any other endpoint is the caller's to
    /// choose, so no rule built on source addresses trusts it.
    pub endpoint_accounts: Vec<String>,
    /// Configured sources that could not be used, each with why: named in
    /// every incident's data list, so it says what it was computed without.
    pub left_out: Vec<String>,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher").field("data", &self.data()).finish()
    }
}

/// `s` cut to letters, digits and `._-`, at most `max` characters.
fn clip_token(s: &str, max: usize) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).take(max).collect()
}

/// The client named at the start of a user agent (`aws-cli`, `Boto3`,
/// `aws-sdk-go`), cut to a safe token.
fn client_of(user_agent: &str) -> Option<String> {
    let first = user_agent.split(['/', ' ']).next().unwrap_or_default();
    let token = clip_token(first, 40);
    (!token.is_empty()).then_some(token)
}

impl Enricher {
    /// The shipped user-agent list only.
    pub fn with_builtin_tools() -> Enricher {
        Enricher {
            tools: parse_tools(BUILTIN_USER_AGENTS).expect("the shipped user-agent list parses"),
            ..Default::default()
        }
    }

    /// The data in use, one line each.
    pub fn data(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.networks.is_empty() {
            out.push(format!("own networks: {}", self.networks.names().collect::<Vec<_>>().join(", ")));
        }
        if let Some(a) = &self.aws {
            out.push(format!("AWS IP ranges of {} ({} blocks)", a.published, a.len()));
        }
        if let Some(t) = &self.tor {
            match &t.published {
                Some(p) => out.push(format!("Tor exits of {p} ({} addresses)", t.len())),
                None => out.push(format!("Tor exits ({} addresses)", t.len())),
            }
        }
        if let Some(g) = &self.geo {
            out.push(g.describe());
        }
        out.push(format!("user-agent list ({} entries)", self.tools.len()));
        if !self.endpoint_accounts.is_empty() {
            out.push(format!("VPC endpoints trusted of account(s) {}", self.endpoint_accounts.join(", ")));
        }
        out
    }

    /// What is known of one address.
    pub fn source(&self, raw: &str) -> SourceContext {
        let mut out = SourceContext { address: raw.to_string(), ..Default::default() };
        let Ok(ip) = raw.trim().parse::<IpAddr>() else {
            return out;
        };
        out.network = self.networks.name_of(ip).map(str::to_string);
        out.aws = self.aws.as_ref().and_then(|a| a.lookup(ip)).cloned();
        out.tor = self.tor.as_ref().is_some_and(|t| t.contains(ip));
        out.geo = self.geo.as_ref().and_then(|g| g.lookup(ip)).filter(|g| *g != Geo::default());
        let mut parts = Vec::new();
        if let Some(n) = &out.network {
            parts.push(format!("from our network {n}"));
        }
        if out.tor {
            parts.push("from a Tor exit".to_string());
        }
        if let Some(a) = &out.aws {
            parts.push(match (a.service.as_str(), a.region.as_str()) {
                ("AMAZON", "GLOBAL") => "from AWS".to_string(),
                ("AMAZON", region) => format!("from AWS in {region}"),
                (service, "GLOBAL") => format!("from AWS {service}"),
                (service, region) => format!("from AWS {service} in {region}"),
            });
        }
        if let Some(g) = &out.geo {
            let mut geo = Vec::new();
            if let Some(c) = &g.country {
                geo.push(c.clone());
            }
            match (g.asn, &g.as_org) {
                (Some(n), Some(org)) => geo.push(format!("AS{n} {org}")),
                (Some(n), None) => geo.push(format!("AS{n}")),
                _ => {}
            }
            if !geo.is_empty() {
                parts.push(format!("from {}", geo.join(", ")));
            }
        }
        out.label = parts.join(", ");
        out
    }

    /// What the user-agent list says of one user agent, if anything.
    /// Whether `event` alone raises its incident's severity, as
    /// [`IncidentContext::raise`] would: an attacker tool or distribution in
    /// its user agent, or bait hidden from its agent.
    pub fn raises_severity(&self, event: &crate::incident::TokenEvent) -> bool {
        HIDING_EVENTS.contains(&event.event_name.as_str())
            || event
                .user_agent
                .as_deref()
                .and_then(|ua| self.agent(ua))
                .is_some_and(|a| a.tool.is_some() || a.distribution.is_some())
    }

    pub fn agent(&self, user_agent: &str) -> Option<AgentContext> {
        let lower = user_agent.to_lowercase();
        let hit = |kind: ToolKind| {
            self.tools.iter().find(|r| r.kind == kind && r.needles.iter().any(|n| lower.contains(n.as_str())))
        };
        let tool = hit(ToolKind::Tool);
        let distribution = hit(ToolKind::Distribution);
        let label = match (tool, distribution) {
            (None, None) => return None,
            (Some(t), None) => t.name.clone(),
            (Some(t), Some(d)) => format!("{} on {}", t.name, d.name),
            (None, Some(d)) => match client_of(user_agent) {
                Some(client) => format!("{client} on {}", d.name),
                None => format!("a client on {}", d.name),
            },
        };
        Some(AgentContext {
            user_agent: user_agent.to_string(),
            label,
            tool: tool.map(|t| t.name.clone()),
            distribution: distribution.map(|d| d.name.clone()),
            sources: tool.into_iter().chain(distribution).map(|r| r.source.clone()).collect(),
        })
    }

    /// The context of an incident with this activity.
    pub fn incident(&self, activity: &Activity) -> IncidentContext {
        let mut data = self.data();
        data.extend(self.left_out.iter().map(|why| format!("left out: {why}")));
        let mut ctx = IncidentContext { data, ..Default::default() };
        let mut summary: Vec<(u8, String)> = Vec::new();
        // Addresses seen through an endpoint of an account not listed: the
        // caller picks them, so no rule on source addresses may count them.
        let mut untrusted = BTreeSet::new();
        let mut via: Vec<String> = Vec::new();
        for u in &activity.endpoints {
            let listed = u.account.as_ref().is_some_and(|a| self.endpoint_accounts.contains(a));
            let owner = match &u.account {
                Some(a) if listed => format!("listed account {a}"),
                Some(a) => format!("account {a}, not listed in enrich.vpc_endpoint_accounts"),
                None => "an account CloudTrail does not name".to_string(),
            };
            let address = u.address.as_deref().unwrap_or("no address");
            via.push(format!("{address} through VPC endpoint {} ({owner})", u.endpoint));
            if !listed {
                untrusted.extend(u.address.clone());
            }
        }
        if !via.is_empty() {
            let verdict = if untrusted.is_empty() {
                "trusted: the endpoints belong to listed accounts"
            } else {
                "not trusted by any rule on source addresses (own networks, AWS, Tor, country, ASN): the caller chooses them"
            };
            summary.push((0, format!("calls through VPC endpoints, {verdict}: {}", via.join("; "))));
        }
        ctx.untrusted_sources = untrusted.iter().cloned().collect();
        let mut networks = BTreeSet::new();
        let mut aws = BTreeSet::new();
        let mut countries = BTreeSet::new();
        let mut asns = BTreeSet::new();
        let mut own = 0;
        for raw in activity.source_ips.iter().filter(|a| !untrusted.contains(*a)) {
            let s = self.source(raw);
            if let Some(n) = &s.network {
                own += 1;
                networks.insert(n.clone());
            }
            if let Some(a) = &s.aws {
                aws.insert(format!("{} {}", a.service, a.region));
            }
            if let Some(g) = &s.geo {
                countries.extend(g.country.clone());
                asns.extend(g.asn);
            }
            ctx.tor |= s.tor;
            if !s.label.is_empty() {
                ctx.sources.push(s);
            }
        }
        // Every call from our networks: every distinct address is listed
        // (none cut off), each is in one, and none came through an endpoint
        // not trusted (its address proves nothing).
        let all_listed = activity.distinct.source_ips <= activity.source_ips.len();
        ctx.own_network_only = own > 0 && own == activity.source_ips.len() && all_listed && untrusted.is_empty();
        if own > 0 && !untrusted.is_empty() {
            summary.push((
                0,
                "not every call is known to come from our own networks: some addresses came through a VPC endpoint not trusted, so automatic response is not held back".into(),
            ));
        }
        if activity.apis.iter().any(|a| HIDING_EVENTS.contains(&a.as_str())) {
            ctx.bait_hidden = true;
            summary.push((
                0,
                "the bait was replaced by something its agent will not read, or a planted link kept it out: someone hid a change (severity raised)".into(),
            ));
        }
        let mut tools = BTreeSet::new();
        for ua in &activity.user_agents {
            if let Some(a) = self.agent(ua) {
                tools.extend(a.tool.clone());
                tools.extend(a.distribution.clone());
                ctx.agents.push(a);
            }
        }
        // Most telling first: Tor, tools, AWS, geography, then our own.
        for s in &ctx.sources {
            let rank = if s.tor {
                0
            } else if s.aws.is_some() {
                2
            } else if s.network.is_some() {
                4
            } else {
                3
            };
            summary.push((rank, format!("{}: {}", s.label, s.address)));
        }
        let mut labels = BTreeSet::new();
        for a in &ctx.agents {
            if labels.insert(a.label.clone()) {
                summary.push((1, a.label.clone()));
            }
        }
        if ctx.own_network_only {
            summary.push((5, "every call came from our own networks: likely one of us".into()));
        }
        summary.sort_by_key(|(rank, _)| *rank);
        ctx.summary = summary.into_iter().map(|(_, s)| s).take(20).collect();
        ctx.networks = networks.into_iter().collect();
        ctx.aws = aws.into_iter().collect();
        ctx.countries = countries.into_iter().collect();
        ctx.asns = asns.into_iter().collect();
        ctx.tools = tools.into_iter().collect();
        ctx
    }
}

/// A loaded data set, without its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnrichmentInfo {
    /// `aws-ranges` or `tor-exits`.
    pub kind: String,
    /// The date the data says it was published, if it says.
    pub published: Option<String>,
    /// Blocks or addresses in it.
    pub entries: i64,
    pub loaded_at: DateTime<Utc>,
    pub loaded_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::ActivityCounts;

    const RANGES: &str = r#"{
      "syncToken": "1714686193",
      "createDate": "2024-05-02-21-43-13",
      "prefixes": [
        {"ip_prefix": "3.248.0.0/13", "region": "eu-west-1", "service": "AMAZON", "network_border_group": "eu-west-1"},
        {"ip_prefix": "3.248.0.0/13", "region": "eu-west-1", "service": "EC2", "network_border_group": "eu-west-1"},
        {"ip_prefix": "3.0.0.0/9", "region": "GLOBAL", "service": "AMAZON", "network_border_group": "GLOBAL"},
        {"ip_prefix": "not a block", "region": "x", "service": "y", "network_border_group": "z"}
      ],
      "ipv6_prefixes": [
        {"ipv6_prefix": "2a05:d018::/35", "region": "eu-west-1", "service": "EC2", "network_border_group": "eu-west-1"}
      ]
    }"#;

    fn activity(ips: &[&str], agents: &[&str]) -> Activity {
        Activity {
            source_ips: ips.iter().map(|s| s.to_string()).collect(),
            user_agents: agents.iter().map(|s| s.to_string()).collect(),
            distinct: ActivityCounts { source_ips: ips.len(), user_agents: agents.len(), ..Default::default() },
            ..Default::default()
        }
    }

    fn enricher() -> Enricher {
        let mut e = Enricher::with_builtin_tools();
        e.networks =
            OwnNetworks::parse(&[("corp".into(), vec!["198.51.100.0/24"]), ("vpn".into(), vec!["2001:db8::/32"])])
                .unwrap();
        e.aws = Some(Arc::new(AwsRanges::parse(RANGES).unwrap().0));
        e.tor = Some(Arc::new(
            TorExits::parse(
                "ExitNode ABC\nPublished 2024-05-01 10:00:00\nExitAddress 185.220.101.4 2024-05-01 11:00:00\n",
            )
            .unwrap(),
        ));
        e
    }

    #[test]
    fn aws_ranges_give_the_most_specific_service_and_count_bad_blocks() {
        let (r, skipped) = AwsRanges::parse(RANGES).unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(r.published, "2024-05-02-21-43-13");
        let hit = r.lookup("3.250.1.2".parse().unwrap()).unwrap();
        assert_eq!((hit.service.as_str(), hit.region.as_str()), ("EC2", "eu-west-1"));
        assert_eq!(r.lookup("3.1.2.3".parse().unwrap()).unwrap().region, "GLOBAL", "the wider block");
        assert_eq!(r.lookup("2a05:d018::1".parse().unwrap()).unwrap().service, "EC2");
        assert_eq!(r.lookup("::ffff:3.250.1.2".parse().unwrap()).unwrap().service, "EC2", "mapped IPv4");
        assert!(r.lookup("8.8.8.8".parse().unwrap()).is_none());
        assert!(AwsRanges::parse("{}").unwrap_err().0.contains("ip-ranges.json"));
        assert!(AwsRanges::parse(r#"{"createDate":"x","prefixes":[]}"#).is_err());
    }

    #[test]
    fn tor_lists_in_both_formats() {
        let bulk = TorExits::parse("# list\n185.220.101.4\n2a0b:f4c0::1\nnot-an-ip\n").unwrap();
        assert!(bulk.contains("185.220.101.4".parse().unwrap()));
        assert!(bulk.contains("2a0b:f4c0::1".parse().unwrap()));
        assert_eq!(bulk.len(), 2);
        let full = TorExits::parse(
            "ExitNode A\nExitAddress 192.0.2.9 2024-05-01 11:00:00\nExitAddress 192.0.2.8 2024-05-03 11:00:00\n",
        )
        .unwrap();
        assert_eq!(full.published.as_deref(), Some("2024-05-03"));
        assert!(TorExits::parse("<html>rate limited</html>").is_err());
    }

    #[test]
    fn user_agents_name_the_tool_and_the_distribution() {
        let e = Enricher::with_builtin_tools();
        let kali = e.agent("aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64 exe/x86_64.kali.2024 prompt/off").unwrap();
        assert_eq!(kali.label, "aws-cli on Kali Linux");
        assert_eq!(e.agent("TruffleHog").unwrap().label, "TruffleHog");
        assert_eq!(
            e.agent("Scout Suite/5.12.0 Python/3.9.2 Linux/6.0.0-2parrot1-amd64 Scout Suite/5.12.0").unwrap().label,
            "Scout Suite on Parrot Security"
        );
        assert_eq!(
            e.agent("Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#5.15 APN_1826889").unwrap().tool.as_deref(),
            Some("Prowler")
        );
        assert!(e.agent("aws-cli/2.13.0 Python/3.11.4 Linux/5.10.0-1234-aws exe/x86_64.ubuntu.22").is_none());
        // The client's name is all a label repeats of the user agent, cut to a safe token.
        let hostile = e.agent("<script>alert(1)</script>\u{1b}[31m/1 pentoo").unwrap();
        assert_eq!(hostile.label, "scriptalert1 on Pentoo");
        assert_eq!(e.agent("/// kali").unwrap().label, "a client on Kali Linux");
    }

    #[test]
    fn the_shipped_list_has_a_source_on_every_entry() {
        let tools = parse_tools(BUILTIN_USER_AGENTS).unwrap();
        assert!(tools.len() >= 7);
        assert!(tools.iter().all(|t| !t.source.trim().is_empty()));
        assert!(parse_tools("[[tool]]\nname = \"x\"\nmatch = []\nsource = \"s\"\n").is_err());
        assert!(parse_tools("[[weapon]]\nname = \"x\"\n").is_err());
    }

    #[test]
    fn an_incident_gets_labels_conditions_and_the_own_network_rule() {
        let e = enricher();
        let ours = e.incident(&activity(&["198.51.100.7", "2001:db8::5"], &["aws-cli/2.13.0 Python/3.11.4"]));
        assert!(ours.own_network_only);
        assert_eq!(ours.networks, ["corp", "vpn"]);
        assert!(ours.holds(&Condition::parse("network=corp").unwrap()));
        assert!(ours.holds(&Condition::parse("own-network").unwrap()));
        assert!(!ours.holds(&Condition::parse("tool=*").unwrap()));
        assert_eq!(ours.summary.last().unwrap(), "every call came from our own networks: likely one of us");

        let mixed = e.incident(&activity(
            &["198.51.100.7", "185.220.101.4", "3.250.9.9", "AWS Internal"],
            &["aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-kali1-amd64", "TruffleHog"],
        ));
        assert!(!mixed.own_network_only);
        assert!(mixed.tor);
        assert_eq!(mixed.aws, ["EC2 eu-west-1"]);
        assert_eq!(mixed.tools, ["Kali Linux", "TruffleHog"]);
        assert_eq!(mixed.summary[0], "from a Tor exit: 185.220.101.4");
        assert!(mixed.summary.contains(&"from AWS EC2 in eu-west-1: 3.250.9.9".to_string()));
        assert!(mixed.summary.contains(&"aws-cli on Kali Linux".to_string()));
        assert!(mixed.holds(&Condition::parse("tool=truffle*").unwrap()));
        assert!(mixed.holds(&Condition::parse("aws=eu-west-1").unwrap()));
        assert!(mixed.holds(&Condition::parse("AWS=ec2").unwrap()));
        assert!(!mixed.holds(&Condition::parse("network=vpn").unwrap()));
        assert!(conditions_hold(
            &mixed,
            &[Condition::parse("tor").unwrap()],
            &[Condition::parse("own-network").unwrap()]
        ));
        assert_eq!(mixed.raise(Severity::High), Severity::Critical);
        assert_eq!(ours.raise(Severity::High), Severity::High);

        // One address cut off the activity list: not provably all ours.
        let mut cut = activity(&["198.51.100.7"], &[]);
        cut.distinct.source_ips = 2;
        assert!(!e.incident(&cut).own_network_only);
        assert!(!e.incident(&activity(&[], &[])).own_network_only, "no address is not our network");
    }

    #[test]
    fn conditions_parse_and_print() {
        for raw in ["network=corp", "tool=*", "tor", "aws=EC2", "country=DE", "asn=3320", "own-network"] {
            assert_eq!(Condition::parse(raw).unwrap().to_string(), raw);
        }
        assert_eq!(Condition::parse("tool").unwrap().to_string(), "tool=*");
        for bad in ["colour=red", "tor=yes", "network=", "network=a\u{7}b"] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
        assert!(OwnNetworks::parse(&[("co rp".into(), vec!["10.0.0.0/8"])]).is_err());
        assert!(OwnNetworks::parse(&[("corp".into(), vec!["10.0.0.1/8"])]).unwrap_err().0.contains("corp"));
    }
}

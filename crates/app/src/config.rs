//! Configuration: a TOML file, overridden by environment variables, then by
//! command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The commented default written by `honeytrail init`.
pub const DEFAULT_CONFIG: &str = r#"# honeytrail configuration.
#
# Every setting can also be set by an environment variable (shown beside it)
# or a command-line flag; flags win over the environment, which wins over
# this file.

# Where honeytrail keeps its SQLite database and data key.   HONEYTRAIL_DATA_DIR
# data_dir = "/var/lib/honeytrail"

# The database: a SQLite file (the default is <data_dir>/honeytrail.sqlite) or
# PostgreSQL for several replicas.                            HONEYTRAIL_DATABASE
# database = "postgres://honeytrail:PASSWORD@127.0.0.1:5432/honeytrail"

# The data key that seals honey secrets at rest: 32 random bytes, base64.
# Default: <data_dir>/secret.key, created by `honeytrail init`. Replicas on
# PostgreSQL must share one key. The key itself can also come from
# HONEYTRAIL_SECRET_KEY.                                      HONEYTRAIL_SECRET_KEY_FILE
# secret_key_file = "/etc/honeytrail/secret.key"

[aws]
# The canary account is reached with the standard AWS credential chain
# (environment, profile, instance role). Set a profile to pick one.
# profile = "canary-admin"                                    HONEYTRAIL_AWS_PROFILE
region = "us-east-1"                                        # HONEYTRAIL_AWS_REGION
# Endpoint override, e.g. moto's server for testing.          HONEYTRAIL_AWS_ENDPOINT
# endpoint = "http://127.0.0.1:5000"

[canary]
# What `honeytrail aws bootstrap` creates in the canary account, and `verify`
# checks. Defaults: bucket "cloudtrail-<account>-<region>", trail "account-trail",
# queues "cloudtrail-log-files" (S3 notifications) and "cloudtrail-api-calls"
# (EventBridge), rule "cloudtrail-api-calls".
# bucket = "cloudtrail-123456789012-us-east-1"
# trail = "account-trail"
# notifications_queue = "cloudtrail-log-files"
# events_queue = "cloudtrail-api-calls"
# rule = "cloudtrail-api-calls"

[mint]
# IAM user names for minted keys. Placeholders: {team} {service} {purpose}
# {env} {n}. Names with a tell-tale word (honey, canary, trap, token, decoy,
# bait, fake, …) are always refused.                          HONEYTRAIL_MINT_NAMING_PATTERN
naming_pattern = "{team}-{service}-{purpose}-{env}"
# How the explicit Deny * on * guard is attached: "inline" (a user policy) or
# "group" (membership of group_name, which carries the policy).  HONEYTRAIL_MINT_GUARD
guard = "inline"
policy_name = "baseline"
group_name = "service-accounts"
# Put two keys on each IAM user (IAM's limit) to fit twice as many keys in the
# account's user quota.                                       HONEYTRAIL_MINT_PACK_TWO_KEYS
pack_two_keys = false

[detect]
# Events of one token within this many minutes of an incident's first or last
# event join that incident instead of opening a new one.  HONEYTRAIL_DETECT_WINDOW_MINUTES
window_minutes = 60
# Documents larger than this when decompressed are skipped (and reported).
max_document_mib = 128
# The safety net waits this long for CloudTrail to deliver an event before it
# reports a key use (seen by iam:GetAccessKeyLastUsed) as unlogged. CloudTrail
# delivers log files in about 5 minutes but does not promise it; below 60 a late
# file makes a logged call look unlogged.
safety_net_grace_minutes = 60
# How the safety net learns of key uses: "last-used" asks IAM about each key
# (iam:GetAccessKeyLastUsed, one request per key and pass), "credential-report"
# reads IAM's credential report (one request pair per account and pass for
# every key; AWS remakes it at most every 4 hours). Both by default.
safety_net_methods = ["last-used", "credential-report"]
# `serve` runs the safety net this often, on one replica (job "safety-net");
# 0 leaves it to `honeytrail safety-net` run by a timer.
safety_net_every_minutes = 15

[serve]
# Where `honeytrail serve` listens. Keep it on loopback behind a reverse proxy
# with TLS, or bind a private address.                       HONEYTRAIL_SERVE_LISTEN
listen = "127.0.0.1:8080"
# Serve HTTPS itself: the certificate chain (the server's first) and its key,
# PEM. A renewed pair is picked up within seconds, without a restart.
#                                       HONEYTRAIL_SERVE_TLS_CERT, HONEYTRAIL_SERVE_TLS_KEY
# tls_cert = "/etc/honeytrail/tls/fullchain.pem"
# tls_key = "/etc/honeytrail/tls/privkey.pem"
# Shared secret EventBridge API destinations send in the x-honeytrail-secret
# header (an API-key connection), at least 32 characters (`openssl rand -hex
# 32`). Unset: the endpoint refuses everything.
#                                                             HONEYTRAIL_EVENTBRIDGE_SECRET
# eventbridge_secret = "…"
# Secret path segment of the canarytokens.org webhook URL
# (/ingest/canarytokens/<secret>), at least 32 characters. Unset: the
# endpoint refuses everything.
#                                                             HONEYTRAIL_CANARYTOKENS_SECRET
# canarytokens_secret = "…"
# The signing secret of the Slack app whose interactivity posts approve-button
# clicks to /ingest/slack/actions (Basic Information → Signing Secret). Unset:
# the endpoint refuses everything. Who may approve: actions.slack_approvers.
#                                                             HONEYTRAIL_SLACK_SIGNING_SECRET
# slack_signing_secret = "…"
# The address people reach the UI at, used for links in alerts (the incident
# page, "was this you?" answers). Default: http://<listen>.  HONEYTRAIL_PUBLIC_URL
# public_url = "https://honeytrail.example.com"
# CloudTrail sources serve reads while it runs: "sqs:QUEUE" (S3 notifications
# or EventBridge events) and "s3:BUCKET/PREFIX" (polled every minute); in an
# account of the pool, through its role: "sqs@NAME:QUEUE", "s3@NAME:BUCKET/PREFIX"
# ("sqs@*:QUEUE": in every account of the pool).
#                                                             HONEYTRAIL_SERVE_WATCH (comma-separated)
# watch = ["sqs:cloudtrail-log-files", "sqs:cloudtrail-api-calls"]
# A reverse proxy that signs people in may pass their name in a header; the
# "what is this?" page then needs no honeytrail login. Only requests from the
# trusted proxy addresses are believed; none is trusted until listed here.
#                                         HONEYTRAIL_SSO_HEADER, HONEYTRAIL_SSO_TRUSTED_PROXIES
# sso_header = "X-Forwarded-User"
# sso_trusted_proxies = ["127.0.0.1"]
# Reverse proxies whose X-Forwarded-For names the client (for sign-in
# throttling and the audit log); from anyone else the header is ignored.
#                                                             HONEYTRAIL_TRUSTED_PROXIES
# trusted_proxies = ["127.0.0.1"]
# /metrics tells whoever reads it whether a key was used: it is served only
# with this bearer token (Authorization: Bearer …), or without one on the
# separate metrics_listen address. Neither set: /metrics is off.
#                                   HONEYTRAIL_METRICS_TOKEN, HONEYTRAIL_METRICS_LISTEN
# metrics_token = "…"
# metrics_listen = "127.0.0.1:9090"
# Connections served at once (one more is answered 503 at once), the time a
# client has to send its request headers, and the time a whole request may
# take: slow clients cannot hold the server.
#   HONEYTRAIL_SERVE_MAX_CONNECTIONS, HONEYTRAIL_SERVE_HEADER_TIMEOUT_SECONDS, HONEYTRAIL_SERVE_REQUEST_TIMEOUT_SECONDS
max_connections = 1024
header_timeout_seconds = 10
request_timeout_seconds = 60

[alerts]
# One delivery attempt may take this long before it counts as failed.
timeout_seconds = 10
# A dispatcher holds a delivery this long; if it dies mid-delivery, another
# (or the restarted one) tries again after it. Keep it above timeout_seconds.
#                                             HONEYTRAIL_ALERTS_LEASE_SECONDS, HONEYTRAIL_ALERTS_TIMEOUT_SECONDS
lease_seconds = 60
# Update alerts of one incident (new calls joined it) go out at most once per
# this many seconds; a burst in between is folded into the next one. Opening,
# state changes and owner answers are never held back.
#                                             HONEYTRAIL_ALERTS_MIN_UPDATE_INTERVAL_SECONDS
min_update_interval_seconds = 60
# When not empty, HTTP alerts (webhook, Slack, Teams, PagerDuty, Jira) go only
# to these hosts: "hooks.slack.com" exactly, ".example.com" any host under it.
# Link-local and cloud metadata addresses are refused in any case.
#                                             HONEYTRAIL_ALERTS_ALLOWED_HOSTS (comma-separated)
allowed_hosts = []
# JSON-lines channels write only inside this directory (never into the data
# directory); files are created 0600.           HONEYTRAIL_ALERTS_JSONL_DIR
jsonl_dir = "/var/log/honeytrail"
# "Was this you?" links sent to placement owners work once, for this many days.
owner_link_days = 14

[render]
# Defaults for bait files: the profile / environment name and region they name.
profile = "prod"
region = "us-east-1"

[fleet]
# Keys minted ahead for enrolling hosts, refilled in the background at most
# one per mint_interval_ms (IAM throttles). 0: mint when a host enrols.
#                                                             HONEYTRAIL_FLEET_POOL_SIZE
pool_size = 0
mint_interval_ms = 200                                      # HONEYTRAIL_FLEET_MINT_INTERVAL_MS
# Agents report every heartbeat_seconds; a host silent for stale_after_seconds
# is stale (alerted, low severity); a key not confirmed within
# confirm_within_seconds of enrolment is retired.
heartbeat_seconds = 300                                     # HONEYTRAIL_FLEET_HEARTBEAT_SECONDS
stale_after_seconds = 10800                                 # HONEYTRAIL_FLEET_STALE_AFTER_SECONDS
confirm_within_seconds = 900                                # HONEYTRAIL_FLEET_CONFIRM_WITHIN_SECONDS
# The placement template of enrolment secrets that name none.
default_template = "server"
# The canary account's IAM user quota (AWS default 5000): warned at 90 %.
iam_user_quota = 5000
# The agent binary /deploy/install.sh downloads from /deploy/agent (checked
# against its SHA-256). Default: honeytrail-agent beside this program.
# agent_binary = "/usr/local/lib/honeytrail/honeytrail-agent"  # HONEYTRAIL_FLEET_AGENT_BINARY
# AWS's RSA certificates for EC2 instance identity documents (one PEM file,
# the regions you use), for enrolment secrets bound to EC2 (--bind ec2).
# ec2_identity_certificates = "/etc/honeytrail/ec2-identity.pem"  # HONEYTRAIL_FLEET_EC2_IDENTITY_CERTIFICATES
# CI canaries (docs/ci.md): a run's expected-activity window closes at the
# run's end, or ci_window_minutes after it opened (at most 1440); the run's
# key stays a tripwire ci_keep_days after that, then is retired (0: never).
ci_window_minutes = 360                                     # HONEYTRAIL_FLEET_CI_WINDOW_MINUTES
ci_keep_days = 30                                           # HONEYTRAIL_FLEET_CI_KEEP_DAYS
# Session canaries (templates with credential = "session", docs/fleet.md):
# the honey role whose sessions are handed out (made in the canary account
# when missing, with a deny-all policy; a role of this name that allows
# anything is refused), how long each session lasts (900 to 43200 seconds),
# and how long before it expires a heartbeat gets a fresh one.
session_role = "app-instance-role"                          # HONEYTRAIL_FLEET_SESSION_ROLE
session_seconds = 21600                                     # HONEYTRAIL_FLEET_SESSION_SECONDS
session_refresh_seconds = 7200                              # HONEYTRAIL_FLEET_SESSION_REFRESH_SECONDS

[evidence]
# A read of a bait file followed by no use of its key within touch_window
# opens a low-severity "bait touched" incident.  HONEYTRAIL_EVIDENCE_TOUCH_WINDOW
touch_window = "1h"
# Programs whose reads are kept but never alert (executable paths, or a
# prefix ending in *), e.g. backup agents, indexers, antivirus.
#                                               HONEYTRAIL_EVIDENCE_QUIET_PROGRAMS
quiet_programs = []
# What one agent may file: read records per hour, and bytes kept in all.
# Beyond either, records are counted (agents list, /metrics), not kept, and
# the flood raises an incident on the host's key. Records naming a path the
# agent never placed are counted, never kept.
#                               HONEYTRAIL_EVIDENCE_AGENT_RECORDS_PER_HOUR
agent_records_per_hour = 2000
#                                           HONEYTRAIL_EVIDENCE_AGENT_BYTES
agent_bytes = 8388608

[enrich]
# Context on every incident, computed offline: the team's own networks
# (below), AWS's IP ranges and a Tor exit list (`honeytrail enrich load
# aws-ranges FILE`, `honeytrail enrich load tor FILE`), a MaxMind-format
# database, and a list of attacker distributions and tools by user agent.
# More user-agent entries, in the shape of the list honeytrail ships
# (crates/core/data/user-agents.toml).          HONEYTRAIL_ENRICH_USER_AGENTS
# user_agents = "/etc/honeytrail/user-agents.toml"
# MaxMind-format databases (GeoLite2 or DB-IP lite: Country or City, and ASN)
# for country and network owner.    HONEYTRAIL_ENRICH_GEOIP (comma-separated)
# geoip = ["/var/lib/GeoIP/GeoLite2-Country.mmdb", "/var/lib/GeoIP/GeoLite2-ASN.mmdb"]
# A call through a VPC endpoint carries a private source address the caller
# may have chosen (to overlap the ranges below, say): no rule on source
# addresses trusts it unless the endpoint belongs to one of these accounts.
#                 HONEYTRAIL_ENRICH_VPC_ENDPOINT_ACCOUNTS (comma-separated)
vpc_endpoint_accounts = []
# Automatic actions skip an incident whose every call came from these.
#                 HONEYTRAIL_ENRICH_NETWORKS ("corp=198.51.100.0/24;vpn=203.0.113.0/25")
[enrich.networks]
# corp = ["198.51.100.0/24"]
# vpn = ["203.0.113.0/25", "2001:db8:1::/48"]

[cluster]
# Replicas: any number of `serve` processes on one PostgreSQL database. The
# periodic jobs (key pool, sweeps, response runner, S3 polling) run on one
# replica at a time, under a lease it renews; a replica that dies loses its
# leases after this many seconds and another takes them.
#                                                   HONEYTRAIL_CLUSTER_LEASE_SECONDS
lease_seconds = 30

[actions]
# Automated response (`honeytrail action add`). At most this many actions
# start in any hour, however many incidents open.  HONEYTRAIL_ACTIONS_PER_HOUR
per_hour = 10
# Webhook actions go where alerts may (alerts.allowed_hosts; never metadata).
# The role honeytrail assumes in each account an action acts in; never the
# canary account's own credentials.  HONEYTRAIL_ACTIONS_ROLES ("acct=arn,acct=arn")
[actions.roles]
# 123456789012 = "arn:aws:iam::123456789012:role/honeytrail-responder"
# Slack users who may approve runs from a Slack message's Approve button, by
# their Slack member ID, each as the honeytrail user they act as (who must
# hold the responder or admin role).  HONEYTRAIL_ACTIONS_SLACK_APPROVERS ("U024BE7LH=maria,…")
[actions.slack_approvers]
# U024BE7LH = "maria"
"#;

#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    pub aws: AwsSection,
    pub canary: CanarySection,
    pub mint: MintSection,
    pub render: RenderSection,
    pub detect: DetectSection,
    pub serve: ServeSection,
    pub alerts: AlertsSection,
    pub fleet: FleetSection,
    pub evidence: EvidenceSection,
    pub enrich: EnrichSection,
    pub actions: ActionsSection,
    pub cluster: ClusterSection,
    /// Where the configuration was read from, if a file was.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// The data key given directly through the environment.
    #[serde(skip)]
    pub secret_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AwsSection {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CanarySection {
    pub bucket: Option<String>,
    pub trail: Option<String>,
    pub notifications_queue: Option<String>,
    pub events_queue: Option<String>,
    pub rule: Option<String>,
    /// The regions to put rules in; default: every enabled region (asked
    /// of `ec2:DescribeRegions`). The home region and us-east-1 are always
    /// added.
    pub regions: Option<Vec<String>>,
    /// The role the other regions' rules forward with; default `<rule>-forwarder`.
    pub forwarder_role: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MintSection {
    pub naming_pattern: String,
    pub guard: Guard,
    pub policy_name: String,
    pub group_name: String,
    /// The deny-all managed policy every honey user is created with as its
    /// permissions boundary.
    pub boundary_name: String,
    pub pack_two_keys: bool,
}

impl Default for MintSection {
    fn default() -> Self {
        MintSection {
            naming_pattern: honeytrail_core::naming::DEFAULT_PATTERN.into(),
            guard: Guard::Inline,
            policy_name: "baseline".into(),
            group_name: "service-accounts".into(),
            boundary_name: "baseline-boundary".into(),
            pack_two_keys: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Guard {
    Inline,
    Group,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RenderSection {
    pub profile: String,
    pub region: String,
}

impl Default for RenderSection {
    fn default() -> Self {
        RenderSection { profile: "prod".into(), region: "us-east-1".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsSection {
    pub timeout_seconds: u64,
    pub lease_seconds: u64,
    pub min_update_interval_seconds: u64,
    pub allowed_hosts: Vec<String>,
    pub owner_link_days: u32,
    pub jsonl_dir: PathBuf,
}

impl Default for AlertsSection {
    fn default() -> Self {
        AlertsSection {
            timeout_seconds: 10,
            lease_seconds: 60,
            min_update_interval_seconds: 60,
            allowed_hosts: Vec::new(),
            owner_link_days: 14,
            jsonl_dir: PathBuf::from(honeytrail_alert::channels::jsonl::DEFAULT_DIR),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSection {
    pub listen: String,
    pub eventbridge_secret: Option<String>,
    pub canarytokens_secret: Option<String>,
    pub slack_signing_secret: Option<String>,
    pub public_url: Option<String>,
    pub watch: Vec<String>,
    pub sso_header: Option<String>,
    pub sso_trusted_proxies: Vec<String>,
    pub trusted_proxies: Vec<String>,
    pub metrics_token: Option<String>,
    pub metrics_listen: Option<String>,
    pub max_connections: usize,
    pub header_timeout_seconds: u64,
    pub request_timeout_seconds: u64,
    /// The certificate chain and key `serve` speaks HTTPS with (PEM).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for ServeSection {
    fn default() -> Self {
        ServeSection {
            listen: "127.0.0.1:8080".into(),
            eventbridge_secret: None,
            canarytokens_secret: None,
            slack_signing_secret: None,
            public_url: None,
            watch: Vec::new(),
            sso_header: None,
            sso_trusted_proxies: Vec::new(),
            trusted_proxies: Vec::new(),
            metrics_token: None,
            metrics_listen: None,
            max_connections: 1024,
            header_timeout_seconds: 10,
            request_timeout_seconds: 60,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The least length of the receivers' shared secrets.
pub const MIN_SECRET_CHARS: usize = 32;

impl ServeSection {
    /// Checks what `serve` needs before it starts: secrets long enough not to
    /// be guessed (the receivers are open to the internet).
    pub fn check(&self) -> Result<()> {
        for (name, var, value) in [
            ("eventbridge_secret", "HONEYTRAIL_EVENTBRIDGE_SECRET", &self.eventbridge_secret),
            ("canarytokens_secret", "HONEYTRAIL_CANARYTOKENS_SECRET", &self.canarytokens_secret),
            ("slack_signing_secret", "HONEYTRAIL_SLACK_SIGNING_SECRET", &self.slack_signing_secret),
            ("metrics_token", "HONEYTRAIL_METRICS_TOKEN", &self.metrics_token),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                let n = v.chars().count();
                if n < MIN_SECRET_CHARS {
                    anyhow::bail!(
                        "serve.{name} ({var}) is {n} characters long; it must be at least {MIN_SECRET_CHARS}: make one with `openssl rand -hex 32`"
                    );
                }
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => anyhow::bail!(
                "serve.tls_cert is set but serve.tls_key is not (HONEYTRAIL_SERVE_TLS_KEY): HTTPS needs the certificate's private key too"
            ),
            (None, Some(_)) => anyhow::bail!(
                "serve.tls_key is set but serve.tls_cert is not (HONEYTRAIL_SERVE_TLS_CERT): HTTPS needs the certificate chain too"
            ),
            _ => {}
        }
        Ok(())
    }

    /// Whether `serve` speaks HTTPS itself.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Where people reach the server, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if self.tls() => format!("https://{}", self.listen),
            None => format!("http://{}", self.listen),
        }
    }
}

/// Neither the data key nor a database password ever reaches a log line.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("database", &self.database.as_deref().map(honeytrail_store::redact_url))
            .field("secret_key_file", &self.secret_key_file)
            .field("aws", &self.aws)
            .field("canary", &self.canary)
            .field("mint", &self.mint)
            .field("render", &self.render)
            .field("detect", &self.detect)
            .field("serve", &self.serve)
            .field("alerts", &self.alerts)
            .field("source", &self.source)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl std::fmt::Debug for ServeSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeSection")
            .field("listen", &self.listen)
            .field("eventbridge_secret", &self.eventbridge_secret.as_ref().map(|_| "***"))
            .field("canarytokens_secret", &self.canarytokens_secret.as_ref().map(|_| "***"))
            .field("slack_signing_secret", &self.slack_signing_secret.as_ref().map(|_| "***"))
            .field("public_url", &self.public_url)
            .field("watch", &self.watch)
            .field("sso_header", &self.sso_header)
            .field("sso_trusted_proxies", &self.sso_trusted_proxies)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("metrics_listen", &self.metrics_listen)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSection {
    pub window_minutes: u32,
    pub max_document_mib: u64,
    pub safety_net_grace_minutes: u32,
    pub safety_net_methods: Vec<SafetyNetMethod>,
    pub safety_net_every_minutes: u32,
}

impl Default for DetectSection {
    fn default() -> Self {
        DetectSection {
            window_minutes: 60,
            max_document_mib: 128,
            safety_net_grace_minutes: 60,
            safety_net_methods: vec![SafetyNetMethod::LastUsed, SafetyNetMethod::CredentialReport],
            safety_net_every_minutes: 15,
        }
    }
}

/// Where the safety net learns of a key's last use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum SafetyNetMethod {
    /// `iam:GetAccessKeyLastUsed`, one request per key.
    LastUsed,
    /// IAM's credential report, one request pair per account for every key.
    CredentialReport,
}

/// Replicas on one database and the leases of their periodic jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// How long a job's lease lasts unless its holder renews it: how soon
    /// another replica takes a dead one's jobs.
    pub lease_seconds: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection { lease_seconds: 30 }
    }
}

/// Enrolled hosts: the key pool, heartbeats, and how long before silence
/// or an unconfirmed enrolment counts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetSection {
    /// Keys kept minted ahead for enrolling hosts (0: mint on demand).
    pub pool_size: u32,
    /// The fewest milliseconds between two mints when refilling the pool,
    /// to stay below IAM's rate limits.
    pub mint_interval_ms: u64,
    /// How often agents send a heartbeat.
    pub heartbeat_seconds: u64,
    /// A host silent for longer than this is stale.
    pub stale_after_seconds: u64,
    /// A key handed out and not confirmed within this is retired.
    pub confirm_within_seconds: u64,
    /// The placement template of enrolments that name none.
    pub default_template: String,
    /// IAM's user quota of the canary account; a warning comes when the
    /// honey users reach 90 % of it.
    pub iam_user_quota: u32,
    /// The agent binary served at `/deploy/agent` to `/deploy/install.sh`
    /// (default: `honeytrail-agent` beside this program).
    pub agent_binary: Option<PathBuf>,
    /// AWS's certificates for EC2 instance identity documents (PEM), which
    /// enrolments bound to EC2 are checked against.
    pub ec2_identity_certificates: Option<PathBuf>,
    /// How long a CI run's expected-activity window stays open when the run
    /// never closes it (and the most a run may ask for), in minutes.
    pub ci_window_minutes: u32,
    /// Days a CI run's key stays a tripwire after its window ends; then it
    /// is retired (0: never).
    pub ci_keep_days: u32,
    /// The honey role whose sessions session canaries hold.
    pub session_role: String,
    /// How long a session canary's credentials last (900 to 43 200).
    pub session_seconds: u64,
    /// A heartbeat less than this before the session expires gets a fresh one.
    pub session_refresh_seconds: u64,
}

impl FleetSection {
    /// Checks the session canary settings: the role name, and a refresh
    /// window inside the session that at least two heartbeats fall in.
    pub fn check(&self) -> Result<()> {
        honeytrail_core::decoy::DecoyKind::IamRole
            .check_name(&self.session_role)
            .map_err(|e| anyhow::anyhow!("fleet.session_role (HONEYTRAIL_FLEET_SESSION_ROLE): {e}"))?;
        let max = u64::try_from(honeytrail_aws::MAX_SESSION_SECONDS).unwrap_or(43_200);
        if !(900..=max).contains(&self.session_seconds) {
            anyhow::bail!("fleet.session_seconds is {}; STS sessions last 900 to {max} seconds", self.session_seconds);
        }
        if self.session_refresh_seconds >= self.session_seconds
            || self.session_refresh_seconds < 2 * self.heartbeat_seconds
        {
            anyhow::bail!(
                "fleet.session_refresh_seconds is {}; it must be shorter than fleet.session_seconds ({}) and at least \
                 two heartbeats ({} seconds), so a host gets its fresh session before the old one expires",
                self.session_refresh_seconds,
                self.session_seconds,
                2 * self.heartbeat_seconds
            );
        }
        Ok(())
    }
}

impl Default for FleetSection {
    fn default() -> Self {
        FleetSection {
            pool_size: 0,
            mint_interval_ms: 200,
            heartbeat_seconds: 300,
            stale_after_seconds: 3 * 3600,
            confirm_within_seconds: 900,
            default_template: "server".into(),
            iam_user_quota: 5000,
            agent_binary: None,
            ec2_identity_certificates: None,
            ci_window_minutes: 360,
            ci_keep_days: 30,
            session_role: "app-instance-role".into(),
            session_seconds: 21_600,
            session_refresh_seconds: 7_200,
        }
    }
}

/// Reads of bait files reported by hosts and audit logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceSection {
    /// A read followed by no use of the key within this (`90s`, `30m`, `1h`, `2d`)
    /// opens a low-severity bait-touched incident.
    pub touch_window: String,
    /// Programs whose reads are recorded but never alert (backup agents,
    /// indexers, antivirus): executable paths, or a prefix ending in `*`.
    pub quiet_programs: Vec<String>,
    /// At most this many read records are kept from one agent in any hour;
    /// the rest are counted, not kept, and the flood raises an incident.
    pub agent_records_per_hour: u32,
    /// At most this many bytes of read records are kept from one agent.
    pub agent_bytes: u64,
}

/// `[actions]`: automated response.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsSection {
    /// At most this many actions start in any hour, across every incident.
    pub per_hour: u32,
    /// The role to assume in each account actions run in: account ID →
    /// role ARN. An action's own `--role-arn` comes first.
    pub roles: std::collections::BTreeMap<String, String>,
    /// Slack member ID → the honeytrail user an approve-button click acts as.
    pub slack_approvers: std::collections::BTreeMap<String, String>,
}

impl Default for ActionsSection {
    fn default() -> Self {
        ActionsSection { per_hour: 10, roles: Default::default(), slack_approvers: Default::default() }
    }
}

impl ActionsSection {
    /// Reads `key=value,key=value` (`HONEYTRAIL_ACTIONS_ROLES`,
    /// `HONEYTRAIL_ACTIONS_SLACK_APPROVERS`); `example` shows one pair.
    fn pairs_from_env(var: &str, raw: &str, example: &str) -> Result<std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) =
                part.split_once('=').ok_or_else(|| anyhow::anyhow!("{var}: {part:?} is not a pair like {example}"))?;
            out.insert(key.trim().to_string(), value.trim().to_string());
        }
        Ok(out)
    }

    /// Every configured role, checked: the key is the account its ARN names.
    pub fn check(&self) -> Result<()> {
        for (account, arn) in &self.roles {
            let (_, in_arn) =
                honeytrail_core::action::check_role_arn(arn).map_err(|e| anyhow::anyhow!("actions.roles: {e}"))?;
            if &in_arn != account {
                anyhow::bail!("actions.roles: {account} maps to {arn}, a role in account {in_arn}; the key is the account the role is in");
            }
        }
        for (member, user) in &self.slack_approvers {
            let id_like = member.len() <= 32 && member.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if !id_like || !member.starts_with(['U', 'W']) {
                anyhow::bail!("actions.slack_approvers: {member:?} is not a Slack member ID (like U024BE7LH: a member's profile → ⋮ → Copy member ID)");
            }
            honeytrail_core::access::check_user_name(user)
                .map_err(|e| anyhow::anyhow!("actions.slack_approvers: {member} maps to {user:?}: {e}"))?;
        }
        if self.per_hour == 0 {
            anyhow::bail!("actions.per_hour is 0: no action could ever run; set it to at least 1, or turn actions off with --mode off");
        }
        Ok(())
    }
}

/// `[enrich]`: what incident context is computed from.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichSection {
    /// Own networks by name: `corp = ["198.51.100.0/24"]`.
    pub networks: std::collections::BTreeMap<String, Vec<String>>,
    /// A user-agent list added to the shipped one.
    pub user_agents: Option<PathBuf>,
    /// MaxMind-format databases.
    pub geoip: Vec<PathBuf>,
    /// Accounts whose VPC endpoints are trusted: a source address seen
    /// through any other endpoint counts for no rule on source addresses.
    pub vpc_endpoint_accounts: Vec<String>,
}

impl EnrichSection {
    /// The trusted endpoint accounts, checked: twelve digits each.
    pub fn endpoint_accounts(&self) -> Result<Vec<String>> {
        for a in &self.vpc_endpoint_accounts {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                anyhow::bail!(
                    "enrich.vpc_endpoint_accounts: {:?} is not an AWS account ID (twelve digits, e.g. 111122223333)",
                    honeytrail_core::encoding::printable(a)
                );
            }
        }
        Ok(self.vpc_endpoint_accounts.clone())
    }

    /// The own networks, checked.
    pub fn own_networks(&self) -> Result<honeytrail_core::enrich::OwnNetworks> {
        let named: Vec<(String, Vec<String>)> = self.networks.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        honeytrail_core::enrich::OwnNetworks::parse(&named).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Reads `HONEYTRAIL_ENRICH_NETWORKS`: `name=block,block;name=block`.
    fn networks_from_env(raw: &str) -> Result<std::collections::BTreeMap<String, Vec<String>>> {
        let mut out = std::collections::BTreeMap::new();
        for part in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, blocks) = part.split_once('=').ok_or_else(|| {
                anyhow::anyhow!(
                    "HONEYTRAIL_ENRICH_NETWORKS: {part:?} is not name=block,block (e.g. corp=198.51.100.0/24)"
                )
            })?;
            out.insert(name.trim().to_string(), blocks.split(',').map(|b| b.trim().to_string()).collect());
        }
        Ok(out)
    }
}

impl Default for EvidenceSection {
    fn default() -> Self {
        EvidenceSection {
            touch_window: "1h".into(),
            quiet_programs: Vec::new(),
            agent_records_per_hour: 2_000,
            agent_bytes: 8 << 20,
        }
    }
}

impl EvidenceSection {
    /// `touch_window` as a duration.
    pub fn window(&self) -> Result<chrono::Duration> {
        let raw = self.touch_window.trim();
        if let Some(n) = raw.strip_suffix('s').and_then(|n| n.parse::<i64>().ok()).filter(|n| *n > 0) {
            return Ok(chrono::Duration::seconds(n));
        }
        crate::ops::fleet::parse_lifetime(raw)
            .map_err(|e| anyhow::anyhow!("evidence.touch_window (HONEYTRAIL_EVIDENCE_TOUCH_WINDOW): {}", e.message))
    }

    /// Whether `exe` is on `quiet_programs`.
    pub fn quiet(&self, exe: &str) -> bool {
        self.quiet_programs.iter().any(|q| match q.strip_suffix('*') {
            Some(prefix) => exe.starts_with(prefix),
            None => exe == q,
        })
    }
}

/// Values from command-line flags, which win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub aws_endpoint: Option<String>,
    pub aws_region: Option<String>,
    pub aws_profile: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `$XDG_DATA_HOME/honeytrail`, else `~/.local/share/honeytrail`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = env("XDG_DATA_HOME") {
        return PathBuf::from(x).join("honeytrail");
    }
    match env("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/honeytrail"),
        None => PathBuf::from("honeytrail-data"),
    }
}

impl Config {
    /// Loads the configuration: file, then environment, then flags.
    pub fn load(flags: &Overrides) -> Result<Config> {
        let early_data_dir = flags.data_dir.clone().or_else(|| env("HONEYTRAIL_DATA_DIR").map(PathBuf::from));
        let explicit = flags.config.clone().or_else(|| env("HONEYTRAIL_CONFIG").map(PathBuf::from));
        let path = match explicit {
            Some(p) => {
                if !p.exists() {
                    bail!("configuration file {} does not exist; create one with `honeytrail init` or fix --config / HONEYTRAIL_CONFIG", p.display());
                }
                Some(p)
            }
            None => {
                let candidate = early_data_dir.clone().unwrap_or_else(default_data_dir).join("honeytrail.toml");
                candidate.exists().then_some(candidate)
            }
        };
        let mut config = match &path {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        config.source = path;
        config.apply_env()?;
        config.apply_flags(flags);
        config.evidence.window()?;
        config.enrich.own_networks()?;
        config.enrich.endpoint_accounts()?;
        if config.data_dir.is_none() {
            config.data_dir = Some(default_data_dir());
        }
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("configuration file {} is not valid", path.display()))
    }

    fn apply_env(&mut self) -> Result<()> {
        macro_rules! set {
            ($name:literal, $field:expr) => {
                if let Some(v) = env($name) {
                    $field = v.into();
                }
            };
        }
        if let Some(v) = env("HONEYTRAIL_DATA_DIR") {
            self.data_dir = Some(v.into());
        }
        if let Some(v) = env("HONEYTRAIL_DATABASE") {
            self.database = Some(v);
        }
        if let Some(v) = env("HONEYTRAIL_SECRET_KEY_FILE") {
            self.secret_key_file = Some(v.into());
        }
        self.secret_key = env("HONEYTRAIL_SECRET_KEY");
        if let Some(v) = env("HONEYTRAIL_AWS_ENDPOINT") {
            self.aws.endpoint = Some(v);
        }
        if let Some(v) = env("HONEYTRAIL_AWS_REGION") {
            self.aws.region = Some(v);
        }
        if let Some(v) = env("HONEYTRAIL_AWS_PROFILE") {
            self.aws.profile = Some(v);
        }
        set!("HONEYTRAIL_MINT_NAMING_PATTERN", self.mint.naming_pattern);
        for (name, field) in [
            ("HONEYTRAIL_ALERTS_LEASE_SECONDS", &mut self.alerts.lease_seconds),
            ("HONEYTRAIL_ALERTS_TIMEOUT_SECONDS", &mut self.alerts.timeout_seconds),
            ("HONEYTRAIL_ALERTS_MIN_UPDATE_INTERVAL_SECONDS", &mut self.alerts.min_update_interval_seconds),
            ("HONEYTRAIL_SERVE_HEADER_TIMEOUT_SECONDS", &mut self.serve.header_timeout_seconds),
            ("HONEYTRAIL_SERVE_REQUEST_TIMEOUT_SECONDS", &mut self.serve.request_timeout_seconds),
            ("HONEYTRAIL_FLEET_HEARTBEAT_SECONDS", &mut self.fleet.heartbeat_seconds),
            ("HONEYTRAIL_FLEET_STALE_AFTER_SECONDS", &mut self.fleet.stale_after_seconds),
            ("HONEYTRAIL_FLEET_CONFIRM_WITHIN_SECONDS", &mut self.fleet.confirm_within_seconds),
            ("HONEYTRAIL_FLEET_MINT_INTERVAL_MS", &mut self.fleet.mint_interval_ms),
            ("HONEYTRAIL_FLEET_SESSION_SECONDS", &mut self.fleet.session_seconds),
            ("HONEYTRAIL_FLEET_SESSION_REFRESH_SECONDS", &mut self.fleet.session_refresh_seconds),
            ("HONEYTRAIL_CLUSTER_LEASE_SECONDS", &mut self.cluster.lease_seconds),
        ] {
            if let Some(v) = env(name) {
                *field = v.parse().map_err(|_| anyhow::anyhow!("{name} is {v:?}; give a whole number of seconds"))?;
            }
        }
        for (name, field) in [
            ("HONEYTRAIL_FLEET_CI_WINDOW_MINUTES", &mut self.fleet.ci_window_minutes),
            ("HONEYTRAIL_FLEET_CI_KEEP_DAYS", &mut self.fleet.ci_keep_days),
        ] {
            if let Some(v) = env(name) {
                *field = v.trim().parse().map_err(|_| anyhow::anyhow!("{name} is {v:?}; give a whole number"))?;
            }
        }
        if let Some(v) = env("HONEYTRAIL_FLEET_POOL_SIZE") {
            self.fleet.pool_size =
                v.parse().map_err(|_| anyhow::anyhow!("HONEYTRAIL_FLEET_POOL_SIZE is {v:?}; give a whole number"))?;
        }
        if let Some(v) = env("HONEYTRAIL_ALERTS_ALLOWED_HOSTS") {
            self.alerts.allowed_hosts = v.split(',').map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect();
        }
        if let Some(v) = env("HONEYTRAIL_EVIDENCE_TOUCH_WINDOW") {
            self.evidence.touch_window = v;
        }
        if let Some(v) = env("HONEYTRAIL_EVIDENCE_AGENT_RECORDS_PER_HOUR") {
            self.evidence.agent_records_per_hour = v.trim().parse().map_err(|_| {
                anyhow::anyhow!("HONEYTRAIL_EVIDENCE_AGENT_RECORDS_PER_HOUR {v:?} is not a whole number")
            })?;
        }
        if let Some(v) = env("HONEYTRAIL_EVIDENCE_AGENT_BYTES") {
            self.evidence.agent_bytes = v
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("HONEYTRAIL_EVIDENCE_AGENT_BYTES {v:?} is not a whole number of bytes"))?;
        }
        if let Some(v) = env("HONEYTRAIL_EVIDENCE_QUIET_PROGRAMS") {
            self.evidence.quiet_programs =
                v.split(',').map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect();
        }
        if let Some(v) = env("HONEYTRAIL_ACTIONS_ROLES") {
            self.actions.roles = ActionsSection::pairs_from_env(
                "HONEYTRAIL_ACTIONS_ROLES",
                &v,
                "123456789012=arn:aws:iam::123456789012:role/honeytrail-responder",
            )?;
        }
        if let Some(v) = env("HONEYTRAIL_ACTIONS_SLACK_APPROVERS") {
            self.actions.slack_approvers =
                ActionsSection::pairs_from_env("HONEYTRAIL_ACTIONS_SLACK_APPROVERS", &v, "U024BE7LH=maria")?;
        }
        if let Some(v) = env("HONEYTRAIL_ACTIONS_PER_HOUR") {
            self.actions.per_hour =
                v.trim().parse().map_err(|_| anyhow::anyhow!("HONEYTRAIL_ACTIONS_PER_HOUR {v:?} is not a number"))?;
        }
        if let Some(v) = env("HONEYTRAIL_ENRICH_NETWORKS") {
            self.enrich.networks = EnrichSection::networks_from_env(&v)?;
        }
        if let Some(v) = env("HONEYTRAIL_ENRICH_USER_AGENTS") {
            self.enrich.user_agents = Some(PathBuf::from(v));
        }
        if let Some(v) = env("HONEYTRAIL_ENRICH_VPC_ENDPOINT_ACCOUNTS") {
            self.enrich.vpc_endpoint_accounts =
                v.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
        }
        if let Some(v) = env("HONEYTRAIL_ENRICH_GEOIP") {
            self.enrich.geoip =
                v.split(',').map(|w| PathBuf::from(w.trim())).filter(|w| !w.as_os_str().is_empty()).collect();
        }
        if let Some(v) = env("HONEYTRAIL_FLEET_AGENT_BINARY") {
            self.fleet.agent_binary = Some(PathBuf::from(v));
        }
        if let Some(v) = env("HONEYTRAIL_FLEET_SESSION_ROLE") {
            self.fleet.session_role = v.trim().to_string();
        }
        if let Some(v) = env("HONEYTRAIL_FLEET_EC2_IDENTITY_CERTIFICATES") {
            self.fleet.ec2_identity_certificates = Some(PathBuf::from(v));
        }
        if let Some(v) = env("HONEYTRAIL_ALERTS_JSONL_DIR") {
            self.alerts.jsonl_dir = PathBuf::from(v);
        }
        if let Some(v) = env("HONEYTRAIL_SERVE_WATCH") {
            self.serve.watch = v.split(',').map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect();
        }
        if let Some(v) = env("HONEYTRAIL_SSO_HEADER") {
            self.serve.sso_header = Some(v);
        }
        let list = |v: String| v.split(',').map(|w| w.trim().to_string()).filter(|w| !w.is_empty()).collect();
        if let Some(v) = env("HONEYTRAIL_SSO_TRUSTED_PROXIES") {
            self.serve.sso_trusted_proxies = list(v);
        }
        if let Some(v) = env("HONEYTRAIL_TRUSTED_PROXIES") {
            self.serve.trusted_proxies = list(v);
        }
        if let Some(v) = env("HONEYTRAIL_METRICS_TOKEN") {
            self.serve.metrics_token = Some(v);
        }
        if let Some(v) = env("HONEYTRAIL_SERVE_MAX_CONNECTIONS") {
            self.serve.max_connections = v
                .parse()
                .map_err(|_| anyhow::anyhow!("HONEYTRAIL_SERVE_MAX_CONNECTIONS is {v:?}; give a whole number"))?;
        }
        if let Some(v) = env("HONEYTRAIL_METRICS_LISTEN") {
            self.serve.metrics_listen = Some(v);
        }
        if let Some(v) = env("HONEYTRAIL_PUBLIC_URL") {
            self.serve.public_url = Some(v);
        }
        if let Some(v) = env("HONEYTRAIL_SERVE_LISTEN") {
            self.serve.listen = v;
        }
        if let Some(v) = env("HONEYTRAIL_SERVE_TLS_CERT") {
            self.serve.tls_cert = Some(PathBuf::from(v));
        }
        if let Some(v) = env("HONEYTRAIL_SERVE_TLS_KEY") {
            self.serve.tls_key = Some(PathBuf::from(v));
        }
        if let Some(v) = env("HONEYTRAIL_EVENTBRIDGE_SECRET") {
            self.serve.eventbridge_secret = Some(v);
        }
        if let Some(v) = env("HONEYTRAIL_CANARYTOKENS_SECRET") {
            self.serve.canarytokens_secret = Some(v);
        }
        if let Some(v) = env("HONEYTRAIL_SLACK_SIGNING_SECRET") {
            self.serve.slack_signing_secret = Some(v);
        }
        if let Some(v) = env("HONEYTRAIL_DETECT_WINDOW_MINUTES") {
            self.detect.window_minutes = v.parse().map_err(|_| {
                anyhow::anyhow!("HONEYTRAIL_DETECT_WINDOW_MINUTES is {v:?}; give a whole number of minutes")
            })?;
        }
        if let Some(v) = env("HONEYTRAIL_MINT_GUARD") {
            self.mint.guard = match v.as_str() {
                "inline" => Guard::Inline,
                "group" => Guard::Group,
                other => bail!("HONEYTRAIL_MINT_GUARD is {other:?}; use \"inline\" or \"group\""),
            };
        }
        if let Some(v) = env("HONEYTRAIL_MINT_PACK_TWO_KEYS") {
            self.mint.pack_two_keys = match v.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                other => bail!("HONEYTRAIL_MINT_PACK_TWO_KEYS is {other:?}; use true or false"),
            };
        }
        Ok(())
    }

    fn apply_flags(&mut self, flags: &Overrides) {
        if let Some(v) = &flags.data_dir {
            self.data_dir = Some(v.clone());
        }
        if let Some(v) = &flags.database {
            self.database = Some(v.clone());
        }
        if let Some(v) = &flags.aws_endpoint {
            self.aws.endpoint = Some(v.clone());
        }
        if let Some(v) = &flags.aws_region {
            self.aws.region = Some(v.clone());
        }
        if let Some(v) = &flags.aws_profile {
            self.aws.profile = Some(v.clone());
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.as_deref().expect("load() always sets data_dir")
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir().join("honeytrail.sqlite").display()),
        }
    }

    pub fn secret_key_path(&self) -> PathBuf {
        self.secret_key_file.clone().unwrap_or_else(|| self.data_dir().join("secret.key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_parses_to_the_defaults() {
        let c: Config = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.mint.naming_pattern, MintSection::default().naming_pattern);
        assert_eq!(c.mint.guard, Guard::Inline);
        assert_eq!(c.aws.region.as_deref(), Some("us-east-1"));
        assert_eq!(c.render.profile, "prod");
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let config = Config {
            secret_key: Some("c2VjcmV0LWRhdGEta2V5".into()),
            database: Some("postgres://ht:hunter2@db/ht".into()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("c2VjcmV0LWRhdGEta2V5") && !shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://ht:***@db/ht"), "{shown}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<Config>("[aws]\nendpont = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("endpont"), "{err}");
    }
}

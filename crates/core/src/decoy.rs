//! Decoy resources: the things a canary account holds so that it looks lived
//! in (S3 buckets with a few objects, SSM parameters, Secrets Manager
//! secrets, a DynamoDB table, SQS queues, IAM roles), and how a CloudTrail
//! record names them.
//!
//! A decoy is registered like a token (kind `aws-decoy`, identified by its
//! ARN) with its place in the account as its placement, so any access to it
//! becomes an incident that names it the way a key's incident names where the
//! key was left. Names come from word lists or from an inventory of the
//! company's own words; every name is checked against the tell-tale words
//! that honey-token hunters look for. Contents are made up here: never a
//! copied secret.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::naming::{self, ENVS, TEAMS};
use crate::stealth::{Finding, Level};
use crate::{Invalid, Spot};

/// What a decoy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DecoyKind {
    S3Bucket,
    SsmParameter,
    Secret,
    DynamodbTable,
    SqsQueue,
    IamRole,
}

impl DecoyKind {
    pub const ALL: [DecoyKind; 6] = [
        DecoyKind::S3Bucket,
        DecoyKind::SsmParameter,
        DecoyKind::Secret,
        DecoyKind::DynamodbTable,
        DecoyKind::SqsQueue,
        DecoyKind::IamRole,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecoyKind::S3Bucket => "s3-bucket",
            DecoyKind::SsmParameter => "ssm-parameter",
            DecoyKind::Secret => "secret",
            DecoyKind::DynamodbTable => "dynamodb-table",
            DecoyKind::SqsQueue => "sqs-queue",
            DecoyKind::IamRole => "iam-role",
        }
    }

    /// How a responder reads it: "S3 bucket".
    pub fn label(self) -> &'static str {
        match self {
            DecoyKind::S3Bucket => "S3 bucket",
            DecoyKind::SsmParameter => "SSM parameter",
            DecoyKind::Secret => "Secrets Manager secret",
            DecoyKind::DynamodbTable => "DynamoDB table",
            DecoyKind::SqsQueue => "SQS queue",
            DecoyKind::IamRole => "IAM role",
        }
    }

    /// The CloudTrail data-event resource type whose events show reads of
    /// this kind, when its reads are data events (the others' are
    /// management events, logged by every trail).
    pub fn data_event_type(self) -> Option<&'static str> {
        match self {
            DecoyKind::S3Bucket => Some("AWS::S3::Object"),
            DecoyKind::DynamodbTable => Some("AWS::DynamoDB::Table"),
            DecoyKind::SqsQueue => Some("AWS::SQS::Queue"),
            _ => None,
        }
    }

    /// Whether the decoy lives in one region (all but buckets' names and
    /// IAM roles, which are global).
    pub fn regional(self) -> bool {
        !matches!(self, DecoyKind::IamRole)
    }

    /// Checks a name against the service's rules and against the tell-tale
    /// words, naming what is wrong.
    pub fn check_name(self, name: &str) -> Result<(), Invalid> {
        let bad = |why: &str| Err(Invalid(format!("{} name {name:?} is not valid: {why}", self.label())));
        let allowed = |extra: &str, min: usize, max: usize| {
            (min..=max).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        };
        match self {
            DecoyKind::S3Bucket => {
                let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
                if !(3..=63).contains(&name.len())
                    || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                    || !edge(name.chars().next())
                    || !edge(name.chars().last())
                    || name.contains("..")
                {
                    return bad("bucket names have 3 to 63 lower-case letters, digits, - and ., and start and end with a letter or digit");
                }
            }
            DecoyKind::SsmParameter => {
                let lower = name.trim_start_matches('/').to_ascii_lowercase();
                if !allowed("_.-/", 1, 1011)
                    || lower.starts_with("aws")
                    || lower.starts_with("ssm")
                    || name.contains("//")
                {
                    return bad("parameter names have letters, digits and _ . - /, and do not start with aws or ssm");
                }
            }
            DecoyKind::Secret => {
                if !allowed("/_+=.@-", 1, 512) {
                    return bad("secret names have 1 to 512 letters, digits and / _ + = . @ -");
                }
            }
            DecoyKind::DynamodbTable => {
                if !allowed("_.-", 3, 255) {
                    return bad("table names have 3 to 255 letters, digits and _ . -");
                }
            }
            DecoyKind::SqsQueue => {
                if !allowed("_-", 1, 80) {
                    return bad("queue names have 1 to 80 letters, digits, _ and - (FIFO queues are not made)");
                }
            }
            DecoyKind::IamRole => {
                if !allowed("+=,.@_-", 1, 64) {
                    return bad("role names have 1 to 64 letters, digits and + = , . @ _ -");
                }
            }
        }
        if let Some(word) = naming::telltale_word(name) {
            return Err(Invalid(format!(
                "{} name {name:?} contains the tell-tale word {word:?}; an intruder who lists the account would know it for a decoy",
                self.label()
            )));
        }
        Ok(())
    }

    /// The decoy's ARN. `None` for a secret: Secrets Manager adds a random
    /// suffix, so its ARN is known only once it exists.
    pub fn arn(self, partition: &str, region: &str, account: &str, name: &str) -> Option<String> {
        Some(match self {
            DecoyKind::S3Bucket => format!("arn:{partition}:s3:::{name}"),
            DecoyKind::SsmParameter => {
                format!("arn:{partition}:ssm:{region}:{account}:parameter/{}", name.trim_start_matches('/'))
            }
            DecoyKind::Secret => return None,
            DecoyKind::DynamodbTable => format!("arn:{partition}:dynamodb:{region}:{account}:table/{name}"),
            DecoyKind::SqsQueue => format!("arn:{partition}:sqs:{region}:{account}:{name}"),
            DecoyKind::IamRole => format!("arn:{partition}:iam::{account}:role/{name}"),
        })
    }
}

impl fmt::Display for DecoyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DecoyKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        DecoyKind::ALL.into_iter().find(|k| k.as_str() == s.trim()).ok_or_else(|| {
            let known: Vec<&str> = DecoyKind::ALL.iter().map(|k| k.as_str()).collect();
            Invalid(format!("unknown decoy kind {s:?}; expected one of: {}", known.join(", ")))
        })
    }
}

/// One decoy to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlannedDecoy {
    pub kind: DecoyKind,
    pub name: String,
}

/// A registered decoy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decoy {
    /// The token that stands for it (its incidents are this token's).
    pub token_id: i64,
    pub kind: DecoyKind,
    pub name: String,
    pub arn: String,
    pub account_id: String,
    pub region: String,
    /// The pool's name of the canary account; none for the configured one.
    pub pool_account: Option<String>,
    /// The principal that made it: its own calls on the decoy (creating,
    /// checking, removing it) are not incidents.
    pub managed_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub removed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What an inventory file gives: the company's own words (team, product and
/// system names) to build names from, and exact names to use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub words: Vec<String>,
    pub names: Vec<PlannedDecoy>,
}

/// Most lines an inventory may hold.
const INVENTORY_MAX_LINES: usize = 10_000;

/// Reads an inventory: one entry a line, `#` starts a comment. A line is a
/// word (`payments`, `ledger`: letters, digits and -, at most 32) or an
/// exact name with its kind (`s3-bucket acme-ledger-exports`). Names only:
/// a line that looks like a secret value is refused, so no real secret is
/// ever copied into a decoy.
pub fn parse_inventory(text: &str) -> Result<Inventory, Invalid> {
    let mut inventory = Inventory::default();
    for (n, line) in text.lines().enumerate() {
        if n >= INVENTORY_MAX_LINES {
            return Err(Invalid(format!("the inventory has more than {INVENTORY_MAX_LINES} lines")));
        }
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |why: String| Invalid(format!("inventory line {}: {why}", n + 1));
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(word), None, _) => {
                let word = word.to_ascii_lowercase();
                if word.is_empty()
                    || word.len() > 32
                    || !word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                {
                    return Err(at(format!("{word:?} is not a word of letters, digits and - (at most 32)")));
                }
                if let Some(tell) = naming::telltale_word(&word) {
                    return Err(at(format!("{word:?} contains the tell-tale word {tell:?}")));
                }
                if !inventory.words.contains(&word) {
                    inventory.words.push(word);
                }
            }
            (Some(kind), Some(name), None) => {
                let kind: DecoyKind = kind.parse().map_err(|e: Invalid| at(e.0))?;
                kind.check_name(name).map_err(|e| at(e.0))?;
                inventory.names.push(PlannedDecoy { kind, name: name.to_string() });
            }
            _ => return Err(at("expected a word, or a kind and a name (\"s3-bucket acme-exports\")".into())),
        }
    }
    Ok(inventory)
}

const BUCKET_THINGS: &[&str] =
    &["exports", "backups", "reports", "invoices", "archive", "uploads", "statements", "snapshots", "data"];
const PARAMETER_LEAVES: &[&str] = &[
    "db-password",
    "api-key",
    "stripe-secret-key",
    "jwt-signing-key",
    "smtp-password",
    "database-url",
    "oauth-client-secret",
];
const SECRET_LEAVES: &[&str] =
    &["postgres", "mysql-admin", "api-credentials", "sftp", "datadog-api-key", "github-deploy-key", "salesforce"];
const TABLES: &[&str] = &["sessions", "customers", "orders", "accounts", "payouts", "audit-events", "api-clients"];
const QUEUES: &[&str] = &["jobs", "events", "notifications", "refunds", "exports", "webhooks"];
const ROLES: &[&str] =
    &["deploy", "admin", "break-glass", "terraform", "ci-deployer", "readonly-audit", "data-engineer"];

/// How many of each kind a plan makes unless told.
pub const DEFAULT_COUNTS: [(DecoyKind, usize); 6] = [
    (DecoyKind::S3Bucket, 2),
    (DecoyKind::SsmParameter, 2),
    (DecoyKind::Secret, 2),
    (DecoyKind::DynamodbTable, 1),
    (DecoyKind::SqsQueue, 2),
    (DecoyKind::IamRole, 2),
];

/// Most decoys one plan makes.
pub const PLAN_MAX: usize = 200;

/// Plans `counts` decoys: the inventory's exact names of each kind first,
/// then names built from its words (or the built-in lists when it has
/// none). Names in `taken` (decoys that exist) are never planned again.
pub fn plan<R: Rng + ?Sized>(
    counts: &[(DecoyKind, usize)],
    inventory: &Inventory,
    taken: &HashSet<(DecoyKind, String)>,
    rng: &mut R,
) -> Result<Vec<PlannedDecoy>, Invalid> {
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    if total > PLAN_MAX {
        return Err(Invalid(format!("a plan makes at most {PLAN_MAX} decoys; {total} were asked for")));
    }
    let words: Vec<&str> =
        if inventory.words.is_empty() { TEAMS.to_vec() } else { inventory.words.iter().map(String::as_str).collect() };
    let mut seen: HashSet<(DecoyKind, String)> = taken.clone();
    let mut out = Vec::new();
    for &(kind, count) in counts {
        let mut made = 0;
        for exact in inventory.names.iter().filter(|p| p.kind == kind) {
            if made < count && seen.insert((kind, exact.name.clone())) {
                out.push(exact.clone());
                made += 1;
            }
        }
        let mut tries = 0;
        while made < count {
            tries += 1;
            if tries > 1000 {
                return Err(Invalid(format!(
                    "could not find {count} unused {} names from the words given; add words to the inventory",
                    kind.label()
                )));
            }
            let name = generated(kind, &words, rng);
            if kind.check_name(&name).is_ok() && seen.insert((kind, name.clone())) {
                out.push(PlannedDecoy { kind, name });
                made += 1;
            }
        }
    }
    Ok(out)
}

fn generated<R: Rng + ?Sized>(kind: DecoyKind, words: &[&str], rng: &mut R) -> String {
    let pick = |list: &[&'static str], rng: &mut R| *list.choose(rng).expect("lists are not empty");
    let word = *words.choose(rng).expect("words are not empty");
    let env = pick(ENVS, rng);
    match kind {
        DecoyKind::S3Bucket => {
            let thing = pick(BUCKET_THINGS, rng);
            format!("{word}-{thing}-{env}-{:04x}", rng.gen::<u16>())
        }
        DecoyKind::SsmParameter => format!("/{env}/{word}/{}", pick(PARAMETER_LEAVES, rng)),
        DecoyKind::Secret => format!("{env}/{word}/{}", pick(SECRET_LEAVES, rng)),
        DecoyKind::DynamodbTable => format!("{word}-{}-{env}", pick(TABLES, rng)),
        DecoyKind::SqsQueue => format!("{word}-{}-{env}", pick(QUEUES, rng)),
        DecoyKind::IamRole => format!("{word}-{}", pick(ROLES, rng)),
    }
}

/// Made-up contents of a decoy: plausible, never a real secret.
pub mod contents {
    use rand::distributions::Alphanumeric;
    use rand::Rng;

    fn random<R: Rng + ?Sized>(rng: &mut R, len: usize) -> String {
        (0..len).map(|_| char::from(rng.sample(Alphanumeric))).collect()
    }

    /// A last word of a name, for made-up host and user names.
    fn stem(name: &str) -> String {
        let last = name.rsplit(['/', '-', '_', '.']).find(|p| !p.is_empty()).unwrap_or("app");
        last.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase()
    }

    /// A secret's value: database credentials as applications keep them.
    pub fn secret_value<R: Rng + ?Sized>(name: &str, rng: &mut R) -> String {
        let stem = stem(name);
        serde_json::json!({
            "username": format!("svc_{stem}"),
            "password": random(rng, 28),
            "engine": "postgres",
            "host": format!("{stem}-db.internal"),
            "port": 5432,
            "dbname": stem,
        })
        .to_string()
    }

    /// A parameter's value.
    pub fn parameter_value<R: Rng + ?Sized>(rng: &mut R) -> String {
        random(rng, 40)
    }

    /// A bucket's objects: `(key, body)`.
    pub fn objects<R: Rng + ?Sized>(bucket: &str, rng: &mut R) -> Vec<(String, String)> {
        let words: Vec<&str> = bucket.split(['-', '.']).filter(|w| !w.is_empty()).collect();
        let stem = words.get(1).or(words.first()).copied().unwrap_or("data");
        let rows: String = (1..=20)
            .map(|n| {
                format!(
                    "{n},{:08},{}.{:02},settled\n",
                    rng.gen_range(10_000_000..99_999_999u32),
                    rng.gen_range(10..9_999),
                    rng.gen_range(0..100)
                )
            })
            .collect();
        vec![
            (format!("{stem}/2026/11/summary.csv"), format!("id,reference,amount,status\n{rows}")),
            (
                "README.txt".into(),
                format!("Nightly {stem} exports. Owner: data platform. Do not share outside the team.\n"),
            ),
        ]
    }

    /// A table's items: `id` and a few string attributes each.
    pub fn items<R: Rng + ?Sized>(rng: &mut R) -> Vec<Vec<(&'static str, String)>> {
        (0..3)
            .map(|_| {
                vec![
                    ("id", format!("{:012}", rng.gen_range(1u64..999_999_999_999))),
                    ("status", "active".to_string()),
                    ("created", format!("2026-{:02}-{:02}", rng.gen_range(1..12), rng.gen_range(1..28))),
                ]
            })
            .collect()
    }
}

/// The decoy's place, as its incidents show it.
pub fn spot(kind: DecoyKind, name: &str, arn: &str, account: &str, region: &str, placed_by: &str) -> Spot {
    let where_ =
        if kind.regional() { format!("AWS account {account}, {region}") } else { format!("AWS account {account}") };
    Spot {
        host: where_,
        path: arn.to_string(),
        asset: Some(format!("decoy {}", kind.label())),
        format: Some(format!("decoy-{}", kind.as_str())),
        placed_by: Some(placed_by.to_string()),
        notes: Some(format!(
            "decoy {} {name:?} made by honeytrail decoy apply; nothing real uses it, so any access is an intruder's",
            kind.label()
        )),
        aws_account: Some(account.to_string()),
        ..Spot::default()
    }
}

/// The ways a CloudTrail record names one decoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forms {
    /// Text every form contains, without / or escapes: what the scanner
    /// looks for before parsing a document.
    pub needle: String,
    /// Values that name the decoy exactly (its ARN, its name, a secret's
    /// partial ARN).
    pub exact: Vec<String>,
    /// Values that name something inside it (an object of a bucket, an
    /// index of a table): `arn:aws:s3:::bucket/`.
    pub prefixes: Vec<String>,
    /// `/ACCOUNT/NAME`: how a queue URL (of any SQS endpoint) ends.
    pub url_path: Option<String>,
}

/// How records name the decoy with `arn`; `None` when it is not an ARN.
pub fn forms(arn: &str) -> Option<Forms> {
    let mut parts = arn.splitn(6, ':');
    let (_arn, _partition, service, _region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let last = |s: &str| s.rsplit('/').find(|p| !p.is_empty()).unwrap_or(s).to_string();
    let mut f = Forms { needle: String::new(), exact: vec![arn.to_string()], prefixes: Vec::new(), url_path: None };
    match service {
        "s3" => {
            f.needle = resource.to_string();
            f.exact.push(resource.to_string());
            f.prefixes.push(format!("{arn}/"));
        }
        "sqs" => {
            f.needle = resource.to_string();
            f.exact.push(resource.to_string());
            f.url_path = Some(format!("/{account}/{resource}"));
        }
        "ssm" => {
            let path = resource.strip_prefix("parameter/")?;
            f.needle = last(path);
            f.exact.push(path.to_string());
            f.exact.push(format!("/{path}"));
        }
        "secretsmanager" => {
            let full = resource.strip_prefix("secret:")?;
            // AWS's suffix: a dash and six characters.
            let name = match full.rsplit_once('-') {
                Some((name, suffix)) if suffix.len() == 6 && !name.is_empty() => name,
                _ => full,
            };
            f.needle = last(name);
            f.exact.push(name.to_string());
            f.exact.push(arn[..arn.len() - full.len()].to_string() + name);
        }
        "dynamodb" => {
            let name = resource.strip_prefix("table/")?;
            f.needle = name.to_string();
            f.exact.push(name.to_string());
            f.prefixes.push(format!("{arn}/"));
        }
        "iam" => {
            let path = resource.strip_prefix("role/")?;
            f.needle = last(path);
            f.exact.push(last(path));
        }
        _ => f.needle = last(resource),
    }
    f.exact.dedup();
    (!f.needle.is_empty()).then_some(f)
}

/// What would give a decoy away to an intruder who lists the account: the
/// checks honey-token hunters publish (tell-tale words, machine-made names),
/// applied to its name.
pub fn check(kind: DecoyKind, name: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(word) = naming::telltale_word(name) {
        out.push(Finding {
            level: Level::Fail,
            code: "telltale-name",
            message: format!("{} name {name:?} contains {word:?}; remove it and plan another name", kind.label()),
        });
    } else if let Some(why) = crate::stealth::generated_name(name) {
        out.push(Finding {
            level: Level::Warn,
            code: "generated-name",
            message: format!(
                "{} name {name:?} {why}: canary services make such names and hunters look for them",
                kind.label()
            ),
        });
    } else {
        out.push(Finding {
            level: Level::Pass,
            code: "plausible-name",
            message: format!("{} name {name:?} has no tell-tale word", kind.label()),
        });
    }
    if kind.data_event_type().is_some() {
        out.push(Finding {
            level: Level::Note,
            code: "data-events",
            message: format!(
                "reads of this {} are CloudTrail data events: they are seen only while the trail's selectors log them (honeytrail verify checks)",
                kind.label()
            ),
        });
    }
    out
}

/// The name of the decoy with `arn` as its own service spells it
/// (a parameter's without its leading `/`).
pub fn name_of(arn: &str) -> Option<String> {
    forms(arn).and_then(|f| f.exact.get(1).cloned())
}

/// The self-test of a decoy's token: what would give the decoy away, with
/// the same report shape as a key's.
pub fn report_for(token: &crate::Token) -> crate::stealth::Report {
    let kind = token.labels.get("decoy").and_then(|k| k.parse().ok()).unwrap_or(DecoyKind::S3Bucket);
    let name = name_of(&token.access_key_id).unwrap_or_else(|| token.access_key_id.clone());
    crate::stealth::Report {
        access_key_id: token.access_key_id.clone(),
        decoded_account: token.account_id.clone(),
        findings: check(kind, &name),
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn names_follow_each_services_rules_and_refuse_tell_tale_words() {
        assert!(DecoyKind::S3Bucket.check_name("payroll-exports-prod-1a2b").is_ok());
        assert!(DecoyKind::S3Bucket.check_name("Payroll").is_err());
        assert!(DecoyKind::S3Bucket.check_name("a..b").is_err());
        assert!(DecoyKind::SsmParameter.check_name("/prod/billing/db-password").is_ok());
        assert!(DecoyKind::SsmParameter.check_name("/aws/reserved").is_err());
        assert!(DecoyKind::SqsQueue.check_name("jobs.fifo").is_err());
        let err = DecoyKind::Secret.check_name("prod/honeypot/db").unwrap_err();
        assert!(err.0.contains("tell-tale word \"honey\""), "{err}");
        assert!(DecoyKind::IamRole.check_name("canary-reader").is_err());
        assert!("queue".parse::<DecoyKind>().unwrap_err().0.contains("sqs-queue"));
    }

    #[test]
    fn a_plan_uses_the_inventory_and_never_repeats_a_name() {
        let inventory = parse_inventory("# our systems\nledger\nAtlas\ns3-bucket acme-ledger-exports\n").unwrap();
        assert_eq!(inventory.words, ["ledger", "atlas"]);
        let taken = HashSet::from([(DecoyKind::SqsQueue, "ledger-jobs-prod".to_string())]);
        let mut rng = StdRng::seed_from_u64(7);
        let planned = plan(&DEFAULT_COUNTS, &inventory, &taken, &mut rng).unwrap();
        assert_eq!(planned.len(), 11);
        assert_eq!(planned[0], PlannedDecoy { kind: DecoyKind::S3Bucket, name: "acme-ledger-exports".into() });
        let mut names = HashSet::new();
        for p in &planned {
            p.kind.check_name(&p.name).unwrap();
            assert!(names.insert((p.kind, p.name.clone())), "{p:?} twice");
            assert!(!taken.contains(&(p.kind, p.name.clone())));
            if p.name != "acme-ledger-exports" {
                assert!(p.name.contains("ledger") || p.name.contains("atlas"), "{p:?} uses the inventory's words");
            }
            assert!(check(p.kind, &p.name).iter().all(|f| f.level <= Level::Note), "{p:?}");
        }
        assert!(parse_inventory("s3-bucket Bad_Name\n").unwrap_err().0.contains("line 1"));
        assert!(parse_inventory("decoy-stuff\n").unwrap_err().0.contains("tell-tale"));
        assert!(parse_inventory("AKIA x y\n").is_err(), "a line of three fields is not an entry");
        assert!(plan(&[(DecoyKind::Secret, PLAN_MAX + 1)], &inventory, &taken, &mut rng).is_err());
    }

    #[test]
    fn every_form_of_a_decoy_is_known() {
        let s3 = forms("arn:aws:s3:::ledger-exports-prod").unwrap();
        assert_eq!(s3.needle, "ledger-exports-prod");
        assert!(s3.exact.contains(&"ledger-exports-prod".into()));
        assert_eq!(s3.prefixes, ["arn:aws:s3:::ledger-exports-prod/"]);
        let ssm = forms("arn:aws:ssm:eu-west-1:123456789012:parameter/prod/ledger/db-password").unwrap();
        assert_eq!(ssm.needle, "db-password");
        assert!(ssm.exact.contains(&"/prod/ledger/db-password".into()));
        let secret = forms("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/ledger/postgres-AbCdEf").unwrap();
        assert_eq!(secret.needle, "postgres");
        assert!(secret.exact.contains(&"prod/ledger/postgres".into()));
        assert!(secret
            .exact
            .contains(&"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/ledger/postgres".into()));
        let queue = forms("arn:aws:sqs:eu-west-1:123456789012:ledger-jobs-prod").unwrap();
        assert_eq!(queue.url_path.as_deref(), Some("/123456789012/ledger-jobs-prod"));
        let role = forms("arn:aws:iam::123456789012:role/ops/ledger-deploy").unwrap();
        assert_eq!((role.needle.as_str(), role.exact[1].as_str()), ("ledger-deploy", "ledger-deploy"));
        assert_eq!(
            DecoyKind::SsmParameter.arn("aws", "eu-west-1", "123456789012", "/prod/x"),
            Some("arn:aws:ssm:eu-west-1:123456789012:parameter/prod/x".into())
        );
        assert!(forms("not an arn").is_none());
    }

    #[test]
    fn contents_are_made_up_and_plausible() {
        let mut rng = StdRng::seed_from_u64(1);
        let value: serde_json::Value =
            serde_json::from_str(&contents::secret_value("prod/ledger/postgres", &mut rng)).unwrap();
        assert_eq!(value["username"], "svc_postgres");
        assert_eq!(value["password"].as_str().unwrap().len(), 28);
        let objects = contents::objects("ledger-exports-prod-1a2b", &mut rng);
        assert!(
            objects[0].0.starts_with("exports/")
                && objects[0].0.ends_with("summary.csv")
                && objects[0].1.lines().count() == 21,
            "{objects:?}"
        );
        let spot = spot(
            DecoyKind::Secret,
            "prod/x",
            "arn:aws:secretsmanager:eu-west-1:1:secret:prod/x-AbCdEf",
            "1",
            "eu-west-1",
            "alice",
        );
        assert_eq!((spot.host.as_str(), spot.format.as_deref()), ("AWS account 1, eu-west-1", Some("decoy-secret")));
    }
}

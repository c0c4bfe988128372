//! The registry's records: tokens, where they were placed, how they got there.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;
use crate::Invalid;

/// Free-form `name=value` labels, kept sorted so output is stable.
pub type Labels = BTreeMap<String, String>;

/// Parses `name=value` (or a bare `name`, meaning an empty value).
pub fn parse_label(raw: &str) -> Result<(String, String), Invalid> {
    let (name, value) = raw.split_once('=').unwrap_or((raw, ""));
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
        return Err(Invalid(format!("label {raw:?} is not name=value with a name of letters, digits, - _ . /")));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// Labels as `name=value,name` (a bare name for an empty value).
pub fn labels_text(labels: &Labels) -> String {
    labels.iter().map(|(k, v)| if v.is_empty() { k.clone() } else { format!("{k}={v}") }).collect::<Vec<_>>().join(",")
}

/// Parses many labels, each `name=value`.
pub fn parse_labels<S: AsRef<str>>(raw: &[S]) -> Result<Labels, Invalid> {
    raw.iter().map(|l| parse_label(l.as_ref())).collect()
}

/// Parses labels written together, separated by commas or new lines, as a
/// web form sends them: `team=payments, env=prod`.
pub fn parse_label_text(raw: &str) -> Result<Labels, Invalid> {
    raw.split([',', '\n']).map(str::trim).filter(|l| !l.is_empty()).map(parse_label).collect()
}

/// A filter on one label: `name` (any value) or `name=value`. The one parser
/// behind the command line, the API, the web UI and routing rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelFilter {
    pub name: String,
    /// `None`: any value.
    pub value: Option<String>,
}

impl LabelFilter {
    /// `name` or `name=value`; blank input is no filter.
    pub fn parse(raw: &str) -> Result<Option<LabelFilter>, Invalid> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        let (name, value) = match raw.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (raw, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
            return Err(Invalid(format!(
                "label filter {raw:?} is not NAME or NAME=VALUE with a name of letters, digits, - _ . /"
            )));
        }
        Ok(Some(LabelFilter { name: name.to_string(), value }))
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        match (labels.get(&self.name), &self.value) {
            (Some(_), None) => true,
            (Some(v), Some(want)) => v == want,
            (None, _) => false,
        }
    }
}

/// How a token came to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenKind {
    /// Minted by honeytrail in the canary account through the IAM API.
    AwsMinted,
    /// Made elsewhere (canarytokens.org, another team, on the target host)
    /// and registered by key ID.
    AwsImported,
    /// A decoy resource in a canary account (see [`crate::decoy`]),
    /// known by its ARN: any access to it is an incident.
    AwsDecoy,
    /// A session canary: short-lived STS session credentials of the honey
    /// role on one host, refreshed before they expire, known by the
    /// session's assumed-role ARN (`iam_user_arn`), which every session of
    /// it shares. `access_key_id` is its first session's `ASIA…` ID.
    AwsSession,
}

/// Whether a token is still expected to sit in its placements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenState {
    Active,
    /// Deleted in AWS (for minted keys) and kept for history. A retired key
    /// that shows up in CloudTrail still means something.
    Retired,
}

macro_rules! str_enum {
    ($ty:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $s),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = Invalid;
            fn from_str(s: &str) -> Result<Self, Invalid> {
                match s {
                    $($s => Ok($ty::$variant),)+
                    other => Err(Invalid(format!(
                        concat!("unknown ", stringify!($ty), " {:?}; expected one of: {}"),
                        other,
                        [$($s),+].join(", ")
                    ))),
                }
            }
        }
    };
}

str_enum!(TokenKind { AwsMinted => "aws-minted", AwsImported => "aws-imported", AwsDecoy => "aws-decoy", AwsSession => "aws-session" });
str_enum!(TokenState { Active => "active", Retired => "retired" });

/// The fields of a place, by the names every front door uses for them: the
/// API body and the web form, the command line's flags (`--host`, `--path`,
/// `--owner`, …), import file columns and the CSV export header.
pub const PLACEMENT_FIELDS: [&str; 11] = [
    "host",
    "path",
    "owner",
    "asset",
    "serial",
    "format",
    "placed_by",
    "notes",
    "instance_id",
    "iam_user",
    "aws_account",
];

/// A registered honey token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub id: i64,
    pub kind: TokenKind,
    pub access_key_id: String,
    /// Whether honeytrail holds the secret access key (sealed in the store;
    /// fetched only when a bait file needs it).
    pub has_secret: bool,
    pub iam_user_name: Option<String>,
    pub iam_user_arn: Option<String>,
    pub account_id: Option<String>,
    /// For imported tokens: where the key was made (e.g. `canarytokens.org`).
    pub source: Option<String>,
    pub memo: String,
    pub labels: Labels,
    pub state: TokenState,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    /// The token this one replaced, when it was made by `rotate`.
    pub rotated_from: Option<i64>,
}

/// What is needed to register a token.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub kind: Option<TokenKind>,
    pub access_key_id: String,
    pub secret: Option<Secret>,
    pub iam_user_name: Option<String>,
    pub iam_user_arn: Option<String>,
    pub account_id: Option<String>,
    pub source: Option<String>,
    pub memo: String,
    pub labels: Labels,
    pub created_at: Option<DateTime<Utc>>,
    pub rotated_from: Option<i64>,
}

/// One place a token was planted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Placement {
    pub id: i64,
    pub token_id: i64,
    #[serde(flatten)]
    pub spot: Spot,
    pub placed_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// Where and by whom: the fields a user supplies for a placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Spot {
    pub host: String,
    pub path: String,
    /// The person the place belongs to ("Maria Lopez").
    pub owner: Option<String>,
    /// What the host is ("MacBook Pro", "bastion EC2 instance").
    pub asset: Option<String>,
    /// Asset tag or serial number ("C02XYZ").
    pub serial: Option<String>,
    /// The bait format written there (`aws-credentials`, `dotenv`, …).
    pub format: Option<String>,
    pub placed_by: Option<String>,
    pub notes: Option<String>,
    pub labels: Labels,
    /// The EC2 instance the key sits on (`i-0abc…`): what a quarantine
    /// action isolates.
    pub instance_id: Option<String>,
    /// The real IAM user of the person the place belongs to: whose access
    /// a response action cuts.
    pub iam_user: Option<String>,
    /// The AWS account (12 digits) that owns the instance and the user:
    /// where response actions run, through the role configured for it.
    pub aws_account: Option<String>,
}

impl Spot {
    /// Checks (and trims) what a response action would act on: an EC2
    /// instance ID, an IAM user name, a 12-digit account. Blanks are dropped.
    pub fn check_targets(&mut self) -> Result<(), crate::Invalid> {
        use crate::action::{check_account, check_iam_name, check_instance_id};
        fn take(
            v: &mut Option<String>,
            check: impl Fn(&str) -> Result<String, crate::Invalid>,
        ) -> Result<(), crate::Invalid> {
            *v = match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                Some(raw) => Some(check(raw)?),
                None => None,
            };
            Ok(())
        }
        take(&mut self.instance_id, check_instance_id)?;
        take(&mut self.iam_user, |s| check_iam_name(s, "user"))?;
        take(&mut self.aws_account, check_account)
    }

    /// A field by its name in [`PLACEMENT_FIELDS`].
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "host" => Some(&self.host),
            "path" => Some(&self.path),
            "owner" => self.owner.as_deref(),
            "asset" => self.asset.as_deref(),
            "serial" => self.serial.as_deref(),
            "format" => self.format.as_deref(),
            "placed_by" => self.placed_by.as_deref(),
            "notes" => self.notes.as_deref(),
            "instance_id" => self.instance_id.as_deref(),
            "iam_user" => self.iam_user.as_deref(),
            "aws_account" => self.aws_account.as_deref(),
            _ => None,
        }
    }
}

/// One hop in a token's chain of custody: a place the secret passed through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustodyHop {
    pub id: i64,
    pub token_id: i64,
    /// 1-based position in the chain.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// What happened, as a responder would read it: "sent by email to ops@…".
    pub description: String,
    /// Who moved it.
    pub actor: Option<String>,
    /// True when honeytrail recorded the hop itself (minting, rendering).
    pub automatic: bool,
}

/// A placement listed with the key it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlacedToken {
    pub access_key_id: String,
    #[serde(flatten)]
    pub placement: Placement,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse() {
        assert_eq!(parse_label("team=payments").unwrap(), ("team".into(), "payments".into()));
        assert_eq!(parse_label("critical").unwrap(), ("critical".into(), "".into()));
        assert!(parse_label("=x").is_err());
        assert!(parse_label("a b=c").is_err());
    }

    #[test]
    fn enums_round_trip_and_explain_errors() {
        assert_eq!("aws-minted".parse::<TokenKind>().unwrap(), TokenKind::AwsMinted);
        assert_eq!(TokenState::Retired.to_string(), "retired");
        let err = "gone".parse::<TokenState>().unwrap_err();
        assert!(err.contains("active, retired"), "{err}");
    }
}

//! Fleet enrolment: the secrets hosts present to ask for their own key.

use std::sync::Arc;

use chrono::{Duration, Utc};
use honeytrail_core::access::Permission;
use honeytrail_core::fleet::EnrolmentGuard;
use honeytrail_core::net::parse_networks;
use honeytrail_core::template::PlacementTemplate;
use honeytrail_core::Labels;
use honeytrail_store::AuditRecord;
use serde::{Deserialize, Serialize};

use crate::{Actor, OpError, OpResult, Ops};
pub use honeytrail_core::fleet::EnrolmentSecret;

/// A lifetime such as `30m`, `12h`, `7d` or `2w`.
pub fn parse_lifetime(raw: &str) -> OpResult<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let bad =
        || OpError::invalid(format!("\"{raw}\" is not a lifetime: write a number and a unit, e.g. 30m, 12h, 7d, 2w"));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let d = match unit {
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    };
    d.filter(|_| n > 0).ok_or_else(bad)
}

/// What an enrolment secret allows: the one declaration behind the
/// command line's `enrol create`, the API's body and the web UI's form.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct EnrolmentSecretRequest {
    /// How many hosts may enrol with it
    #[cfg_attr(feature = "clap", arg(long, conflicts_with = "unlimited", required_unless_present = "unlimited"))]
    #[serde(default)]
    pub uses: Option<i64>,
    /// Any number of hosts, until it expires
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub unlimited: bool,
    /// How long it lives: 30m, 12h, 7d, 2w (at most 90 days)
    #[cfg_attr(feature = "clap", arg(long, default_value = "7d"))]
    #[serde(default = "default_lifetime")]
    pub expires: String,
    /// A label for every key handed out through it, name=value (repeatable)
    #[cfg_attr(feature = "clap", arg(long = "label", value_name = "NAME=VALUE"))]
    #[serde(default, deserialize_with = "crate::ops::input::one_or_many")]
    pub labels: Vec<String>,
    /// The placement template the hosts use (`honeytrail template list`)
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default)]
    pub template: Option<String>,
    /// Only hosts enrolling from this network (CIDR or address; repeatable);
    /// others are refused and raise an incident
    #[cfg_attr(feature = "clap", arg(long = "from", value_name = "CIDR"))]
    #[serde(default, deserialize_with = "crate::ops::input::one_or_many")]
    pub allowed_from: Vec<String>,
    /// How many hosts are expected: each one beyond it raises an incident
    #[cfg_attr(feature = "clap", arg(long = "expect", value_name = "N"))]
    #[serde(default)]
    pub expected: Option<i64>,
    /// Bind to EC2 instances: each host proves it is one with its signed
    /// identity document (`honeytrail-agent enrol --ec2-identity`), once per instance
    #[cfg_attr(feature = "clap", arg(long, value_parser = ["ec2"], requires = "ec2_accounts"))]
    #[serde(default)]
    pub bind: Option<String>,
    /// With --bind ec2: an AWS account whose instances may enrol (repeatable)
    #[cfg_attr(feature = "clap", arg(long = "account", value_name = "ID", requires = "bind"))]
    #[serde(default, deserialize_with = "crate::ops::input::one_or_many")]
    pub ec2_accounts: Vec<String>,
}

fn default_lifetime() -> String {
    "7d".into()
}

/// An enrolment secret just made, with the secret itself, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct NewEnrolmentSecret {
    #[serde(rename = "enrollment")]
    pub enrolment: EnrolmentSecret,
    pub secret: String,
}

impl EnrolmentSecretRequest {
    /// A request with only the required parts; the guards empty.
    pub fn new(uses: Option<i64>, unlimited: bool, expires: &str) -> EnrolmentSecretRequest {
        EnrolmentSecretRequest {
            uses,
            unlimited,
            expires: expires.into(),
            labels: Vec::new(),
            template: None,
            allowed_from: Vec::new(),
            expected: None,
            bind: None,
            ec2_accounts: Vec::new(),
        }
    }

    /// The guard it asks for, checked: real networks, account IDs of 12
    /// digits, a binding that names its accounts (and only then accounts).
    fn guard(&self) -> OpResult<EnrolmentGuard> {
        let networks = parse_networks(&self.allowed_from)?;
        let mut accounts: Vec<String> =
            honeytrail_core::net::spaced_items(&self.ec2_accounts).map(str::to_string).collect();
        accounts.sort();
        accounts.dedup();
        if let Some(bad) = accounts.iter().find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit())) {
            return Err(OpError::invalid(format!("{bad:?} is not an AWS account ID (12 digits)")));
        }
        match self.bind.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
            None if accounts.is_empty() => {}
            None => {
                return Err(OpError::invalid("EC2 accounts are given only with a binding to EC2")
                    .with_cli_hint("--bind ec2 --account ID"))
            }
            Some("ec2") if accounts.is_empty() => {
                return Err(OpError::invalid(
                    "a secret bound to EC2 names the AWS accounts whose instances may enrol: anyone can launch an instance in an account of their own",
                )
                .with_cli_hint("--account 123456789012"))
            }
            Some("ec2") => {}
            Some(other) => {
                return Err(OpError::invalid(format!("cannot bind an enrolment to {other:?}; the binding there is: ec2")))
            }
        }
        Ok(EnrolmentGuard {
            allowed_from: networks.iter().map(ToString::to_string).collect(),
            expected: self.expected,
            ec2_accounts: accounts,
        })
    }
}

impl Ops {
    /// Makes an enrolment secret, shown once; stored hashed.
    pub async fn create_enrolment(&self, actor: &Actor, r: &EnrolmentSecretRequest) -> OpResult<NewEnrolmentSecret> {
        actor.require(Permission::Administer)?;
        let uses = match (r.uses, r.unlimited) {
            (Some(n), false) => Some(n),
            (None, true) => None,
            _ => {
                return Err(OpError::invalid(
                    "say how many hosts may enrol with it: a number of uses, or unlimited (until it expires)",
                )
                .with_cli_hint("--uses N or --unlimited"))
            }
        };
        let lifetime = parse_lifetime(&r.expires)?;
        // Each entry may hold several labels, as a form field does.
        let mut labels = Labels::default();
        for entry in &r.labels {
            labels.extend(honeytrail_core::parse_label_text(entry)?);
        }
        let guard = r.guard()?;
        if !guard.ec2_accounts.is_empty() {
            self.identity_keys()?;
        }
        let mut detail = format!(
            "{}, expires in {}",
            uses.map(|u| format!("{u} use(s)")).unwrap_or_else(|| "unlimited uses".into()),
            r.expires.trim()
        );
        if !guard.allowed_from.is_empty() {
            detail.push_str(&format!(", from {}", guard.allowed_from.join(" ")));
        }
        if let Some(n) = guard.expected {
            detail.push_str(&format!(", {n} host(s) expected"));
        }
        if !guard.ec2_accounts.is_empty() {
            detail.push_str(&format!(", bound to EC2 in {}", guard.ec2_accounts.join(" ")));
        }
        let store = self.store.audited(AuditRecord {
            actor: actor.name.clone(),
            action: "enrollment.create".into(),
            target: "enrolment secret".into(),
            detail: Some(detail),
            from: Some(actor.from.clone()),
        });
        let template = r.template.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let (made, secret) =
            store.create_enrolment(uses, Utc::now() + lifetime, &labels, template, &guard, &actor.name).await?;
        Ok(NewEnrolmentSecret { enrolment: made, secret: secret.expose().to_string() })
    }

    /// AWS's certificates for instance identity documents, from
    /// `fleet.ec2_identity_certificates`.
    pub(crate) fn identity_keys(&self) -> OpResult<Arc<crate::identity::IdentityKeys>> {
        let Some(path) = &self.config.fleet.ec2_identity_certificates else {
            return Err(OpError::invalid(
                "binding enrolments to EC2 needs AWS's identity certificates: save the RSA certificates of your regions \
                 (EC2 documentation, \"instance identity documents\") in one PEM file and set \
                 fleet.ec2_identity_certificates (HONEYTRAIL_FLEET_EC2_IDENTITY_CERTIFICATES)",
            ));
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| OpError::invalid(format!("fleet.ec2_identity_certificates {}: {e}", path.display())))?;
        let stamp = crate::context::FileStamp::new(path, &meta);
        if let Some(keys) = self.signals().identity_keys.get(&stamp) {
            return Ok(keys);
        }
        let keys = Arc::new(crate::identity::IdentityKeys::load(path).map_err(OpError::invalid)?);
        self.signals().identity_keys.put(stamp, keys.clone());
        Ok(keys)
    }

    pub async fn enrolments(&self, actor: &Actor) -> OpResult<Vec<EnrolmentSecret>> {
        actor.require(Permission::Administer)?;
        Ok(self.store.enrolments().await?)
    }

    pub async fn revoke_enrolment(&self, actor: &Actor, id: i64) -> OpResult<EnrolmentSecret> {
        actor.require(Permission::Administer)?;
        Ok(self
            .audited(actor, "enrollment.revoke", &format!("enrolment secret #{id}"), None)
            .revoke_enrolment(id)
            .await?)
    }
}

impl Ops {
    /// Adds a placement template, or replaces the one of that name.
    pub async fn put_template(&self, actor: &Actor, t: PlacementTemplate) -> OpResult<PlacementTemplate> {
        actor.require(Permission::Administer)?;
        t.validate()?;
        let detail = format!("{} at {}", t.format, t.path);
        Ok(self.audited(actor, "template.put", &t.name, Some(&detail)).put_template(&t, &actor.name).await?)
    }

    pub async fn templates(&self, actor: &Actor) -> OpResult<Vec<PlacementTemplate>> {
        actor.require(Permission::Read)?;
        Ok(self.store.templates().await?)
    }

    pub async fn template(&self, actor: &Actor, name: &str) -> OpResult<PlacementTemplate> {
        actor.require(Permission::Read)?;
        Ok(self.store.template(name).await?)
    }

    pub async fn remove_template(&self, actor: &Actor, name: &str) -> OpResult<()> {
        actor.require(Permission::Administer)?;
        Ok(self.audited(actor, "template.remove", name, None).remove_template(name).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_lifetime;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("7d").unwrap(), chrono::Duration::days(7));
        assert_eq!(parse_lifetime("30m").unwrap(), chrono::Duration::minutes(30));
        assert_eq!(parse_lifetime(" 2w ").unwrap(), chrono::Duration::weeks(2));
        for bad in ["", "7", "d", "0d", "-1d", "7 days", "1y", "99999999999999999999d", "9999999999999999w"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}

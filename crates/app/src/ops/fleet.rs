//! Fleet enrolment: the secrets hosts present to ask for their own key.

use std::sync::Arc;

use chrono::{Duration, Utc};
use honeytrail_core::access::Permission;
use honeytrail_core::net::parse_networks;
use honeytrail_core::template::PlacementTemplate;
use honeytrail_core::{parse_labels, Labels};
use honeytrail_store::{AuditRecord, EnrolmentSecret, Guard};

use crate::{Actor, OpError, OpResult, Ops};

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

/// What an enrolment secret allows.
#[derive(Debug, Clone)]
pub struct EnrolmentSecretRequest {
    /// How many hosts may enrol; `None` only with `unlimited`.
    pub uses: Option<i64>,
    pub unlimited: bool,
    /// How long it lives, e.g. `7d`.
    pub expires: String,
    /// `name=value` labels for the tokens handed out through it.
    pub labels: Vec<String>,
    /// The placement template the hosts use; it must exist.
    pub template: Option<String>,
    /// Networks (CIDR, or single addresses) hosts enrol from; an enrolment
    /// from elsewhere is refused and raises an incident. Empty: anywhere.
    pub allowed_from: Vec<String>,
    /// How many hosts are expected; each enrolment beyond it raises an
    /// incident on the key it got.
    pub expected: Option<i64>,
    /// `Some("ec2")` binds the secret to EC2 instances of `ec2_accounts`.
    pub bind: Option<String>,
    /// The AWS accounts (12 digits) whose instances may enrol when bound.
    pub ec2_accounts: Vec<String>,
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
    fn guard(&self) -> OpResult<Guard> {
        let networks = parse_networks(&self.allowed_from)?;
        let mut accounts: Vec<String> = self
            .ec2_accounts
            .iter()
            .flat_map(|a| a.split(','))
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
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
        Ok(Guard {
            allowed_from: networks.iter().map(ToString::to_string).collect(),
            expected: self.expected,
            ec2_accounts: accounts,
        })
    }
}

impl Ops {
    /// Makes an enrolment secret, shown once; stored hashed.
    pub async fn create_enrolment(
        &self,
        actor: &Actor,
        r: EnrolmentSecretRequest,
    ) -> OpResult<(EnrolmentSecret, String)> {
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
        let labels: Labels = parse_labels(&r.labels)?;
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
        Ok((made, secret.expose().to_string()))
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

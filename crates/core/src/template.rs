//! Placement templates: which bait goes where on an enrolled host.
//!
//! A path is absolute (`/opt/app/.env`) or starts with `~/`, meaning the
//! same file in the home directory of every local user who has one and a
//! login shell. Templates are validated here so the server, the command
//! line and the agent agree on what is acceptable.

use serde::{Deserialize, Serialize};

use crate::bait::Format;
use crate::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementTemplate {
    pub name: String,
    /// A bait format name (`aws-credentials`, `dotenv`, …).
    pub format: String,
    pub path: String,
    /// The profile or environment name the bait uses; default: the server's.
    pub profile: Option<String>,
    /// The file's owner; default: the home directory's user, or root.
    pub owner: Option<String>,
    /// The file's mode, e.g. 0o600.
    pub mode: u32,
    /// What the host gets: a long-lived key (the default) or short-lived
    /// session credentials from the honey role, refreshed before they expire.
    #[serde(default, skip_serializing_if = "Credential::is_key")]
    pub credential: Credential,
}

/// The kind of credential a template places.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    /// An IAM user's access key (`AKIA…`), from the fleet's key pool.
    #[default]
    Key,
    /// STS session credentials (`ASIA…` and a session token) of the honey
    /// role, as an instance role's cache or `aws sso` leaves them; the
    /// server refreshes them on heartbeats before they expire.
    Session,
}

impl Credential {
    pub fn is_key(&self) -> bool {
        *self == Credential::Key
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Credential::Key => "key",
            Credential::Session => "session",
        }
    }
}

impl std::str::FromStr for Credential {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Credential, Invalid> {
        match s.trim() {
            "key" => Ok(Credential::Key),
            "session" => Ok(Credential::Session),
            other => Err(Invalid(format!("credential {other:?}: use key or session"))),
        }
    }
}

/// The templates a new installation starts with.
pub fn shipped() -> Vec<PlacementTemplate> {
    vec![
        PlacementTemplate {
            name: "server".into(),
            format: "aws-credentials".into(),
            path: "/root/.aws/credentials".into(),
            profile: Some("prod".into()),
            owner: Some("root".into()),
            mode: 0o600,
            credential: Credential::Key,
        },
        PlacementTemplate {
            name: "laptop".into(),
            format: "aws-credentials".into(),
            path: "~/.aws/credentials".into(),
            profile: Some("prod".into()),
            owner: None,
            mode: 0o600,
            credential: Credential::Key,
        },
    ]
}

fn simple_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !s.starts_with(['-', '.'])
}

impl PlacementTemplate {
    /// Checks every field; the message names the field and what is allowed.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !simple_name(&self.name) {
            return Err(Invalid(format!(
                "template name {:?}: 1–64 letters, digits, - _ . (not starting with - or .)",
                self.name
            )));
        }
        let format = self.format.parse::<Format>()?;
        if format.session_only() && self.credential != Credential::Session {
            return Err(Invalid(format!(
                "format {format} holds session credentials only: give the template credential session"
            )));
        }
        let rest = match self.path.strip_prefix("~/") {
            Some(rest) => rest,
            None if self.path.starts_with('/') => &self.path[1..],
            None => {
                return Err(Invalid(format!(
                    "path {:?}: give an absolute path, or ~/… for the same file in every user's home",
                    self.path
                )))
            }
        };
        if rest.is_empty()
            || rest.ends_with('/')
            || rest.split('/').any(|c| c.is_empty() || c == "." || c == "..")
            || crate::encoding::has_hidden(&self.path)
            || self.path.len() > 1024
        {
            return Err(Invalid(format!(
                "path {:?}: a file, without empty, . or .. components or control characters",
                self.path
            )));
        }
        if let Some(p) = &self.profile {
            if !simple_name(p) {
                return Err(Invalid(format!("profile {p:?}: letters, digits, - _ .")));
            }
        }
        if let Some(o) = &self.owner {
            let ok = !o.is_empty()
                && o.len() <= 32
                && o.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
                && !o.starts_with('-');
            if !ok {
                return Err(Invalid(format!("owner {o:?} is not a user name")));
            }
        }
        if self.mode & !0o777 != 0 || self.mode & 0o002 != 0 {
            return Err(Invalid(format!("mode {:o}: at most 777, and not writable by everyone", self.mode)));
        }
        Ok(())
    }

    /// Whether the path is per user (`~/…`).
    pub fn per_user(&self) -> bool {
        self.path.starts_with("~/")
    }
}

/// Parses a mode written in octal: `600`, `0640`, `0o600`.
pub fn parse_mode(raw: &str) -> Result<u32, Invalid> {
    let digits = raw.trim().trim_start_matches("0o");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| Invalid(format!("mode {raw:?} is not an octal mode like 600")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(path: &str) -> PlacementTemplate {
        PlacementTemplate { path: path.into(), ..shipped()[1].clone() }
    }

    #[test]
    fn shipped_templates_are_valid() {
        for s in shipped() {
            s.validate().unwrap();
        }
        assert!(shipped()[1].per_user() && !shipped()[0].per_user());
    }

    #[test]
    fn paths_owners_and_modes_are_checked() {
        for good in ["~/.aws/credentials", "/opt/app/.env", "~/work/app/.env"] {
            t(good).validate().unwrap();
        }
        for bad in
            ["", "~", "~/", "relative/.env", "/", "/opt/../etc/shadow", "~/./x", "/opt//x", "/opt/app/", "/a\n/b"]
        {
            assert!(t(bad).validate().is_err(), "{bad:?}");
        }
        let mut x = t("/opt/app/.env");
        x.mode = 0o666;
        assert!(x.validate().is_err(), "world-writable");
        x.mode = 0o640;
        x.owner = Some("root; rm".into());
        assert!(x.validate().is_err());
        x.owner = Some("deploy".into());
        x.format = "word-doc".into();
        assert!(x.validate().is_err());
        assert_eq!(parse_mode("600").unwrap(), 0o600);
        assert_eq!(parse_mode("0o640").unwrap(), 0o640);
        assert!(parse_mode("800").is_err() && parse_mode("7777").is_err());
    }
}

//! Who may do what: roles and the permissions they carry.
//!
//! `viewer` reads everything a responder sees; `responder` also changes
//! incidents, tokens, placements and tests channels; `admin` also manages
//! users, channels, routes and runbooks and reads the audit log; `employee`
//! only asks "what is this?" about a credential they found.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Employee,
    Viewer,
    Responder,
    Admin,
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Report a found credential (the employee page).
    Lookup,
    /// Read incidents, tokens, placements, channels, deliveries.
    Read,
    /// Change incidents, tokens, placements; render bait; test channels; retry deliveries.
    Respond,
    /// Users, API tokens of others, channels, routes, runbooks, the audit log.
    Administer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Employee, Role::Viewer, Role::Responder, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Employee => "employee",
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Admin => "admin",
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        match p {
            Permission::Lookup => true,
            Permission::Read => self != Role::Employee,
            Permission::Respond => matches!(self, Role::Responder | Role::Admin),
            Permission::Administer => self == Role::Admin,
        }
    }

    /// Whether a token of this role may be given by a user of `holder`'s role
    /// (never more than the user has).
    pub fn within(self, holder: Role) -> bool {
        self == holder || holder == Role::Admin || (holder == Role::Responder && self != Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = crate::Invalid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| crate::Invalid(format!("unknown role {s:?}; use admin, responder, viewer or employee")))
    }
}

/// Checks a user name: 1–64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_user_name(name: &str) -> Result<(), crate::Invalid> {
    let ok =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(crate::Invalid(format!("user name {name:?} is not valid: use 1–64 letters, digits, '.', '_', '-' or '@'")))
    }
}

/// The least length of a password a person chooses.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Checks a password a person chooses: long enough, not the user name.
pub fn check_new_password(user: &str, password: &str) -> Result<(), crate::Invalid> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(crate::Invalid(format!("choose a password of at least {MIN_PASSWORD_CHARS} characters")));
    }
    if password.eq_ignore_ascii_case(user) {
        return Err(crate::Invalid::new("the password must not be the user name"));
    }
    Ok(())
}

/// A user of the web UI and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// Set until they chose their own password (after a one-time one).
    pub must_change_password: bool,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl User {
    /// Someone a trusted reverse proxy signed in, by the name it gives: an
    /// employee with no account of their own here.
    pub fn signed_in_by_proxy(name: &str) -> User {
        User {
            id: 0,
            name: format!("{name} (sso)"),
            role: Role::Employee,
            must_change_password: false,
            disabled: false,
            created_at: Utc::now(),
        }
    }
}

/// An API token as listed: never the token itself, only what it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: i64,
    /// The user it acts as.
    pub user: String,
    /// What it is for.
    pub name: String,
    /// The role in force with it: never more than its user's.
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One line of the audit log: who did what to which thing, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
    pub from: Option<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_names_and_passwords_follow_the_policy() {
        use super::{check_new_password, check_user_name};
        assert!(check_user_name("maria.lopez@example.com").is_ok());
        for bad in ["", "a b", "<script>", &"x".repeat(65)] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_new_password("maria", "short").is_err());
        assert!(check_new_password("maria-lopez-1", "MARIA-LOPEZ-1").is_err());
        assert!(check_new_password("maria", "correct horse battery").is_ok());
    }

    use super::*;

    #[test]
    fn roles_nest_except_employees() {
        assert!(Role::Viewer.allows(Permission::Read) && !Role::Viewer.allows(Permission::Respond));
        assert!(Role::Responder.allows(Permission::Respond) && !Role::Responder.allows(Permission::Administer));
        assert!(Role::Admin.allows(Permission::Administer));
        assert!(Role::Employee.allows(Permission::Lookup) && !Role::Employee.allows(Permission::Read));
        assert!(Role::Viewer.within(Role::Responder) && !Role::Admin.within(Role::Responder));
        assert!(!Role::Responder.within(Role::Viewer));
        assert_eq!("Admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
    }
}

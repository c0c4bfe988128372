//! Who may do what: roles and the permissions they carry.
//!
//! `viewer` reads everything a responder sees; `responder` also changes
//! incidents, tokens, placements and tests channels; `admin` also manages
//! users, channels, routes and runbooks and reads the audit log; `employee`
//! only asks "what is this?" about a credential they found.

use std::fmt;

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
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown role {s:?}; use admin, responder, viewer or employee"))
    }
}

#[cfg(test)]
mod tests {
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

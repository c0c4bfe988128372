//! Who is acting: every operation takes one and checks its permission.

use honeytrail_core::access::{Permission, Role};

use crate::error::OpError;

/// The acting identity of an operation: a signed-in user of the server
/// (with the role in force for this request), or the person at the command
/// line of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The name recorded in the audit log, incident histories and custody.
    pub name: String,
    /// The role in force: the user's, or the API token's (never more).
    pub role: Role,
    /// Where the request came from: a peer address, or `cli on HOST`.
    pub from: String,
}

impl Actor {
    /// Someone at this host's command line. Whoever can read the data key
    /// and the database can do anything, so the command line acts as admin.
    pub fn command_line(name: impl Into<String>) -> Actor {
        Actor { name: name.into(), role: Role::Admin, from: format!("cli on {}", crate::context::hostname()) }
    }

    /// honeytrail itself (first start, watchers, the dispatcher).
    pub fn system(what: &str) -> Actor {
        Actor { name: what.to_string(), role: Role::Admin, from: "honeytrail".into() }
    }

    /// Refuses unless the role in force allows `p`.
    pub fn require(&self, p: Permission) -> Result<(), OpError> {
        if self.role.allows(p) {
            return Ok(());
        }
        let need = match p {
            Permission::Lookup => "any signed-in user",
            Permission::Read => "a viewer, responder or admin",
            Permission::Respond => "a responder or admin",
            Permission::Administer => "an admin",
        };
        Err(OpError::forbidden(format!("{} is a {}; this needs {need}", self.name, self.role)))
    }
}

//! The error of every rule in the core that refuses a value.

/// A value a rule refuses, with a message that names the value and what
/// would be accepted. Messages never name command-line flags: the front
/// doors add their own hints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(message: impl Into<String>) -> Invalid {
        Invalid(message.into())
    }
}

/// The message, to read and match on.
impl std::ops::Deref for Invalid {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

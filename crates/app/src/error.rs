//! The one error every operation returns. The command line prints it (with
//! its hint for the command line, last); the API maps its kind to a status
//! code and a stable `code`; the web UI shows the message without the hint.

use std::fmt;

use honeytrail_store::StoreError;

/// What went wrong, in the terms a front door answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpErrorKind {
    /// The thing named does not exist (HTTP 404).
    NotFound,
    /// The request itself is wrong: a bad value, a missing field (400).
    Invalid,
    /// The request fits, but the current state refuses it (409).
    Conflict,
    /// The acting identity may not do this (403).
    Forbidden,
    /// AWS or an alert channel refused or could not be reached (502).
    Upstream,
    /// The database cannot be used right now; retrying may help (503).
    Unavailable,
    /// Too many of these too fast; wait and try again (429).
    Throttled,
    /// The credential given (a password, a signature) is wrong (401).
    Unauthenticated,
}

/// An operation's failure: its kind, a stable machine-readable code, a
/// message that names the thing and the way out, and, for the command line
/// only, a hint naming the command that helps.
#[derive(Debug, Clone)]
pub struct OpError {
    pub kind: OpErrorKind,
    pub code: &'static str,
    pub message: String,
    /// What to run at the command line about it; only the command line
    /// shows it. Set with [`OpError::with_cli_hint`], the one way hints are
    /// made (store errors get theirs in the conversion below).
    pub cli_hint: Option<String>,
    /// For [`OpErrorKind::Throttled`]: when trying again can work.
    pub retry_after_seconds: Option<u64>,
}

impl OpError {
    pub fn new(kind: OpErrorKind, code: &'static str, message: impl Into<String>) -> OpError {
        OpError { kind, code, message: message.into(), cli_hint: None, retry_after_seconds: None }
    }

    pub fn invalid(message: impl Into<String>) -> OpError {
        OpError::new(OpErrorKind::Invalid, "invalid_request", message)
    }

    /// "`what` not found", with the command that lists such things as the
    /// command-line hint: one sentence, one hint.
    pub fn not_found(what: impl fmt::Display) -> OpError {
        let what = what.to_string();
        let err = OpError::new(OpErrorKind::NotFound, "not_found", format!("{what} not found"));
        match list_hint(&what) {
            Some(h) => err.with_cli_hint(h),
            None => err,
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> OpError {
        OpError::new(OpErrorKind::Conflict, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> OpError {
        OpError::new(OpErrorKind::Forbidden, "forbidden", message)
    }

    pub fn upstream(code: &'static str, message: impl Into<String>) -> OpError {
        OpError::new(OpErrorKind::Upstream, code, message)
    }

    /// Adds the command-line hint ("`honeytrail incident list` shows them").
    pub fn with_cli_hint(mut self, hint: impl Into<String>) -> OpError {
        self.cli_hint = Some(hint.into());
        self
    }

    /// The message as the command line prints it: the hint last.
    pub fn for_cli(&self) -> String {
        match &self.cli_hint {
            Some(h) => format!("{} ({h})", self.message),
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.for_cli())
    }
}

impl std::error::Error for OpError {}

/// The command that lists things like `what` ("incident #7", "agent #3"),
/// by the name it starts with; the more specific names first.
fn list_hint(what: &str) -> Option<String> {
    const LISTS: [(&str, &str); 16] = [
        ("incident", "`honeytrail incident list --all` shows them"),
        ("token", "`honeytrail token list --state all` shows them"),
        ("access key", "`honeytrail token list --state all` shows them"),
        ("placement template", "`honeytrail template list` shows them"),
        ("placement", "`honeytrail placement list --all` shows them"),
        ("template", "`honeytrail template list` shows them"),
        ("channel", "`honeytrail channel list` shows them"),
        ("route", "`honeytrail route list` shows them"),
        ("user", "`honeytrail user list` shows them"),
        ("API token", "`honeytrail user tokens` shows them"),
        ("delivery", "`honeytrail delivery list --state pending` shows them"),
        ("action run", "`honeytrail action runs` shows them"),
        ("action", "`honeytrail action list` shows them"),
        ("agent", "`honeytrail agents` shows them"),
        ("canary account", "`honeytrail account list` shows them"),
        ("enrolment secret", "`honeytrail enrol list` shows them"),
    ];
    LISTS.iter().find(|(prefix, _)| what.starts_with(prefix)).map(|(_, h)| h.to_string())
}

/// What to run at the command line about a store error, if anything.
fn store_hint(e: &StoreError) -> Option<String> {
    match e {
        StoreError::NotFound(what) => list_hint(what),
        StoreError::Duplicate { access_key_id, .. } => {
            Some(format!("`honeytrail token show {access_key_id}` shows it"))
        }
        StoreError::ImportDuplicates { .. } => Some("pass --skip-existing to import the rest".into()),
        StoreError::NoSecretKey => Some("run `honeytrail init`, or set HONEYTRAIL_SECRET_KEY".into()),
        StoreError::PoolEmpty => Some("the server refills it in the background; retry in a minute".into()),
        _ => None,
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> OpError {
        let hint = store_hint(&e);
        let err = match e {
            StoreError::NotFound(what) => OpError::not_found(what),
            StoreError::Refused(why) => OpError::conflict("conflict", why),
            e @ (StoreError::Duplicate { .. } | StoreError::ImportDuplicates { .. }) => {
                OpError::conflict("conflict", e.to_string())
            }
            e @ StoreError::PoolEmpty => OpError::new(OpErrorKind::Unavailable, "pool_empty", e.to_string()),
            e @ StoreError::NoSecretKey => OpError::new(OpErrorKind::Unavailable, "no_data_key", e.to_string()),
            other => {
                tracing::error!(error = %other, "store error");
                return OpError::new(
                    OpErrorKind::Unavailable,
                    "store_unavailable",
                    "the database cannot be used now; retry",
                )
                .with_cli_hint(other.to_string());
            }
        };
        match hint {
            Some(h) => err.with_cli_hint(h),
            None => err,
        }
    }
}

impl From<honeytrail_aws::AwsError> for OpError {
    fn from(e: honeytrail_aws::AwsError) -> OpError {
        OpError::upstream("aws_failed", e.to_string())
    }
}

impl From<honeytrail_core::Invalid> for OpError {
    fn from(e: honeytrail_core::Invalid) -> OpError {
        OpError::invalid(e.to_string())
    }
}

/// For the long-running paths that still speak `anyhow`: a store error keeps
/// its kind, anything else is an upstream failure with its whole cause chain.
impl From<anyhow::Error> for OpError {
    fn from(e: anyhow::Error) -> OpError {
        match e.downcast::<StoreError>() {
            Ok(s) => s.into(),
            Err(e) => match e.downcast::<OpError>() {
                Ok(op) => op,
                Err(e) => OpError::upstream("failed", format!("{e:#}")),
            },
        }
    }
}

pub type OpResult<T> = Result<T, OpError>;

//! The pool of canary accounts: which account a new honey user goes to.
//!
//! IAM holds at most 5 000 users in an account, so a fleet of tens of
//! thousands of keys lives in several accounts. Each new user goes to the
//! account with the most room left; a pool without room refuses, naming the
//! fix, rather than let AWS refuse half-way through a batch.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Invalid;

/// Users an account takes when `--max-users` is not given: IAM's quota of
/// 5 000 users, less a tenth for the account's own users and headroom.
pub const DEFAULT_MAX_USERS: i64 = 4_500;

/// IAM's quota of users in one account.
pub const IAM_USER_QUOTA: i64 = 5_000;

/// A canary account in the pool, with what it holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolAccount {
    pub name: String,
    /// The 12-digit number STS answered when the account was added.
    pub account_id: String,
    /// The role honeytrail assumes to reach it, if by role.
    pub role_arn: Option<String>,
    /// The profile honeytrail uses to reach it, if by profile.
    pub profile: Option<String>,
    pub max_users: i64,
    pub added_at: DateTime<Utc>,
    pub added_by: String,
    /// Honey users with a live key in it.
    pub users: i64,
    /// Live keys in it (minted or imported).
    pub keys: i64,
}

impl PoolAccount {
    /// How many more honey users it takes.
    pub fn room(&self) -> i64 {
        (self.max_users - self.users).max(0)
    }
}

/// Checks an account's name: what the command line and the API call it.
pub fn validate_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "\"{}\" is not an account name: use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit",
            name.escape_debug()
        )))
    }
}

/// Checks a profile name: it is shown in lists and on terminals, so
/// printable ASCII without spaces, at most 64 characters.
pub fn validate_profile(profile: &str) -> Result<(), Invalid> {
    if !profile.is_empty() && profile.len() <= 64 && profile.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(Invalid(format!(
            "\"{}\" is not a profile name: use 1 to 64 printable characters without spaces",
            profile.escape_debug()
        )))
    }
}

/// Checks `--max-users`.
pub fn validate_max_users(n: i64) -> Result<(), Invalid> {
    if (1..=IAM_USER_QUOTA).contains(&n) {
        Ok(())
    } else {
        Err(Invalid(format!("--max-users must be between 1 and {IAM_USER_QUOTA} (IAM's quota of users in an account)")))
    }
}

/// The pool could not take what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the canary-account pool is full: {wanted} new honey user(s) asked for, room for {room} in {accounts} account(s) ({detail}); add an account (honeytrail account add NAME --role-arn ARN) or raise its --max-users")]
pub struct PoolFull {
    pub wanted: usize,
    pub room: i64,
    pub accounts: usize,
    pub detail: String,
}

/// Where each of `count` new users goes: indexes into `accounts`, each to
/// the account with the most room left at that point (ties to the first),
/// so a batch spreads evenly and fills the emptiest accounts first.
pub fn spread(accounts: &[PoolAccount], count: usize) -> Result<Vec<usize>, PoolFull> {
    let mut room: Vec<i64> = accounts.iter().map(PoolAccount::room).collect();
    let total: i64 = room.iter().sum();
    if total < count as i64 {
        let detail =
            accounts.iter().map(|a| format!("{} {}/{}", a.name, a.users, a.max_users)).collect::<Vec<_>>().join(", ");
        return Err(PoolFull {
            wanted: count,
            room: total,
            accounts: accounts.len(),
            detail: if detail.is_empty() { "no account".into() } else { detail },
        });
    }
    let mut picks = Vec::with_capacity(count);
    for _ in 0..count {
        let (at, _) = room.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))).expect("room > 0");
        room[at] -= 1;
        picks.push(at);
    }
    Ok(picks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, users: i64, max_users: i64) -> PoolAccount {
        PoolAccount {
            name: name.into(),
            account_id: "111111111111".into(),
            role_arn: None,
            profile: None,
            max_users,
            added_at: Utc::now(),
            added_by: "test".into(),
            users,
            keys: users,
        }
    }

    #[test]
    fn new_users_go_where_there_is_most_room() {
        let pool = [account("a", 8, 10), account("b", 0, 10), account("c", 5, 10)];
        let picks = spread(&pool, 7).unwrap();
        let count = |i| picks.iter().filter(|&&p| p == i).count();
        // b takes five to reach c's level, then b and c share the rest.
        assert_eq!((count(0), count(1), count(2)), (0, 6, 1));
        assert_eq!(picks[0], 1);
    }

    #[test]
    fn a_full_pool_refuses_and_names_the_fix() {
        let pool = [account("a", 9, 10), account("b", 10, 10)];
        assert_eq!(spread(&pool, 1).unwrap(), vec![0]);
        let full = spread(&pool, 2).unwrap_err();
        assert_eq!(full.room, 1);
        let text = full.to_string();
        assert!(text.contains("a 9/10, b 10/10") && text.contains("honeytrail account add"), "{text}");
        assert!(spread(&[], 1).unwrap_err().to_string().contains("no account"));
    }

    #[test]
    fn names_and_limits_are_checked() {
        assert!(validate_name("prod-canary_1").is_ok());
        for bad in ["", "-x", "a b", "a/b", "\u{202e}x", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_profile("canary-east").is_ok());
        for bad in ["", "a b", "x\u{1b}[31m", "\u{202e}p", &"p".repeat(65)] {
            assert!(validate_profile(bad).is_err(), "{bad:?}");
        }
        assert!(validate_max_users(5_000).is_ok());
        assert!(validate_max_users(0).is_err() && validate_max_users(5_001).is_err());
    }
}

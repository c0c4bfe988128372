//! Stealth check: what an intruder can learn about a honey key before and
//! after using it, and whether any of it gives the key away.

use std::fmt;

use serde::Serialize;

use crate::keyid::{self, AccountDecode};
use crate::naming;

const VENDOR_ACCOUNTS: &str = include_str!("../data/canary-vendor-accounts.txt");

/// Public canary-vendor accounts: `(account, vendor)`.
pub fn vendor_accounts() -> impl Iterator<Item = (&'static str, &'static str)> {
    VENDOR_ACCOUNTS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
}

/// The vendor that mints keys in `account`, if it is a known public one.
pub fn vendor_of(account: &str) -> Option<&'static str> {
    vendor_accounts().find(|(a, _)| *a == account).map(|(_, v)| v)
}

/// How bad a finding is. Ordered: the worst finding decides the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    /// Worth knowing, not a flaw of this key.
    Note,
    Warn,
    Fail,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Pass => "pass",
            Level::Note => "note",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// Stable identifier for scripts: `account-decoded`, `vendor-account`, …
    pub code: &'static str,
    pub message: String,
}

/// What the check knows about the key.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    pub access_key_id: &'a str,
    pub iam_user_name: Option<&'a str>,
    /// The IAM path of the user (`/` unless someone chose otherwise).
    pub iam_path: Option<&'a str>,
    /// The account the key is known to live in, when registered.
    pub account_id: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub access_key_id: String,
    pub decoded_account: Option<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// The worst level among findings; `Note`s alone still pass.
    pub fn verdict(&self) -> Level {
        match self.findings.iter().map(|f| f.level).max().unwrap_or(Level::Pass) {
            Level::Note => Level::Pass,
            other => other,
        }
    }
}

pub fn check(subject: &Subject<'_>) -> Report {
    let mut findings = Vec::new();
    let mut push = |level, code, message: String| findings.push(Finding { level, code, message });
    let key = subject.access_key_id;
    let decoded = keyid::decode_account(key);
    let decoded_account = match &decoded {
        AccountDecode::Account(a) => Some(a.clone()),
        _ => None,
    };

    match &decoded {
        AccountDecode::Account(account) => {
            if let Some(vendor) = vendor_of(account) {
                push(Level::Fail, "vendor-account", format!(
                    "key ID decodes to account {account}, a public canary account of {vendor}; secret scanners such as trufflehog name such keys as canaries without using them, so a careful intruder will leave it alone. Mint keys in your own canary account instead."
                ));
            } else {
                push(
                    Level::Pass,
                    "account-decoded",
                    format!("key ID decodes to account {account}, which is not a known canary-vendor account"),
                );
            }
            if let Some(registered) = subject.account_id.filter(|r| *r != account) {
                push(Level::Warn, "account-mismatch", format!(
                    "the key ID decodes to account {account} but the token is registered for account {registered}; check the import"
                ));
            }
        }
        AccountDecode::OldFormat => push(
            Level::Pass,
            "account-old-format",
            format!("{key} is an older-generation key ID; the account number cannot be read from it"),
        ),
        AccountDecode::NotDecodable(why) => push(
            Level::Warn,
            "unusual-key-id",
            format!(
                "{key} does not have the shape of a current AWS access key ID ({why}); an intruder may find it odd"
            ),
        ),
    }

    match subject.iam_user_name {
        Some(name) => {
            if let Some(word) = naming::telltale_word(name) {
                push(Level::Fail, "telltale-name", format!(
                    "IAM user name {name:?} contains {word:?}; rotate the key onto a user with a plausible service-account name"
                ));
            } else if let Some(why) = generated_name(name) {
                push(Level::Warn, "generated-name", format!(
                    "IAM user name {name:?} {why}: canary services make such names and honey-token hunters look for them; rotate onto a name a person would choose"
                ));
            } else {
                push(Level::Pass, "plausible-name", format!("IAM user name {name:?} has no tell-tale word"));
            }
            let arn_account = subject.account_id.or(decoded_account.as_deref()).unwrap_or("ACCOUNT");
            let path = subject.iam_path.unwrap_or("/");
            push(Level::Note, "name-visible", format!(
                "anyone holding the key sees arn:aws:iam::{arn_account}:user{path}{name} by running `aws sts get-caller-identity`, which always succeeds (and is logged); the name is the one thing they learn"
            ));
        }
        None => push(Level::Warn, "name-unknown", format!(
            "the IAM user behind {key} is not recorded, so its name cannot be checked; anyone holding the key can read it with `aws sts get-caller-identity` (record it with `token import --user-name`)"
        )),
    }

    if let Some(path) = subject.iam_path {
        if let Some(word) = naming::telltale_word(path) {
            push(
                Level::Fail,
                "telltale-path",
                format!("IAM path {path:?} contains {word:?} and shows in the user's ARN"),
            );
        } else if path != "/" {
            push(
                Level::Warn,
                "unusual-path",
                format!("IAM path {path:?} shows in the user's ARN; most service accounts use the default path /"),
            );
        }
    }

    Report { access_key_id: key.to_string(), decoded_account, findings }
}

/// Why a user name looks machine-made (a UUID, a long run of hex or of
/// random letters and digits), as canary services' names do; `None` when it
/// reads like a name a person chose.
pub(crate) fn generated_name(name: &str) -> Option<&'static str> {
    let hexish = |s: &str| s.len() >= 8 && s.chars().all(|c| c.is_ascii_hexdigit());
    let words: Vec<&str> = name.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let uuid = words.windows(5).any(|w| {
        [8, 4, 4, 4, 12]
            .iter()
            .zip(w)
            .all(|(len, part)| part.len() == *len && part.chars().all(|c| c.is_ascii_hexdigit()))
    });
    if uuid {
        return Some("holds a UUID");
    }
    if words.iter().any(|w| hexish(w) && w.len() >= 16) {
        return Some("holds a long run of hex digits");
    }
    let random = words.iter().any(|w| {
        let digits = w.chars().filter(char::is_ascii_digit).count();
        let vowels = w.chars().filter(|c| "aeiouAEIOU".contains(*c)).count();
        w.len() >= 16 && digits >= 3 && vowels * 6 < w.len()
    });
    random.then_some("looks like random letters and digits")
}

/// The IAM path inside a user ARN: `arn:aws:iam::1:user/a/b/name` → `/a/b/`.
pub fn path_of_arn(arn: &str) -> Option<String> {
    let resource = arn.split(':').nth(5)?;
    let rest = resource.strip_prefix("user")?;
    let last = rest.rfind('/')?;
    Some(rest[..=last].to_string())
}

/// The stealth check of a registered token, as `check` and the server run it.
pub fn report_for(token: &crate::Token) -> Report {
    if token.kind == crate::TokenKind::AwsDecoy {
        return crate::decoy::report_for(token);
    }
    if token.kind == crate::TokenKind::AwsSession {
        // What a tool sees of a session: its key ID (and the account in it),
        // and in its ARN the role's name, which the name checks cover.
        let role = token.iam_user_arn.as_deref().and_then(|a| a.split('/').nth(1));
        return check(&Subject {
            access_key_id: &token.access_key_id,
            iam_user_name: role,
            iam_path: None,
            account_id: token.account_id.as_deref(),
        });
    }
    let path = match (&token.iam_user_arn, token.kind) {
        (Some(arn), _) => path_of_arn(arn),
        (None, crate::TokenKind::AwsMinted) => Some("/".to_string()),
        _ => None,
    };
    check(&Subject {
        access_key_id: &token.access_key_id,
        iam_user_name: token.iam_user_name.as_deref(),
        iam_path: path.as_deref(),
        account_id: token.account_id.as_deref(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_list_is_well_formed() {
        let all: Vec<_> = vendor_accounts().collect();
        assert!(all.len() >= 20);
        for (account, vendor) in all {
            assert!(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()), "{account}");
            assert!(!vendor.is_empty());
        }
    }

    #[test]
    fn canarytokens_key_fails() {
        let r = check(&Subject { access_key_id: "AKIASP2TPHJSQH3FJRUX", ..Subject::default() });
        assert_eq!(r.verdict(), Level::Fail);
        assert!(r.findings.iter().any(|f| f.code == "vendor-account"));
    }

    #[test]
    fn a_plausible_key_passes_with_a_note() {
        let key = crate::keyid::synthesize(123456789012, 99);
        let r = check(&Subject {
            access_key_id: &key,
            iam_user_name: Some("data-etl-sync-prod"),
            iam_path: Some("/"),
            account_id: Some("123456789012"),
        });
        assert_eq!(r.verdict(), Level::Pass, "{:?}", r.findings);
        let note = r.findings.iter().find(|f| f.code == "name-visible").unwrap();
        assert!(note.message.contains("arn:aws:iam::123456789012:user/data-etl-sync-prod"), "{}", note.message);
    }

    #[test]
    fn telltale_names_paths_and_unknowns() {
        let key = crate::keyid::synthesize(123456789012, 1);
        let r = check(&Subject {
            access_key_id: &key,
            iam_user_name: Some("honeyuser"),
            iam_path: Some("/"),
            ..Subject::default()
        });
        assert_eq!(r.verdict(), Level::Fail);
        let r = check(&Subject {
            access_key_id: &key,
            iam_user_name: Some("svc-a"),
            iam_path: Some("/canaries/"),
            ..Subject::default()
        });
        assert!(r.findings.iter().any(|f| f.code == "telltale-path"));
        let r = check(&Subject {
            access_key_id: &key,
            iam_user_name: Some("svc-a"),
            iam_path: Some("/svc/"),
            ..Subject::default()
        });
        assert_eq!(r.verdict(), Level::Warn);
        let r = check(&Subject { access_key_id: "AKIAIOSFODNN7EXAMPLE", ..Subject::default() });
        assert_eq!(r.verdict(), Level::Warn, "user name unknown");
        assert!(r.findings.iter().any(|f| f.code == "account-old-format"));
    }

    #[test]
    fn machine_made_names_are_flagged_and_ordinary_ones_are_not() {
        for name in [
            "2f1c9a4e-7b3d-4e21-9c55-0a6b7d8e9f10",
            "svc-2f1c9a4e-7b3d-4e21-9c55-0a6b7d8e9f10",
            "deploy-9f86d081884c7d65",
            "x7Kq2mZ9pL4vB8nR3tW",
        ] {
            assert!(generated_name(name).is_some(), "{name}");
            let key = crate::keyid::synthesize(123456789012, 7);
            let r = check(&Subject {
                access_key_id: &key,
                iam_user_name: Some(name),
                iam_path: None,
                account_id: Some("123456789012"),
            });
            assert_eq!(r.verdict(), Level::Warn, "{name}: {r:?}");
        }
        for name in
            ["payments-s3-sync-prod", "ci-deploy-artifacts", "svc-backup-2024", "terraform-state-reader", "jenkins"]
        {
            assert_eq!(generated_name(name), None, "{name}");
        }
        // The names honeytrail mints never look machine-made.
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..2000 {
            let name = crate::naming::generate("{team}-{service}-{purpose}-{env}{n}", &mut rng).unwrap();
            assert_eq!(generated_name(&name), None, "{name}");
        }
    }

    #[test]
    fn arn_paths() {
        assert_eq!(super::path_of_arn("arn:aws:iam::123456789012:user/svc").as_deref(), Some("/"));
        assert_eq!(super::path_of_arn("arn:aws:iam::123456789012:user/a/b/svc").as_deref(), Some("/a/b/"));
        assert_eq!(super::path_of_arn("arn:aws:iam::123456789012:role/x"), None);
    }
}

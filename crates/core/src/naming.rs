//! Plausible IAM user names for honey keys.
//!
//! An intruder who runs `sts get-caller-identity` with a honey key sees the
//! IAM user's name and path, so the name must read like one of the hundreds of
//! service accounts a real company has. Names are built from a pattern whose
//! placeholders draw from word lists; any result containing a tell-tale word is
//! rejected, whatever the pattern or lists say.

use rand::seq::SliceRandom;
use rand::Rng;

/// Words (and stems: `canar` catches canary and canaries) that give a honey key away when they appear in its user name or path.
pub const TELLTALE_WORDS: &[&str] = &[
    "honey",
    "canar",
    "trap",
    "token",
    "decoy",
    "bait",
    "fake",
    "tripwire",
    "lure",
    "sting",
    "deception",
    "thinkst",
    "spacecrab",
    "spacesiren",
    "tracebit",
    "alarm",
];

/// The default pattern: e.g. `payments-s3-sync-prod`.
pub const DEFAULT_PATTERN: &str = "{team}-{service}-{purpose}-{env}";

pub(crate) const TEAMS: &[&str] = &[
    "payments",
    "billing",
    "data",
    "platform",
    "infra",
    "analytics",
    "growth",
    "search",
    "ml",
    "reporting",
    "checkout",
    "identity",
    "mobile",
    "web",
    "ops",
    "sre",
    "finance",
    "logistics",
];
const SERVICES: &[&str] = &[
    "s3",
    "rds",
    "dynamo",
    "etl",
    "airflow",
    "jenkins",
    "gitlab",
    "terraform",
    "backup",
    "artifacts",
    "metrics",
    "logs",
    "redshift",
    "athena",
    "kinesis",
    "lambda",
    "ecr",
    "glue",
];
const PURPOSES: &[&str] = &[
    "sync",
    "reader",
    "writer",
    "deploy",
    "export",
    "import",
    "uploader",
    "replicator",
    "archiver",
    "scheduler",
    "worker",
    "svc",
    "ci",
    "readonly",
    "admin",
    "automation",
];
pub(crate) const ENVS: &[&str] = &["prod", "production", "prd", "live", "staging", "stg", "legacy", "dr"];

/// Why a name or pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("IAM user name {name:?} contains the tell-tale word {word:?}; anyone holding the key can read the name with `sts get-caller-identity`, so choose a name a real service account would have")]
    Telltale { name: String, word: &'static str },
    #[error("IAM user name {name:?} is not valid: {why}")]
    Invalid { name: String, why: &'static str },
    #[error("naming pattern {pattern:?} uses unknown placeholder {{{placeholder}}}; known: {{team}} {{service}} {{purpose}} {{env}} {{n}}")]
    Placeholder { pattern: String, placeholder: String },
}

/// Returns the first tell-tale word found in `text`, case-insensitively.
pub fn telltale_word(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    TELLTALE_WORDS.iter().copied().find(|w| lower.contains(w))
}

/// Checks a user name against IAM's rules and our stealth rule.
pub fn validate_user_name(name: &str) -> Result<(), NameError> {
    let invalid = |why| Err(NameError::Invalid { name: name.to_string(), why });
    if name.is_empty() || name.len() > 64 {
        return invalid("IAM user names have 1 to 64 characters");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)) {
        return invalid("IAM allows only letters, digits and + = , . @ _ -");
    }
    if let Some(word) = telltale_word(name) {
        return Err(NameError::Telltale { name: name.to_string(), word });
    }
    Ok(())
}

/// Fills a naming pattern with random words.
pub fn generate<R: Rng + ?Sized>(pattern: &str, rng: &mut R) -> Result<String, NameError> {
    // The word lists hold no tell-tale word (a test checks), so a refusal here
    // always comes from the pattern's own literal text and retrying is useless.
    let name = fill(pattern, rng)?;
    validate_user_name(&name)?;
    Ok(name)
}

fn fill<R: Rng + ?Sized>(pattern: &str, rng: &mut R) -> Result<String, NameError> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .ok_or_else(|| NameError::Placeholder { pattern: pattern.to_string(), placeholder: after.to_string() })?;
        let placeholder = &after[..end];
        let word: String = match placeholder {
            "team" => pick(TEAMS, rng).into(),
            "service" => pick(SERVICES, rng).into(),
            "purpose" => pick(PURPOSES, rng).into(),
            "env" => pick(ENVS, rng).into(),
            "n" => rng.gen_range(1..100).to_string(),
            other => {
                return Err(NameError::Placeholder { pattern: pattern.to_string(), placeholder: other.to_string() })
            }
        };
        out.push_str(&word);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn pick<'a, R: Rng + ?Sized>(words: &[&'a str], rng: &mut R) -> &'a str {
    words.choose(rng).copied().expect("word lists are not empty")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn generated_names_are_valid_and_never_telltale() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..2000 {
            let name = generate(DEFAULT_PATTERN, &mut rng).unwrap();
            assert!(validate_user_name(&name).is_ok(), "{name}");
            assert_eq!(name.split('-').count(), 4, "{name}");
        }
    }

    #[test]
    fn word_lists_hold_no_telltale_word() {
        for list in [TEAMS, SERVICES, PURPOSES, ENVS] {
            for w in list {
                assert_eq!(telltale_word(w), None, "{w}");
            }
        }
    }

    #[test]
    fn telltale_patterns_and_names_are_refused() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(matches!(generate("honeytoken-{n}", &mut rng), Err(NameError::Telltale { word: "honey", .. })));
        assert!(matches!(validate_user_name("ci-Canary-1"), Err(NameError::Telltale { word: "canar", .. })));
        assert!(matches!(validate_user_name("svc/deploy"), Err(NameError::Invalid { .. })));
        assert!(matches!(generate("{team}-{colour}", &mut rng), Err(NameError::Placeholder { .. })));
        assert!(matches!(generate("{team", &mut rng), Err(NameError::Placeholder { .. })));
    }

    #[test]
    fn custom_patterns_fill_every_placeholder() {
        let mut rng = StdRng::seed_from_u64(3);
        let name = generate("svc-{service}{n}", &mut rng).unwrap();
        assert!(name.starts_with("svc-") && !name.contains('{'), "{name}");
    }
}

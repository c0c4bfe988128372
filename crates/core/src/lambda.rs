//! Bait in a Lambda function's environment. Lambda reserves
//! `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (it sets them to the
//! function's role), so a key a function "needs" sits under the names real
//! teams give a second key: a backup, export or archive job's.

use std::collections::BTreeMap;

/// Pairs of variable names real functions carry, in order of preference.
pub const VARIABLE_PAIRS: &[(&str, &str)] = &[
    ("BACKUP_AWS_ACCESS_KEY_ID", "BACKUP_AWS_SECRET_ACCESS_KEY"),
    ("EXPORT_AWS_ACCESS_KEY_ID", "EXPORT_AWS_SECRET_ACCESS_KEY"),
    ("S3_ARCHIVE_ACCESS_KEY_ID", "S3_ARCHIVE_SECRET_ACCESS_KEY"),
    ("REPORTING_AWS_ACCESS_KEY_ID", "REPORTING_AWS_SECRET_ACCESS_KEY"),
    ("LEGACY_AWS_ACCESS_KEY_ID", "LEGACY_AWS_SECRET_ACCESS_KEY"),
];

/// The format name of this kind of placement.
pub const FORMAT: &str = "lambda-env";

/// The first pair of names neither of which the function uses yet;
/// `None` when it uses a name of every pair.
pub fn choose_names(existing: &BTreeMap<String, String>) -> Option<(&'static str, &'static str)> {
    VARIABLE_PAIRS.iter().copied().find(|(id, secret)| !existing.contains_key(*id) && !existing.contains_key(*secret))
}

/// The placement path for a pair: `environment: ID_NAME, SECRET_NAME`.
pub fn placement_path(id: &str, secret: &str) -> String {
    format!("environment: {id}, {secret}")
}

/// The pair of names back from a placement path.
pub fn names_of(path: &str) -> Option<(&str, &str)> {
    let (id, secret) = path.strip_prefix("environment: ")?.split_once(", ")?;
    let plain = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (plain(id) && plain(secret)).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_avoid_what_the_function_has_and_round_trip() {
        let mut env = BTreeMap::new();
        assert_eq!(choose_names(&env), Some(VARIABLE_PAIRS[0]));
        env.insert("BACKUP_AWS_SECRET_ACCESS_KEY".to_string(), "x".to_string());
        assert_eq!(choose_names(&env), Some(VARIABLE_PAIRS[1]));
        for (id, secret) in VARIABLE_PAIRS {
            env.insert(id.to_string(), "x".into());
            assert!(!secret.starts_with("AWS_") && !id.starts_with("AWS_"), "Lambda reserves AWS_*");
            let path = placement_path(id, secret);
            assert_eq!(names_of(&path), Some((*id, *secret)));
        }
        assert_eq!(choose_names(&env), None);
        assert_eq!(names_of("environment: A B, C"), None);
        assert_eq!(names_of("/home/x"), None);
    }
}

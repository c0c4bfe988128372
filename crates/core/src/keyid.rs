//! AWS access key IDs: what can be read from one without asking AWS.
//!
//! A key ID is a four-character type prefix (`AKIA` for an IAM user's long-lived
//! key, `ASIA` for temporary STS credentials) followed by sixteen base32
//! characters (alphabet `A-Z2-7`), i.e. 80 bits. Public research (Aidan Steele,
//! Tal Be'ery, WithSecure Labs) showed that in the newer generation of key IDs
//! the first bit after the prefix is set and the next 40 bits are the account
//! number. Older keys (fifth character `A`–`P`, such as the `AKIAI…`/`AKIAJ…`
//! keys issued before 2019) carry no decodable account.

use std::fmt;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The longest key ID we accept when registering one. AWS documents
/// 16–128 characters for the `AccessKeyId` type.
pub const MAX_LEN: usize = 128;
pub const MIN_LEN: usize = 16;

/// The kind of identifier a four-character prefix announces.
pub fn prefix_kind(key_id: &str) -> Option<&'static str> {
    Some(match key_id.get(..4)? {
        "AKIA" => "long-lived IAM access key",
        "ASIA" => "temporary STS access key",
        "ABIA" => "STS service bearer token",
        "ACCA" => "context-specific credential",
        "AIDA" => "IAM user ID",
        "AROA" => "IAM role ID",
        _ => return None,
    })
}

/// Why a string cannot be registered as an access key ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyIdError {
    #[error("access key ID is empty")]
    Empty,
    #[error("access key ID {shown:?} is {len} characters long; AWS key IDs have {MIN_LEN} to {MAX_LEN} (usually 20, like AKIAQYLPMN5HHHFPZAM2)")]
    Length { shown: String, len: usize },
    #[error("access key ID {shown:?} contains {bad:?}; key IDs are upper-case letters and digits only (did you paste the secret access key instead?)")]
    Character { shown: String, bad: char },
}

/// Checks that `raw` could be an access key ID and returns it trimmed.
///
/// This is deliberately loose: real and pseudonymised CloudTrail data contain
/// key IDs outside the base32 alphabet, so only length and the character class
/// are checked. It is for registering keys, never for matching log records.
/// The first AWS access key ID (`AKIA…` or `ASIA…`, 20 characters, standing
/// alone) in pasted text, e.g. a credentials file an employee found.
pub fn find_in_text(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(19)).find_map(|i| {
        let w = bytes.get(i..i + 20)?;
        let starts = w.starts_with(b"AKIA") || w.starts_with(b"ASIA");
        let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let end = bytes.get(i + 20).is_none_or(|b| !b.is_ascii_alphanumeric());
        (starts && boundary && end && w.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
            .then(|| String::from_utf8_lossy(w).into_owned())
    })
}

pub fn parse(raw: &str) -> Result<String, KeyIdError> {
    let key = raw.trim();
    if key.is_empty() {
        return Err(KeyIdError::Empty);
    }
    let shown = shorten(key);
    if let Some(bad) = key.chars().find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit())) {
        return Err(KeyIdError::Character { shown, bad });
    }
    let len = key.len();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(KeyIdError::Length { shown, len });
    }
    Ok(key.to_string())
}

/// Error messages must never echo a whole secret that was pasted by mistake.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 24 {
        s.to_string()
    } else {
        let head: String = s.chars().take(8).collect();
        format!("{head}…")
    }
}

/// What decoding a key ID's account number gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountDecode {
    /// The 12-digit account number, zero-padded.
    Account(String),
    /// A key of the older generation: it does not carry the account.
    OldFormat,
    /// Not a key shape that can be decoded (wrong prefix, length or alphabet).
    NotDecodable(&'static str),
}

impl fmt::Display for AccountDecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountDecode::Account(a) => write!(f, "account {a}"),
            AccountDecode::OldFormat => f.write_str("older-generation key ID: the account number is not encoded in it"),
            AccountDecode::NotDecodable(why) => write!(f, "cannot decode: {why}"),
        }
    }
}

fn base32_value(c: u8) -> Option<u64> {
    BASE32.iter().position(|&b| b == c).map(|p| p as u64)
}

/// Decodes the AWS account number from an access key ID.
pub fn decode_account(key_id: &str) -> AccountDecode {
    let bytes = key_id.as_bytes();
    if bytes.len() != 20 {
        return AccountDecode::NotDecodable("only 20-character key IDs are understood");
    }
    if !matches!(&bytes[..4], b"AKIA" | b"ASIA") {
        return AccountDecode::NotDecodable("only AKIA and ASIA key IDs carry an account");
    }
    // The first ten base32 characters after the prefix hold 50 bits: one
    // generation bit, the 40-bit account number, then 9 bits we ignore.
    let mut bits: u64 = 0;
    for &c in &bytes[4..14] {
        match base32_value(c) {
            Some(v) => bits = (bits << 5) | v,
            None => return AccountDecode::NotDecodable("characters outside the base32 alphabet A-Z2-7"),
        }
    }
    if bytes[14..].iter().any(|&c| base32_value(c).is_none()) {
        return AccountDecode::NotDecodable("characters outside the base32 alphabet A-Z2-7");
    }
    let generation = bits >> 49;
    if generation == 0 {
        return AccountDecode::OldFormat;
    }
    let account = (bits >> 9) & ((1 << 40) - 1);
    AccountDecode::Account(format!("{account:012}"))
}

/// Builds a syntactically valid new-generation `AKIA` key ID for `account`.
///
/// Used to register realistic keys without AWS (the demo, tests, the
/// benchmark corpus). `random` supplies the 39 bits that are not the account.
pub fn synthesize(account: u64, random: u64) -> String {
    let bytes = synthesize_bytes(account, random);
    String::from_utf8(bytes.to_vec()).expect("the base32 alphabet is ASCII")
}

/// [`synthesize`] without an allocation: the key ID's 20 ASCII bytes (for
/// callers that make a million of them).
pub fn synthesize_bytes(account: u64, random: u64) -> [u8; 20] {
    assert!(account < 1 << 40, "account number has at most 12 digits");
    // 80 bits after the prefix: 1 generation bit, 40 account bits, 39 random.
    let high: u128 = (1u128 << 79) | ((account as u128) << 39) | (random as u128 & ((1 << 39) - 1));
    let mut out = *b"AKIA0000000000000000";
    for (i, c) in out[4..].iter_mut().enumerate() {
        *c = BASE32[((high >> ((15 - i) * 5)) & 31) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key ID / account pairs published alongside the decoding research.
    #[test]
    fn key_ids_are_found_in_pasted_text() {
        use super::find_in_text;
        assert_eq!(find_in_text("aws_access_key_id = AKIARZPUZDIKAWS2LJNF\n").as_deref(), Some("AKIARZPUZDIKAWS2LJNF"));
        assert_eq!(
            find_in_text("export AWS_ACCESS_KEY_ID=ASIAXXXXXXXXXXXXXXXX;").as_deref(),
            Some("ASIAXXXXXXXXXXXXXXXX")
        );
        assert_eq!(find_in_text("xAKIARZPUZDIKAWS2LJNF"), None);
        assert_eq!(find_in_text("AKIARZPUZDIKAWS2LJNFZ"), None);
        assert_eq!(find_in_text("nothing here"), None);
        // Multi-byte text before, inside or after a candidate never panics.
        assert_eq!(find_in_text("é AKIARZPUZDIKAWS2LJNF é").as_deref(), Some("AKIARZPUZDIKAWS2LJNF"));
        assert_eq!(find_in_text("AKIAééééééééééééééé"), None);
    }

    #[test]
    fn decodes_published_pairs() {
        let pairs = [
            // Aidan Steele, "AWS Access Key ID formats" (2020), and Tal Be'ery's note.
            ("ASIAY34FZKBOKMUTVV7A", "609629065308"),
            // The canarytokens.org key trufflehog uses as its canary fixture; its
            // tests report account 171436882533, one of Thinkst's accounts.
            ("AKIASP2TPHJSQH3FJRUX", "171436882533"),
        ];
        for (key, account) in pairs {
            assert_eq!(decode_account(key), AccountDecode::Account(account.into()), "{key}");
        }
    }

    #[test]
    fn old_generation_keys_are_not_decoded() {
        assert_eq!(decode_account("AKIAIOSFODNN7EXAMPLE"), AccountDecode::OldFormat);
        assert_eq!(decode_account("AKIAJSIE27KKMHXI3BJQ"), AccountDecode::OldFormat);
    }

    #[test]
    fn undecodable_shapes_say_why() {
        assert!(matches!(decode_account("AKIATFQR7NSC8Q4X20BJ"), AccountDecode::NotDecodable(_)));
        assert!(matches!(decode_account("AIDAY34FZKBOKMUTVV7A"), AccountDecode::NotDecodable(_)));
        assert!(matches!(decode_account("AKIA123"), AccountDecode::NotDecodable(_)));
    }

    #[test]
    fn synthesized_keys_round_trip() {
        for (account, random) in [(0u64, 0u64), (123456789012, 42), (999999999999, u64::MAX), (52310077262, 7)] {
            let key = synthesize(account, random);
            assert_eq!(key.len(), 20);
            assert_eq!(decode_account(&key), AccountDecode::Account(format!("{account:012}")));
            assert_eq!(parse(&key).unwrap(), key);
        }
    }

    #[test]
    fn parse_rejects_bad_input_with_reasons() {
        assert_eq!(parse("  "), Err(KeyIdError::Empty));
        assert!(matches!(parse("AKIA123"), Err(KeyIdError::Length { len: 7, .. })));
        let err = parse("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").unwrap_err();
        assert!(matches!(err, KeyIdError::Character { .. }));
        // The message must not carry the whole pasted secret.
        assert!(!err.to_string().contains("bPxRfiCYEXAMPLEKEY"), "{err}");
        // Pseudonymised IDs outside base32 are still accepted for registration.
        assert_eq!(parse(" AKIATFQR7NSC8Q4X20BJ\n").unwrap(), "AKIATFQR7NSC8Q4X20BJ");
    }
}

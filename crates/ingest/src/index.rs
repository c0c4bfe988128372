//! The match index: every identity that marks a honey token.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};

/// The maps' hasher: per-process random seed like the standard one, a
/// fraction of SipHash's cost per key (a million keys are hashed at every
/// start, and every candidate in every document is looked up).
type Hasher = foldhash::quality::RandomState;

/// What a match points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRef {
    pub token_id: i64,
    pub retired: bool,
}

/// Registered access key IDs, honey users' ARNs and `account/user` names,
/// each mapped to its token.
///
/// Key IDs are almost always 20 bytes, so they are kept inline as `[u8; 20]`
/// (no allocation per key) in one dense array, and the hash table holds only
/// their 4-byte positions in it: building the index for a million keys
/// writes the keys in order and probes an 8 MB table, not a 48 MB one.
/// Anything else (pseudonymised or longer IDs, ARNs) goes into a general map.
#[derive(Debug, Default, Clone)]
pub struct KeyIndex {
    /// Positions in `ids20`, hashed by the key there.
    keys20: HashTable<u32>,
    /// Each 20-byte identity and its token's slot.
    ids20: Vec<([u8; 20], u32)>,
    hasher: Hasher,
    other: HashMap<Box<[u8]>, u32, Hasher>,
    /// The bare user names of tokens known by `account/user`: a record names
    /// the user and the account in two fields, so the scanner looks for the
    /// name and the full parse checks the account.
    user_names: HashSet<Box<[u8]>, Hasher>,
    tokens: Vec<TokenRef>,
}

impl KeyIndex {
    pub fn new() -> KeyIndex {
        KeyIndex::default()
    }

    pub fn with_capacity(keys: usize) -> KeyIndex {
        KeyIndex {
            keys20: HashTable::with_capacity(keys),
            ids20: Vec::with_capacity(keys),
            hasher: Hasher::default(),
            other: HashMap::default(),
            user_names: HashSet::default(),
            tokens: Vec::with_capacity(keys),
        }
    }

    fn slot(&mut self, token: TokenRef) -> u32 {
        self.tokens.push(token);
        (self.tokens.len() - 1) as u32
    }

    fn put(&mut self, value: &[u8], slot: u32) {
        match <[u8; 20]>::try_from(value) {
            Ok(k) => {
                let hash = self.hasher.hash_one(k);
                let (ids, hasher) = (&self.ids20, &self.hasher);
                match self.keys20.entry(hash, |&i| ids[i as usize].0 == k, |&i| hasher.hash_one(ids[i as usize].0)) {
                    // A token registered again (retired, say) takes its key over.
                    Entry::Occupied(e) => {
                        let at = *e.get() as usize;
                        self.ids20[at].1 = slot;
                    }
                    Entry::Vacant(e) => {
                        e.insert(self.ids20.len() as u32);
                        self.ids20.push((k, slot));
                    }
                }
            }
            Err(_) => {
                self.other.insert(value.into(), slot);
            }
        }
    }

    /// Registers a token by its access key ID and, when known, its IAM user's
    /// ARN and `account/user-name` (records without a key ID still name the user).
    pub fn insert(
        &mut self,
        token: TokenRef,
        access_key_id: &str,
        user_arn: Option<&str>,
        account_user: Option<(&str, &str)>,
    ) {
        let slot = self.slot(token);
        self.put(access_key_id.as_bytes(), slot);
        if let Some(arn) = user_arn {
            self.put(arn.as_bytes(), slot);
        }
        if let Some((account, user)) = account_user {
            self.put(format!("{account}/{user}").as_bytes(), slot);
            self.user_names.insert(user.as_bytes().into());
        }
    }

    pub fn get(&self, value: &[u8]) -> Option<TokenRef> {
        let slot = match <[u8; 20]>::try_from(value) {
            Ok(k) => {
                let hash = self.hasher.hash_one(k);
                self.keys20.find(hash, |&i| self.ids20[i as usize].0 == k).map(|&i| &self.ids20[i as usize].1)
            }
            Err(_) => self.other.get(value),
        }?;
        self.tokens.get(*slot as usize).copied()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether any token is known by user name (so `userName` fields are worth a look).
    pub fn has_user_names(&self) -> bool {
        !self.user_names.is_empty()
    }

    /// Whether a token is known by this bare user name (in some account).
    pub fn has_user_name(&self, name: &[u8]) -> bool {
        self.user_names.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_arns_and_user_names() {
        let mut index = KeyIndex::new();
        let t = TokenRef { token_id: 7, retired: false };
        index.insert(
            t,
            "AKIARZPUZDIKAWS2LJNF",
            Some("arn:aws:iam::123456789012:user/svc"),
            Some(("123456789012", "svc")),
        );
        index.insert(TokenRef { token_id: 8, retired: true }, "AKIA-PSEUDONYMISED-LONGER-ID", None, None);
        assert_eq!(index.get(b"AKIARZPUZDIKAWS2LJNF"), Some(t));
        assert_eq!(index.get(b"arn:aws:iam::123456789012:user/svc"), Some(t));
        assert_eq!(index.get(b"123456789012/svc"), Some(t));
        assert!(index.has_user_names() && index.has_user_name(b"svc") && !index.has_user_name(b"other"));
        assert_eq!(index.get(b"AKIA-PSEUDONYMISED-LONGER-ID").unwrap().token_id, 8);
        assert_eq!(index.get(b"AKIARZPUZDIKAWS2LJNG"), None);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn a_key_registered_again_points_at_its_latest_token() {
        let mut index = KeyIndex::with_capacity(2);
        index.insert(TokenRef { token_id: 1, retired: false }, "AKIARZPUZDIKAWS2LJNF", None, None);
        index.insert(TokenRef { token_id: 1, retired: true }, "AKIARZPUZDIKAWS2LJNF", None, None);
        assert_eq!(index.get(b"AKIARZPUZDIKAWS2LJNF"), Some(TokenRef { token_id: 1, retired: true }));
        // Past the capacity asked for, every key is still found.
        for i in 0..10_000u64 {
            let key = honeytrail_core::keyid::synthesize(123456789012, i);
            index.insert(TokenRef { token_id: i as i64 + 10, retired: false }, &key, None, None);
        }
        for i in (0..10_000u64).step_by(97) {
            let key = honeytrail_core::keyid::synthesize(123456789012, i);
            assert_eq!(index.get(key.as_bytes()).unwrap().token_id, i as i64 + 10);
        }
        assert_eq!(index.get(b"AKIARZPUZDIKAWS2LJNG"), None);
    }
}

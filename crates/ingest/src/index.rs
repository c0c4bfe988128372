//! The match index: every identity that marks a honey token.

use std::hash::BuildHasher;

use hashbrown::hash_table::{Entry, HashTable};

use crate::decoys::DecoyIndex;

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
/// their 4-byte positions in it: an 8 MB table for a million keys, not 48 MB.
/// Anything else (pseudonymised or longer IDs, ARNs, `account/user`) goes
/// into `Names`, one buffer of names with a table of their places; bare user
/// names are kept as their hashes alone.
///
/// An index made for many keys ([`KeyIndex::with_capacity`]) appends their
/// key IDs first and puts them in the table at [`KeyIndex::seal`] (which
/// [`Detector::new`](crate::Detector::new) calls), in the order of their
/// places in the table: the table is then written front to back instead of
/// at a million random places. Until then a lookup also reads the keys not
/// yet in the table, newest first, so an index is never wrong, only slower,
/// before it is sealed.
#[derive(Debug, Default, Clone)]
pub struct KeyIndex {
    /// Positions in `ids20`, hashed by the key there.
    keys20: HashTable<u32>,
    /// Each 20-byte identity and its token's slot.
    ids20: Vec<([u8; 20], u32)>,
    /// `ids20[..sealed]` are in the table; the rest wait for [`KeyIndex::seal`].
    sealed: usize,
    /// Whether key IDs wait for the seal (an index made for many keys).
    deferred: bool,
    hasher: Hasher,
    other: Names,
    /// The bare user names of tokens known by `account/user`: a record names
    /// the user and the account in two fields, so the scanner looks for the
    /// name and the full parse checks the account. Each is kept as its hash
    /// alone (8 bytes, nothing else): another name of the same 64-bit hash,
    /// under this process's random seed, only has its record parsed and
    /// checked exactly. Added ones wait in `user_names_waiting` for the seal.
    user_names: HashTable<u64>,
    user_names_waiting: Vec<u64>,
    /// Where `account/user` is put together, kept for the next.
    scratch: Vec<u8>,
    tokens: Vec<TokenRef>,
    /// Decoy resources, matched by what a call was about.
    decoys: DecoyIndex,
}

impl KeyIndex {
    pub fn new() -> KeyIndex {
        KeyIndex::default()
    }

    pub fn with_capacity(keys: usize) -> KeyIndex {
        KeyIndex {
            keys20: HashTable::with_capacity(keys),
            ids20: Vec::with_capacity(keys),
            sealed: 0,
            deferred: true,
            hasher: Hasher::default(),
            other: Names::default(),
            user_names: HashTable::new(),
            user_names_waiting: Vec::new(),
            scratch: Vec::new(),
            tokens: Vec::with_capacity(keys),
            decoys: DecoyIndex::default(),
        }
    }

    fn slot(&mut self, token: TokenRef) -> u32 {
        self.tokens.push(token);
        (self.tokens.len() - 1) as u32
    }

    fn put(&mut self, value: &[u8], slot: u32) {
        match <[u8; 20]>::try_from(value) {
            Ok(k) if self.deferred => self.ids20.push((k, slot)),
            Ok(k) => {
                self.seal();
                self.ids20.push((k, slot));
                self.seal();
            }
            Err(_) => {
                self.other.insert(&self.hasher, value, slot, self.deferred);
            }
        }
    }

    /// Puts every key ID appended since the last seal in the table, in the
    /// order of their places in it (a counting sort by bucket, stable, so
    /// a key registered twice ends up with its later token).
    pub fn seal(&mut self) {
        self.decoys.seal();
        self.other.seal(&self.hasher);
        self.seal_user_names();
        let start = self.sealed;
        let n = self.ids20.len() - start;
        if n == 0 {
            return;
        }
        self.keys20.reserve(n, |&i| self.hasher.hash_one(self.ids20[i as usize].0));
        // hashbrown's place for a hash is its low bits under the bucket mask;
        // the table has a power of two of buckets, at least 8 for 7 entries.
        let buckets = (self.keys20.capacity().max(1) * 8 / 7).next_power_of_two().max(1) as u64;
        let hashes: Vec<u64> = self.ids20[start..].iter().map(|(k, _)| self.hasher.hash_one(k)).collect();
        let order = bucket_order(&hashes, buckets - 1);
        for i in order {
            let at = start + i as usize;
            let (k, slot) = self.ids20[at];
            let (ids, hasher) = (&self.ids20, &self.hasher);
            match self.keys20.entry(
                hashes[i as usize],
                |&j| ids[j as usize].0 == k,
                |&j| hasher.hash_one(ids[j as usize].0),
            ) {
                // A token registered again (retired, say) takes its key over;
                // the later entry stays in the array, never looked at.
                Entry::Occupied(e) => {
                    let first = *e.get() as usize;
                    self.ids20[first].1 = slot;
                }
                Entry::Vacant(e) => {
                    e.insert(at as u32);
                }
            }
        }
        self.sealed = self.ids20.len();
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
            let mut name = std::mem::take(&mut self.scratch);
            name.clear();
            name.extend_from_slice(account.as_bytes());
            name.push(b'/');
            name.extend_from_slice(user.as_bytes());
            self.put(&name, slot);
            self.scratch = name;
            self.user_names_waiting.push(self.hasher.hash_one(user.as_bytes()));
            if !self.deferred {
                self.seal_user_names();
            }
        }
    }

    /// Registers a decoy resource by its ARN: a record whose parameters or
    /// resources name it is its use, whoever called (see [`DecoyIndex`]), and
    /// a session of a decoy role is its use as a key's would be. `false`
    /// when the ARN cannot be read (nothing is registered then).
    pub fn insert_decoy(&mut self, token: TokenRef, arn: &str) -> bool {
        if honeytrail_core::decoy::forms(arn).is_none() {
            return false;
        }
        let slot = self.slot(token);
        self.put(arn.as_bytes(), slot);
        self.decoys.insert(arn, slot);
        if !self.deferred {
            self.decoys.seal();
        }
        true
    }

    /// The decoys, to set their managers.
    pub fn decoys_mut(&mut self) -> &mut DecoyIndex {
        &mut self.decoys
    }

    pub fn decoys(&self) -> &DecoyIndex {
        &self.decoys
    }

    /// The decoy `record` touches, when the caller is not its manager.
    pub fn match_decoy(&self, record: &serde_json::Value) -> Option<TokenRef> {
        self.decoys.match_record(record).and_then(|slot| self.tokens.get(slot as usize).copied())
    }

    pub fn get(&self, value: &[u8]) -> Option<TokenRef> {
        let slot = match <[u8; 20]>::try_from(value) {
            Ok(k) => {
                // Not yet sealed: newest first, as a later registration wins.
                if let Some((_, slot)) = self.ids20[self.sealed..].iter().rev().find(|(id, _)| *id == k) {
                    return self.tokens.get(*slot as usize).copied();
                }
                let hash = self.hasher.hash_one(k);
                self.keys20.find(hash, |&i| self.ids20[i as usize].0 == k).map(|&i| self.ids20[i as usize].1)
            }
            Err(_) => self.other.get(&self.hasher, value),
        }?;
        self.tokens.get(slot as usize).copied()
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether any token is known by user name (so `userName` fields are worth a look).
    pub fn has_user_names(&self) -> bool {
        !self.user_names.is_empty() || !self.user_names_waiting.is_empty()
    }

    /// Whether a token is known by this bare user name (in some account).
    pub fn has_user_name(&self, name: &[u8]) -> bool {
        let hash = self.hasher.hash_one(name);
        self.user_names_waiting.contains(&hash) || self.user_names.find(hash, |&h| h == hash).is_some()
    }

    fn seal_user_names(&mut self) {
        let waiting = std::mem::take(&mut self.user_names_waiting);
        self.user_names.reserve(waiting.len(), |&h| h);
        for hash in waiting {
            if let Entry::Vacant(e) = self.user_names.entry(hash, |&h| h == hash, |&h| h) {
                e.insert(hash);
            }
        }
    }
}

/// Byte strings (ARNs, `account/user` names, key IDs of another length),
/// each with a slot, kept back to back in one buffer with a table of their
/// places: no allocation per name (a million minted tokens bring two
/// million), 16 bytes a place. Like the key IDs, names added to an index
/// made for many keys wait for [`Names::seal`]; until then a lookup also
/// reads them, newest first.
#[derive(Debug, Default, Clone)]
struct Names {
    bytes: Vec<u8>,
    places: Vec<Place>,
    /// Positions in `places`, by hash: `places[..sealed]`.
    table: HashTable<u32>,
    sealed: usize,
}

#[derive(Debug, Clone, Copy)]
struct Place {
    start: usize,
    len: u32,
    slot: u32,
}

impl Names {
    fn name(&self, p: &Place) -> &[u8] {
        name_at(&self.bytes, p)
    }

    fn get(&self, hasher: &Hasher, value: &[u8]) -> Option<u32> {
        if self.places.is_empty() {
            return None;
        }
        // Not yet sealed: newest first, as a later registration wins.
        if let Some(p) = self.places[self.sealed..].iter().rev().find(|p| self.name(p) == value) {
            return Some(p.slot);
        }
        let hash = hasher.hash_one(value);
        let at = self.table.find(hash, |&i| self.name(&self.places[i as usize]) == value)?;
        Some(self.places[*at as usize].slot)
    }

    /// Adds `value` with `slot`, in the table at once unless `deferred`. A
    /// name there already takes the new slot (a token registered again,
    /// retired say).
    fn insert(&mut self, hasher: &Hasher, value: &[u8], slot: u32, deferred: bool) {
        // Names are short (the scanner reads values of up to 2 KiB); one
        // past 4 GiB could never be met in a document, so it is not kept.
        let Ok(len) = u32::try_from(value.len()) else { return };
        self.places.push(Place { start: self.bytes.len(), len, slot });
        self.bytes.extend_from_slice(value);
        if !deferred {
            self.seal(hasher);
        }
    }

    /// Puts every name added since the last seal in the table, in the order
    /// they were added. Unlike the key IDs, names are not put in the order
    /// of their places in the table: a name is read whole to be compared,
    /// and reading the places in order won over writing the table in order
    /// (519 against 418 ms of start-up at a million minted tokens).
    fn seal(&mut self, hasher: &Hasher) {
        let start = self.sealed;
        let n = self.places.len() - start;
        if n == 0 {
            return;
        }
        let (bytes, places) = (&self.bytes, &self.places);
        let hash_of = |j: u32| hasher.hash_one(name_at(bytes, &places[j as usize]));
        self.table.reserve(n, |&j| hash_of(j));
        for at in start..self.places.len() {
            let new = self.places[at];
            let (bytes, places) = (&self.bytes, &self.places);
            let hash_of = |j: u32| hasher.hash_one(name_at(bytes, &places[j as usize]));
            let same = |j: u32| name_at(bytes, &places[j as usize]) == name_at(bytes, &new);
            match self.table.entry(hash_of(at as u32), |&j| same(j), |&j| hash_of(j)) {
                // The earlier place takes the later slot; the later stays
                // in the buffer, never looked at.
                Entry::Occupied(e) => {
                    let first = *e.get() as usize;
                    self.places[first].slot = new.slot;
                }
                Entry::Vacant(e) => {
                    e.insert(at as u32);
                }
            }
        }
        self.sealed = self.places.len();
    }
}

fn name_at<'a>(bytes: &'a [u8], p: &Place) -> &'a [u8] {
    &bytes[p.start..p.start + p.len as usize]
}

/// The positions `0..hashes.len()` ordered by `hash & mask` (their places
/// in the table), ties kept in order: a counting sort in passes of 11 bits.
fn bucket_order(hashes: &[u64], mask: u64) -> Vec<u32> {
    const BITS: u32 = 11;
    let mut order: Vec<u32> = (0..hashes.len() as u32).collect();
    let mut next = vec![0u32; order.len()];
    let width = 64 - mask.leading_zeros();
    let mut shift = 0;
    while shift < width {
        let mut counts = [0usize; 1 << BITS];
        let digit = |i: u32| (((hashes[i as usize] & mask) >> shift) & ((1 << BITS) - 1)) as usize;
        for &i in &order {
            counts[digit(i)] += 1;
        }
        let mut total = 0;
        for c in counts.iter_mut() {
            (*c, total) = (total, total + *c);
        }
        for &i in &order {
            let d = digit(i);
            next[counts[d]] = i;
            counts[d] += 1;
        }
        std::mem::swap(&mut order, &mut next);
        shift += BITS;
    }
    order
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
    fn keys_are_found_before_and_after_the_seal_and_the_latest_registration_wins() {
        let mut index = KeyIndex::with_capacity(3000);
        for i in 0..3000u64 {
            let key = honeytrail_core::keyid::synthesize(123456789012, i);
            index.insert(TokenRef { token_id: i as i64, retired: false }, &key, None, None);
        }
        let k5 = honeytrail_core::keyid::synthesize(123456789012, 5);
        index.insert(TokenRef { token_id: 5, retired: true }, &k5, None, None);
        for sealed in [false, true] {
            for i in (0..3000u64).step_by(7) {
                let key = honeytrail_core::keyid::synthesize(123456789012, i);
                assert_eq!(index.get(key.as_bytes()).unwrap().token_id, i as i64, "sealed: {sealed}");
            }
            assert!(index.get(k5.as_bytes()).unwrap().retired, "the later registration wins (sealed: {sealed})");
            assert_eq!(index.get(b"AKIARZPUZDIKAWS2LJNG"), None);
            index.seal();
        }
        // Keys added after the seal are found at once, and after the next.
        let late = honeytrail_core::keyid::synthesize(123456789012, 99_999);
        index.insert(TokenRef { token_id: 99_999, retired: false }, &late, None, None);
        assert_eq!(index.get(late.as_bytes()).unwrap().token_id, 99_999);
        index.seal();
        assert_eq!(index.get(late.as_bytes()).unwrap().token_id, 99_999);
        assert_eq!(index.get(k5.as_bytes()).unwrap().token_id, 5);
    }

    #[test]
    fn names_are_found_as_the_table_grows_and_the_latest_registration_wins() {
        let mut index = KeyIndex::with_capacity(10);
        for i in 0..5000u64 {
            let key = honeytrail_core::keyid::synthesize(123456789012, i);
            let arn = format!("arn:aws:iam::123456789012:user/svc-{i}");
            let user = format!("svc-{i}");
            index.insert(
                TokenRef { token_id: i as i64, retired: false },
                &key,
                Some(&arn),
                Some(("123456789012", &user)),
            );
        }
        index.insert(
            TokenRef { token_id: 7, retired: true },
            "AKIA-SEVEN-AGAIN",
            Some("arn:aws:iam::123456789012:user/svc-7"),
            None,
        );
        let check = |index: &KeyIndex, sealed: bool| {
            for i in (0..5000u64).step_by(13) {
                let arn = format!("arn:aws:iam::123456789012:user/svc-{i}");
                assert_eq!(index.get(arn.as_bytes()).unwrap().token_id, i as i64, "sealed: {sealed}");
                assert_eq!(index.get(format!("123456789012/svc-{i}").as_bytes()).unwrap().token_id, i as i64);
                assert!(index.has_user_name(format!("svc-{i}").as_bytes()));
            }
            let seven = index.get(b"arn:aws:iam::123456789012:user/svc-7").unwrap();
            assert!(seven.retired, "the later registration wins (sealed: {sealed})");
            assert_eq!(index.get(b"arn:aws:iam::123456789012:user/svc-5000"), None);
            assert_eq!(index.get(b"123456789012/svc-"), None);
            assert!(!index.has_user_name(b"svc-5000") && !index.has_user_name(b"svc-"));
        };
        check(&index, false);
        index.seal();
        check(&index, true);
        // Added after the seal: found at once (an index not made for many
        // keys puts each in the table as it comes).
        index.insert(TokenRef { token_id: 9000, retired: false }, "AKIA-LATE", Some("arn:aws:iam::1:user/late"), None);
        assert_eq!(index.get(b"arn:aws:iam::1:user/late").unwrap().token_id, 9000);
        index.seal();
        assert_eq!(index.get(b"arn:aws:iam::1:user/late").unwrap().token_id, 9000);
        let mut small = KeyIndex::new();
        assert!(!small.has_user_names());
        small.insert(TokenRef { token_id: 1, retired: false }, "AKIA-SMALL", None, Some(("1", "ops")));
        assert!(small.has_user_names() && small.has_user_name(b"ops"));
        assert_eq!(small.get(b"1/ops").unwrap().token_id, 1);
    }

    #[test]
    fn the_bucket_order_sorts_by_place_and_keeps_ties_in_order() {
        let hashes = [0x1_0005u64, 3, 0x2_0003, 5, 0, 0xffff];
        let order = bucket_order(&hashes, 0xffff);
        assert_eq!(order, [4, 1, 2, 0, 3, 5]);
        let big: Vec<u64> = (0..5000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        let order = bucket_order(&big, (1 << 21) - 1);
        assert!(order.windows(2).all(|w| {
            let (a, b) = (big[w[0] as usize] & ((1 << 21) - 1), big[w[1] as usize] & ((1 << 21) - 1));
            a < b || (a == b && w[0] < w[1])
        }));
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

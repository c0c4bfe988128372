//! The match index: every identity that marks a honey token.

use std::hash::{BuildHasher, Hasher as _};

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
/// into `Names`, one buffer of names with a table of their places. An IAM
/// user's ARN is kept as the `account/name` it names (see `user_key`), once
/// for a minted token's ARN and `account/user`, and is looked up that way;
/// bare user names are kept as their hashes alone.
///
/// An index made for many keys ([`KeyIndex::with_capacity`]) appends their
/// key IDs first and puts them in the table at [`KeyIndex::seal`] (which
/// [`Detector::new`](crate::Detector::new) calls), grouped by their places
/// in the table: the table is then written a small window at a time instead
/// of at a million random places. Until then a lookup also reads the keys not
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
    tokens: Tokens,
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
            tokens: Tokens::with_capacity(keys),
            decoys: DecoyIndex::default(),
        }
    }

    fn slot(&mut self, token: TokenRef) -> u32 {
        self.tokens.push(token)
    }

    /// Registers `value` (a user's ARN as the `account/name` it names).
    fn put(&mut self, value: &[u8], slot: u32) {
        let mut key = [0; USER_KEY_MAX];
        let value = user_key(value, &mut key).unwrap_or(value);
        match <[u8; 20]>::try_from(value) {
            Ok(k) if self.deferred => self.ids20.push((k, slot)),
            Ok(k) => {
                self.seal();
                self.ids20.push((k, slot));
                self.seal();
            }
            Err(_) => self.other.insert(&self.hasher, value, slot, self.deferred),
        }
    }

    /// Registers a user by `account/name` (`user` is where the name starts):
    /// found by that, by its ARN, and its bare name is looked for.
    fn put_user(&mut self, key: &[u8], user: usize, slot: u32) {
        self.put(key, slot);
        self.user_names_waiting.push(self.hasher.hash_one(&key[user..]));
    }

    /// Puts every key ID appended since the last seal in the table, grouped
    /// by their places in it (see `put_grouped_by_place`; a key registered
    /// twice ends up with its later token).
    pub fn seal(&mut self) {
        self.decoys.seal();
        // One buffer orders the three tables' new entries in turn.
        let mut order = Vec::new();
        self.other.seal(&self.hasher, &mut order);
        self.seal_user_names(&mut order);
        let start = self.sealed;
        if start == self.ids20.len() {
            return;
        }
        let (ids, hasher) = (&self.ids20, &self.hasher);
        let hash_at = |j: usize| hash20(hasher, &ids[j].0);
        let again = put_grouped_by_place(
            &mut self.keys20,
            &mut order,
            ids.len() - start,
            |i| (hash_at(start + i), (start + i) as u32),
            |_, at| at,
            |&a, &b| ids[a as usize].0 == ids[b as usize].0,
            |&j| hash_at(j as usize),
        );
        // A token registered again (retired, say) takes its key over; the
        // later entry stays in the array, never looked at.
        for (first, later) in again {
            self.ids20[first as usize].1 = self.ids20[later as usize].1;
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
        // A user's ARN is kept as the `account/name` it names: once, when
        // that is the `account/user` given too (a minted token's are).
        let mut key = [0; USER_KEY_MAX];
        let from_arn = match user_arn.map(|arn| (arn, user_key(arn.as_bytes(), &mut key))) {
            Some((arn, None)) => {
                self.put(arn.as_bytes(), slot);
                None
            }
            Some((_, Some(from_arn))) => {
                let user = from_arn.iter().position(|&b| b == b'/').map_or(0, |i| i + 1);
                self.put_user(from_arn, user, slot);
                Some(from_arn)
            }
            None => None,
        };
        if let Some((account, user)) = account_user {
            let same = from_arn.is_some_and(|k| {
                k.len() == account.len() + 1 + user.len()
                    && k.starts_with(account.as_bytes())
                    && k.ends_with(user.as_bytes())
                    && k[account.len()] == b'/'
            });
            if !same {
                let mut named = std::mem::take(&mut self.scratch);
                named.clear();
                named.extend_from_slice(account.as_bytes());
                named.push(b'/');
                named.extend_from_slice(user.as_bytes());
                self.put_user(&named, account.len() + 1, slot);
                self.scratch = named;
            }
        }
        if !self.deferred {
            self.seal_user_names(&mut Vec::new());
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
        self.decoys.match_record(record).and_then(|slot| self.tokens.get(slot))
    }

    pub fn get(&self, value: &[u8]) -> Option<TokenRef> {
        let mut key = [0; USER_KEY_MAX];
        let value = user_key(value, &mut key).unwrap_or(value);
        let slot = match <[u8; 20]>::try_from(value) {
            Ok(k) => {
                // Not yet sealed: newest first, as a later registration wins.
                if let Some((_, slot)) = self.ids20[self.sealed..].iter().rev().find(|(id, _)| *id == k) {
                    return self.tokens.get(*slot);
                }
                let hash = hash20(&self.hasher, &k);
                self.keys20.find(hash, |&i| self.ids20[i as usize].0 == k).map(|&i| self.ids20[i as usize].1)
            }
            Err(_) => self.other.get(&self.hasher, value),
        }?;
        self.tokens.get(slot)
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.len() == 0
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

    fn seal_user_names(&mut self, order: &mut Vec<(u64, u32)>) {
        let waiting = std::mem::take(&mut self.user_names_waiting);
        put_grouped_by_place(
            &mut self.user_names,
            order,
            waiting.len(),
            |i| (waiting[i], 0),
            |h, _| h,
            |a, b| a == b,
            |&h| h,
        );
    }
}

/// The tokens matches point at, by slot: their IDs, and whether each is
/// retired one bit apiece (8 bytes a token, not the 16 of a `TokenRef`).
#[derive(Debug, Default, Clone)]
struct Tokens {
    ids: Vec<i64>,
    retired: Vec<u64>,
}

impl Tokens {
    fn with_capacity(tokens: usize) -> Tokens {
        Tokens { ids: Vec::with_capacity(tokens), retired: Vec::with_capacity(tokens.div_ceil(64)) }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Adds `token`: its slot.
    fn push(&mut self, token: TokenRef) -> u32 {
        let slot = self.ids.len();
        if slot.is_multiple_of(64) {
            self.retired.push(0);
        }
        self.retired[slot / 64] |= u64::from(token.retired) << (slot % 64);
        self.ids.push(token.token_id);
        slot as u32
    }

    fn get(&self, slot: u32) -> Option<TokenRef> {
        let slot = slot as usize;
        let token_id = *self.ids.get(slot)?;
        Some(TokenRef { token_id, retired: self.retired[slot / 64] >> (slot % 64) & 1 == 1 })
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
            self.seal(hasher, &mut Vec::new());
        }
    }

    /// Puts every name added since the last seal in the table (see
    /// [`put_grouped_by_place`]).
    fn seal(&mut self, hasher: &Hasher, order: &mut Vec<(u64, u32)>) {
        let start = self.sealed;
        if start == self.places.len() {
            return;
        }
        let (bytes, places) = (&self.bytes, &self.places);
        let name = |j: usize| name_at(bytes, &places[j]);
        let again = put_grouped_by_place(
            &mut self.table,
            order,
            places.len() - start,
            |i| (hasher.hash_one(name(start + i)), (start + i) as u32),
            |_, at| at,
            |&a, &b| name(a as usize) == name(b as usize),
            |&j| hasher.hash_one(name(j as usize)),
        );
        // The earlier place takes the later slot; the later stays in the
        // buffer, never looked at.
        for (first, later) in again {
            self.places[first as usize].slot = self.places[later as usize].slot;
        }
        self.sealed = self.places.len();
    }
}

/// The longest `account/name` an IAM user's ARN stands for: a 12-digit
/// account, `/`, a name of up to 64 characters.
const USER_KEY_MAX: usize = 12 + 1 + 64;

/// The `account/name` an IAM user's ARN (`arn:PARTITION:iam::ACCOUNT:user/PATH/NAME`)
/// names, put together in `out`; `None` for any other ARN or text. A user
/// is one name in one account whatever its path, so the ARN and the
/// `account/user` a record names it by are kept once, under this form.
#[inline]
fn user_key<'a>(arn: &[u8], out: &'a mut [u8; USER_KEY_MAX]) -> Option<&'a [u8]> {
    // Key IDs (20 bytes) and other text are turned away before the call.
    if arn.len() <= 20 || !arn.starts_with(b"arn:") {
        return None;
    }
    arn_user_key(&arn[4..], out)
}

#[inline(never)]
fn arn_user_key<'a>(rest: &[u8], out: &'a mut [u8; USER_KEY_MAX]) -> Option<&'a [u8]> {
    let rest = match rest.strip_prefix(b"aws:iam::") {
        Some(rest) => rest,
        None => {
            // Other partitions are short words (`aws-us-gov`, `aws-iso-b`…).
            let partition = rest.iter().take(32).position(|&b| b == b':').filter(|&p| p > 0)?;
            rest[partition + 1..].strip_prefix(b"iam::")?
        }
    };
    let account = match rest.first_chunk::<13>() {
        Some(&[d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, b':'])
            if eight_digits([d0, d1, d2, d3, d4, d5, d6, d7])
                && eight_digits([d8, d9, d10, d11, b'0', b'0', b'0', b'0']) =>
        {
            12
        }
        _ => rest.iter().take(13).position(|&b| !b.is_ascii_digit()).filter(|&a| a > 0)?,
    };
    let path = rest[account..].strip_prefix(b":user/")?;
    let name = &path[path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)..];
    // The name's characters are not checked: the rule only has to be the
    // same for what is registered and what is looked up, and the scan runs
    // it on every ARN it meets.
    if !(1..=64).contains(&name.len()) {
        return None;
    }
    let len = account + 1 + name.len();
    out[..account].copy_from_slice(&rest[..account]);
    out[account] = b'/';
    out[account + 1..len].copy_from_slice(name);
    Some(&out[..len])
}

/// A 20-byte identity's hash: the same seeded hash as any other's, fed as
/// two integers (16 bytes and 4) rather than as bytes of a length, which
/// takes foldhash's long path and a length prefix. Every key ID is hashed
/// twice at start-up and every candidate in the scan once.
#[inline]
fn hash20(hasher: &Hasher, key: &[u8; 20]) -> u64 {
    let (head, tail) = key.split_at(16);
    let mut state = hasher.build_hasher();
    state.write_u128(u128::from_le_bytes(head.try_into().expect("16 bytes")));
    state.write_u32(u32::from_le_bytes(tail.try_into().expect("4 bytes")));
    state.finish()
}

/// Whether eight bytes are all ASCII digits, in one word: each byte is
/// `0x30..=0x3f` and stays below `0x40` with 6 added (no carry crosses a
/// byte then).
#[inline]
fn eight_digits(bytes: [u8; 8]) -> bool {
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    let word = u64::from_le_bytes(bytes);
    word & HIGH == THREES && (word + 0x0606_0606_0606_0606) & HIGH == THREES
}

fn name_at<'a>(bytes: &'a [u8], p: &Place) -> &'a [u8] {
    &bytes[p.start..p.start + p.len as usize]
}

/// Puts `count` new entries in `table`, grouped by where they go in it (see
/// [`by_place`], which orders them in `order`), and returns the ones that
/// were there already (`same` as one in the table or earlier in the list):
/// each with the one it is the same as. `entry(i)` gives the `i`th entry's
/// hash and a number that `make` turns into the entry with the hash.
/// Written in that order, a table of millions is filled a small window at a
/// time instead of at as many random places, and an entry already in it is
/// only read where its 7-bit tag matches the new one's.
fn put_grouped_by_place<T: Copy>(
    table: &mut HashTable<T>,
    order: &mut Vec<(u64, u32)>,
    count: usize,
    entry: impl Fn(usize) -> (u64, u32),
    make: impl Fn(u64, u32) -> T,
    same: impl Fn(&T, &T) -> bool,
    hash: impl Fn(&T) -> u64,
) -> Vec<(T, T)> {
    table.reserve(count, &hash);
    // hashbrown's place for a hash is its low bits under the bucket mask;
    // the table has a power of two of buckets, at least 8 for 7 entries.
    let buckets = (table.capacity().max(1) * 8 / 7).next_power_of_two() as u64;
    by_place(count, &entry, buckets - 1, order);
    let mut again = Vec::new();
    for &(h, n) in order.iter() {
        let new = make(h, n);
        match table.entry(h, |e| same(e, &new), &hash) {
            Entry::Occupied(e) => again.push((*e.get(), new)),
            Entry::Vacant(e) => {
                e.insert(new);
            }
        }
    }
    again
}

/// Puts the entries `entry(0..count)` in `order`, ordered by the top 11
/// bits of their places in a table of `mask + 1` buckets (all of them in a
/// table of up to 2048), in their order within each group: one pass that
/// counts and one that writes them out (each hashes every entry: keeping
/// the hashes between them would take a second buffer of fresh pages, and
/// that was not measured against hashing twice). The hash goes with the
/// number into `order`: ordering only the numbers and hashing a third time
/// at the insert read every entry again at random (a million minted tokens:
/// 220 ms of start-up became 415). A group's places span a 2048th of the
/// table: 1024 buckets in one of a million entries.
fn by_place(count: usize, entry: impl Fn(usize) -> (u64, u32), mask: u64, order: &mut Vec<(u64, u32)>) {
    const BITS: u32 = 11;
    let shift = (64 - mask.leading_zeros()).saturating_sub(BITS);
    let group = |h: u64| ((h & mask) >> shift) as usize;
    let mut starts = vec![0usize; 1 << BITS];
    for i in 0..count {
        starts[group(entry(i).0)] += 1;
    }
    let mut total = 0;
    for s in starts.iter_mut() {
        (*s, total) = (total, total + *s);
    }
    order.clear();
    order.resize(count, (0, 0));
    for i in 0..count {
        let (h, n) = entry(i);
        let at = &mut starts[group(h)];
        order[*at] = (h, n);
        *at += 1;
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
    fn a_users_arn_is_kept_as_the_account_and_name_it_names() {
        let mut out = [0; USER_KEY_MAX];
        let mut key = |arn: &str| user_key(arn.as_bytes(), &mut out).map(|k| String::from_utf8(k.to_vec()).unwrap());
        assert_eq!(key("arn:aws:iam::123456789012:user/svc").as_deref(), Some("123456789012/svc"));
        assert_eq!(key("arn:aws-us-gov:iam::123456789012:user/ops/eu/svc").as_deref(), Some("123456789012/svc"));
        assert_eq!(key("arn:aws-cn:iam::1:user/a+b=c,d.e@f_g-h").as_deref(), Some("1/a+b=c,d.e@f_g-h"));
        assert_eq!(key(&format!("arn:aws:iam::123456789012:user/{}", "n".repeat(64))).map(|k| k.len()), Some(77));
        for other in [
            "arn:aws:iam::123456789012:role/svc",
            "arn:aws:sts::123456789012:assumed-role/svc/session",
            "arn:aws:iam::123456789012:user/",
            "arn:aws:iam::123456789012:user/ops/",
            "arn:aws:iam::1234567890123:user/svc",
            "arn:aws:iam::12345678901x:user/svc",
            "arn:aws:iam:::user/svc",
            "arn::iam::123456789012:user/svc",
            "arn:aws:iam:us-east-1:123456789012:user/svc",
            "123456789012/svc",
            "AKIA-PSEUDONYMISED-LONGER-ID",
            "",
        ] {
            assert_eq!(key(other), None, "{other}");
        }
        assert_eq!(key(&format!("arn:aws:iam::123456789012:user/{}", "n".repeat(65))), None);

        // Registered by ARN alone, the user is found by any ARN of theirs
        // (a path given or changed since) and by `account/user`; another
        // account's or another kind's is not.
        let mut index = KeyIndex::new();
        let t = TokenRef { token_id: 3, retired: false };
        index.insert(t, "AKIARZPUZDIKAWS2LJNF", Some("arn:aws:iam::123456789012:user/ci/deploy"), None);
        for same in
            ["arn:aws:iam::123456789012:user/deploy", "arn:aws:iam::123456789012:user/ci/deploy", "123456789012/deploy"]
        {
            assert_eq!(index.get(same.as_bytes()), Some(t), "{same}");
        }
        assert!(index.has_user_name(b"deploy"));
        for other in ["arn:aws:iam::210987654321:user/deploy", "arn:aws:iam::123456789012:role/deploy", "deploy"] {
            assert_eq!(index.get(other.as_bytes()), None, "{other}");
        }
        // Any other ARN is kept whole; an ARN and an `account/user` that
        // disagree are both kept.
        let session = TokenRef { token_id: 4, retired: false };
        let arn = "arn:aws:sts::123456789012:assumed-role/canary/i-0abc";
        index.insert(session, "ASIARZPUZDIKAWS2LJNF", Some(arn), Some(("123456789012", "other")));
        assert_eq!(index.get(arn.as_bytes()), Some(session));
        assert_eq!(index.get(b"123456789012/other"), Some(session));
        assert!(index.has_user_name(b"other"));
        let both = TokenRef { token_id: 5, retired: false };
        index.insert(both, "AKIA-BOTH", Some("arn:aws:iam::1:user/one"), Some(("2", "two")));
        assert_eq!(index.get(b"arn:aws:iam::1:user/one"), Some(both));
        assert_eq!(index.get(b"2/two"), Some(both));
        assert!(index.has_user_name(b"one") && index.has_user_name(b"two"));
    }

    #[test]
    fn eight_digits_are_told_from_every_other_byte() {
        assert!(eight_digits(*b"01234567") && eight_digits(*b"89898989"));
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut word = *b"00000000";
                word[at] = b;
                assert_eq!(eight_digits(word), b.is_ascii_digit(), "byte {b:#x} at {at}");
            }
        }
    }

    #[test]
    fn tokens_keep_their_ids_and_retired_bits_across_words() {
        let mut tokens = Tokens::default();
        let all: Vec<TokenRef> =
            (0..200i64).map(|i| TokenRef { token_id: i * 7 - 300, retired: i % 3 == 0 || i == 64 }).collect();
        for (slot, t) in all.iter().enumerate() {
            assert_eq!(tokens.push(*t), slot as u32);
        }
        for (slot, t) in all.iter().enumerate() {
            assert_eq!(tokens.get(slot as u32), Some(*t));
        }
        assert_eq!(tokens.get(200), None);
        let mut wide = Tokens::default();
        wide.push(TokenRef { token_id: i64::MIN, retired: true });
        wide.push(TokenRef { token_id: i64::MAX, retired: false });
        assert_eq!(wide.get(0), Some(TokenRef { token_id: i64::MIN, retired: true }));
        assert_eq!(wide.get(1), Some(TokenRef { token_id: i64::MAX, retired: false }));
    }

    fn sorted(count: usize, entry: impl Fn(usize) -> (u64, u32), mask: u64) -> Vec<(u64, u32)> {
        let mut order = vec![(1, 1); 3];
        by_place(count, entry, mask, &mut order);
        order
    }

    #[test]
    fn entries_are_grouped_by_place_in_their_order() {
        let hashes = [0x1_0005u64, 3, 0x2_0003, 5, 0, 0x7ff];
        let small: Vec<u64> = sorted(hashes.len(), |i| (hashes[i], i as u32), 0x7ff).iter().map(|&(h, _)| h).collect();
        assert_eq!(small, [0, 3, 0x2_0003, 0x1_0005, 5, 0x7ff], "a table of 2048 buckets is in bucket order");
        // A million buckets: ordered by their top 11 bits, in the order
        // given within each group, every entry once.
        let mask = (1u64 << 20) - 1;
        let big: Vec<u64> = (0..50_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        let grouped = sorted(big.len(), |i| (big[i], i as u32), mask);
        assert!(grouped.windows(2).all(|w| {
            let (a, b) = ((w[0].0 & mask) >> 9, (w[1].0 & mask) >> 9);
            a < b || (a == b && w[0].1 < w[1].1)
        }));
        let mut all: Vec<u32> = grouped
            .iter()
            .map(|&(h, i)| {
                assert_eq!(h, big[i as usize]);
                i
            })
            .collect();
        all.sort_unstable();
        assert!(all.iter().copied().eq(0..50_000));
    }

    #[test]
    fn entries_put_grouped_by_place_are_found_and_repeats_are_returned() {
        let (mut table, mut order) = (HashTable::new(), Vec::new());
        let hash = |&v: &u64| v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for round in 0..3u64 {
            // Each round adds new values and repeats of the last round's.
            let first = round * 1000;
            let value = |i: usize| first + i as u64;
            let again = put_grouped_by_place(
                &mut table,
                &mut order,
                2000,
                |i| (hash(&value(i)), i as u32),
                |_, i| value(i as usize),
                |a, b| a == b,
                hash,
            );
            let expected = if round == 0 { 0 } else { 1000 };
            assert_eq!(again.len(), expected);
            assert!(again.iter().all(|(first, later)| first == later));
        }
        assert_eq!(table.len(), 4000);
        for v in 0..4000u64 {
            assert_eq!(table.find(hash(&v), |&e| e == v), Some(&v));
        }
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

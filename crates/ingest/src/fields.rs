//! One pass for the field names every document is searched for:
//! `"accessKeyId"`, `"arn"`, `"eventVersion"` and `"userName"`.
//!
//! A `memmem` pass a name each reads the whole document each time; on x86-64 with AVX2
//! (or AVX-512BW, 64 at a time) this reads it once. For every 32 positions it compares a few bytes at
//! fixed offsets from each position (the opening quote, and one or two bytes
//! of each name that are rare in CloudTrail JSON: the `K` of `accessKeyId`,
//! the `V` of `eventVersion`, the `n"` that ends `"arn"`, the `N` of
//! `userName`), and only where
//! those agree is the whole name compared. Anything else, and the last few
//! bytes of a document, go through `memmem` as before. The positions found
//! are exactly `memmem`'s (a test compares the two on random documents).
//!
//! `quote_or_backslash` finds where a JSON string may end, for the
//! scanner's values and the lenient splitter's strings.

use memchr::memmem;

/// Which field name starts at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    AccessKeyId,
    Arn,
    EventVersion,
    UserName,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::AccessKeyId, Field::Arn, Field::EventVersion, Field::UserName];

    pub fn needle(self) -> &'static [u8] {
        match self {
            Field::AccessKeyId => b"\"accessKeyId\"",
            Field::Arn => b"\"arn\"",
            Field::EventVersion => b"\"eventVersion\"",
            Field::UserName => b"\"userName\"",
        }
    }
}

/// Calls `each` with every position where one of the names starts,
/// in increasing order; like `memmem`, a name is not found again inside
/// itself (`"arn"arn"` is one `"arn"`).
pub fn find(bytes: &[u8], mut each: impl FnMut(usize, Field)) {
    let mut from = [0; 4];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512bw") {
        // SAFETY: AVX-512BW (and so AVX-512F) is available, as just checked.
        from = unsafe { avx512::find(bytes, &mut each) };
    } else if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is available, as just checked.
        from = unsafe { avx2::find(bytes, &mut each) };
    }
    find_from(bytes, from, &mut each)
}

/// Checks the candidates of one block at `i` (bit `b` of `mask`: a name may
/// start at `i + b`): each is compared whole, and found unless it starts
/// inside the last one of its name (`next`).
#[inline(always)]
fn each_candidate(bytes: &[u8], i: usize, mut mask: u64, next: &mut [usize; 4], each: &mut impl FnMut(usize, Field)) {
    while mask != 0 {
        let at = i + mask.trailing_zeros() as usize;
        let rest = &bytes[at..];
        if let Some(f) = Field::ALL.into_iter().find(|f| rest.starts_with(f.needle())) {
            if at >= next[f as usize] {
                next[f as usize] = at + f.needle().len();
                each(at, f);
            }
        }
        mask &= mask - 1;
    }
}

/// How far ahead of the search the next bytes are asked for: a mapped file
/// is read from memory, not from a cache a copy just filled, and the
/// processor's own prefetcher stops at every 4 KiB page. 2 KiB ahead took
/// the plain-JSON scan from 74 to 60 ms (docs/measurements.md).
#[cfg(target_arch = "x86_64")]
const AHEAD: usize = 2048;

/// Asks for the cache line `AHEAD` bytes past `p + i`. A prefetch never
/// faults, past the end of the bytes included, so the address is only
/// computed (`wrapping_add`), never read.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch(p: *const u8, i: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch is a hint; it reads nothing and cannot fault.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(i + AHEAD).cast::<i8>()) };
}

/// Where the first `"` or `\` in `hay` is: 16 bytes a step. Identity
/// values and JSON's strings are short, and `memchr2`'s set-up cost more
/// than the search (about 130 instructions a value, against 20 here).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn quote_or_backslash(hay: &[u8]) -> Option<usize> {
    // SAFETY: SSE2 is part of x86-64: every such processor has it.
    unsafe { sse2_quote_or_backslash(hay) }
}

/// See [`quote_or_backslash`].
///
/// # Safety
/// The processor must support SSE2 (every x86-64 one does).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
unsafe fn sse2_quote_or_backslash(hay: &[u8]) -> Option<usize> {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let (quote, backslash) = (_mm_set1_epi8(b'"' as i8), _mm_set1_epi8(b'\\' as i8));
    let mut chunks = hay.chunks_exact(16);
    let mut at = 0;
    for chunk in &mut chunks {
        // SAFETY: `chunk` is 16 readable bytes; loadu takes any alignment.
        let v = unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) };
        let found = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize);
        }
        at += 16;
    }
    chunks.remainder().iter().position(|&b| b == b'"' || b == b'\\').map(|p| at + p)
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn quote_or_backslash(hay: &[u8]) -> Option<usize> {
    memchr::memchr2(b'"', b'\\', hay)
}

/// What [`find`] does with `memmem` (a pass a name, merged in order), each
/// name looked for from its own start in `from`.
fn find_from(bytes: &[u8], from: [usize; 4], each: &mut impl FnMut(usize, Field)) {
    let mut found: Vec<(usize, Field)> = Field::ALL
        .into_iter()
        .zip(from)
        .flat_map(|(f, start)| {
            let rest = bytes.get(start..).unwrap_or_default();
            memmem::find_iter(rest, f.needle()).map(move |at| (start + at, f))
        })
        .collect();
    found.sort_unstable();
    for (at, f) in found {
        each(at, f);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Field;

    const WIDTH: usize = 32;
    /// The furthest byte looked at past a position: the `K` of `"accessKeyId"`.
    const REACH: usize = 7;

    /// Finds the names starting at every position below the last
    /// `WIDTH + REACH` bytes or so, and returns where the caller's search
    /// for each name goes on: past the last one found, or where this
    /// stopped.
    ///
    /// # Safety
    /// The processor must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn find(bytes: &[u8], each: &mut impl FnMut(usize, Field)) -> [usize; 4] {
        let n = bytes.len();
        let p = bytes.as_ptr();
        let splat = |b: u8| _mm256_set1_epi8(b as i8);
        let (quote, k, v, last, name) = (splat(b'"'), splat(b'K'), splat(b'V'), splat(b'n'), splat(b'N'));
        // Where each name may next start: not inside its last match.
        let mut next = [0usize; 4];
        // The candidates' mask of the 32 positions from `at`.
        let block = |at: usize| {
            // SAFETY: every load reads 32 bytes from at + 0..=REACH, all
            // before n by the callers' conditions; loadu takes any alignment.
            let load = |off: usize| unsafe { _mm256_loadu_si256(p.add(at + off).cast::<__m256i>()) };
            let opening = _mm256_cmpeq_epi8(load(0), quote);
            // `"accessKeyId"`: K at 7. `"eventVersion"`: V at 6. `"arn"`: n" at 3
            // and 4. `"userName"`: N at 5.
            let key = _mm256_cmpeq_epi8(load(7), k);
            let version = _mm256_cmpeq_epi8(load(6), v);
            let arn = _mm256_and_si256(_mm256_cmpeq_epi8(load(3), last), _mm256_cmpeq_epi8(load(4), quote));
            let user = _mm256_cmpeq_epi8(load(5), name);
            let names = _mm256_or_si256(_mm256_or_si256(key, version), _mm256_or_si256(arn, user));
            _mm256_movemask_epi8(_mm256_and_si256(opening, names)) as u32 as u64
        };
        let mut i = 0;
        // Two blocks a step: one prefetch a cache line, one candidates' walk.
        while i + 2 * WIDTH + REACH <= n {
            super::prefetch(p, i);
            let mask = block(i) | block(i + WIDTH) << WIDTH;
            super::each_candidate(bytes, i, mask, &mut next, each);
            i += 2 * WIDTH;
        }
        if i + WIDTH + REACH <= n {
            super::each_candidate(bytes, i, block(i), &mut next, each);
            i += WIDTH;
        }
        next.map(|n| n.max(i))
    }
}

/// The same as [`avx2`], 64 positions at a time, the comparisons' results
/// kept as bit masks.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::Field;

    const WIDTH: usize = 64;
    const REACH: usize = 7;

    /// See [`super::avx2::find`].
    ///
    /// # Safety
    /// The processor must support AVX-512F and AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn find(bytes: &[u8], each: &mut impl FnMut(usize, Field)) -> [usize; 4] {
        let n = bytes.len();
        let p = bytes.as_ptr();
        let splat = |b: u8| _mm512_set1_epi8(b as i8);
        let (quote, k, v, last, name) = (splat(b'"'), splat(b'K'), splat(b'V'), splat(b'n'), splat(b'N'));
        let mut next = [0usize; 4];
        let mut i = 0;
        while i + WIDTH + REACH <= n {
            // SAFETY: every load reads 64 bytes from i + 0..=REACH, all
            // before n by the loop's condition; loadu takes any alignment.
            let load = |off: usize| unsafe { _mm512_loadu_si512(p.add(i + off).cast::<__m512i>()) };
            super::prefetch(p, i);
            let opening = _mm512_cmpeq_epi8_mask(load(0), quote);
            let key = _mm512_cmpeq_epi8_mask(load(7), k);
            let version = _mm512_cmpeq_epi8_mask(load(6), v);
            let arn = _mm512_cmpeq_epi8_mask(load(3), last) & _mm512_cmpeq_epi8_mask(load(4), quote);
            let user = _mm512_cmpeq_epi8_mask(load(5), name);
            super::each_candidate(bytes, i, opening & (key | version | arn | user), &mut next, each);
            i += WIDTH;
        }
        next.map(|n| n.max(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_memmem(bytes: &[u8]) -> Vec<(usize, Field)> {
        let mut out = Vec::new();
        find_from(bytes, [0; 4], &mut |at, f| out.push((at, f)));
        out
    }

    fn by_find(bytes: &[u8]) -> Vec<(usize, Field)> {
        let mut out = Vec::new();
        find(bytes, |at, f| out.push((at, f)));
        // Each SIMD width this processor has finds the same.
        #[cfg(target_arch = "x86_64")]
        {
            let each = |from: [usize; 4], found: Vec<(usize, Field)>| {
                let mut all = found;
                find_from(bytes, from, &mut |at, f| all.push((at, f)));
                all
            };
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut found = Vec::new();
                // SAFETY: AVX2 is available, as just checked.
                let from = unsafe { avx2::find(bytes, &mut |at, f| found.push((at, f))) };
                assert_eq!(each(from, found), out, "avx2");
            }
            if std::arch::is_x86_feature_detected!("avx512bw") {
                let mut found = Vec::new();
                // SAFETY: AVX-512BW is available, as just checked.
                let from = unsafe { avx512::find(bytes, &mut |at, f| found.push((at, f))) };
                assert_eq!(each(from, found), out, "avx512");
            }
        }
        out
    }

    #[test]
    fn finds_exactly_what_memmem_finds() {
        // Documents of every length around the vector width, made of the
        // names, their near misses and JSON's punctuation, at every offset.
        let parts: [&[u8]; 18] = [
            b"\"accessKeyId\"",
            b"\"arn\"",
            b"\"eventVersion\"",
            b"\"userName\"",
            b"\"username\"",
            b"\"userName\"userName\"",
            b"\"userNa",
            b"\"accessKeyID\"",
            b"\"arn",
            b"\"eventTime\"",
            b"\"urn\"",
            b"\"arn\"arn\"",
            b"\"eventVersion\"eventVersion\"",
            b"\"aKcessKeyId\"",
            b"\"",
            b":",
            b"x",
            b" \"ASIA\",",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in 0..400 {
            let mut doc = Vec::new();
            while doc.len() < len {
                doc.extend_from_slice(parts[(next() % parts.len() as u64) as usize]);
            }
            doc.truncate(len);
            assert_eq!(by_find(&doc), by_memmem(&doc), "{:?}", String::from_utf8_lossy(&doc));
        }
        // A real log's worth.
        let log = format!(
            "{{\"Records\":[{}]}}",
            (0..200)
                .map(|i| format!(
                    "{{\"eventVersion\":\"1.08\",\"userIdentity\":{{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::1:user/u{i}\",\"accessKeyId\":\"AKIA{i:016}\",\"userName\":\"u{i}\"}},\"eventTime\":\"t\"}}"
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        let found = by_find(log.as_bytes());
        assert_eq!(found, by_memmem(log.as_bytes()));
        assert_eq!(found.len(), 800);
    }

    #[test]
    fn the_first_quote_or_backslash_is_found_at_every_offset() {
        for len in 0..70 {
            for at in 0..=len {
                for (c, other) in [(b'"', b'\\'), (b'\\', b'"')] {
                    let mut hay = vec![b'a'; len];
                    if at < len {
                        hay[at] = c;
                        // One of the other kind after it changes nothing.
                        if at + 3 < len {
                            hay[at + 3] = other;
                        }
                    }
                    let expected = (at < len).then_some(at);
                    assert_eq!(quote_or_backslash(&hay), expected, "len {len}, at {at}");
                    assert_eq!(quote_or_backslash(&hay), memchr::memchr2(b'"', b'\\', &hay));
                }
            }
        }
    }
}

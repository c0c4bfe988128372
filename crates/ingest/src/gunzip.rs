//! Whole-buffer gzip decoding with libdeflate, for documents already in
//! memory (a log file read whole, an S3 object).
//!
//! CloudTrail delivers each log file as one gzip member of a few MB, and a
//! gzip member ends with its decompressed size (ISIZE): the output buffer is
//! sized exactly, once, and libdeflate decodes into it in one call, about
//! twice as fast as a streaming inflater. Anything else (several members, a
//! size past the limit, damage) returns `None` and the caller reads the
//! document with the streaming decoder, which also keeps what decoded
//! before damage and says why the document is not whole.

use std::cell::RefCell;

use libdeflate_sys as sys;

/// A libdeflate decompressor (about 10 KB of tables), one per thread.
struct Decompressor(std::ptr::NonNull<sys::libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Decompressor> {
        // SAFETY: no preconditions; a null return (out of memory) is checked.
        std::ptr::NonNull::new(unsafe { sys::libdeflate_alloc_decompressor() }).map(Decompressor)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from libdeflate_alloc_decompressor and is freed once.
        unsafe { sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Whether `data` starts like gzip.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// Decodes `data` when it is exactly one whole gzip member of at most
/// `limit` bytes decompressed; `None` otherwise (see the module doc).
pub fn single_member(data: &[u8], limit: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    single_member_into(data, limit, &mut out).then_some(out)
}

/// [`single_member`] into `out` (cleared first; its allocation reused, so
/// a thread decoding file after file does not fault in fresh pages for
/// each). False, and `out` empty, when `data` is not one whole member.
pub fn single_member_into(data: &[u8], limit: u64, out: &mut Vec<u8>) -> bool {
    out.clear();
    // The smallest member: a 10-byte header, an empty block, an 8-byte trailer.
    if !is_gzip(data) || data.len() < 18 {
        return false;
    }
    let mut tail = [0u8; 4];
    tail.copy_from_slice(&data[data.len() - 4..]);
    let size = u32::from_le_bytes(tail) as usize;
    // ISIZE is the size modulo 2^32: past the limit, or a lie, the streaming
    // decoder finds out.
    if size as u64 > limit {
        return false;
    }
    out.reserve(size);
    let (mut consumed, mut written) = (0usize, 0usize);
    let result = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Decompressor::new();
        }
        let d = slot.as_ref()?;
        // SAFETY: `data` is readable for its length; `out` (empty) has at
        // least `size` bytes of spare capacity, of which libdeflate writes
        // at most `size` and reports how many; the decompressor is this
        // thread's own.
        Some(unsafe {
            sys::libdeflate_gzip_decompress_ex(
                d.0.as_ptr(),
                data.as_ptr().cast(),
                data.len(),
                out.spare_capacity_mut().as_mut_ptr().cast(),
                size,
                &mut consumed,
                &mut written,
            )
        })
    });
    if result != Some(sys::libdeflate_result_LIBDEFLATE_SUCCESS) || consumed != data.len() || written != size {
        return false;
    }
    // SAFETY: libdeflate initialised the first `written` bytes (== size <= capacity).
    unsafe { out.set_len(written) };
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::tests::gz;

    #[test]
    fn one_member_decodes_and_everything_else_is_left_to_the_streaming_decoder() {
        let text: Vec<u8> = (0..200_000u32).flat_map(|i| format!("{{\"n\":{i}}},").into_bytes()).collect();
        let one = gz(&text);
        assert_eq!(single_member(&one, 128 << 20).as_deref(), Some(&text[..]));
        assert_eq!(single_member(&gz(b""), 10).as_deref(), Some(&b""[..]));
        // Past the limit.
        assert_eq!(single_member(&one, text.len() as u64 - 1), None);
        // Two members: the second would be lost by a one-member decoder.
        let two = [gz(b"{\"a\":1}"), gz(b"{\"b\":2}")].concat();
        assert_eq!(single_member(&two, 1 << 20), None);
        // A lying size, a cut stream, damage, not gzip at all.
        let mut lying = one.clone();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(single_member(&lying, 128 << 20), None);
        assert_eq!(single_member(&one[..one.len() / 2], 128 << 20), None);
        let mut damaged = one.clone();
        damaged[100] ^= 0xff;
        assert_eq!(single_member(&damaged, 128 << 20), None);
        assert_eq!(single_member(b"{\"Records\":[]}", 1 << 20), None);
    }
}

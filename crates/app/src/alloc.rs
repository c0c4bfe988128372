//! The process's allocator: the system's, with large blocks advised to be
//! backed by transparent huge pages.
//!
//! Debian's kernels leave huge pages to the program that asks
//! (`/sys/kernel/mm/transparent_hugepage/enabled` is `madvise`). The match
//! index of a million minted tokens is about 150 MiB of tables and buffers
//! written at random places once at start-up: in 4 KiB pages that is some
//! 40 000 page faults and a TLB miss on most probes, in 2 MiB pages under a
//! hundred faults. Blocks under [`LARGE`] are left alone: glibc serves them
//! from its heaps, where a huge page would mostly hold other blocks. Blocks
//! of [`LARGE`] or more are mapped on their own, so that growing one never
//! copies it into small pages first (see `map_large_blocks_on_their_own`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// The size from which a block is advised.
pub const LARGE: usize = 4 << 20;
const PAGE: usize = 4096;

/// [`System`], advising blocks of [`LARGE`] bytes or more with
/// `MADV_HUGEPAGE`. Advice only: where the kernel has no huge pages (or
/// they are off), the block is what it would have been.
pub struct HugePages;

/// The pages a block of `size` bytes at `addr` lies on, when it is
/// [`LARGE`]. The whole block is advised, not only the huge pages inside
/// it: a mapping advised in part is split in three, and `mremap` (how glibc
/// grows a block mapped on its own) refuses a block that spans mappings,
/// so glibc would copy it instead. The kernel only puts huge pages where
/// 2 MiB aligned ranges fit inside; the advice on the pages at the ends,
/// which may hold other blocks too, changes nothing there.
fn pages_of(addr: usize, size: usize) -> Option<(usize, usize)> {
    if size < LARGE {
        return None;
    }
    let start = addr / PAGE * PAGE;
    let end = addr.checked_add(size)?.checked_next_multiple_of(PAGE)?;
    Some((start, end - start))
}

fn advise(ptr: *mut u8, size: usize) {
    if ptr.is_null() {
        return;
    }
    if let Some((start, len)) = pages_of(ptr as usize, size) {
        // SAFETY: the range is the pages of a block this allocator just
        // handed out; MADV_HUGEPAGE changes how memory is backed, never its
        // contents. Refused (no huge pages in this kernel), nothing changes.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
    }
}

/// Whether glibc was told to map every large block on its own.
static MAPPED_ON_THEIR_OWN: AtomicBool = AtomicBool::new(false);

/// Makes glibc map every block of [`LARGE`] bytes or more on its own, once.
///
/// By default glibc raises that threshold each time such a block is freed
/// (up to 32 MiB), and then serves large blocks from its heap, where
/// growing one copies it into fresh small pages before this allocator can
/// advise them. Mapped on their own, large blocks grow by `mremap` (no
/// copy) and are advised before they are written.
fn map_large_blocks_on_their_own() {
    // A plain load on every call after the first (a swap is a locked write).
    if !MAPPED_ON_THEIR_OWN.load(Ordering::Relaxed) && !MAPPED_ON_THEIR_OWN.swap(true, Ordering::Relaxed) {
        #[cfg(target_env = "gnu")]
        // SAFETY: mallopt only sets a tunable; no allocator lock is held here.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE as libc::c_int);
        }
    }
}

// SAFETY: every call is passed to `System` unchanged (a block that grows
// past `LARGE` is allocated, copied and freed through it); `advise` only
// adds advice on the block returned.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        map_large_blocks_on_their_own();
        let ptr = unsafe { System.alloc(layout) };
        advise(ptr, layout.size());
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        map_large_blocks_on_their_own();
        let ptr = unsafe { System.alloc_zeroed(layout) };
        advise(ptr, layout.size());
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < LARGE && new_size >= LARGE {
            // Becoming large: moved here, into a block advised before the
            // copy writes it (glibc would copy it into small pages first).
            // SAFETY: the caller guarantees `new_size` makes a valid layout
            // with this alignment; `ptr` holds `layout.size()` bytes.
            let new = unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
            if !new.is_null() {
                unsafe {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                    self.dealloc(ptr, layout);
                }
            }
            return new;
        }
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        advise(new, new_size);
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mapping holding `addr`, from /proc/self/smaps: its range and
    /// whether it is advised for huge pages.
    fn mapping_at(addr: usize) -> (std::ops::Range<usize>, bool) {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ').filter(|(r, _)| r.contains('-') && !r.ends_with(':')) {
                let (lo, hi) = range.split_once('-').unwrap();
                let (lo, hi) = (usize::from_str_radix(lo, 16).unwrap(), usize::from_str_radix(hi, 16).unwrap());
                inside = (lo..hi).contains(&addr).then_some(lo..hi);
            } else if let (Some(range), Some(flags)) = (&inside, line.strip_prefix("VmFlags:")) {
                return (range.clone(), flags.split_whitespace().any(|f| f == "hg"));
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    /// Asserts that the block of `size` bytes at `ptr` is advised, and is
    /// one mapping (or part of one), as `mremap` needs to grow it in place.
    fn assert_advised_whole(ptr: *mut u8, size: usize) {
        let (range, advised) = mapping_at(ptr as usize);
        assert!(advised, "a block of {size} bytes is not advised");
        assert!(range.end >= ptr as usize + size, "a block of {size} bytes spans mappings: {range:x?}");
    }

    #[test]
    fn the_pages_of_large_blocks_are_advised() {
        const MIB: usize = 1 << 20;
        assert_eq!(pages_of(0x1000_0010, LARGE - 1), None);
        assert_eq!(pages_of(0x1000_0010, 64 * MIB), Some((0x1000_0000, 64 * MIB + PAGE)));
        assert_eq!(pages_of(0x1000_0000, 4 * MIB), Some((0x1000_0000, 4 * MIB)));
        assert_eq!(pages_of(usize::MAX - MIB, 8 * MIB), None);
    }

    #[test]
    fn a_large_block_is_advised_where_it_is_given_and_where_it_grows() {
        // In the same test as the rest: the count it reads is the process's.
        #[cfg(target_env = "gnu")]
        large_blocks_stay_mapped_on_their_own_after_one_is_freed();
        if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
            eprintln!("this kernel has no transparent huge pages; nothing to advise");
            return;
        }
        let large = Layout::from_size_align(16 << 20, 8).unwrap();
        unsafe {
            for zeroed in [false, true] {
                let ptr = if zeroed { HugePages.alloc_zeroed(large) } else { HugePages.alloc(large) };
                assert_advised_whole(ptr, large.size());
                HugePages.dealloc(ptr, large);
            }
            // Grown past the size, and grown again.
            let small = Layout::from_size_align(64 << 10, 8).unwrap();
            let ptr = HugePages.alloc(small);
            ptr.write_bytes(7, small.size());
            let grown = HugePages.realloc(ptr, small, 32 << 20);
            assert_advised_whole(grown, 32 << 20);
            assert!(std::slice::from_raw_parts(grown, small.size()).iter().all(|&b| b == 7), "the bytes moved");
            let grown_more = HugePages.realloc(grown, Layout::from_size_align(32 << 20, 8).unwrap(), 64 << 20);
            assert_advised_whole(grown_more, 64 << 20);
            assert!(std::slice::from_raw_parts(grown_more, small.size()).iter().all(|&b| b == 7));
            HugePages.dealloc(grown_more, Layout::from_size_align(64 << 20, 8).unwrap());
        }
    }

    #[cfg(target_env = "gnu")]
    fn large_blocks_stay_mapped_on_their_own_after_one_is_freed() {
        // glibc would serve the second block from its heap (its threshold
        // raised to 24 MiB by the first block's free), and copy it there
        // into small pages when it grows.
        let mapped = || unsafe { libc::mallinfo2() }.hblkhd;
        let first = Layout::from_size_align(24 << 20, 8).unwrap();
        let second = Layout::from_size_align(8 << 20, 8).unwrap();
        unsafe {
            HugePages.dealloc(HugePages.alloc(first), first);
            let before = mapped();
            let ptr = HugePages.alloc(second);
            assert!(mapped() >= before + (8 << 20), "an 8 MiB block was not mapped on its own");
            HugePages.dealloc(ptr, second);
        }
    }
}

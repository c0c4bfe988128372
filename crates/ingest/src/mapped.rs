//! Reading a log file where the page cache holds it, without copying it.
//!
//! `read()` copies every byte from the page cache into the process; on the
//! plain-JSON scan that copy was more than a third of the time. A file mapped
//! into memory is scanned where it lies. The danger of a mapping is a file cut
//! short while it is read (`aws s3 sync` rewriting it, an intruder with write
//! access to the log folder): touching a page past the new end raises
//! `SIGBUS`, which by default kills the process and with it the whole ingest
//! run. So a handler is installed for `SIGBUS`: when the fault lies in the
//! mapping this thread is reading, it maps zero pages over the rest of it and
//! marks the read as cut; the read then returns, and the caller reads the file
//! again the ordinary way. A fault anywhere else goes to the handler that was
//! there before (the standard library's), so every other fault ends the
//! process as it would have.
//!
//! A mapped file may also change while it is read. What is read from a
//! mapping is only searched (byte comparisons, bounds-checked positions);
//! anything parsed or turned into text is copied out first (see
//! [`crate::Detector::read_shared`]), so no `&str` is ever made of bytes
//! that may change under it.

use std::cell::Cell;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Files smaller than this are read: a mapping's set-up and faults cost
/// more than copying a few pages.
pub const MIN_MAPPED: u64 = 64 << 10;

thread_local! {
    /// The mapping this thread is reading: start and length in whole pages.
    static MAPPED: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Whether the file was cut short while this thread read it.
    static CUT: Cell<bool> = const { Cell::new(false) };
}

/// The `SIGBUS` disposition before ours, for every fault that is not ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
static PAGE: AtomicUsize = AtomicUsize::new(0);

/// What [`with_file`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Mapped<R> {
    /// The file was mapped and read whole, as it was when mapped.
    Read(R),
    /// The file was cut short while it was read: what was read is not the
    /// file, and the caller must read it again.
    Cut,
    /// The file could not be mapped (a pipe, a file system without
    /// mappings, no address space): the caller reads it.
    Unmapped,
}

/// Maps the first `len` bytes of `file` and gives them to `read`.
pub fn with_file<R>(file: &File, len: u64, read: impl FnOnce(&[u8]) -> R) -> Mapped<R> {
    let Ok(len) = usize::try_from(len) else { return Mapped::Unmapped };
    if len == 0 || !install() {
        return Mapped::Unmapped;
    }
    // SAFETY: a new private, read-only mapping of an open file; the kernel
    // picks the address. Nothing else refers to it until it is unmapped below.
    let start =
        unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
    if start == libc::MAP_FAILED {
        return Mapped::Unmapped;
    }
    let page = PAGE.load(Ordering::Relaxed);
    let pages = len.div_ceil(page) * page;
    MAPPED.with(|m| m.set((start as usize, pages)));
    CUT.with(|c| c.set(false));
    // Unmaps (and forgets) the mapping however `read` ends, a panic included.
    struct Unmap(*mut libc::c_void, usize);
    impl Drop for Unmap {
        fn drop(&mut self) {
            MAPPED.with(|m| m.set((0, 0)));
            // SAFETY: the mapping made above (some of its pages possibly
            // replaced by the handler's), no longer referred to.
            unsafe { libc::munmap(self.0, self.1) };
        }
    }
    let _unmap = Unmap(start, pages);
    // SAFETY: `len` readable bytes at `start`, mapped until `_unmap` drops;
    // a page the file no longer has is replaced with zeros by `on_sigbus`.
    let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, len) };
    let out = read(bytes);
    if CUT.with(Cell::get) {
        Mapped::Cut
    } else {
        Mapped::Read(out)
    }
}

/// Installs the `SIGBUS` handler once; `false` when it cannot be (then
/// nothing is mapped).
fn install() -> bool {
    static DONE: OnceLock<bool> = OnceLock::new();
    *DONE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page <= 0 {
            return false;
        }
        PAGE.store(page as usize, Ordering::Relaxed);
        // SAFETY: zeroed is a valid `sigaction` (no handler, no flags, empty mask).
        let mut ours: libc::sigaction = unsafe { std::mem::zeroed() };
        ours.sa_sigaction = on_sigbus as *const () as usize;
        // The standard library's handler runs on the alternate stack; so
        // does ours, which may hand a fault on to it.
        ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: plain zeroed storage for the kernel to fill.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: reads the current disposition only.
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
            return false;
        }
        // Set before the handler can run: it reads it.
        if PREVIOUS.set(previous).is_err() {
            return false;
        }
        // SAFETY: `ours` is a valid handler for SA_SIGINFO.
        unsafe { libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut()) == 0 }
    })
}

/// The `SIGBUS` handler: a fault in this thread's mapping maps zero pages
/// over the rest of it and marks the read as cut (the faulting read then
/// reads zeros); any other goes to the previous disposition. Only
/// async-signal-safe calls: `mmap`, `sigaction` and thread-local cells.
extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, len) = MAPPED.try_with(Cell::get).unwrap_or((0, 0));
    if len != 0 && addr.wrapping_sub(start) < len {
        let page = PAGE.load(Ordering::Relaxed);
        let from = addr & !(page - 1);
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
        // SAFETY: replaces pages of this thread's own mapping, which it is
        // reading and nothing else refers to, with zero pages.
        let zeros = unsafe { libc::mmap(from as *mut libc::c_void, start + len - from, libc::PROT_READ, flags, -1, 0) };
        if zeros != libc::MAP_FAILED {
            // The flag is a plain cell: set before the faulting read resumes.
            let _cut = CUT.try_with(|c| c.set(true));
            return;
        }
    }
    let Some(previous) = PREVIOUS.get() else { return };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // The default action: the faulting access runs again and ends the
        // process (an ignored SIGBUS from a fault cannot be ignored).
        // SAFETY: zeroed is SIG_DFL with no flags.
        let mut default: libc::sigaction = unsafe { std::mem::zeroed() };
        default.sa_sigaction = libc::SIG_DFL;
        // SAFETY: restores the default disposition.
        unsafe { libc::sigaction(signal, &default, std::ptr::null_mut()) };
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: a handler installed with SA_SIGINFO takes these arguments.
        type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
        let run = unsafe { std::mem::transmute::<libc::sighandler_t, Handler>(handler) };
        run(signal, info, context);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes the signal only.
        let run = unsafe { std::mem::transmute::<libc::sighandler_t, extern "C" fn(libc::c_int)>(handler) };
        run(signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        let open = File::open(f.path()).unwrap();
        (f, open)
    }

    #[test]
    fn a_mapped_file_reads_as_written() {
        let data: Vec<u8> = (0..300_001u32).map(|i| (i % 251) as u8).collect();
        let (_keep, file) = file_of(&data);
        assert_eq!(with_file(&file, data.len() as u64, |b| b == &data[..]), Mapped::Read(true));
        assert_eq!(with_file(&file, 0, |_| ()), Mapped::Unmapped);
    }

    /// The file is cut short after it was mapped: reading past the new end
    /// reads zeros instead of killing the process, and the read says so.
    /// Reading the file again after that works as ever.
    #[test]
    fn a_file_cut_short_while_mapped_is_reported_not_fatal() {
        let data = vec![b'x'; 1 << 20];
        let (keep, file) = file_of(&data);
        let out = with_file(&file, data.len() as u64, |bytes| {
            keep.as_file().set_len(5000).unwrap();
            // Every page, the ones past the new end included.
            (bytes.len(), bytes.iter().filter(|&&b| b == b'x').count())
        });
        assert_eq!(out, Mapped::Cut);
        assert_eq!(with_file(&file, 5000, |b| b.iter().all(|&c| c == b'x')), Mapped::Read(true));
        // Another thread's reads are unaffected by this one's cut.
        let other = std::thread::spawn(move || with_file(&file, 5000, |b| b.len())).join().unwrap();
        assert_eq!(other, Mapped::Read(5000));
    }

    /// A SIGBUS that is not a read of one of our mappings still ends the
    /// process: run in a child process of this test binary.
    #[test]
    fn a_fault_outside_our_mappings_still_ends_the_process() {
        use std::os::unix::process::ExitStatusExt;
        const CHILD: &str = "HONEYTRAIL_SIGBUS_CHILD";
        if std::env::var_os(CHILD).is_some() {
            // No core file from the fault this child is for.
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: sets this process's own limit.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) }, 0);
            let (keep, file) = file_of(&[b'x'; 8192]);
            // Ours is installed, then a mapping of our own (not through
            // `with_file`) is read past the file's end.
            assert!(install());
            // SAFETY: a fresh read-only mapping of an open file.
            let p = unsafe {
                libc::mmap(std::ptr::null_mut(), 8192, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0)
            };
            assert_ne!(p, libc::MAP_FAILED);
            keep.as_file().set_len(0).unwrap();
            // SAFETY: within the mapping; the fault is the point of the test.
            let byte = unsafe { std::ptr::read_volatile((p as *const u8).add(4096)) };
            panic!("read {byte} past the end of a cut file without a fault");
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "mapped::tests::a_fault_outside_our_mappings_still_ends_the_process", "--nocapture"])
            .env(CHILD, "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}");
    }
}

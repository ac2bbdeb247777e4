//! Anonymous memory for green-thread stacks, with a guard region at the low end.
//!
//! ```text
//!   high addresses
//!   +---------------------+ <- start + len   (stack base: the stack grows down from here)
//!   |                     |
//!   |   usable stack      |  committed lazily: a page costs RSS only once touched
//!   |                     |
//!   +---------------------+ <- start + guard (stack limit)
//!   |   guard region      |  any access faults: SIGSEGV, reported as a stack overflow
//!   +---------------------+ <- start
//!   low addresses
//! ```
//!
//! The guard is installed with `madvise(MADV_GUARD_INSTALL)` (Linux >= 6.13), which marks the
//! page-table entries instead of splitting the mapping. The old way, `mprotect(PROT_NONE)`,
//! splits every stack into two VMAs and so caps a process at about 32K stacks
//! (`vm.max_map_count` = 65530); we fall back to it only on older kernels.

use std::io;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// `MADV_GUARD_INSTALL` from `<linux/mman.h>` (Linux 6.13); the libc crate does not name it yet.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Which guard mechanism this kernel accepted: 0 = not tried yet, 1 = madvise, 2 = mprotect.
static GUARD_MODE: AtomicU8 = AtomicU8::new(0);
const GUARD_UNKNOWN: u8 = 0;
const GUARD_MADVISE: u8 = 1;
const GUARD_MPROTECT: u8 = 2;

/// The size of a memory page in bytes: asked of the system once, then remembered (every
/// spawn rounds a stack size with it, and `sysconf` cost ~50 instructions a call — 5% of a
/// spawn+join in a burst).
pub(crate) fn page_size() -> usize {
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    match PAGE_SIZE.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf with a valid name has no preconditions.
            let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let size = if size > 0 { size as usize } else { 4096 };
            PAGE_SIZE.store(size, Ordering::Relaxed);
            size
        }
        known => known,
    }
}

/// Reserves `len` bytes of lazily committed, readable and writable anonymous memory.
pub(crate) fn map_anonymous(len: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh private anonymous mapping at an address the kernel chooses touches no
    // existing memory; we check for MAP_FAILED below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(ptr.cast())
}

/// Returns a mapping made by [`map_anonymous`] to the kernel.
///
/// # Safety
/// `ptr..ptr + len` must be exactly one mapping from [`map_anonymous`] that nothing uses any more.
pub(crate) unsafe fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees the range is ours and unused.
    let rc = unsafe { libc::munmap(ptr.cast(), len) };
    debug_assert_eq!(rc, 0, "munmap failed: {}", io::Error::last_os_error());
}

/// Whether a forked child gets a copy of `ptr..ptr + len`: `madvise(MADV_DOFORK)` or
/// `madvise(MADV_DONTFORK)`. A range left out is simply absent in the child, and the fork does
/// not spend time copying its page tables.
///
/// # Safety
/// The range must be page aligned and lie in mappings owned by the caller; when `copied` is
/// false, no code a child runs after a `fork` may touch it.
pub(crate) unsafe fn set_copied_on_fork(ptr: *mut u8, len: usize, copied: bool) -> io::Result<()> {
    let advice = if copied {
        libc::MADV_DOFORK
    } else {
        libc::MADV_DONTFORK
    };
    // SAFETY: the caller owns the range; the advice changes only what a fork copies.
    let rc = unsafe { libc::madvise(ptr.cast(), len, advice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes `ptr..ptr + len` fault on any access, preferring `MADV_GUARD_INSTALL`.
///
/// # Safety
/// The range must be page aligned and lie inside a mapping owned by the caller that holds no
/// live data.
pub(crate) unsafe fn install_guard(ptr: *mut u8, len: usize) -> io::Result<()> {
    if GUARD_MODE.load(Ordering::Relaxed) != GUARD_MPROTECT {
        // SAFETY: the caller owns the range; madvise only changes its page-table entries.
        let rc = unsafe { libc::madvise(ptr.cast(), len, MADV_GUARD_INSTALL) };
        if rc == 0 {
            GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) || guard_mode() == GUARD_MADVISE {
            return Err(err);
        }
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    // SAFETY: as above; PROT_NONE on memory that holds nothing cannot break a live reference.
    let rc = unsafe { libc::mprotect(ptr.cast(), len, libc::PROT_NONE) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// [`install_guard`] on many ranges at once: one `process_madvise(2)` call for up to
/// `UIO_MAXIOV` (1024) of them where the kernel allows it on the calling process (Linux
/// 6.13 lifted its restrictions for the caller itself, the same release that added
/// `MADV_GUARD_INSTALL`); else one call per range. About 0.7 µs a stack instead of 1.2 µs.
///
/// # Safety
/// As [`install_guard`], for every range.
pub(crate) unsafe fn install_guards(ranges: &[(*mut u8, usize)]) -> io::Result<()> {
    let mut done = 0;
    if guard_mode() == GUARD_MADVISE && ranges.len() > 1 {
        done = guards_in_one_call(ranges); // one range: one plain madvise is cheaper
    }
    for &(ptr, len) in &ranges[done..] {
        // SAFETY: the caller's guarantee, range by range.
        unsafe { install_guard(ptr, len)? };
    }
    Ok(())
}

/// How many leading `ranges` one `process_madvise` call guarded (0 if it is refused).
fn guards_in_one_call(ranges: &[(*mut u8, usize)]) -> usize {
    const UIO_MAXIOV: usize = 1024;
    let ranges = &ranges[..ranges.len().min(UIO_MAXIOV)];
    let iov: Vec<libc::iovec> = ranges
        .iter()
        .map(|&(ptr, len)| libc::iovec {
            iov_base: ptr.cast(),
            iov_len: len,
        })
        .collect();
    let Ok(me) = super::process::pidfd_open(std::process::id() as libc::pid_t) else {
        return 0;
    };
    // SAFETY: `iov` describes ranges the caller owns (see `install_guards`) and lives across
    // the call; the pidfd names this process.
    let advised = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            std::os::fd::AsRawFd::as_raw_fd(&me),
            iov.as_ptr(),
            iov.len(),
            MADV_GUARD_INSTALL,
            0,
        )
    };
    let Ok(mut bytes) = usize::try_from(advised) else {
        return 0; // refused (an older kernel): fall back to one madvise per range
    };
    // A partial result covers whole leading ranges (and perhaps part of one, which the
    // fallback simply guards again).
    ranges
        .iter()
        .take_while(|&&(_, len)| {
            let whole = bytes >= len;
            bytes = bytes.saturating_sub(len);
            whole
        })
        .count()
}

fn guard_mode() -> u8 {
    GUARD_MODE.load(Ordering::Relaxed)
}

/// `"madvise"` or `"mprotect"`: the guard mechanism in use, for reports; `"unknown"` before
/// the first stack is made.
pub(crate) fn guard_mechanism() -> &'static str {
    match guard_mode() {
        GUARD_UNKNOWN => "unknown",
        GUARD_MADVISE => "madvise(MADV_GUARD_INSTALL)",
        GUARD_MPROTECT => "mprotect(PROT_NONE)",
        _ => unreachable!("GUARD_MODE holds one of the three constants"),
    }
}

/// The resident set size of this process in bytes, read from `/proc/self/statm`.
pub(crate) fn resident_bytes() -> io::Result<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/self/statm"))?;
    Ok(pages * page_size())
}

/// How many bytes of `start..start + len` (a page-aligned mapping of ours) are resident,
/// by `mincore(2)`. `scratch` is reused between calls.
pub(crate) fn resident_in(start: usize, len: usize, scratch: &mut Vec<u8>) -> usize {
    let page = page_size();
    let pages = len.div_ceil(page);
    scratch.clear();
    scratch.resize(pages, 0);
    // SAFETY: the range is a mapping owned by the caller; `scratch` has one byte per page.
    let rc = unsafe { libc::mincore(start as *mut libc::c_void, len, scratch.as_mut_ptr()) };
    if rc < 0 {
        return 0;
    }
    scratch.iter().filter(|&&b| b & 1 != 0).count() * page
}

//! Shared memory mappings: anonymous ones inherited across `fork`, and files in `/dev/shm`
//! that unrelated processes can open by name.
//!
//! Both are `MAP_SHARED`: a store by one process is seen by every process that maps the same
//! pages, and futexes in them are shared (see [`super::futex`]).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Maps `len` bytes of zeroed memory that a `fork`ed child shares with its parent.
pub(crate) fn map_shared_anonymous(len: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh anonymous mapping at an address the kernel picks touches no existing
    // memory; MAP_FAILED is checked below.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(ptr.cast())
}

/// Maps the first `len` bytes of `file` shared. The file must be at least `len` long.
pub(crate) fn map_shared_file(file: &File, len: usize) -> io::Result<*mut u8> {
    // SAFETY: a new mapping of an open file at an address the kernel picks; the caller has
    // checked the file's size, so no page of the mapping lies past its end (no SIGBUS).
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(ptr.cast())
}

/// Unmaps a mapping made by this module.
///
/// # Safety
/// `ptr..ptr + len` must be exactly one such mapping that nothing uses any more.
pub(crate) unsafe fn unmap_shared(ptr: *mut u8, len: usize) {
    // SAFETY: guaranteed by the caller.
    let rc = unsafe { libc::munmap(ptr.cast(), len) };
    debug_assert_eq!(rc, 0, "munmap failed: {}", io::Error::last_os_error());
}

/// Runs `f` when the process exits through `exit` (a return from `main` included), but not
/// through `_exit` or a signal. Used to remove named objects that were never dropped.
pub(crate) fn at_exit(f: extern "C" fn()) {
    // SAFETY: atexit stores a plain function pointer; `f` is 'static.
    unsafe { libc::atexit(f) };
}

/// This process's effective user id.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// 64 bits from the kernel's random source (for names others must not guess).
pub(crate) fn random_u64() -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    random_bytes(&mut bytes)?;
    Ok(u64::from_ne_bytes(bytes))
}

/// Fills `bytes` (at most 256) from the kernel's random source (names, challenges).
pub(crate) fn random_bytes(bytes: &mut [u8]) -> io::Result<()> {
    assert!(
        bytes.len() <= 256,
        "getrandom fills at most 256 bytes in one call"
    );
    // SAFETY: `bytes` is valid for `bytes.len()` bytes of writes.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The named mappings of this process, for the SIGBUS report: a fixed table of plain atomics
/// that a signal handler may read. Each entry: start, length, and the file's path (leaked
/// bytes, never freed, so a handler never reads freed memory). 0 start = free slot.
const NAMED_SLOTS: usize = 256;
static NAMED_START: [AtomicUsize; NAMED_SLOTS] = [const { AtomicUsize::new(0) }; NAMED_SLOTS];
static NAMED_LEN: [AtomicUsize; NAMED_SLOTS] = [const { AtomicUsize::new(0) }; NAMED_SLOTS];
static NAMED_PATH: [AtomicPtr<u8>; NAMED_SLOTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; NAMED_SLOTS];
static NAMED_PATH_LEN: [AtomicUsize; NAMED_SLOTS] = [const { AtomicUsize::new(0) }; NAMED_SLOTS];

/// Notes that `len` bytes at `start` map the file `path` (beyond 256 named mappings, the
/// rest are not reported by name: they die with the plain SIGBUS).
pub(crate) fn note_named_mapping(start: *mut u8, len: usize, path: &std::path::Path) {
    for i in 0..NAMED_SLOTS {
        if NAMED_START[i]
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // Leaked only once a slot is ours: a full table leaks nothing.
            let bytes: &'static [u8] = Box::leak(
                path.as_os_str()
                    .as_encoded_bytes()
                    .to_vec()
                    .into_boxed_slice(),
            );
            NAMED_LEN[i].store(len, Ordering::Relaxed);
            NAMED_PATH[i].store(bytes.as_ptr().cast_mut(), Ordering::Relaxed);
            NAMED_PATH_LEN[i].store(bytes.len(), Ordering::Relaxed);
            NAMED_START[i].store(start as usize, Ordering::Release);
            return;
        }
    }
}

/// Forgets the named mapping at `start` (it is being unmapped).
pub(crate) fn forget_named_mapping(start: *mut u8) {
    for slot in &NAMED_START {
        if slot
            .compare_exchange(start as usize, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// The path of the named mapping that contains `addr`, if any. Async-signal-safe.
pub(crate) fn truncated_mapping(addr: usize) -> Option<&'static [u8]> {
    (0..NAMED_SLOTS).find_map(|i| {
        let start = NAMED_START[i].load(Ordering::Acquire);
        let len = NAMED_LEN[i].load(Ordering::Relaxed);
        if start == 0 || start == usize::MAX || addr < start || addr >= start.saturating_add(len) {
            return None;
        }
        let (path, path_len) = (
            NAMED_PATH[i].load(Ordering::Relaxed),
            NAMED_PATH_LEN[i].load(Ordering::Relaxed),
        );
        // SAFETY: the path bytes were leaked in `note_named_mapping` and are never freed.
        (!path.is_null()).then(|| unsafe { std::slice::from_raw_parts(path, path_len) })
    })
}

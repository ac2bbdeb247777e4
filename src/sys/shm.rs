//! Shared memory mappings: anonymous ones inherited across `fork`, and files in `/dev/shm`
//! that unrelated processes can open by name.
//!
//! Both are `MAP_SHARED`: a store by one process is seen by every process that maps the same
//! pages, and futexes in them are shared (see [`super::futex`]).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

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
    // SAFETY: `bytes` is valid for 8 bytes of writes.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(bytes))
}

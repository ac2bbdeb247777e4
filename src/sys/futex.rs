//! Futexes: the kernel's "sleep while this word still holds that value" primitive.
//!
//! A futex is a 32-bit word in memory plus a kernel wait queue keyed by the word's *physical*
//! location. Because the key is the page and offset, not the virtual address, a word in a
//! `MAP_SHARED` mapping is the same futex in every process that maps it — as long as the
//! call does **not** pass `FUTEX_PRIVATE_FLAG`, which would key it by (process, address).
//! greenrt's ipc primitives never pass it.
//!
//! | call                    | meaning                                                         |
//! |-------------------------|-----------------------------------------------------------------|
//! | [`wait`]                | sleep if `*word == expected`, until woken or an absolute deadline |
//! | [`wake`]                | wake up to `n` sleepers on `word`                               |
//! | [`wait_any`]            | `futex_waitv` (Linux 5.16): sleep on up to 128 words at once    |
//!
//! Deadlines are absolute `CLOCK_MONOTONIC` times (`FUTEX_WAIT_BITSET` takes an absolute
//! time), so a wait that is interrupted by a signal and restarted still ends on time.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

/// The most words one [`wait_any`] call accepts (`FUTEX_WAITV_MAX`).
pub(crate) const WAITV_MAX: usize = 128;

/// `futex_waitv` flag: the word is 32 bits (`FUTEX2_SIZE_U32`). No `FUTEX2_PRIVATE`.
const FUTEX2_SIZE_U32: u32 = 2;

/// One entry of a [`wait_any`] call (`struct futex_waitv`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitEntry {
    val: u64,
    uaddr: u64,
    flags: u32,
    reserved: u32,
}

impl WaitEntry {
    /// Sleep while `*word == expected`.
    pub(crate) fn new(word: *const AtomicU32, expected: u32) -> WaitEntry {
        WaitEntry {
            val: expected as u64,
            uaddr: word as u64,
            flags: FUTEX2_SIZE_U32,
            reserved: 0,
        }
    }
}

/// What a wait ended with. Every outcome may be spurious: callers re-check their word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woke {
    /// Woken, or the word no longer held the expected value, or a signal arrived.
    Maybe,
    /// The deadline passed.
    TimedOut,
}

/// An absolute `CLOCK_MONOTONIC` time, which is the clock `Instant` reads on Linux.
fn monotonic_deadline(deadline: Instant) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let left = deadline.saturating_duration_since(Instant::now());
    let mut sec = now
        .tv_sec
        .saturating_add(left.as_secs().min(i64::MAX as u64 / 2) as i64);
    let mut nsec = now.tv_nsec + left.subsec_nanos() as i64;
    if nsec >= 1_000_000_000 {
        sec += 1;
        nsec -= 1_000_000_000;
    }
    libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    }
}

/// Sleeps while `*word == expected`, until woken or `deadline` (absolute, monotonic).
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Woke {
    let ts = deadline.map(monotonic_deadline);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    loop {
        // SAFETY: `word` is a live, aligned u32 for the duration of the call; `ts_ptr` is null
        // or points to `ts`, alive on this frame. FUTEX_WAIT_BITSET without FUTEX_CLOCK_REALTIME
        // takes an absolute CLOCK_MONOTONIC deadline; the bitset must be non-zero.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT_BITSET,
                expected,
                ts_ptr,
                std::ptr::null::<u32>(),
                libc::FUTEX_BITSET_MATCH_ANY,
            )
        };
        if rc == 0 {
            return Woke::Maybe;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::ETIMEDOUT) => return Woke::TimedOut,
            // EINTR: restart with the same absolute deadline.
            Some(libc::EINTR) => continue,
            // EAGAIN: the word had already changed.
            _ => return Woke::Maybe,
        }
    }
}

/// Wakes up to `n` threads sleeping on `word` (in any process). Returns how many woke.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32) as i32;
    // SAFETY: FUTEX_WAKE only uses the address as a key; it never dereferences it here.
    let rc = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n) };
    rc.max(0) as usize
}

/// Sleeps until any entry's word differs from its value, or one is woken, or `deadline`.
/// Returns the index of the woken entry when the kernel names one.
///
/// An address that is no longer mapped (`EFAULT`) counts as a wake-up: the caller rebuilds
/// its list. Errors: `ENOSYS` on kernels before 5.16.
pub(crate) fn wait_any(
    entries: &[WaitEntry],
    deadline: Option<Instant>,
) -> io::Result<Option<usize>> {
    assert!(
        entries.len() <= WAITV_MAX,
        "futex_waitv takes at most {WAITV_MAX} words"
    );
    let ts = deadline.map(monotonic_deadline);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `entries` is a valid array of `struct futex_waitv` of the given length; each
    // address was a live word when the entry was made and the kernel checks it (EFAULT).
    // The deadline is absolute CLOCK_MONOTONIC, alive on this frame.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex_waitv,
            entries.as_ptr(),
            entries.len() as libc::c_uint,
            0 as libc::c_uint,
            ts_ptr,
            libc::CLOCK_MONOTONIC,
        )
    };
    if rc >= 0 {
        return Ok(Some(rc as usize));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN | libc::EINTR | libc::ETIMEDOUT | libc::EFAULT) => Ok(None),
        _ => Err(err),
    }
}

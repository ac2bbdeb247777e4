//! CPU hints.

use std::sync::atomic::{AtomicU8, Ordering, compiler_fence};

/// Asks the CPU to fetch the cache line holding `addr` *for writing* (exclusive), without
/// waiting: a later store to it then does not stall on taking the line from another core.
/// Only a hint — an unmapped address is ignored, never a fault.
///
/// Written as `prefetchw` in assembly: `_mm_prefetch::<_MM_HINT_ET0>` is compiled to a plain
/// *read* prefetch unless the whole build enables the `prfchw` target feature, which the
/// default x86-64 target does not (found by disassembly in session 9: the queue's "prefetch
/// for write" had never been one; made one, 64-byte messages between two processes went up
/// 4–26% in three sets of 24 alternating runs). CPUs without the instruction get the read
/// prefetch.
#[inline(always)]
pub(crate) fn prefetch_for_write(addr: *const u8) {
    if has_prefetchw() {
        prefetchw(addr);
    } else {
        prefetch_for_read(addr);
    }
}

/// [`prefetch_for_write`] of the `LINES` consecutive cache lines from the one holding
/// `first`, asking whether the CPU has `prefetchw` once for all of them (the loop, of a
/// constant count, is unrolled into one instruction per line).
#[inline(always)]
pub(crate) fn prefetch_lines_for_write<const LINES: usize>(first: *const u8) {
    if has_prefetchw() {
        for line in 0..LINES {
            prefetchw(first.wrapping_add(line * 64));
        }
    } else {
        for line in 0..LINES {
            prefetch_for_read(first.wrapping_add(line * 64));
        }
    }
}

/// The `prefetchw` instruction itself; only for a CPU that has it.
#[inline(always)]
fn prefetchw(addr: *const u8) {
    // SAFETY: `prefetchw` is a hint: it never faults (an unmapped address is dropped),
    // writes no register or flag and no memory architecturally.
    unsafe {
        std::arch::asm!(
            "prefetchw [{0}]",
            in(reg) addr,
            options(nostack, preserves_flags, readonly)
        )
    };
}

/// Asks the CPU to fetch the cache line holding `addr` for reading, without waiting. Only a
/// hint — an unmapped address is ignored, never a fault.
#[inline(always)]
pub(crate) fn prefetch_for_read(addr: *const u8) {
    use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: as in `prefetchw`: a prefetch never faults.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(addr.cast::<i8>()) };
}

/// Orders the memory accesses before the locked read-modify-write instruction this thread
/// just executed before every access after this call, as a `fence(SeqCst)` would, at no cost.
///
/// On x86-64 every `lock`-prefixed instruction (a compare-and-swap, a swap, a fetch-add) is
/// a full barrier in the CPU: no later load passes it, no earlier store waits behind it. So
/// after one, only the *compiler* could still move a later load above it, and this stops
/// the compiler. A `fence(SeqCst)` here would be an `mfence`: as dear as a second locked
/// instruction, for nothing. Call it only right after such an instruction has executed on
/// every path that leads here.
#[inline(always)]
pub(crate) fn after_locked_instruction() {
    compiler_fence(Ordering::SeqCst);
}

/// True if the CPU has `prefetchw` (CPUID 0x8000_0001, ECX bit 8: "3DNowPrefetch", which
/// every AMD64 CPU and Intel's since Broadwell report). Asked once, then cached: the check
/// inlined into every prefetch (on the run loop's switch path) is one load and a compare;
/// the first-time CPUID stays out of line.
#[inline(always)]
fn has_prefetchw() -> bool {
    match PREFETCHW.load(Ordering::Relaxed) {
        0 => remember_prefetchw(),
        known => known == 2,
    }
}

/// `has_prefetchw`'s answer: 0 not asked yet, 1 no, 2 yes.
static PREFETCHW: AtomicU8 = AtomicU8::new(0);

/// Asks the CPU (the first call only) and caches the answer.
#[cold]
#[inline(never)]
fn remember_prefetchw() -> bool {
    let yes = cpu_reports_prefetchw();
    PREFETCHW.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
    yes
}

/// CPUID's answer: the extended leaf is asked for only if the CPU has it.
fn cpu_reports_prefetchw() -> bool {
    // `cpuid` is safe to call on x86-64.
    use core::arch::x86_64::__cpuid;
    __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hints, never accesses: an unmapped address (null, the last page) must not fault.
    #[test]
    fn prefetches_of_unmapped_addresses_do_not_fault() {
        for addr in [
            std::ptr::null::<u8>(),
            usize::MAX as *const u8,
            0x10 as *const u8,
        ] {
            prefetch_for_write(addr);
            prefetch_for_read(addr);
            prefetch_lines_for_write::<13>(addr);
        }
        let line = [0u8; 64];
        prefetch_for_write(line.as_ptr());
        assert_eq!(
            has_prefetchw(),
            cpu_reports_prefetchw(),
            "the cached answer is the CPU's"
        );
    }
}

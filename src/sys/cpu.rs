//! CPU hints.

/// Asks the CPU to fetch the cache line holding `addr` *for writing* (exclusive), without
/// waiting: a later store to it then does not stall on taking the line from another core.
/// Only a hint — an unmapped address is ignored, never a fault.
#[inline(always)]
pub(crate) fn prefetch_for_write(addr: *const u8) {
    use core::arch::x86_64::{_MM_HINT_ET0, _mm_prefetch};
    // SAFETY: `prefetch` never dereferences architecturally: an invalid address is dropped
    // by the CPU, not faulted on.
    unsafe { _mm_prefetch::<_MM_HINT_ET0>(addr.cast::<i8>()) };
}

/// Asks the CPU to fetch the cache line holding `addr` for reading, without waiting. Only a
/// hint — an unmapped address is ignored, never a fault.
#[inline(always)]
pub(crate) fn prefetch_for_read(addr: *const u8) {
    use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: as in `prefetch_for_write`: a prefetch never faults.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(addr.cast::<i8>()) };
}

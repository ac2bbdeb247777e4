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
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

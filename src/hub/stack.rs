//! Green-thread stacks: mmap'd, committed lazily, guarded. (Pooled by `stack_pool.rs`.)
//!
//! Each green thread runs on its own stack, carved from anonymous memory by `sys::mem`:
//!
//! ```text
//!   start + len  +----------------------------+  base(): corosensei starts the stack here
//!                | corosensei's initial frame |
//!                | green entry + user closure |  only the pages actually touched cost RSS
//!                |            ...             |
//!                |   (untouched: no RSS)      |
//!  start + guard +----------------------------+  limit()
//!                | guard region (faults)      |  a touch here is a stack overflow
//!         start  +----------------------------+
//! ```
//!
//! When the pool is empty, stacks are *carved* [`CARVE_BATCH`] at a time from one `mmap`,
//! their guards installed with one `process_madvise` call: a fresh stack then costs its
//! first-touch page fault and little else.
//!
//! A green thread's stack is not copied into a forked child ([`InChildren::Left`]): the
//! parent's green threads do not go on in the child, and copying the page tables of a million
//! stacks made a `fork` take a second. The one stack a fork runs on is copied all the same
//! (see `fork.rs`). A `coro` Generator's or Greenlet's stack is copied: it is a value the
//! child may own and resume.

use std::io;

use corosensei::stack::{Stack, StackPointer};

use crate::sys::mem;

/// Default usable stack size: 256 KiB of address space. Only touched pages are committed,
/// so a green thread that parks shallowly costs one or two pages of RSS however large this
/// is; the size only bounds how deep a green thread may recurse. See NOTES.md, "Stacks".
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Smallest stack we accept: corosensei's initial frame, our entry frames and a formatting
/// call such as `println!` must fit.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Size of the guard region under every stack.
pub(crate) const GUARD_SIZE: usize = 4096;

/// Stacks mapped at once when the pool is empty: one `mmap` and one guard call for all of
/// them. Untouched stacks cost address space and a page-table entry, no RSS.
pub(crate) const CARVE_BATCH: usize = 32;

/// Whether a forked child gets a copy of a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InChildren {
    /// Copied, as memory normally is (`coro` Generator and Greenlet stacks).
    Copied,
    /// Absent in the child (green threads' stacks), except while a fork runs on it.
    Left,
}

/// One green thread's stack. Unmapped on drop.
///
/// # Invariant
/// `start..start + len` is a mapping owned by this value whose lowest `GUARD_SIZE` bytes are
/// a guard region.
#[derive(Debug)]
pub(crate) struct GreenStack {
    start: *mut u8,
    len: usize,
}

impl GreenStack {
    /// Maps a stack with `usable` bytes (rounded up to whole pages) above a guard region.
    pub(crate) fn new(usable: usize, in_children: InChildren) -> io::Result<GreenStack> {
        let mut one = GreenStack::carve(rounded(usable), 1, in_children)?;
        Ok(one.pop().expect("carved one"))
    }

    /// Maps `count` stacks of `usable` bytes each (whole pages) side by side with one `mmap`,
    /// and installs their guards with one call where the kernel allows it.
    pub(crate) fn carve(
        usable: usize,
        count: usize,
        in_children: InChildren,
    ) -> io::Result<Vec<GreenStack>> {
        let len = usable + GUARD_SIZE;
        let total = len
            .checked_mul(count)
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let base = mem::map_anonymous(total)?;
        if in_children == InChildren::Left {
            // SAFETY: the mapping was just made and is ours; no child touches a green thread's
            // stack except the one its fork ran on, which `fork.rs` marks copied for the fork.
            if let Err(e) = unsafe { mem::set_copied_on_fork(base, total, false) } {
                // SAFETY: the mapping was just made, holds nothing and is handed to no one.
                unsafe { mem::unmap(base, total) };
                return Err(e);
            }
        }
        let stacks: Vec<GreenStack> = (0..count)
            .map(|i| GreenStack {
                // SAFETY: `i * len` is inside the mapping of `total` bytes just made.
                start: unsafe { base.add(i * len) },
                len,
            })
            .collect();
        let guards: Vec<(*mut u8, usize)> = stacks.iter().map(|s| (s.start, GUARD_SIZE)).collect();
        // SAFETY: each guard is the first page-aligned GUARD_SIZE bytes of a stack carved from
        // the mapping just made, which holds nothing yet. If this fails, dropping `stacks`
        // unmaps every piece of the mapping.
        unsafe { mem::install_guards(&guards)? };
        Ok(stacks)
    }

    /// Gives up ownership of the mapping: `(start, len)`, for a pool that keeps it elsewhere.
    pub(crate) fn into_raw(self) -> (*mut u8, usize) {
        let raw = (self.start, self.len);
        std::mem::forget(self);
        raw
    }

    /// Takes ownership of a mapping given up by [`into_raw`](GreenStack::into_raw).
    ///
    /// # Safety
    /// `(start, len)` came from `into_raw` and nothing else owns that mapping now.
    pub(crate) unsafe fn from_raw(start: *mut u8, len: usize) -> GreenStack {
        GreenStack { start, len }
    }

    /// Usable bytes, guard excluded.
    pub(crate) fn usable(&self) -> usize {
        self.len - GUARD_SIZE
    }

    /// The whole mapping, `(start, len)` (guard included), for counting resident pages.
    pub(crate) fn span(&self) -> (usize, usize) {
        (self.start as usize, self.len)
    }

    /// The guard region, `(low, high)`: a fault in here is an overflow of this stack.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        let low = self.start as usize;
        (low, low + GUARD_SIZE)
    }
}

impl Drop for GreenStack {
    fn drop(&mut self) {
        // SAFETY: by the invariant the mapping is ours; a stack is dropped only when no
        // coroutine runs on it (corosensei hands it back after the coroutine finished).
        unsafe { mem::unmap(self.start, self.len) }
    }
}

// SAFETY: base and limit describe the mapping owned by this value; both are page aligned,
// hence aligned to corosensei's STACK_ALIGNMENT (16), and limit includes the guard region.
unsafe impl Stack for GreenStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.start as usize + self.len).expect("a mapping is never at address 0")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.start as usize).expect("a mapping is never at address 0")
    }
}

/// `usable` as a stack is made: at least [`MIN_STACK_SIZE`], whole pages.
pub(crate) fn rounded(usable: usize) -> usize {
    usable
        .max(MIN_STACK_SIZE)
        .next_multiple_of(mem::page_size())
}

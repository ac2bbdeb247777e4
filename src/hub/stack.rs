//! Green-thread stacks: mmap'd, committed lazily, guarded, pooled.
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
//! A finished green thread's stack goes back to a per-hub pool and the next spawn takes it,
//! so a spawn+join loop makes no syscall. The pool keeps at most [`POOL_LIMIT`] stacks;
//! beyond that they are unmapped.

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
const GUARD_SIZE: usize = 4096;

/// How many finished stacks a hub keeps for reuse.
const POOL_LIMIT: usize = 1024;

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
    pub(crate) fn new(usable: usize) -> io::Result<GreenStack> {
        let page = mem::page_size();
        let usable = usable.max(MIN_STACK_SIZE).next_multiple_of(page);
        let len = usable + GUARD_SIZE;
        let start = mem::map_anonymous(len)?;
        let stack = GreenStack { start, len };
        // SAFETY: the guard region is the first page-aligned GUARD_SIZE bytes of a mapping we
        // just made and which holds nothing yet.
        unsafe { mem::install_guard(start, GUARD_SIZE)? };
        Ok(stack)
    }

    /// Usable bytes, guard excluded.
    pub(crate) fn usable(&self) -> usize {
        self.len - GUARD_SIZE
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

/// Finished stacks kept for reuse, grouped by nothing but size: a request is served only by
/// a stack of exactly the requested usable size.
#[derive(Debug, Default)]
pub(crate) struct StackPool {
    free: Vec<GreenStack>,
}

impl StackPool {
    /// A stack with `usable` bytes, from the pool when one of that size is there.
    pub(crate) fn take(&mut self, usable: usize) -> io::Result<GreenStack> {
        let wanted = usable
            .max(MIN_STACK_SIZE)
            .next_multiple_of(mem::page_size());
        match self.free.last() {
            Some(stack) if stack.usable() == wanted => Ok(self.free.pop().expect("just peeked")),
            _ => GreenStack::new(wanted),
        }
    }

    /// Returns a stack whose coroutine has finished.
    pub(crate) fn give_back(&mut self, stack: GreenStack) {
        if self.free.len() < POOL_LIMIT {
            self.free.push(stack);
        }
    }

    /// How many stacks wait for reuse.
    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }
}

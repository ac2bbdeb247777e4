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
//! so a spawn+join loop makes no syscall. Returning memory to the kernel is what costs:
//! `munmap` splits the mapping and flushes the TLB, several microseconds a stack, which would
//! land on whoever is woken next. So the pool grows freely while the hub is busy and is
//! *trimmed* back to [`POOL_KEEP`] stacks only when the hub is about to sleep in `epoll_wait`
//! for a while, a bounded number of calls at a time ([`TRIM_CALLS_PER_IDLE`]). Trimming sorts
//! the surplus by address and unmaps each run of adjacent stacks with one `munmap`: stacks
//! mapped one after another sit side by side, so a pool that emptied out goes back in a
//! handful of calls.

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

/// How many finished stacks a hub keeps for reuse after a trim.
pub(crate) const POOL_KEEP: usize = 1024;

/// The most `munmap` calls one idle moment of the hub spends on trimming.
pub(crate) const TRIM_CALLS_PER_IDLE: usize = 16;

/// The most stacks one `munmap` call releases, so that one call stays well under a
/// millisecond (its cost grows with the pages it must zap).
const RUN_LIMIT: usize = 64;

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

/// Finished stacks kept for reuse. A request is served from the pool only by a stack of
/// exactly the requested usable size.
#[derive(Debug, Default)]
pub(crate) struct StackPool {
    free: Vec<GreenStack>,
}

impl Drop for StackPool {
    fn drop(&mut self) {
        self.trim(0, usize::MAX);
    }
}

/// Pops the lowest stacks of `sorted` (sorted by descending address) while each one ends where
/// the next begins, at most [`RUN_LIMIT`] of them, forgets them, and returns the range
/// `(start, len)` they cover.
fn take_adjacent_run(sorted: &mut Vec<GreenStack>) -> Option<(*mut u8, usize)> {
    let first = sorted.pop()?;
    let (start, mut len) = (first.start, first.len);
    std::mem::forget(first);
    let mut count = 1;
    while let Some(next) = sorted.last() {
        if start as usize + len != next.start as usize || count == RUN_LIMIT {
            break;
        }
        count += 1;
        len += next.len;
        std::mem::forget(sorted.pop());
    }
    Some((start, len))
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
        self.free.push(stack);
    }

    /// True when the pool holds more than it keeps after a trim.
    pub(crate) fn needs_trim(&self) -> bool {
        self.free.len() > POOL_KEEP
    }

    /// Unmaps pooled stacks beyond [`POOL_KEEP`] (all of them with `keep = 0`), making at
    /// most `max_calls` `munmap` calls, one per run of adjacent stacks; what is left over
    /// waits for the next trim.
    pub(crate) fn trim(&mut self, keep: usize, max_calls: usize) {
        if self.free.len() <= keep {
            return;
        }
        let mut surplus = self.free.split_off(keep);
        surplus.sort_unstable_by_key(|s| std::cmp::Reverse(s.start as usize));
        let mut calls = 0;
        while calls < max_calls {
            let Some(run) = take_adjacent_run(&mut surplus) else {
                break;
            };
            // SAFETY: the run covers stacks owned by the pool whose GreenStack values were
            // forgotten by `take_adjacent_run`, so nothing else unmaps or uses that memory.
            unsafe { mem::unmap(run.0, run.1) };
            calls += 1;
        }
        self.free.append(&mut surplus);
    }

    /// How many stacks wait for reuse.
    /// The mappings of the pooled stacks, `(start, len)`.
    pub(crate) fn spans(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.free.iter().map(GreenStack::span)
    }

    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }
}

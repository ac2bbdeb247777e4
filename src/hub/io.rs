//! Waiting for a file descriptor: the one I/O-wait API of the hub.
//!
//! Everything in greenrt that waits for an fd — green sockets (`net`), the `monkey` hooks
//! (`read`, `accept`, `poll`, `select`...), pipes and process joins — comes here. The hub keeps
//! one **I/O table**: for each fd number at most one *source*, which is at most one epoll
//! registration however many green threads wait on it, in whichever directions.
//!
//! ```text
//!   by_fd:    fd 7 ──> key(slot 2, gen 9)          sources (a generation-tagged slab)
//!             fd 9 ──> key(slot 0, gen 4)          slot 0: fd 9  readers [G3]     writers []
//!                                                  slot 2: fd 7  readers [G1, G5] writers [G2]
//!                                                          ready [no, yes] closed [no, no]
//!                                                          owned by a socket: yes, calls: 1
//! ```
//!
//! **Who holds a source.** A green socket (`net::GreenFd`) *owns* the source of its fd for
//! its whole life and keeps its readiness between calls. A hooked call on an fd greenrt does
//! not own holds the source only while it waits: the first such wait adds the fd to epoll,
//! later ones (a reader and a writer on one `std` socket, two acceptors on one listener,
//! `poll(2)` on a green socket's fd) join it, and the last one to leave takes it out again.
//!
//! **Identity.** fd numbers are reused: close fd 7, open a socket, and it is fd 7 again. A
//! source is named by its slab key, whose generation changes on every reuse of the slot, and
//! epoll events carry that key, so a late event or a late clean-up for the old fd 7 finds
//! nothing instead of the new socket. When a wait joins an existing source it re-arms it
//! (`EPOLL_CTL_MOD`), which also proves the epoll entry still belongs to the file fd 7 names
//! now; if it does not (the fd was closed behind the table's back and reused), the old source
//! is dropped and its waiters are told the fd was closed. A `close` through the `monkey`
//! hooks, or the drop of a green socket, drops the source at once and wakes its waiters with
//! "closed" (`EBADF`), as gevent does.
//!
//! **Readiness.** Registrations are edge-triggered. That is enough because every waiter
//! tried its operation and saw `WouldBlock` before parking, and events are only collected
//! while it is parked. Per direction a source remembers whether it is known *not* ready (a
//! `WouldBlock` or a short transfer; cleared by the next event), so a green socket can park at
//! once instead of making a syscall that would only say `EAGAIN`, and whether the peer closed
//! it (final: an end of stream that came with the last data brings no further event).
//!
//! **The whole step.** [`retry`] is the loop every blocking-looking fd operation runs: try
//! the call; on `WouldBlock`, park until the fd may be ready, the deadline passes, the fd is
//! closed, or the green thread is killed or its `timeout` fires; then try again. A green
//! socket runs it as [`retry_socket`], the hot path of every server: the hub and the
//! socket's key are looked up once per call, the remembered readiness is consulted, and a
//! wait is a single out-of-line frame ([`Hub::io_wait_one`]) — what a parked connection
//! keeps on its stack, and brings back through the cache on each round trip. Rust callers
//! let kill and timeout *unwind* (`Interrupts::Unwind`); the `monkey` hooks, which run inside
//! an `extern "C"` function that must not unwind, get them back as [`Stop::Interrupted`]
//! (`Interrupts::Report`) and turn them into an errno.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::green::{Green, Wait};
use super::park::Interrupt;
use super::reactor::{Direction, Shared};
use super::slab::{Key, Slab};
use super::timers::TimerAction;
use super::waiters::Waiters;
use super::{Hub, with_existing_hub};

/// One fd number's registration: see the module docs.
struct Source {
    fd: RawFd,
    /// A green socket owns this source for its life.
    owned: bool,
    /// Hooked calls holding it while they wait.
    calls: u32,
    readers: Waiters,
    writers: Waiters,
    /// Per direction: false once an operation said `WouldBlock` (or moved less than asked),
    /// true again at the next event. Starts true: a fresh fd may well be ready.
    ready: [bool; 2],
    /// Per direction: the peer closed it or the fd has an error. Never cleared.
    closed: [bool; 2],
}

impl Source {
    fn new(fd: RawFd) -> Source {
        Source {
            fd,
            owned: false,
            calls: 0,
            readers: Waiters::default(),
            writers: Waiters::default(),
            ready: [true, true],
            closed: [false, false],
        }
    }

    fn waiters(&mut self, dir: Direction) -> &mut Waiters {
        match dir {
            Direction::Read => &mut self.readers,
            Direction::Write => &mut self.writers,
        }
    }

    fn unheld(&self) -> bool {
        !self.owned && self.calls == 0
    }
}

/// The hub's I/O table. See the module docs.
pub(crate) struct IoTable {
    /// fd number → its current source.
    by_fd: RefCell<Vec<Option<Key>>>,
    sources: RefCell<Slab<Source>>,
    /// Green threads parked on some source right now (for the deadlock check).
    waiting: Cell<usize>,
    /// The waiters an event wakes, moved out of their source's list so that neither list
    /// gives up its allocation (a wake-up per round trip would otherwise free one, and the
    /// next park allocate it again).
    woken: Cell<Vec<Rc<Green>>>,
}

/// Who takes a source: a green socket for its life, or one hooked call for its wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    Socket,
    Call,
}

/// Why a wait for an fd ended without the fd becoming ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The deadline passed.
    TimedOut,
    /// The fd was closed (through the hooks, or its green socket was dropped).
    Closed,
    /// Killed, or a `timeout` fired (only with [`Interrupts::Report`]).
    Interrupted(Interrupt),
}

/// What a kill or an expired `timeout` does to a waiting caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interrupts {
    /// Unwind the green thread from its park (Rust callers).
    Unwind,
    /// Return [`Stop::Interrupted`] and leave the interrupt pending for the next park point
    /// that can unwind (callers inside `extern "C"` hooks).
    #[cfg_attr(not(feature = "monkey"), allow(dead_code))]
    Report,
}

impl Hub {
    /// Takes the source of `fd` for `holder`, adding the fd to epoll if no one holds it yet.
    /// Fails for an fd epoll refuses (a regular file, which is always ready).
    pub(crate) fn io_take(&self, fd: RawFd, holder: Holder) -> io::Result<Key> {
        if let Some(key) = self.io.key_of(fd) {
            if self.reactor.refresh(fd, key).is_ok() {
                self.io.hold(key, holder);
                return Ok(key);
            }
            // The epoll entry is not this fd's any more: closed behind our back, maybe reused.
            self.io_forget(key);
        }
        let key = self.io.sources.borrow_mut().insert(Source::new(fd));
        if let Err(e) = self.reactor.add(fd, key) {
            self.io.sources.borrow_mut().remove(key);
            return Err(e);
        }
        self.io.set_key_of(fd, Some(key));
        self.io.hold(key, holder);
        Ok(key)
    }

    /// Gives a source back. A socket giving it back is closing its fd: waiters are told. A
    /// call giving it back takes the fd out of epoll if it was the last holder. A stale key
    /// (the source is already gone) does nothing, whatever fd number it once named.
    pub(crate) fn io_give_back(&self, key: Key, holder: Holder) {
        let unheld = {
            let mut sources = self.io.sources.borrow_mut();
            let Some(source) = sources.get_mut(key) else {
                return;
            };
            match holder {
                Holder::Socket => source.owned = false,
                Holder::Call => source.calls -= 1,
            }
            holder == Holder::Socket || source.unheld()
        };
        if unheld {
            self.io_forget(key);
        }
    }

    /// The `monkey` hook for `close(fd)`: forget fd's source and wake its waiters with
    /// [`Stop::Closed`], before the real close.
    #[cfg(feature = "monkey")]
    pub(crate) fn io_closing(&self, fd: RawFd) {
        if let Some(key) = self.io.key_of(fd) {
            self.io_forget(key);
        }
    }

    /// Drops a source: out of epoll, out of the table, every waiter woken (each finds its
    /// key gone and reports [`Stop::Closed`]).
    pub(super) fn io_forget(&self, key: Key) {
        let Some(mut source) = self.io.sources.borrow_mut().remove(key) else {
            return;
        };
        // Out of epoll only while fd still names this source: once the number went to a newer
        // source, an epoll entry under that number is the newer one's.
        if self.io.key_of(source.fd) == Some(key) {
            self.reactor.shared.remove(source.fd);
            self.io.set_key_of(source.fd, None);
        }
        let mut woken = Vec::new();
        for dir in [Direction::Read, Direction::Write] {
            source.waiters(dir).take_into(&mut woken);
        }
        self.io.waiting.set(self.io.waiting.get() - woken.len());
        for green in woken {
            self.unpark(&green);
        }
    }

    /// A readiness event from the reactor: wake every waiter of that direction.
    pub(crate) fn io_event(&self, key: Key, dir: Direction, closed: bool) {
        let (first, more) = {
            let mut sources = self.io.sources.borrow_mut();
            let Some(source) = sources.get_mut(key) else {
                return; // an event for a source already dropped
            };
            source.ready[dir as usize] = true;
            source.closed[dir as usize] |= closed;
            source.waiters(dir).take_first()
        };
        // Unparked outside the borrow: an unpark may run code that looks at the table.
        if let Some(green) = first {
            self.io.waiting.set(self.io.waiting.get() - 1);
            self.unpark(&green);
        }
        if more {
            self.wake_more(key, dir);
        }
    }

    /// The rest of `io_event` when more than one green thread waited on the direction.
    #[cold]
    fn wake_more(&self, key: Key, dir: Direction) {
        let mut woken = self.io.woken.take();
        if let Some(source) = self.io.sources.borrow_mut().get_mut(key) {
            source.waiters(dir).take_into(&mut woken);
        }
        self.io.waiting.set(self.io.waiting.get() - woken.len());
        for green in woken.drain(..) {
            self.unpark(&green);
        }
        self.io.woken.set(woken);
    }

    /// Whether `key` may be ready for `dir`: false only after a `WouldBlock` (or short
    /// transfer) with no event since. True for a key that is gone: then just try.
    pub(crate) fn io_may_be_ready(&self, key: Key, dir: Direction) -> bool {
        let sources = self.io.sources.borrow();
        sources
            .get(key)
            .is_none_or(|s| s.ready[dir as usize] || s.closed[dir as usize])
    }

    /// Records that `key` is not ready for `dir` until its next event.
    pub(crate) fn io_mark_unready(&self, key: Key, dir: Direction) {
        if let Some(source) = self.io.sources.borrow_mut().get_mut(key) {
            source.ready[dir as usize] = false;
        }
    }

    /// Green threads parked on an fd right now.
    pub(crate) fn io_waiting(&self) -> usize {
        self.io.waiting.get()
    }

    /// Puts `green` on the waiter list of `key` for `dir`; returns the source's fd, or None
    /// if the source is gone.
    #[inline]
    fn io_list(&self, key: Key, dir: Direction, green: Rc<Green>) -> Option<RawFd> {
        let mut sources = self.io.sources.borrow_mut();
        let source = sources.get_mut(key)?;
        source.waiters(dir).push(green);
        self.io.waiting.set(self.io.waiting.get() + 1);
        Some(source.fd)
    }

    /// Takes `green` off the waiter list of `key` for `dir` if it is still on it (an event
    /// takes a waiter off as it wakes it). False if the source is gone (its lists were
    /// emptied then).
    #[inline]
    fn io_unlist(&self, key: Key, dir: Direction, green: *const Green) -> bool {
        let mut sources = self.io.sources.borrow_mut();
        let Some(source) = sources.get_mut(key) else {
            return false;
        };
        if source.waiters(dir).remove_ptr(green) {
            self.io.waiting.set(self.io.waiting.get() - 1);
        }
        true
    }

    /// A green socket's wait: [`Hub::io_wait`] for one source and direction, with kill and
    /// timeout unwinding. Without a deadline (an echo server's every wait) it takes the short
    /// way: onto the source's waiter list, park, off again — nothing more on the stack a
    /// parked socket keeps (a thousand connections are a thousand stacks, whose lines come
    /// back through the cache on every round trip).
    #[inline(always)]
    pub(crate) fn io_wait_one(
        &self,
        key: Key,
        dir: Direction,
        deadline: Option<Instant>,
    ) -> Result<(), Stop> {
        if deadline.is_some() {
            return self.io_wait(&[(key, dir)], deadline, Interrupts::Unwind);
        }
        let (listed, fd) = ListedOne::new(self, key, dir)?;
        self.park(match dir {
            Direction::Read => Wait::Readable(fd),
            Direction::Write => Wait::Writable(fd),
        });
        listed.take_off()
    }

    /// Parks the current green thread until any of `on` may be ready. See [`Stop`].
    pub(crate) fn io_wait(
        &self,
        on: &[(Key, Direction)],
        deadline: Option<Instant>,
        interrupts: Interrupts,
    ) -> Result<(), Stop> {
        if deadline.is_some_and(|at| Instant::now() >= at) {
            return Err(Stop::TimedOut);
        }
        let me = self.current();
        let listed = Listed::new(self, on, &me)?;
        let _timer = deadline.map(|at| self.arm_timer(at, TimerAction::Wake(me.clone())));
        let wait = match on {
            [(key, Direction::Write)] => Wait::Writable(self.io.fd_of(*key)),
            [(key, Direction::Read)] => Wait::Readable(self.io.fd_of(*key)),
            many => Wait::Any(many.len()),
        };
        match interrupts {
            Interrupts::Unwind => self.park(wait),
            Interrupts::Report => self.park_or_interrupt(wait).map_err(Stop::Interrupted)?,
        }
        if listed.any_gone() {
            return Err(Stop::Closed);
        }
        match deadline {
            Some(at) if Instant::now() >= at => Err(Stop::TimedOut),
            _ => Ok(()),
        }
    }
}

impl IoTable {
    pub(crate) fn new() -> IoTable {
        IoTable {
            by_fd: RefCell::new(Vec::new()),
            sources: RefCell::new(Slab::new()),
            waiting: Cell::new(0),
            woken: Cell::new(Vec::new()),
        }
    }

    fn key_of(&self, fd: RawFd) -> Option<Key> {
        let by_fd = self.by_fd.borrow();
        usize::try_from(fd)
            .ok()
            .and_then(|i| by_fd.get(i).copied().flatten())
    }

    fn set_key_of(&self, fd: RawFd, key: Option<Key>) {
        let Ok(i) = usize::try_from(fd) else { return };
        let mut by_fd = self.by_fd.borrow_mut();
        if by_fd.len() <= i {
            by_fd.resize(i + 1, None);
        }
        by_fd[i] = key;
    }

    fn fd_of(&self, key: Key) -> RawFd {
        self.sources.borrow().get(key).map_or(-1, |s| s.fd)
    }

    fn hold(&self, key: Key, holder: Holder) {
        if let Some(source) = self.sources.borrow_mut().get_mut(key) {
            match holder {
                Holder::Socket => source.owned = true,
                Holder::Call => source.calls += 1,
            }
        }
    }
}

/// The current green thread on the waiter lists of some sources; taken off again on drop,
/// also when the park unwinds.
struct Listed<'a> {
    hub: &'a Hub,
    on: &'a [(Key, Direction)],
    me: &'a Rc<Green>,
}

impl<'a> Listed<'a> {
    fn new(hub: &'a Hub, on: &'a [(Key, Direction)], me: &'a Rc<Green>) -> Result<Self, Stop> {
        let mut listed = Listed {
            hub,
            on: &on[..0],
            me,
        };
        for (i, &(key, dir)) in on.iter().enumerate() {
            // Gone: the ones listed so far come off as `listed` drops.
            hub.io_list(key, dir, me.clone()).ok_or(Stop::Closed)?;
            listed.on = &on[..=i];
        }
        Ok(listed)
    }

    /// True if any of the sources was dropped while we waited.
    fn any_gone(&self) -> bool {
        let sources = self.hub.io.sources.borrow();
        self.on.iter().any(|&(key, _)| sources.get(key).is_none())
    }
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        for &(key, dir) in self.on {
            self.hub.io_unlist(key, dir, Rc::as_ptr(self.me));
        }
    }
}

/// [`Listed`] for one source and direction: the current green thread on its waiter list,
/// taken off again by [`ListedOne::take_off`] or, if the park unwinds, on drop.
struct ListedOne<'a> {
    hub: &'a Hub,
    key: Key,
    dir: Direction,
}

impl<'a> ListedOne<'a> {
    /// Lists the current green thread; also returns the source's fd. [`Stop::Closed`] if
    /// the source is gone.
    #[inline(always)]
    fn new(hub: &'a Hub, key: Key, dir: Direction) -> Result<(Self, RawFd), Stop> {
        let fd = hub.io_list(key, dir, hub.current()).ok_or(Stop::Closed)?;
        Ok((ListedOne { hub, key, dir }, fd))
    }

    /// Off the list after the park; [`Stop::Closed`] if the source was dropped meanwhile.
    #[inline(always)]
    fn take_off(self) -> Result<(), Stop> {
        let listed = std::mem::ManuallyDrop::new(self);
        if listed.unlist() {
            Ok(())
        } else {
            Err(Stop::Closed)
        }
    }

    fn unlist(&self) -> bool {
        self.hub
            .io_unlist(self.key, self.dir, self.hub.current.get())
    }
}

impl Drop for ListedOne<'_> {
    fn drop(&mut self) {
        self.unlist();
    }
}

/// A green socket's registration of its fd with one hub: the source it owns there.
pub(crate) struct Registration {
    shared: Arc<Shared>,
    key: Key,
    fd: RawFd,
}

impl Registration {
    /// Registers `fd` with the calling thread's hub.
    pub(crate) fn here(hub: &Hub, fd: RawFd) -> io::Result<Registration> {
        let key = hub.io_take(fd, Holder::Socket)?;
        Ok(Registration {
            shared: hub.reactor.shared.clone(),
            key,
            fd,
        })
    }

    /// The key, if this registration belongs to `hub`.
    pub(crate) fn key_in(&self, hub: &Hub) -> Option<Key> {
        Arc::ptr_eq(&self.shared, &hub.reactor.shared).then_some(self.key)
    }

    /// Gives the source back: the fd is about to close. On the owning hub's thread its
    /// waiters are woken now; from another thread the fd leaves epoll now and the hub drops
    /// the source at its next poll.
    pub(crate) fn close(&self) {
        let on_owner = with_existing_hub(|hub| {
            let mine = self.key_in(hub).is_some();
            if mine {
                hub.io_give_back(self.key, Holder::Socket);
            }
            mine
        });
        if on_owner != Some(true) {
            self.shared.remove(self.fd);
            self.shared.release_source_remote(self.key);
        }
    }
}

/// What the retry loop does when an operation would block, decided at the first
/// `WouldBlock` (so a socket's timeout is read only when needed).
pub(crate) enum OnWouldBlock {
    /// Return the `WouldBlock` to the caller (a non-blocking socket).
    Return,
    /// Wait, until this deadline at the latest.
    WaitUntil(Option<Instant>),
}

/// The WouldBlock → wait → retry loop of a hooked call on any fd (its source is taken for
/// the wait, and given back after it), and of a green socket used on a thread without a hub
/// (where every wait is a `poll(2)`); see [`retry_socket`] for a socket on a hub, and the
/// module docs.
///
/// `op` is the non-blocking attempt. `Interrupted` errors are retried. No readiness is
/// remembered: every round tries the call.
pub(crate) fn retry<R>(
    fd: RawFd,
    dir: Direction,
    interrupts: Interrupts,
    mut on_would_block: impl FnMut() -> OnWouldBlock,
    mut op: impl FnMut() -> io::Result<R>,
) -> Result<R, Fail> {
    let mut plan: Option<Option<Instant>> = None;
    let mut taken: Option<Taken> = None;
    loop {
        match op() {
            Ok(value) => return Ok(value),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fail::Os(e)),
        }
        let deadline = plan_wait(&mut plan, &mut on_would_block)?;
        wait(fd, dir, &mut taken, deadline, interrupts)?;
    }
}

/// The deadline of the loop's waits, asked of `on_would_block` at the first `WouldBlock`
/// and kept; an error for a non-blocking caller, who gets the `WouldBlock` back.
#[inline(always)]
fn plan_wait(
    plan: &mut Option<Option<Instant>>,
    on_would_block: &mut impl FnMut() -> OnWouldBlock,
) -> Result<Option<Instant>, Fail> {
    match *plan {
        Some(deadline) => Ok(deadline),
        None => match on_would_block() {
            OnWouldBlock::Return => Err(Fail::Os(io::ErrorKind::WouldBlock.into())),
            OnWouldBlock::WaitUntil(deadline) => Ok(*plan.insert(deadline)),
        },
    }
}

/// The retry loop of a green socket (`net::GreenFd`), see the module docs: on a thread with a
/// hub through [`SocketWait`], which remembers readiness (`drained(&ok)` says whether a
/// success used up the fd's readiness: a short transfer); on a thread without one, [`retry`].
#[inline(always)]
pub(crate) fn retry_socket<R>(
    fd: RawFd,
    dir: Direction,
    cell: &std::sync::OnceLock<Registration>,
    mut on_would_block: impl FnMut() -> OnWouldBlock,
    mut op: impl FnMut() -> io::Result<R>,
    drained: impl Fn(&R) -> bool,
) -> Result<R, Fail> {
    let on_hub = with_existing_hub(|hub| {
        let socket = SocketWait { hub, fd, dir, cell };
        socket.retry(&mut on_would_block, &mut op, &drained)
    });
    match on_hub {
        Some(result) => result,
        None => retry_without_hub(fd, dir, on_would_block, op),
    }
}

/// A green socket used on a thread without a hub: it blocks in `poll(2)`, as std's would.
#[cold]
#[inline(never)]
fn retry_without_hub<R>(
    fd: RawFd,
    dir: Direction,
    on_would_block: impl FnMut() -> OnWouldBlock,
    op: impl FnMut() -> io::Result<R>,
) -> Result<R, Fail> {
    retry(fd, dir, Interrupts::Unwind, on_would_block, op)
}

/// The loop of a green socket on a thread with a hub: every read and write of an
/// echo server comes here twice a round trip, so the hub and the socket's key are looked
/// up once per call (not once per step), and a wait is one call out of line whose few
/// frames are all a parked socket keeps on its stack.
struct SocketWait<'a> {
    hub: &'a Hub,
    fd: RawFd,
    dir: Direction,
    cell: &'a std::sync::OnceLock<Registration>,
}

impl SocketWait<'_> {
    #[inline(always)]
    fn retry<R>(
        &self,
        on_would_block: &mut impl FnMut() -> OnWouldBlock,
        op: &mut impl FnMut() -> io::Result<R>,
        drained: &impl Fn(&R) -> bool,
    ) -> Result<R, Fail> {
        let (hub, dir) = (self.hub, self.dir);
        // None until the socket is registered with this hub, at its first wait (a socket
        // registered with another thread's hub is refused there, not here).
        let mut key = self.cell.get().and_then(|reg| reg.key_in(hub));
        let mut plan: Option<Option<Instant>> = None;
        loop {
            if key.is_none_or(|key| hub.io_may_be_ready(key, dir)) {
                match op() {
                    Ok(value) => {
                        if let Some(key) = key.filter(|_| drained(&value)) {
                            hub.io_mark_unready(key, dir);
                        }
                        return Ok(value);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let Some(key) = key {
                            hub.io_mark_unready(key, dir);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Fail::Os(e)),
                }
            }
            let deadline = plan_wait(&mut plan, on_would_block)?;
            key = Some(self.wait(key, deadline)?);
        }
    }

    /// Registers the socket if it is not yet, then parks until it may be ready. Out of
    /// line and not generic: one copy for every socket type and operation, one frame.
    #[inline(never)]
    fn wait(&self, key: Option<Key>, deadline: Option<Instant>) -> Result<Key, Fail> {
        let key = match key {
            Some(key) => key,
            None => socket_key(self.hub, self.cell, self.fd)?,
        };
        self.hub.io_wait_one(key, self.dir, deadline)?;
        Ok(key)
    }
}

/// How [`retry`] failed.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The operation's own error.
    Os(io::Error),
    /// The wait stopped: see [`Stop`].
    Stop(Stop),
}

impl From<Stop> for Fail {
    fn from(stop: Stop) -> Fail {
        Fail::Stop(stop)
    }
}

/// A source a hooked call took for its wait, given back when the call ends.
struct Taken {
    key: Key,
    fd: RawFd,
}

impl Drop for Taken {
    fn drop(&mut self) {
        with_existing_hub(|hub| hub.io_give_back(self.key, Holder::Call));
    }
}

/// One wait of the loop: on the hub if this thread has one, else `poll(2)` like std would.
fn wait(
    fd: RawFd,
    dir: Direction,
    taken: &mut Option<Taken>,
    deadline: Option<Instant>,
    interrupts: Interrupts,
) -> Result<(), Fail> {
    let on_hub = with_existing_hub(|hub| -> Result<(), Fail> {
        let key = match taken {
            Some(t) => t.key,
            None => {
                let key = hub.io_take(fd, Holder::Call).map_err(Fail::Os)?;
                taken.insert(Taken { key, fd }).key
            }
        };
        hub.io_wait(&[(key, dir)], deadline, interrupts)?;
        Ok(())
    });
    match on_hub {
        Some(result) => result,
        None => match crate::sys::poll::wait_fd(fd, dir == Direction::Write, deadline) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Fail::Stop(Stop::TimedOut)),
            Err(e) => Err(Fail::Os(e)),
        },
    }
}

/// Tells this thread's hub (if it has one) that `fd` is about to be closed: see
/// [`Hub::io_closing`]. Does nothing while the table is in use further up the stack (a
/// `close` from inside the hub's own bookkeeping, which never holds a waited-on fd).
#[cfg(feature = "monkey")]
pub(crate) fn closing(fd: RawFd) {
    with_existing_hub(|hub| {
        if hub.io.sources.try_borrow_mut().is_ok() && hub.io.by_fd.try_borrow_mut().is_ok() {
            hub.io_closing(fd);
        }
    });
}

/// Parks the current green thread until any of `fds` may be ready for its direction, until
/// `deadline` passes, or until anything else unparks it (the `poll(2)` and `select(2)` hooks;
/// `greenrt::wait`, which also listens on wait lists and wants exactly that). Each fd's source is taken for the
/// wait and given back after. An fd that epoll refuses (a regular file: always ready)
/// returns at once, so the caller simply looks again.
pub(crate) fn wait_any(
    fds: &[(RawFd, Direction)],
    deadline: Option<Instant>,
    interrupts: Interrupts,
) -> Result<(), Fail> {
    super::with_hub(|hub| {
        let mut taken: Vec<Taken> = Vec::with_capacity(fds.len());
        let mut on = Vec::with_capacity(fds.len());
        for &(fd, dir) in fds {
            let key = match taken.iter().find(|t| t.fd == fd) {
                Some(t) => t.key,
                None => match hub.io_take(fd, Holder::Call) {
                    Ok(key) => {
                        taken.push(Taken { key, fd });
                        key
                    }
                    Err(_) => return Ok(()),
                },
            };
            on.push((key, dir));
        }
        hub.io_wait(&on, deadline, interrupts).map_err(Fail::Stop)
    })
}

/// The socket's key in `hub`, registering on first use. A socket stays with the first hub
/// that waited on it.
fn socket_key(hub: &Hub, cell: &std::sync::OnceLock<Registration>, fd: RawFd) -> Result<Key, Fail> {
    if let Some(reg) = cell.get() {
        return reg.key_in(hub).ok_or_else(|| {
            Fail::Os(io::Error::other(
                "greenrt: this socket is registered with the hub of another OS thread; \
                 a socket stays with the first thread that waited on it",
            ))
        });
    }
    let reg = Registration::here(hub, fd).map_err(Fail::Os)?;
    match cell.set(reg) {
        Ok(()) => Ok(cell.get().expect("just set").key),
        Err(mine) => {
            // Another OS thread registered the same socket with its hub at the same moment.
            mine.close();
            socket_key(hub, cell, fd)
        }
    }
}

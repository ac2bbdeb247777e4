//! Parking a green thread until an fd that greenrt does not own becomes ready.
//!
//! A hooked call sees user fds greenrt never registered. It adds the fd to the hub's epoll set
//! for the one wait (edge-triggered: epoll reports readiness present at the time of adding),
//! parks with the deadline, and takes the fd out again. Two `epoll_ctl` calls per wait keep
//! no state that a `close` and a reused fd number could make stale.

use std::time::Instant;

use crate::hub::green::Wait;
use crate::hub::reactor::Direction;
use crate::hub::timers::TimerAction;
use crate::hub::with_hub;

/// One fd and the directions to wait for (each fd at most once in a wait).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interest {
    pub(crate) fd: i32,
    pub(crate) read: bool,
    pub(crate) write: bool,
}

impl Interest {
    fn dirs(self) -> impl Iterator<Item = Direction> {
        [(self.read, Direction::Read), (self.write, Direction::Write)]
            .into_iter()
            .filter_map(|(on, dir)| on.then_some(dir))
    }
}

/// Parks the current green thread until any of `fds` may be ready or `deadline` passes.
/// Returns false on timeout. An fd that cannot be added to epoll (a regular file, which is
/// always ready) counts as ready at once, so the caller simply retries its call.
pub(crate) fn wait_any(fds: &[Interest], deadline: Option<Instant>) -> bool {
    with_hub(|hub| {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        let me = hub.current();
        let mut keys = Vec::with_capacity(fds.len());
        let mut ready_now = false;
        for interest in fds {
            match hub.reactor.register(interest.fd) {
                Ok(key) => {
                    interest.dirs().for_each(|dir| {
                        let _ = hub.reactor.add_waiter(key, dir, &me);
                    });
                    keys.push((key, *interest));
                }
                Err(_) => ready_now = true,
            }
        }
        let _cleanup = Cleanup {
            hub,
            keys: &keys,
            me: &me,
        };
        if ready_now {
            return true;
        }
        let _timer = deadline.map(|at| hub.arm_timer(at, TimerAction::Wake(me.clone())));
        hub.park(match fds.first() {
            Some(i) if !i.read => Wait::Writable(i.fd),
            first => Wait::Readable(first.map_or(-1, |i| i.fd)),
        });
        deadline.is_none_or(|d| Instant::now() < d)
    })
}

/// Takes the fds back out of the epoll set, also when the park unwinds (kill, timeout).
struct Cleanup<'a> {
    hub: &'a crate::hub::Hub,
    keys: &'a [(crate::hub::slab::Key, Interest)],
    me: &'a std::rc::Rc<crate::hub::green::Green>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for (key, interest) in self.keys {
            interest
                .dirs()
                .for_each(|dir| self.hub.reactor.remove_waiter(*key, dir, self.me));
            self.hub.reactor.shared.deregister(interest.fd);
            self.hub.reactor.release_source(*key);
        }
    }
}

//! The deadlock report: what the hub says instead of hanging.
//!
//! When the main context waits and the run queue is empty, no timer is armed, no green thread
//! waits for I/O and no other thread holds an `Unparker`, nothing can ever make progress
//! again. gevent raises `LoopExit` here and Go prints "all goroutines are asleep - deadlock!";
//! greenrt panics in the main context with a list of every blocked green thread and what it
//! waits on.
//!
//! One case cannot be decided: a green thread waiting on a `greenrt::sync` primitive (a lock,
//! an event, a queue) can be released by *any* OS thread that holds the primitive, and a
//! primitive can be moved to another thread without greenrt seeing it. So while green
//! threads wait on such primitives and the process has other OS threads, the hub waits
//! (another thread's release arrives through the hub's waker) instead of reporting. In a
//! single-threaded process the report is exact.

use std::fmt::Write;

use super::Hub;
use super::green::{State, Wait};

impl Hub {
    /// True if a green thread waits on a sync primitive that another OS thread might release.
    pub(crate) fn sync_wake_possible(&self) -> bool {
        self.sync_waiters.get() > 0 && crate::sys::threads::thread_count() != 1
    }

    #[cold]
    pub(crate) fn report_deadlock(&self) -> ! {
        let message = self.deadlock_message();
        // The main context unwinds out of its park: leave it in a sane state.
        self.main.state.set(State::Running);
        self.main.wait.set(Wait::Nothing);
        panic!("{message}");
    }

    fn deadlock_message(&self) -> String {
        let mut text = format!(
            "greenrt: deadlock: the main context waits on {} and nothing can ever wake it \
             (no ready green thread, no timer, no socket awaited, no Unparker alive)",
            self.main.wait.get()
        );
        let greens = self.greens.borrow();
        let blocked: Vec<_> = greens.values().filter(|g| !g.is_main).collect();
        let _ = write!(text, "\nblocked green threads ({}):", blocked.len());
        for green in blocked {
            let _ = write!(
                text,
                "\n  green thread '{}' (id {}), spawned at {}, waits on {}",
                green.display_name(),
                green.id,
                green.spawned_at,
                green.wait.get()
            );
        }
        text
    }
}

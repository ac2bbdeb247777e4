//! Recording what the hub does, for `greenrt::trace` (Chrome Trace Event export).
//!
//! Off by default: every recording point is one relaxed load of a global flag and a branch.
//! On, each hub appends small fixed-size records to its own buffer (no locking on the hot
//! path); a hub's buffer moves to the global collection when the hub ends or when the thread
//! that stops tracing owns it.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::green::Wait;

/// True while tracing is on (any hub records).
pub(crate) static ON: AtomicBool = AtomicBool::new(false);

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum What {
    /// `green` started running.
    Run,
    /// `green` stopped running (parked, yielded or finished).
    Stop,
    /// `green` parked on `wait`.
    Park(Wait),
    /// `green` was made ready by green thread `by` (0: by I/O, a timer or another thread).
    Wake { by: u64 },
    /// `green` was spawned by `by`.
    Spawn { by: u64 },
    /// `green` finished.
    Exit,
    /// The hub polled its reactor and got `events` back (`green` is the hub's main context).
    Poll { events: u64, took_ns: u64 },
    /// This process forked child `pid`.
    Fork { pid: u32 },
}

/// One record: when (monotonic ns), which green thread, what.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub(crate) t: u64,
    pub(crate) green: u64,
    pub(crate) what: What,
}

/// One hub's records and the names of its green threads.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    pub(crate) thread: String,
    pub(crate) main_green: u64,
    pub(crate) records: Vec<Record>,
    pub(crate) names: Vec<(u64, String)>,
}

/// Buffers of hubs that ended (or were handed in by `stop`).
pub(crate) static DONE: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

/// Now, in monotonic nanoseconds.
pub(crate) fn now_ns() -> u64 {
    crate::sys::timerfd::monotonic_ns()
}

/// A hub's recorder.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    buffer: RefCell<Buffer>,
}

impl Recorder {
    /// Records `what` for `green` if tracing is on.
    #[inline(always)]
    pub(crate) fn record(&self, green: u64, what: impl FnOnce() -> What) {
        if ON.load(Ordering::Relaxed) {
            self.push(green, what());
        }
    }

    #[cold]
    fn push(&self, green: u64, what: What) {
        let t = now_ns();
        self.buffer
            .borrow_mut()
            .records
            .push(Record { t, green, what });
    }

    /// Remembers a green thread's display name (once, at spawn) while tracing.
    pub(crate) fn name(&self, green: u64, name: impl FnOnce() -> String) {
        if ON.load(Ordering::Relaxed) {
            self.buffer.borrow_mut().names.push((green, name()));
        }
    }

    /// Hands this hub's records to the global collection.
    pub(crate) fn flush(&self, thread: &str, main_green: u64) {
        let mut buffer = std::mem::take(&mut *self.buffer.borrow_mut());
        if buffer.records.is_empty() {
            return;
        }
        buffer.thread = thread.to_string();
        buffer.main_green = main_green;
        DONE.lock().unwrap_or_else(|e| e.into_inner()).push(buffer);
    }
}

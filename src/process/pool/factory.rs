//! The two kinds of pool process: the worker **factory** and the **workers** it forks.
//!
//! The factory is forked once, by `Pool::new`, while the owner is typically still simple
//! (before its manager thread starts). Every worker — the first ones and every replacement —
//! is forked by the factory, a process with a single OS thread. So a worker never inherits a
//! lock that some other thread of the owner happened to hold at the moment of the fork (the
//! hazard of forking from a multi-threaded process that made Python switch its default start
//! method to "forkserver").
//!
//! The factory exits when its owner dies (`PR_SET_PDEATHSIG`), and workers when the factory
//! does, so no process of a pool outlives the pool's owner.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::Channels;
use super::wire::{Control, Done, Event, Failure, Task, panic_message};
use crate::ipc::Queue;
use crate::process::{Builder, Process};

/// The factory's main loop: fork workers on request, report their births and deaths.
pub(crate) fn factory_main(ch: &Channels) {
    let workers: Rc<RefCell<HashMap<u32, Rc<Process>>>> = Rc::default();
    let mut watchers = Vec::new();
    loop {
        match ch.control.get() {
            Ok(Control::Spawn { slot }) => match spawn_worker(ch, slot) {
                Ok(process) => {
                    let process = Rc::new(process);
                    let _ = ch.events.put(&Event::Spawned {
                        slot,
                        pid: process.pid(),
                    });
                    workers.borrow_mut().insert(slot, process.clone());
                    let (events, workers) = (ch.events.clone(), workers.clone());
                    watchers.push(crate::spawn(move || {
                        let status = process.join();
                        workers.borrow_mut().remove(&slot);
                        let (code, signal) = match status {
                            Ok(s) => (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)),
                            Err(_) => (None, None),
                        };
                        let _ = events.put(&Event::Died {
                            slot,
                            pid: process.pid(),
                            code,
                            signal,
                        });
                    }));
                }
                Err(e) => {
                    let _ = ch.events.put(&Event::SpawnFailed {
                        slot,
                        error: e.to_string(),
                    });
                }
            },
            Ok(Control::Close) | Err(_) => break,
            Ok(Control::Kill) => {
                for process in workers.borrow().values() {
                    let _ = process.kill();
                }
                break;
            }
        }
    }
    for watcher in watchers {
        let _ = watcher.join();
    }
}

fn spawn_worker(ch: &Channels, slot: u32) -> std::io::Result<Process> {
    Builder::new()
        .name(format!("pool worker {slot}"))
        .daemon(true)
        .spawn(|| {
            if initialize(ch, slot) {
                serve(ch, slot);
            }
        })
}

/// Runs the pool's initializer in this new worker; if it panics, tells the manager (the pool
/// is broken) and returns false. The panic hook has printed the panic already.
fn initialize(ch: &Channels, slot: u32) -> bool {
    let Some(initializer) = &ch.initializer else {
        return true;
    };
    match catch_unwind(AssertUnwindSafe(|| initializer())) {
        Ok(()) => true,
        Err(payload) => {
            let message = panic_message(&*payload);
            let _ = ch.events.put(&Event::InitFailed { slot, message });
            false
        }
    }
}

/// A worker's life: run tasks from its inbox until told to stop, or until it has run
/// `max_tasks` of them.
fn serve(ch: &Channels, slot: u32) {
    let (inbox, results, key) = (&ch.inboxes[slot as usize], &ch.results, &ch.key);
    let mut left = ch.max_tasks.unwrap_or(usize::MAX);
    while left > 0 {
        let Ok(Task::Run {
            id,
            call,
            func,
            tag,
            arg,
        }) = inbox.get()
        else {
            return;
        };
        left -= 1;
        let started = std::time::Instant::now();
        let outcome = match key.check(call, func, tag) {
            Some(trampoline) => trampoline(func, &arg),
            None => Err(Failure::BadTag),
        };
        let busy_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        send_done(results, id, outcome, busy_ns);
    }
}

/// Puts a task's outcome on the results queue; if it cannot go (too large, say), says so
/// instead, so the task does not wait for ever.
fn send_done(results: &Queue<Done>, id: u64, outcome: Result<Vec<u8>, Failure>, busy_ns: u64) {
    let done = Done {
        id,
        outcome,
        busy_ns,
    };
    if let Err(e) = results.put(&done) {
        let why = Failure::NotSent(e.to_string());
        let _ = results.put(&Done {
            id,
            outcome: Err(why),
            busy_ns,
        });
    }
}

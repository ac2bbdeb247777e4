//! The owner's manager thread: one OS thread with its own hub, where four green threads keep
//! the pool's books.
//!
//! | green thread | waits on                | does                                              |
//! |--------------|-------------------------|---------------------------------------------------|
//! | submissions  | the owner's submit queue| queues jobs, handles close and terminate          |
//! | results      | `results` (ipc)         | completes tasks, refills the worker's inbox       |
//! | events       | `events` (ipc)          | worker born: dispatch; worker died: reconcile, respawn; initializer failed: break the pool |
//! | factory      | the factory's pidfd     | the factory ended: fail what is left, stop        |
//!
//! The books are behind a *green* mutex, not a `RefCell`: queue operations may park (an ipc
//! queue's internal lock can be held for a moment by a worker), and the books must stay
//! locked across such a park so that no other green thread sees them half-updated.
//!
//! **Exact accounting when a worker dies.** The manager knows, per worker, which tasks it sent
//! and in what order. When a worker dies it first reads every result already sent (a result is
//! put before the worker can die, so it is in the queue), then empties the dead worker's inbox:
//! those tasks never started and go back to the front of the queue. What is left was running:
//! exactly that task fails with `WorkerDied`. Nothing is lost and nothing runs twice. A worker
//! that exits after `max_tasks_per_child` tasks goes down the same path (with nothing running).
//!
//! **A broken pool.** A worker whose initializer panicked says so on `events` before it
//! exits. The books are then marked broken (and the owner told, through a shared `OnceLock`):
//! pending and later jobs fail with `Rejection::Broken`, no worker is replaced, and the live
//! ones are stopped once idle, as after a close.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use super::task::{Completion, Rejection, TaskError};
use super::wire::{Control, Done, Event, Task};
use super::{Channels, Submit};
use crate::ipc::{GetError, PutError};
use crate::process::Process;
use crate::sync::Mutex;

/// Tasks sent to one worker and not finished yet, at most.
const DEPTH: usize = 64;
/// How much work (by the measured task time) may wait in a worker's inbox behind the task it
/// runs: enough to hide the round trip through the manager for tiny tasks, little enough that
/// slow tasks are handed out one at a time, to whichever worker is free (see `depth`).
const QUEUED_WORK_NS: u64 = 2_000_000;

/// A task the owner submitted: its message and where its outcome goes.
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) task: Task,
    pub(crate) completion: Completion,
}

#[derive(Default)]
struct Slot {
    /// A worker has been born (or failed to be) in this slot at least once.
    born_once: bool,
    pid: Option<u32>,
    spawning: bool,
    stop_sent: bool,
    assigned: VecDeque<u64>,
}

struct Books {
    ch: Rc<Channels>,
    pending: VecDeque<Job>,
    running: HashMap<u64, Job>,
    slots: Vec<Slot>,
    /// Mean time a task takes in a worker (moving average), once one has finished.
    service_ns: Option<u64>,
    closing: bool,
    terminated: bool,
    close_sent: bool,
    /// An initializer's panic message, once one panicked (shared with the owner's `Pool`).
    broken: Arc<OnceLock<String>>,
}

/// Runs the manager until the factory has ended; see the module docs.
pub(crate) fn run(
    ch: Channels,
    factory: Process,
    submissions: &Arc<crate::sync::Queue<Submit>>,
    broken: Arc<OnceLock<String>>,
) {
    let ch = Rc::new(ch);
    let slots = (0..ch.inboxes.len()).map(|_| Slot::default()).collect();
    let books = Rc::new(Mutex::new(Books {
        ch: ch.clone(),
        pending: VecDeque::new(),
        running: HashMap::new(),
        slots,
        service_ns: None,
        closing: false,
        terminated: false,
        close_sent: false,
        broken,
    }));
    for slot in 0..ch.inboxes.len() {
        books.lock().spawn(slot);
    }
    let submissions = submissions.clone();
    let loops = [
        crate::spawn({
            let (books, submissions) = (books.clone(), submissions.clone());
            move || submissions_loop(&books, &submissions)
        }),
        crate::spawn({
            let books = books.clone();
            move || results_loop(&books)
        }),
        crate::spawn({
            let books = books.clone();
            move || events_loop(&books)
        }),
    ];
    // The factory ends after Close or Kill (or if someone kills it): then nothing more can
    // run, so whatever is left fails, and the loops are told to stop.
    let status = factory.join();
    let leftover = books.lock().take_all();
    let why = if books.lock().terminated {
        TaskError::Terminated
    } else {
        let (code, signal) = status.map_or((None, None), |s| {
            (s.code(), std::os::unix::process::ExitStatusExt::signal(&s))
        });
        TaskError::WorkerDied {
            pid: factory.pid(),
            code,
            signal,
        }
    };
    for job in leftover {
        complete(job, Err(why.clone()));
    }
    let _ = ch.results.close();
    let _ = ch.events.close();
    submissions.close();
    for l in loops {
        let _ = l.join();
    }
}

fn submissions_loop(books: &Rc<Mutex<Books>>, submissions: &crate::sync::Queue<Submit>) {
    while let Ok(submit) = submissions.get() {
        match submit {
            Submit::Job(job) => {
                if books.lock().terminated {
                    complete(job, Err(TaskError::Terminated));
                    continue;
                }
                books.lock().pending.push_back(job);
            }
            Submit::Close => books.lock().closing = true,
            Submit::Terminate => {
                let mut b = books.lock();
                b.terminated = true;
                b.closing = true;
                let _ = b.ch.control.put(&Control::Kill);
            }
        }
        let failed = books.lock().dispatch();
        failed
            .into_iter()
            .for_each(|(job, e)| complete(job, Err(e)));
    }
}

fn results_loop(books: &Rc<Mutex<Books>>) {
    let results = books.lock().ch.results.clone();
    while let Ok(done) = results.get() {
        handle_done(books, done);
        let failed = books.lock().dispatch();
        failed
            .into_iter()
            .for_each(|(job, e)| complete(job, Err(e)));
    }
}

fn handle_done(books: &Rc<Mutex<Books>>, done: Done) {
    let job = {
        let mut b = books.lock();
        b.note_service(done.busy_ns);
        b.finish(done.id)
    };
    if let Some(job) = job {
        complete(job, done.outcome.map_err(TaskError::from));
    }
}

fn events_loop(books: &Rc<Mutex<Books>>) {
    let events = books.lock().ch.events.clone();
    while let Ok(event) = events.get() {
        match event {
            Event::Spawned { slot, pid } => {
                let mut b = books.lock();
                b.note_birth(slot as usize);
                if let Some(s) = b.slots.get_mut(slot as usize) {
                    s.pid = Some(pid);
                    s.spawning = false;
                }
            }
            Event::Died {
                slot,
                pid,
                code,
                signal,
            } => worker_died(books, slot as usize, pid, code, signal),
            Event::InitFailed { slot, message } => {
                let mut b = books.lock();
                let _ = b.broken.set(message);
                b.closing = true;
                if let Some(s) = b.slots.get_mut(slot as usize) {
                    s.stop_sent = true; // it is exiting: send it nothing more
                }
            }
            Event::SpawnFailed { slot, error } => {
                eprintln!("greenrt: process pool: cannot fork worker {slot}: {error}; retrying");
                books.lock().note_birth(slot as usize);
                crate::sleep(std::time::Duration::from_millis(100));
                let mut b = books.lock();
                if let Some(s) = b.slots.get_mut(slot as usize) {
                    s.spawning = false;
                }
                b.spawn(slot as usize);
            }
        }
        let failed = books.lock().dispatch();
        failed
            .into_iter()
            .for_each(|(job, e)| complete(job, Err(e)));
    }
}

/// See the module docs: read what the worker finished, take back what it never started, fail
/// what it was running, replace it.
fn worker_died(
    books: &Rc<Mutex<Books>>,
    slot: usize,
    pid: u32,
    code: Option<i32>,
    signal: Option<i32>,
) {
    let results = books.lock().ch.results.clone();
    while let Ok(done) = results.get_present() {
        handle_done(books, done);
    }
    let inbox = books.lock().ch.inboxes[slot].clone();
    let mut unstarted = HashSet::new();
    loop {
        match inbox.get_present() {
            Ok(Task::Run { id, .. }) => {
                unstarted.insert(id);
            }
            Ok(Task::Stop) => {}
            Err(GetError::Empty | GetError::Closed) => break,
            Err(GetError::Io(e)) => {
                eprintln!("greenrt: process pool: worker {slot}'s inbox is corrupt: {e}");
                break;
            }
        }
    }
    let lost = books.lock().reconcile(slot, &unstarted);
    let why = if books.lock().terminated {
        TaskError::Terminated
    } else {
        TaskError::WorkerDied { pid, code, signal }
    };
    for job in lost {
        complete(job, Err(why.clone()));
    }
    let mut b = books.lock();
    if !b.terminated && b.broken.get().is_none() && (!b.closing || !b.pending.is_empty()) {
        b.spawn(slot);
    }
}

impl Books {
    fn spawn(&mut self, slot: usize) {
        self.slots[slot].spawning = true;
        if self
            .ch
            .control
            .put(&Control::Spawn { slot: slot as u32 })
            .is_err()
        {
            self.slots[slot].spawning = false;
        }
    }

    /// A birth (or failed birth) in `slot`: from now on its first worker has come.
    fn note_birth(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.born_once = true;
        }
    }

    /// Folds one task's measured time into the moving average (weight 1/8).
    fn note_service(&mut self, busy_ns: u64) {
        let busy_ns = busy_ns.max(1);
        self.service_ns = Some(match self.service_ns {
            None => busy_ns,
            Some(mean) => mean - mean / 8 + busy_ns / 8,
        });
    }

    /// How many tasks a worker may hold (running + waiting in its inbox): one until a task
    /// has been timed, then about `QUEUED_WORK_NS` of work, between 1 and `DEPTH`. Ten
    /// 2-second tasks on three workers go 4/3/3 in waves of three, as in Python, where each
    /// worker takes the next task when it is free; a flood of 10 µs tasks keeps 64 in each
    /// inbox, so no worker waits for the manager between tasks.
    fn depth(&self) -> usize {
        self.service_ns.map_or(1, |ns| {
            usize::try_from(QUEUED_WORK_NS / ns).map_or(DEPTH, |d| d.clamp(1, DEPTH))
        })
    }

    /// The job `id` if it was running; forgets it.
    fn finish(&mut self, id: u64) -> Option<Job> {
        let job = self.running.remove(&id)?;
        for slot in &mut self.slots {
            if let Some(i) = slot.assigned.iter().position(|&a| a == id) {
                slot.assigned.remove(i);
                break;
            }
        }
        Some(job)
    }

    /// After a death: unstarted jobs go back to the front, in order; the rest are returned
    /// (they were running).
    fn reconcile(&mut self, slot: usize, unstarted: &HashSet<u64>) -> Vec<Job> {
        let s = &mut self.slots[slot];
        s.pid = None;
        s.stop_sent = false;
        let assigned: Vec<u64> = s.assigned.drain(..).collect();
        let mut lost = Vec::new();
        for id in assigned.into_iter().rev() {
            if let Some(job) = self.running.remove(&id) {
                if unstarted.contains(&id) {
                    self.pending.push_front(job);
                } else {
                    lost.push(job);
                }
            }
        }
        lost
    }

    /// Sends pending jobs to live workers (fewest in flight first), `Stop` to idle workers
    /// once closing, and `Close` to the factory when all is done. Returns jobs that cannot be
    /// sent at all.
    fn dispatch(&mut self) -> Vec<(Job, TaskError)> {
        let mut failed = Vec::new();
        if let Some(why) = self.broken.get() {
            let why = TaskError::Rejected(Rejection::Broken(why.clone()));
            failed.extend(self.pending.drain(..).map(|job| (job, why.clone())));
            self.stop_idle_workers();
            return failed;
        }
        // Nothing is dispatched until every slot's first worker is born (or failed to be), so
        // the first tasks spread over every worker (Python's `Pool()` starts them all first).
        if !self.slots.iter().all(|s| s.born_once) {
            return failed;
        }
        while let Some(slot) = self.least_busy() {
            let Some(job) = self.pending.pop_front() else {
                break;
            };
            match self.ch.inboxes[slot].put_if_room(&job.task) {
                Ok(()) => {
                    self.slots[slot].assigned.push_back(job.id);
                    self.running.insert(job.id, job);
                }
                Err(PutError::Full) => {
                    self.pending.push_front(job);
                    break;
                }
                Err(e) => failed.push((job, TaskError::Rejected(rejection(e)))),
            }
        }
        if self.closing && self.pending.is_empty() {
            self.stop_idle_workers();
        }
        failed
    }

    /// The live worker with the fewest tasks in flight (the lowest slot among equals), if it
    /// may take one more (see `depth`).
    fn least_busy(&self) -> Option<usize> {
        let depth = self.depth();
        (0..self.slots.len())
            .filter(|&i| {
                let s = &self.slots[i];
                s.pid.is_some() && !s.stop_sent && s.assigned.len() < depth
            })
            .min_by_key(|&i| self.slots[i].assigned.len())
    }

    fn stop_idle_workers(&mut self) {
        for slot in 0..self.slots.len() {
            let s = &self.slots[slot];
            if s.pid.is_some()
                && !s.stop_sent
                && self.ch.inboxes[slot].put_if_room(&Task::Stop).is_ok()
            {
                self.slots[slot].stop_sent = true;
            }
        }
        let quiet = self.slots.iter().all(|s| s.pid.is_none() && !s.spawning);
        if quiet && !self.close_sent {
            self.close_sent = self.ch.control.put(&Control::Close).is_ok();
        }
    }

    fn take_all(&mut self) -> Vec<Job> {
        let mut jobs: Vec<Job> = self.pending.drain(..).collect();
        jobs.extend(self.running.drain().map(|(_, job)| job));
        jobs
    }
}

/// Runs a job's completion (user callbacks included) without letting a panicking callback take
/// the manager down.
fn complete(job: Job, outcome: Result<Vec<u8>, TaskError>) {
    let completion = job.completion;
    if let Err(payload) =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| completion(outcome)))
    {
        eprintln!(
            "greenrt: process pool: a task callback panicked: {}",
            super::wire::panic_message(&*payload)
        );
    }
}

/// Why an inbox refused a task (other than being full, which only delays it).
fn rejection(e: PutError) -> Rejection {
    match e {
        PutError::TooLarge { size, max } => Rejection::TooLarge { size, max },
        PutError::Closed => Rejection::Closed,
        other => Rejection::Channel(other.to_string()),
    }
}

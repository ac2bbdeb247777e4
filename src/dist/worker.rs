//! The worker's side of a [`WorkQueue`](super::WorkQueue): take a task with a lease, run it,
//! finish it.
//!
//! A worker has *slots*, one per lease it may hold at once (a process running 100 green
//! threads that take tasks makes one worker with 100 slots). Taking is Redis' `BLMOVE`: the
//! task moves atomically from `pending` to the slot's own lease list, so at every moment a
//! task is in exactly one list — waiting, or leased to one slot — and never in none.
//!
//! **Leases and heartbeats.** A green thread of the worker records a heartbeat for every slot
//! that is taking or holding a lease, every quarter of the lease time, and reaps: a slot of
//! *any* worker not heard from for the lease time (its process was killed, frozen, cut off)
//! is dead, and its task goes back to the front of `pending`. A worker killed with `kill -9`
//! therefore loses nothing; its tasks run again elsewhere after at most a lease time and a
//! quarter. Those second runs are the only duplicates, counted `requeued`, at most one per
//! slot of each dead worker. A slot declared dead that comes back (its process was only
//! frozen) finds its ack refused (`Ack::Lost`): the result is delivered once, by whoever
//! holds the lease.
//!
//! **Green threads.** The heartbeat is a green thread: it runs when the worker's other green
//! threads park (a Redis call, a socket, a sleep). A task that computes without parking for
//! longer than the lease time loses its lease; keep such tasks under it, or raise
//! [`Options::lease`](super::Options::lease).

use std::cell::{Cell, RefCell};
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::envelope::{Envelope, decode, encode};
use super::scripts;
use super::session::Session;
use super::work_queue::{Shared, TaskId, eval_with, reap_args};
use crate::sync::{Event, Queue};

/// What became of a finished lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// The result was delivered (or, for `put_unique` tasks, counted).
    Done,
    /// This slot had been declared dead and the task put back: nothing was delivered; the
    /// task's result comes from its next run.
    Lost,
}

/// Where a slot is; every state but `Free` needs heartbeats.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// In the free queue, nobody's.
    Free,
    /// Taking, or holding a lease.
    Busy,
    /// Its lease was dropped unfinished: the heartbeat puts the task back, then frees it.
    Abandoned,
}

/// The slots and their state, shared with the heartbeat green thread.
struct Slots {
    /// The members' names in Redis: `WORKER-INDEX`.
    names: Vec<String>,
    state: Vec<Cell<SlotState>>,
}

/// Takes tasks from a [`WorkQueue`](super::WorkQueue) with leases; made by
/// [`WorkQueue::worker`](super::WorkQueue::worker). Share it (`Rc`) among the green threads
/// that take; dropping it stops its heartbeat and puts back any task still leased.
pub struct Worker<T, R = ()> {
    shared: Rc<Shared>,
    slots: Rc<Slots>,
    sessions: Vec<RefCell<Option<Session>>>,
    /// Indices of slots nobody is using.
    free: Rc<Queue<usize>>,
    stop: Rc<Event>,
    heartbeat: Option<crate::JoinHandle<()>>,
    _types: PhantomData<fn(T) -> R>,
}

/// A task taken from the queue, held under a lease until [`finish`](Lease::finish)ed. A
/// lease dropped unfinished (say, by a panic) puts the task back for another run.
pub struct Lease<'w, T, R> {
    worker: &'w Worker<T, R>,
    slot: usize,
    raw: Vec<u8>,
    id: TaskId,
    reply_to: String,
    task: T,
    finished: bool,
}

impl<T, R> Worker<T, R>
where
    T: DeserializeOwned,
    R: Serialize,
{
    pub(crate) fn new(shared: Rc<Shared>, slots: usize) -> io::Result<Worker<T, R>> {
        if slots == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a worker needs at least one slot",
            ));
        }
        let id = format!("{:016x}", crate::sys::shm::random_u64()?);
        let slots = Rc::new(Slots {
            names: (0..slots).map(|i| format!("{id}-{i}")).collect(),
            state: (0..slots).map(|_| Cell::new(SlotState::Free)).collect(),
        });
        let free = Rc::new(Queue::new(0));
        for i in 0..slots.names.len() {
            free.put(i)
                .expect("an open unbounded queue takes every put");
        }
        let stop = Rc::new(Event::new());
        let heartbeat = {
            let (shared, slots, free, stop) =
                (shared.clone(), slots.clone(), free.clone(), stop.clone());
            crate::spawn(move || heartbeat_loop(&shared, &slots, &free, &stop))
        };
        Ok(Worker {
            shared,
            sessions: (0..slots.names.len()).map(|_| RefCell::new(None)).collect(),
            slots,
            free,
            stop,
            heartbeat: Some(heartbeat),
            _types: PhantomData,
        })
    }

    /// Waits up to `timeout` for a task (and, first, for a free slot); `None` if none came.
    /// The calling green thread alone parks meanwhile.
    pub fn take(&self, timeout: Duration) -> io::Result<Option<Lease<'_, T, R>>> {
        let deadline = Instant::now() + timeout;
        let Ok(slot) = self.free.get_timeout(timeout) else {
            return Ok(None);
        };
        self.slots.state[slot].set(SlotState::Busy);
        let taken = self.take_in(slot, deadline);
        if !matches!(taken, Ok(Some(_))) {
            self.give_back(slot);
        }
        taken
    }

    /// Takes with slot `slot` until `deadline`.
    fn take_in(&self, slot: usize, deadline: Instant) -> io::Result<Option<Lease<'_, T, R>>> {
        let mut session = self.sessions[slot].borrow_mut();
        if session.is_none() {
            *session = Some(self.shared.open_session()?);
        }
        let session = session.as_mut().expect("just made");
        let name = &self.slots.names[slot];
        let (pending, lease) = (
            self.shared.key("pending"),
            self.shared.key(&format!("lease:{name}")),
        );
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let block = left
                .min(self.shared.options.lease / 4)
                .max(Duration::from_millis(1));
            session.allow_blocking(block)?;
            // READY (put back leftovers, heartbeat) and BLMOVE in one pipeline: the reaper
            // relies on every BLMOVE following a heartbeat at once (see &scripts::REAP).
            let raw: Option<Vec<u8>> = session.run(|con| {
                let (raw,): (Option<Vec<u8>>,) = ::redis::pipe()
                    .add_command(eval_with(&scripts::READY, &self.shared.prefix, &[name]))
                    .ignore()
                    .cmd("BLMOVE")
                    .arg(&pending)
                    .arg(&lease)
                    .arg("RIGHT")
                    .arg("LEFT")
                    .arg(block.as_secs_f64())
                    .query(con)?;
                Ok(raw)
            })?;
            let Some(raw) = raw else {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                continue;
            };
            match read_task::<T>(&raw) {
                Ok((id, reply_to, task)) => {
                    return Ok(Some(Lease {
                        worker: self,
                        slot,
                        raw,
                        id,
                        reply_to,
                        task,
                        finished: false,
                    }));
                }
                Err(_) => {
                    let args: [&[u8]; 2] = [name.as_bytes(), &raw];
                    let _: i64 = self.shared.eval(session, &scripts::QUARANTINE, &args)?;
                }
            }
        }
    }

    /// How many slots this worker has.
    pub fn slots(&self) -> usize {
        self.slots.names.len()
    }
}

impl<T, R> Worker<T, R> {
    /// Slot `slot` is free again.
    fn give_back(&self, slot: usize) {
        self.slots.state[slot].set(SlotState::Free);
        self.free
            .put(slot)
            .expect("an open unbounded queue takes every put");
    }
}

/// An envelope's id, reply-to and decoded task.
fn read_task<T: DeserializeOwned>(raw: &[u8]) -> Result<(TaskId, String, T), String> {
    let envelope = Envelope::parse(raw)?;
    let task = decode(envelope.body)?;
    Ok((envelope.id, envelope.reply_to.to_string(), task))
}

impl<T, R: Serialize> Lease<'_, T, R> {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// Finishes the task: the lease ends and `outcome` goes to the handle that put it.
    pub fn finish(self, outcome: Result<R, String>) -> io::Result<Ack> {
        self.finish_counting(outcome, &[])
    }

    /// Finishes the task and adds `counters` to the queue's counters
    /// ([`WorkQueue::counters`](super::WorkQueue::counters)) in the same atomic step: a task
    /// counts once, however many times it ran.
    pub fn finish_counting(
        mut self,
        outcome: Result<R, String>,
        counters: &[(&str, i64)],
    ) -> io::Result<Ack> {
        let (status, payload) = match outcome.as_ref().map(encode) {
            Ok(Ok(bytes)) => ("ok", bytes),
            Ok(Err(e)) => (
                "err",
                format!("the result could not be encoded: {e}").into_bytes(),
            ),
            Err(message) => ("err", message.clone().into_bytes()),
        };
        let (id, amounts) = (
            self.id.to_string(),
            counters.iter().map(|(_, n)| n.to_string()),
        );
        let amounts: Vec<String> = amounts.collect();
        let name = &self.worker.slots.names[self.slot];
        let mut args: Vec<&[u8]> = vec![
            name.as_bytes(),
            &self.raw,
            id.as_bytes(),
            self.reply_to.as_bytes(),
            status.as_bytes(),
            &payload,
        ];
        for ((counter, _), amount) in counters.iter().zip(&amounts) {
            args.push(counter.as_bytes());
            args.push(amount.as_bytes());
        }
        let mut session = self.worker.sessions[self.slot].borrow_mut();
        let session = session.as_mut().expect("a lease's slot has a session");
        let reply = self
            .worker
            .shared
            .memo_eval(session, &scripts::ACK, &args)?;
        self.finished = true;
        match reply.as_str() {
            "done" => Ok(Ack::Done),
            "lost" => Ok(Ack::Lost),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("redis: unexpected reply to ack: {other:?}"),
            )),
        }
    }
}

impl<T, R> Drop for Lease<'_, T, R> {
    fn drop(&mut self) {
        if self.finished {
            self.worker.give_back(self.slot);
        } else {
            // Keep the slot busy (heartbeats continue, so the reaper leaves it alone) until the
            // heartbeat puts the task back and frees the slot.
            self.worker.slots.state[self.slot].set(SlotState::Abandoned);
        }
    }
}

impl<T, R> Drop for Worker<T, R> {
    fn drop(&mut self) {
        self.stop.set();
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.join();
        }
        for session in &self.sessions {
            if let Some(session) = session.borrow_mut().as_mut() {
                self.shared.forget(session);
            }
        }
    }
}

/// Every quarter of the lease time: heartbeats for busy slots, abandoned leases put back, a
/// reap of dead slots. When the worker is dropped: every slot leaves (tasks still leased go
/// back), and its memo entries are deleted.
fn heartbeat_loop(shared: &Shared, slots: &Slots, free: &Queue<usize>, stop: &Event) {
    let interval = shared.options.lease / 4;
    let reap = reap_args(shared.options.lease);
    let mut session: Option<Session> = None;
    while !stop.wait_timeout(interval) {
        if session.is_none() {
            session = shared.open_session().ok();
        }
        let Some(s) = session.as_mut() else { continue };
        // A failure here (Redis down longer than the patience) is retried next tick.
        let _ = beat(shared, slots, free, s, &reap);
    }
    if let Some(s) = session.as_mut() {
        let names: Vec<&str> = slots.names.iter().map(String::as_str).collect();
        let _: io::Result<i64> =
            s.run_once(|con| eval_with(&scripts::LEAVE, &shared.prefix, &names).query(con));
    }
}

/// One tick of the heartbeat.
fn beat(
    shared: &Shared,
    slots: &Slots,
    free: &Queue<usize>,
    session: &mut Session,
    reap: &[String],
) -> io::Result<()> {
    let alive: Vec<&str> = slots
        .names
        .iter()
        .zip(&slots.state)
        .filter(|(_, state)| state.get() != SlotState::Free)
        .map(|(name, _)| name.as_str())
        .collect();
    if !alive.is_empty() {
        let _: i64 = shared.eval(session, &scripts::HEARTBEAT, &alive)?;
    }
    for (i, state) in slots.state.iter().enumerate() {
        if state.get() == SlotState::Abandoned {
            let _: i64 = shared.eval(session, &scripts::LEAVE, &[&slots.names[i]])?;
            state.set(SlotState::Free);
            free.put(i)
                .expect("an open unbounded queue takes every put");
        }
    }
    let _: i64 = shared.eval(session, &scripts::REAP, reap)?;
    Ok(())
}

impl<T, R> std::fmt::Debug for Worker<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let busy = self
            .slots
            .state
            .iter()
            .filter(|s| s.get() != SlotState::Free)
            .count();
        f.debug_struct("Worker")
            .field("prefix", &self.shared.prefix)
            .field("slots", &self.slots.names.len())
            .field("busy", &busy)
            .finish()
    }
}

impl<T: std::fmt::Debug, R> std::fmt::Debug for Lease<'_, T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.id)
            .field("slot", &self.worker.slots.names[self.slot])
            .field("task", &self.task)
            .finish()
    }
}

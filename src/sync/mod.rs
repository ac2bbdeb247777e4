//! Green synchronization: locks and signals whose waits park only the calling green thread.
//!
//! Every primitive here keeps its waiters in one kind of FIFO queue (`waiter.rs`) and wakes
//! them by *notify, then unpark* — directly on the same hub, through the hub's remote queue
//! from any other OS thread. So they work between green threads, from the main context,
//! from plain OS threads, and across OS threads.
//!
//! Why not `std::sync::Mutex` in green code? A std mutex blocks the whole OS thread: if green
//! thread A holds it across a green `sleep` and green thread B on the same hub tries to lock
//! it, B blocks the hub — and with it A, the only one who could unlock. The hub hangs. These
//! primitives park B instead, and the hub runs A.
//!
//! Here: [`Mutex`], [`Lock`], [`RLock`], [`Condition`], [`Event`], [`AsyncResult`], [`Barrier`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Queue`], [`LifoQueue`], [`PriorityQueue`], [`Channel`].

mod async_result;
mod barrier;
mod channel;
mod condition;
mod event;
mod mutex;
mod queue;
mod rlock;
mod semaphore;
pub(crate) mod waiter;

pub use async_result::AsyncResult;
pub use barrier::{Barrier, BrokenBarrier};
pub use channel::Channel;
pub use condition::Condition;
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use queue::{
    Fifo, GetError, Iter, Lifo, LifoQueue, Order, PriorityQueue, PutError, Queue, Smallest,
    TaskDoneTooOften, TryIter,
};
pub use rlock::{Lock, NotOwner, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, OverRelease, Permit, Semaphore};

//! The public types' auto traits and common traits, checked at compile time: this file does
//! not build if a type loses `Send`, `Sync`, `Debug` or `Error`, or gains `Send` where it is
//! deliberately absent. Each `!Send` is a design decision, said next to it.

use std::fmt::Debug;

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}
fn debug<T: Debug + ?Sized>() {}
fn error<T: std::error::Error + Send + Sync + 'static>() {}

/// Compiles only for a type that is *not* `Send`: for a `Send` type both impls apply and the
/// call is ambiguous (the `static_assertions` crate's `assert_not_impl_any` trick).
trait AmbiguousIfSend<A> {
    fn not_send() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}

/// Compiles only for a type that is *not* `Sync`.
trait AmbiguousIfSync<A> {
    fn not_sync() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}

#[test]
fn green_thread_types() {
    // A green thread belongs to the OS thread that spawned it: its handle, its generators and
    // greenlets (which run on that thread's stacks) cannot move.
    <greenrt::JoinHandle<u32> as AmbiguousIfSend<_>>::not_send();
    <greenrt::coro::Generator<u32> as AmbiguousIfSend<_>>::not_send();
    <greenrt::coro::Greenlet<u32> as AmbiguousIfSend<_>>::not_send();
    debug::<greenrt::JoinHandle<u32>>();
    debug::<greenrt::coro::Generator<u32>>();
    debug::<greenrt::coro::Greenlet<u32>>();
    debug::<greenrt::Builder>();
    send_sync::<greenrt::Builder>();
    debug::<greenrt::Current>();
    send_sync::<greenrt::Current>();
    // A panic payload is `Send` but not `Sync`.
    send::<greenrt::JoinError>();
    debug::<greenrt::JoinError>();
    <greenrt::JoinError as AmbiguousIfSync<_>>::not_sync();
    error::<greenrt::Elapsed>();
    // A Timeout's timer is armed on the hub of the green thread that runs under it; clones
    // share the deadline between green threads of that hub.
    <greenrt::Timeout as AmbiguousIfSend<_>>::not_send();
    debug::<greenrt::Timeout>();
    // `iwait` borrows its objects, which may be green-thread bound (`&dyn Waitable`).
    <greenrt::Iwait<'static> as AmbiguousIfSend<_>>::not_send();
    debug::<greenrt::Iwait<'static>>();
    // Wakes a parked green thread from any OS thread.
    send_sync::<greenrt::hub::Unparker>();
    debug::<greenrt::hub::Unparker>();
    send_sync::<greenrt::hub::Stats>();
    debug::<greenrt::hub::Stats>();
    debug::<greenrt::hub::StallReport>();
    send_sync::<greenrt::hub::StallReport>();
    debug::<greenrt::trace::Trace>();
    send_sync::<greenrt::bridge::Sleep>();
}

#[test]
fn socket_types() {
    // A socket may move to another thread before it first waits (rule 7).
    send_sync::<greenrt::net::TcpStream>();
    send_sync::<greenrt::net::TcpListener>();
    send_sync::<greenrt::net::UdpSocket>();
    debug::<greenrt::net::TcpStream>();
    debug::<greenrt::net::TcpListener>();
    debug::<greenrt::net::UdpSocket>();
}

#[test]
fn green_sync_types() {
    use greenrt::sync::*;
    // Green primitives wake waiters across OS threads too: all shareable.
    send_sync::<Mutex<u32>>();
    send_sync::<Barrier>();
    send_sync::<Channel<u32>>();
    debug::<Channel<u32>>();
    send_sync::<AsyncResult<u32, String>>();
    debug::<AsyncResult<u32, String>>();
    debug::<Barrier>();
    error::<BrokenBarrier>();
    send_sync::<Lock>();
    send_sync::<RLock>();
    send_sync::<Condition>();
    send_sync::<Event>();
    send_sync::<Semaphore>();
    send_sync::<BoundedSemaphore>();
    send_sync::<Queue<u32>>();
    send_sync::<LifoQueue<u32>>();
    send_sync::<PriorityQueue<u32>>();
    debug::<Mutex<u32>>();
    debug::<Lock>();
    debug::<RLock>();
    debug::<Condition>();
    debug::<Event>();
    debug::<Semaphore>();
    debug::<BoundedSemaphore>();
    debug::<Queue<u32>>();
    debug::<MutexGuard<'static, u32>>();
    debug::<Permit<'static>>();
    error::<GetError>();
    error::<PutError<u32>>();
    error::<TaskDoneTooOften>();
    error::<OverRelease>();
    error::<NotOwner>();
}

#[test]
fn ipc_types() {
    use greenrt::ipc::*;
    // Handles to shared memory: usable from every thread of every process that maps them.
    send_sync::<Lock>();
    send_sync::<RLock>();
    send_sync::<Semaphore>();
    send_sync::<BoundedSemaphore>();
    send_sync::<Event>();
    send_sync::<Condition>();
    send_sync::<Barrier>();
    debug::<Barrier>();
    send_sync::<Queue<u32>>();
    send_sync::<Value<u64>>();
    send_sync::<Array<u64>>();
    send_sync::<SharedDict<u32, u32>>();
    send_sync::<SharedList<u32>>();
    send_sync::<Connection>();
    debug::<Lock>();
    debug::<RLock>();
    debug::<Semaphore>();
    debug::<BoundedSemaphore>();
    debug::<Event>();
    debug::<Condition>();
    debug::<Queue<u32>>();
    debug::<Value<u64>>();
    debug::<Array<u64>>();
    debug::<SharedDict<u32, u32>>();
    debug::<SharedList<u32>>();
    debug::<Connection>();
    debug::<LockGuard<'static>>();
    error::<PutError>();
    error::<GetError>();
    error::<MessageTooLarge>();
    error::<BufferTooShort>();
    error::<PutManyError>();
    error::<CapacityExceeded>();
    error::<OverRelease>();
    // A listener is a socket: any thread may accept (it waits through that thread's hub).
    send_sync::<Listener>();
    debug::<Listener>();
    error::<AuthenticationError>();
}

#[test]
fn process_and_pool_types() {
    send_sync::<greenrt::process::Process>();
    debug::<greenrt::process::Process>();
    send_sync::<greenrt::process::Builder>();
    send_sync::<greenrt::process::ParentProcess>();
    debug::<greenrt::process::ParentProcess>();
    // The initializer is `Fn + Send + Sync`: the builder may move between threads.
    send_sync::<greenrt::process::PoolBuilder>();
    debug::<greenrt::process::PoolBuilder>();
    send_sync::<greenrt::process::Pool>();
    debug::<greenrt::process::Pool>();
    send::<greenrt::process::AsyncResult<u32>>();
    debug::<greenrt::process::AsyncResult<u32>>();
    error::<greenrt::process::TaskError>();
    error::<greenrt::process::PoolError>();
    debug::<greenrt::process::Rejection>();
    // The thread pool's task error carries a panic payload: `Send`, not `Sync`.
    send::<greenrt::thread_pool::TaskError>();
    <greenrt::thread_pool::TaskError as AmbiguousIfSync<_>>::not_sync();
    send_sync::<greenrt::thread_pool::ThreadPool>();
    error::<greenrt::thread_pool::Unfinished>();
    debug::<greenrt::thread_pool::Finished>();
    send::<greenrt::thread_pool::AsCompleted<u32>>();
    debug::<greenrt::thread_pool::AsCompleted<u32>>();
    debug::<greenrt::thread_pool::ThreadPool>();
    send::<greenrt::thread_pool::Task<u32>>();
    debug::<greenrt::thread_pool::Task<u32>>();
    // A green pool spawns green threads on its own OS thread.
    <greenrt::pool::GreenPool as AmbiguousIfSend<_>>::not_send();
    debug::<greenrt::pool::GreenPool>();
    debug::<greenrt::pool::Imap<u32>>();
    <greenrt::pool::Imap<u32> as AmbiguousIfSend<_>>::not_send();
}

#[cfg(feature = "redis")]
#[test]
fn dist_types() {
    use greenrt::dist::*;
    send::<Connection>();
    debug::<Connection>();
    // A queue handle keeps its connections for the green threads of one OS thread (its docs:
    // "open one per thread"), as do its workers.
    <WorkQueue<u32, u32> as AmbiguousIfSend<_>>::not_send();
    <Worker<u32, u32> as AmbiguousIfSend<_>>::not_send();
    debug::<WorkQueue<u32, u32>>();
    debug::<Worker<u32, u32>>();
    debug::<Options>();
    debug::<TaskResult<u32>>();
    debug::<QueueStats>();
    debug::<Ack>();
}

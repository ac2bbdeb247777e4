//! Every error type converts into `io::Error` (so `?` works in functions returning
//! `io::Result`) with a kind that says what happened, carrying the original where it can be
//! shared between threads, its message where it cannot (a panic payload is not `Sync`).

use std::io::ErrorKind;
use std::time::Duration;

#[test]
fn ipc_queue_errors_become_io_errors_with_their_kind() {
    let q: greenrt::ipc::Queue<u32> = greenrt::ipc::Queue::new(4096).unwrap();
    let empty: std::io::Error = q.try_get().unwrap_err().into();
    assert_eq!(empty.kind(), ErrorKind::WouldBlock);
    assert!(
        empty
            .get_ref()
            .unwrap()
            .downcast_ref::<greenrt::ipc::GetError>()
            .is_some(),
        "the GetError is carried"
    );
    let big = vec![0u8; 1 << 20];
    let q2: greenrt::ipc::Queue<Vec<u8>> = greenrt::ipc::Queue::new(4096).unwrap();
    let too_large: std::io::Error = q2.try_put(&big).unwrap_err().into();
    assert_eq!(too_large.kind(), ErrorKind::InvalidInput);
    q.close().unwrap();
    let closed: std::io::Error = q.put(&1).unwrap_err().into();
    assert_eq!(closed.kind(), ErrorKind::BrokenPipe);
    let drained: std::io::Error = q.get().unwrap_err().into();
    assert_eq!(drained.kind(), ErrorKind::UnexpectedEof);
    fn first(q: &greenrt::ipc::Queue<u32>) -> std::io::Result<u32> {
        Ok(q.get()?)
    }
    assert_eq!(first(&q).unwrap_err().kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn join_errors_become_io_errors_with_their_kind() {
    let panicked: std::io::Error = greenrt::spawn(|| panic!("boom")).join().unwrap_err().into();
    assert_eq!(panicked.kind(), ErrorKind::Other);
    assert_eq!(panicked.to_string(), "green thread panicked: boom");
    let sleeper = greenrt::spawn(|| greenrt::sleep(Duration::from_secs(60)));
    greenrt::yield_now();
    sleeper.kill();
    let killed: std::io::Error = sleeper.join().unwrap_err().into();
    assert_eq!(killed.kind(), ErrorKind::Interrupted);
}

#[test]
fn thread_pool_errors_become_io_errors_with_their_kind() {
    let pool = greenrt::thread_pool::ThreadPool::new(1).unwrap();
    let panicked: std::io::Error = pool.submit(|| panic!("bang")).result().unwrap_err().into();
    assert_eq!(panicked.kind(), ErrorKind::Other);
    assert!(panicked.to_string().contains("bang"), "{panicked}");
    pool.shutdown(true);
    let rejected: std::io::Error = pool.submit(|| 1).result().unwrap_err().into();
    assert_eq!(rejected.kind(), ErrorKind::BrokenPipe);
}

#[test]
fn process_pool_errors_become_io_errors_with_their_kind() {
    fn one(_: u32) -> u32 {
        1
    }
    let pool = greenrt::process::Pool::new(1).unwrap();
    let still: std::io::Error = pool.join().unwrap_err().into();
    assert_eq!(still.kind(), ErrorKind::WouldBlock);
    pool.close();
    let rejected: std::io::Error = pool.apply(one, 1).unwrap_err().into();
    assert_eq!(rejected.kind(), ErrorKind::BrokenPipe);
    pool.join().unwrap();
}

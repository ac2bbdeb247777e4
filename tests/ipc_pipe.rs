//! ipc::pipe: typed and raw messages both ways between processes, limits, poll, EOF, green
//! waiting, a peer killed mid-message.

mod util;

use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use greenrt::ipc::{MessageTooLarge, pipe};
use greenrt::process::Process;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn duplex_typed_and_raw_messages_between_processes() {
    let _t = turn();
    let (here, there) = pipe().unwrap();
    // Used in the parent before the fork: the child must still be able to use its end.
    here.send(&"hello".to_string()).unwrap();
    let child = Process::spawn(move || {
        assert_eq!(there.recv::<String>().unwrap(), "hello");
        for i in 0..200u32 {
            let bytes = there.recv_bytes().unwrap();
            assert_eq!(bytes, util::pattern(u64::from(i), i as usize * 97));
            there.send(&(i, util::fnv1a(&bytes, 0))).unwrap();
        }
        there.send_bytes(&[]).unwrap();
    })
    .unwrap();
    for i in 0..200u32 {
        let bytes = util::pattern(u64::from(i), i as usize * 97);
        here.send_bytes(&bytes).unwrap();
        assert_eq!(
            here.recv::<(u32, u64)>().unwrap(),
            (i, util::fnv1a(&bytes, 0))
        );
    }
    assert_eq!(here.recv_bytes().unwrap(), Vec::<u8>::new());
    assert!(child.join().unwrap().success());
    // The child's end is closed now (it exited): EOF, not a hang.
    assert_eq!(
        here.recv_bytes().unwrap_err().kind(),
        ErrorKind::UnexpectedEof
    );
}

#[test]
fn oversize_is_refused_before_anything_is_written() {
    let (a, b) = pipe().unwrap();
    a.set_max_message(100);
    let err = a.send_bytes(&[0; 101]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let inner = err
        .get_ref()
        .unwrap()
        .downcast_ref::<MessageTooLarge>()
        .unwrap();
    assert_eq!(
        *inner,
        MessageTooLarge {
            size: 101,
            max: 100
        }
    );
    assert!(
        !b.poll(Some(Duration::ZERO)).unwrap(),
        "nothing was written"
    );
    // A receiver with a smaller limit than the sender calls the frame corrupt.
    b.set_max_message(10);
    a.send_bytes(&[1; 50]).unwrap();
    assert_eq!(b.recv_bytes().unwrap_err().kind(), ErrorKind::InvalidData);
}

#[test]
fn poll_times_out_and_sees_data() {
    let (a, b) = pipe().unwrap();
    let start = Instant::now();
    assert!(!a.poll(Some(Duration::from_millis(40))).unwrap());
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(40) && took < Duration::from_millis(500),
        "{took:?}"
    );
    b.send(&1u8).unwrap();
    assert!(a.poll(None).unwrap());
    assert_eq!(a.recv::<u8>().unwrap(), 1);
}

#[test]
fn green_receiver_parks_only_itself() {
    let _t = turn();
    let (here, there) = pipe().unwrap();
    let child = Process::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        there.send(&42u32).unwrap();
    })
    .unwrap();
    let ticker = util::Ticker::start(20, Duration::from_millis(10));
    let receiver = greenrt::spawn(move || here.recv::<u32>().unwrap());
    assert_eq!(receiver.join().unwrap(), 42);
    assert_eq!(ticker.finish(), 20);
    assert!(child.join().unwrap().success());
}

#[test]
fn a_peer_killed_mid_message_is_eof_not_a_torn_message() {
    let _t = turn();
    let (here, there) = pipe().unwrap();
    let child = Process::spawn(move || {
        // Write a frame header promising 1 MB, half the body, then wait to be killed.
        use std::io::Write;
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY (test): a duplicate of our end's fd, owned by this File only.
        let mut raw = unsafe { std::fs::File::from_raw_fd(libc::dup(there.as_raw_fd())) };
        raw.write_all(&(1_000_000u32).to_le_bytes()).unwrap();
        let _ = raw.write_all(&[7; 1000]);
        std::thread::sleep(Duration::from_secs(60));
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    assert_eq!(child.join().unwrap().signal(), Some(9));
    assert_eq!(
        here.recv_bytes().unwrap_err().kind(),
        ErrorKind::UnexpectedEof
    );
}

#[test]
fn poll_keeps_its_timeout_while_another_green_thread_sits_in_recv() {
    let (a, b) = greenrt::ipc::pipe().unwrap();
    let a = std::rc::Rc::new(a);
    let r = a.clone();
    let receiver = greenrt::spawn(move || r.recv_bytes().unwrap());
    greenrt::sleep(std::time::Duration::from_millis(20)); // the receiver holds the recv lock
    let t0 = std::time::Instant::now();
    let ready = a.poll(Some(std::time::Duration::from_millis(100))).unwrap();
    let took = t0.elapsed();
    assert!(!ready);
    assert!(
        took >= std::time::Duration::from_millis(100)
            && took < std::time::Duration::from_millis(600),
        "poll(100 ms) took {took:?}"
    );
    b.send_bytes(b"late").unwrap();
    assert_eq!(receiver.join().unwrap(), b"late");
}

/// `pipe_oneway` (Python's `Pipe(duplex=False)`): messages go one way between processes;
/// the wrong direction is refused at once with PermissionDenied on both ends.
#[test]
fn a_one_way_pipe_refuses_the_wrong_direction() {
    let (rx, tx) = greenrt::ipc::pipe_oneway().unwrap();
    let child = greenrt::process::Process::spawn(move || {
        for i in 0..3u32 {
            tx.send(&i).unwrap();
        }
        assert_eq!(
            tx.recv::<u32>().unwrap_err().kind(),
            std::io::ErrorKind::PermissionDenied
        );
    })
    .unwrap();
    let got: Vec<u32> = (0..3).map(|_| rx.recv().unwrap()).collect();
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(
        rx.send(&9u32).unwrap_err().kind(),
        std::io::ErrorKind::PermissionDenied
    );
    assert!(
        child.join().unwrap().success(),
        "the child's wrong-direction check failed"
    );
}

/// `recv_bytes_into` fills a buffer without allocating; a message too long for it comes back
/// whole inside the error, and the next message is still read in order.
#[test]
fn recv_bytes_into_keeps_a_message_too_long_for_the_buffer() {
    let (a, b) = greenrt::ipc::pipe().unwrap();
    a.send_bytes(b"short").unwrap();
    a.send_bytes(b"a rather longer message").unwrap();
    a.send_bytes(b"next").unwrap();
    let mut buf = [0u8; 8];
    let n = b.recv_bytes_into(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"short");
    let err = b.recv_bytes_into(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let too_short = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<greenrt::ipc::BufferTooShort>())
        .expect("the error carries the message");
    assert_eq!(too_short.message, b"a rather longer message");
    let n = b.recv_bytes_into(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"next");
}

/// A message with bytes left over is refused, not half-read: a tuple `(7, 8, 9)` received as
/// a `u8` used to come out as 7, the rest dropped without a word.
#[test]
fn recv_of_a_message_with_bytes_left_over_is_invalid_data() {
    let (a, b) = greenrt::ipc::pipe().unwrap();
    a.send(&(7u8, 8u8, 9u8)).unwrap();
    let err = b.recv::<u8>().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("2 bytes left over"), "{err}");
    a.send(&(7u8, 8u8, 9u8)).unwrap();
    assert_eq!(b.recv::<(u8, u8, u8)>().unwrap(), (7, 8, 9));
}

//! block_on and the async sleep: futures in green code, wakers from other OS threads.

mod util;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

#[test]
fn smoke_block_on_a_ready_future() {
    assert_eq!(greenrt::block_on(async { 5 }), 5);
}

#[test]
fn async_sleeps_in_two_green_threads_overlap() {
    let start = Instant::now();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            greenrt::spawn(|| greenrt::block_on(greenrt::bridge::sleep(Duration::from_millis(50))))
        })
        .collect();
    greenrt::joinall(tasks);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(50) && took < Duration::from_millis(500),
        "{took:?}"
    );
}

/// A future completed by another OS thread through its waker.
struct Remote(Arc<Mutex<(Option<u32>, Option<Waker>)>>);

impl Future for Remote {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let mut s = self.0.lock().unwrap();
        match s.0 {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

#[test]
fn a_waker_fired_from_another_os_thread_unparks_only_the_green_thread() {
    let slot = Arc::new(Mutex::new((None, None::<Waker>)));
    let s = slot.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(40));
        let waker = {
            let mut g = s.lock().unwrap();
            g.0 = Some(11);
            g.1.take()
        };
        waker.expect("polled before").wake();
    });
    let ticker = util::Ticker::start(4, Duration::from_millis(5));
    let waiter = greenrt::spawn(move || greenrt::block_on(Remote(slot)));
    assert_eq!(waiter.join().unwrap(), 11);
    assert_eq!(
        ticker.finish(),
        4,
        "other green threads ran while the future was pending"
    );
}

#[test]
fn a_tokio_channel_future_works_under_block_on() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let _ = tx.send("from tokio's channel");
    });
    assert_eq!(greenrt::block_on(rx).unwrap(), "from tokio's channel");
}

#[test]
fn timeout_interrupts_block_on() {
    let r = greenrt::timeout(Duration::from_millis(10), || {
        greenrt::block_on(std::future::pending::<()>())
    });
    assert!(r.is_err());
    assert_eq!(greenrt::hub::stats().timers, 0, "no timer left behind");
}

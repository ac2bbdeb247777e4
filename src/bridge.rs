//! A bridge to Rust's `async`: run a `Future` from green code with [`block_on`], and sleep in
//! async code on the hub's timers with [`sleep`].
//!
//! Stackful and stackless side by side: a green thread has a stack and can park anywhere; a
//! future has none and returns `Pending` instead, leaving a `Waker` behind. `block_on` joins
//! the two: it polls the future, and while it is pending parks the *green thread* (only it —
//! the hub runs others), with a waker that unparks it from any OS thread.
//!
//! ```text
//!   block_on(fut):  loop { poll(fut) -> Ready(v)? return v
//!                          Pending: park the green thread   <- waker.wake(): unpark }
//! ```

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::hub::timers::{TimerAction, TimerKey};
use crate::hub::{Unparker, unparker, with_hub};

/// Wakes a green thread: the waker `block_on` gives the futures it polls.
struct GreenWaker(Unparker);

impl Wake for GreenWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion in the calling green thread (or main context), parking only
/// this green thread while the future is pending. Its waker works from any OS thread.
///
/// ```
/// use std::time::Duration;
///
/// let answer = greenrt::block_on(async {
///     greenrt::bridge::sleep(Duration::from_millis(5)).await;
///     42
/// });
/// assert_eq!(answer, 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(GreenWaker(unparker())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        // A wake during the poll left the park token: this returns at once then.
        crate::hub::park();
    }
}

/// A future that completes after a duration, on the timers of the hub of the thread that
/// polls it (so poll it under [`block_on`], or on a thread whose hub runs).
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
    /// The armed timer, and which hub armed it (the address of its shared part): a `Sleep`
    /// may move to another thread, where the same key would name someone else's timer.
    timer: Option<(TimerKey, usize)>,
}

/// An async sleep driven by the hub's timers.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        deadline: crate::time::instant_in(duration),
        timer: None,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.disarm();
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        let armed = with_hub(|hub| {
            let key = hub.add_timer(deadline, TimerAction::Waker(cx.waker().clone()));
            (key, hub.id())
        });
        self.timer = Some(armed);
        Poll::Pending
    }
}

impl Sleep {
    /// Cancels the armed timer, if any (on this thread's hub, where it was armed).
    fn disarm(&mut self) {
        if let Some((key, armed_on)) = self.timer.take() {
            crate::hub::with_existing_hub(|hub| {
                if hub.id() == armed_on {
                    hub.cancel_timer(key);
                } // elsewhere the timer just fires once, waking a waker that no longer cares
            });
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

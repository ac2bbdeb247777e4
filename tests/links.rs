//! gevent's links on a green thread's end: `link`, `link_value`, `link_exception` — each runs
//! once, in the order added, also when added after the end; a panicking link does not stop
//! the others; the outcome stays for `join`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use greenrt::{JoinError, sleep, spawn};

/// A shared log, and a maker of notes that append `tag: what` to it.
type Log = Rc<RefCell<Vec<String>>>;
type Note = Box<dyn Fn(String)>;

fn log() -> (Log, impl Fn(&str) -> Note) {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    (log, move |tag: &str| -> Note {
        let (l, tag) = (l.clone(), tag.to_string());
        Box::new(move |what: String| l.borrow_mut().push(format!("{tag}: {what}")))
    })
}

#[test]
fn links_run_once_in_order_when_the_green_thread_returns() {
    let (log, note) = log();
    let h = spawn(|| {
        sleep(Duration::from_millis(5));
        7
    });
    let (a, b, c) = (note("link"), note("value"), note("exception"));
    h.link(move |outcome| a(format!("{:?}", outcome.ok())));
    h.link_value(move |v| b(v.to_string()));
    h.link_exception(move |e| c(e.to_string()));
    assert!(log.borrow().is_empty(), "a link ran before the end");
    assert_eq!(h.join().unwrap(), 7, "the value stays for join");
    assert_eq!(*log.borrow(), ["link: Some(7)", "value: 7"]);
}

#[test]
fn link_exception_sees_a_panic_and_a_kill() {
    let (log, note) = log();
    let panics = spawn(|| -> u32 { panic!("boom") });
    let (a, b) = (note("panic"), note("value"));
    panics.link_exception(move |e| a(e.panic_message().unwrap_or("?").to_string()));
    panics.link_value(move |v| b(v.to_string()));
    assert_eq!(panics.join().unwrap_err().panic_message(), Some("boom"));
    let sleeper = spawn(|| sleep(Duration::from_secs(60)));
    let k = note("kill");
    sleeper.link_exception(move |e| k(format!("{}", matches!(e, JoinError::Killed))));
    greenrt::yield_now();
    sleeper.kill();
    assert!(sleeper.join().unwrap_err().is_killed());
    assert_eq!(*log.borrow(), ["panic: boom", "kill: true"]);
}

#[test]
fn a_link_added_after_the_end_runs_once_at_once() {
    let (log, note) = log();
    let h = spawn(|| "done");
    greenrt::yield_now(); // it has ended
    assert!(h.is_finished());
    let a = note("late");
    h.link_value(move |v| a(v.to_string()));
    assert_eq!(*log.borrow(), ["late: done"], "not run at once");
    assert_eq!(h.join().unwrap(), "done");
    assert_eq!(log.borrow().len(), 1, "run twice");
}

#[test]
fn a_panicking_link_does_not_stop_the_others() {
    let (log, note) = log();
    let h = spawn(|| 1);
    h.link(|_| panic!("a bad link"));
    let a = note("after");
    h.link_value(move |v| a(v.to_string()));
    assert_eq!(h.join().unwrap(), 1);
    assert_eq!(*log.borrow(), ["after: 1"]);
}

/// gevent's AsyncResult: every waiter gets the value set once; a second set is refused and
/// hands its value back; an error reaches every waiter too; a timed get says None in time.
#[test]
fn an_async_result_is_set_once_and_read_by_every_waiter() {
    use greenrt::sync::AsyncResult;
    let result: Rc<AsyncResult<u32, String>> = Rc::new(AsyncResult::new());
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let r = result.clone();
            spawn(move || r.get())
        })
        .collect();
    let started = std::time::Instant::now();
    assert_eq!(result.get_timeout(Duration::from_millis(20)), None);
    assert!(started.elapsed() >= Duration::from_millis(20));
    assert!(!result.is_ready() && result.peek().is_none());
    result.set(5).unwrap();
    assert_eq!(result.set(6), Err(6), "a second set must be refused");
    assert_eq!(result.set_error("late".into()), Err("late".to_string()));
    for got in greenrt::joinall(waiters) {
        assert_eq!(got.unwrap(), Ok(5));
    }
    assert!(result.successful());
    let failed: AsyncResult<u32, String> = AsyncResult::new();
    failed.set_error("no".into()).unwrap();
    assert_eq!(failed.get(), Err("no".to_string()));
    assert!(failed.is_ready() && !failed.successful());
}

//! The classic gevent demo: three green threads sleep 2 s, 1 s and 0 s; `joinall` waits for
//! them. Output order shows that sleeping parks only the sleeper:
//!
//! ```text
//! Running in foo
//! running in bar
//! running in func3
//! func3 done: the other two are still blocked
//! bar done: foo still blocked
//! foo done: blocked longest, finishes last
//! ```

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

fn foo() {
    println!("Running in foo");
    greenrt::sleep(Duration::from_secs(2));
    println!("foo done: blocked longest, finishes last");
}

fn bar() {
    println!("running in bar");
    greenrt::sleep(Duration::from_secs(1));
    println!("bar done: foo still blocked");
}

fn func3() {
    println!("running in func3");
    greenrt::sleep(Duration::ZERO);
    println!("func3 done: the other two are still blocked");
}

fn main() {
    args::Cli::new("gevent_sleep", "three green threads sleep 2 s, 1 s and 0 s; joinall waits; six lines in a fixed order")
        .mirrors("gevent.spawn / gevent.sleep / gevent.joinall, course note 1 (pools, callbacks, gevent, asyncio)")
        .parse();
    let handles = vec![
        greenrt::spawn(foo),
        greenrt::spawn(bar),
        greenrt::spawn(func3),
    ];
    for outcome in greenrt::joinall(handles) {
        outcome.expect("no green thread in this demo panics");
    }
}

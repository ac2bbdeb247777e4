//! The classic producer/consumer with a generator and `send`: the consumer is a generator
//! that receives each item through `yield` and answers `200 OK`; the producer drives it.
//!
//! Prints, for n = 1..5:
//! `[PRODUCER] Producing n...`, `[CONSUMER] Consuming n...`, `[PRODUCER] Consumer return: 200 OK`.

#[path = "common/args.rs"]
mod args;

use greenrt::coro::{Co, Generator, GeneratorState};

/// Python: `def consumer(): r = ''; while True: n = yield r; ...; r = '200 OK'`.
fn consumer(co: &Co<&'static str, Option<u32>>, _first: Option<u32>) {
    let mut reply = "";
    loop {
        let Some(n) = co.yield_(reply) else { return };
        println!("[CONSUMER] Consuming {n}...");
        reply = "200 OK";
    }
}

fn produce(c: &mut Generator<&'static str, Option<u32>>) {
    c.resume(None); // start it: runs up to the first yield
    for n in 1..=5 {
        println!("[PRODUCER] Producing {n}...");
        if let GeneratorState::Yielded(reply) = c.resume(Some(n)) {
            println!("[PRODUCER] Consumer return: {reply}");
        }
    }
    c.close();
}

fn main() {
    args::Cli::new(
        "generator_pc",
        "producer/consumer with a generator driven by send",
    )
    .mirrors("the yield-based producer/consumer, course note 1 (pools, callbacks, gevent, asyncio)")
    .parse();
    let mut c = Generator::new(consumer);
    produce(&mut c);
}

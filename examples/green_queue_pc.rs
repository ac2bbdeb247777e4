//! Producers and consumers on a green `Queue` with `task_done` and `join` (Python's
//! `queue.Queue` producer/consumer, with green threads instead of OS threads).
//!
//! Two producers each make five items; three consumers take them, "work" on each for a
//! random moment, and mark it done. The main context `join`s the queue: it returns once every
//! item has been processed. Then the queue is closed and the consumers end.

#[path = "common/args.rs"]
mod args;

use std::rc::Rc;
use std::time::Duration;

use greenrt::sync::Queue;

fn main() {
    args::Cli::new(
        "green_queue_pc",
        "producers and consumers on a green Queue with task_done and join",
    )
    .mirrors("queue.Queue producer/consumer, course note 1 (pools, callbacks, gevent, asyncio)")
    .parse();
    let q: Rc<Queue<String>> = Rc::new(Queue::new(3)); // at most 3 waiting items
    let producers: Vec<_> = ["alice", "bob"]
        .into_iter()
        .map(|name| {
            let q = q.clone();
            greenrt::spawn(move || {
                for i in 1..=5 {
                    let item = format!("{name}'s bun #{i}");
                    println!("[producer {name}] made {item}");
                    q.put(item).expect("open");
                    greenrt::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (1..=3)
        .map(|c| {
            let q = q.clone();
            greenrt::spawn(move || {
                let mut eaten = 0;
                while let Ok(item) = q.get() {
                    println!("[consumer {c}] eats {item}");
                    greenrt::sleep(Duration::from_millis(5 + 7 * c));
                    q.task_done().expect("one task_done per get");
                    eaten += 1;
                }
                eaten
            })
        })
        .collect();
    greenrt::joinall(producers);
    q.join(); // every item put has been marked done
    println!("[main] all items processed; closing the queue");
    q.close();
    let eaten: Vec<usize> = greenrt::joinall(consumers)
        .into_iter()
        .map(|r| r.expect("no panic"))
        .collect();
    println!(
        "[main] consumers ate {eaten:?} items, {} in all",
        eaten.iter().sum::<usize>()
    );
}

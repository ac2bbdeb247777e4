//! GreenPool: the bound, map order, imap_unordered, join, kill_all, free_count.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use greenrt::pool::GreenPool;
use util::DropCounter;

const MS: Duration = Duration::from_millis(1);

#[test]
fn smoke_spawn_and_join() {
    let pool = GreenPool::new(2);
    let h = pool.spawn(|| 5);
    assert_eq!(h.join().unwrap(), 5);
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn the_bound_is_never_exceeded_and_spawn_parks_the_caller() {
    let pool = GreenPool::new(3);
    let (inside, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    for i in 0..20u64 {
        let (inside, most) = (inside.clone(), most.clone());
        pool.spawn(move || {
            inside.set(inside.get() + 1);
            most.set(most.get().max(inside.get()));
            greenrt::sleep(MS * (1 + i % 4) as u32);
            inside.set(inside.get() - 1);
        });
        assert!(pool.free_count() <= 3);
    }
    pool.join();
    assert_eq!(most.get(), 3);
    assert_eq!(pool.free_count(), 3);
}

#[test]
fn map_keeps_input_order_and_imap_unordered_yields_by_completion() {
    let pool = GreenPool::new(4);
    let out = pool.map(
        |ms: u64| {
            greenrt::sleep(MS * ms as u32);
            ms
        },
        [8, 2, 6, 4],
    );
    assert_eq!(out, [8, 2, 6, 4]);
    let done: Vec<u64> = pool
        .imap_unordered(
            |ms: u64| {
                greenrt::sleep(MS * ms as u32 * 3);
                ms
            },
            [8, 2, 6, 4],
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(done, [2, 4, 6, 8]);
}

#[test]
fn imap_unordered_reports_a_panicking_task_and_goes_on() {
    let pool = GreenPool::new(2);
    let outcomes: Vec<_> = pool
        .imap_unordered(
            |x: u32| if x == 2 { panic!("task {x} failed") } else { x },
            [1, 2, 3],
        )
        .collect();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 2);
    let failed = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert_eq!(failed.panic_message(), Some("task 2 failed"));
}

#[test]
fn kill_all_unwinds_every_task_and_frees_the_slots() {
    let pool = GreenPool::new(5);
    let drops = DropCounter::default();
    for _ in 0..5 {
        let token = drops.token();
        pool.spawn(move || {
            let _t = token;
            greenrt::sleep(Duration::from_secs(60));
        });
    }
    greenrt::yield_now();
    assert_eq!(pool.free_count(), 0);
    pool.kill_all();
    assert_eq!(drops.dropped(), 5);
    assert_eq!(pool.free_count(), 5);
}

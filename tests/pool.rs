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
    let pool = GreenPool::new(2).unwrap();
    let h = pool.spawn(|| 5);
    assert_eq!(h.join().unwrap(), 5);
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn the_bound_is_never_exceeded_and_spawn_parks_the_caller() {
    let pool = GreenPool::new(3).unwrap();
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
    let pool = GreenPool::new(4).unwrap();
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
    let pool = GreenPool::new(2).unwrap();
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
    let pool = GreenPool::new(5).unwrap();
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

#[test]
fn imap_unordered_over_an_input_that_panics_ends_with_that_panic() {
    let pool = GreenPool::new(2).unwrap();
    let items = (0..5u32).inspect(|&i| assert!(i != 3, "the input broke at 3"));
    let got = greenrt::timeout(Duration::from_secs(5), || {
        pool.imap_unordered(|x: u32| x, items).collect::<Vec<_>>()
    })
    .expect("the consumer was left waiting");
    let (last, done) = got.split_last().unwrap();
    let mut values: Vec<u32> = done.iter().map(|r| *r.as_ref().unwrap()).collect();
    values.sort();
    assert_eq!(
        values,
        [0, 1, 2],
        "every item before the panic was processed"
    );
    match last {
        Err(greenrt::JoinError::Panicked(p)) => {
            let msg = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            assert!(msg.contains("the input broke at 3"), "{msg}");
        }
        other => panic!("the last item should be the input's panic, not {other:?}"),
    }
}

#[test]
fn a_join_interrupted_by_a_timeout_forgets_no_member() {
    let pool = GreenPool::new(3).unwrap();
    let members: Vec<_> = [30u64, 60, 90]
        .into_iter()
        .map(|ms| pool.spawn(move || greenrt::sleep(Duration::from_millis(ms))))
        .collect();
    assert_eq!(
        greenrt::timeout(Duration::from_millis(10), || pool.join()),
        Err(greenrt::Elapsed)
    );
    pool.join(); // must still wait for all three
    assert!(
        members.iter().all(|m| m.is_finished()),
        "join returned while members still ran"
    );
}

#[test]
fn kill_all_never_starts_the_members_that_have_not_started() {
    let pool = GreenPool::new(5).unwrap();
    let started = Rc::new(Cell::new(0));
    let members: Vec<_> = (0..5)
        .map(|_| {
            let started = started.clone();
            pool.spawn(move || {
                started.set(started.get() + 1);
                greenrt::sleep(Duration::from_secs(5));
            })
        })
        .collect();
    // Spawned, none run yet (spawn only queues them).
    pool.kill_all();
    assert_eq!(started.get(), 0, "killed members started anyway");
    for m in members {
        assert!(m.join().unwrap_err().is_killed());
    }
    assert_eq!(pool.free_count(), 5);
}

#[test]
fn a_pool_of_zero_is_an_error_for_every_kind_of_pool() {
    let kind = |e: std::io::Error| e.kind();
    assert_eq!(
        GreenPool::new(0).map(|_| ()).map_err(kind),
        Err(std::io::ErrorKind::InvalidInput)
    );
    assert_eq!(
        greenrt::thread_pool::ThreadPool::new(0)
            .map(|_| ())
            .map_err(kind),
        Err(std::io::ErrorKind::InvalidInput)
    );
    assert_eq!(
        greenrt::process::Pool::new(0).map(|_| ()).map_err(kind),
        Err(std::io::ErrorKind::InvalidInput)
    );
}

//! `greenrt::dist::Connection` against a real redis-server: the `redis` crate's typed API
//! over a green socket, a blocking command that parks only its green thread, pipelines,
//! databases, and a server that dies mid-call (an error, never a hang).
#![cfg(feature = "redis")]

mod util;

use std::time::{Duration, Instant};

use greenrt::dist::Connection;
use redis::{Commands, ConnectionLike};
use util::redis_server::RedisServer;

#[test]
fn the_crates_typed_api_works_on_a_green_connection() {
    let server = RedisServer::start();
    let mut con = Connection::open(server.url(0)).unwrap();
    let _: () = con.set("greeting", "hello").unwrap();
    let greeting: String = con.get("greeting").unwrap();
    assert_eq!(greeting, "hello");
    let n: i64 = con.incr("counter", 5).unwrap();
    assert_eq!(n, 5);
    let missing: Option<String> = con.get("missing").unwrap();
    assert_eq!(missing, None);
    // A server error is an error, and the connection stays usable.
    let wrong: redis::RedisResult<i64> = con.incr("greeting", 1);
    assert!(wrong.is_err());
    assert!(con.check_connection());
}

#[test]
fn a_pipeline_gets_every_reply_in_order() {
    let server = RedisServer::start();
    let mut con = Connection::open(server.url(0)).unwrap();
    let (a, b, len): (i64, i64, usize) = redis::pipe()
        .incr("a", 1)
        .incr("b", 2)
        .rpush("list", &[1, 2, 3])
        .ignore()
        .llen("list")
        .query(&mut con)
        .unwrap();
    assert_eq!((a, b, len), (1, 2, 3));
}

#[test]
fn the_url_selects_the_database() {
    let server = RedisServer::start();
    let mut in_3 = Connection::open(server.url(3)).unwrap();
    let mut in_0 = Connection::open(server.url(0)).unwrap();
    assert_eq!(in_3.get_db(), 3);
    let _: () = in_3.set("where", "three").unwrap();
    let seen: Option<String> = in_0.get("where").unwrap();
    assert_eq!(seen, None, "database 0 saw a key set in database 3");
}

/// A green thread blocked in BLPOP for 500 ms parks only itself: a ticker green thread on the
/// same hub keeps ticking every 10 ms meanwhile, and the pop returns what another
/// connection pushes.
#[test]
fn a_blocking_pop_parks_only_its_green_thread() {
    let server = RedisServer::start();
    let url = server.url(0);
    let popper = greenrt::spawn({
        let url = url.clone();
        move || {
            let mut con = Connection::open(url).unwrap();
            let t0 = Instant::now();
            let got: Option<(String, String)> = con.blpop("jobs", 5.0).unwrap();
            (got, t0.elapsed())
        }
    });
    let ticker = greenrt::spawn(|| {
        let mut ticks = 0;
        for _ in 0..40 {
            greenrt::sleep(Duration::from_millis(10));
            ticks += 1;
        }
        ticks
    });
    let pusher = greenrt::spawn(move || {
        greenrt::sleep(Duration::from_millis(500));
        let mut con = Connection::open(url).unwrap();
        let _: i64 = con.rpush("jobs", "job-1").unwrap();
    });
    let ticks_at_push = ticker.join().unwrap();
    pusher.join().unwrap();
    let (got, waited) = popper.join().unwrap();
    assert_eq!(ticks_at_push, 40);
    assert_eq!(got, Some(("jobs".to_string(), "job-1".to_string())));
    assert!(waited >= Duration::from_millis(450), "{waited:?}");
}

/// The server is killed while a green thread waits in BLPOP: the call fails (no hang) and the
/// connection says it is closed; later calls fail at once.
#[test]
fn a_server_that_dies_mid_call_is_an_error_not_a_hang() {
    let mut server = RedisServer::start();
    let url = server.url(0);
    let popper = greenrt::spawn(move || {
        let mut con = Connection::open(url).unwrap();
        let t0 = Instant::now();
        let got: redis::RedisResult<Option<(String, String)>> = con.blpop("never", 30.0);
        let open_after = con.is_open();
        let again: redis::RedisResult<Option<String>> = con.get("x");
        (got.is_err(), t0.elapsed(), open_after, again.is_err())
    });
    greenrt::sleep(Duration::from_millis(200));
    server.kill();
    let (failed, waited, open_after, again_failed) = popper.join().unwrap();
    assert!(failed, "BLPOP on a dead server did not fail");
    assert!(
        waited < Duration::from_secs(5),
        "it failed only after {waited:?}"
    );
    assert!(!open_after && again_failed);
}

/// A reply that does not come within the read timeout fails the call and closes the
/// connection (the late reply must not answer the next command).
#[test]
fn a_read_timeout_fails_the_call_and_closes_the_connection() {
    let server = RedisServer::start();
    let mut con = Connection::open(server.url(0)).unwrap();
    con.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let t0 = Instant::now();
    let got: redis::RedisResult<Option<(String, String)>> = con.blpop("never", 2.0);
    assert!(got.is_err());
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert!(!con.is_open());
}

/// The test helper itself: a server started on a port another server holds exits, and is not
/// mistaken for a live one because something answers there (two tests' servers once shared
/// a port, and one test's server died under the other's feet: "Connection refused").
#[test]
fn a_server_on_a_taken_port_is_not_taken_for_ours() {
    let first = RedisServer::start();
    assert!(RedisServer::start_on(first.port, None).is_none());
    let mut con = Connection::open(first.url(0)).unwrap();
    assert!(con.check_connection(), "the first server must be untouched");
}

//! The ticket sale of the multiprocessing notes: buyer *processes* race for tickets kept in a
//! JSON file `db` (`{"count": N}`). Each buyer searches (reads the count), then buys: read,
//! a simulated network delay, decrement, write back. Under an `ipc::Lock` exactly the
//! available tickets are sold; with `--no-lock` buyers act on stale reads and tickets are
//! oversold.
//!
//! `cargo run --release --example tickets -- --buyers 100 --tickets 5 [--no-lock] [--db PATH]`
//!
//! The last line is exactly `tickets: sold=<n> left=<n>`.

#[path = "common/args.rs"]
mod args;

use std::path::{Path, PathBuf};
use std::time::Duration;

use greenrt::ipc::{Lock, LockError, Value};
use greenrt::process::{Process, current_pid};

fn read_count(db: &Path) -> u64 {
    let text = std::fs::read_to_string(db).expect("read db");
    let json: serde_json::Value = serde_json::from_str(&text).expect("db holds JSON");
    json["count"].as_u64().expect("db has a numeric \"count\"")
}

fn write_count(db: &Path, count: u64) {
    // Write a temporary file and rename it over `db`: a reader never sees a half-written file
    // (the race this example shows is the stale read, not a torn file).
    let tmp = db.with_extension(format!("tmp{}", current_pid()));
    std::fs::write(&tmp, serde_json::json!({ "count": count }).to_string()).expect("write db");
    std::fs::rename(&tmp, db).expect("replace db");
}

/// A small pseudo-random delay per buyer, like the notes' `time.sleep(random.random())`.
fn delay(seed: u64) -> Duration {
    let x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    Duration::from_millis(1 + x % 8)
}

fn buy(db: &Path, buyer: u64, sold: &Value<u64>) {
    let count = read_count(db);
    std::thread::sleep(delay(buyer)); // network delay while reading
    if count > 0 {
        std::thread::sleep(delay(buyer + 1000)); // network delay while writing
        write_count(db, count - 1);
        *sold
            .lock()
            .or_else(LockError::recover)
            .expect("sold counter") += 1;
        println!(
            "[pid {}] buyer {buyer}: bought a ticket (saw {count} left)",
            current_pid()
        );
    } else {
        println!("[pid {}] buyer {buyer}: sold out", current_pid());
    }
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "tickets",
        "buyer processes race for tickets in a JSON db: exact under an ipc::Lock",
    )
    .mirrors("the ticket sale with a Lock, course note 3 (process isolation, daemons, Lock, Semaphore, Event)")
    .flag("buyers", "N", 100, "buyer processes")
    .flag("tickets", "N", 5, "tickets for sale")
    .switch("no-lock", "sell without the lock (oversells)")
    .flag("db", "PATH", "", "the JSON file (default: a temporary one, removed after)")
    .parse();
    let buyers: u64 = args.get("buyers");
    let tickets: u64 = args.get("tickets");
    let use_lock = !args.has("no-lock");
    let db: PathBuf = match args.raw("db") {
        "" => std::env::temp_dir().join(format!("greenrt-tickets-{}.json", current_pid())),
        given => given.into(),
    };
    write_count(&db, tickets);
    println!(
        "[pid {}] {tickets} tickets in {}, {buyers} buyer processes, {}",
        current_pid(),
        db.display(),
        if use_lock {
            "buying under an ipc::Lock"
        } else {
            "NO lock (expect overselling)"
        }
    );
    let lock = Lock::new()?;
    let sold = Value::new(0u64)?;
    let children: Vec<Process> = (0..buyers)
        .map(|buyer| {
            let (lock, sold, db) = (lock.clone(), sold.clone(), db.clone());
            Process::spawn(move || {
                println!(
                    "[pid {}] buyer {buyer}: {} tickets left",
                    current_pid(),
                    read_count(&db)
                );
                if use_lock {
                    let _held = lock
                        .lock()
                        .or_else(LockError::recover)
                        .expect("ticket lock");
                    buy(&db, buyer, &sold);
                } else {
                    buy(&db, buyer, &sold);
                }
            })
        })
        .collect::<Result<_, _>>()?;
    for child in &children {
        child.join()?;
    }
    let left = read_count(&db);
    if args.raw("db").is_empty() {
        let _ = std::fs::remove_file(&db);
    }
    println!("tickets: sold={} left={left}", sold.get()?);
    Ok(())
}

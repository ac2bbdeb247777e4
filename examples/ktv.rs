//! The KTV of the multiprocessing notes: 13 users (processes) share 4 rooms through an
//! `ipc::Semaphore(4)`. Each user enters, sings for a while, and leaves; never more than 4
//! are inside. The last line is exactly `ktv: max_inside=<n>`.
//!
//! `cargo run --release --example ktv -- [--users 13] [--rooms 4] [--max-ms 300]`

#[path = "common/args.rs"]
mod args;

use std::time::Duration;

use greenrt::ipc::{Array, LockError, Semaphore};
use greenrt::process::{Process, current_pid};

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "ktv",
        "users (processes) share rooms through an ipc::Semaphore; never more inside than rooms",
    )
    .mirrors("the KTV with Semaphore(4), course note 3 (process isolation, daemons, Lock, Semaphore, Event)")
    .flag("users", "N", 13, "user processes")
    .flag("rooms", "N", 4, "semaphore permits")
    .flag("max-ms", "MS", 300, "longest song")
    .parse();
    let users: u64 = args.get("users");
    let rooms: u32 = args.get("rooms");
    let max_ms: u64 = args.get("max-ms");
    println!("[pid {}] {users} users, {rooms} rooms", current_pid());
    let sem = Semaphore::new(rooms)?;
    let inside = Array::<u32>::new(2)?; // [inside now, most inside at once]
    let children: Vec<Process> = (0..users)
        .map(|n| {
            let (sem, inside) = (sem.clone(), inside.clone());
            Process::spawn(move || {
                let _room = sem.acquire().expect("semaphore");
                {
                    let mut s = inside.lock().or_else(LockError::recover).expect("counter");
                    s[0] += 1;
                    s[1] = s[1].max(s[0]);
                    println!(
                        "[pid {}] user{n} enters a room ({} inside)",
                        current_pid(),
                        s[0]
                    );
                }
                let sing = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
                std::thread::sleep(Duration::from_millis(sing % max_ms.max(1)));
                inside.lock().or_else(LockError::recover).expect("counter")[0] -= 1;
                println!("[pid {}] user{n} leaves", current_pid());
            })
        })
        .collect::<Result<_, _>>()?;
    for child in &children {
        child.join()?;
    }
    println!("ktv: max_inside={}", inside.to_vec()?[1]);
    Ok(())
}

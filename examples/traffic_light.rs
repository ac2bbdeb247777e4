//! The traffic light of the multiprocessing notes: a light process toggles an `ipc::Event`
//! (set = green) every 2 s; car processes arrive and wait for green; police cars wait at
//! most 0.5 s and then go anyway.
//!
//! `cargo run --release --example traffic_light -- [--secs 6] [--cars 10] [--period-ms 2000]`

#[path = "common/args.rs"]
mod args;

use std::time::{Duration, Instant};

use greenrt::ipc::Event;
use greenrt::process::{Builder, Process, current_pid};

fn light(green: &Event, period: Duration) {
    println!("[pid {}] light: RED", current_pid());
    loop {
        std::thread::sleep(period);
        if green.is_set() {
            green.clear();
            println!("[pid {}] light: RED", current_pid());
        } else {
            green.set();
            println!("[pid {}] light: GREEN", current_pid());
        }
    }
}

fn car(id: u64, green: &Event) {
    if !green.is_set() {
        println!("[pid {}] car {id} waits at the red light", current_pid());
        green.wait();
    }
    println!("[pid {}] car {id} passes", current_pid());
}

fn police_car(id: u64, green: &Event) {
    if !green.is_set() && !green.wait_timeout(Duration::from_millis(500)) {
        println!(
            "[pid {}] police car {id} passes on red after 0.5 s",
            current_pid()
        );
        return;
    }
    println!("[pid {}] police car {id} passes", current_pid());
}

fn main() -> std::io::Result<()> {
    let args = args::Cli::new(
        "traffic_light",
        "a light process toggles an ipc::Event; cars wait for green, police wait 0.5 s",
    )
    .mirrors("the traffic light with Event, course note 3 (process isolation, daemons, Lock, Semaphore, Event)")
    .flag("secs", "S", 6.0, "how long the light runs")
    .flag("cars", "N", 10, "car processes")
    .flag("period-ms", "MS", 2000, "how long each colour lasts")
    .parse();
    let secs: f64 = args.get("secs");
    let cars: u64 = args.get("cars");
    let period = Duration::from_millis(args.get("period-ms"));
    let green = Event::new()?;
    // The light is a daemon: it ends when main ends, even if main is killed.
    let light_process = Builder::new().name("light").daemon(true).spawn({
        let green = green.clone();
        move || light(&green, period)
    })?;
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut vehicles: Vec<Process> = Vec::new();
    let mut id = 0;
    while id < cars && Instant::now() < end {
        let police = id % 4 == 3;
        let green = green.clone();
        vehicles.push(Process::spawn(move || {
            if police {
                police_car(id, &green)
            } else {
                car(id, &green)
            }
        })?);
        id += 1;
        let gap = Duration::from_secs_f64(secs / (cars.max(1) as f64 + 1.0));
        std::thread::sleep(gap.min(end.saturating_duration_since(Instant::now())));
    }
    // Let the last cars through, but never past the time bound (plus one light period).
    for v in &vehicles {
        let left = (end + period).saturating_duration_since(Instant::now());
        if v.join_timeout(left)?.is_none() {
            v.kill()?;
            println!(
                "[pid {}] car process {} still waiting at the end: stopped",
                current_pid(),
                v.pid()
            );
        }
    }
    light_process.kill()?;
    light_process.join()?;
    println!("traffic_light: {id} vehicles, done");
    Ok(())
}

//! How a green thread's panic is printed.
//!
//! std prints `thread '<name>' panicked at <place>:` for OS threads. Inside a green thread that
//! would name the OS thread, which is not what the user wants to know, so greenrt wraps the
//! panic hook (once, when the first hub is made): inside a green thread it prints
//! `green thread '<name>' (id N) panicked at <place>:` and the message; everywhere else the
//! previous hook runs unchanged. The panic itself is caught at the green thread's entry and
//! handed to `join` as `JoinError::Panicked`; the hub is never taken down.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write;
use std::panic;

/// Not a `std::sync::Once`: see `process::per_process::OnceFlag`.
static INSTALL: crate::sys::per_process::OnceFlag = crate::sys::per_process::OnceFlag::new();

pub(crate) fn install() {
    INSTALL.run(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let label = super::with_existing_hub(|hub| {
                hub.with_current(|g| (!g.is_main).then(|| (g.display_name().to_owned(), g.id)))
            });
            match label.flatten() {
                Some((name, id)) => print_green_panic(&name, id, info),
                None => previous(info),
            }
        }));
    });
}

fn print_green_panic(name: &str, id: u64, info: &panic::PanicHookInfo<'_>) {
    let message = info.payload_as_str().unwrap_or("Box<dyn Any>");
    let place = info
        .location()
        .map(|l| l.to_string())
        .unwrap_or_else(|| "<unknown>".into());
    let backtrace = Backtrace::capture();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\ngreen thread '{name}' (id {id}) panicked at {place}:\n{message}"
    );
    if backtrace.status() == BacktraceStatus::Captured {
        let _ = writeln!(err, "stack backtrace:\n{backtrace}");
    } else {
        let _ = writeln!(
            err,
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
        );
    }
}

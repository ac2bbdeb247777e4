//! A tiny `--flag value` parser shared by the examples (no dependency needed for this).
#![allow(dead_code)]

use std::str::FromStr;

/// The command line, as `--name value` pairs and bare `--switch`es.
pub struct Args {
    items: Vec<String>,
}

impl Args {
    pub fn from_env() -> Args {
        Args {
            items: std::env::args().skip(1).collect(),
        }
    }

    /// The value after `--name`, parsed, or `default`. Exits with a message on a bad value.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        let flag = format!("--{name}");
        match self.items.iter().position(|a| *a == flag) {
            None => default,
            Some(i) => {
                let raw = self
                    .items
                    .get(i + 1)
                    .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
                raw.parse()
                    .unwrap_or_else(|_| fail(&format!("{flag}: cannot parse {raw:?}")))
            }
        }
    }

    /// True if `--name` is present.
    pub fn has(&self, name: &str) -> bool {
        let flag = format!("--{name}");
        self.items.contains(&flag)
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

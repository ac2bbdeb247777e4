//! The command line of every example: flags declared with their defaults and help, `--help`
//! that says what the example shows and which course-note program it mirrors, and an exit
//! with status 2 that names an unknown flag, a missing value or a bad one.
//!
//! ```ignore
//! let args = Cli::new("echo_bench", "Drives an echo server with N connections.")
//!     .mirrors("the socketserver client loop (seed 000)")
//!     .flag("conns", "N", 50, "connections held open at once")
//!     .switch("quick", "a short run")
//!     .parse();
//! let conns: usize = args.get("conns");
//! ```
//!
//! The tokens are read by `lexopt` (a small, well-kept crate that gets `--flag=value`,
//! `--flag value`, `--` and non-UTF-8 arguments right); the declarations, the help text and
//! the typed values are ours.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// One declared flag: `--name VALUE` (with a default) or a bare `--name` switch.
struct Flag {
    name: &'static str,
    /// What the value is called in the help (`N`, `ADDR`); `None` for a switch.
    value_name: Option<&'static str>,
    default: String,
    help: &'static str,
    /// May be given more than once (every value is kept).
    repeated: bool,
}

/// An example's command line, declared before it is parsed.
pub struct Cli {
    name: &'static str,
    about: &'static str,
    mirrors: Option<&'static str>,
    flags: Vec<Flag>,
}

/// The parsed command line: every flag's value, given or default.
pub struct Args {
    name: &'static str,
    values: HashMap<&'static str, Vec<String>>,
    switches: Vec<&'static str>,
}

impl Cli {
    /// An example called `name` that shows `about`.
    pub fn new(name: &'static str, about: &'static str) -> Cli {
        Cli {
            name,
            about,
            mirrors: None,
            flags: Vec::new(),
        }
    }

    /// The course-note program this example mirrors, for the help.
    pub fn mirrors(mut self, seed: &'static str) -> Cli {
        self.mirrors = Some(seed);
        self
    }

    /// `--name VALUE`, `default` when absent.
    pub fn flag(
        self,
        name: &'static str,
        value_name: &'static str,
        default: impl Display,
        help: &'static str,
    ) -> Cli {
        self.declare(name, Some(value_name), default.to_string(), help, false)
    }

    /// `--name VALUE` that may be given any number of times (none by default).
    pub fn repeated(self, name: &'static str, value_name: &'static str, help: &'static str) -> Cli {
        self.declare(name, Some(value_name), String::new(), help, true)
    }

    /// A bare `--name`, off unless given.
    pub fn switch(self, name: &'static str, help: &'static str) -> Cli {
        self.declare(name, None, String::new(), help, false)
    }

    fn declare(
        mut self,
        name: &'static str,
        value_name: Option<&'static str>,
        default: String,
        help: &'static str,
        repeated: bool,
    ) -> Cli {
        assert!(
            self.find(name).is_none() && name != "help",
            "--{name} is declared twice"
        );
        self.flags.push(Flag {
            name,
            value_name,
            default,
            help,
            repeated,
        });
        self
    }

    fn find(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    /// Parses this process's arguments: prints the help and exits 0 on `--help`/`-h`; prints
    /// the error and a hint and exits 2 on anything it does not know.
    pub fn parse(self) -> Args {
        match self.parse_from(std::env::args_os().skip(1)) {
            Ok(Some(args)) => args,
            Ok(None) => {
                print!("{}", self.help());
                std::process::exit(0)
            }
            Err(message) => fail(self.name, &message),
        }
    }

    /// Parses `tokens`: `Ok(None)` when they ask for the help.
    pub fn parse_from(
        &self,
        tokens: impl IntoIterator<Item = std::ffi::OsString>,
    ) -> Result<Option<Args>, String> {
        use lexopt::prelude::*;
        let mut parser = lexopt::Parser::from_args(tokens);
        let mut values: HashMap<&'static str, Vec<String>> = HashMap::new();
        let mut switches = Vec::new();
        while let Some(token) = parser.next().map_err(|e| e.to_string())? {
            let name = match token {
                Short('h') | Long("help") => return Ok(None),
                Long(name) => name.to_string(),
                Short(c) => return Err(format!("unknown flag -{c}")),
                Value(v) => return Err(format!("unexpected argument {v:?}")),
            };
            let flag = self
                .find(&name)
                .ok_or_else(|| format!("unknown flag --{name}"))?;
            if flag.value_name.is_none() {
                switches.push(flag.name);
                continue;
            }
            let value = parser
                .value()
                .map_err(|_| format!("--{name} needs a value"))?
                .into_string()
                .map_err(|v| format!("--{name}: {v:?} is not UTF-8"))?;
            let slot = values.entry(flag.name).or_default();
            if !flag.repeated {
                slot.clear(); // the last one given wins
            }
            slot.push(value);
        }
        for flag in self.flags.iter().filter(|f| f.value_name.is_some()) {
            if !flag.repeated {
                values
                    .entry(flag.name)
                    .or_insert_with(|| vec![flag.default.clone()]);
            }
        }
        Ok(Some(Args {
            name: self.name,
            values,
            switches,
        }))
    }

    /// The `--help` text: what the example shows, what it mirrors, how to run it, every flag
    /// with its default.
    pub fn help(&self) -> String {
        let mut out = format!("{} — {}\n", self.name, self.about);
        if let Some(seed) = self.mirrors {
            out += &format!("\nMirrors: {seed}\n");
        }
        out += &format!(
            "\nUsage: cargo run --release --example {} -- [FLAGS]\n\nFlags:\n",
            self.name
        );
        let shown: Vec<(String, String)> = self
            .flags
            .iter()
            .map(|f| {
                let left = match f.value_name {
                    Some(v) => format!("--{} {v}", f.name),
                    None => format!("--{}", f.name),
                };
                let right = match (f.value_name, f.repeated) {
                    (Some(_), false) => format!("{} [default: {}]", f.help, f.default),
                    (Some(_), true) => format!("{} (may be repeated)", f.help),
                    (None, _) => f.help.to_string(),
                };
                (left, right)
            })
            .chain([("-h, --help".into(), "print this help and exit".into())])
            .collect();
        let width = shown.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (left, right) in shown {
            out += &format!("  {left:width$}  {right}\n");
        }
        out
    }
}

impl Args {
    /// The value of `--name` (the last one given, else the default), parsed. Exits 2 naming
    /// the flag when it does not parse.
    pub fn get<T: FromStr>(&self, name: &str) -> T
    where
        T::Err: Display,
    {
        let raw = self.raw(name);
        raw.parse()
            .unwrap_or_else(|e| fail(self.name, &format!("--{name}: bad value {raw:?}: {e}")))
    }

    /// The value of `--name` as given (or its default).
    pub fn raw(&self, name: &str) -> &str {
        match self.values.get(name).map(Vec::as_slice) {
            Some([.., last]) => last,
            _ => panic!("--{name} is not a declared flag with a value"),
        }
    }

    /// Every value given for a repeated `--name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// True if the switch `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }
}

fn fail(example: &str, message: &str) -> ! {
    eprintln!("error: {message}\n(try: cargo run --release --example {example} -- --help)");
    std::process::exit(2)
}

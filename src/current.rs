//! [`current`]: which green thread is running.

use std::fmt;

use crate::hub::with_hub;

/// Identity of the running green thread, or of the OS thread's main context.
#[derive(Clone, PartialEq, Eq)]
pub struct Current {
    id: u64,
    name: Option<String>,
    is_main: bool,
}

impl Current {
    /// Process-wide unique id. Main contexts have ids too.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The green thread's name, or for the main context the OS thread's name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// True in the main context (the OS thread's own stack), false in a green thread.
    pub fn is_main(&self) -> bool {
        self.is_main
    }
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Current")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("is_main", &self.is_main)
            .finish()
    }
}

/// Returns the id and name of the running green thread (or the main context).
///
/// ```
/// let main = greenrt::current();
/// assert!(main.is_main());
/// let child = greenrt::spawn(|| greenrt::current()).join().unwrap();
/// assert!(!child.is_main());
/// assert_ne!(child.id(), main.id());
/// ```
pub fn current() -> Current {
    with_hub(|hub| {
        hub.with_current(|g| Current {
            id: g.id,
            name: g.name.as_deref().map(String::from),
            is_main: g.is_main,
        })
    })
}

//! A real `redis-server` for the tests of feature `redis`: started on a free port with no
//! persistence, stopped (SIGKILL) when dropped. A machine without `redis-server` fails these
//! tests with a message saying so (`.ci/run` installs it) — they are behind the feature, not
//! skipped inside it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// Where a durable server keeps its append-only file.
    dir: Option<std::path::PathBuf>,
}

impl RedisServer {
    /// Starts one and waits until it answers PING (10 s at most).
    pub fn start() -> RedisServer {
        let port = free_port();
        let child = spawn(port, None);
        let server = RedisServer {
            child,
            port,
            dir: None,
        };
        server.wait_until_up();
        server
    }

    /// Starts one that writes every change to its append-only file before it answers
    /// (`appendfsync always`): a `restart` loses nothing it acknowledged.
    pub fn start_durable() -> RedisServer {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("greenrt-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir for the AOF");
        let child = spawn(port, Some(&dir));
        let server = RedisServer {
            child,
            port,
            dir: Some(dir),
        };
        server.wait_until_up();
        server
    }

    /// Kills the server (SIGKILL) and starts it again on the same port (and data, if durable).
    pub fn restart(&mut self, down_for: Duration) {
        self.kill();
        std::thread::sleep(down_for);
        self.child = spawn(self.port, self.dir.as_deref());
        self.wait_until_up();
    }

    fn wait_until_up(&self) {
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `redis://127.0.0.1:PORT/db`.
    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `redis-server` on `port`: without persistence, or durable in `dir`.
fn spawn(port: u16, dir: Option<&std::path::Path>) -> Child {
    let mut command = Command::new("redis-server");
    command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
    match dir {
        None => command.args(["--save", "", "--appendonly", "no"]),
        Some(dir) => command
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(dir),
    };
    command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect(
            "redis-server is not installed: the `redis` feature's tests need a real one \
             (apt-get install -y redis-server; .ci/run does this)",
        )
}

/// A port nobody listens on right now (the kernel picks it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

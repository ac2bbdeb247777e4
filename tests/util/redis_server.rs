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
    /// Starts one and waits until it answers (10 s at most).
    pub fn start() -> RedisServer {
        RedisServer::launch(None)
    }

    /// Starts one that writes every change to its append-only file before it answers
    /// (`appendfsync always`): a `restart` loses nothing it acknowledged.
    pub fn start_durable() -> RedisServer {
        static DIRS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = DIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("greenrt-redis-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir for the AOF");
        RedisServer::launch(Some(dir))
    }

    /// A free port can be taken by someone else (another test's server, in this process or
    /// one beside it) between finding it and the server binding it: the server then exits,
    /// and whoever holds the port answers instead. So a server counts as up only when the
    /// process answering on the port is this child; if the child exited, try another port.
    fn launch(dir: Option<std::path::PathBuf>) -> RedisServer {
        (0..5)
            .find_map(|_| RedisServer::start_on(free_port(), dir.clone()))
            .expect("redis-server lost the race for a free port five times")
    }

    /// Starts one on `port`; `None` if it could not have the port (it exited).
    pub fn start_on(port: u16, dir: Option<std::path::PathBuf>) -> Option<RedisServer> {
        let mut server = RedisServer {
            child: spawn(port, dir.as_deref()),
            port,
            dir,
        };
        if server.wait_until_up() {
            return Some(server);
        }
        let _ = server.child.wait();
        server.dir = None; // not ours to remove
        None
    }

    /// Kills the server (SIGKILL) and starts it again on the same port (and data, if durable).
    pub fn restart(&mut self, down_for: Duration) {
        self.kill();
        std::thread::sleep(down_for);
        self.child = spawn(self.port, self.dir.as_deref());
        assert!(
            self.wait_until_up(),
            "redis-server could not bind port {} again (taken meanwhile)",
            self.port
        );
    }

    /// Waits until this child answers on the port (true), or exits (false).
    fn wait_until_up(&mut self) -> bool {
        let t0 = Instant::now();
        loop {
            if self.child.try_wait().expect("the child's status").is_some() {
                return false;
            }
            if server_pid(self.port) == Some(self.child.id()) {
                return true;
            }
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

/// The process id of the Redis server answering on `port` (`INFO server`), if one answers.
fn server_pid(port: u16) -> Option<u32> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"INFO server\r\n").ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&reply);
        if let Some(at) = text.find("process_id:") {
            let digits: String = text[at + 11..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if text[at + 11 + digits.len()..].starts_with("\r\n") {
                return digits.parse().ok();
            }
        }
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None; // loading, or not Redis: ask again
        }
        reply.extend_from_slice(&buf[..n]);
    }
}

/// A port nobody listens on right now (the kernel picks it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

//! A `redis-server` of a test's own: started on a free loopback port with
//! its data directory under the target directory, stopped (by its process
//! ID) when dropped, restartable on the same port and directory so that a
//! test can check what survives a restart.
//!
//! [`RedisServer::start`] finds the binary, installing Debian's
//! `redis-server` package with `apt-get` when it is missing and the test
//! runs as root. Only when it is absent and cannot be installed does it
//! return `None`, after printing why; under `CI` it panics instead, since
//! the test command installs it there and a silent skip would hide that.

#![allow(dead_code, unreachable_pub)]

use core::net::{Ipv4Addr, SocketAddr};
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// How the server makes writes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// No append-only file and no snapshots: everything is lost on restart.
    None,
    /// An append-only file, fsynced as `appendfsync` says.
    Aof(AppendFsync),
}

/// Redis's `appendfsync` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendFsync {
    /// fsync before each write is acknowledged.
    Always,
    /// fsync once a second.
    EverySec,
    /// Leave it to the OS.
    No,
}

impl AppendFsync {
    fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::EverySec => "everysec",
            Self::No => "no",
        }
    }
}

/// A running (or stopped, restartable) `redis-server`.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    persistence: Persistence,
    child: Option<Child>,
}

/// The `redis-server` binary, found or installed once per test process.
fn binary() -> Option<PathBuf> {
    static BINARY: OnceLock<Option<PathBuf>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(found) = find_in_path("redis-server") {
                return Some(found);
            }
            eprintln!("redis-server is not installed; trying `apt-get install redis-server`");
            let installed = Command::new("apt-get")
                .args(["install", "-y", "-qq", "redis-server"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !installed {
                // The package lists may be missing on a fresh machine.
                let _ = Command::new("apt-get")
                    .args(["update", "-qq"])
                    .stdout(Stdio::null())
                    .status();
                let _ = Command::new("apt-get")
                    .args(["install", "-y", "-qq", "redis-server"])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .stdout(Stdio::null())
                    .status();
            }
            find_in_path("redis-server")
        })
        .clone()
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

impl RedisServer {
    /// Starts a server with `persistence` in a fresh directory under
    /// `base` (a test passes `env!("CARGO_TARGET_TMPDIR")`). `None`, with a
    /// printed reason, when `redis-server` is absent and cannot be
    /// installed outside CI.
    pub fn start(base: &Path, persistence: Persistence) -> Option<Self> {
        let Some(binary) = binary() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is missing and `apt-get install redis-server` failed; \
                 the Redis tests must run in CI"
            );
            eprintln!(
                "SKIPPED: redis-server is not installed and could not be installed \
                 (run `apt-get install redis-server`)"
            );
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = base.join(format!(
            "redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        // Another process may take the port between our probe and the
        // server's bind; try again on a new one.
        for _ in 0..20 {
            let mut server = Self {
                binary: binary.clone(),
                port: free_port(),
                dir: dir.clone(),
                persistence,
                child: None,
            };
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of 20 free ports; see {dir:?}/redis.log");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's process ID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with `SIGKILL` (no shutdown save) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and directory,
    /// so it loads what its append-only file kept.
    pub fn restart(&mut self) {
        self.kill();
        // The port is ours until a stranger binds it in the gap; wait for
        // the kernel to let the new server bind it.
        let started = Instant::now();
        while !self.spawn() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the process and waits for it to answer `PING`; `false` if it
    /// exited first (its port was taken).
    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg("redis.log")
            .arg("--daemonize")
            .arg("no")
            .arg("--protected-mode")
            .arg("yes")
            .arg("--save")
            .arg("");
        match self.persistence {
            Persistence::None => {
                cmd.arg("--appendonly").arg("no");
            }
            Persistence::Aof(fsync) => {
                cmd.arg("--appendonly")
                    .arg("yes")
                    .arg("--appendfsync")
                    .arg(fsync.as_str());
            }
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if ping(self.port) {
                self.child = Some(child);
                return true;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server on port {} did not answer PING within 30 s; see {:?}",
                    self.port,
                    self.dir.join("redis.log")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether a server on `port` answers `PING` with `PONG` (and has finished
/// loading its data: a loading server answers with an error).
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

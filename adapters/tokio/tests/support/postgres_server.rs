//! A PostgreSQL server of a test's own, from Debian's `postgresql` package:
//! `initdb` into a fresh directory under the target directory, `postgres`
//! on a free loopback port with its unix socket in that directory, trust
//! authentication for one test user, and one database made for the test.
//! It is stopped (by its process ID) when dropped, and its directory
//! removed unless the test is failing; it can be crashed and restarted on
//! the same port and data directory.
//!
//! # Running as root
//!
//! `initdb`, `postgres` and `pg_ctl` refuse to run as root. When the test
//! runs as root, the server's directory is handed to the unprivileged
//! `nobody` user (`chown`) and those programs are started with that user's
//! uid and gid (`CommandExt::uid`/`gid`, so no `runuser` or `sudo` is
//! needed). When a folder above the target directory is closed to
//! `nobody` (no `o+x`, as in a checkout inside a private folder), the
//! server's directory moves to the system's temporary folder instead.
//! Clients (`pg_isready`, `createdb`, the tests) connect over TCP and run
//! as whoever runs the test.
//!
//! [`PostgresServer::start`] finds `/usr/lib/postgresql/*/bin/initdb` (the
//! newest version), installing Debian's `postgresql` package with
//! `apt-get` when it is missing and the test runs as root. Only when it is
//! absent and cannot be installed does it return `None`, after printing
//! why; under `CI` it panics instead, since the test command installs it
//! there and a silent skip would hide that.

#![allow(dead_code, unreachable_pub)]

use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// The superuser the server is initialised with; it logs in without a
/// password (trust authentication).
pub const USER: &str = "mechops";

/// The database each server creates for its test.
pub const DATABASE: &str = "mechops_test";

/// The uid and gid of `nobody` on Debian, used when the test runs as root.
const NOBODY: (u32, u32) = (65534, 65534);

/// A running (or stopped, restartable) PostgreSQL server.
#[derive(Debug)]
pub struct PostgresServer {
    bin: PathBuf,
    port: u16,
    dir: PathBuf,
    tls: bool,
    child: Option<Child>,
}

/// `/usr/lib/postgresql/VERSION/bin` of the newest installed version,
/// found or installed once per test process.
fn bin_dir() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(found) = find_bin_dir() {
            return Some(found);
        }
        eprintln!("PostgreSQL is not installed; trying `apt-get install postgresql`");
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "postgresql"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !install() {
            // The package lists may be missing on a fresh machine.
            let _ = Command::new("apt-get")
                .args(["update", "-qq"])
                .stdout(Stdio::null())
                .status();
            install();
        }
        find_bin_dir()
    })
    .clone()
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    // `id -u` rather than libc, so the harness needs no unsafe code.
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
    })
}

/// A command for a server program, run as `nobody` when we are root.
fn server_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    if running_as_root() {
        cmd.uid(NOBODY.0).gid(NOBODY.1);
    }
    cmd
}

/// Hands `path` to `nobody` when we are root.
fn give_to_server_user(path: &Path) {
    if running_as_root() {
        run(
            Command::new("chown")
                .arg(format!("{}:{}", NOBODY.0, NOBODY.1))
                .arg(path),
            "chown to nobody",
        );
    }
}

/// Makes `dir` afresh, owned by the server's user.
fn prepare_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the server's directory");
    give_to_server_user(dir);
}

/// Whether the server's user can enter `dir` (and so every folder above).
fn server_user_reaches(dir: &Path) -> bool {
    server_command(Path::new("test"))
        .arg("-x")
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes `contents` to `path` readable by its owner only, owned by the
/// server's user (PostgreSQL refuses a key others can read).
fn write_private(path: &Path, contents: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).expect("write a server file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .expect("make a server file private");
    give_to_server_user(path);
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PostgresServer {
    /// Initialises a cluster in a fresh directory under `base` (a test
    /// passes `env!("CARGO_TARGET_TMPDIR")`), starts it and creates
    /// [`DATABASE`]. `None`, with a printed reason, when PostgreSQL is
    /// absent and cannot be installed outside CI.
    pub fn start(base: &Path) -> Option<Self> {
        Self::start_inner(base, None)
    }

    /// Like [`PostgresServer::start`], with TLS on (`ssl=on`) using the
    /// PEM certificate chain `cert` and its private key `key`; clients may
    /// still connect without TLS.
    pub fn start_with_tls(base: &Path, cert: &str, key: &str) -> Option<Self> {
        Self::start_inner(base, Some((cert, key)))
    }

    fn start_inner(base: &Path, tls: Option<(&str, &str)>) -> Option<Self> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is missing and `apt-get install postgresql` failed; \
                 the PostgreSQL tests must run in CI"
            );
            eprintln!(
                "SKIPPED: PostgreSQL is not installed and could not be installed \
                 (run `apt-get install postgresql`)"
            );
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut dir = base.join(&name);
        prepare_dir(&dir);
        if !server_user_reaches(&dir) {
            // A parent of `base` is closed to `nobody` (a checkout in a
            // private folder): fall back to the system's temporary folder.
            let fallback = std::env::temp_dir().join(format!("mechops-{name}"));
            eprintln!(
                "{} is not reachable by the nobody user; the PostgreSQL server runs in {}",
                base.display(),
                fallback.display()
            );
            let _ = std::fs::remove_dir_all(&dir);
            dir = fallback;
            prepare_dir(&dir);
        }
        run(
            server_command(&bin.join("initdb"))
                .arg("--pgdata")
                .arg(dir.join("data"))
                .args(["--username", USER, "--auth", "trust"])
                .args(["--encoding", "UTF8", "--no-sync"]),
            "initdb",
        );
        if let Some((cert, key)) = tls {
            write_private(&dir.join("server.crt"), cert);
            write_private(&dir.join("server.key"), key);
        }
        // Another process may take the port between our probe and the
        // server's bind; try again on a new one.
        for _ in 0..20 {
            let mut server = Self {
                bin: bin.clone(),
                port: free_port(),
                dir: dir.clone(),
                tls: tls.is_some(),
                child: None,
            };
            if server.spawn() {
                run(
                    Command::new(bin.join("createdb"))
                        .args(["--host", "127.0.0.1", "--port"])
                        .arg(server.port.to_string())
                        .args(["--username", USER, DATABASE]),
                    "createdb",
                );
                return Some(server);
            }
        }
        panic!("postgres did not start on any of 20 free ports; see {dir:?}/postgres.log");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://USER@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The server's directory (data, socket and log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The postmaster's process ID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Crashes the server: `SIGQUIT` to the postmaster (what
    /// `pg_ctl stop -m immediate` sends), which ends every backend at once
    /// without a checkpoint; the next start runs crash recovery.
    pub fn kill(&mut self) {
        self.stop_with("QUIT");
    }

    /// Crashes the server and starts it again on the same port and data
    /// directory.
    pub fn restart(&mut self) {
        self.kill();
        let started = Instant::now();
        while !self.spawn() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "postgres did not restart on port {}; see {:?}",
                self.port,
                self.dir.join("postgres.log")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` to the postmaster by its process ID and waits for it
    /// to exit, killing it outright after 30 s.
    fn stop_with(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-s", signal])
            .arg(child.id().to_string())
            .status();
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the postmaster and waits until it accepts connections;
    /// `false` if it exited first (its port was taken).
    fn spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("postgres.log"))
            .expect("open the server log");
        let err = log.try_clone().expect("clone the log handle");
        let mut cmd = server_command(&self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("port={}", self.port))
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            // A test server: durability is not what is tested here.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=100"]);
        if self.tls {
            cmd.args(["-c", "ssl=on"])
                .arg("-c")
                .arg(format!(
                    "ssl_cert_file={}",
                    self.dir.join("server.crt").display()
                ))
                .arg("-c")
                .arg(format!(
                    "ssl_key_file={}",
                    self.dir.join("server.key").display()
                ));
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("spawn postgres");
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            if self.is_ready() {
                self.child = Some(child);
                return true;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "postgres on port {} was not ready within 60 s; see {:?}",
                    self.port,
                    self.dir.join("postgres.log")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server accepts connections (`pg_isready` exits 0; it
    /// answers 1 while the server starts up or recovers).
    fn is_ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["--quiet", "--host", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--username", USER, "--timeout", "1"])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // SIGINT: fast shutdown, clients disconnected, a clean checkpoint.
        self.stop_with("INT");
        // A cluster takes tens of megabytes; keep it (and its log) only
        // when the test failed.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

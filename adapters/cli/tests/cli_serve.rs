//! `mechops serve` end to end: the binary on a free port (`--listen
//! 127.0.0.1:0`, the address read from its first line), requests over a
//! plain TCP connection, the token rule, and a clean stop on SIGTERM.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use support::temp_dir;

struct Serve {
    child: Child,
    addr: String,
    first_line: String,
}

impl Serve {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mechops"));
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .env_remove("MECHOPS_TOKEN")
            .env_remove("JOB_STORAGE_PATH")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        out.read_line(&mut first_line).unwrap();
        assert!(first_line.starts_with("serving "), "{first_line:?}");
        let addr = first_line
            .trim()
            .rsplit_once("http://")
            .map(|(_, a)| a.to_owned())
            .unwrap();
        // Keep draining standard output so the server never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Self {
            child,
            addr,
            first_line,
        }
    }

    /// One request on its own connection: (status, body).
    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap();
        // Answers are small: axum sends them with Content-Length.
        assert!(head.to_lowercase().contains("content-length"), "{head}");
        (status, rest.to_owned())
    }

    fn stop(mut self) -> (i32, String) {
        // SAFETY: `kill` with a child's PID and a valid signal number has no
        // memory effects.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(r, 0);
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = self.child.wait().unwrap();
        (status.code().expect("exited"), err)
    }
}

#[test]
fn serves_the_example_registry_and_stops_on_sigterm() {
    let dir = temp_dir("serve-example");
    let s = Serve::start(&dir, &[], &[]);
    assert!(
        s.first_line.contains("examples/registry.json"),
        "{}",
        s.first_line
    );
    let (code, body) = s.request("GET", "/healthz", None, "");
    assert_eq!((code, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (code, body) = s.request("GET", "/scripts/greet", None, "");
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], "greet");
    let (code, body) = s.request(
        "POST",
        "/scripts/greet/run",
        None,
        r#"{"arguments":{"name":"Cy"}}"#,
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["stdout"], "hello, Cy\n");
    let (code, body) = s.request(
        "POST",
        "/jobs",
        None,
        r#"{"script_id":"greet","arguments":{"name":"Di"}}"#,
    );
    assert_eq!(code, 202, "{body}");
    let (code, status) = s.stop();
    assert_eq!(code, 0, "{status}");
    // The store and the workspace are under ./.mechops.
    assert!(dir.join(".mechops/jobs.db").exists());
    assert!(dir.join(".mechops/workspace/runs").exists());
}

#[test]
fn a_local_registry_json_is_preferred() {
    let dir = temp_dir("serve-local");
    std::fs::write(
        dir.join("registry.json"),
        r#"{"version":1,"scripts":[{"id":"only","kind":"command","command":["true"],"arguments":{}}],"pools":{}}"#,
    )
    .unwrap();
    let s = Serve::start(&dir, &[], &[]);
    assert!(
        s.first_line.starts_with("serving registry.json on "),
        "{}",
        s.first_line
    );
    let (code, body) = s.request("GET", "/scripts", None, "");
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["scripts"].as_array().unwrap().len(), 1);
    assert_eq!(s.stop().0, 0);
}

#[test]
fn a_token_file_guards_the_routes() {
    let dir = temp_dir("serve-token");
    std::fs::write(dir.join("token"), "tok-123\n").unwrap();
    let s = Serve::start(&dir, &["--token-file", "token"], &[]);
    assert_eq!(s.request("GET", "/healthz", None, "").0, 200);
    assert_eq!(s.request("GET", "/scripts", None, "").0, 401);
    assert_eq!(s.request("GET", "/scripts", Some("tok-12"), "").0, 401);
    assert_eq!(s.request("GET", "/scripts", Some("tok-123"), "").0, 200);
    assert_eq!(s.stop().0, 0);
    // MECHOPS_TOKEN does the same.
    let s = Serve::start(&dir, &[], &[("MECHOPS_TOKEN", "env-tok")]);
    assert_eq!(s.request("GET", "/stats", None, "").0, 401);
    assert_eq!(s.request("GET", "/stats", Some("env-tok"), "").0, 200);
    assert_eq!(s.stop().0, 0);
}

#[test]
fn refuses_a_public_address_without_a_token() {
    let dir = temp_dir("serve-public");
    let out = Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .current_dir(&dir)
        .env_remove("MECHOPS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = Command::new(env!("CARGO_BIN_EXE_mechops"))
        .args(["serve", "--listen", "nowhere"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

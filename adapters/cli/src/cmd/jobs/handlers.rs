//! The built-in handlers of `mechops jobs worker`, so the queue is usable
//! and testable without registering any: `noop`, `sleep`, `echo`, `fail`,
//! `progress` and `exec`.

use core::time::Duration;

use mechops_tokio::jobs::runtime::{Handlers, JobContext, JobError};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most bytes of standard output, and of standard error, an `exec`
/// result keeps; the rest is read and dropped.
pub(crate) const EXEC_OUTPUT_LIMIT: usize = 64 * 1024;

/// Every built-in handler.
pub(crate) fn builtins() -> Handlers {
    let mut h = Handlers::new();
    h.register("noop", |_ctx| async { Ok(Value::Null) });
    h.register("echo", |ctx| async move { Ok(ctx.args().clone()) });
    h.register("sleep", |ctx| async move {
        let ms = u64_arg(&ctx, "ms")?.unwrap_or(0);
        cancellable_sleep(&ctx, Duration::from_millis(ms)).await?;
        Ok(Value::Null)
    });
    h.register("fail", |ctx| async move {
        let times = u64_arg(&ctx, "times")?.unwrap_or(u64::MAX);
        let permanent = match ctx.args().get("permanent") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(JobError::Permanent(
                    "fail: \"permanent\" must be true or false".into(),
                ));
            }
        };
        if u64::from(ctx.attempt()) > times {
            return Ok(json!({ "attempt": ctx.attempt() }));
        }
        let msg = format!("fail: attempt {} fails as asked", ctx.attempt());
        Err(if permanent {
            JobError::Permanent(msg)
        } else {
            JobError::Retryable(msg)
        })
    });
    h.register("progress", |ctx| async move {
        let steps = u64_arg(&ctx, "steps")?.unwrap_or(10).max(1);
        let ms = u64_arg(&ctx, "ms")?.unwrap_or(100);
        for i in 1..=steps {
            cancellable_sleep(&ctx, Duration::from_millis(ms)).await?;
            // i <= steps, so the fraction is within 0..=1.
            let fraction = i as f64 / steps as f64;
            ctx.progress(fraction, format!("step {i} of {steps}"))
                .map_err(|e| JobError::Permanent(e.to_string()))?;
        }
        Ok(json!({ "steps": steps }))
    });
    h.register("exec", exec);
    h
}

fn u64_arg(ctx: &JobContext, name: &str) -> Result<Option<u64>, JobError> {
    match ctx.args().get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            JobError::Permanent(format!("argument {name:?} must be a whole number, not {v}"))
        }),
    }
}

async fn cancellable_sleep(ctx: &JobContext, d: Duration) -> Result<(), JobError> {
    tokio::select! {
        () = tokio::time::sleep(d) => Ok(()),
        () = ctx.cancel_token().cancelled() => Err(JobError::Retryable("cancelled".into())),
    }
}

/// Kills a process group when dropped, unless disarmed: a dropped `exec`
/// attempt (timeout, cancel, shutdown) never leaves its programs running.
struct GroupKill(Option<i32>);

impl GroupKill {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: killpg only sends a signal, touching no memory of
            // ours. `pgid` is the group our child was made leader of
            // (process_group(0)); the kernel does not reuse a PID while a
            // group of that ID has members, so the signal reaches that group
            // or, once it is empty, nobody (ESRCH, ignored).
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn read_bounded(mut r: impl AsyncRead + Unpin) -> (String, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut truncated = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = EXEC_OUTPUT_LIMIT - kept.len();
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (String::from_utf8_lossy(&kept).into_owned(), truncated)
}

async fn exec(ctx: JobContext) -> Result<Value, JobError> {
    let bad = |m: &str| JobError::Permanent(format!("exec: {m}"));
    let argv: Vec<String> = match ctx.args().get("argv") {
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("\"argv\" must hold only strings"))?,
        _ => return Err(bad("\"argv\" must be a non-empty array of strings")),
    };
    let timeout = u64_arg(&ctx, "timeout_ms")?.map(Duration::from_millis);
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| JobError::Permanent(format!("exec: cannot run {:?}: {e}", argv[0])))?;
    let mut group = GroupKill(child.id().and_then(|p| i32::try_from(p).ok()));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let run = async {
        let out = async {
            match stdout {
                Some(s) => read_bounded(s).await,
                None => (String::new(), false),
            }
        };
        let err = async {
            match stderr {
                Some(s) => read_bounded(s).await,
                None => (String::new(), false),
            }
        };
        let ((out, t1), (err, t2), status) = tokio::join!(out, err, child.wait());
        (out, err, t1 || t2, status)
    };
    let (stdout, stderr, truncated, status) = tokio::select! {
        r = run => r,
        () = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => core::future::pending().await,
            }
        } => {
            group.kill();
            return Err(JobError::Retryable(format!(
                "exec: {:?} timed out after {} ms; its process group was killed",
                argv[0],
                timeout.map_or(0, |t| t.as_millis())
            )));
        }
        () = ctx.cancel_token().cancelled() => {
            group.kill();
            return Err(JobError::Retryable("exec: cancelled".into()));
        }
    };
    // The leader is reaped: its group may live on in its children, which
    // the drop of `group` kills too.
    drop(group);
    let status = status.map_err(|e| JobError::Retryable(format!("exec: waiting: {e}")))?;
    if !status.success() {
        let tail: String = stderr
            .chars()
            .rev()
            .take(200)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(JobError::Retryable(format!(
            "exec: {:?} failed ({status}): {}",
            argv[0],
            tail.trim()
        )));
    }
    Ok(json!({
        "status": status.code(),
        "stdout": stdout,
        "stderr": stderr,
        "truncated": truncated,
    }))
}

//! The built-in handlers of `mechops jobs worker`, so the queue is usable
//! and testable without registering any: `noop`, `sleep`, `echo`, `fail`,
//! `progress` and `exec`.

use core::time::Duration;

use mechops_tokio::exec::{CommandRequest, ProgressReport, run_command};
use mechops_tokio::jobs::runtime::{Handlers, JobContext, JobError};
use serde_json::{Value, json};

/// The most bytes of standard output, and of standard error, an `exec`
/// result keeps; the rest is read and dropped. The command runs through
/// [`run_command`]: no shell, its own process group killed as a whole on
/// timeout or cancel, `::progress` lines as job progress.
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
    let workdir = std::env::current_dir()
        .map_err(|e| bad(&format!("no current directory to run in: {e}")))?;
    let mut request = CommandRequest::new(&argv[0], &argv[1..], workdir);
    request.timeout = u64_arg(&ctx, "timeout_ms")?.map(Duration::from_millis);
    request.stdout_limit = EXEC_OUTPUT_LIMIT;
    request.stderr_limit = EXEC_OUTPUT_LIMIT;
    // `::progress` lines on standard error become the job's progress.
    let mut on_progress = |report: &ProgressReport| {
        let message = report.message.clone().unwrap_or_default();
        // The runner gives percentages from 0 to 100 only, so the
        // fraction is always one `progress` accepts.
        let _ = ctx.progress(report.percent / 100.0, message);
    };
    let outcome = run_command(&request, &mut on_progress, ctx.cancel_token())
        .await
        .map_err(|e| {
            let msg = format!("exec: {e}");
            if e.is_transient() {
                JobError::Retryable(msg)
            } else {
                JobError::Permanent(msg)
            }
        })?;
    if let Some(error) = outcome.error {
        let tail: String = outcome
            .stderr
            .chars()
            .rev()
            .take(200)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let tail = tail.trim();
        return Err(JobError::Retryable(if tail.is_empty() {
            format!("exec: {error}")
        } else {
            format!("exec: {error}: {tail}")
        }));
    }
    Ok(json!({
        "status": outcome.exit_code,
        "stdout": outcome.stdout,
        "stderr": outcome.stderr,
        "truncated": outcome.stdout_truncated || outcome.stderr_truncated,
    }))
}

//! What `mechops jobs worker` shows while it runs: progress bars on a
//! terminal (jobs done of total, rate, and a bar per running job that
//! reports progress), one JSON event per line with `--json`, plain lines
//! otherwise.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mechops_alloc::job::JobId;
use mechops_tokio::jobs::runtime::{Queue, QueueEvent, QueueEventKind};
use serde_json::json;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

enum Mode {
    Json,
    Bars {
        multi: MultiProgress,
        total: ProgressBar,
        jobs: HashMap<JobId, ProgressBar>,
    },
    Plain,
}

/// The running display.
pub(crate) struct Display {
    task: JoinHandle<u64>,
    stop: tokio_util::sync::CancellationToken,
}

impl Display {
    /// Starts showing `events`; `pending` is the number of jobs to do when
    /// the worker starts.
    pub(crate) fn start(
        _queue: Queue,
        events: broadcast::Receiver<QueueEvent>,
        json: bool,
        pending: u64,
    ) -> Self {
        let mode = if json {
            Mode::Json
        } else if std::io::stdout().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
            let total = multi.add(ProgressBar::new(pending));
            total.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} jobs  {per_sec}  {elapsed_precise}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Mode::Bars {
                multi,
                total,
                jobs: HashMap::new(),
            }
        } else {
            Mode::Plain
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(show(mode, events, stop.clone()));
        Self { task, stop }
    }

    /// Stops showing; returns a note for the summary line (events lost to
    /// a slow display), or an empty string.
    pub(crate) async fn finish(self) -> String {
        self.stop.cancel();
        match self.task.await {
            Ok(0) | Err(_) => String::new(),
            Ok(n) => format!(" ({n} events not shown: the display fell behind)"),
        }
    }
}

async fn show(
    mut mode: Mode,
    mut events: broadcast::Receiver<QueueEvent>,
    stop: tokio_util::sync::CancellationToken,
) -> u64 {
    let mut lost = 0;
    loop {
        let e = tokio::select! {
            biased;
            e = events.recv() => e,
            () = stop.cancelled() => {
                // Show what is already queued, then stop.
                match events.try_recv() {
                    Ok(e) => Ok(e),
                    Err(_) => break,
                }
            }
        };
        match e {
            Ok(e) => one(&mut mode, &e),
            Err(RecvError::Lagged(n)) => lost += n,
            Err(RecvError::Closed) => break,
        }
    }
    if let Mode::Bars { total, jobs, .. } = &mode {
        for bar in jobs.values() {
            bar.finish_and_clear();
        }
        total.finish();
    }
    lost
}

fn finished(kind: &QueueEventKind) -> bool {
    matches!(
        kind,
        QueueEventKind::Completed { .. }
            | QueueEventKind::Failed { .. }
            | QueueEventKind::Cancelled
            | QueueEventKind::Released
            | QueueEventKind::Fenced { .. }
    )
}

fn one(mode: &mut Mode, e: &QueueEvent) {
    match mode {
        Mode::Json => {
            let mut v = match &e.kind {
                QueueEventKind::Submitted => json!({"event": "submitted"}),
                QueueEventKind::Started { attempt } => {
                    json!({"event": "started", "attempt": attempt})
                }
                QueueEventKind::Progress { fraction, message } => {
                    json!({"event": "progress", "progress": fraction, "message": message})
                }
                QueueEventKind::Completed { result } => {
                    json!({"event": "completed", "result": &**result})
                }
                QueueEventKind::Failed { error, state } => {
                    json!({"event": "failed", "error": error, "state": state.as_str()})
                }
                QueueEventKind::Cancelled => json!({"event": "cancelled"}),
                QueueEventKind::Released => json!({"event": "released"}),
                QueueEventKind::Fenced { reason } => json!({"event": "fenced", "reason": reason}),
                QueueEventKind::Recovered { count } => {
                    json!({"event": "recovered", "count": count})
                }
            };
            if !matches!(e.kind, QueueEventKind::Recovered { .. }) {
                v["id"] = e.id.to_string().into();
            }
            let mut out = std::io::stdout().lock();
            // A closed standard output ends the display, not the worker.
            let _ = writeln!(out, "{v}");
        }
        Mode::Plain => {
            let line = match &e.kind {
                QueueEventKind::Completed { .. } => format!("completed {}", e.id),
                QueueEventKind::Failed { error, state } => {
                    format!("failed {} ({state}): {error}", e.id)
                }
                QueueEventKind::Cancelled => format!("cancelled {}", e.id),
                QueueEventKind::Released => format!("released {}", e.id),
                QueueEventKind::Fenced { reason } => format!("fenced {}: {reason}", e.id),
                QueueEventKind::Recovered { count } => format!("recovered {count} expired leases"),
                _ => return,
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
        Mode::Bars { multi, total, jobs } => {
            if let QueueEventKind::Progress { fraction, message } = &e.kind {
                let bar = jobs.entry(e.id).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(1000));
                    b.set_style(
                        ProgressStyle::with_template("  {bar:30} {percent:>3}% {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    b
                });
                // fraction is within 0..=1.
                bar.set_position((fraction * 1000.0) as u64);
                bar.set_message(format!("{} {message}", short(e.id)));
            }
            if finished(&e.kind) {
                if let Some(bar) = jobs.remove(&e.id) {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                if matches!(
                    e.kind,
                    QueueEventKind::Completed { .. } | QueueEventKind::Cancelled
                ) || matches!(e.kind, QueueEventKind::Failed { state, .. } if state == mechops_alloc::job::StateKind::Dead)
                {
                    if total.position() >= total.length().unwrap_or(0) {
                        total.inc_length(1);
                    }
                    total.inc(1);
                }
            }
        }
    }
}

fn short(id: JobId) -> String {
    let s = id.to_string();
    s[s.len() - 8..].to_owned()
}

//! A job's events as a stream, for `GET /jobs/{id}/events`: its state when
//! the stream starts, then progress reports and state changes, and a final
//! [`JobEvent::Done`] with its status once it is over.
//!
//! Events of jobs run by this process come from [`Queue::subscribe`], at
//! once and in order. A job run by another process (a shared store) is
//! followed by reading its record every [`POLL_INTERVAL`]; the same read
//! covers events this process lost to a slow reader (a lagged channel).
//!
//! # Order
//!
//! The first event is a [`JobEvent::State`]; every later state event names
//! a state other than the one before it; progress reports come in the order
//! the handler made them (the queue keeps the latest value, so reports made
//! faster than they are delivered may be merged); [`JobEvent::Done`] is the
//! last event, sent once the job is completed, dead or cancelled.

use core::time::Duration;

use mechops_alloc::job::{JobId, StateKind};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::status::{is_finished, job_status_json};
use crate::jobs::runtime::{Queue, QueueEvent, QueueEventKind};
use crate::jobs::store::StoreError;

/// How often the stream reads the job's record.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// One event about one job.
#[derive(Clone, Debug, PartialEq)]
pub enum JobEvent {
    /// The job reported progress.
    Progress {
        /// From 0 to 100.
        percent: f64,
        /// The message.
        message: String,
    },
    /// The job's state changed (or, first, the state it has).
    State(StateKind),
    /// The job is over: its status, as [`job_status_json`] gives it.
    Done(Value),
}

/// The events of job `id` until it is over or `stop` is cancelled. The
/// channel holds at most 64 undelivered events; the task behind it ends
/// when the receiver is dropped.
///
/// # Errors
/// The job is unknown, or the store failed reading it.
pub async fn job_events(
    queue: &Queue,
    id: JobId,
    stop: CancellationToken,
) -> Result<mpsc::Receiver<JobEvent>, StoreError> {
    // Subscribed before the first read, so nothing falls between the two.
    let events = queue.subscribe();
    let job = queue.status(id).await?;
    let (tx, rx) = mpsc::channel(64);
    let queue = queue.clone();
    tokio::spawn(async move {
        let mut follow = Follow {
            queue,
            id,
            tx,
            state: job.state().kind(),
            local_progress: false,
            progress: job
                .progress()
                .map(|p| (p.fraction(), p.message().to_owned())),
        };
        if follow.tx.send(JobEvent::State(follow.state)).await.is_err() {
            return;
        }
        if is_finished(follow.state) {
            let _ = follow.tx.send(JobEvent::Done(job_status_json(&job))).await;
            return;
        }
        tokio::select! {
            () = stop.cancelled() => {}
            () = follow.run(events) => {}
        }
    });
    Ok(rx)
}

struct Follow {
    queue: Queue,
    id: JobId,
    tx: mpsc::Sender<JobEvent>,
    state: StateKind,
    /// Whether progress came through this process's events; the stored
    /// value, written at a throttled rate, may then be older than what was
    /// sent, so it is not sent again.
    local_progress: bool,
    progress: Option<(f64, String)>,
}

/// Whether to go on.
enum Next {
    Continue,
    Stop,
}

impl Follow {
    async fn run(&mut self, mut events: tokio::sync::broadcast::Receiver<QueueEvent>) {
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut subscribed = true;
        loop {
            let next = tokio::select! {
                () = self.tx.closed() => Next::Stop,
                e = events.recv(), if subscribed => match e {
                    Ok(e) if e.id == self.id => self.local(e.kind).await,
                    Ok(_) => Next::Continue,
                    Err(RecvError::Lagged(_)) => self.refresh(false).await,
                    Err(RecvError::Closed) => {
                        subscribed = false;
                        Next::Continue
                    }
                },
                _ = poll.tick() => self.refresh(true).await,
            };
            if matches!(next, Next::Stop) {
                return;
            }
        }
    }

    async fn send(&self, e: JobEvent) -> Next {
        match self.tx.send(e).await {
            Ok(()) => Next::Continue,
            Err(_) => Next::Stop,
        }
    }

    async fn local(&mut self, kind: QueueEventKind) -> Next {
        match kind {
            QueueEventKind::Progress { fraction, message } => {
                self.local_progress = true;
                // A read of the record may have sent this report already,
                // when the store had it before the event arrived.
                if self.progress.as_ref() == Some(&(fraction, message.clone())) {
                    return Next::Continue;
                }
                self.progress = Some((fraction, message.clone()));
                self.send(JobEvent::Progress {
                    percent: fraction * 100.0,
                    message,
                })
                .await
            }
            QueueEventKind::Started { .. } => self.state(StateKind::Running).await,
            QueueEventKind::Submitted | QueueEventKind::Recovered { .. } => Next::Continue,
            // The store says which state an outcome led to.
            QueueEventKind::Completed { .. }
            | QueueEventKind::Failed { .. }
            | QueueEventKind::Cancelled
            | QueueEventKind::Released
            | QueueEventKind::Fenced { .. } => self.refresh(false).await,
        }
    }

    async fn state(&mut self, state: StateKind) -> Next {
        if state == self.state {
            return Next::Continue;
        }
        self.state = state;
        self.send(JobEvent::State(state)).await
    }

    /// Reads the record: sends a changed state, stored progress when no
    /// progress came through this process, and the end.
    async fn refresh(&mut self, progress: bool) -> Next {
        let job = match self.queue.status(self.id).await {
            Ok(job) => job,
            Err(StoreError::UnknownJob(_)) => return Next::Stop,
            Err(e) => {
                tracing::debug!(job = %self.id, error = %e, "job events: reading the job failed");
                return Next::Continue;
            }
        };
        if progress && !self.local_progress {
            let stored = job
                .progress()
                .map(|p| (p.fraction(), p.message().to_owned()));
            if let Some((fraction, message)) = stored.filter(|s| Some(s) != self.progress.as_ref())
            {
                self.progress = Some((fraction, message.clone()));
                let percent = fraction * 100.0;
                if let Next::Stop = self.send(JobEvent::Progress { percent, message }).await {
                    return Next::Stop;
                }
            }
        }
        let state = job.state().kind();
        if let Next::Stop = self.state(state).await {
            return Next::Stop;
        }
        if is_finished(state) {
            let _ = self.send(JobEvent::Done(job_status_json(&job))).await;
            return Next::Stop;
        }
        Next::Continue
    }
}

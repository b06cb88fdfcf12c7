//! The command runner: one program, no shell, in a process group of its
//! own that is killed as a whole. See the [module docs](super) for the
//! protocol and the kill semantics.

use core::time::Duration;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::outcome::{ExecError, Outcome, ProgressReport, Stopped, millis};
use super::output::{Capture, LineSplitter, Piece};

/// The default bound of captured standard output, and of standard error:
/// 1 MiB each.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// The default time between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// How often the group is checked for members while it is given time to
/// end after SIGTERM.
const GROUP_POLL: Duration = Duration::from_millis(10);

/// The size of each read from a pipe.
const READ_CHUNK: usize = 64 * 1024;

/// One program to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRequest {
    /// The program: a path, or a bare name looked up on `PATH`.
    pub program: PathBuf,
    /// Its arguments, each passed as exactly one argv element.
    pub args: Vec<String>,
    /// Variables added to (or replacing those of) the inherited
    /// environment.
    pub env: BTreeMap<String, String>,
    /// The directory it runs in; it must exist.
    pub workdir: PathBuf,
    /// How long it may run; `None` for no limit.
    pub timeout: Option<Duration>,
    /// How long the group has between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// The most bytes of standard output kept.
    pub stdout_limit: usize,
    /// The most bytes of standard error kept (progress lines not counted).
    pub stderr_limit: usize,
}

impl CommandRequest {
    /// `program` with `args`, run in `workdir`, with the default bounds,
    /// grace period, no timeout and no added environment.
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<String>>,
        workdir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            workdir: workdir.into(),
            timeout: None,
            kill_grace: DEFAULT_KILL_GRACE,
            stdout_limit: DEFAULT_OUTPUT_LIMIT,
            stderr_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// A process group to end: SIGKILLed when dropped while armed, so a
/// dropped runner future leaves nothing running (tokio's `kill_on_drop`
/// reaches only the direct child).
#[derive(Debug)]
struct Group {
    pgid: Option<Pid>,
}

impl Group {
    fn new(pid: Option<u32>) -> Self {
        // Pid 1 would make kill(-1) signal every process we may signal;
        // a child is never init, but the check costs nothing.
        let pgid = pid
            .and_then(|p| i32::try_from(p).ok())
            .filter(|&p| p > 1)
            .and_then(Pid::from_raw);
        Self { pgid }
    }

    /// Sends `signal` to every member. A group that has emptied gives
    /// ESRCH, which means there is nobody left to signal.
    fn signal(&self, signal: Signal) {
        if let Some(pgid) = self.pgid {
            // The group ID is the child's PID. The kernel does not hand out
            // a PID while a group of that ID still has members, so this
            // reaches our group or, once it is empty, nobody.
            let _ = kill_process_group(pgid, signal);
        }
    }

    /// Whether any process (a zombie included) is still in the group.
    fn alive(&self) -> bool {
        self.pgid
            .is_some_and(|pgid| test_kill_process_group(pgid).is_ok())
    }

    /// Done with the group: nothing more is sent when dropped.
    const fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::KILL);
    }
}

/// Where the group's termination stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// Not asked to end.
    Running,
    /// SIGTERM sent; SIGKILL at the deadline unless the group empties.
    Terminating(Instant),
    /// The group is empty or has been SIGKILLed.
    Done,
}

/// Runs `request`'s program and returns its [`Outcome`], calling
/// `on_progress` with each progress report as it arrives.
///
/// The outcome is `ok` when the program exited with code 0 by itself. A
/// non-zero exit, a signal, the timeout or `cancel` give an outcome with
/// `ok: false` and an `error` saying which; the output captured so far and
/// the progress reports are kept in every case.
///
/// # Errors
///
/// [`ExecError`] when the program cannot be started: not found, not
/// executable, a working directory that is missing, or another spawn
/// failure; or when waiting for it fails.
///
/// # Cancellation
///
/// Dropping the future at any `.await` sends SIGKILL to the whole process
/// group at once (there is no one left to wait out a grace period); tokio
/// reaps the direct child in the background and the kernel's init reaps
/// the rest. Prefer `cancel` to end a command gracefully: it sends SIGTERM,
/// waits `kill_grace`, then SIGKILL, and returns the outcome.
pub async fn run_command(
    request: &CommandRequest,
    on_progress: &mut (dyn FnMut(&ProgressReport) + Send),
    cancel: &CancellationToken,
) -> Result<Outcome, ExecError> {
    let started = Instant::now();
    if !request.workdir.is_dir() {
        return Err(ExecError::WorkdirMissing {
            workdir: request.workdir.clone(),
        });
    }
    let mut command = Command::new(&request.program);
    command
        .args(&request.args)
        .envs(&request.env)
        .current_dir(&request.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .map_err(|source| spawn_error(request, source))?;
    let mut group = Group::new(child.id());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut run = Run {
        request,
        started,
        group: &mut group,
        stdout: Capture::new(request.stdout_limit),
        stderr: Capture::new(request.stderr_limit),
        splitter: LineSplitter::default(),
        progress: Vec::new(),
        stopped: None,
    };
    let status = run
        .drive(&mut child, stdout, stderr, on_progress, cancel)
        .await?;
    let Run {
        stdout,
        stderr,
        progress,
        stopped,
        ..
    } = run;
    group.disarm();
    Ok(finish(
        request, started, status, stdout, stderr, progress, stopped,
    ))
}

fn spawn_error(request: &CommandRequest, source: std::io::Error) -> ExecError {
    let program = request.program.clone();
    match source.kind() {
        ErrorKind::NotFound => ExecError::ProgramNotFound { program },
        ErrorKind::PermissionDenied => ExecError::NotExecutable { program },
        _ => ExecError::Spawn { program, source },
    }
}

/// The state of one run while its pipes are drained.
struct Run<'a> {
    request: &'a CommandRequest,
    started: Instant,
    group: &'a mut Group,
    stdout: Capture,
    stderr: Capture,
    splitter: LineSplitter,
    progress: Vec<ProgressReport>,
    stopped: Option<Stopped>,
}

impl Run<'_> {
    /// Reads both pipes, waits for the child, and ends the group when the
    /// timeout passes, `cancel` fires, or the child exits leaving members
    /// behind. Returns once the child is reaped, the group is empty or
    /// killed, and the pipes are closed (or given up on: a process that
    /// left the group may hold them open; they get `kill_grace` after the
    /// group is done).
    async fn drive(
        &mut self,
        child: &mut Child,
        mut stdout: Option<ChildStdout>,
        mut stderr: Option<ChildStderr>,
        on_progress: &mut (dyn FnMut(&ProgressReport) + Send),
        cancel: &CancellationToken,
    ) -> Result<ExitStatus, ExecError> {
        let grace = self.request.kill_grace;
        let timeout_at = self.request.timeout.map(|t| self.started + t);
        let mut out_buf = vec![0u8; READ_CHUNK];
        let mut err_buf = vec![0u8; READ_CHUNK];
        let mut status: Option<ExitStatus> = None;
        let mut ending = Ending::Running;
        // Set once the group is done: how long the pipes may stay open.
        let mut pipes_until: Option<Instant> = None;
        // While terminating: when next to look whether the group is empty.
        let mut next_poll = Instant::now();
        loop {
            if ending == Ending::Done && pipes_until.is_none() {
                pipes_until = Some(Instant::now() + grace);
            }
            if status.is_some() && ending == Ending::Done && stdout.is_none() && stderr.is_none() {
                break;
            }
            let kill_at = match ending {
                Ending::Terminating(at) => Some(at),
                _ => None,
            };
            tokio::select! {
                read = read_some(&mut stdout, &mut out_buf) => match read {
                    Some(n) => self.stdout.push(&out_buf[..n]),
                    None => stdout = None,
                },
                read = read_some(&mut stderr, &mut err_buf) => match read {
                    Some(n) => self.feed_stderr(&err_buf[..n], on_progress),
                    None => {
                        stderr = None;
                        self.finish_stderr(on_progress);
                    }
                },
                waited = child.wait(), if status.is_none() => {
                    let exit = waited.map_err(|source| ExecError::Wait {
                        program: self.request.program.clone(),
                        source,
                    })?;
                    status = Some(exit);
                    if ending == Ending::Running {
                        // Whatever it left behind in its group goes too.
                        ending = if self.group.alive() {
                            self.terminate(grace)
                        } else {
                            Ending::Done
                        };
                    }
                }
                () = sleep_until(timeout_at), if ending == Ending::Running => {
                    self.stopped = Some(Stopped::TimedOut);
                    ending = self.terminate(grace);
                }
                () = cancel.cancelled(), if ending == Ending::Running => {
                    self.stopped = Some(Stopped::Cancelled);
                    ending = self.terminate(grace);
                }
                () = sleep_until(kill_at) => {
                    self.group.signal(Signal::KILL);
                    ending = Ending::Done;
                }
                () = tokio::time::sleep_until(next_poll), if kill_at.is_some() => {
                    next_poll = Instant::now() + GROUP_POLL;
                    // The leader must be reaped before its group can
                    // empty; `status` set means it is.
                    if status.is_some() && !self.group.alive() {
                        ending = Ending::Done;
                    }
                }
                () = sleep_until(pipes_until) => {
                    stdout = None;
                    if stderr.take().is_some() {
                        self.finish_stderr(on_progress);
                    }
                }
            }
        }
        // `status` is set: the loop ends only then.
        status.ok_or_else(|| ExecError::Wait {
            program: self.request.program.clone(),
            source: std::io::Error::other("the child was never reaped"),
        })
    }

    fn terminate(&self, grace: Duration) -> Ending {
        self.group.signal(Signal::TERM);
        Ending::Terminating(Instant::now() + grace)
    }

    fn feed_stderr(&mut self, bytes: &[u8], on_progress: &mut (dyn FnMut(&ProgressReport) + Send)) {
        let (stderr, progress) = (&mut self.stderr, &mut self.progress);
        self.splitter.feed(bytes, &mut |piece| {
            keep(piece, stderr, progress, on_progress);
        });
    }

    fn finish_stderr(&mut self, on_progress: &mut (dyn FnMut(&ProgressReport) + Send)) {
        let (stderr, progress) = (&mut self.stderr, &mut self.progress);
        self.splitter.finish(&mut |piece| {
            keep(piece, stderr, progress, on_progress);
        });
    }
}

fn keep(
    piece: Piece<'_>,
    stderr: &mut Capture,
    progress: &mut Vec<ProgressReport>,
    on_progress: &mut (dyn FnMut(&ProgressReport) + Send),
) {
    match piece {
        Piece::Text(text) => stderr.push(text),
        Piece::Progress(report) => {
            on_progress(&report);
            progress.push(report);
        }
    }
}

/// Reads what the pipe has; `None` at its end (a read error ends it too:
/// nothing more can come from it). Pending forever when there is no pipe.
async fn read_some<R: AsyncReadExt + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match pipe {
        Some(p) => match p.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => core::future::pending().await,
    }
}

/// Sleeps until `at`, or forever for `None`.
pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => core::future::pending().await,
    }
}

fn finish(
    request: &CommandRequest,
    started: Instant,
    status: ExitStatus,
    stdout: Capture,
    stderr: Capture,
    progress: Vec<ProgressReport>,
    stopped: Option<Stopped>,
) -> Outcome {
    let (stdout, stdout_truncated) = stdout.finish();
    let (stderr, stderr_truncated) = stderr.finish();
    let exit_code = status.code();
    let signal = status.signal();
    let program = request.program.display();
    let error = match (stopped, exit_code, signal) {
        (Some(Stopped::TimedOut), ..) => Some(format!(
            "{program} timed out after {} ms; its process group was killed",
            request.timeout.map_or(0, |t| t.as_millis())
        )),
        (Some(Stopped::Cancelled), ..) => Some(format!(
            "{program} was cancelled; its process group was killed"
        )),
        (None, Some(0), _) => None,
        (None, Some(code), _) => Some(format!("{program} exited with code {code}")),
        (None, None, Some(sig)) => Some(format!(
            "{program} was killed by signal {sig}{}",
            signal_name(sig).map_or(String::new(), |n| format!(" ({n})"))
        )),
        (None, None, None) => Some(format!("{program} ended with {status}")),
    };
    Outcome {
        ok: error.is_none(),
        exit_code,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        duration_ms: millis(started),
        progress,
        error,
        signal,
        stopped,
        ..Outcome::default()
    }
}

fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

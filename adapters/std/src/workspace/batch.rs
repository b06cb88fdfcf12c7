//! Batches of operations, and the intent journal that makes an atomic batch
//! all or nothing across a crash.
//!
//! # Every batch
//!
//! The content of every write is staged first: a temporary file beside its
//! target holding the stored bytes and the record. With
//! [`Durability::Full`] all staged files are `fsync`ed in parallel (scoped
//! threads), then the operations are applied in order, then every directory
//! they touched is `fsync`ed once. A non-atomic batch reports a result per
//! operation; a failed one does not stop the others.
//!
//! # Atomic batches
//!
//! The operations become a list of primitive steps, each a `renameat2(…,
//! RENAME_NOREPLACE)` from a name that exists to one that does not (a file
//! about to be replaced or removed is first moved to a temporary name beside
//! it) or a `mkdirat`. Before any change:
//!
//! 1. the staged files are `fsync`ed;
//! 2. the journal (`.mechops/journal-<id>`: the steps as JSON) is written,
//!    `fsync`ed, renamed into place, and `.mechops` is `fsync`ed.
//!
//! Then each step is applied, its directories `fsync`ed, and its number
//! appended to `.mechops/journal-<id>.done` and `fdatasync`ed. The touched
//! directories are synced, the journal removed (the commit point is its
//! removal), the set-aside files removed.
//!
//! A step that fails writes an abort mark to the progress file and undoes the
//! applied steps in reverse, each undo recorded as well. When a workspace
//! opens, each journal left behind is finished: rolled back if it holds the
//! abort mark, else rolled forward (all content was staged and synced before
//! the journal existed, so forward is always possible). Only the step after
//! the last recorded one can be in doubt, and a move's state shows whether
//! it happened: the source gone and the target present (before a move its
//! source exists and its target does not, after it the reverse). A crash
//! while rolling back is finished the same way, backwards.
//!
//! Directories created to hold staged files or the targets of moves are
//! not removed by a rollback; they are left empty.
//!
//! A failed `fsync` of a staged file fails its operation (and, in an atomic
//! batch, the batch) before any change; in a plain batch a failed directory
//! `fsync` fails every write into that directory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::OFlags;
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::{Durability, Workspace, WriteOptions, clean_path, sys};

/// One operation of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// Write a file, as [`Workspace::write`].
    Write {
        /// The file.
        path: String,
        /// Its new content.
        content: Vec<u8>,
    },
    /// Remove a file, as [`Workspace::delete`].
    Delete {
        /// The file.
        path: String,
    },
    /// Rename a file or directory, as [`Workspace::rename`].
    Rename {
        /// The current path.
        from: String,
        /// The new path.
        to: String,
    },
    /// Create a directory and its parents, as [`Workspace::mkdir`].
    Mkdir {
        /// The directory.
        path: String,
    },
}

/// A list of operations; see the module documentation.
pub type Batch = Vec<BatchOp>;

/// Where a test stops a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The next step fails with an I/O error; the batch handles it.
    Fail,
    /// The batch stops as if the process died: nothing more runs, nothing
    /// is cleaned up; reopening the workspace recovers.
    Crash,
    /// The next step fails, and the rollback stops as a crash would right
    /// after undoing its first step, before recording it.
    FailThenCrash,
}

/// A fault injected after a numbered step of an atomic batch: step 0 is the
/// journal written, steps `1..=n` the primitive steps, `n + 1` the
/// directories synced, `n + 2` the journal removed.
/// [`Workspace::batch_steps`] says `n` for a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The step after which the fault strikes.
    pub after_step: usize,
    /// What happens.
    pub kind: FaultKind,
}

/// How a batch runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOptions {
    /// All or nothing, also across a crash.
    pub atomic: bool,
    /// Durability of the whole batch; `None` takes the workspace's.
    pub durability: Option<Durability>,
    /// A fault to inject (atomic batches only); for tests.
    pub fault: Option<Fault>,
}

impl BatchOptions {
    /// An atomic batch with the workspace's durability.
    #[must_use]
    pub fn atomic() -> Self {
        Self {
            atomic: true,
            ..Self::default()
        }
    }
}

/// A primitive step of an atomic batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Step {
    /// Rename `from` to `to`, which does not exist; `op` is the operation.
    Move { from: String, to: String, op: usize },
    /// Create a directory that does not exist.
    Mkdir { path: String, op: usize },
}

impl Step {
    fn op(&self) -> usize {
        match self {
            Self::Move { op, .. } | Self::Mkdir { op, .. } => *op,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    steps: Vec<Step>,
    /// Staged files and set-aside files to remove once the batch is done.
    scratch: Vec<String>,
    /// Directories to sync.
    dirs: Vec<String>,
}

const ABORT: u32 = u32::MAX;
const UNDONE: u32 = 1 << 31;

impl Workspace {
    /// Runs `ops` in order; a result per operation.
    ///
    /// # Errors
    /// The outer error is for failures outside any one operation: writing
    /// the journal, an injected crash, recovery that could not finish.
    pub fn batch(&self, ops: &[BatchOp], options: BatchOptions) -> Result<Vec<Result<()>>> {
        let durability = options.durability.unwrap_or(self.options.durability);
        let write_options = WriteOptions {
            durability,
            compression: self.options.compression,
        };
        // Stage every write: temporaries beside their targets.
        let mut staged: Vec<Option<Result<super::Staged>>> = ops
            .iter()
            .map(|op| match op {
                BatchOp::Write { path, content } => Some(
                    clean_path(path)
                        .and_then(|clean| self.stage(path, &clean, content, write_options)),
                ),
                _ => None,
            })
            .collect();
        if durability == Durability::Full {
            sync_parallel(ops, &mut staged);
        }
        if options.atomic {
            if let Some((index, _)) = staged
                .iter()
                .enumerate()
                .find(|(_, s)| matches!(s, Some(Err(_))))
            {
                let err = staged[index].take().and_then(Result::err);
                remove_staged(&mut staged);
                return Ok(rolled_back(ops.len(), index, err));
            }
            self.run_atomic(ops, &mut staged, options.fault)
        } else {
            Ok(self.run_plain(ops, staged, durability))
        }
    }

    /// How many primitive steps `ops` would take as an atomic batch now
    /// (for placing a [`Fault`]).
    ///
    /// # Errors
    /// As [`Workspace::batch`] refusing the batch.
    pub fn batch_steps(&self, ops: &[BatchOp]) -> Result<usize> {
        let temps: Vec<Option<String>> = ops
            .iter()
            .map(|op| matches!(op, BatchOp::Write { .. }).then(|| "t".to_owned()))
            .collect();
        self.plan(ops, &temps)
            .map(|j| j.steps.len())
            .map_err(|(i, e)| Error::Batch {
                index: i,
                source: Box::new(e),
            })
    }

    fn run_plain(
        &self,
        ops: &[BatchOp],
        staged: Vec<Option<Result<super::Staged>>>,
        durability: Durability,
    ) -> Vec<Result<()>> {
        let mut dirs: Vec<(usize, OwnedFd)> = Vec::new();
        let mut results: Vec<Result<()>> = ops
            .iter()
            .zip(staged)
            .enumerate()
            .map(|(index, (op, staged))| match (op, staged) {
                (BatchOp::Write { path, .. }, Some(staged)) => {
                    let staged = staged?;
                    let clean = clean_path(path)?;
                    self.forget(&clean);
                    let (_, name) = sys::split(&clean);
                    sys::rename(staged.dir.as_fd(), &staged.temp, staged.dir.as_fd(), name)
                        .map_err(|e| {
                            let _ = sys::unlink(staged.dir.as_fd(), &staged.temp, false);
                            Error::io("rename", path, e)
                        })?;
                    dirs.push((index, staged.dir));
                    self.ledger.add(&clean)
                }
                (BatchOp::Delete { path }, _) => {
                    self.delete_synced(path, durability == Durability::Full)
                }
                (BatchOp::Rename { from, to }, _) => {
                    self.rename_synced(from, to, durability == Durability::Full)
                }
                (BatchOp::Mkdir { path }, _) => {
                    self.mkdir_synced(path, durability == Durability::Full)
                }
                (BatchOp::Write { .. }, None) => unreachable_write(),
            })
            .collect();
        if durability == Durability::Full {
            // The directory sync is what makes these writes durable: a
            // failure fails every write in that directory.
            for (i, err) in sync_dirs(dirs.iter().map(|(_, d)| d.as_fd())) {
                let (index, _) = dirs[i];
                if let BatchOp::Write { path, .. } = &ops[index] {
                    results[index] = Err(Error::io("fsync", path, err));
                }
            }
        }
        results
    }

    /// The steps of `ops` against the current tree, `temps[i]` naming the
    /// staged file of write `i`.
    fn plan(&self, ops: &[BatchOp], temps: &[Option<String>]) -> Result<Journal, (usize, Error)> {
        // What earlier operations of the batch did to a path.
        let mut view: HashMap<String, bool> = Default::default();
        let mut journal = Journal {
            steps: Vec::new(),
            scratch: Vec::new(),
            dirs: Vec::new(),
        };
        let exists = |view: &HashMap<String, bool>, path: &str| -> Result<bool> {
            match view.get(path) {
                Some(&e) => Ok(e),
                None => self.exists(path),
            }
        };
        let set_aside = |journal: &mut Journal, path: &str, op: usize| {
            let (dir, _) = sys::split(path);
            let aside = join(
                dir,
                &format!(
                    "{}{:016x}",
                    sys::TEMP_PREFIX,
                    getrandom::u64().unwrap_or(op as u64)
                ),
            );
            journal.steps.push(Step::Move {
                from: path.to_owned(),
                to: aside.clone(),
                op,
            });
            journal.scratch.push(aside);
        };
        for (i, op) in ops.iter().enumerate() {
            let fail = |e| (i, e);
            match op {
                BatchOp::Write { path, .. } => {
                    let clean = clean_path(path).map_err(fail)?;
                    if exists(&view, &clean).map_err(fail)? {
                        set_aside(&mut journal, &clean, i);
                    }
                    let (dir, _) = sys::split(&clean);
                    let temp = join(dir, temps[i].as_deref().unwrap_or_default());
                    journal.steps.push(Step::Move {
                        from: temp,
                        to: clean.clone(),
                        op: i,
                    });
                    journal.dirs.push(dir.to_owned());
                    view.insert(clean, true);
                }
                BatchOp::Delete { path } => {
                    let clean = clean_path(path).map_err(fail)?;
                    if !exists(&view, &clean).map_err(fail)? {
                        return Err((i, Error::NotFound { path: path.clone() }));
                    }
                    set_aside(&mut journal, &clean, i);
                    journal.dirs.push(sys::split(&clean).0.to_owned());
                    view.insert(clean, false);
                }
                BatchOp::Rename { from, to } => {
                    let clean_from = clean_path(from).map_err(fail)?;
                    let clean_to = clean_path(to).map_err(fail)?;
                    if !exists(&view, &clean_from).map_err(fail)? {
                        return Err((i, Error::NotFound { path: from.clone() }));
                    }
                    if clean_from == clean_to {
                        // `rename(2)` onto itself changes nothing.
                        continue;
                    }
                    if exists(&view, &clean_to).map_err(fail)? {
                        set_aside(&mut journal, &clean_to, i);
                    }
                    journal.steps.push(Step::Move {
                        from: clean_from.clone(),
                        to: clean_to.clone(),
                        op: i,
                    });
                    journal.dirs.push(sys::split(&clean_from).0.to_owned());
                    journal.dirs.push(sys::split(&clean_to).0.to_owned());
                    view.insert(clean_from, false);
                    view.insert(clean_to, true);
                }
                BatchOp::Mkdir { path } => {
                    let clean = clean_path(path).map_err(fail)?;
                    let mut prefix = String::new();
                    for name in clean.split('/') {
                        prefix = join(&prefix, name);
                        if !exists(&view, &prefix).map_err(fail)? {
                            journal.steps.push(Step::Mkdir {
                                path: prefix.clone(),
                                op: i,
                            });
                            journal.dirs.push(sys::split(&prefix).0.to_owned());
                            view.insert(prefix.clone(), true);
                        }
                    }
                }
            }
        }
        journal.dirs.sort();
        journal.dirs.dedup();
        Ok(journal)
    }

    fn run_atomic(
        &self,
        ops: &[BatchOp],
        staged: &mut [Option<Result<super::Staged>>],
        fault: Option<Fault>,
    ) -> Result<Vec<Result<()>>> {
        let temps: Vec<Option<String>> = staged
            .iter()
            .map(|s| {
                s.as_ref()
                    .and_then(|s| s.as_ref().ok())
                    .map(|s| s.temp.clone())
            })
            .collect();
        let mut journal = match self.plan(ops, &temps) {
            Ok(journal) => journal,
            Err((index, err)) => {
                remove_staged(staged);
                return Ok(rolled_back(ops.len(), index, Some(err)));
            }
        };
        for (op, temp) in ops.iter().zip(&temps) {
            if let (BatchOp::Write { path, .. }, Some(temp)) = (op, temp) {
                let clean = clean_path(path)?;
                journal.scratch.push(join(sys::split(&clean).0, temp));
            }
        }
        // Entries beneath renamed directories would be validated away, but
        // not in the trusted mode: start afresh.
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        let id = format!(
            "journal-{:016x}",
            getrandom::u64().map_err(|e| Error::io("journal", "", std::io::Error::other(e)))?
        );
        let mut run = Run::begin(self.root.as_fd(), self.meta.as_fd(), &id, journal, fault)?;
        let outcome = run.forward();
        match outcome {
            Ok(()) => {
                run.finish()?;
                for op in ops {
                    match op {
                        BatchOp::Write { path, .. } => self.ledger.add(&clean_path(path)?)?,
                        BatchOp::Delete { path } => self.ledger.remove(&clean_path(path)?)?,
                        BatchOp::Rename { from, to } => {
                            self.ledger.rename(&clean_path(from)?, &clean_path(to)?)?
                        }
                        BatchOp::Mkdir { .. } => {}
                    }
                }
                Ok(ops.iter().map(|_| Ok(())).collect())
            }
            Err(Failure::Crash(step)) => Err(Error::InjectedCrash { step }),
            Err(Failure::Step(index, err)) => {
                match run.backward() {
                    Ok(()) => {}
                    Err(Failure::Crash(step)) => return Err(Error::InjectedCrash { step }),
                    Err(Failure::Step(_, e)) => return Err(e),
                }
                run.finish()?;
                Ok(rolled_back(ops.len(), index, Some(err)))
            }
        }
    }
}

fn unreachable_write() -> Result<()> {
    Err(Error::Io {
        op: "batch",
        path: String::new(),
        source: std::io::Error::other("a write without staged content"),
    })
}

use super::sys::join;

fn rolled_back(len: usize, index: usize, err: Option<Error>) -> Vec<Result<()>> {
    let mut err = err;
    (0..len)
        .map(|i| {
            if i == index {
                Err(err.take().unwrap_or(Error::RolledBack { index }))
            } else {
                Err(Error::RolledBack { index })
            }
        })
        .collect()
}

fn remove_staged(staged: &mut [Option<Result<super::Staged>>]) {
    for s in staged.iter_mut().filter_map(Option::take).flatten() {
        let _ = sys::unlink(s.dir.as_fd(), &s.temp, false);
    }
}

/// At most this many threads `fsync` a batch's staged files.
const MAX_SYNC_THREADS: usize = 16;

/// `fsync`s the staged files, each on its own thread (up to sixteen at a
/// time): concurrent `fsync`s can share one journal commit of the file
/// system, where a thread syncing several files in turn waits for one
/// commit per file.
fn sync_parallel(ops: &[BatchOp], staged: &mut [Option<Result<super::Staged>>]) {
    let files: Vec<(usize, &File)> = staged
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, &s.as_ref()?.as_ref().ok()?.file)))
        .collect();
    let threads = files.len().clamp(1, MAX_SYNC_THREADS);
    let chunk = files.len().div_ceil(threads).max(1);
    let failed: Vec<(usize, std::io::Error)> = std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|(i, file)| sys::sync(file.as_fd()).err().map(|e| (*i, e)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join().unwrap_or_else(|_| {
                    vec![(usize::MAX, std::io::Error::other("fsync thread panicked"))]
                })
            })
            .collect()
    });
    for (i, err) in failed {
        let Some(slot) = staged.get_mut(i) else {
            continue;
        };
        if let Some(Ok(s)) = slot.take() {
            let _ = sys::unlink(s.dir.as_fd(), &s.temp, false);
        }
        let path = match &ops[i] {
            BatchOp::Write { path, .. } => path.as_str(),
            _ => "",
        };
        *slot = Some(Err(Error::io("fsync", path, err)));
    }
}

/// `fsync`s each distinct directory once; returns the failures by index
/// into `dirs`.
fn sync_dirs<'a>(dirs: impl Iterator<Item = BorrowedFd<'a>>) -> Vec<(usize, std::io::Error)> {
    // Per directory (device, inode): `None` once synced, the error if not.
    let mut synced: HashMap<(u64, u64), Option<(std::io::ErrorKind, String)>> = HashMap::new();
    let mut failed = Vec::new();
    for (i, dir) in dirs.enumerate() {
        let outcome = match sys::fstat(dir) {
            Err(e) => Some((e.kind(), e.to_string())),
            Ok(stat) => synced
                .entry((stat.st_dev, stat.st_ino))
                .or_insert_with(|| sys::sync(dir).err().map(|e| (e.kind(), e.to_string())))
                .clone(),
        };
        if let Some((kind, message)) = outcome {
            failed.push((i, std::io::Error::new(kind, message)));
        }
    }
    failed
}

/// Why a run stopped.
enum Failure {
    /// Step failed: the operation's index and its error.
    Step(usize, Error),
    /// An injected crash after this step.
    Crash(usize),
}

/// An atomic batch being applied or undone.
struct Run<'a> {
    root: BorrowedFd<'a>,
    meta: BorrowedFd<'a>,
    id: String,
    journal: Journal,
    progress: File,
    done: Vec<bool>,
    fault: Option<Fault>,
}

impl<'a> Run<'a> {
    /// Writes and syncs the journal: step 0.
    fn begin(
        root: BorrowedFd<'a>,
        meta: BorrowedFd<'a>,
        id: &str,
        journal: Journal,
        fault: Option<Fault>,
    ) -> Result<Self> {
        let bytes = serde_json::to_vec(&journal)
            .map_err(|e| Error::io("journal", id, std::io::Error::other(e)))?;
        let (mut file, temp) = sys::create_temp(meta).map_err(|e| Error::io("journal", id, e))?;
        file.write_all(&bytes)
            .and_then(|()| sys::sync(file.as_fd()))
            .map_err(|e| Error::io("journal", id, e))?;
        let progress = open_progress(meta, id)?;
        sys::rename(meta, &temp, meta, id)
            .and_then(|()| sys::sync(meta))
            .map_err(|e| Error::io("journal", id, e))?;
        let done = vec![false; journal.steps.len()];
        let run = Self {
            root,
            meta,
            id: id.to_owned(),
            journal,
            progress,
            done,
            fault,
        };
        Ok(run)
    }

    /// Loads a journal left behind.
    fn load(root: BorrowedFd<'a>, meta: BorrowedFd<'a>, id: &str) -> Result<(Self, bool)> {
        let bad = |detail: String| Error::Metadata {
            path: format!("{}/{id}", sys::RESERVED_PREFIX),
            detail,
        };
        let mut bytes = Vec::new();
        File::from(
            sys::open_beneath(meta, id, OFlags::RDONLY | OFlags::NOFOLLOW)
                .map_err(|e| Error::io("open", id, e))?,
        )
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", id, e))?;
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let name = format!("{id}.done");
        let mut progress = open_progress(meta, id)?;
        let mut marks = Vec::new();
        progress
            .read_to_end(&mut marks)
            .map_err(|e| Error::io("read", &name, e))?;
        let mut done = vec![false; journal.steps.len()];
        let mut aborted = false;
        for mark in marks.chunks_exact(4) {
            let mark = u32::from_le_bytes([mark[0], mark[1], mark[2], mark[3]]);
            let step = (mark & !UNDONE) as usize;
            match mark {
                ABORT => aborted = true,
                m if m & UNDONE != 0 && step < done.len() => done[step] = false,
                _ if step < done.len() => done[step] = true,
                _ => return Err(bad(format!("progress mark {mark} names no step"))),
            }
        }
        Ok((
            Self {
                root,
                meta,
                id: id.to_owned(),
                journal,
                progress,
                done,
                fault: None,
            },
            aborted,
        ))
    }

    fn mark(&mut self, mark: u32) -> Result<()> {
        self.progress
            .write_all(&mark.to_le_bytes())
            .and_then(|()| rustix::fs::fdatasync(&self.progress).map_err(std::io::Error::from))
            .map_err(|e| Error::io("journal", &self.id, e))
    }

    fn check_fault(&self, step: usize) -> Result<(), Failure> {
        match self.fault {
            Some(Fault {
                after_step,
                kind: FaultKind::Crash,
            }) if after_step == step => Err(Failure::Crash(step)),
            _ => Ok(()),
        }
    }

    fn injected_failure(&self, step: usize) -> bool {
        matches!(
            self.fault,
            Some(Fault { after_step, kind: FaultKind::Fail | FaultKind::FailThenCrash })
                if after_step == step
        )
    }

    /// Applies the steps not yet done, in order.
    fn forward(&mut self) -> Result<(), Failure> {
        self.check_fault(0)?;
        for k in 0..self.journal.steps.len() {
            if self.done[k] {
                continue;
            }
            let step = self.journal.steps[k].clone();
            if self.injected_failure(k) {
                return Err(Failure::Step(
                    step.op(),
                    Error::io("batch step", "", std::io::Error::other("injected failure")),
                ));
            }
            apply(self.root, &step, false).map_err(|e| Failure::Step(step.op(), e))?;
            self.check_fault(k + 1)?;
            self.mark(k as u32)
                .map_err(|e| Failure::Step(step.op(), e))?;
            self.done[k] = true;
        }
        Ok(())
    }

    /// Undoes the steps done, last first.
    fn backward(&mut self) -> Result<(), Failure> {
        self.mark(ABORT).map_err(|e| Failure::Step(0, e))?;
        // Steps are applied in order and recorded in order, so nothing after
        // the first unrecorded step ever ran; that one, and the last undo
        // (which may not be recorded), are the only ones in doubt. Undoing
        // in reverse, every later step is undone when step `k` is examined,
        // so the tree is either just before or just after `k` and the
        // move's own state tells which.
        let limit = self.done.iter().position(|d| !d).unwrap_or(self.done.len());
        for k in (0..self.journal.steps.len().min(limit + 1)).rev() {
            let step = self.journal.steps[k].clone();
            if applied(self.root, &step) {
                apply(self.root, &step, true).map_err(|e| Failure::Step(step.op(), e))?;
                if matches!(
                    self.fault,
                    Some(Fault {
                        kind: FaultKind::FailThenCrash,
                        ..
                    })
                ) {
                    return Err(Failure::Crash(k + 1));
                }
                self.mark(k as u32 | UNDONE)
                    .map_err(|e| Failure::Step(step.op(), e))?;
            }
            self.done[k] = false;
        }
        Ok(())
    }

    /// Syncs the directories, removes the journal (the commit point) and the
    /// scratch files.
    fn finish(self) -> Result<()> {
        let n = self.journal.steps.len();
        let dirs: Vec<OwnedFd> = self
            .journal
            .dirs
            .iter()
            .filter_map(|d| sys::open_dir(self.root, d).ok())
            .collect();
        // Each step synced its own directories already; this pass only
        // narrows the window in which a power cut could lose a step that a
        // file system completed out of order, so its failures change
        // nothing.
        let _ = sync_dirs(dirs.iter().map(AsFd::as_fd));
        if let Err(Failure::Crash(step)) = self.check_fault(n + 1) {
            return Err(Error::InjectedCrash { step });
        }
        sys::unlink(self.meta, &self.id, false)
            .and_then(|()| sys::sync(self.meta))
            .map_err(|e| Error::io("journal", &self.id, e))?;
        if let Err(Failure::Crash(step)) = self.check_fault(n + 2) {
            return Err(Error::InjectedCrash { step });
        }
        for path in &self.journal.scratch {
            let (dir, name) = sys::split(path);
            if let Ok(dir) = sys::open_dir(self.root, dir) {
                let _ = sys::unlink(dir.as_fd(), name, false);
            }
        }
        let _ = sys::unlink(self.meta, &format!("{}.done", self.id), false);
        Ok(())
    }
}

/// Opens (creating) the progress file of journal `id`: a single name
/// relative to the metadata directory, never following a link.
fn open_progress(meta: BorrowedFd<'_>, id: &str) -> Result<File> {
    let name = format!("{id}.done");
    rustix::fs::openat(
        meta,
        name.as_str(),
        OFlags::RDWR | OFlags::CREATE | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map(File::from)
    .map_err(|e| Error::io("open", &name, e))
}

/// Whether a step's effect is present: the move's source gone and its
/// target there, the directory there.
fn applied(root: BorrowedFd<'_>, step: &Step) -> bool {
    let present = |path: &str| {
        let (dir, name) = sys::split(path);
        sys::open_dir(root, dir)
            .and_then(|d| sys::stat_nofollow(d.as_fd(), name))
            .is_ok()
    };
    match step {
        Step::Move { from, to, .. } => !present(from) && present(to),
        Step::Mkdir { path, .. } => present(path),
    }
}

/// Applies a step, or undoes it, and syncs the directories it changed.
fn apply(root: BorrowedFd<'_>, step: &Step, undo: bool) -> Result<()> {
    match step {
        Step::Move { from, to, .. } => {
            let (from, to) = if undo { (to, from) } else { (from, to) };
            let (from_dir, from_name) = sys::split(from);
            let (to_dir, to_name) = sys::split(to);
            let a = sys::open_dir(root, from_dir).map_err(|e| Error::io("open", from, e))?;
            let b = if undo {
                sys::open_dir(root, to_dir)
            } else {
                sys::create_dirs(root, to_dir)
            }
            .map_err(|e| Error::io("open", to, e))?;
            sys::rename_noreplace(a.as_fd(), from_name, b.as_fd(), to_name)
                .map_err(|e| Error::io("rename", from, e))?;
            sys::sync(b.as_fd()).map_err(|e| Error::io("fsync", to, e))?;
            if from_dir != to_dir {
                sys::sync(a.as_fd()).map_err(|e| Error::io("fsync", from, e))?;
            }
        }
        Step::Mkdir { path, .. } => {
            let (dir, name) = sys::split(path);
            let parent = sys::open_dir(root, dir).map_err(|e| Error::io("open", path, e))?;
            let made = if undo {
                sys::unlink(parent.as_fd(), name, true)
            } else {
                rustix::fs::mkdirat(&parent, name, rustix::fs::Mode::from_raw_mode(0o755))
                    .map_err(std::io::Error::from)
            };
            made.and_then(|()| sys::sync(parent.as_fd()))
                .map_err(|e| Error::io("mkdir", path, e))?;
        }
    }
    Ok(())
}

/// Finishes every journal left in `meta`: rolled back when it was aborting,
/// forward otherwise.
pub(crate) fn recover(root: BorrowedFd<'_>, meta: BorrowedFd<'_>) -> Result<()> {
    let (entries, _) =
        sys::read_dir(meta).map_err(|e| Error::io("list", sys::RESERVED_PREFIX, e))?;
    for entry in entries {
        if !entry.name.starts_with("journal-") || entry.name.ends_with(".done") {
            continue;
        }
        let (mut run, aborted) = Run::load(root, meta, &entry.name)?;
        let result = if aborted {
            run.backward()
        } else {
            recover_forward(&mut run)
        };
        match result {
            Ok(()) => run.finish()?,
            Err(Failure::Step(_, e)) => return Err(e),
            Err(Failure::Crash(step)) => return Err(Error::InjectedCrash { step }),
        }
    }
    // Progress files whose journal was already removed.
    let (entries, _) =
        sys::read_dir(meta).map_err(|e| Error::io("list", sys::RESERVED_PREFIX, e))?;
    for entry in entries
        .iter()
        .filter(|e| e.name.starts_with("journal-") && e.name.ends_with(".done"))
    {
        let _ = sys::unlink(meta, &entry.name, false);
    }
    Ok(())
}

fn recover_forward(run: &mut Run<'_>) -> Result<(), Failure> {
    // Only the first step not recorded can have happened unrecorded.
    if let Some(k) = run.done.iter().position(|d| !d) {
        if applied(run.root, &run.journal.steps[k]) {
            run.mark(k as u32).map_err(|e| Failure::Step(0, e))?;
            run.done[k] = true;
        }
    }
    run.forward()
}

//! The SQLite job store (`sqlite://PATH`), the default: durable, and
//! shareable by several processes on one machine.
//!
//! # Group commit
//!
//! One writer thread per store owns the connection. Every call becomes a
//! task on its channel; the thread takes the first task, then every task
//! already waiting (up to [`MAX_BATCH`]), runs them all inside one
//! `BEGIN IMMEDIATE` transaction (each inside its own savepoint, so a
//! refused or failed call leaves no trace and does not disturb the
//! others), commits, and only then answers each call. With
//! `synchronous=FULL` (the default) the commit is durable when it returns,
//! so a call that returned `Ok` survives a crash of the process or the
//! machine; many concurrent calls share one `fsync`.
//!
//! # Several processes
//!
//! The file is in WAL mode; each process's writer takes the write lock with
//! `BEGIN IMMEDIATE` and waits up to the busy timeout (5 s) for another
//! process to finish; a lock held longer is [`StoreError::Locked`]. Every
//! event is applied to the record as loaded inside the same transaction,
//! so two workers never apply events to the same version of a job. New
//! work from other processes is seen by polling
//! ([`Store::poll_interval`], 100 ms); work made in this process wakes its
//! workers at once.
//!
//! # Schema
//!
//! `docs/FORMAT.md` ("SQLite job store") specifies it. The database carries
//! `PRAGMA application_id` [`APPLICATION_ID`] and the schema version in
//! `PRAGMA user_version`; opening migrates an older version forward in one
//! transaction. A file that is not SQLite, is a SQLite database of another
//! application, has a newer schema, or is damaged is refused with
//! [`StoreError::Corrupt`] and never written.
//!
//! # Order and limits
//!
//! Claims scan the partial index of claimable jobs in (priority, submission)
//! order, skipping jobs not yet due and handlers at their store-wide limit.
//! The counts by state and the event counters in [`StoreStats`] (failed,
//! completed, recovered, fenced, pruned) are the file's: every process
//! adds its increments to the `counters` table inside the transaction
//! that caused them. So is [`Store::throughput`], from the `completions`
//! table (completions per second of the last minute). The wait-time
//! percentiles are this process's since it opened the store.
//!
//! # Costs per job
//!
//! - Statements are prepared once and cached, savepoints included; the
//!   savepoints' undo log stays in memory (`PRAGMA temp_store=MEMORY`).
//! - Calls that arrive while a transaction runs join it before its
//!   commit (up to [`MAX_BATCH`]), so a worker's round (completions,
//!   recovery, claim) shares one `fsync`.
//! - The JSON record is written once, at submission (into `job_records`,
//!   straight from the job: [`record::encode_text`]); every later
//!   transition rewrites only the job's narrow row in `jobs`, whose
//!   columns hold what changes. A transition thus writes about a hundred
//!   bytes instead of the whole record.
//! - Every row write takes the next stamp of the file (the `stamp`
//!   counter). The writer keeps each pending job it wrote with its stamp;
//!   a later load whose row still holds that stamp takes the job from
//!   there without reading the record (a row another process wrote has
//!   another stamp, and is decoded).
//! - [`Store::complete_batch`] records many completions in one call.
//! - Idle workers of this process park a claim ([`Store::park_claim`]):
//!   the transaction that makes a job claimable (a submission, retry,
//!   release or recovery) claims it for them before its one commit, so
//!   the job starts one `fsync` after its submission.
//!
//! Checkpoints run every [`WAL_CHECKPOINT_PAGES`] pages of WAL, which is
//! cut back to [`WAL_SIZE_LIMIT`] bytes after each; they do not bear on
//! durability, which each commit's `fsync` of the WAL gives.

use core::time::Duration;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use mechops_alloc::job::{
    Event, FailKind, FencingToken, Job, JobEvent, JobId, JobSpec, JobState, Lease, Progress,
    Rejected, StateKind, Stats,
};
use mechops_core::metrics::{LocalHistogram, Quantile};
use mechops_core::time::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{Notify, oneshot};

use super::record::{self, nanos, priority_rank};
use super::store::{
    ClaimRequest, ClaimedJob, Completion, ParkedClaim, PurgeFilter, Store, StoreConfig, StoreError,
    StoreFuture, StoreStats, SubmitRefused, Throughput, WaitPercentiles,
};

/// `PRAGMA application_id` of a job store: "MJOB".
pub const APPLICATION_ID: i32 = 0x4D4A_4F42;
/// The schema version this program writes.
pub const SCHEMA_VERSION: i32 = 3;
/// WAL pages after which a commit checkpoints (`PRAGMA
/// wal_autocheckpoint`; SQLite's default is 1,000).
pub const WAL_CHECKPOINT_PAGES: u32 = 8192;
/// Bytes the WAL file is cut back to after a checkpoint (`PRAGMA
/// journal_size_limit`).
pub const WAL_SIZE_LIMIT: u64 = 64 << 20;
/// Prepared statements the writer keeps (rusqlite's default is 16, fewer
/// than the store uses).
const STATEMENT_CACHE: usize = 64;
/// The most calls one transaction commits.
pub const MAX_BATCH: usize = 4096;

/// Each entry migrates from its index to the next version; the step to
/// version 3 then copies the rows ([`split_records`]).
const MIGRATIONS: [&str; 3] = [
    r"
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    handler TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    ready_at INTEGER,
    expires_at INTEGER,
    finished_at INTEGER,
    pending_key TEXT,
    worker TEXT,
    record TEXT NOT NULL
);
CREATE INDEX jobs_ready ON jobs(priority, seq) WHERE ready_at IS NOT NULL;
CREATE INDEX jobs_due ON jobs(ready_at) WHERE state IN ('delayed', 'retry_scheduled');
CREATE INDEX jobs_lease ON jobs(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX jobs_state ON jobs(state, seq);
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE state IN ('completed', 'cancelled');
CREATE UNIQUE INDEX jobs_pending_key ON jobs(pending_key) WHERE pending_key IS NOT NULL;
",
    r"
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE completions (second INTEGER PRIMARY KEY, count INTEGER NOT NULL);
",
    // Version 3 splits a job in two: the record as submitted, written
    // once, and a narrow row of what changes, rewritten at every
    // transition. A claim or a completion then rewrites about a hundred
    // bytes instead of the whole JSON record, and the row's size barely
    // changes, so its page is rarely split.
    r"
DROP INDEX jobs_ready;
DROP INDEX jobs_due;
DROP INDEX jobs_lease;
DROP INDEX jobs_state;
DROP INDEX jobs_finished;
DROP INDEX jobs_pending_key;
ALTER TABLE jobs RENAME TO jobs_v2;
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    handler TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    ready_at INTEGER,
    expires_at INTEGER,
    finished_at INTEGER,
    pending_key TEXT,
    worker TEXT,
    stamp INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    stalls INTEGER NOT NULL,
    last_token INTEGER NOT NULL,
    last_retry_delay_ns INTEGER,
    queued_at INTEGER NOT NULL,
    started_at INTEGER,
    progress_fraction REAL,
    progress_message TEXT,
    result TEXT,
    error TEXT,
    attempt INTEGER,
    token INTEGER,
    deadline INTEGER,
    cancel_requested INTEGER,
    reason TEXT
);
CREATE TABLE job_records (seq INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TRIGGER jobs_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM job_records WHERE seq = old.seq;
END;
CREATE INDEX jobs_ready ON jobs(priority, seq) WHERE ready_at IS NOT NULL;
CREATE INDEX jobs_due ON jobs(ready_at) WHERE state IN ('delayed', 'retry_scheduled');
CREATE INDEX jobs_lease ON jobs(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX jobs_state ON jobs(state, seq);
CREATE INDEX jobs_finished ON jobs(finished_at) WHERE state IN ('completed', 'cancelled');
CREATE UNIQUE INDEX jobs_pending_key ON jobs(pending_key) WHERE pending_key IS NOT NULL;
",
];

/// How durable a commit is (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `FULL`: durable when the call returns (the default).
    #[default]
    Full,
    /// `NORMAL`: in WAL mode, the last commits may be lost at a machine
    /// crash (never at a process crash).
    Normal,
    /// `OFF`: for benchmarks; a machine crash may lose or damage data.
    Off,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
            Self::Off => "OFF",
        }
    }

    /// Parses `full`, `normal` or `off`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            "off" => Ok(Self::Off),
            _ => Err(StoreError::Config(format!(
                "sqlite synchronous must be full, normal or off, not {s:?}"
            ))),
        }
    }
}

type Reply = Box<dyn FnOnce(Result<(), CommitError>) + Send>;
/// Runs a call inside the open transaction, or (given `None`, when the
/// transaction could not begin) runs nothing; either way gives the reply to
/// send once the commit's outcome is known.
type Task = Box<dyn for<'a> FnOnce(Option<(&'a Connection, &'a mut Local)>) -> Reply + Send>;

/// What the writer thread keeps besides the connection.
struct Local {
    config: StoreConfig,
    /// The event counters' increments in the open transaction, added to
    /// the `counters` table before it commits.
    counts: Stats,
    /// Completions in the open transaction by Unix second, added to the
    /// `completions` table before it commits.
    completions: Vec<(i64, u64)>,
    wait: Box<LocalHistogram>,
    /// Pending jobs as this writer last wrote them: the row's stamp and
    /// the job. A load whose row still holds that stamp takes the job
    /// from here instead of reading and decoding the record; any other
    /// write (another process's) gives the row another stamp, and the row
    /// is decoded.
    cache: HashMap<JobId, (i64, Job)>,
    /// The last stamp given to a row: every row write takes the next, so
    /// stamps never repeat in a file. Read from the `counters` table when
    /// a transaction begins (under the write lock), written back before
    /// it commits.
    stamp: i64,
    /// `stamp` as the transaction began.
    stamp_read: i64,
    /// The latest `now` of a call in this transaction that made work
    /// claimable (a submission, retry, release or recovery), if any: the
    /// parked claims are answered at it before the commit.
    work_at: Option<Timestamp>,
    parked: Arc<std::sync::Mutex<Parked>>,
}

impl Local {
    fn made_work(&mut self, now: Timestamp) {
        self.work_at = Some(self.work_at.map_or(now, |t| t.max(now)));
    }
}

/// Claims idle workers of this process left with the store
/// ([`Store::park_claim`]), answered by the writer in the next transaction
/// that makes work claimable.
#[derive(Default)]
struct Parked {
    next: u64,
    claims: Vec<(u64, ClaimRequest, ParkedReply)>,
}

type ParkedReply = oneshot::Sender<Result<Vec<ClaimedJob>, StoreError>>;

/// The most jobs [`Local::cache`] holds; past it, it starts again empty.
const CACHE_MAX: usize = 1 << 16;

/// The SQLite store. See the [module docs](self).
pub struct SqliteStore {
    tx: std::sync::Mutex<Option<mpsc::Sender<Task>>>,
    signal: Arc<Notify>,
    parked: Arc<std::sync::Mutex<Parked>>,
    path: PathBuf,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl core::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn sql_err(path: &Path, e: &rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => StoreError::Locked(format!(
            "job store {} is locked by another process (waited 5 s)",
            path.display()
        )),
        Some(C::DatabaseCorrupt) => {
            StoreError::Corrupt(format!("job store {} is damaged: {e}", path.display()))
        }
        Some(C::NotADatabase) => StoreError::Corrupt(format!(
            "{} is not a job store: not a SQLite database",
            path.display()
        )),
        _ => StoreError::Backend(format!("job store {}: {e}", path.display())),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, migrating an older
    /// schema. Blocking: call it outside async code or in
    /// `spawn_blocking`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a file that is not a job store or is
    /// damaged (left untouched), [`StoreError::Locked`], [`StoreError::Io`].
    pub fn open(path: &Path, sync: Synchronous, config: StoreConfig) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                context: format!("creating {}", dir.display()),
                source: e,
            })?;
        }
        check_header(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_err(path, &e))?;
        let err = |e: rusqlite::Error| sql_err(path, &e);
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        // Every statement of the hot path stays prepared: past the cache's
        // capacity, each call would prepare its statements again.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Reading the schema refuses a damaged or foreign file before any
        // write.
        let (app, version, tables) = identify(&conn).map_err(err)?;
        if app != APPLICATION_ID && tables > 0 {
            return Err(StoreError::Corrupt(format!(
                "{} is not a job store: a SQLite database of another application",
                path.display()
            )));
        }
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "job store {} has schema version {version}, newer than this program's {SCHEMA_VERSION}",
                path.display()
            )));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "job store {}: cannot use WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch(&format!("PRAGMA synchronous={}", sync.pragma()))
            .map_err(err)?;
        // Checkpoints move committed pages from the WAL into the database
        // file; durability does not depend on them (a commit is durable
        // once the WAL is synced). Fewer, larger checkpoints cost fewer
        // syncs of the database file; the WAL file is cut back to the
        // limit after each.
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}; \
             PRAGMA journal_size_limit={WAL_SIZE_LIMIT}"
        ))
        .map_err(err)?;
        // Every call runs in a savepoint, whose undo log (the statement
        // journal) SQLite would otherwise spill to a temporary file past
        // 64 KiB: one write a page per call. It is never needed after a
        // crash (the WAL is), so it stays in memory.
        conn.execute_batch("PRAGMA temp_store=MEMORY")
            .map_err(err)?;
        migrate(&conn, path, &config)?;
        let (tx, rx) = mpsc::channel::<Task>();
        let parked = Arc::new(std::sync::Mutex::new(Parked::default()));
        let local = Local {
            config,
            counts: Stats::default(),
            completions: Vec::new(),
            wait: Box::new(LocalHistogram::new()),
            cache: HashMap::new(),
            stamp: 0,
            stamp_read: 0,
            work_at: None,
            parked: Arc::clone(&parked),
        };
        let thread_path = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("mechops-jobs-sqlite".into())
            .spawn(move || writer(conn, rx, local, &thread_path))
            .map_err(|e| StoreError::Io {
                context: "starting the job store writer thread".into(),
                source: e,
            })?;
        Ok(Self {
            tx: std::sync::Mutex::new(Some(tx)),
            signal: Arc::new(Notify::new()),
            parked,
            path: path.to_owned(),
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &mut Local) -> Result<T, StoreError> + Send + 'static,
    ) -> impl core::future::Future<Output = Result<T, StoreError>> + Send + 'static {
        let (reply_tx, reply_rx) = oneshot::channel::<Result<T, StoreError>>();
        let path = self.path.clone();
        let task: Task = Box::new(move |open| {
            let Some((conn, local)) = open else {
                return Box::new(move |commit: Result<(), CommitError>| {
                    let e = commit
                        .err()
                        .map_or(StoreError::Closed, CommitError::into_error);
                    let _ = reply_tx.send(Err(e));
                });
            };
            let r = in_savepoint(conn, &path, || f(conn, local));
            Box::new(move |commit: Result<(), CommitError>| {
                let out = match commit {
                    Ok(()) => r,
                    Err(e) => Err(e.into_error()),
                };
                // The caller may have stopped waiting; nothing to do then.
                let _ = reply_tx.send(out);
            })
        });
        let sent = self
            .tx
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|tx| tx.send(task).is_ok()))
            .unwrap_or(false);
        async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            reply_rx.await.unwrap_or(Err(StoreError::Closed))
        }
    }

    fn call_boxed<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &mut Local) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        Box::pin(self.call(f))
    }

    fn call_signal<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &mut Local) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'static, T> {
        let fut = self.call(f);
        let signal = Arc::clone(&self.signal);
        Box::pin(async move {
            let r = fut.await;
            if r.is_ok() {
                signal.notify_waiters();
            }
            r
        })
    }
}

/// Runs a prepared-once statement that returns no rows.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(drop)
}

/// Runs `f` inside a savepoint: when `f` fails, what it wrote is rolled
/// back and the rest of the transaction is untouched.
fn in_savepoint<T>(
    conn: &Connection,
    path: &Path,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let (begin, release, rollback) = ("SAVEPOINT op", "RELEASE op", "ROLLBACK TO op");
    exec_cached(conn, begin).map_err(|e| sql_err(path, &e))?;
    let r = f();
    let end = if r.is_ok() {
        exec_cached(conn, release)
    } else {
        exec_cached(conn, rollback).and_then(|()| exec_cached(conn, release))
    };
    match end {
        Ok(()) => r,
        Err(e) => Err(sql_err(path, &e)),
    }
}

/// Refuses a file that exists, is not empty, and does not start like a
/// SQLite database, before SQLite could touch it.
fn check_header(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StoreError::Io {
                context: format!("opening job store {}", path.display()),
                source: e,
            });
        }
    };
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => {
                return Err(StoreError::Io {
                    context: format!("reading job store {}", path.display()),
                    source: e,
                });
            }
        }
    }
    if n == 0 || &head[..n] == b"SQLite format 3\0" {
        return Ok(());
    }
    Err(StoreError::Corrupt(format!(
        "{} is not a job store: not a SQLite database",
        path.display()
    )))
}

fn identify(conn: &Connection) -> rusqlite::Result<(i32, i32, i64)> {
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    Ok((app, version, tables))
}

fn migrate(conn: &Connection, path: &Path, config: &StoreConfig) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| sql_err(path, &e);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
    let run = || -> Result<(), StoreError> {
        // Read again under the write lock: another process may have
        // created or migrated the file meanwhile.
        let (app, version, tables) = identify(conn).map_err(err)?;
        if app != APPLICATION_ID && tables > 0 {
            return Err(StoreError::Corrupt(format!(
                "{} is not a job store: a SQLite database of another application",
                path.display()
            )));
        }
        for v in version..SCHEMA_VERSION {
            let step = usize::try_from(v).unwrap_or(usize::MAX);
            let sql = MIGRATIONS.get(step).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "job store {}: bad schema version {v}",
                    path.display()
                ))
            })?;
            conn.execute_batch(sql).map_err(err)?;
            if v == 2 {
                split_records(conn, config)?;
            }
        }
        conn.execute_batch(&format!(
            "PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version={SCHEMA_VERSION}"
        ))
        .map_err(err)
    };
    match run() {
        Ok(()) => conn.execute_batch("COMMIT").map_err(err),
        Err(e) => {
            // The rollback's own failure adds nothing to the first error.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The step to version 3: each version 2 row becomes a row of `jobs` with
/// the record's changing fields in columns, beside the record as it was in
/// `job_records`. A record that does not decode stops the migration (the
/// file is left as it was).
fn split_records(conn: &Connection, config: &StoreConfig) -> Result<(), StoreError> {
    let mut local = Local {
        config: *config,
        counts: Stats::default(),
        completions: Vec::new(),
        wait: Box::new(LocalHistogram::new()),
        cache: HashMap::new(),
        stamp: 0,
        stamp_read: 0,
        work_at: None,
        parked: Arc::default(),
    };
    let mut read = conn
        .prepare("SELECT seq, worker, record FROM jobs_v2 ORDER BY seq")
        .map_err(backend)?;
    let mut rows = read.query([]).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        let seq: i64 = row.get(0).map_err(backend)?;
        let worker: Option<String> = row.get(1).map_err(backend)?;
        let text: String = row.get(2).map_err(backend)?;
        let job = decode_text(&text, &local).map_err(|e| match e {
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{m} (job store row {seq})")),
            other => other,
        })?;
        insert_row(conn, &mut local, &job, Some(seq), worker.as_deref(), &text)?;
    }
    drop(rows);
    drop(read);
    conn.execute_batch("DROP TABLE jobs_v2").map_err(backend)?;
    write_stamp(conn, &local).map_err(backend)
}

/// Reads the file's last stamp; called once the transaction holds the
/// write lock.
fn read_stamp(conn: &Connection, local: &mut Local) -> rusqlite::Result<()> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT value FROM counters WHERE name = 'stamp'")?
        .query_row([], |r| r.get(0))
        .optional()?;
    local.stamp = v.unwrap_or(0);
    local.stamp_read = local.stamp;
    Ok(())
}

fn write_stamp(conn: &Connection, local: &Local) -> rusqlite::Result<()> {
    if local.stamp != local.stamp_read {
        conn.prepare_cached(
            "INSERT INTO counters (name, value) VALUES ('stamp', ?1) \
             ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
        )?
        .execute([local.stamp])?;
    }
    Ok(())
}

fn writer(conn: Connection, rx: mpsc::Receiver<Task>, mut local: Local, path: &Path) {
    let mut batch: Vec<Task> = Vec::new();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(t) => batch.push(t),
                Err(_) => break,
            }
        }
        let begun = exec_cached(&conn, "BEGIN IMMEDIATE")
            .and_then(|()| {
                read_stamp(&conn, &mut local).inspect_err(|_| {
                    let _ = conn.execute_batch("ROLLBACK");
                })
            })
            .map_err(|e| CommitError::of(path, &e));
        if let Err(e) = begun {
            for t in batch.drain(..) {
                t(None)(Err(e.clone()));
            }
            continue;
        }
        // Calls that arrive while the transaction runs join it before its
        // commit: a worker sends a round's completions, recovery and claim
        // back to back, and the later ones must not wait for the next
        // `fsync`.
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        loop {
            replies.extend(batch.drain(..).map(|t| t(Some((&conn, &mut local)))));
            while replies.len() + batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(t) => batch.push(t),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                break;
            }
        }
        let parked = claim_parked(&conn, &mut local, path);
        let commit = flush_counters(&conn, &mut local)
            .and_then(|()| exec_cached(&conn, "COMMIT"))
            .map_err(|e| CommitError::of(path, &e));
        if commit.is_err() {
            // The transaction is gone either way; a failed rollback adds
            // nothing to the commit's error.
            let _ = conn.execute_batch("ROLLBACK");
            // Its stamps were never stored and will be given again.
            local.cache.clear();
        }
        for r in replies {
            r(commit.clone());
        }
        for (reply, claimed) in parked {
            let out = match &commit {
                Ok(()) => claimed,
                Err(e) => Err(e.clone().into_error()),
            };
            // A worker that went away left its claim; nothing to answer.
            let _ = reply.send(out);
        }
    }
}

/// The event counters, as the `counters` table names them.
const COUNTERS: [&str; 5] = [
    "failed",
    "completed_total",
    "stalls_recovered",
    "fenced",
    "pruned",
];

fn counter_values(c: &Stats) -> [u64; 5] {
    [
        c.failed,
        c.completed_total,
        c.stalls_recovered,
        c.fenced,
        c.pruned,
    ]
}

/// Adds the open transaction's counter increments and completions to
/// their tables, so every process sharing the file counts them; keeps
/// the completions of the last [`Throughput::WINDOW`] only.
fn flush_counters(conn: &Connection, local: &mut Local) -> rusqlite::Result<()> {
    write_stamp(conn, local)?;
    let counts = core::mem::take(&mut local.counts);
    for (name, n) in COUNTERS.into_iter().zip(counter_values(&counts)) {
        if n > 0 {
            conn.prepare_cached(
                "INSERT INTO counters (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            )?
            .execute(params![name, i64::try_from(n).unwrap_or(i64::MAX)])?;
        }
    }
    let completions = core::mem::take(&mut local.completions);
    let Some(latest) = completions.iter().map(|(s, _)| *s).max() else {
        return Ok(());
    };
    for (second, n) in completions {
        conn.prepare_cached(
            "INSERT INTO completions (second, count) VALUES (?1, ?2) \
             ON CONFLICT (second) DO UPDATE SET count = count + excluded.count",
        )?
        .execute(params![second, i64::try_from(n).unwrap_or(i64::MAX)])?;
    }
    let window = i64::try_from(Throughput::WINDOW.as_secs()).unwrap_or(i64::MAX);
    conn.prepare_cached("DELETE FROM completions WHERE second <= ?1")?
        .execute([latest.saturating_sub(window)])?;
    Ok(())
}

/// When the open transaction made work claimable, claims for every parked
/// claim inside it (each in its own savepoint) and takes them out of the
/// registry; the answers are sent once the commit's outcome is known.
fn claim_parked(
    conn: &Connection,
    local: &mut Local,
    path: &Path,
) -> Vec<(ParkedReply, Result<Vec<ClaimedJob>, StoreError>)> {
    let Some(now) = local.work_at.take() else {
        return Vec::new();
    };
    let claims = match local.parked.lock() {
        Ok(mut p) => core::mem::take(&mut p.claims),
        Err(_) => return Vec::new(),
    };
    claims
        .into_iter()
        .map(|(_, req, reply)| {
            let claimed = in_savepoint(conn, path, || claim(conn, local, &req, now));
            (reply, claimed)
        })
        .collect()
}

/// Why a batch's transaction did not commit.
#[derive(Clone, Debug)]
struct CommitError {
    locked: bool,
    message: String,
}

impl CommitError {
    fn of(path: &Path, e: &rusqlite::Error) -> Self {
        let err = sql_err(path, e);
        Self {
            locked: matches!(err, StoreError::Locked(_)),
            message: err.to_string(),
        }
    }

    fn into_error(self) -> StoreError {
        if self.locked {
            StoreError::Locked(self.message)
        } else {
            StoreError::Backend(self.message)
        }
    }
}

/// A job's columns in the order [`decode_row`] reads them, `jobs` as `j`
/// joined with its record as `r`.
const ROW: &str = "SELECT j.stamp, j.state, j.ready_at, j.expires_at, j.finished_at, \
     j.attempts, j.stalls, j.last_token, j.last_retry_delay_ns, j.queued_at, j.started_at, \
     j.progress_fraction, j.progress_message, j.result, j.error, j.attempt, j.token, \
     j.deadline, j.cancel_requested, j.reason, r.record \
     FROM jobs j JOIN job_records r ON r.seq = j.seq";

fn corrupt_record(id: &str, why: &str) -> StoreError {
    StoreError::Corrupt(format!("job store record {id} is damaged: {why}"))
}

fn decode_text(text: &str, local: &Local) -> Result<Job, StoreError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt_record("?", &e.to_string()))?;
    record::decode(&v, &local.config.lifecycle).map_err(|e| corrupt_record("?", &e))
}

/// Reinterprets a stored `INTEGER` as the `u64` it was written from.
#[allow(clippy::cast_sign_loss)]
const fn unsigned(n: i64) -> u64 {
    n as u64
}

/// Stores a `u64` (a token, a count) in an `INTEGER` bit for bit.
#[allow(clippy::cast_possible_wrap)]
const fn signed(n: u64) -> i64 {
    n as i64
}

/// The job a [`ROW`] holds, with its stamp: the record as submitted, its
/// changing fields replaced by the columns, decoded (and so checked) as
/// one record.
fn decode_row(row: &rusqlite::Row<'_>, local: &Local) -> Result<(i64, Job), StoreError> {
    use serde_json::{Map, Value, json};
    let cols = || -> rusqlite::Result<_> {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            [
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ],
            [
                row.get::<_, i64>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, i64>(7)?,
                row.get::<_, i64>(9)?,
            ],
            [
                row.get::<_, Option<i64>>(8)?,
                row.get::<_, Option<i64>>(10)?,
            ],
            (
                row.get::<_, Option<f64>>(11)?,
                row.get::<_, Option<String>>(12)?,
            ),
            [
                row.get::<_, Option<String>>(13)?,
                row.get::<_, Option<String>>(14)?,
            ],
            [
                row.get::<_, Option<i64>>(15)?,
                row.get::<_, Option<i64>>(16)?,
                row.get::<_, Option<i64>>(17)?,
                row.get::<_, Option<i64>>(18)?,
            ],
            row.get::<_, Option<String>>(19)?,
            row.get::<_, String>(20)?,
        ))
    };
    let (
        stamp,
        kind,
        [ready, expires, finished],
        [attempts, stalls, last_token, queued_at],
        [last_delay, started],
        (fraction, message),
        [result, error],
        [attempt, token, deadline, cancel],
        reason,
        text,
    ) = cols().map_err(|e| corrupt_record("?", &e.to_string()))?;
    let mut v: Value =
        serde_json::from_str(&text).map_err(|e| corrupt_record("?", &e.to_string()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| corrupt_record("?", "the record is not an object"))?;
    let mut state = Map::new();
    match kind.as_str() {
        "delayed" | "retry_scheduled" => {
            state.insert("at".into(), ready.into());
        }
        "running" => {
            state.insert("attempt".into(), attempt.into());
            state.insert("token".into(), token.map(unsigned).into());
            state.insert("expires_at".into(), expires.into());
            state.insert("deadline".into(), deadline.into());
            state.insert("cancel_requested".into(), cancel.map(|c| c != 0).into());
        }
        "dead" => {
            state.insert("reason".into(), reason.into());
        }
        _ => {}
    }
    state.insert("kind".into(), kind.into());
    obj.insert("state".into(), Value::Object(state));
    obj.insert("attempts".into(), attempts.into());
    obj.insert("stalls".into(), stalls.into());
    obj.insert("last_token".into(), unsigned(last_token).into());
    obj.insert(
        "last_retry_delay_ns".into(),
        last_delay.map(unsigned).into(),
    );
    obj.insert("ready_at".into(), queued_at.into());
    obj.insert("started_at".into(), started.into());
    obj.insert("finished_at".into(), finished.into());
    obj.insert(
        "progress".into(),
        fraction.map_or(
            Value::Null,
            |f| json!({"fraction": f, "message": message.unwrap_or_default()}),
        ),
    );
    obj.insert("result".into(), result.into());
    obj.insert("error".into(), error.into());
    let job = record::decode(&v, &local.config.lifecycle).map_err(|e| corrupt_record("?", &e))?;
    Ok((stamp, job))
}

/// Names the job in a damaged record's message.
fn naming(id: &str) -> impl Fn(StoreError) -> StoreError + '_ {
    move |e| match e {
        StoreError::Corrupt(m) => {
            StoreError::Corrupt(m.replace("record ?", &format!("record {id}")))
        }
        other => other,
    }
}

fn load(conn: &Connection, local: &mut Local, id: JobId) -> Result<Job, StoreError> {
    let text = id.to_string();
    let stamp: Option<i64> = conn
        .prepare_cached("SELECT stamp FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row([&text], |r| r.get(0)).optional())
        .map_err(backend)?;
    let stamp = stamp.ok_or(StoreError::UnknownJob(id))?;
    load_stamped(conn, local, id, &text, stamp)
}

/// The job whose row holds `stamp`: from the cache when this writer wrote
/// that row, else read and decoded.
fn load_stamped(
    conn: &Connection,
    local: &mut Local,
    id: JobId,
    text: &str,
    stamp: i64,
) -> Result<Job, StoreError> {
    if let Some((s, job)) = local.cache.remove(&id) {
        if s == stamp {
            return Ok(job);
        }
    }
    let mut stmt = conn
        .prepare_cached(&format!("{ROW} WHERE j.id = ?1"))
        .map_err(backend)?;
    let mut rows = stmt.query([text]).map_err(backend)?;
    let row = rows
        .next()
        .map_err(backend)?
        .ok_or(StoreError::UnknownJob(id))?;
    decode_row(row, local)
        .map(|(_, job)| job)
        .map_err(naming(text))
}

/// Remembers the stamp just written for a pending job (see
/// [`Local::cache`]); a job no longer pending is not loaded for a
/// transition again, except by `status`.
fn remember(local: &mut Local, job: &Job, stamp: i64) {
    if job.state().kind().is_pending() {
        if local.cache.len() >= CACHE_MAX {
            local.cache.clear();
        }
        local.cache.insert(job.id(), (stamp, job.clone()));
    } else {
        local.cache.remove(&job.id());
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => {
            StoreError::Locked(format!("job store is locked by another process: {e}"))
        }
        Some(C::DatabaseCorrupt | C::NotADatabase) => {
            StoreError::Corrupt(format!("job store is damaged: {e}"))
        }
        _ => StoreError::Backend(format!("job store: {e}")),
    }
}

/// The columns of a job that change: its state and lease, the indexed
/// times, the pending unique key, and the record's changing fields.
struct Columns<'a> {
    state: &'static str,
    ready: Option<i64>,
    expires: Option<i64>,
    finished: Option<i64>,
    key: Option<&'a str>,
    attempts: u32,
    stalls: u32,
    last_token: i64,
    last_delay: Option<i64>,
    queued_at: i64,
    started: Option<i64>,
    fraction: Option<f64>,
    message: Option<&'a str>,
    result: Option<&'a str>,
    error: Option<&'a str>,
    attempt: Option<u32>,
    token: Option<i64>,
    deadline: Option<i64>,
    cancel: Option<bool>,
    reason: Option<&'static str>,
}

impl Columns<'_> {
    /// The values of `state` to `reason` in the order of `jobs`, with the
    /// row's worker and stamp.
    fn params<'a>(
        &'a self,
        worker: &'a Option<&'a str>,
        stamp: &'a i64,
    ) -> [&'a dyn rusqlite::ToSql; 22] {
        [
            &self.state,
            &self.ready,
            &self.expires,
            &self.finished,
            &self.key,
            worker,
            stamp,
            &self.attempts,
            &self.stalls,
            &self.last_token,
            &self.last_delay,
            &self.queued_at,
            &self.started,
            &self.fraction,
            &self.message,
            &self.result,
            &self.error,
            &self.attempt,
            &self.token,
            &self.deadline,
            &self.cancel,
            &self.reason,
        ]
    }
}

fn columns(job: &Job) -> Columns<'_> {
    let kind = job.state().kind();
    let ready = match job.state() {
        JobState::Queued => Some(nanos(job.ready_at())),
        s => s.ready_at().map(nanos),
    };
    let lease = job.state().lease();
    let (attempt, reason) = match *job.state() {
        JobState::Running { attempt, .. } => (Some(attempt), None),
        JobState::Dead { reason } => (None, Some(record::dead_name(reason))),
        _ => (None, None),
    };
    Columns {
        state: kind.as_str(),
        ready,
        expires: lease.map(|l| nanos(l.expires_at)),
        finished: job.finished_at().map(nanos),
        key: job
            .spec()
            .unique_key
            .as_deref()
            .filter(|_| kind.is_pending()),
        attempts: job.attempts(),
        stalls: job.stalls(),
        last_token: signed(job.last_token().get()),
        last_delay: job
            .last_retry_delay()
            .map(|d| signed(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))),
        queued_at: nanos(job.ready_at()),
        started: job.started_at().map(nanos),
        fraction: job.progress().map(Progress::fraction),
        message: job.progress().map(Progress::message),
        result: job.result(),
        error: job.error(),
        attempt,
        token: lease.map(|l| signed(l.token.get())),
        deadline: lease.and_then(|l| l.deadline).map(nanos),
        cancel: lease.map(|l| l.cancel_requested),
        reason,
    }
}

/// Inserts a job's row (at `seq`, or the next) and its record `text`.
fn insert_row(
    conn: &Connection,
    local: &mut Local,
    job: &Job,
    seq: Option<i64>,
    worker: Option<&str>,
    text: &str,
) -> Result<(), StoreError> {
    let c = columns(job);
    local.stamp += 1;
    let stamp = local.stamp;
    conn.prepare_cached(
        "INSERT INTO jobs (seq, id, handler, priority, state, ready_at, expires_at, \
         finished_at, pending_key, worker, stamp, attempts, stalls, last_token, \
         last_retry_delay_ns, queued_at, started_at, progress_fraction, progress_message, \
         result, error, attempt, token, deadline, cancel_requested, reason) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
         ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
    )
    .and_then(|mut s| {
        let head = params![
            seq,
            job.id().to_string(),
            job.spec().handler,
            priority_rank(job.spec().priority),
        ];
        s.execute(rusqlite::params_from_iter(
            head.iter().copied().chain(c.params(&worker, &stamp)),
        ))
    })
    .map_err(backend)?;
    conn.prepare_cached("INSERT INTO job_records (seq, record) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![conn.last_insert_rowid(), text]))
        .map_err(backend)?;
    remember(local, job, stamp);
    Ok(())
}

fn insert(conn: &Connection, local: &mut Local, job: &Job) -> Result<(), StoreError> {
    insert_row(conn, local, job, None, None, &record::encode_text(job))
}

fn save(
    conn: &Connection,
    local: &mut Local,
    job: &Job,
    worker: Option<&str>,
) -> Result<(), StoreError> {
    let c = columns(job);
    local.stamp += 1;
    let stamp = local.stamp;
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, ready_at = ?3, expires_at = ?4, finished_at = ?5, \
         pending_key = ?6, worker = ?7, stamp = ?8, attempts = ?9, stalls = ?10, \
         last_token = ?11, last_retry_delay_ns = ?12, queued_at = ?13, started_at = ?14, \
         progress_fraction = ?15, progress_message = ?16, result = ?17, error = ?18, \
         attempt = ?19, token = ?20, deadline = ?21, cancel_requested = ?22, reason = ?23 \
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        let id = job.id().to_string();
        s.execute(rusqlite::params_from_iter(
            core::iter::once(&id as &dyn rusqlite::ToSql).chain(c.params(&worker, &stamp)),
        ))
    })
    .map_err(backend)?;
    remember(local, job, stamp);
    Ok(())
}

fn key_holder(
    conn: &Connection,
    key: &str,
    except: Option<JobId>,
) -> Result<Option<JobId>, StoreError> {
    let holder: Option<String> = conn
        .prepare_cached("SELECT id FROM jobs WHERE pending_key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(backend)?;
    let Some(holder) = holder else {
        return Ok(None);
    };
    let id = JobId::new(
        holder
            .parse()
            .map_err(|_| corrupt_record(&holder, "the id is not a UUID"))?,
    );
    Ok(Some(id).filter(|h| Some(*h) != except))
}

fn count_events(local: &mut Local, job: &Job, fx: &mechops_alloc::job::Effects) {
    for e in fx.events() {
        match e {
            JobEvent::Completed => {
                local.counts.completed_total += 1;
                let second = job
                    .finished_at()
                    .map_or(0, |t| nanos(t).div_euclid(1_000_000_000));
                match local.completions.last_mut() {
                    Some((s, n)) if *s == second => *n += 1,
                    _ => local.completions.push((second, 1)),
                }
            }
            JobEvent::RetryScheduled { .. } => local.counts.failed += 1,
            JobEvent::Dead { .. } if job.error().is_some() => local.counts.failed += 1,
            JobEvent::Stalled { .. } if job.state().kind() == StateKind::Queued => {
                local.counts.stalls_recovered += 1;
            }
            _ => {}
        }
    }
}

fn apply(
    conn: &Connection,
    local: &mut Local,
    id: JobId,
    event: Event,
    now: Timestamp,
    random: u64,
) -> Result<Job, StoreError> {
    let mut job = load(conn, local, id)?;
    let lifecycle = local.config.lifecycle;
    match job.handle(event, now, random, &lifecycle) {
        Ok(fx) => {
            // Counted once written: a failed write leaves no trace.
            save(conn, local, &job, None)?;
            count_events(local, &job, &fx);
            Ok(job)
        }
        Err(r) => {
            if matches!(
                r,
                Rejected::StaleToken { .. } | Rejected::LeaseExpired { .. }
            ) {
                local.counts.fenced += 1;
            }
            Err(StoreError::rejected(id, r))
        }
    }
}

fn submit_one(
    conn: &Connection,
    local: &mut Local,
    id: JobId,
    spec: JobSpec,
    now: Timestamp,
) -> Result<Result<(), SubmitRefused>, StoreError> {
    if let Err(e) = spec.validate() {
        return Ok(Err(SubmitRefused::Spec(e)));
    }
    if let Some(key) = &spec.unique_key {
        if let Some(existing) = key_holder(conn, key, None)? {
            return Ok(Err(SubmitRefused::DuplicateKey { existing }));
        }
    }
    let exists: Option<i64> = conn
        .prepare_cached("SELECT seq FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.to_string()], |r| r.get(0)).optional())
        .map_err(backend)?;
    if exists.is_some() {
        return Ok(Err(SubmitRefused::DuplicateId));
    }
    let (job, _) = match Job::submit(id, spec, now, &local.config.lifecycle) {
        Ok(j) => j,
        Err(e) => return Ok(Err(SubmitRefused::Spec(e))),
    };
    insert(conn, local, &job)?;
    Ok(Ok(()))
}

fn parse_id(text: &str) -> Result<JobId, StoreError> {
    text.parse()
        .map(JobId::new)
        .map_err(|_| corrupt_record(text, "the id is not a UUID"))
}

fn claim(
    conn: &Connection,
    local: &mut Local,
    req: &ClaimRequest,
    now: Timestamp,
) -> Result<Vec<ClaimedJob>, StoreError> {
    let mut out = Vec::new();
    if req.max == 0 {
        return Ok(out);
    }
    // Free slots of the limited handlers, store-wide.
    let mut free: Vec<(String, usize)> = Vec::with_capacity(req.handler_limits.len());
    for (h, limit) in req.handler_limits.iter() {
        let running: i64 = conn
            .prepare_cached("SELECT count(*) FROM jobs WHERE state = 'running' AND handler = ?1")
            .and_then(|mut s| s.query_row([h], |r| r.get(0)))
            .map_err(backend)?;
        let running = usize::try_from(running).unwrap_or(usize::MAX);
        free.push((h.clone(), limit.saturating_sub(running)));
    }
    let full: Vec<&str> = free
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(h, _)| h.as_str())
        .collect();
    let mut sql = String::from(
        "SELECT id, stamp FROM jobs INDEXED BY jobs_ready \
         WHERE ready_at IS NOT NULL AND ready_at <= ?1",
    );
    if !full.is_empty() {
        sql.push_str(" AND handler NOT IN (");
        for i in 0..full.len() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            sql.push_str(&(i + 3).to_string());
        }
        sql.push(')');
    }
    sql.push_str(" ORDER BY priority, seq LIMIT ?2");
    let window = i64::try_from(req.max.saturating_mul(2).saturating_add(16)).unwrap_or(i64::MAX);
    let rows: Vec<(String, i64)> = {
        let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
        let mut binds: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(nanos(now)), Box::new(window)];
        for h in &full {
            binds.push(Box::new((*h).to_owned()));
        }
        let params = rusqlite::params_from_iter(binds.iter().map(AsRef::as_ref));
        stmt.query_map(params, |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(backend)?
    };
    let lifecycle = local.config.lifecycle;
    let worker = req.worker.0.as_str();
    for (id_text, stamp) in rows {
        if out.len() >= req.max {
            break;
        }
        let id = parse_id(&id_text)?;
        let mut job = load_stamped(conn, local, id, &id_text, stamp)?;
        let handler = job.spec().handler.clone();
        if let Some(slot) = free.iter_mut().find(|(h, _)| *h == handler) {
            if slot.1 == 0 {
                continue;
            }
            slot.1 -= 1;
        }
        let Ok(_) = job.handle(Event::Claim, now, 0, &lifecycle) else {
            continue;
        };
        save(conn, local, &job, Some(worker))?;
        let JobState::Running { attempt, lease } = *job.state() else {
            continue;
        };
        if let Some(wait) = job.wait_time() {
            local
                .wait
                .record(u64::try_from(wait.as_micros()).unwrap_or(u64::MAX));
        }
        let spec = job.spec();
        out.push(ClaimedJob {
            id,
            handler,
            args: spec.args.clone(),
            attempt,
            max_attempts: spec.max_attempts,
            token: lease.token,
            expires_at: lease.expires_at,
            deadline: lease.deadline,
        });
    }
    Ok(out)
}

fn stats(conn: &Connection, local: &Local) -> Result<StoreStats, StoreError> {
    let mut counts = Stats::default();
    let mut read = conn
        .prepare_cached("SELECT name, value FROM counters")
        .map_err(backend)?;
    let rows = read
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(backend)?;
    for row in rows {
        let (name, v) = row.map_err(backend)?;
        let v = u64::try_from(v).unwrap_or(0);
        match name.as_str() {
            "failed" => counts.failed = v,
            "completed_total" => counts.completed_total = v,
            "stalls_recovered" => counts.stalls_recovered = v,
            "fenced" => counts.fenced = v,
            "pruned" => counts.pruned = v,
            // A counter a later version added: not shown here.
            _ => {}
        }
    }
    // This transaction's own increments are not in the table yet.
    let c = &local.counts;
    counts.failed += c.failed;
    counts.completed_total += c.completed_total;
    counts.stalls_recovered += c.stalls_recovered;
    counts.fenced += c.fenced;
    counts.pruned += c.pruned;
    let mut stmt = conn
        .prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(backend)?;
    counts.queue_size = 0;
    counts.delayed = 0;
    counts.running = 0;
    counts.retry_scheduled = 0;
    counts.completed = 0;
    counts.dead = 0;
    counts.cancelled = 0;
    for row in rows {
        let (state, n) = row.map_err(backend)?;
        let n = usize::try_from(n).unwrap_or(0);
        match state.parse::<StateKind>() {
            Ok(StateKind::Queued) => counts.queue_size = n,
            Ok(StateKind::Delayed) => counts.delayed = n,
            Ok(StateKind::Running) => counts.running = n,
            Ok(StateKind::RetryScheduled) => counts.retry_scheduled = n,
            Ok(StateKind::Completed) => counts.completed = n,
            Ok(StateKind::Dead) => counts.dead = n,
            Ok(StateKind::Cancelled) => counts.cancelled = n,
            Err(_) => return Err(corrupt_record("?", &format!("unknown state {state:?}"))),
        }
    }
    let h = &local.wait;
    let wait = (h.count() > 0).then(|| WaitPercentiles {
        p50_us: h.quantile(Quantile::P50).unwrap_or(0),
        p90_us: h.quantile(Quantile::P90).unwrap_or(0),
        p99_us: h.quantile(Quantile::P99).unwrap_or(0),
        samples: h.count(),
    });
    Ok(StoreStats { counts, wait })
}

fn recover(
    conn: &Connection,
    local: &mut Local,
    now: Timestamp,
    max_batch: usize,
    random: u64,
) -> Result<usize, StoreError> {
    let ids: Vec<String> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
                 ORDER BY expires_at LIMIT ?2",
            )
            .map_err(backend)?;
        stmt.query_map(
            params![nanos(now), i64::try_from(max_batch).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )
        .and_then(Iterator::collect)
        .map_err(backend)?
    };
    let mut mix = random;
    for text in &ids {
        mix = mix.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        apply(conn, local, parse_id(text)?, Event::Expire, now, mix)?;
    }
    Ok(ids.len())
}

const FINISHED: &str = "('completed', 'cancelled', 'dead')";

fn purge(conn: &Connection, local: &mut Local, filter: PurgeFilter) -> Result<usize, StoreError> {
    let states = match filter.state {
        Some(s) if s.is_pending() => return Err(StoreError::PurgePending(s)),
        Some(s) => format!("('{}')", s.as_str()),
        None => FINISHED.to_owned(),
    };
    let before = filter.finished_before.map_or(i64::MAX, nanos);
    let n = conn
        .execute(
            &format!(
                "DELETE FROM jobs WHERE state IN {states} AND finished_at IS NOT NULL \
                 AND finished_at < ?1"
            ),
            [before],
        )
        .map_err(backend)?;
    local.counts.pruned += n as u64;
    Ok(n)
}

fn prune(conn: &Connection, local: &mut Local, now: Timestamp) -> Result<usize, StoreError> {
    let r = local.config.retention;
    let age = i64::try_from(r.max_age.as_nanos()).unwrap_or(i64::MAX);
    let cutoff = nanos(now).saturating_sub(age);
    let old = conn
        .execute(
            "DELETE FROM jobs WHERE state IN ('completed', 'cancelled') AND finished_at <= ?1",
            [cutoff],
        )
        .map_err(backend)?;
    let extra = conn
        .execute(
            "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs \
             WHERE state IN ('completed', 'cancelled') \
             ORDER BY finished_at DESC LIMIT -1 OFFSET ?1)",
            [i64::try_from(r.max_count).unwrap_or(i64::MAX)],
        )
        .map_err(backend)?;
    local.counts.pruned += (old + extra) as u64;
    Ok(old + extra)
}

fn throughput(
    conn: &Connection,
    local: &Local,
    now: Timestamp,
) -> Result<Option<Throughput>, StoreError> {
    let window = i64::try_from(Throughput::WINDOW.as_secs()).unwrap_or(i64::MAX);
    let first = nanos(now).div_euclid(1_000_000_000) - window + 1;
    let stored: i64 = conn
        .prepare_cached("SELECT coalesce(sum(count), 0) FROM completions WHERE second >= ?1")
        .and_then(|mut s| s.query_row([first], |r| r.get(0)))
        .map_err(backend)?;
    let pending: u64 = local
        .completions
        .iter()
        .filter(|(s, _)| *s >= first)
        .map(|(_, n)| n)
        .sum();
    Ok(Some(Throughput {
        window: Throughput::WINDOW,
        completed: u64::try_from(stored).unwrap_or(0) + pending,
    }))
}

fn next_due(conn: &Connection) -> Result<Option<Timestamp>, StoreError> {
    let due: Option<i64> = conn
        .prepare_cached(
            "SELECT min(t) FROM (\
             SELECT min(ready_at) AS t FROM jobs WHERE state IN ('delayed', 'retry_scheduled') \
             UNION ALL SELECT min(expires_at) FROM jobs WHERE expires_at IS NOT NULL)",
        )
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    due.map(|n| record::from_nanos(n).map_err(|e| corrupt_record("?", &e)))
        .transpose()
}

impl Store for SqliteStore {
    fn submit(&self, id: JobId, spec: JobSpec, now: Timestamp) -> StoreFuture<'_, ()> {
        self.call_signal(move |conn, local| {
            let key = spec.unique_key.clone();
            match submit_one(conn, local, id, spec, now)? {
                Ok(()) => {
                    local.made_work(now);
                    Ok(())
                }
                Err(SubmitRefused::Spec(e)) => Err(StoreError::Spec(e)),
                Err(SubmitRefused::DuplicateId) => Err(StoreError::DuplicateId(id)),
                Err(SubmitRefused::DuplicateKey { existing }) => Err(StoreError::DuplicateKey {
                    key: key.unwrap_or_default(),
                    existing,
                }),
            }
        })
    }

    fn submit_bulk(
        &self,
        jobs: Vec<(JobId, JobSpec)>,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<Result<(), SubmitRefused>>> {
        self.call_signal(move |conn, local| {
            let out: Result<Vec<_>, _> = jobs
                .into_iter()
                .map(|(id, spec)| submit_one(conn, local, id, spec, now))
                .collect();
            if out.as_ref().is_ok_and(|o| o.iter().any(Result::is_ok)) {
                local.made_work(now);
            }
            out
        })
    }

    fn claim(&self, request: &ClaimRequest, now: Timestamp) -> StoreFuture<'_, Vec<ClaimedJob>> {
        let req = request.clone();
        self.call_boxed(move |conn, local| claim(conn, local, &req, now))
    }

    fn park_claim(&self, request: &ClaimRequest) -> Option<ParkedClaim> {
        let (tx, rx) = oneshot::channel();
        let mut p = self.parked.lock().ok()?;
        let key = p.next;
        p.next += 1;
        p.claims.push((key, request.clone(), tx));
        drop(p);
        let parked = Arc::clone(&self.parked);
        Some(ParkedClaim::new(rx, move || {
            let Ok(mut p) = parked.lock() else {
                return false;
            };
            let before = p.claims.len();
            p.claims.retain(|(k, _, _)| *k != key);
            p.claims.len() < before
        }))
    }

    fn heartbeat(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, Lease> {
        self.call_boxed(move |conn, local| {
            let job = apply(conn, local, id, Event::Heartbeat { token }, now, 0)?;
            job.state()
                .lease()
                .copied()
                .ok_or(StoreError::UnknownJob(id))
        })
    }

    fn progress(
        &self,
        id: JobId,
        token: FencingToken,
        progress: Progress,
        now: Timestamp,
    ) -> StoreFuture<'_, ()> {
        self.call_boxed(move |conn, local| {
            let mut job = load(conn, local, id)?;
            let lifecycle = local.config.lifecycle;
            job.handle(Event::Progress { token, progress }, now, 0, &lifecycle)
                .map_err(|r| StoreError::rejected(id, r))?;
            // The caller throttles: write what the store was given.
            save(conn, local, &job, None)
        })
    }

    fn complete(
        &self,
        id: JobId,
        token: FencingToken,
        result: String,
        now: Timestamp,
    ) -> StoreFuture<'_, ()> {
        self.call_boxed(move |conn, local| {
            apply(conn, local, id, Event::Complete { token, result }, now, 0).map(drop)
        })
    }

    fn complete_batch(
        &self,
        items: Vec<Completion>,
        now: Timestamp,
    ) -> StoreFuture<'_, Vec<Result<(), StoreError>>> {
        // No savepoint per item: an item writes at most one statement
        // (its row's update), which SQLite applies whole or not at all, and
        // a refused item writes nothing. A savepoint would copy every page
        // the item touches into the undo log again.
        self.call_boxed(move |conn, local| {
            Ok(items
                .into_iter()
                .map(|c| {
                    let event = Event::Complete {
                        token: c.token,
                        result: c.result,
                    };
                    apply(conn, local, c.id, event, now, 0).map(drop)
                })
                .collect())
        })
    }

    fn fail(
        &self,
        id: JobId,
        token: FencingToken,
        error: String,
        kind: FailKind,
        now: Timestamp,
        random: u64,
    ) -> StoreFuture<'_, JobState> {
        self.call_signal(move |conn, local| {
            apply(
                conn,
                local,
                id,
                Event::Fail { token, error, kind },
                now,
                random,
            )
            .map(|j| *j.state())
        })
    }

    fn release(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, ()> {
        self.call_signal(move |conn, local| {
            apply(conn, local, id, Event::Release { token }, now, 0)?;
            local.made_work(now);
            Ok(())
        })
    }

    fn ack_cancel(&self, id: JobId, token: FencingToken, now: Timestamp) -> StoreFuture<'_, ()> {
        self.call_boxed(move |conn, local| {
            apply(conn, local, id, Event::AckCancel { token }, now, 0).map(drop)
        })
    }

    fn cancel(&self, id: JobId, now: Timestamp) -> StoreFuture<'_, StateKind> {
        self.call_boxed(move |conn, local| {
            apply(conn, local, id, Event::Cancel, now, 0).map(|j| j.state().kind())
        })
    }

    fn retry(&self, id: JobId, now: Timestamp) -> StoreFuture<'_, ()> {
        self.call_signal(move |conn, local| {
            let job = load(conn, local, id)?;
            if let Some(key) = job.spec().unique_key.clone() {
                if let Some(existing) = key_holder(conn, &key, Some(id))? {
                    return Err(StoreError::DuplicateKey { key, existing });
                }
            }
            apply(conn, local, id, Event::Retry, now, 0)?;
            local.made_work(now);
            Ok(())
        })
    }

    fn status(&self, id: JobId) -> StoreFuture<'_, Job> {
        self.call_boxed(move |conn, local| load(conn, local, id))
    }

    fn list(&self, state: Option<StateKind>, limit: usize) -> StoreFuture<'_, Vec<Job>> {
        self.call_boxed(move |conn, local| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let (sql, binds) = match state {
                Some(s) => (
                    format!("{ROW} WHERE j.state = ?2 ORDER BY j.seq LIMIT ?1"),
                    vec![
                        rusqlite::types::Value::from(limit),
                        s.as_str().to_owned().into(),
                    ],
                ),
                None => (
                    format!("{ROW} ORDER BY j.seq LIMIT ?1"),
                    vec![rusqlite::types::Value::from(limit)],
                ),
            };
            let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(binds))
                .map_err(backend)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                out.push(decode_row(row, local)?.1);
            }
            Ok(out)
        })
    }

    fn stats(&self) -> StoreFuture<'_, StoreStats> {
        self.call_boxed(|conn, local| stats(conn, local))
    }

    fn throughput(&self, now: Timestamp) -> StoreFuture<'_, Option<Throughput>> {
        self.call_boxed(move |conn, local| throughput(conn, local, now))
    }

    fn recover_expired(
        &self,
        now: Timestamp,
        max_batch: usize,
        random: u64,
    ) -> StoreFuture<'_, usize> {
        let fut = self.call(move |conn, local| {
            let n = recover(conn, local, now, max_batch, random)?;
            if n > 0 {
                local.made_work(now);
            }
            Ok(n)
        });
        let signal = Arc::clone(&self.signal);
        Box::pin(async move {
            let n = fut.await?;
            if n > 0 {
                signal.notify_waiters();
            }
            Ok(n)
        })
    }

    fn purge(&self, filter: PurgeFilter) -> StoreFuture<'_, usize> {
        self.call_boxed(move |conn, local| purge(conn, local, filter))
    }

    fn prune(&self, now: Timestamp) -> StoreFuture<'_, usize> {
        self.call_boxed(move |conn, local| prune(conn, local, now))
    }

    fn next_due(&self) -> StoreFuture<'_, Option<Timestamp>> {
        self.call_boxed(|conn, _| next_due(conn))
    }

    fn work_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.signal)
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(100))
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        let tx = self.tx.lock().ok().and_then(|mut g| g.take());
        let thread = self.thread.lock().ok().and_then(|mut g| g.take());
        Box::pin(async move {
            // Dropping the sender ends the writer after the calls already
            // queued; joining waits for their commit.
            drop(tx);
            if let Some(t) = thread {
                tokio::task::spawn_blocking(move || t.join())
                    .await
                    .map_err(|e| StoreError::Backend(format!("job store writer: {e}")))?
                    .map_err(|_| StoreError::Backend("job store writer thread panicked".into()))?;
            }
            Ok(())
        })
    }
}

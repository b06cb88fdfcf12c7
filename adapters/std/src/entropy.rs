//! OS entropy (getrandom) as `rand_core` sources, buffered and fork-safe.
//!
//! Invariants:
//! - [`OsEntropy`] asks the OS for every byte (one system call per request);
//! - [`BufferedEntropy`] asks the OS for [`BUFFER_LEN`] bytes at a time and
//!   hands each byte out at most once: a handed-out byte is cleared from the
//!   buffer at once;
//! - fork safety: a `pthread_atfork` child handler bumps a process-wide fork
//!   generation; a buffer filled in an earlier generation is discarded before
//!   its next use, so after `fork` parent and child never hand out the same
//!   bytes;
//! - a [`BufferedEntropy`]'s buffer is wiped when it is dropped or discarded,
//!   through `zeroize`: a plain `fill(0)` right before the free is a dead
//!   store the optimizer may remove. (Handed-out bytes are cleared with a
//!   plain `fill(0)`: the buffer lives on, so those stores stay.) (A child created by a raw `clone` system call that bypasses libc's
//!   `fork` runs no atfork handlers and is not covered.)

use core::cell::RefCell;
use core::convert::Infallible;
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use rand_core::{TryCryptoRng, TryRng};
use zeroize::{Zeroize as _, Zeroizing};

/// Bytes a [`BufferedEntropy`] requests from the OS at once: 256 UUIDs' worth
/// per system call.
pub const BUFFER_LEN: usize = 4096;

/// The OS could not supply entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("OS entropy unavailable: {0}")]
pub struct EntropyError(getrandom::Error);

impl From<getrandom::Error> for EntropyError {
    fn from(err: getrandom::Error) -> Self {
        Self(err)
    }
}

/// The OS's cryptographically secure source, one system call per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl TryRng for OsEntropy {
    type Error = EntropyError;

    fn try_next_u32(&mut self) -> Result<u32, EntropyError> {
        Ok(getrandom::u32()?)
    }

    fn try_next_u64(&mut self) -> Result<u64, EntropyError> {
        Ok(getrandom::u64()?)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), EntropyError> {
        Ok(getrandom::fill(dst)?)
    }
}

impl TryCryptoRng for OsEntropy {}

/// Incremented in the child by the atfork handler; see the module docs.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER_ATFORK: Once = Once::new();

#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    // Async-signal-safe: one atomic increment, no allocation, no locks.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Installs the atfork handler once per process.
fn watch_forks() {
    REGISTER_ATFORK.call_once(|| {
        #[cfg(unix)]
        {
            // SAFETY: `pthread_atfork` only records the function pointers;
            // the child handler is an `extern "C" fn()` that lives for the
            // whole program and is async-signal-safe, as a handler run after
            // `fork` must be.
            let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
            // Failure (ENOMEM) leaves buffers unable to see forks; there is
            // no safe way to keep buffering then, so stop the process early
            // rather than risk repeating bytes in a child.
            assert_eq!(
                rc, 0,
                "pthread_atfork failed: cannot make buffered entropy fork-safe"
            );
        }
    });
}

/// How many times this process's line has forked (as seen by the atfork
/// handler); it changes in a child after `fork`.
#[must_use]
pub fn fork_generation() -> u64 {
    watch_forks();
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// The fork generation without the one-time handler check: for hot paths
/// whose state was created through [`fork_generation`], which installed it.
#[inline]
pub(crate) fn current_fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// OS entropy read [`BUFFER_LEN`] bytes at a time, fork-safe (see the module
/// docs). Cryptographically as strong as [`OsEntropy`]: every byte is an OS
/// byte, handed out once.
pub struct BufferedEntropy {
    /// Wiped on drop by `Zeroizing`.
    buf: Box<Zeroizing<[u8; BUFFER_LEN]>>,
    /// Next unused byte; `BUFFER_LEN` when empty.
    pos: usize,
    /// The fork generation the buffer was filled in.
    generation: u64,
}

impl BufferedEntropy {
    /// An empty buffer; the first request fills it.
    #[must_use]
    pub fn new() -> Self {
        Self {
            buf: Box::new(Zeroizing::new([0; BUFFER_LEN])),
            pos: BUFFER_LEN,
            generation: fork_generation(),
        }
    }

    /// Drops the buffered bytes if the process forked since they were read.
    #[inline]
    fn check_fork(&mut self) {
        let now = FORK_GENERATION.load(Ordering::Relaxed);
        if now != self.generation {
            self.buf.zeroize();
            self.pos = BUFFER_LEN;
            self.generation = now;
        }
    }

    fn refill(&mut self) -> Result<(), EntropyError> {
        getrandom::fill(&mut self.buf[..])?;
        self.pos = 0;
        Ok(())
    }

    /// Sixteen fresh bytes: the common request (one UUID), kept branch-light.
    ///
    /// # Errors
    /// The OS could not refill the buffer.
    #[inline]
    pub fn take16(&mut self) -> Result<[u8; 16], EntropyError> {
        self.check_fork();
        if BUFFER_LEN - self.pos < 16 {
            // Whatever is left (always a multiple of 16 when only `take16`
            // is used) is discarded rather than stitched.
            self.refill()?;
        }
        let mut out = [0u8; 16];
        let slot = &mut self.buf[self.pos..self.pos + 16];
        out.copy_from_slice(slot);
        slot.fill(0);
        self.pos += 16;
        Ok(out)
    }
}

impl Default for BufferedEntropy {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for BufferedEntropy {
    /// Shows how much is buffered, never the bytes.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BufferedEntropy")
            .field("buffered", &(BUFFER_LEN - self.pos))
            .finish()
    }
}

impl TryRng for BufferedEntropy {
    type Error = EntropyError;

    fn try_next_u32(&mut self) -> Result<u32, EntropyError> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, EntropyError> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), EntropyError> {
        self.check_fork();
        let mut dst = dst;
        while !dst.is_empty() {
            if self.pos == BUFFER_LEN {
                if dst.len() >= BUFFER_LEN {
                    // Large requests go straight to the OS: no copy.
                    getrandom::fill(dst)?;
                    return Ok(());
                }
                self.refill()?;
            }
            let n = dst.len().min(BUFFER_LEN - self.pos);
            let (head, rest) = dst.split_at_mut(n);
            let slot = &mut self.buf[self.pos..self.pos + n];
            head.copy_from_slice(slot);
            slot.fill(0);
            self.pos += n;
            dst = rest;
        }
        Ok(())
    }
}

impl TryCryptoRng for BufferedEntropy {}

std::thread_local! {
    static THREAD_ENTROPY: RefCell<BufferedEntropy> = RefCell::new(BufferedEntropy::new());
}

/// Runs `f` with this thread's buffered entropy. During thread teardown,
/// when the thread-local is gone, `f` gets a fresh buffer instead.
pub fn with_thread_entropy<T>(f: impl FnOnce(&mut BufferedEntropy) -> T) -> T {
    let mut f = Some(f);
    let ran = THREAD_ENTROPY.try_with(|cell| {
        let mut buffer = cell.try_borrow_mut().ok()?;
        f.take().map(|f| f(&mut buffer))
    });
    match (ran, f) {
        (Ok(Some(value)), _) => value,
        // The thread-local is gone (or, impossibly, already borrowed):
        // `f` did not run, so run it on a buffer of its own.
        (_, Some(f)) => f(&mut BufferedEntropy::new()),
        (_, None) => unreachable!("`f` is taken only when it runs to a value"),
    }
}

/// A handle on this thread's [`BufferedEntropy`] that implements the
/// `rand_core` traits, so it can be handed to the core's generators.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadEntropy {
    /// Not `Send`: the handle means "this thread's buffer".
    _not_send: core::marker::PhantomData<*const ()>,
}

impl ThreadEntropy {
    /// The handle for the current thread.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            _not_send: core::marker::PhantomData,
        }
    }
}

impl TryRng for ThreadEntropy {
    type Error = EntropyError;

    fn try_next_u32(&mut self) -> Result<u32, EntropyError> {
        with_thread_entropy(BufferedEntropy::try_next_u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, EntropyError> {
        with_thread_entropy(BufferedEntropy::try_next_u64)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), EntropyError> {
        with_thread_entropy(|e| e.try_fill_bytes(dst))
    }
}

impl TryCryptoRng for ThreadEntropy {}

/// Fills `dst` from this thread's buffered OS entropy.
///
/// # Errors
/// The OS could not supply entropy.
pub fn fill_secure(dst: &mut [u8]) -> Result<(), EntropyError> {
    with_thread_entropy(|e| e.try_fill_bytes(dst))
}

/// A source that cannot fail, for APIs that need `rand_core::CryptoRng`:
/// OS failures abort with a panic, which is what every caller of an
/// infallible source has to accept.
#[derive(Debug, Clone, Copy, Default)]
pub struct InfallibleThreadEntropy(ThreadEntropy);

impl TryRng for InfallibleThreadEntropy {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(expect_entropy(self.0.try_next_u32()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(expect_entropy(self.0.try_next_u64()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        expect_entropy(self.0.try_fill_bytes(dst));
        Ok(())
    }
}

impl TryCryptoRng for InfallibleThreadEntropy {}

/// Unwraps an entropy result; the OS failing to supply randomness leaves no
/// safe way to continue.
#[track_caller]
pub(crate) fn expect_entropy<T>(result: Result<T, EntropyError>) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_entropy_varies() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsEntropy.try_fill_bytes(&mut a).unwrap();
        OsEntropy.try_fill_bytes(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(
            OsEntropy.try_next_u64().unwrap(),
            OsEntropy.try_next_u64().unwrap()
        );
    }

    /// Compiles only for types that wipe themselves on drop.
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}

    #[test]
    fn buffered_bytes_are_handed_out_once_and_cleared() {
        let mut e = BufferedEntropy::new();
        wiped_on_drop(&*e.buf);
        let first = e.take16().unwrap();
        assert_eq!(e.pos, 16);
        assert!(e.buf[..16].iter().all(|&b| b == 0));
        let second = e.take16().unwrap();
        assert_ne!(first, second);
        let mut odd = [0u8; 7];
        e.try_fill_bytes(&mut odd).unwrap();
        assert_eq!(e.pos, 39);
    }

    #[test]
    fn requests_span_refills_and_large_requests_bypass_the_buffer() {
        let mut e = BufferedEntropy::new();
        let mut big = vec![0u8; BUFFER_LEN + 100];
        e.try_fill_bytes(&mut big).unwrap();
        assert_eq!(e.pos, BUFFER_LEN, "bypass leaves the buffer untouched");
        let mut straddle = vec![0u8; BUFFER_LEN - 10];
        e.try_fill_bytes(&mut straddle).unwrap();
        let mut more = vec![0u8; 30];
        e.try_fill_bytes(&mut more).unwrap();
        assert_eq!(e.pos, 20);
        // 30 zero bytes from a real source would be a 2^-240 event.
        assert!(more.iter().any(|&b| b != 0));
        for _ in 0..(BUFFER_LEN / 16 + 3) {
            e.take16().unwrap();
        }
    }

    #[test]
    fn a_new_fork_generation_discards_the_buffer() {
        let mut e = BufferedEntropy::new();
        e.take16().unwrap();
        assert_eq!(e.pos, 16);
        // Simulate what the atfork handler does in a child.
        e.generation = e.generation.wrapping_sub(1);
        e.take16().unwrap();
        assert_eq!(e.pos, 16, "refilled from the OS, not continued");
        assert_eq!(e.generation, fork_generation());
    }

    #[test]
    fn thread_handles_draw_from_the_thread_buffer() {
        let mut t = ThreadEntropy::new();
        let a = t.try_next_u64().unwrap();
        let b = t.try_next_u64().unwrap();
        assert_ne!(a, b);
        let mut x = [0u8; 16];
        fill_secure(&mut x).unwrap();
        let buffered = with_thread_entropy(|e| BUFFER_LEN - e.pos);
        assert_eq!(buffered, BUFFER_LEN - 32);
        let mut i = InfallibleThreadEntropy::default();
        assert_ne!(i.try_next_u32(), i.try_next_u32());
        assert!(format!("{:?}", BufferedEntropy::new()).contains("buffered: 0"));
    }
}

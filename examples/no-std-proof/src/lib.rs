//! Links `mechops-core` into a `#![no_std]` static library with its own panic
//! handler. If anything in the core's dependency graph pulls in `std`, `std`'s
//! own panic handler collides with the one below and the build fails.
//!
//! Each exported function calls into one area of the core's public API so the
//! linker has to keep it: a C host could call these as they stand.
//!
//! Features pick what is linked, as a firmware would: `codec` (default) the
//! frame functions, `portable-atomic` / `critical-section` the atomics that
//! the target lacks. Without them, the pool needs a target with
//! compare-and-swap and the shared v7 generator one with 64-bit atomics; the
//! functions that use them are left out elsewhere.
#![no_std]

#[cfg(feature = "codec")]
use mechops_core::codec::{
    aead::{Key, NonceSource},
    frame::{self, Sealer},
    header::Format,
    inflate,
};
use mechops_core::lru::LruCache;
#[cfg(any(feature = "portable-atomic", target_has_atomic = "ptr"))]
use mechops_core::pool::Pool;
use mechops_core::time::{Precision, Rfc3339Format, Timestamp};
#[cfg(any(feature = "portable-atomic", target_has_atomic = "64"))]
use mechops_core::uuid::SharedV7;
use mechops_core::uuid::{Case, FastV4, Uuid};

/// A lock-free v7 generator in a `static`, shared by every caller.
#[cfg(any(feature = "portable-atomic", target_has_atomic = "64"))]
static V7: SharedV7 = SharedV7::new();

/// A pool in a `static`: four 64-byte scratch buffers, built at compile time.
#[cfg(any(feature = "portable-atomic", target_has_atomic = "ptr"))]
static SCRATCH: Pool<[u8; 64], 4> = Pool::with_reset([[0; 64]; 4], |b| *b = [0; 64]);

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// Builds a byte slice from a C pointer and length; an empty slice for null.
///
/// # Safety
/// `ptr` must be null or valid for reads of `len` bytes for `'a`.
unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() {
        return &[];
    }
    // SAFETY: the caller guarantees `ptr` is valid for `len` bytes.
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

/// Builds a mutable byte slice from a C pointer and length.
///
/// # Safety
/// `ptr` must be null or valid for reads and writes of `len` bytes for `'a`,
/// with no other reference to that memory alive.
unsafe fn output<'a>(ptr: *mut u8, len: usize) -> &'a mut [u8] {
    if ptr.is_null() {
        return &mut [];
    }
    // SAFETY: the caller guarantees exclusive access to `len` bytes at `ptr`.
    unsafe { core::slice::from_raw_parts_mut(ptr, len) }
}

/// Formats Unix milliseconds as RFC 3339 (`Z`, milliseconds) into `out`;
/// returns the length written, or -1.
///
/// # Safety
/// `out` must be valid for writes of `out_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mechops_format_rfc3339(
    millis: i64,
    out: *mut u8,
    out_len: usize,
) -> isize {
    // SAFETY: forwarded from this function's contract.
    let out = unsafe { output(out, out_len) };
    Timestamp::from_unix_millis(millis)
        .ok()
        .and_then(|ts| {
            ts.format_rfc3339(Rfc3339Format::new(Precision::Millis), out)
                .ok()
        })
        .map_or(-1, |n| n as isize)
}

/// Parses RFC 3339 text into Unix milliseconds; returns 0 on success and
/// writes the result to `millis`, or -1 on bad input.
///
/// # Safety
/// `text` must be valid for reads of `len` bytes and `millis` for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mechops_parse_rfc3339(
    text: *const u8,
    len: usize,
    millis: *mut i64,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    let text = unsafe { input(text, len) };
    match Timestamp::parse_rfc3339(text) {
        Ok(ts) if !millis.is_null() => {
            // SAFETY: the caller guarantees `millis` is valid for a write.
            unsafe { *millis = ts.unix_millis() };
            0
        }
        _ => -1,
    }
}

#[cfg(feature = "codec")]
/// Frames `payload` (postcard format), encrypted with `key` and `nonce`;
/// returns the frame length, or -1.
///
/// # Safety
/// Every pointer must be valid for its length (`key` 32 bytes, `nonce` 24).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mechops_seal_frame(
    payload: *const u8,
    payload_len: usize,
    key: *const [u8; 32],
    nonce: *const [u8; 24],
    out: *mut u8,
    out_len: usize,
) -> isize {
    if key.is_null() || nonce.is_null() {
        return -1;
    }
    // SAFETY: forwarded from this function's contract.
    let (payload, out) = unsafe { (input(payload, payload_len), output(out, out_len)) };
    // SAFETY: checked non-null above; the caller guarantees validity.
    let (key, nonce) = unsafe { (Key::from_bytes(&*key), *nonce) };
    let sealer = Sealer::new(&key, NonceSource::Explicit(nonce));
    frame::encode(Format::Postcard, payload, out, Some(sealer)).map_or(-1, |n| n as isize)
}

#[cfg(feature = "codec")]
/// Verifies and decrypts a frame in place; returns the payload length (the
/// payload then starts at `payload_offset`), or -1 on any failure.
///
/// # Safety
/// `frame` must be valid for reads and writes of `len` bytes, `key` for 32
/// bytes and `payload_offset` for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mechops_open_frame(
    frame_ptr: *mut u8,
    len: usize,
    key: *const [u8; 32],
    payload_offset: *mut usize,
) -> isize {
    if key.is_null() || payload_offset.is_null() {
        return -1;
    }
    // SAFETY: forwarded from this function's contract.
    let buf = unsafe { output(frame_ptr, len) };
    let base = buf.as_ptr() as usize;
    // SAFETY: checked non-null above; the caller guarantees validity.
    let key = Key::from_bytes(unsafe { &*key });
    match frame::decode(buf, Some(&key), &mut []) {
        Ok(decoded) => {
            // SAFETY: checked non-null above; the caller guarantees validity.
            unsafe { *payload_offset = decoded.payload.as_ptr() as usize - base };
            decoded.payload.len() as isize
        }
        Err(_) => -1,
    }
}

#[cfg(feature = "codec")]
/// Inflates raw DEFLATE into `out`, refusing output beyond `out_len`;
/// returns the length, or -1.
///
/// # Safety
/// `data` must be valid for reads of `len` bytes, `out` for writes of `out_len`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mechops_inflate(
    data: *const u8,
    len: usize,
    out: *mut u8,
    out_len: usize,
) -> isize {
    // SAFETY: forwarded from this function's contract.
    let (data, out) = unsafe { (input(data, len), output(out, out_len)) };
    inflate::inflate(data, out).map_or(-1, |n| n as isize)
}

#[cfg(any(feature = "portable-atomic", target_has_atomic = "ptr"))]
/// Borrows a scratch buffer from the static pool, writes `value` into it and
/// returns its first byte plus the number of buffers now in use; -1 when the
/// pool is empty.
#[unsafe(no_mangle)]
pub extern "C" fn mechops_pool_roundtrip(value: u8) -> i32 {
    let Some(mut guard) = SCRATCH.try_acquire() else {
        return -1;
    };
    guard[0] = value;
    i32::from(guard[0]) + SCRATCH.stats().in_use as i32
}

/// Runs `keys` through a 16-entry LRU cache and returns the hit count.
///
/// # Safety
/// `keys` must be valid for reads of `len` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mechops_lru_hits(keys: *const u32, len: usize) -> u64 {
    if keys.is_null() {
        return 0;
    }
    // SAFETY: the caller guarantees `keys` is valid for `len` values.
    let keys = unsafe { core::slice::from_raw_parts(keys, len) };
    let mut cache: LruCache<u32, u32, 16> = LruCache::new();
    for &k in keys {
        if cache.get(&k).is_none() {
            cache.insert(k, k);
        }
    }
    cache.stats().hits
}

#[cfg(any(feature = "portable-atomic", target_has_atomic = "64"))]
/// Writes a v7 UUID for `now_ms` (random bits from `random`) into `out` as
/// 16 bytes; returns 0, or -1 when `now_ms` is out of range.
///
/// # Safety
/// `out` must be valid for writes of 16 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mechops_uuid_v7(now_ms: u64, random: u64, out: *mut [u8; 16]) -> i32 {
    if out.is_null() {
        return -1;
    }
    match V7.generate_with(now_ms, random) {
        Ok(id) => {
            // SAFETY: checked non-null; the caller guarantees 16 writable bytes.
            unsafe { *out = *id.as_bytes() };
            0
        }
        Err(_) => -1,
    }
}

/// Writes a fast v4 UUID from `seed` as 36 hyphenated characters into `out`
/// and parses it back; returns 1 when the round trip holds.
///
/// # Safety
/// `seed` must be valid for reads of 32 bytes and `out` for writes of 36.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mechops_uuid_fast(seed: *const [u8; 32], out: *mut [u8; 36]) -> i32 {
    if seed.is_null() || out.is_null() {
        return -1;
    }
    // SAFETY: checked non-null; the caller guarantees validity.
    let id = FastV4::from_seed(unsafe { *seed }).generate();
    let text = id.hyphenated(Case::Lower);
    // SAFETY: checked non-null; the caller guarantees 36 writable bytes.
    let out = unsafe { &mut *out };
    out.copy_from_slice(text.as_bytes());
    i32::from(Uuid::parse_ascii(out) == Ok(id))
}

//! A decompression bomb is refused at the limit, and peak memory stays under
//! the limit plus 16 MiB.
//!
//! The counting allocator below is this test binary's global allocator; the
//! file holds a single test so nothing else allocates while it measures.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use std::alloc::System;

use mechops_alloc::serialize::{
    Compression, DEFAULT_MAX_DECODED_SIZE, Encryption, Error, Format, FrameError, FrameHeader,
    FrameSpec, Options, deserialize,
};
use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's layout and only
// adds bookkeeping on atomics, so System's guarantees carry over unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout contract as the caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from this allocator with this layout.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: usize = 1 << 20;

/// Raw DEFLATE of 1 MiB of zeros, ending on a byte boundary (sync flush) and
/// without a final block, so copies can be chained.
fn zero_chunk() -> Vec<u8> {
    let mut compressor = CompressorOxide::new(create_comp_flags_from_zip_params(9, -15, 0));
    let input = vec![0u8; MIB];
    let mut out = vec![0u8; 64 * 1024];
    let (status, read, written) = compress(&mut compressor, &input, &mut out, TDEFLFlush::Sync);
    assert_eq!(status, TDEFLStatus::Okay);
    assert_eq!(read, MIB);
    out.truncate(written);
    out
}

#[test]
fn bomb_is_refused_at_the_limit_within_memory_bound() {
    let chunk = zero_chunk();
    // The chunk followed by an empty final stored block inflates to 1 MiB.
    let mut one = chunk.clone();
    one.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    assert_eq!(
        miniz_oxide::inflate::decompress_to_vec(&one).unwrap().len(),
        MIB
    );

    // 4096 chunks: 4 GiB of zeros from a few MiB of input.
    let copies = 4096;
    let mut bomb = Vec::with_capacity(chunk.len() * copies + 5);
    for _ in 0..copies {
        bomb.extend_from_slice(&chunk);
    }
    bomb.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    assert!(bomb.len() < 8 * MIB, "bomb is {} bytes", bomb.len());

    let frame_declaring = |original: usize| {
        let spec = FrameSpec::new(Format::Postcard, Compression::Deflate, Encryption::None);
        let header = FrameHeader::new(spec, original, bomb.len(), 0).unwrap();
        let mut frame = header.to_bytes().to_vec();
        frame.extend_from_slice(&bomb);
        frame
    };
    let options = Options::default();
    assert_eq!(options.max_decoded_size, DEFAULT_MAX_DECODED_SIZE);

    // 1. The header claims the truth (more than the limit): refused before
    //    any buffer for the payload exists.
    let honest = frame_declaring(u32::MAX as usize);
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let err = deserialize::<Vec<u8>>(&honest, &options).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                limit: DEFAULT_MAX_DECODED_SIZE,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        PEAK.load(Ordering::SeqCst) - before < MIB,
        "nothing allocated for the payload"
    );
    drop(honest);

    // 2. The header lies (declares exactly the limit): inflation stops at the
    //    limit with an error, never past it.
    let lying = frame_declaring(DEFAULT_MAX_DECODED_SIZE);
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let err = deserialize::<Vec<u8>>(&lying, &options).unwrap_err();
    assert_eq!(
        err,
        // Inflation stopped at the declared size, which is the limit.
        Error::Frame(FrameError::OriginalSizeMismatch {
            declared: DEFAULT_MAX_DECODED_SIZE as u32
        })
    );
    let peak = PEAK.load(Ordering::SeqCst) - before;
    assert!(
        peak < DEFAULT_MAX_DECODED_SIZE + 16 * MIB,
        "peak {peak} bytes above the limit plus 16 MiB"
    );
}

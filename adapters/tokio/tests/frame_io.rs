//! Frames over `tokio::io::duplex`: splitting, corruption, limits, the end
//! of the stream, and futures dropped mid-way.

use core::time::Duration;
use std::sync::Arc;

use mechops_core::codec::accumulator::StreamError;
use mechops_core::codec::frame;
use mechops_core::codec::header::{Format, FrameError};
use mechops_tokio::frame_io::{FrameReadError, FrameReader, FrameWriteError, FrameWriter};
use proptest::prelude::*;
use tokio::io::{AsyncWriteExt, DuplexStream, duplex};

fn frame_bytes(payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; payload.len() + 28];
    let n = frame::encode(Format::Postcard, payload, &mut buf, None).unwrap();
    buf.truncate(n);
    buf
}

fn payload(f: &[u8]) -> Vec<u8> {
    frame::parse(f).unwrap().payload(&mut []).unwrap().to_vec()
}

/// The next frame's payload, `None` at the end of the stream.
async fn next(reader: &mut FrameReader<DuplexStream>) -> Result<Option<Vec<u8>>, FrameReadError> {
    Ok(reader.read_frame().await?.map(|f| payload(f)))
}

/// `future`'s output; in paused time, a future that would wait for ever
/// (a lost byte) fails the test at once instead of hanging it.
async fn soon<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(1), future)
        .await
        .expect("finished in time")
}

fn stream_error(result: Result<Option<Vec<u8>>, FrameReadError>) -> StreamError {
    match result {
        Err(FrameReadError::Stream(e)) => e,
        other => panic!("expected a stream error, got {other:?}"),
    }
}

#[tokio::test]
async fn frames_of_many_sizes_cross_a_narrow_pipe() {
    // A 7-byte pipe forces partial writes, pending rests and short reads.
    let (a, b) = duplex(7);
    let payloads: Vec<Vec<u8>> = (0..40)
        .map(|i| (0..i * 13).map(|b| (b * 31 + i) as u8).collect())
        .collect();
    let sent = payloads.clone();
    let writer = tokio::spawn(async move {
        let mut writer = FrameWriter::new(a, 1024);
        for p in &sent {
            writer.write_frame(&frame_bytes(p)).await.unwrap();
            assert_eq!(writer.pending(), 0);
        }
        writer.shutdown().await.unwrap();
    });
    let mut reader = FrameReader::new(b, 1024);
    let mut got = Vec::new();
    while let Some(p) = next(&mut reader).await.unwrap() {
        got.push(p);
    }
    assert_eq!(got, payloads);
    assert_eq!(reader.buffered(), 0);
    writer.await.unwrap();
}

#[tokio::test]
async fn reads_split_byte_by_byte() {
    // A one-byte pipe: every read returns a single byte.
    let (mut a, b) = duplex(1);
    let mut wire = frame_bytes(b"first");
    wire.extend(frame_bytes(b"second"));
    let feeder = tokio::spawn(async move {
        for byte in wire {
            a.write_all(&[byte]).await.unwrap();
        }
    });
    let mut reader = FrameReader::new(b, 64);
    assert_eq!(next(&mut reader).await.unwrap(), Some(b"first".to_vec()));
    assert_eq!(next(&mut reader).await.unwrap(), Some(b"second".to_vec()));
    assert_eq!(next(&mut reader).await.unwrap(), None);
    feeder.await.unwrap();
}

#[tokio::test]
async fn corrupt_frames_are_reported_and_the_reader_resynchronises() {
    let mut wire = frame_bytes(b"one");
    wire.extend_from_slice(b"xyz");
    let bad_at = wire.len();
    wire.extend(frame_bytes(b"two"));
    wire[bad_at + 13] ^= 0x01; // the body length, under the header CRC
    wire.extend(frame_bytes(b"three"));
    let (mut a, b) = duplex(wire.len());
    a.write_all(&wire).await.unwrap();
    drop(a);

    let mut reader = FrameReader::new(b, 64);
    assert_eq!(next(&mut reader).await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(
        stream_error(next(&mut reader).await),
        StreamError::Garbage { skipped: 3 }
    );
    assert_eq!(
        stream_error(next(&mut reader).await),
        StreamError::Header(FrameError::HeaderChecksumMismatch)
    );
    assert_eq!(next(&mut reader).await.unwrap(), Some(b"three".to_vec()));
    assert_eq!(next(&mut reader).await.unwrap(), None);
}

#[tokio::test]
async fn oversize_frames_are_skipped_by_the_reader_and_refused_by_the_writer() {
    let big = frame_bytes(&[7u8; 200]);
    let (a, b) = duplex(1024);
    let mut writer = FrameWriter::new(a, 64);
    let err = writer.write_frame(&big).await.unwrap_err();
    assert!(
        matches!(
            err,
            FrameWriteError::TooLarge {
                len: 228,
                limit: 64
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "frame of 228 bytes exceeds the frame writer's limit of 64 bytes"
    );
    assert_eq!(writer.pending(), 0);

    // The same frame through a raw write reaches a reader with a small
    // buffer, which skips it without storing it.
    let mut raw = writer.into_inner();
    raw.write_all(&big).await.unwrap();
    raw.write_all(&frame_bytes(b"small")).await.unwrap();
    drop(raw);
    let mut reader = FrameReader::new(b, 64);
    assert_eq!(reader.max_frame_len(), 64);
    assert_eq!(
        stream_error(next(&mut reader).await),
        StreamError::FrameTooLarge {
            len: 228,
            capacity: 64
        }
    );
    assert_eq!(next(&mut reader).await.unwrap(), Some(b"small".to_vec()));
    assert_eq!(next(&mut reader).await.unwrap(), None);
}

#[tokio::test]
async fn the_writer_refuses_bytes_that_are_not_one_frame() {
    let (a, _b) = duplex(1024);
    let mut writer = FrameWriter::new(a, 1024);
    let f = frame_bytes(b"payload");

    let mut two = f.clone();
    two.extend_from_slice(&f);
    let err = writer.write_frame(&two).await.unwrap_err();
    assert!(
        matches!(
            err,
            FrameWriteError::NotOneFrame {
                len: 70,
                declared: 35
            }
        ),
        "{err}"
    );
    let err = writer.write_frame(&f[..30]).await.unwrap_err();
    assert!(matches!(
        err,
        FrameWriteError::NotOneFrame {
            len: 30,
            declared: 35
        }
    ));
    let err = writer
        .write_frame(b"MOPX and more bytes than a header")
        .await
        .unwrap_err();
    assert!(
        matches!(err, FrameWriteError::Header(FrameError::BadMagic)),
        "{err}"
    );
    let err = writer.write_frame(&[]).await.unwrap_err();
    assert!(
        matches!(err, FrameWriteError::Header(FrameError::Truncated { .. })),
        "{err}"
    );
    assert_eq!(writer.pending(), 0);
}

#[tokio::test]
async fn the_end_of_the_stream_inside_a_frame_is_a_clear_error() {
    let f = frame_bytes(b"payload");
    for (cut, needed) in [(10, 28), (30, 35)] {
        let (mut a, b) = duplex(64);
        a.write_all(&f[..cut]).await.unwrap();
        drop(a);
        let mut reader = FrameReader::new(b, 64);
        let err = next(&mut reader).await.unwrap_err();
        assert!(
            matches!(
                err,
                FrameReadError::Stream(StreamError::Truncated { needed: n, got }) if n == needed && got == cut
            ),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            format!("stream ended inside a frame: {cut} of {needed} bytes")
        );
        // Reported once; then the stream has simply ended.
        assert_eq!(next(&mut reader).await.unwrap(), None);
    }
    // Trailing garbage is reported at the end too.
    let (mut a, b) = duplex(64);
    a.write_all(&f).await.unwrap();
    a.write_all(b"junk").await.unwrap();
    drop(a);
    let mut reader = FrameReader::new(b, 64);
    assert_eq!(next(&mut reader).await.unwrap(), Some(b"payload".to_vec()));
    assert_eq!(
        stream_error(next(&mut reader).await),
        StreamError::Garbage { skipped: 4 }
    );
    assert_eq!(next(&mut reader).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_read_dropped_mid_frame_loses_nothing() {
    let f = frame_bytes(b"half and half");
    let (mut a, b) = duplex(64);
    let mut reader = FrameReader::new(b, 64);

    a.write_all(&f[..20]).await.unwrap();
    let timed_out = tokio::time::timeout(Duration::from_secs(1), reader.read_frame()).await;
    assert!(timed_out.is_err(), "no frame can be complete yet");
    assert_eq!(reader.buffered(), 20);

    a.write_all(&f[20..]).await.unwrap();
    let got = soon(next(&mut reader)).await.unwrap();
    assert_eq!(got, Some(b"half and half".to_vec()));
}

#[tokio::test(start_paused = true)]
async fn a_read_in_an_aborted_task_loses_nothing() {
    let f = frame_bytes(b"survives abort");
    let (mut a, b) = duplex(64);
    let reader = Arc::new(tokio::sync::Mutex::new(FrameReader::new(b, 64)));

    a.write_all(&f[..33]).await.unwrap();
    let task = {
        let reader = Arc::clone(&reader);
        tokio::spawn(async move { reader.lock().await.read_frame().await.map(|f| f.is_some()) })
    };
    // Let the task read what there is and wait for the rest.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(reader.try_lock().is_err(), "the task holds the reader");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    let mut reader = reader.lock().await;
    assert_eq!(reader.buffered(), 33);
    a.write_all(&f[33..]).await.unwrap();
    assert_eq!(
        soon(next(&mut reader)).await.unwrap(),
        Some(b"survives abort".to_vec())
    );
}

#[tokio::test(start_paused = true)]
async fn a_write_dropped_mid_frame_keeps_the_wire_aligned() {
    let first = frame_bytes(&[1u8; 100]);
    let second = frame_bytes(b"never sent");
    let third = frame_bytes(b"third");
    // Nobody reads yet: the pipe takes 16 bytes, then writes wait.
    let (a, b) = duplex(16);
    let mut writer = FrameWriter::new(a, 1024);

    let timed_out = tokio::time::timeout(Duration::from_secs(1), writer.write_frame(&first)).await;
    assert!(timed_out.is_err());
    // Accepted whole: the pipe took 16 bytes, the writer keeps the rest.
    assert_eq!(writer.pending(), first.len() - 16);

    // Dropped while the first frame's rest waits: the second is not taken.
    let timed_out = tokio::time::timeout(Duration::from_secs(1), writer.write_frame(&second)).await;
    assert!(timed_out.is_err());
    assert_eq!(writer.pending(), first.len() - 16);

    let mut reader = FrameReader::new(b, 1024);
    let reading = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(p) = next(&mut reader).await.unwrap() {
            got.push(p);
        }
        got
    });
    soon(writer.write_frame(&third)).await.unwrap();
    assert_eq!(writer.pending(), 0);
    soon(writer.shutdown()).await.unwrap();
    assert_eq!(
        soon(reading).await.unwrap(),
        [vec![1u8; 100], b"third".to_vec()]
    );
}

#[tokio::test(start_paused = true)]
async fn flush_finishes_a_cancelled_frame() {
    let f = frame_bytes(&[9u8; 60]);
    let (a, b) = duplex(8);
    let mut writer = FrameWriter::new(a, 1024);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), writer.write_frame(&f))
            .await
            .is_err()
    );
    assert_eq!(writer.pending(), f.len() - 8);
    // A flush cut short itself resumes where it stopped.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), writer.flush())
            .await
            .is_err()
    );
    let mut reader = FrameReader::new(b, 1024);
    let reading = tokio::spawn(async move { next(&mut reader).await.unwrap() });
    soon(writer.flush()).await.unwrap();
    assert_eq!(writer.pending(), 0);
    assert_eq!(soon(reading).await.unwrap(), Some(vec![9u8; 60]));
}

#[tokio::test(start_paused = true)]
async fn a_write_in_an_aborted_task_keeps_the_rest_of_its_frame() {
    let f = frame_bytes(&[3u8; 80]);
    let (a, b) = duplex(10);
    let writer = Arc::new(tokio::sync::Mutex::new(FrameWriter::new(a, 1024)));
    let task = {
        let (writer, f) = (Arc::clone(&writer), f.clone());
        tokio::spawn(async move { writer.lock().await.write_frame(&f).await.is_ok() })
    };
    // The pipe takes 10 bytes; the task then waits for room.
    tokio::time::sleep(Duration::from_millis(10)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    let mut writer = writer.lock().await;
    assert_eq!(writer.pending(), f.len() - 10);
    let mut reader = FrameReader::new(b, 1024);
    let reading = tokio::spawn(async move { next(&mut reader).await.unwrap() });
    soon(writer.shutdown()).await.unwrap();
    assert_eq!(writer.pending(), 0);
    assert_eq!(soon(reading).await.unwrap(), Some(vec![3u8; 80]));
}

/// One step of a writer or reader schedule: how long the timeout around a
/// call is, and how long to pause afterwards.
#[derive(Clone, Copy, Debug)]
struct Step {
    timeout_ms: u64,
    pause_ms: u64,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (1u64..5, 0u64..5).prop_map(|(timeout_ms, pause_ms)| Step {
            timeout_ms,
            pause_ms,
        }),
        1..16,
    )
}

/// Writes every frame, each under a timeout; after a cancelled write it
/// pauses (leaving part of a frame on the wire) and then finishes the frame
/// with `flush`, itself under timeouts, so the next `write_frame` has nothing
/// pending and takes its frame on its first poll.
async fn write_all_cancelling(
    mut writer: FrameWriter<DuplexStream>,
    frames: Vec<Vec<u8>>,
    plan: Vec<Step>,
) -> usize {
    let mut cancelled = 0;
    for (f, step) in frames.iter().zip(plan.iter().cycle()) {
        let write = writer.write_frame(f);
        if tokio::time::timeout(Duration::from_millis(step.timeout_ms), write)
            .await
            .is_err()
        {
            cancelled += 1;
            tokio::time::sleep(Duration::from_millis(step.pause_ms)).await;
            while tokio::time::timeout(Duration::from_millis(1), writer.flush())
                .await
                .is_err()
            {}
        }
    }
    writer.shutdown().await.unwrap();
    cancelled
}

/// Reads until the end of the stream, pausing between reads and giving up
/// on each read after its timeout.
async fn read_all_cancelling(
    mut reader: FrameReader<DuplexStream>,
    plan: Vec<Step>,
) -> (Vec<Vec<u8>>, usize) {
    let (mut got, mut cancelled) = (Vec::new(), 0);
    for step in plan.iter().cycle() {
        tokio::time::sleep(Duration::from_millis(step.pause_ms)).await;
        match tokio::time::timeout(Duration::from_millis(step.timeout_ms), next(&mut reader)).await
        {
            Err(_) => cancelled += 1,
            Ok(Ok(Some(p))) => got.push(p),
            Ok(Ok(None)) => break,
            Ok(Err(e)) => panic!("{e}"),
        }
    }
    (got, cancelled)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Reads and writes cancelled at random points, in virtual time, never
    /// lose, duplicate, reorder or corrupt a frame.
    #[test]
    fn cancelled_reads_and_writes_deliver_every_frame_in_order(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..20),
        pipe in 1usize..64,
        write_plan in steps(),
        read_plan in steps(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let frames: Vec<Vec<u8>> = payloads.iter().map(|p| frame_bytes(p)).collect();
        let (got, _) = runtime.block_on(async move {
            let (a, b) = duplex(pipe);
            let writing = tokio::spawn(write_all_cancelling(FrameWriter::new(a, 1024), frames, write_plan));
            let read = read_all_cancelling(FrameReader::new(b, 1024), read_plan).await;
            writing.await.unwrap();
            read
        });
        prop_assert_eq!(got, payloads);
    }
}

#[tokio::test(start_paused = true)]
async fn debug_output_shows_fill_levels_not_buffers() {
    let (mut a, b) = duplex(64);
    a.write_all(&frame_bytes(b"partial")[..12]).await.unwrap();
    let mut reader = FrameReader::new(b, 1 << 20);
    let read = tokio::time::timeout(Duration::from_millis(5), reader.read_frame()).await;
    assert!(read.is_err());
    let shown = format!("{reader:?}");
    // The reader's own fields are fill levels only; what comes before them
    // is the wrapped stream's own `Debug`, whatever tokio prints for it.
    let own = shown
        .rfind("max_frame_len")
        .map(|at| &shown[at..])
        .unwrap_or_default();
    assert_eq!(own, "max_frame_len: 1048576, buffered: 12 }", "{shown}");
    let writer = FrameWriter::new(a, 1024);
    assert!(format!("{writer:?}").contains("max_frame_len: 1024, pending: 0"));
}

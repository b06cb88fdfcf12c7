//! Frames written to and read back from a real file through `std::io`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};

use mechops_std::codec::{
    CompressionPolicy, Error, Format, FrameError, FrameIoError, Key, Options, deserialize,
    read_frame, serialize, write_frame,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Event {
    seq: u32,
    kind: String,
    payload: Vec<u16>,
}

fn events() -> Vec<Event> {
    (0..12)
        .map(|seq| Event {
            seq,
            kind: format!("kind-{}", seq % 3),
            payload: (0..seq * 50).map(|i| (i % 7) as u16).collect(),
        })
        .collect()
}

#[test]
fn mixed_frames_round_trip_through_a_file() {
    let key = Key::from_bytes(&[0x33; 32]);
    let path = std::env::temp_dir().join(format!("mechops-codec-stream-{}", std::process::id()));
    let mut writer = BufWriter::new(File::create(&path).unwrap());
    for (i, event) in events().iter().enumerate() {
        let mut options =
            Options::new(Format::ALL[i % 4]).compression(CompressionPolicy::Auto { threshold: 64 });
        if i % 2 == 1 {
            options = options.key(key.clone());
        }
        write_frame(&mut writer, &serialize(event, &options).unwrap().data).unwrap();
    }
    // A torn last frame, as after a crash mid-write.
    let torn = serialize(&events()[0], &Options::default()).unwrap().data;
    writer.write_all(&torn[..torn.len() - 3]).unwrap();
    writer.flush().unwrap();
    drop(writer);

    let mut file = File::open(&path).unwrap();
    let mut reader = BufReader::new(&mut file);
    for (i, expected) in events().iter().enumerate() {
        let frame = read_frame(&mut reader, 1 << 20).unwrap().expect("a frame");
        let mut options = Options::default();
        if i % 2 == 1 {
            options = options.key(key.clone());
        }
        let event: Event = deserialize(&frame, &options).unwrap();
        assert_eq!(&event, expected);
    }
    let err = read_frame(&mut reader, 1 << 20).unwrap_err();
    assert!(matches!(err, FrameIoError::Truncated { .. }), "{err}");

    // A limit below the first frame's declared size is refused from its header alone.
    file.seek(SeekFrom::Start(0)).unwrap();
    let err = read_frame(&mut file, 4).unwrap_err();
    assert!(
        matches!(err, FrameIoError::Frame(Error::TooLarge { limit: 4, .. })),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn corrupt_header_on_the_stream_is_named() {
    let mut frame = serialize(&events()[3], &Options::default()).unwrap().data;
    frame[13] ^= 0x40; // body_len
    let err = read_frame(frame.as_slice(), 1 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            FrameIoError::Frame(Error::Frame(FrameError::HeaderChecksumMismatch))
        ),
        "{err}"
    );
}

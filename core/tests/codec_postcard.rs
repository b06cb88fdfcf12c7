//! postcard round trips through slices, `embedded_io` writers and readers,
//! and frames, against arbitrary values.

use embedded_io::{ErrorKind, ErrorType, Read, Write};
use mechops_core::codec::aead::{Key, NonceSource};
use mechops_core::codec::frame::Sealer;
use mechops_core::codec::postcard::{
    PostcardError, from_frame, from_reader, from_slice, serialized_size, take_from_slice, to_frame,
    to_slice, to_writer,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Command {
    Stop,
    Move { x: i32, y: i32 },
    Label(u8, bool),
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Record<'a> {
    id: u64,
    offset: i16,
    ratio: f64,
    name: &'a str,
    blob: &'a [u8],
    cmd: Command,
    maybe: Option<u32>,
    pairs: [(u8, char); 2],
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct OwnedRecord {
    id: u64,
    offset: i16,
    cmd: Command,
    maybe: Option<u32>,
    pairs: [(u8, char); 2],
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Stop),
        (any::<i32>(), any::<i32>()).prop_map(|(x, y)| Command::Move { x, y }),
        (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Command::Label(a, b)),
    ]
}

/// A growable writer that accepts at most `step` bytes per call.
struct VecWriter {
    data: Vec<u8>,
    step: usize,
}

impl ErrorType for VecWriter {
    type Error = ErrorKind;
}

impl Write for VecWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let n = buf.len().min(self.step);
        self.data.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// A reader that hands out at most `step` bytes per call.
struct StepReader<'a> {
    data: &'a [u8],
    step: usize,
}

impl ErrorType for StepReader<'_> {
    type Error = ErrorKind;
}

impl Read for StepReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let n = buf.len().min(self.data.len()).min(self.step);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn slice_and_frame_round_trip(
        id in any::<u64>(),
        offset in any::<i16>(),
        ratio in any::<f64>().prop_filter("comparable", |r| !r.is_nan()),
        name in "\\PC{0,40}",
        blob in prop::collection::vec(any::<u8>(), 0..200),
        cmd in command(),
        maybe in any::<Option<u32>>(),
        pairs in any::<[(u8, char); 2]>(),
        sealed in any::<bool>(),
    ) {
        let rec = Record { id, offset, ratio, name: &name, blob: &blob, cmd, maybe, pairs };
        let size = serialized_size(&rec).unwrap();
        let mut buf = vec![0u8; size + 100];
        let n = to_slice(&rec, &mut buf).unwrap();
        prop_assert_eq!(n, size);
        prop_assert_eq!(from_slice::<Record<'_>>(&buf[..n]).unwrap(), rec.clone());
        let (again, rest) = take_from_slice::<Record<'_>>(&buf[..n + 3]).unwrap();
        prop_assert_eq!(again, rec.clone());
        prop_assert_eq!(rest.len(), 3);
        prop_assert_eq!(to_slice(&rec, &mut buf[..n - 1]), Err(PostcardError::BufferTooSmall { needed: n }));

        let key = Key::from_bytes(&[0x33; 32]);
        let mut frame = vec![0u8; size + 72];
        let sealer = sealed.then(|| Sealer::new(&key, NonceSource::Explicit([id as u8; 24])));
        let len = to_frame(&rec, &mut frame, sealer).unwrap();
        let k = sealed.then_some(&key);
        let (decoded, used) = from_frame::<Record<'_>>(&mut frame, k, &mut []).unwrap();
        prop_assert_eq!(decoded, rec);
        prop_assert_eq!(used, len);
    }

    #[test]
    fn writer_and_reader_round_trip_a_sequence(
        values in prop::collection::vec(
            (any::<u64>(), any::<i16>(), command(), any::<Option<u32>>(), any::<[(u8, char); 2]>()),
            1..6,
        ),
        wstep in 1usize..50,
        rstep in 1usize..50,
    ) {
        let values: Vec<OwnedRecord> = values
            .into_iter()
            .map(|(id, offset, cmd, maybe, pairs)| OwnedRecord { id, offset, cmd, maybe, pairs })
            .collect();
        let mut w = VecWriter { data: Vec::new(), step: wstep };
        let mut total = 0;
        for v in &values {
            total += to_writer(v, &mut w).unwrap();
        }
        prop_assert_eq!(total, w.data.len());
        let mut r = StepReader { data: &w.data, step: rstep };
        let mut scratch = [0u8; 16];
        for v in &values {
            prop_assert_eq!(&from_reader::<OwnedRecord, _>(&mut r, &mut scratch).unwrap(), v);
        }
        prop_assert!(r.data.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = from_slice::<Record<'_>>(&bytes);
        let mut r = StepReader { data: &bytes, step: 7 };
        let _ = from_reader::<OwnedRecord, _>(&mut r, &mut [0u8; 8]);
    }
}

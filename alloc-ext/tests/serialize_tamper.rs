//! Every single-bit flip and every truncation of a sample encrypted frame is
//! rejected, and so is a wrong key.

mod common;

use common::Seeded;

use mechops_alloc::serialize::{
    CompressionPolicy, Error, Format, FrameError, Key, Options, deserialize, serialize,
    serialize_with_rng,
};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Job {
    id: u64,
    name: String,
    args: Vec<String>,
}

fn job() -> Job {
    Job {
        id: 77,
        name: "rotate-logs".into(),
        args: (0..40).map(|i| format!("--path=/var/log/app{i}")).collect(),
    }
}

fn assert_every_flip_and_cut_rejected(frame: &[u8], options: &Options) {
    assert_eq!(deserialize::<Job>(frame, options).unwrap(), job());
    for bit in 0..frame.len() * 8 {
        let mut bad = frame.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(
            deserialize::<Job>(&bad, options).is_err(),
            "bit {bit} accepted"
        );
    }
    for len in 0..frame.len() {
        assert!(
            deserialize::<Job>(&frame[..len], options).is_err(),
            "length {len} accepted"
        );
    }
}

#[test]
fn encrypted_frames_reject_every_flip_truncation_and_wrong_key() {
    let key = Key::from_bytes(&[0x5a; 32]);
    let mut rng = Seeded(Xoshiro256PlusPlus::seed_from_u64(1));
    for policy in [CompressionPolicy::Never, CompressionPolicy::Always] {
        let options = Options::new(Format::Postcard)
            .compression(policy)
            .key(key.clone());
        let frame = serialize_with_rng(&job(), &options, &mut rng).unwrap().data;
        assert_every_flip_and_cut_rejected(&frame, &options);
        let mut wrong_bytes = [0x5a; 32];
        wrong_bytes[31] ^= 1;
        let wrong = options.clone().key(Key::from_bytes(&wrong_bytes));
        assert_eq!(
            deserialize::<Job>(&frame, &wrong),
            Err(Error::Frame(FrameError::AuthenticationFailed))
        );
    }
}

#[test]
fn plain_stored_frames_reject_every_flip_and_truncation() {
    // Without encryption the CRC-32 catches every single-bit error in the payload.
    for format in [Format::Postcard, Format::Json] {
        let options = Options::new(format).compression(CompressionPolicy::Never);
        let frame = serialize(&job(), &options).unwrap().data;
        assert_every_flip_and_cut_rejected(&frame, &options);
    }
}

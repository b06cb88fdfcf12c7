//! Loom models of the UUID generators' shared state: the lock-free shared v7
//! generator and the hybrid generator's mode switch.
#![cfg(loom)]

use core::convert::Infallible;
use std::vec::Vec;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use mechops_core::uuid::{FastV4, HybridGenerator, Mode, SecureV4, SharedV7, Uuid};
use rand_core::{TryCryptoRng, TryRng};

/// Each thread's clock readings: thread 1 sees the clock step backwards.
const CLOCKS: [[u64; 2]; 3] = [[10, 10], [11, 9], [10, 12]];

fn run_shared_v7(threads: usize) {
    loom::model(move || {
        let generator = Arc::new(SharedV7::new());
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let generator = Arc::clone(&generator);
                thread::spawn(move || {
                    CLOCKS[t]
                        .iter()
                        .enumerate()
                        .map(|(i, &now)| {
                            // Distinct random words, so equal UUIDs could
                            // only come from equal states.
                            let random = (t as u64) << 8 | i as u64;
                            generator.generate_with(now, random).unwrap()
                        })
                        .collect::<Vec<Uuid>>()
                })
            })
            .collect();
        let per_thread: Vec<Vec<Uuid>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for ids in &per_thread {
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "per-thread order: {ids:?}"
            );
        }
        // Uniqueness of the generator states, not just of the UUIDs: the
        // millisecond and the 16-bit sequence must differ between any two
        // calls.
        let mut states: Vec<u64> = per_thread.iter().flatten().map(|u| state_of(*u)).collect();
        let mut all: Vec<Uuid> = per_thread.into_iter().flatten().collect();
        let total = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), total, "duplicate UUIDs");
        states.sort_unstable();
        states.dedup();
        assert_eq!(states.len(), total, "duplicate generator states");
    });
}

/// The (millisecond, sequence) state a shared-v7 UUID was built from.
fn state_of(uuid: Uuid) -> u64 {
    let v = uuid.as_u128();
    let ms = (v >> 80) as u64;
    let seq_high = (v >> 64) as u64 & 0xFFF;
    let seq_low = (v >> 58) as u64 & 0xF;
    (ms << 16) | (seq_high << 4) | seq_low
}

#[test]
fn shared_v7_two_threads() {
    run_shared_v7(2);
}

#[test]
fn shared_v7_three_threads() {
    run_shared_v7(3);
}

/// A "secure" source whose UUIDs are recognisable: every byte 0xAA.
struct Marker;

impl TryRng for Marker {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(0xAAAA_AAAA)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(0xAAAA_AAAA_AAAA_AAAA)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.fill(0xAA);
        Ok(())
    }
}

impl TryCryptoRng for Marker {}

const SEED: [u8; 32] = [5; 32];

#[test]
fn hybrid_switch_is_seen_after_synchronisation() {
    loom::model(|| {
        let hybrid = Arc::new(HybridGenerator::new(Mode::Secure));
        let switched = Arc::new(AtomicBool::new(false));
        let switcher = {
            let (hybrid, switched) = (Arc::clone(&hybrid), Arc::clone(&switched));
            thread::spawn(move || {
                hybrid.set_use_fast_mode(true);
                switched.store(true, Ordering::Release);
            })
        };
        let mut fast = FastV4::from_seed(SEED);
        let mut secure = SecureV4::new(Marker);
        let saw_switch = switched.load(Ordering::Acquire);
        let (uuid, mode) = hybrid.try_generate(&mut fast, &mut secure).unwrap();
        if saw_switch {
            assert_eq!(
                mode,
                Mode::Fast,
                "a switch that happened-before must be seen"
            );
        }
        let expected = match mode {
            Mode::Fast => FastV4::from_seed(SEED).generate(),
            Mode::Secure => Uuid::from_random_bytes([0xAA; 16]),
        };
        assert_eq!(
            uuid, expected,
            "the UUID comes wholly from the reported source"
        );
        switcher.join().unwrap();
        assert_eq!(hybrid.mode(), Mode::Fast);
    });
}

#[test]
fn hybrid_toggling_while_two_threads_generate() {
    loom::model(|| {
        let hybrid = Arc::new(HybridGenerator::new(Mode::Fast));
        let toggler = {
            let hybrid = Arc::clone(&hybrid);
            thread::spawn(move || {
                hybrid.set_use_fast_mode(false);
                hybrid.set_use_fast_mode(true);
            })
        };
        let worker = {
            let hybrid = Arc::clone(&hybrid);
            thread::spawn(move || {
                let mut fast = FastV4::from_seed(SEED);
                let mut reference = FastV4::from_seed(SEED);
                let mut secure = SecureV4::new(Marker);
                for _ in 0..2 {
                    let (uuid, mode) = hybrid.try_generate(&mut fast, &mut secure).unwrap();
                    match mode {
                        Mode::Fast => assert_eq!(uuid, reference.generate()),
                        Mode::Secure => assert_eq!(uuid, Uuid::from_random_bytes([0xAA; 16])),
                    }
                }
            })
        };
        toggler.join().unwrap();
        worker.join().unwrap();
        assert_eq!(hybrid.mode(), Mode::Fast);
    });
}

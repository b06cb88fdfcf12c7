//! The one place the core takes its synchronisation primitives from.
//!
//! Under `cfg(loom)` every atomic and `UnsafeCell` comes from loom so that the
//! models in `loom-tests/` explore every interleaving; with the
//! `portable-atomic` feature the atomics come from `portable-atomic`, which
//! supplies compare-and-swap on targets without it (`thumbv6m-none-eabi`,
//! `riscv32imc-unknown-none-elf`) and 64-bit atomics on 32-bit targets;
//! otherwise they are the `core` ones. No other module imports
//! `core::sync::atomic` directly.
//!
//! What each target offers decides what the core offers on it:
//!
//! - `cfg(any(loom, feature = "portable-atomic", target_has_atomic = "ptr"))`:
//!   compare-and-swap and `fetch_add` on `AtomicU32` and `AtomicUsize`, which
//!   the pools need;
//! - `cfg(any(loom, feature = "portable-atomic", target_has_atomic = "64"))`:
//!   `AtomicU64`, which the shared v7 generator and the atomic metrics need.
//!
//! Load and store on `AtomicBool`, `AtomicU8`, `AtomicU32` and `AtomicUsize`
//! exist everywhere the core builds.
#![allow(unused_imports, dead_code)]

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(all(not(loom), feature = "portable-atomic"))]
pub(crate) use portable_atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(all(not(loom), not(feature = "portable-atomic")))]
pub(crate) use core::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering, fence,
};

#[cfg(all(not(loom), not(feature = "portable-atomic"), target_has_atomic = "64"))]
pub(crate) use core::sync::atomic::AtomicU64;

/// Declares a function `const` in normal builds and non-`const` under loom,
/// whose atomics and cells cannot be built in a constant context.
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use const_unless_loom;

/// Spins politely: a CPU hint normally, a loom yield under the model checker so
/// that spinning loops stay finite.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// An `UnsafeCell` whose accesses loom can track.
///
/// The API is closure based (as in tokio's `loom` module) because loom needs to
/// see the start and end of each access.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
    #[cfg(not(loom))] core::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    #[cfg(not(loom))]
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    #[cfg(loom)]
    pub(crate) fn new(value: T) -> Self {
        Self(loom::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared raw pointer to the contents.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(loom)]
        return self.0.with(f);
        #[cfg(not(loom))]
        return f(self.0.get());
    }

    /// Runs `f` with an exclusive raw pointer to the contents.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(loom)]
        return self.0.with_mut(f);
        #[cfg(not(loom))]
        return f(self.0.get());
    }
}

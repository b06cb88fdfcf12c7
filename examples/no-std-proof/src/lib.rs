//! Links `mechops-core` into a `#![no_std]` static library with its own panic
//! handler. If anything in the core's dependency graph pulls in `std`, `std`'s
//! own panic handler collides with the one below and the build fails.
#![no_std]

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

//! The simulation build's trap for operating-system randomness.
//!
//! Built with `--cfg getrandom_backend="custom"`, getrandom 0.3 (snow's) and 0.4 (rand's:
//! `ThreadRng`'s seeding, so every `rand::rng()` draw of quinn-proto, and `SysRng`) call
//! `__getrandom_v03_custom` for every OS draw. This crate defines it to panic, so a draw that
//! should have come from the run's seed fails loudly, with its backtrace, in whatever binary
//! links the simulator. `tests/os_randomness.rs` runs clusters on every transport in that
//! build (see `.ci/run`).
//!
//! Not covered: getrandom 0.2 has no such hook on Linux. Only ring's `SystemRandom` and
//! rand_core 0.6's `OsRng` reach it; the seeded QUIC endpoint gives rustls and ring its own
//! `SecureRandom`, and only the real node names `OsRng`.

/// What getrandom calls for every OS draw in the trap build. It never returns: the draw is the
/// bug. getrandom 0.3 and 0.4 both declare this symbol, each with its own `Error`, of one
/// shape (a `NonZeroU32`); a function that only panics returns neither.
///
/// # Safety
///
/// Called only by getrandom, with a buffer it never writes.
#[unsafe(no_mangle)]
unsafe fn __getrandom_v03_custom(_dest: *mut u8, len: usize) -> Result<(), getrandom::Error> {
    panic!(
        "operating-system randomness drawn ({len} bytes) in a simulation build: \
         draw it from the run's seed"
    )
}

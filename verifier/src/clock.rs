//! Wall-clock time as token checks see it: Unix seconds.
//!
//! Only the time claims (`exp`, `nbf`, `iat`) and the expiry of revocation
//! entries use this clock. Cache lifetimes, poll intervals and the staleness
//! bound are measured on the monotonic clock, so a wall-clock step cannot
//! make a verifier trust an old key set for longer.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in seconds since the Unix epoch.
///
/// The verifier reads [`SystemClock`] unless told otherwise. Tests that drive
/// Sigil with a manual clock hand the same clock to the verifier, and any
/// `Fn() -> i64` closure is a clock:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicI64, Ordering};
///
/// let now = Arc::new(AtomicI64::new(1_700_000_000));
/// let shared = Arc::clone(&now);
/// let builder = sigil_verify::Verifier::builder()
///     .clock(move || shared.load(Ordering::SeqCst));
/// # let _ = builder;
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place the verifier reads the system clock"
    )]
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

impl<F> Clock for F
where
    F: Fn() -> i64 + Send + Sync + 'static,
{
    fn now(&self) -> i64 {
        self()
    }
}

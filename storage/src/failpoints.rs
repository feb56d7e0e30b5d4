//! Test-only fault injection. With the `failpoints` feature a thread-local table says
//! "fail the next N calls at point X"; without it [`check`] compiles to nothing.

/// Places where a test can inject a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailPoint {
    /// Before an append writes anything.
    Append,
    /// In the middle of an append's write: half the bytes land, then ENOSPC.
    AppendPartialWrite,
    /// When rolling a new segment.
    Roll,
    /// When truncating the log.
    Truncate,
    /// Instead of an fsync.
    Fsync,
}

#[cfg(feature = "failpoints")]
mod imp {
    use super::FailPoint;
    use std::cell::RefCell;
    use std::collections::HashMap;

    thread_local! {
        static ARMED: RefCell<HashMap<FailPoint, u32>> = RefCell::new(HashMap::new());
    }

    /// Makes the next `count` calls at `point` on this thread fail.
    pub fn fail_next(point: FailPoint, count: u32) {
        ARMED.with(|armed| armed.borrow_mut().insert(point, count));
    }

    /// Disarms every point on this thread.
    pub fn reset() {
        ARMED.with(|armed| armed.borrow_mut().clear());
    }

    pub(crate) fn should_fail(point: FailPoint) -> bool {
        ARMED.with(|armed| match armed.borrow_mut().get_mut(&point) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
    }
}

#[cfg(feature = "failpoints")]
pub use imp::{fail_next, reset};

/// True when a test armed `point` (always false without the `failpoints` feature).
#[inline]
pub(crate) fn should_fail(point: FailPoint) -> bool {
    #[cfg(feature = "failpoints")]
    {
        imp::should_fail(point)
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = point;
        false
    }
}

/// `Err(Injected(point))` when a test armed `point`.
#[inline]
pub(crate) fn check(point: FailPoint) -> Result<(), crate::StorageError> {
    if should_fail(point) {
        return Err(crate::StorageError::Injected(point));
    }
    Ok(())
}

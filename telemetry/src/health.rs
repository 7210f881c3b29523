//! Whether the node can still serve: the first tile that died, and why.
//!
//! A node is a pipeline: when one tile is gone (it panicked, or its loop ended while the node
//! was running) nothing behind it moves, and the rest must not keep accepting work it can
//! never finish. The lifecycle reports every tile's death here; the node reads it to answer
//! `/health` and `getHealth`, to stop admitting, and to exit non-zero. Only the first failure
//! is kept (the others are its consequences).
//!
//! Which `Health` a tile reports to is decided when its [`crate::Stage`] is created: the one
//! the creating thread has [`entered`](Health::enter) (like `tracing`'s default dispatcher),
//! so the stages a library creates inside a node's start-up (storage's I/O and compaction
//! tiles) report to the node without every constructor taking a parameter. A stage created
//! outside any scope gets a health of its own that nobody reads (its deaths are still logged).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

#[derive(Debug, Default)]
pub struct Health {
    failure: OnceLock<String>,
    stopping: AtomicBool,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Health>>> = const { RefCell::new(None) };
}

impl Health {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Record that `who` died (`why`). The first failure wins and is logged as an error.
    pub fn fail(&self, who: &str, why: &str) {
        if self.failure.set(format!("{who} {why}")).is_ok() {
            tracing::error!(tile = who, "{why}: the node can no longer serve");
        }
    }

    /// The first failure, if any: "<tile> <why>".
    pub fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    pub fn is_ok(&self) -> bool {
        self.failure.get().is_none()
    }

    /// The node is stopping on purpose: tiles ending from now on are not failures.
    pub fn begin_stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Make this the health that stages created on this thread report to, until the guard
    /// is dropped.
    pub fn enter(self: &Arc<Self>) -> HealthScope {
        let previous = CURRENT.with(|c| c.replace(Some(self.clone())));
        HealthScope { previous }
    }

    /// The health the calling thread has entered, or a new one of its own.
    pub fn current() -> Arc<Self> {
        CURRENT.with(|c| c.borrow().clone()).unwrap_or_default()
    }
}

/// Restores the previously entered health when dropped.
#[must_use = "the scope ends when this guard is dropped"]
pub struct HealthScope {
    previous: Option<Arc<Health>>,
}

impl Drop for HealthScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The message of a panic payload (`panic!` with a literal or a formatted string).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_wins_and_scopes_nest() {
        let outer = Health::new();
        let inner = Health::new();
        assert!(!Arc::ptr_eq(&Health::current(), &outer));
        {
            let _a = outer.enter();
            assert!(Arc::ptr_eq(&Health::current(), &outer));
            {
                let _b = inner.enter();
                assert!(Arc::ptr_eq(&Health::current(), &inner));
            }
            assert!(Arc::ptr_eq(&Health::current(), &outer));
        }
        assert!(!Arc::ptr_eq(&Health::current(), &outer));
        outer.fail("gc-commit", "stopped");
        outer.fail("gc-bank", "stopped");
        assert_eq!(outer.failure(), Some("gc-commit stopped"));
        assert!(inner.is_ok());
    }
}

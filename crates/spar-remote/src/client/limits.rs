//! The client's shared counters and its concurrency limit (a counting semaphore; std has
//! none, and the client is blocking, so tokio's does not fit).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::ClientStats;

/// A mutex's contents, poisoned or not: the values guarded here stay consistent whatever
/// panicked.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) requests: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) timeouts: AtomicU64,
    pub(super) server_errors: AtomicU64,
    pub(super) connection_errors: AtomicU64,
}

impl Counters {
    pub(super) fn snapshot(&self) -> ClientStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            requests: get(&self.requests),
            retries: get(&self.retries),
            failures: get(&self.failures),
            timeouts: get(&self.timeouts),
            server_errors: get(&self.server_errors),
            connection_errors: get(&self.connection_errors),
        }
    }
}

/// A counting semaphore: `acquire` blocks while every permit is out.
pub(super) struct Semaphore {
    free: Mutex<usize>,
    freed: Condvar,
}

pub(super) struct Permit<'a> {
    semaphore: &'a Semaphore,
}

impl Semaphore {
    pub(super) fn new(permits: usize) -> Semaphore {
        Semaphore {
            free: Mutex::new(permits),
            freed: Condvar::new(),
        }
    }

    pub(super) fn acquire(&self) -> Permit<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Permit { semaphore: self }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *lock(&self.semaphore.free) += 1;
        self.semaphore.freed.notify_one();
    }
}

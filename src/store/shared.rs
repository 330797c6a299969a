//! The one way concurrent code reaches the store: one connection behind a mutex, locked with
//! poison recovery, and run on tokio's blocking pool from async code.
//!
//! A panic while the lock was held leaves the connection usable: every multi-statement change
//! runs in a transaction that rolls back when dropped, so recovering the guard is safe and a
//! single panicking request cannot take the store down for the whole process.

use super::{Store, StoreError};
use std::sync::{Arc, Mutex, MutexGuard};

/// A store shared by tasks and threads (the ATS worker, `vigil ats listen`, `vigil serve`).
#[derive(Clone)]
pub struct Shared(Arc<Mutex<Store>>);

/// Why a shared-store call failed: the store's own error, or the blocking task died.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Shared {
    pub fn new(store: Store) -> Shared {
        Shared(Arc::new(Mutex::new(store)))
    }

    /// Locks the store for synchronous work (see the module docs on poisoning).
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the store off the async threads (SQLite calls block and fsync).
    pub async fn call<T: Send + 'static, E: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<T, E>, tokio::task::JoinError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&mut this.lock())).await
    }

    /// [`Shared::call`] for work whose only error is the store's.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CallError> {
        Ok(self.call(f).await??)
    }
}

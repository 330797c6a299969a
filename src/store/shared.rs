//! The one way concurrent code reaches the store: a small pool of connections to one database,
//! handed out one per call and run on tokio's blocking pool from async code.
//!
//! SQLite in WAL mode lets readers run beside one writer, and every multi-statement change is a
//! transaction (the store is already shared by separate worker processes), so separate
//! connections are safe: an upload chunk's offset update no longer queues behind a session's
//! finalisation (two fsync'd transactions) on a single connection. A panic inside a call drops
//! its transaction (rolled back) before the connection goes back to the pool, so one panicking
//! request cannot take the store down for the whole process.

use super::{Store, StoreError};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Connections a pooled store opens at most: a few concurrent writers already saturate one
/// database file's fsyncs, and every connection costs a file descriptor and page cache.
pub const MAX_CONNECTIONS: usize = 4;

/// A store shared by tasks and threads (the ATS worker, `vigil ats listen`, `vigil serve`).
#[derive(Clone)]
pub struct Shared(Arc<Pool>);

struct Pool {
    /// Where to open more connections; `None`: the one connection given is all there is.
    path: Option<PathBuf>,
    max: usize,
    state: Mutex<Idle>,
    returned: Condvar,
}

struct Idle {
    stores: Vec<Store>,
    /// Connections in existence (idle or lent).
    open: usize,
}

/// Why a shared-store call failed: the store's own error, or the blocking task died.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A connection lent by the pool; it goes back when dropped.
pub struct Conn<'a> {
    pool: &'a Pool,
    store: Option<Store>,
}

impl Shared {
    /// One connection, shared by taking turns (in-memory stores, tests, single-task users).
    pub fn new(store: Store) -> Shared {
        Shared::with(store, None, 1)
    }

    /// A pool on the database at `path`: opens one connection now (so a bad path fails here),
    /// more on demand up to [`MAX_CONNECTIONS`].
    pub fn open(path: &std::path::Path) -> Result<Shared, StoreError> {
        let first = Store::open(path)?;
        Ok(Shared::with(first, Some(path.to_owned()), MAX_CONNECTIONS))
    }

    fn with(first: Store, path: Option<PathBuf>, max: usize) -> Shared {
        Shared(Arc::new(Pool {
            path,
            max,
            state: Mutex::new(Idle {
                stores: vec![first],
                open: 1,
            }),
            returned: Condvar::new(),
        }))
    }

    /// A connection for synchronous work: an idle one, a new one while under the bound, or the
    /// next one returned. Opening a further connection can fail (the disk, file descriptors).
    pub fn lock(&self) -> Result<Conn<'_>, StoreError> {
        let pool = &*self.0;
        let mut st = pool.state();
        loop {
            if let Some(store) = st.stores.pop() {
                return Ok(Conn {
                    pool,
                    store: Some(store),
                });
            }
            if let Some(path) = pool.path.as_ref().filter(|_| st.open < pool.max) {
                st.open += 1;
                drop(st);
                return match Store::open(path) {
                    Ok(store) => Ok(Conn {
                        pool,
                        store: Some(store),
                    }),
                    Err(e) => {
                        pool.state().open -= 1;
                        pool.returned.notify_one();
                        Err(e)
                    }
                };
            }
            st = pool.returned.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Runs `f` on a connection off the async threads (SQLite calls block and fsync).
    pub async fn call<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<T, E>, tokio::task::JoinError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&mut *this.lock()?)).await
    }

    /// [`Shared::call`] for work whose only error is the store's.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, CallError> {
        Ok(self.call(f).await??)
    }
}

impl Pool {
    /// The pool's bookkeeping; a panic elsewhere cannot leave it inconsistent (every change is
    /// one statement), so a poisoned lock is taken over.
    fn state(&self) -> MutexGuard<'_, Idle> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Deref for Conn<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store
            .as_ref()
            .expect("a lent connection is present until dropped")
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        self.store
            .as_mut()
            .expect("a lent connection is present until dropped")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            self.pool.state().stores.push(store);
            self.pool.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_lends_separate_connections_up_to_its_bound_then_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::open(&dir.path().join("vigil.db")).unwrap();
        let held: Vec<_> = (0..MAX_CONNECTIONS)
            .map(|_| shared.lock().unwrap())
            .collect();
        assert_eq!(shared.0.state().open, MAX_CONNECTIONS);
        // A further caller waits for a connection to come back, and gets that one.
        let waiter = {
            let shared = shared.clone();
            std::thread::spawn(move || shared.lock().map(|_| ()).is_ok())
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "no fifth connection is opened");
        drop(held);
        assert!(waiter.join().unwrap());
        assert_eq!(shared.0.state().open, MAX_CONNECTIONS);
        assert_eq!(shared.0.state().stores.len(), MAX_CONNECTIONS);
    }

    #[test]
    fn a_panic_inside_a_call_returns_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared::new(Store::open(&dir.path().join("vigil.db")).unwrap());
        let s = shared.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _c = s.lock().unwrap();
            panic!("handler bug");
        }));
        assert!(r.is_err());
        assert!(shared.lock().is_ok(), "the only connection came back");
    }
}

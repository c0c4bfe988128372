//! Turns per key within one process: the events of one token wait here,
//! without a database connection, while one of them holds the token's row
//! lock.
//!
//! An intruder's key makes a run of calls within milliseconds. Without
//! turns each call's transaction takes a pool connection and then waits in
//! PostgreSQL for the token's row lock, so a run of thirty calls holds every
//! connection of the pool and the first call of another key (the one that
//! opens an incident and raises the alert) waits for a connection. With
//! turns a replica spends at most one connection per token at a time; the
//! row lock still orders replicas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Debug, Default)]
pub(crate) struct Turns {
    keys: Mutex<HashMap<i64, Arc<AsyncMutex<()>>>>,
}

/// A key's turn, given up when dropped.
pub(crate) struct Turn<'a> {
    turns: &'a Turns,
    key: i64,
    lock: Arc<AsyncMutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Turns {
    /// Waits for `key`'s turn.
    pub(crate) async fn take(&self, key: i64) -> Turn<'_> {
        let lock = self.keys.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_default().clone();
        let guard = lock.clone().lock_owned().await;
        Turn { turns: self, key, lock, guard: Some(guard) }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut keys = self.turns.keys.lock().unwrap_or_else(PoisonError::into_inner);
        // Clones are made under this lock, so two means the map's and ours:
        // nobody waits, and the key is forgotten.
        if Arc::strong_count(&self.lock) == 2 {
            keys.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_turn_per_key_at_a_time_and_finished_keys_are_forgotten() {
        let turns = Arc::new(Turns::default());
        let first = turns.take(7).await;
        // Another key is not held up.
        let other = turns.take(8).await;
        drop(other);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let waiting = {
            let turns = turns.clone();
            tokio::spawn(async move {
                let _turn = turns.take(7).await;
                tx.send(()).unwrap();
            })
        };
        // The second turn of key 7 cannot start while the first is held.
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err());
        drop(first);
        rx.recv().await.unwrap();
        waiting.await.unwrap();
        assert_eq!(turns.len(), 0);
    }
}

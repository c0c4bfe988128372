//! Turns per key within one process, and one transaction for the calls that
//! waited for a turn.
//!
//! An intruder's key makes a run of calls within milliseconds. Without
//! turns each call's transaction takes a pool connection and then waits in
//! PostgreSQL for the token's row lock, so a run of thirty calls holds every
//! connection of the pool and the first call of another key (the one that
//! opens an incident and raises the alert) waits for a connection. With
//! turns a replica spends at most one connection per token at a time; the
//! row lock still orders replicas.
//!
//! The calls that queue while a key's transaction runs are stored together
//! in its next one ([`Store::record_event`](crate::Store::record_event)):
//! thirty calls cost two or three transactions, not thirty, which leaves the
//! database and the processor to other keys' first calls. A key's queue is
//! drained by one task of its own, so a caller that gives up (a client that
//! hung up) never strands the calls queued behind it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::Duration;
use honeytrail_core::incident::TokenEvent;
use tokio::sync::oneshot;

use crate::{EventOutcome, StoreError};

/// The most calls stored in one transaction: bounds how long a transaction
/// holds the token's row lock.
pub(crate) const MOST_PER_TRANSACTION: usize = 100;

/// A call waiting to be stored, and where its outcome goes.
pub(crate) struct Waiting {
    pub event: TokenEvent,
    pub window: Duration,
    pub reply: oneshot::Sender<Result<EventOutcome, StoreError>>,
}

/// The calls waiting per key. A key is in the map exactly while a task
/// drains it.
#[derive(Default)]
pub(crate) struct Turns {
    keys: Mutex<HashMap<i64, Vec<Waiting>>>,
}

impl std::fmt::Debug for Turns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turns").field("keys", &self.keys.lock().unwrap_or_else(PoisonError::into_inner).len()).finish()
    }
}

impl Turns {
    /// Queues a call. `true`: nobody drains its key, and the caller must
    /// start a task that does ([`Turns::next`] until it is empty).
    pub(crate) fn queue(&self, key: i64, waiting: Waiting) -> bool {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        match keys.get_mut(&key) {
            Some(queue) => {
                queue.push(waiting);
                false
            }
            None => {
                keys.insert(key, vec![waiting]);
                true
            }
        }
    }

    /// The calls queued for `key`, oldest first and at most
    /// [`MOST_PER_TRANSACTION`]. Empty: the key is forgotten, and its
    /// drainer must stop (the next call starts another).
    pub(crate) fn next(&self, key: i64) -> Vec<Waiting> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(queue) = keys.get_mut(&key) else { return Vec::new() };
        if queue.is_empty() {
            keys.remove(&key);
            return Vec::new();
        }
        let n = queue.len().min(MOST_PER_TRANSACTION);
        queue.drain(..n).collect()
    }

    /// A drainer that stopped without emptying its key (it panicked):
    /// the calls queued are answered with an error, and the key forgotten.
    pub(crate) fn abandon(&self, key: i64) {
        let queued = self.keys.lock().unwrap_or_else(PoisonError::into_inner).remove(&key).unwrap_or_default();
        for w in queued {
            // A caller that gave up is fine.
            w.reply.send(Err(StoreError::Refused("the task storing this key's calls stopped; retry".into()))).ok();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Forgets its key if the drainer stops before emptying it.
pub(crate) struct Draining<'a> {
    pub turns: &'a Turns,
    pub key: i64,
    pub done: bool,
}

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.turns.abandon(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> (Waiting, oneshot::Receiver<Result<EventOutcome, StoreError>>) {
        let (reply, rx) = oneshot::channel();
        let event = TokenEvent {
            event_id: id.into(),
            token_id: 7,
            event_time: chrono::Utc::now(),
            event_source: "sts.amazonaws.com".into(),
            event_name: "GetCallerIdentity".into(),
            aws_region: None,
            source_ip: None,
            user_agent: None,
            error_code: None,
            error_message: None,
            access_key_id: None,
            principal_arn: None,
            vpc_endpoint: None,
            vpc_endpoint_account: None,
            source: "test".into(),
            origin: "test".into(),
            raw: "{}".into(),
        };
        (Waiting { event, window: Duration::minutes(1), reply }, rx)
    }

    #[test]
    fn one_drainer_per_key_takes_what_queued_and_finished_keys_are_forgotten() {
        let turns = Turns::default();
        let (a, _ra) = call("a");
        assert!(turns.queue(7, a), "the first call starts the drainer");
        let (b, _rb) = call("b");
        assert!(!turns.queue(7, b), "a call behind it joins the queue");
        let (other, _ro) = call("o");
        assert!(turns.queue(8, other), "another key is not held up");
        let batch: Vec<String> = turns.next(7).into_iter().map(|w| w.event.event_id).collect();
        assert_eq!(batch, ["a", "b"]);
        let (c, _rc) = call("c");
        assert!(!turns.queue(7, c), "still drained while the batch is stored");
        assert_eq!(turns.next(7).len(), 1);
        assert!(turns.next(7).is_empty());
        assert_eq!(turns.len(), 1, "key 7 is forgotten; 8 still drains");
        let (d, _rd) = call("d");
        assert!(turns.queue(7, d), "the next call starts a new drainer");
    }

    #[test]
    fn a_transaction_takes_at_most_its_share_and_an_abandoned_key_answers_its_callers() {
        let turns = Turns::default();
        let mut replies = Vec::new();
        for i in 0..(MOST_PER_TRANSACTION + 5) {
            let (w, rx) = call(&i.to_string());
            turns.queue(7, w);
            replies.push(rx);
        }
        assert_eq!(turns.next(7).len(), MOST_PER_TRANSACTION);
        drop(Draining { turns: &turns, key: 7, done: false });
        assert_eq!(turns.len(), 0);
        let answered = replies.into_iter().skip(MOST_PER_TRANSACTION).map(|mut r| r.try_recv().unwrap()).count();
        assert_eq!(answered, 5, "the five left behind are told, not stranded");
    }
}

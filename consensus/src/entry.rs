//! What a slot holds: a batch of the application's values, or a no-op.

use core::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The value chosen for one slot.
///
/// A slot carries a whole batch so that one round of Paxos orders many values
/// (phase 2 batching). The batch sits behind an `Arc`, so handing the same
/// entry to the log, to every peer's `Accept` and to the application costs a
/// reference-count increment, never a copy of the values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry<V> {
    /// Fills a hole a new leader found in the log ("Paxos Made Moderately
    /// Complex", §3: gaps are filled with no-ops so later slots can execute).
    Noop,
    /// Values proposed by the application, in proposal order.
    Batch(Arc<[V]>),
}

impl<V> Entry<V> {
    /// The values in this entry; empty for a no-op.
    pub fn values(&self) -> &[V] {
        match self {
            Entry::Noop => &[],
            Entry::Batch(values) => values,
        }
    }

    /// True for [`Entry::Noop`].
    pub fn is_noop(&self) -> bool {
        matches!(self, Entry::Noop)
    }
}

impl<V: fmt::Debug> fmt::Debug for Entry<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Noop => f.write_str("noop"),
            Entry::Batch(values) => f.debug_list().entries(values.iter()).finish(),
        }
    }
}

impl<V: fmt::Debug> fmt::Display for Entry<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

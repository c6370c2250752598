//! Snapshots: the whole state as bytes, `[format version] + postcard`.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::command::PauseState;
use crate::id::JobId;
use crate::machine::JobState;

/// The snapshot format this build writes; it reads this one and older ones.
pub const SNAPSHOT_FORMAT: u8 = 1;

/// Why a snapshot could not be restored.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// The snapshot has no bytes at all.
    #[error("snapshot is empty")]
    Empty,
    /// Written by a newer build; this one cannot read it.
    #[error("snapshot format {found} is newer than this build understands ({supported}); upgrade")]
    NewerFormat {
        /// The snapshot's format.
        found: u8,
        /// The newest format this build reads.
        supported: u8,
    },
    /// The bytes do not decode, or decode to an impossible state.
    #[error("snapshot is corrupt: {0}")]
    Corrupt(String),
}

/// The state as written: `B` is the body type, a borrowed [`BodyRef`] when
/// writing (so a snapshot does not copy every body first) and `Bytes` when
/// reading. Both encode as postcard bytes.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotV1<B> {
    pub(crate) now_ms: u64,
    pub(crate) next_seq: u64,
    pub(crate) jobs: Vec<JobRecord<B>>,
    pub(crate) queues: Vec<QueueRecord>,
}

/// A job body borrowed from the machine, written as bytes.
pub(crate) struct BodyRef<'a>(pub(crate) &'a [u8]);

impl Serialize for BodyRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct JobRecord<B> {
    pub(crate) seq: u64,
    pub(crate) id: JobId,
    pub(crate) queue: Arc<str>,
    pub(crate) body: B,
    pub(crate) created_ms: u64,
    pub(crate) expires_ms: u64,
    pub(crate) retry_ms: u64,
    pub(crate) state: JobState,
    pub(crate) state_timer_ms: Option<u64>,
    pub(crate) nacks: u32,
    pub(crate) additional_deliveries: u32,
    pub(crate) deliveries: u32,
    pub(crate) delivery_limit: Option<u32>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct QueueRecord {
    pub(crate) name: Arc<str>,
    pub(crate) pause: PauseState,
    pub(crate) delivery_limit: Option<u32>,
    pub(crate) dead_letter: Option<Arc<str>>,
    pub(crate) created_ms: u64,
    pub(crate) last_activity_ms: u64,
    pub(crate) jobs_in: u64,
    pub(crate) jobs_out: u64,
}

/// Appends the format byte and `snapshot` to `out`, reserving
/// `capacity_hint` more bytes first: a large state then costs one
/// allocation and no copy, instead of doublings and a final copy.
pub(crate) fn encode(
    mut out: Vec<u8>,
    snapshot: &SnapshotV1<BodyRef<'_>>,
    capacity_hint: usize,
) -> Vec<u8> {
    out.reserve(capacity_hint.max(1));
    out.push(SNAPSHOT_FORMAT);
    postcard::to_extend(snapshot, out).expect("in-memory encoding cannot fail")
}

/// Decodes the whole body: bytes left over mean the snapshot is not what was
/// written.
fn decode_exact(body: &[u8]) -> Result<SnapshotV1<Bytes>, SnapshotError> {
    let (snapshot, rest) = postcard::take_from_bytes::<SnapshotV1<Bytes>>(body)
        .map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    if !rest.is_empty() {
        return Err(SnapshotError::Corrupt(format!(
            "{} bytes after the end of the state",
            rest.len()
        )));
    }
    Ok(snapshot)
}

pub(crate) fn decode(bytes: &[u8]) -> Result<SnapshotV1<Bytes>, SnapshotError> {
    let (&version, body) = bytes.split_first().ok_or(SnapshotError::Empty)?;
    if version > SNAPSHOT_FORMAT {
        return Err(SnapshotError::NewerFormat {
            found: version,
            supported: SNAPSHOT_FORMAT,
        });
    }
    if version == 0 {
        return Err(SnapshotError::Corrupt("format version 0".to_string()));
    }
    let snapshot = decode_exact(body)?;
    if snapshot.next_seq == u64::MAX {
        // The next ADDJOB could not be numbered.
        return Err(SnapshotError::Corrupt("job sequence exhausted".to_string()));
    }
    // Reject states that could not have been produced, rather than panic
    // on them later.
    let mut ids = BTreeSet::new();
    let mut seqs = BTreeSet::new();
    for job in &snapshot.jobs {
        // Two jobs under one seq would leave an id naming another's job.
        if job.seq >= snapshot.next_seq || !ids.insert(job.id) || !seqs.insert(job.seq) {
            return Err(SnapshotError::Corrupt(format!(
                "job {} is duplicated or out of range",
                job.id
            )));
        }
        let timer_fits = match job.state {
            JobState::Queued => job.state_timer_ms.is_none(),
            JobState::Delayed => job.state_timer_ms.is_some(),
            JobState::Active => true,
        };
        // A job is created at the time then, and time never goes back.
        let created_fits = job.created_ms <= snapshot.now_ms && job.created_ms <= job.expires_ms;
        if !timer_fits || !created_fits {
            return Err(SnapshotError::Corrupt(format!(
                "job {} has inconsistent times",
                job.id
            )));
        }
    }
    let mut names = BTreeSet::new();
    for queue in &snapshot.queues {
        if !names.insert(&queue.name) {
            return Err(SnapshotError::Corrupt(format!(
                "queue {} is duplicated",
                queue.name
            )));
        }
        if queue.created_ms > snapshot.now_ms || queue.last_activity_ms > snapshot.now_ms {
            return Err(SnapshotError::Corrupt(format!(
                "queue {} has times after the snapshot's",
                queue.name
            )));
        }
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::{AddJob, Command, JobId, SnapshotError, StateMachine};

    #[test]
    fn bytes_after_the_state_are_refused() {
        let mut machine = StateMachine::new();
        let add = AddJob {
            id: JobId::new(1, [3; 18], 60_000, 1_000),
            queue: "q".to_string(),
            body: Bytes::from_static(b"job"),
            ttl_ms: None,
            retry_ms: None,
            delay_ms: None,
            max_len: None,
            delivery_limit: None,
        };
        machine.apply(5, Command::Add(add));
        let mut bytes = machine.snapshot();
        assert_eq!(StateMachine::restore(&bytes), Ok(machine));
        bytes.push(0);
        assert_eq!(
            StateMachine::restore(&bytes),
            Err(SnapshotError::Corrupt(
                "1 bytes after the end of the state".to_string()
            ))
        );
    }
}

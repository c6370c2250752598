//! Why a command was refused. A refused command changes nothing.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A command's failure, named after Disque's error prefixes where it has one.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum QueueError {
    /// `-BADID`: not a job id in Disque's format.
    #[error("BADID Invalid Job ID format.")]
    BadId,
    /// `-NOJOB`: no such job (never added, acked, deleted or expired).
    #[error("NOJOB Job not known in the context of this node.")]
    NoJob,
    /// `-TOOLATE`: WORKING after half the job's TTL has passed.
    #[error(
        "TOOLATE Half of job TTL already elapsed, you are no longer allowed to postpone the next delivery."
    )]
    TooLate,
    /// `-MAXLEN`: the queue already holds MAXLEN jobs.
    #[error("MAXLEN Queue is already longer than the specified MAXLEN count")]
    MaxLen,
    /// `-PAUSED`: the queue refuses new jobs.
    #[error("PAUSED Queue paused in input, try later")]
    Paused,
    /// `-ERR`: a job whose DELAY is not below its TTL would expire unseen.
    #[error(
        "ERR The specified DELAY is greater than TTL. Job refused since would never be delivered"
    )]
    DelayNotBelowTtl,
    /// `-ERR`: a TTL of zero.
    #[error("ERR TTL must be greater than zero")]
    ZeroTtl,
}

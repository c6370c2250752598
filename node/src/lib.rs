//! The Synod server: a job queue replicated by Multi-Paxos.
//!
//! See `ARCHITECTURE.md` at the repository root for how the pieces fit.

pub mod nosync;
pub mod storage;
pub mod wal;

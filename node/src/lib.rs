//! The Synod server: a job queue replicated by Multi-Paxos.
//!
//! See `ARCHITECTURE.md` at the repository root for how the pieces fit.

pub mod commands;
pub mod nosync;
pub mod resp;
pub mod storage;
pub mod wal;

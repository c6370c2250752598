//! The Synod server: a job queue replicated by Multi-Paxos.
//!
//! See `ARCHITECTURE.md` at the repository root for how the pieces fit.

#[cfg(not(madsim))]
pub mod bench;
pub mod cli;
pub mod commands;
pub mod dedup;
#[cfg(not(madsim))]
pub mod dev;
pub mod hooks;
pub mod node;
pub mod nosync;
pub mod peer;
pub mod proposal;
pub mod resp;
pub mod server;
pub mod status;
pub mod storage;
pub mod wal;

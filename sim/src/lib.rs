//! Synod's deterministic fault simulator.
//!
//! The real member code (`synod::server::member`) runs under madsim, with
//! simulated machines, network, time and disks, driven by a seed. One seed
//! fixes the whole run ([`options::Options`]): the cluster size, which
//! faults are on and how often (swarm testing), the timings and the
//! workload. A run has three phases:
//!
//! 1. Faults ([`faults`]): network partitions (random halves, the leader
//!    isolated, one-way, flapping), kills with the loss of unsynced writes
//!    and torn tails, paused members, frame loss and delay in the members'
//!    transport, and jumps of the leader's clock, while clients
//!    ([`client`]) add, take, ack, NACK and extend jobs and record a
//!    history.
//! 2. Heal: every fault ends.
//! 3. Liveness: within bounded simulated time, every member serves, every
//!    acknowledged job is delivered, and every member catches up.
//!
//! Checked online as members apply entries ([`world`]): agreement (the
//! same entry at each slot on every member, in every run of it), queue
//! state agreement (the same job-state digest after the same slot), apply
//! order (each run of a member applies slots in order, each once, from
//! just after its snapshot), and log time (the state machine's time after
//! each slot: never backwards on a member, at least every stamp in the
//! slot, the same on every member; stamps in order within a batch).
//! Checked on the history
//! at the end ([`checkers`]): Jepsen's total-queue, acked jobs stay acked,
//! leases hold. Every event goes into a trace whose hash must be the same
//! for two runs of one seed.
//!
//! Everything here exists only under `RUSTFLAGS="--cfg madsim"`; the
//! `sim/run` script builds and runs it:
//!
//! ```text
//! sim/run --seeds 0..1000
//! sim/run --seed 17 --trace sim-17.jsonl
//! ```

#[cfg(madsim)]
pub mod checkers;
#[cfg(madsim)]
pub mod client;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod faults;
#[cfg(madsim)]
pub mod history;
#[cfg(madsim)]
pub mod options;
#[cfg(madsim)]
pub mod scenario;
#[cfg(madsim)]
pub mod trace;
#[cfg(madsim)]
pub mod world;

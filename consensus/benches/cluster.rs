//! Values chosen per second through a 3-replica in-memory cluster.
//!
//! No IO and no clock: every message is delivered at once, in a simple loop,
//! and "persisting" a `Ready` is a no-op. What is measured is the library's
//! own cost of ordering values: proposing, building `Ready`s, stepping
//! `Accept`/`Accepted`/`Commit` messages and handing committed entries to the
//! application. The value type is `u64`.
//!
//! Two shapes are measured:
//!
//! * `lockstep/B`: propose `B` values to the leader, then pump every `Ready`
//!   and message until all three replicas have applied them. One slot (one
//!   Paxos round) per iteration.
//! * `pipelined/BxD`: propose `B` values and call the leader's `ready` `D`
//!   times, so `D` slots are in phase 2 at once, then pump until all are
//!   applied. Messages of different slots are interleaved as they would be on
//!   a real network with the pipeline full.
//!
//! Run with `cargo bench -p consensus --bench cluster`.

use std::hint::black_box;

use consensus::{Config, Message, Replica};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Compact the log after this many applied slots, as an application that
/// snapshots periodically would; keeps memory bounded over long runs.
const COMPACT_EVERY_SLOTS: u64 = 1024;

struct Cluster {
    replicas: Vec<Replica<u64>>,
    leader: usize,
    /// Messages waiting for delivery, and a spare buffer to swap with.
    network: Vec<Message<u64>>,
    in_flight: Vec<Message<u64>>,
    /// Values applied by each replica.
    applied: Vec<u64>,
    /// Stands in for the application's state machine.
    checksum: u64,
    next_value: u64,
}

impl Cluster {
    /// Three fresh replicas, run until one leads and all is quiet.
    fn elected() -> Self {
        let members = [1, 2, 3];
        let replicas = members
            .iter()
            .map(|&id| Replica::new(Config::new(id, members)).expect("valid config"))
            .collect();
        let mut cluster = Cluster {
            replicas,
            leader: 0,
            network: Vec::new(),
            in_flight: Vec::new(),
            applied: vec![0; members.len()],
            checksum: 0,
            next_value: 0,
        };
        while !cluster.replicas.iter().any(Replica::is_leader) {
            for replica in &mut cluster.replicas {
                replica.tick();
            }
            cluster.pump();
        }
        cluster.leader = cluster
            .replicas
            .iter()
            .position(Replica::is_leader)
            .expect("someone leads");
        // The new leader fills holes with no-ops; let everyone apply them.
        cluster.pump();
        cluster
    }

    /// Drains one replica's `Ready`: "persist" (nothing), queue its
    /// messages, apply its committed entries.
    fn drain(&mut self, index: usize) {
        let ready = self.replicas[index].ready();
        self.network.extend(ready.messages);
        for committed in ready.committed {
            let values = committed.entry.values();
            self.applied[index] += values.len() as u64;
            for &value in values {
                self.checksum = self.checksum.wrapping_add(value);
            }
        }
    }

    /// Drains every `Ready` and delivers every message until all is quiet.
    fn pump(&mut self) {
        loop {
            for index in 0..self.replicas.len() {
                self.drain(index);
            }
            if self.network.is_empty() {
                return;
            }
            std::mem::swap(&mut self.network, &mut self.in_flight);
            for message in self.in_flight.drain(..) {
                let to = (message.to - 1) as usize;
                self.replicas[to]
                    .step(message)
                    .expect("well-formed message");
            }
        }
    }

    fn propose(&mut self, count: usize) {
        let leader = &mut self.replicas[self.leader];
        for _ in 0..count {
            self.next_value += 1;
            leader
                .propose(self.next_value)
                .expect("the leader accepts proposals");
        }
    }

    /// Proposes `depth` slots of `batch` values each, then runs the cluster
    /// until every replica has applied all of them.
    fn run(&mut self, batch: usize, depth: usize) {
        let target = self.applied[self.leader] + (batch * depth) as u64;
        for _ in 0..depth {
            self.propose(batch);
            // Seals the batch into its own slot and sends its Accepts.
            self.drain(self.leader);
        }
        self.pump();
        assert!(
            self.applied.iter().all(|&applied| applied == target),
            "every replica applied every value: {:?} != {target}",
            self.applied
        );
        self.compact();
    }

    fn compact(&mut self) {
        for replica in &mut self.replicas {
            let status = replica.status();
            if status.applied_through >= status.snapshot_slot + COMPACT_EVERY_SLOTS {
                replica
                    .snapshot_taken(status.applied_through)
                    .expect("applied slot");
            }
        }
    }
}

fn lockstep(c: &mut Criterion) {
    let mut group = c.benchmark_group("lockstep");
    for batch in [1usize, 16, 256] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            let mut cluster = Cluster::elected();
            b.iter(|| cluster.run(batch, 1));
            black_box(cluster.checksum);
        });
    }
    group.finish();
}

fn pipelined(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipelined");
    // The default pipeline window is 64 slots.
    for (batch, depth) in [(1usize, 64usize), (16, 16), (256, 8)] {
        group.throughput(Throughput::Elements((batch * depth) as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{batch}x{depth}")),
            &(batch, depth),
            |b, &(batch, depth)| {
                let mut cluster = Cluster::elected();
                b.iter(|| cluster.run(batch, depth));
                black_box(cluster.checksum);
            },
        );
    }
    group.finish();
}

criterion_group!(benches, lockstep, pipelined);
criterion_main!(benches);

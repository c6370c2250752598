//! A three-member group in one process, narrated: election, commits, the
//! leader crashing, failover, and the old leader restarting from only what it
//! persisted and catching up.
//!
//! Run with `cargo run -p consensus --example three_replicas`.

use std::collections::BTreeMap;

use consensus::{AcceptedRecord, Config, DurableState, Message, NodeId, Ready, Replica, Slot};

/// One member: the replica, what it has made durable, and what it applied.
struct Member {
    replica: Option<Replica<String>>,
    durable: DurableState<String>,
    applied: BTreeMap<Slot, Vec<String>>,
}

struct Group {
    members: BTreeMap<NodeId, Member>,
    network: Vec<Message<String>>,
}

fn config(id: NodeId) -> Config {
    let mut config = Config::new(id, [1, 2, 3]);
    config.seed = 42 + id;
    config
}

impl Group {
    fn new() -> Self {
        let members = (1..=3)
            .map(|id| {
                let member = Member {
                    replica: Some(Replica::new(config(id)).expect("valid config")),
                    durable: DurableState::default(),
                    applied: BTreeMap::new(),
                };
                (id, member)
            })
            .collect();
        Group {
            members,
            network: Vec::new(),
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.members
            .iter()
            .find(|(_, m)| m.replica.as_ref().is_some_and(|r| r.is_leader()))
            .map(|(id, _)| *id)
    }

    /// Carries out one Ready in the documented order.
    fn handle(&mut self, id: NodeId, ready: Ready<String>) {
        let member = self.members.get_mut(&id).expect("member");
        // 1. Persist (a real node appends to its log and fsyncs here).
        if let Some(ballot) = ready.promised {
            member.durable.promised = ballot;
        }
        member.durable.accepted.extend(ready.accepted);
        // 2. Send.
        self.network.extend(ready.messages);
        // 3. Apply.
        for committed in ready.committed {
            let values = committed.entry.values().to_vec();
            let shown = if committed.entry.is_noop() {
                "no-op".to_string()
            } else {
                values.join(", ")
            };
            println!("  node {id} applies slot {}: {shown}", committed.slot);
            member.applied.insert(committed.slot, values);
        }
        // 4. Leadership.
        if let Some(leadership) = ready.leadership {
            match leadership.leader {
                Some(leader) if leader == id => {
                    println!("  node {id} now leads (ballot {})", leadership.ballot)
                }
                Some(leader) => println!(
                    "  node {id} follows node {leader} (ballot {})",
                    leadership.ballot
                ),
                None => println!("  node {id} knows no leader (ballot {})", leadership.ballot),
            }
        }
    }

    /// Ticks every live member once and delivers messages until quiet.
    fn run_tick(&mut self) {
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        for id in ids {
            if let Some(replica) = self.members.get_mut(&id).and_then(|m| m.replica.as_mut()) {
                replica.tick();
            }
        }
        self.settle();
    }

    fn settle(&mut self) {
        loop {
            let ids: Vec<NodeId> = self.members.keys().copied().collect();
            for id in ids {
                let ready = match self.members.get_mut(&id).and_then(|m| m.replica.as_mut()) {
                    Some(replica) => replica.ready(),
                    None => continue,
                };
                self.handle(id, ready);
            }
            if self.network.is_empty() {
                return;
            }
            for message in std::mem::take(&mut self.network) {
                // Messages to a crashed member are lost.
                if let Some(replica) = self
                    .members
                    .get_mut(&message.to)
                    .and_then(|m| m.replica.as_mut())
                {
                    replica.step(message).expect("well-formed message");
                }
            }
        }
    }

    fn run_until(&mut self, what: &str, mut done: impl FnMut(&Group) -> bool) {
        for _ in 0..1_000 {
            if done(self) {
                return;
            }
            self.run_tick();
        }
        panic!("gave up waiting for {what}");
    }

    fn propose(&mut self, value: &str) {
        let leader = self.leader().expect("a leader");
        println!("  client proposes {value:?} to node {leader}");
        let replica = self
            .members
            .get_mut(&leader)
            .and_then(|m| m.replica.as_mut());
        replica
            .expect("live leader")
            .propose(value.to_string())
            .expect("the leader takes proposals");
    }
}

fn main() {
    let mut group = Group::new();

    println!("1. Three followers start; the first to time out campaigns (phase 1).");
    group.run_until("a leader", |g| g.leader().is_some());
    let first_leader = group.leader().expect("elected");
    println!("   node {first_leader} leads.\n");

    println!("2. Values proposed together share one slot (batching).");
    group.propose("enqueue a");
    group.propose("enqueue b");
    group.settle();
    group.propose("enqueue c");
    group.settle();
    println!();

    println!("3. Node {first_leader} crashes. Only what it persisted survives.");
    group
        .members
        .get_mut(&first_leader)
        .expect("member")
        .replica = None;
    group.run_until("a new leader", |g| g.leader().is_some());
    let second_leader = group.leader().expect("elected");
    println!("   node {second_leader} leads now, with a higher ballot.\n");

    println!("4. The group of two still has a majority and keeps choosing.");
    group.propose("enqueue d");
    group.settle();
    println!();

    println!(
        "5. Node {first_leader} restarts from its promise and accepted values, and catches up."
    );
    let member = group.members.get_mut(&first_leader).expect("member");
    let durable = DurableState {
        promised: member.durable.promised,
        accepted: member
            .durable
            .accepted
            .iter()
            .map(|record| AcceptedRecord {
                slot: record.slot,
                ballot: record.ballot,
                entry: record.entry.clone(),
            })
            .collect(),
        snapshot_slot: 0,
    };
    // A restarted application replays from its snapshot; here, from nothing.
    member.applied.clear();
    member.replica = Some(Replica::restart(config(first_leader), durable).expect("valid config"));
    let last = group.members[&second_leader].applied.len();
    group.run_until("catch-up", |g| {
        g.members.values().all(|m| m.applied.len() == last)
    });
    println!();

    println!("6. Every member applied the same log:");
    for (id, member) in &group.members {
        let log: Vec<String> = member
            .applied
            .iter()
            .map(|(slot, values)| format!("{slot}:{values:?}"))
            .collect();
        println!("   node {id}: {}", log.join(" "));
    }
    let logs: Vec<_> = group.members.values().map(|m| &m.applied).collect();
    assert!(logs.windows(2).all(|pair| pair[0] == pair[1]), "logs agree");
}

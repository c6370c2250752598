//! Protocol traces: short scripts over a three-member group, each compared as
//! a whole with the expected trace of every event and message.
//!
//! A script drives an in-memory group through verbs such as `campaign`,
//! `propose`, `deliver_all`, `isolate` and `crash`. The driver records each
//! verb (lines starting with `>`), each message as it is sent (one
//! indentation step under its cause) and as it arrives (under the verb that
//! delivered it), and what each replica asked its host to do: `persist`,
//! `install snapshot`, `apply` (committed entries), `leader=` (leadership
//! changes), `dropped` proposals and `snapshot requested`. Messages use the
//! `Display` form of [`Message`], e.g. `1->2 Accept b=1.1 slot=3 [7] commit=2`.
//!
//! The network is a FIFO queue: `deliver_all` delivers until nothing is left,
//! answers included; `deliver(from, to)` delivers only what is already queued
//! on that link. Messages to or from an isolated member, or to a crashed one,
//! are lost when their turn comes.
//!
//! Regenerate the expected traces on purpose, then read the diff:
//! `UPDATE_EXPECT=1 cargo test -p consensus --test traces`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use bytes::Bytes;
use consensus::{Config, DurableState, Message, NodeId, Ready, Replica, Role, Slot};
use expect_test::{Expect, expect};

type V = u32;

const MEMBERS: [NodeId; 3] = [1, 2, 3];

fn config(id: NodeId) -> Config {
    Config {
        heartbeat_interval_ticks: 1,
        election_timeout_ticks: 5,
        catch_up_retry_ticks: 3,
        seed: id,
        ..Config::new(id, MEMBERS)
    }
}

/// One member: its replica (none while crashed), what it persisted, and the
/// application it feeds (a list of the values applied, in order).
struct Node {
    replica: Option<Replica<V>>,
    durable: DurableState<V>,
    app: Vec<V>,
    /// The application's durable snapshot: its slot and the values it holds.
    snapshot: (Slot, Vec<V>),
}

struct Group {
    nodes: BTreeMap<NodeId, Node>,
    network: Vec<Message<V>>,
    isolated: BTreeSet<NodeId>,
    trace: String,
}

impl Group {
    fn new() -> Self {
        let nodes = MEMBERS
            .into_iter()
            .map(|id| {
                let node = Node {
                    replica: Some(Replica::new(config(id)).unwrap()),
                    durable: DurableState::default(),
                    app: Vec::new(),
                    snapshot: (0, Vec::new()),
                };
                (id, node)
            })
            .collect();
        Group {
            nodes,
            network: Vec::new(),
            isolated: BTreeSet::new(),
            trace: String::new(),
        }
    }

    fn line(&mut self, depth: usize, text: impl AsRef<str>) {
        let _ = writeln!(self.trace, "{}{}", "  ".repeat(depth), text.as_ref());
    }

    fn replica(&mut self, id: NodeId) -> &mut Replica<V> {
        self.nodes
            .get_mut(&id)
            .unwrap()
            .replica
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is down"))
    }

    /// Does what `id`'s Ready asks, in the documented order, and records it.
    fn handle_ready(&mut self, id: NodeId, depth: usize) {
        let ready: Ready<V> = self.replica(id).ready();
        let node = self.nodes.get_mut(&id).unwrap();
        let mut lines = Vec::new();
        // 1. Persist.
        if let Some(promised) = ready.promised {
            node.durable.promised = promised;
            lines.push(format!("{id} persist promised={promised}"));
        }
        if !ready.accepted.is_empty() {
            let records: Vec<String> = ready
                .accepted
                .iter()
                .map(|r| format!("{}:{}@{}", r.slot, r.entry, r.ballot))
                .collect();
            lines.push(format!("{id} persist accepted {}", records.join(" ")));
            node.durable.accepted.extend(ready.accepted);
        }
        if let Some(snapshot) = ready.snapshot {
            node.app = decode(&snapshot.data);
            node.snapshot = (snapshot.slot, node.app.clone());
            node.durable.snapshot_slot = snapshot.slot;
            lines.push(format!(
                "{id} install snapshot slot={} {:?}",
                snapshot.slot, node.app
            ));
        }
        // 2. Send.
        for message in &ready.messages {
            lines.push(message.to_string());
        }
        self.network.extend(ready.messages);
        // 3. Apply.
        if !ready.committed.is_empty() {
            let entries: Vec<String> = ready
                .committed
                .iter()
                .map(|c| format!("{}:{}", c.slot, c.entry))
                .collect();
            lines.push(format!("{id} apply {}", entries.join(" ")));
            for committed in &ready.committed {
                node.app.extend(committed.entry.values());
            }
        }
        // 4. Note.
        if let Some(leadership) = ready.leadership {
            let leader = leadership
                .leader
                .map_or("none".to_string(), |l| l.to_string());
            lines.push(format!("{id} leader={leader} b={}", leadership.ballot));
        }
        if !ready.dropped_proposals.is_empty() {
            lines.push(format!("{id} dropped {:?}", ready.dropped_proposals));
        }
        for line in lines {
            self.line(depth, line);
        }
        // Answer snapshot requests with the application's latest snapshot.
        for peer in ready.snapshot_requests {
            let (slot, values) = self.nodes[&id].snapshot.clone();
            self.line(
                depth,
                format!("{id} snapshot requested by {peer}: send_snapshot slot={slot}"),
            );
            self.replica(id)
                .send_snapshot(peer, slot, encode(&values))
                .unwrap();
            self.handle_ready(id, depth);
        }
    }

    // ----- Verbs -----------------------------------------------------------

    /// Ticks `id` `n` times.
    fn tick(&mut self, id: NodeId, n: u32) {
        self.line(0, format!("> tick {id} x{n}"));
        for _ in 0..n {
            self.replica(id).tick();
            self.handle_ready(id, 1);
        }
    }

    /// Ticks `id` until its election timeout fires.
    fn campaign(&mut self, id: NodeId) {
        let mut ticks = 0;
        let mut trace = std::mem::take(&mut self.trace);
        while self.replica(id).status().role == Role::Follower {
            self.replica(id).tick();
            ticks += 1;
            self.handle_ready(id, 1);
        }
        let effects = std::mem::take(&mut self.trace);
        let _ = writeln!(trace, "> tick {id} until it campaigns ({ticks} ticks)");
        trace.push_str(&effects);
        self.trace = trace;
    }

    fn propose(&mut self, id: NodeId, value: V) {
        self.line(0, format!("> propose {value} at {id}"));
        match self.replica(id).propose(value) {
            Ok(()) => self.handle_ready(id, 1),
            Err(error) => self.line(1, format!("refused: {error}")),
        }
    }

    /// Delivers queued messages, and their answers, until none is left.
    fn deliver_all(&mut self) {
        self.line(0, "> deliver_all");
        while !self.network.is_empty() {
            let message = self.network.remove(0);
            self.deliver_one(message);
        }
    }

    /// Delivers the messages already queued from `from` to `to`.
    fn deliver(&mut self, from: NodeId, to: NodeId) {
        self.line(0, format!("> deliver {from}->{to}"));
        for message in self.take(from, to) {
            self.deliver_one(message);
        }
    }

    /// Loses the messages queued from `from` to `to`.
    fn drop(&mut self, from: NodeId, to: NodeId) {
        self.line(0, format!("> drop {from}->{to}"));
        for message in self.take(from, to) {
            self.line(1, format!("{message} (lost)"));
        }
    }

    /// Cuts `id` off: messages to or from it are lost.
    fn isolate(&mut self, id: NodeId) {
        self.line(0, format!("> isolate {id}"));
        self.isolated.insert(id);
    }

    fn heal(&mut self) {
        self.line(0, "> heal");
        self.isolated.clear();
    }

    /// Stops `id`: it loses everything it did not persist.
    fn crash(&mut self, id: NodeId) {
        self.line(0, format!("> crash {id}"));
        self.nodes.get_mut(&id).unwrap().replica = None;
    }

    /// Restarts `id` from what it persisted and its application snapshot.
    fn restart(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).unwrap();
        node.app = node.snapshot.1.clone();
        node.durable.snapshot_slot = node.snapshot.0;
        let durable = node.durable.clone();
        node.replica = Some(Replica::restart(config(id), durable.clone()).unwrap());
        let records: Vec<String> = durable
            .accepted
            .iter()
            .map(|r| format!("{}:{}@{}", r.slot, r.entry, r.ballot))
            .collect();
        self.line(
            0,
            format!(
                "> restart {id} from promised={} accepted=[{}] snapshot={}",
                durable.promised,
                records.join(" "),
                durable.snapshot_slot
            ),
        );
    }

    /// The application of `id` snapshots everything it applied; the replica
    /// compacts its log up to there.
    fn snapshot(&mut self, id: NodeId) {
        let slot = self.replica(id).applied_through();
        self.line(0, format!("> snapshot {id} through slot {slot}"));
        self.replica(id).snapshot_taken(slot).unwrap();
        let node = self.nodes.get_mut(&id).unwrap();
        node.snapshot = (slot, node.app.clone());
        node.durable.snapshot_slot = slot;
        node.durable.accepted.retain(|r| r.slot > slot);
    }

    /// Every member's role, promise, commit point and applied values.
    fn state(&mut self) {
        self.line(0, "> state");
        let mut lines = Vec::new();
        for (id, node) in &self.nodes {
            let Some(replica) = &node.replica else {
                lines.push(format!("{id} down"));
                continue;
            };
            let status = replica.status();
            let role = match status.role {
                Role::Leader => "leader".to_string(),
                Role::Candidate => "candidate".to_string(),
                Role::Follower => match status.leader {
                    Some(leader) => format!("follower of {leader}"),
                    None => "follower".to_string(),
                },
            };
            lines.push(format!(
                "{id} {role} promised={} commit={} snapshot={} app={:?}",
                status.promised, status.commit_through, status.snapshot_slot, node.app
            ));
        }
        for line in lines {
            self.line(1, line);
        }
    }

    // ----- Plumbing --------------------------------------------------------

    fn take(&mut self, from: NodeId, to: NodeId) -> Vec<Message<V>> {
        let (taken, kept) = std::mem::take(&mut self.network)
            .into_iter()
            .partition(|m| m.from == from && m.to == to);
        self.network = kept;
        taken
    }

    fn deliver_one(&mut self, message: Message<V>) {
        let to = message.to;
        if self.isolated.contains(&message.from) || self.isolated.contains(&to) {
            self.line(1, format!("{message} (lost: isolated)"));
            return;
        }
        if self.nodes[&to].replica.is_none() {
            self.line(1, format!("{message} (lost: {to} is down)"));
            return;
        }
        self.line(1, message.to_string());
        if let Err(error) = self.replica(to).step(message) {
            self.line(2, format!("refused: {error}"));
        }
        self.handle_ready(to, 2);
    }

    /// Setup shared by the later scenarios: `id` campaigns and everyone
    /// follows it. Its messages (shown in full by the first scenario) are
    /// summarized in one line so each trace starts where its story does.
    fn elected(&mut self, id: NodeId) {
        self.campaign(id);
        self.deliver_all();
        assert_eq!(self.leader_of_all(), Some(id), "node {id} leads");
        self.trace = format!("> setup: node {id} campaigned, won and is followed by all\n");
    }

    fn leader_of_all(&self) -> Option<NodeId> {
        let leaders: BTreeSet<Option<NodeId>> = self
            .nodes
            .values()
            .filter_map(|n| n.replica.as_ref().map(|r| r.leader()))
            .collect();
        match leaders.len() {
            1 => leaders.into_iter().next().flatten(),
            _ => None,
        }
    }

    fn check(self, expected: Expect) {
        expected.assert_eq(&self.trace);
    }
}

fn encode(values: &[V]) -> Bytes {
    let text: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    Bytes::from(text.join(","))
}

fn decode(data: &[u8]) -> Vec<V> {
    std::str::from_utf8(data)
        .unwrap()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Node 1's election timeout fires first. It picks ballot 1.1 and sends
/// Prepare (phase 1a); both others promise (1b), and the first promise makes
/// a quorum with node 1's own, so node 1 leads and says so with a heartbeat.
/// The second promise comes too late to matter. Node 1 proposes 7: it
/// accepts at once, the others accept (2a/2b), and the first Accepted makes
/// slot 1 chosen. Node 1 applies it and sends Commit, on which the others
/// apply it too. Each member persists its promise and its accepted value
/// before sending the message that vouches for it.
///
/// Checks "Paxos Made Simple", §2.2 (the two phases), §2.5 (stable storage
/// before replying) and §3 (a distinguished leader runs phase 1 once, then
/// phase 2 per command).
#[test]
fn first_election_and_one_committed_value() {
    let mut g = Group::new();
    g.campaign(1);
    g.deliver_all();
    g.propose(1, 7);
    g.deliver_all();
    g.state();
    g.check(expect![[r#"
        > tick 1 until it campaigns (9 ticks)
          1 persist promised=1.1
          1->2 Prepare b=1.1 from=1
          1->3 Prepare b=1.1 from=1
        > deliver_all
          1->2 Prepare b=1.1 from=1
            2 persist promised=1.1
            2->1 Promise b=1.1 snapshot=0 []
          1->3 Prepare b=1.1 from=1
            3 persist promised=1.1
            3->1 Promise b=1.1 snapshot=0 []
          2->1 Promise b=1.1 snapshot=0 []
            1->2 Heartbeat b=1.1 commit=0
            1->3 Heartbeat b=1.1 commit=0
            1 leader=1 b=1.1
          3->1 Promise b=1.1 snapshot=0 []
          1->2 Heartbeat b=1.1 commit=0
            2->1 HeartbeatAck b=1.1 commit=0
            2 leader=1 b=1.1
          1->3 Heartbeat b=1.1 commit=0
            3->1 HeartbeatAck b=1.1 commit=0
            3 leader=1 b=1.1
          2->1 HeartbeatAck b=1.1 commit=0
          3->1 HeartbeatAck b=1.1 commit=0
        > propose 7 at 1
          1 persist accepted 1:[7]@1.1
          1->2 Accept b=1.1 slot=1 [7] commit=0
          1->3 Accept b=1.1 slot=1 [7] commit=0
        > deliver_all
          1->2 Accept b=1.1 slot=1 [7] commit=0
            2 persist accepted 1:[7]@1.1
            2->1 Accepted b=1.1 slot=1
          1->3 Accept b=1.1 slot=1 [7] commit=0
            3 persist accepted 1:[7]@1.1
            3->1 Accepted b=1.1 slot=1
          2->1 Accepted b=1.1 slot=1
            1->2 Commit b=1.1 commit=1
            1->3 Commit b=1.1 commit=1
            1 apply 1:[7]
          3->1 Accepted b=1.1 slot=1
          1->2 Commit b=1.1 commit=1
            2 apply 1:[7]
          1->3 Commit b=1.1 commit=1
            3 apply 1:[7]
        > state
          1 leader promised=1.1 commit=1 snapshot=0 app=[7]
          2 follower of 1 promised=1.1 commit=1 snapshot=0 app=[7]
          3 follower of 1 promised=1.1 commit=1 snapshot=0 app=[7]
    "#]]);
}

/// Node 1 leads at ballot 1.1 and proposes 7, but both Accepts are lost: 7
/// is accepted by node 1 alone, a minority, and is not chosen. Node 3 times
/// out and prepares ballot 2.3; node 2 promises (its promise stays in
/// flight). Node 1, still leading, heartbeats and re-sends its unanswered
/// Accept; nodes 2 and 3 have promised 2.3, so they refuse with Nacks. The
/// first Nack deposes node 1, which steps down. Node 3's Prepare then reaches
/// node 1, whose promise reports 7 accepted at 1.1; that promise completes
/// node 3's quorum. Node 3 cannot know that 7 was not chosen, so it must
/// propose 7 again in slot 1, now at ballot 2.3, and 7 is chosen there.
///
/// Checks "Paxos Made Simple", §2.2 (phase 2a: propose the value of the
/// highest-numbered proposal reported, so that a possibly chosen value
/// survives) and "Paxos Made Moderately Complex", §3 (a leader preempted by a
/// higher ballot gives up its ballot).
#[test]
fn preemption_reproposes_a_minority_value() {
    let mut g = Group::new();
    g.elected(1);
    g.propose(1, 7);
    g.drop(1, 2);
    g.drop(1, 3);
    g.campaign(3);
    g.deliver(3, 2);
    g.tick(1, 1);
    g.deliver(1, 2);
    g.deliver(1, 3);
    g.deliver(2, 1);
    g.deliver(3, 1);
    g.deliver(1, 3);
    g.deliver_all();
    g.state();
    g.check(expect![[r#"
        > setup: node 1 campaigned, won and is followed by all
        > propose 7 at 1
          1 persist accepted 1:[7]@1.1
          1->2 Accept b=1.1 slot=1 [7] commit=0
          1->3 Accept b=1.1 slot=1 [7] commit=0
        > drop 1->2
          1->2 Accept b=1.1 slot=1 [7] commit=0 (lost)
        > drop 1->3
          1->3 Accept b=1.1 slot=1 [7] commit=0 (lost)
        > tick 3 until it campaigns (9 ticks)
          3 persist promised=2.3
          3->1 Prepare b=2.3 from=1
          3->2 Prepare b=2.3 from=1
          3 leader=none b=2.3
        > deliver 3->2
          3->2 Prepare b=2.3 from=1
            2 persist promised=2.3
            2->3 Promise b=2.3 snapshot=0 []
            2 leader=none b=2.3
        > tick 1 x1
          1->2 Heartbeat b=1.1 commit=0
          1->3 Heartbeat b=1.1 commit=0
          1->2 Accept b=1.1 slot=1 [7] commit=0
          1->3 Accept b=1.1 slot=1 [7] commit=0
        > deliver 1->2
          1->2 Heartbeat b=1.1 commit=0
            2->1 Nack b=1.1 promised=2.3
          1->2 Accept b=1.1 slot=1 [7] commit=0
            2->1 Nack b=1.1 promised=2.3
        > deliver 1->3
          1->3 Heartbeat b=1.1 commit=0
            3->1 Nack b=1.1 promised=2.3
          1->3 Accept b=1.1 slot=1 [7] commit=0
            3->1 Nack b=1.1 promised=2.3
        > deliver 2->1
          2->1 Nack b=1.1 promised=2.3
            1 leader=none b=1.1
          2->1 Nack b=1.1 promised=2.3
        > deliver 3->1
          3->1 Prepare b=2.3 from=1
            1 persist promised=2.3
            1->3 Promise b=2.3 snapshot=0 [1:[7]@1.1]
          3->1 Nack b=1.1 promised=2.3
          3->1 Nack b=1.1 promised=2.3
        > deliver 1->3
          1->3 Promise b=2.3 snapshot=0 [1:[7]@1.1]
            3 persist accepted 1:[7]@2.3
            3->1 Accept b=2.3 slot=1 [7] commit=0
            3->2 Accept b=2.3 slot=1 [7] commit=0
            3->1 Heartbeat b=2.3 commit=0
            3->2 Heartbeat b=2.3 commit=0
            3 leader=3 b=2.3
        > deliver_all
          2->3 Promise b=2.3 snapshot=0 []
          3->1 Accept b=2.3 slot=1 [7] commit=0
            1 persist accepted 1:[7]@2.3
            1->3 Accepted b=2.3 slot=1
            1 leader=3 b=2.3
          3->2 Accept b=2.3 slot=1 [7] commit=0
            2 persist accepted 1:[7]@2.3
            2->3 Accepted b=2.3 slot=1
            2 leader=3 b=2.3
          3->1 Heartbeat b=2.3 commit=0
            1->3 HeartbeatAck b=2.3 commit=0
          3->2 Heartbeat b=2.3 commit=0
            2->3 HeartbeatAck b=2.3 commit=0
          1->3 Accepted b=2.3 slot=1
            3->1 Commit b=2.3 commit=1
            3->2 Commit b=2.3 commit=1
            3 apply 1:[7]
          2->3 Accepted b=2.3 slot=1
          1->3 HeartbeatAck b=2.3 commit=0
          2->3 HeartbeatAck b=2.3 commit=0
          3->1 Commit b=2.3 commit=1
            1 apply 1:[7]
          3->2 Commit b=2.3 commit=1
            2 apply 1:[7]
        > state
          1 follower of 3 promised=2.3 commit=1 snapshot=0 app=[7]
          2 follower of 3 promised=2.3 commit=1 snapshot=0 app=[7]
          3 leader promised=2.3 commit=1 snapshot=0 app=[7]
    "#]]);
}

/// Node 3 is cut off while node 1 gets 7 and 8 chosen in slots 1 and 2 with
/// node 2. After the partition heals, node 1's next heartbeat tells node 3
/// that slots up to 2 are chosen. Node 3 holds nothing there, so it asks for
/// the chosen entries from slot 1 on, receives both in one CatchUp and
/// applies them in slot order.
///
/// Checks "Paxos Made Simple", §2.3 (a learner that missed the news asks for
/// it) and §3 (a server that does not know a command asks for it).
#[test]
fn isolated_follower_catches_up() {
    let mut g = Group::new();
    g.elected(1);
    g.isolate(3);
    g.propose(1, 7);
    g.deliver_all();
    g.propose(1, 8);
    g.deliver_all();
    g.heal();
    g.tick(1, 1);
    g.deliver_all();
    g.state();
    g.check(expect![[r#"
        > setup: node 1 campaigned, won and is followed by all
        > isolate 3
        > propose 7 at 1
          1 persist accepted 1:[7]@1.1
          1->2 Accept b=1.1 slot=1 [7] commit=0
          1->3 Accept b=1.1 slot=1 [7] commit=0
        > deliver_all
          1->2 Accept b=1.1 slot=1 [7] commit=0
            2 persist accepted 1:[7]@1.1
            2->1 Accepted b=1.1 slot=1
          1->3 Accept b=1.1 slot=1 [7] commit=0 (lost: isolated)
          2->1 Accepted b=1.1 slot=1
            1->2 Commit b=1.1 commit=1
            1->3 Commit b=1.1 commit=1
            1 apply 1:[7]
          1->2 Commit b=1.1 commit=1
            2 apply 1:[7]
          1->3 Commit b=1.1 commit=1 (lost: isolated)
        > propose 8 at 1
          1 persist accepted 2:[8]@1.1
          1->2 Accept b=1.1 slot=2 [8] commit=1
          1->3 Accept b=1.1 slot=2 [8] commit=1
        > deliver_all
          1->2 Accept b=1.1 slot=2 [8] commit=1
            2 persist accepted 2:[8]@1.1
            2->1 Accepted b=1.1 slot=2
          1->3 Accept b=1.1 slot=2 [8] commit=1 (lost: isolated)
          2->1 Accepted b=1.1 slot=2
            1->2 Commit b=1.1 commit=2
            1->3 Commit b=1.1 commit=2
            1 apply 2:[8]
          1->2 Commit b=1.1 commit=2
            2 apply 2:[8]
          1->3 Commit b=1.1 commit=2 (lost: isolated)
        > heal
        > tick 1 x1
          1->2 Heartbeat b=1.1 commit=2
          1->3 Heartbeat b=1.1 commit=2
        > deliver_all
          1->2 Heartbeat b=1.1 commit=2
            2->1 HeartbeatAck b=1.1 commit=2
          1->3 Heartbeat b=1.1 commit=2
            3->1 CatchUpRequest from=1
            3->1 HeartbeatAck b=1.1 commit=0
          2->1 HeartbeatAck b=1.1 commit=2
          3->1 CatchUpRequest from=1
            1->3 CatchUp from=1 [[7] [8]]
          3->1 HeartbeatAck b=1.1 commit=0
          1->3 CatchUp from=1 [[7] [8]]
            3 apply 1:[7] 2:[8]
        > state
          1 leader promised=1.1 commit=2 snapshot=0 app=[7, 8]
          2 follower of 1 promised=1.1 commit=2 snapshot=0 app=[7, 8]
          3 follower of 1 promised=1.1 commit=2 snapshot=0 app=[7, 8]
    "#]]);
}

/// As before, node 3 misses slots 1 and 2, but now node 1's application
/// snapshots its state through slot 2 and node 1 compacts those slots away.
/// After the heal, node 1 proposes 9 in slot 3. Node 3 accepts it and, told
/// that slots up to 2 are chosen, asks for slot 1 on. Node 1 no longer has
/// it, so its Ready lists node 3 in `snapshot_requests`, and the host
/// answers with `send_snapshot`. Meanwhile node 2's vote has chosen slot 3,
/// and node 1's Commit reaches node 3 before the snapshot: node 3 marks its
/// slot 3, accepted at the leader's ballot, as chosen, but cannot apply it
/// past the hole at slots 1 and 2. The snapshot fills the hole, so node 3's
/// next Ready carries the snapshot (install it first) and then slot 3.
///
/// Checks "Paxos Made Moderately Complex", §3 (Multi-Paxos in practice) for
/// the catch-up of a lagging replica, with the state-transfer shortcut its
/// "Paxos Made Pragmatic" section describes for compacted logs.
#[test]
fn lagging_follower_installs_snapshot() {
    let mut g = Group::new();
    g.elected(1);
    g.isolate(3);
    g.propose(1, 7);
    g.deliver_all();
    g.propose(1, 8);
    g.deliver_all();
    g.snapshot(1);
    g.heal();
    g.propose(1, 9);
    g.deliver_all();
    g.state();
    g.check(expect![[r#"
        > setup: node 1 campaigned, won and is followed by all
        > isolate 3
        > propose 7 at 1
          1 persist accepted 1:[7]@1.1
          1->2 Accept b=1.1 slot=1 [7] commit=0
          1->3 Accept b=1.1 slot=1 [7] commit=0
        > deliver_all
          1->2 Accept b=1.1 slot=1 [7] commit=0
            2 persist accepted 1:[7]@1.1
            2->1 Accepted b=1.1 slot=1
          1->3 Accept b=1.1 slot=1 [7] commit=0 (lost: isolated)
          2->1 Accepted b=1.1 slot=1
            1->2 Commit b=1.1 commit=1
            1->3 Commit b=1.1 commit=1
            1 apply 1:[7]
          1->2 Commit b=1.1 commit=1
            2 apply 1:[7]
          1->3 Commit b=1.1 commit=1 (lost: isolated)
        > propose 8 at 1
          1 persist accepted 2:[8]@1.1
          1->2 Accept b=1.1 slot=2 [8] commit=1
          1->3 Accept b=1.1 slot=2 [8] commit=1
        > deliver_all
          1->2 Accept b=1.1 slot=2 [8] commit=1
            2 persist accepted 2:[8]@1.1
            2->1 Accepted b=1.1 slot=2
          1->3 Accept b=1.1 slot=2 [8] commit=1 (lost: isolated)
          2->1 Accepted b=1.1 slot=2
            1->2 Commit b=1.1 commit=2
            1->3 Commit b=1.1 commit=2
            1 apply 2:[8]
          1->2 Commit b=1.1 commit=2
            2 apply 2:[8]
          1->3 Commit b=1.1 commit=2 (lost: isolated)
        > snapshot 1 through slot 2
        > heal
        > propose 9 at 1
          1 persist accepted 3:[9]@1.1
          1->2 Accept b=1.1 slot=3 [9] commit=2
          1->3 Accept b=1.1 slot=3 [9] commit=2
        > deliver_all
          1->2 Accept b=1.1 slot=3 [9] commit=2
            2 persist accepted 3:[9]@1.1
            2->1 Accepted b=1.1 slot=3
          1->3 Accept b=1.1 slot=3 [9] commit=2
            3 persist accepted 3:[9]@1.1
            3->1 Accepted b=1.1 slot=3
            3->1 CatchUpRequest from=1
          2->1 Accepted b=1.1 slot=3
            1->2 Commit b=1.1 commit=3
            1->3 Commit b=1.1 commit=3
            1 apply 3:[9]
          3->1 Accepted b=1.1 slot=3
          3->1 CatchUpRequest from=1
            1 snapshot requested by 3: send_snapshot slot=2
            1->3 InstallSnapshot slot=2 bytes=3
          1->2 Commit b=1.1 commit=3
            2 apply 3:[9]
          1->3 Commit b=1.1 commit=3
          1->3 InstallSnapshot slot=2 bytes=3
            3 install snapshot slot=2 [7, 8]
            3 apply 3:[9]
        > state
          1 leader promised=1.1 commit=3 snapshot=2 app=[7, 8, 9]
          2 follower of 1 promised=1.1 commit=3 snapshot=0 app=[7, 8, 9]
          3 follower of 1 promised=1.1 commit=3 snapshot=2 app=[7, 8, 9]
    "#]]);
}

/// Node 1 leads and proposes 7; only node 2 receives the Accept. Nodes 1 and
/// 2 form a majority, so 7 is chosen, but nobody knows: node 2's Accepted
/// is lost when node 1 crashes. Node 2 crashes too and restarts from what it
/// persisted: its promise of 1.1 and 7 accepted at 1.1. Node 3 times out;
/// node 2's promise reports 7, so node 3 proposes 7 again in slot 1 and it is
/// chosen, as it must be. When node 1 comes back it holds 7 at ballot 1.1,
/// not at the new leader's 2.3, so the commit point alone does not tell it
/// that its value is the chosen one: it fetches slot 1.
///
/// Checks "Paxos Made Simple", §2.2 (an acceptor must remember what it
/// promised and accepted even if it fails and restarts) and §2.5.
#[test]
fn restarted_acceptor_remembers_its_vote() {
    let mut g = Group::new();
    g.elected(1);
    g.propose(1, 7);
    g.deliver(1, 2);
    g.drop(1, 3);
    g.crash(1);
    g.crash(2);
    g.restart(2);
    g.campaign(3);
    g.deliver_all();
    g.restart(1);
    g.tick(3, 1);
    g.deliver_all();
    g.state();
    g.check(expect![[r#"
        > setup: node 1 campaigned, won and is followed by all
        > propose 7 at 1
          1 persist accepted 1:[7]@1.1
          1->2 Accept b=1.1 slot=1 [7] commit=0
          1->3 Accept b=1.1 slot=1 [7] commit=0
        > deliver 1->2
          1->2 Accept b=1.1 slot=1 [7] commit=0
            2 persist accepted 1:[7]@1.1
            2->1 Accepted b=1.1 slot=1
        > drop 1->3
          1->3 Accept b=1.1 slot=1 [7] commit=0 (lost)
        > crash 1
        > crash 2
        > restart 2 from promised=1.1 accepted=[1:[7]@1.1] snapshot=0
        > tick 3 until it campaigns (9 ticks)
          3 persist promised=2.3
          3->1 Prepare b=2.3 from=1
          3->2 Prepare b=2.3 from=1
          3 leader=none b=2.3
        > deliver_all
          2->1 Accepted b=1.1 slot=1 (lost: 1 is down)
          3->1 Prepare b=2.3 from=1 (lost: 1 is down)
          3->2 Prepare b=2.3 from=1
            2 persist promised=2.3
            2->3 Promise b=2.3 snapshot=0 [1:[7]@1.1]
          2->3 Promise b=2.3 snapshot=0 [1:[7]@1.1]
            3 persist accepted 1:[7]@2.3
            3->1 Accept b=2.3 slot=1 [7] commit=0
            3->2 Accept b=2.3 slot=1 [7] commit=0
            3->1 Heartbeat b=2.3 commit=0
            3->2 Heartbeat b=2.3 commit=0
            3 leader=3 b=2.3
          3->1 Accept b=2.3 slot=1 [7] commit=0 (lost: 1 is down)
          3->2 Accept b=2.3 slot=1 [7] commit=0
            2 persist accepted 1:[7]@2.3
            2->3 Accepted b=2.3 slot=1
            2 leader=3 b=2.3
          3->1 Heartbeat b=2.3 commit=0 (lost: 1 is down)
          3->2 Heartbeat b=2.3 commit=0
            2->3 HeartbeatAck b=2.3 commit=0
          2->3 Accepted b=2.3 slot=1
            3->1 Commit b=2.3 commit=1
            3->2 Commit b=2.3 commit=1
            3 apply 1:[7]
          2->3 HeartbeatAck b=2.3 commit=0
          3->1 Commit b=2.3 commit=1 (lost: 1 is down)
          3->2 Commit b=2.3 commit=1
            2 apply 1:[7]
        > restart 1 from promised=1.1 accepted=[1:[7]@1.1] snapshot=0
        > tick 3 x1
          3->1 Heartbeat b=2.3 commit=1
          3->2 Heartbeat b=2.3 commit=1
        > deliver_all
          3->1 Heartbeat b=2.3 commit=1
            1 persist promised=2.3
            1->3 CatchUpRequest from=1
            1->3 HeartbeatAck b=2.3 commit=0
            1 leader=3 b=2.3
          3->2 Heartbeat b=2.3 commit=1
            2->3 HeartbeatAck b=2.3 commit=1
          1->3 CatchUpRequest from=1
            3->1 CatchUp from=1 [[7]]
          1->3 HeartbeatAck b=2.3 commit=0
          2->3 HeartbeatAck b=2.3 commit=1
          3->1 CatchUp from=1 [[7]]
            1 apply 1:[7]
        > state
          1 follower of 3 promised=2.3 commit=1 snapshot=0 app=[7]
          2 follower of 3 promised=2.3 commit=1 snapshot=0 app=[7]
          3 leader promised=2.3 commit=1 snapshot=0 app=[7]
    "#]]);
}

//! The members: each runs the real `synod::server::member` on its own
//! simulated machine, over a simulated disk whose fsync takes time and
//! whose unsynced writes a crash loses. Here too are the fault controls:
//! kill and restart, pause, partitions, clock offsets and frame loss.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use consensus::NodeId;
use madsim::net::NetSim;
use madsim::runtime::{Handle, NodeHandle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use synod::hooks::{Hooks, LinkFaults, LinkVerdict};
use synod::node::{MemberAddrs, NodeConfig};
use synod::peer::PeerFrame;
use synod::resp::Limits;
use synod::server::{ServerConfig, member};
use synod::storage::{Disk, MemDisk};
use tokio::net::TcpListener;

use crate::options::{LinkFaultRates, Options, PartitionKind};
use crate::trace::Event;
use crate::world::{SimObserver, World};

/// The port members listen on for each other.
const PEER_PORT: u16 = 7811;
/// The port members listen on for clients.
const CLIENT_PORT: u16 = 7711;

/// Member `id`'s address.
pub fn member_ip(id: NodeId) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8))
}

/// A shared, seeded generator: every draw happens on madsim's one thread
/// in an order the seed fixes.
pub type SharedRng = Arc<Mutex<SmallRng>>;

fn draw<T>(rng: &SharedRng, f: impl FnOnce(&mut SmallRng) -> T) -> T {
    f(&mut rng.lock().unwrap_or_else(|p| p.into_inner()))
}

/// A [`MemDisk`] whose fsyncs and other durable writes take simulated
/// time, so that a crash can land between a write and its fsync.
#[derive(Clone)]
pub struct SimDisk {
    inner: MemDisk,
    rng: SharedRng,
    fsync_us: (u64, u64),
}

impl SimDisk {
    fn latency(&self) -> Duration {
        let (low, high) = self.fsync_us;
        Duration::from_micros(draw(&self.rng, |rng| rng.random_range(low..=high)))
    }
}

impl Disk for SimDisk {
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        self.inner.read(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.inner.append(name, bytes)
    }

    fn sync(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let latency = self.latency();
        let disk = self.inner.clone();
        let name = name.to_string();
        let existed = disk.len(&name).is_some();
        async move {
            tokio::time::sleep(latency).await;
            match disk.sync(&name).await {
                // Removed while the fsync ran, as a rotated segment can be:
                // a real fsync of the open file would have succeeded.
                Err(error) if error.kind() == io::ErrorKind::NotFound && existed => Ok(()),
                result => result,
            }
        }
    }

    fn truncate(
        &self,
        name: &str,
        len_bytes: u64,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let done = self.inner.truncate(name, len_bytes);
        let latency = self.latency();
        async move {
            tokio::time::sleep(latency).await;
            done.await
        }
    }

    fn write_atomic(
        &self,
        name: &str,
        parts: Vec<Bytes>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let done = self.inner.write_atomic(name, parts);
        let latency = self.latency();
        async move {
            tokio::time::sleep(latency).await;
            done.await
        }
    }

    fn remove(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let done = self.inner.remove(name);
        let latency = self.latency();
        async move {
            tokio::time::sleep(latency).await;
            done.await
        }
    }
}

/// Frame loss and delay for every member's transport, on during the fault
/// phase only.
pub struct SimLinks {
    on: AtomicBool,
    rates: LinkFaultRates,
    rng: SharedRng,
    dropped: AtomicU64,
    delayed: AtomicU64,
}

impl LinkFaults for SimLinks {
    fn verdict(&self, _from: NodeId, _to: NodeId, _frame: &PeerFrame) -> LinkVerdict {
        if !self.on.load(Ordering::Relaxed) {
            return LinkVerdict::Deliver;
        }
        let rates = &self.rates;
        draw(&self.rng, |rng| {
            if rng.random_range(0..1000) < rates.drop_per_mille {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                LinkVerdict::Drop
            } else if rng.random_range(0..1000) < rates.delay_per_mille {
                self.delayed.fetch_add(1, Ordering::Relaxed);
                LinkVerdict::Delay(Duration::from_millis(
                    rng.random_range(1..=rates.max_delay_ms),
                ))
            } else {
                LinkVerdict::Deliver
            }
        })
    }
}

/// Writes every peer frame and its fate to the trace, when the run is
/// traced to a file; the frame loss and delay, if on, decide the fate.
struct TracedLinks {
    world: Arc<World>,
    faults: Option<Arc<SimLinks>>,
}

impl LinkFaults for TracedLinks {
    fn verdict(&self, from: NodeId, to: NodeId, frame: &PeerFrame) -> LinkVerdict {
        let verdict = self.faults.as_ref().map_or(LinkVerdict::Deliver, |faults| {
            faults.verdict(from, to, frame)
        });
        let frame = match frame {
            PeerFrame::Paxos(message) => message.to_string(),
            PeerFrame::Hello { from } => format!("Hello from={from}"),
            PeerFrame::Forward { requests, .. } => format!("Forward {} requests", requests.len()),
            PeerFrame::Refused { request_ids, .. } => {
                format!("Refused {} requests", request_ids.len())
            }
        };
        let fate = match verdict {
            LinkVerdict::Deliver => "deliver".to_string(),
            LinkVerdict::Drop => "drop".to_string(),
            LinkVerdict::Delay(delay) => format!("delay {} ms", delay.as_millis()),
        };
        self.world.record(Event::Message {
            from,
            to,
            frame,
            fate,
        });
        verdict
    }
}

/// Where a member is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// Running.
    Up,
    /// Not running; its tasks wait.
    Paused,
    /// Killed; restarts on its disk's durable content.
    Down,
}

/// One member and its simulated machine.
pub struct Member {
    node: NodeHandle,
    disk: MemDisk,
    clock_offset_ms: Arc<AtomicI64>,
    /// Where it is in its life.
    pub state: MemberState,
}

/// The cluster and its fault controls.
pub struct Cluster {
    handle: Handle,
    world: Arc<World>,
    rng: SharedRng,
    /// The members, by id.
    pub members: BTreeMap<NodeId, Member>,
    links: Option<Arc<SimLinks>>,
    /// Links cut now, by member id: no bytes from the first to the second.
    cut: BTreeSet<(NodeId, NodeId)>,
}

/// What a member's start-up needs, kept for its restarts.
struct MemberSpec {
    id: NodeId,
    members: BTreeMap<NodeId, MemberAddrs>,
    seed: u64,
    runs: AtomicU64,
    disk: SimDisk,
    hooks: Hooks,
    snapshot_after_bytes: u64,
    request_timeout: Duration,
    world: Arc<World>,
}

impl MemberSpec {
    /// One run of the member: recovers from its disk and serves until
    /// killed.
    async fn run(self: Arc<Self>) {
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        let mut config = NodeConfig::new(self.id, self.members.clone());
        // Each run draws its own election jitter and job ids. The member
        // derives its connections' seeds by xor with multiples of one
        // constant, so the runs' seeds must not be related that way.
        config.seed = SmallRng::seed_from_u64(self.seed ^ (self.id << 48) ^ run).random();
        config.snapshot_after_bytes = self.snapshot_after_bytes;
        config.request_timeout = self.request_timeout;
        config.hooks = self.hooks.clone();
        let server = Arc::new(ServerConfig {
            node_id: self.id,
            members: self.members.clone(),
            limits: Limits::default(),
            max_pending_per_connection: 64,
            max_clients: 100,
            request_timeout: config.request_timeout,
            seed: config.seed,
        });
        let listen = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
        let listeners = match (
            TcpListener::bind(listen(PEER_PORT)).await,
            TcpListener::bind(listen(CLIENT_PORT)).await,
        ) {
            (Ok(peers), Ok(clients)) => (peers, clients),
            (Err(error), _) | (_, Err(error)) => {
                self.world.find(
                    "harness",
                    format!("member {} cannot listen: {error}", self.id),
                );
                return;
            }
        };
        let result = member(
            config,
            server,
            self.disk.clone(),
            listeners,
            std::future::pending(),
        )
        .await;
        // It runs until killed; returning means it gave up.
        let error = match result {
            Ok(()) => "returned without being asked to stop".to_string(),
            Err(error) => error.to_string(),
        };
        self.world.record(Event::MemberStopped {
            node: self.id,
            error: error.clone(),
        });
        self.world
            .find("member stopped", format!("member {}: {error}", self.id));
    }
}

impl Cluster {
    /// Starts `options.members` members on their own machines.
    pub fn start(
        handle: &Handle,
        options: &Options,
        world: Arc<World>,
        rng: SharedRng,
        #[cfg(feature = "canaries")] canary: Option<synod::hooks::NodeCanary>,
    ) -> Cluster {
        let ids: Vec<NodeId> = (1..=options.members as NodeId).collect();
        let addrs: BTreeMap<NodeId, MemberAddrs> = ids
            .iter()
            .map(|&id| {
                let addrs = MemberAddrs {
                    peer: SocketAddr::new(member_ip(id), PEER_PORT),
                    client: Some(SocketAddr::new(member_ip(id), CLIENT_PORT)),
                };
                (id, addrs)
            })
            .collect();
        let links = options.link_faults.clone().map(|rates| {
            Arc::new(SimLinks {
                on: AtomicBool::new(false),
                rates,
                rng: rng.clone(),
                dropped: AtomicU64::new(0),
                delayed: AtomicU64::new(0),
            })
        });
        let observer = Arc::new(SimObserver(world.clone()));
        // A traced run writes every frame; an untraced one pays nothing.
        let link_hook: Option<Arc<dyn LinkFaults>> = if world.lock().is_tracing() {
            Some(Arc::new(TracedLinks {
                world: world.clone(),
                faults: links.clone(),
            }))
        } else {
            links.clone().map(|l| l as Arc<dyn LinkFaults>)
        };
        let mut members = BTreeMap::new();
        for &id in &ids {
            let disk = MemDisk::new();
            let clock_offset_ms = Arc::new(AtomicI64::new(0));
            let hooks = Hooks {
                observer: Some(observer.clone()),
                links: link_hook.clone(),
                clock_offset_ms: Some(clock_offset_ms.clone()),
                #[cfg(feature = "canaries")]
                canary,
            };
            let spec = Arc::new(MemberSpec {
                id,
                members: addrs.clone(),
                seed: options.seed,
                runs: AtomicU64::new(0),
                disk: SimDisk {
                    inner: disk.clone(),
                    rng: rng.clone(),
                    fsync_us: options.fsync_us,
                },
                hooks,
                snapshot_after_bytes: options.snapshot_after_bytes,
                request_timeout: Duration::from_millis(options.request_timeout_ms),
                world: world.clone(),
            });
            let node = handle
                .create_node()
                .name(format!("member-{id}"))
                .ip(member_ip(id))
                .init(move || spec.clone().run())
                .build();
            members.insert(
                id,
                Member {
                    node,
                    disk,
                    clock_offset_ms,
                    state: MemberState::Up,
                },
            );
        }
        Cluster {
            handle: handle.clone(),
            world,
            rng,
            members,
            links,
            cut: BTreeSet::new(),
        }
    }

    /// Every member's client address.
    pub fn client_addrs(&self) -> Vec<(NodeId, SocketAddr)> {
        self.members
            .keys()
            .map(|&id| (id, SocketAddr::new(member_ip(id), CLIENT_PORT)))
            .collect()
    }

    /// Members in `state`.
    pub fn in_state(&self, state: MemberState) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|(_, m)| m.state == state)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Kills member `id` (running or paused); its disk keeps only what
    /// was synced, and perhaps a torn part of the rest.
    pub fn kill(&mut self, id: NodeId) {
        let member = self.members.get_mut(&id).expect("a member");
        assert_ne!(member.state, MemberState::Down, "member {id} is down");
        self.handle.kill(member.node.id());
        draw(&self.rng, |rng| member.disk.crash(rng));
        member.state = MemberState::Down;
        self.world.lock().member_killed(id);
        self.world.count(|s| s.kills += 1);
        self.world.record(Event::Kill { node: id });
    }

    /// Starts killed member `id` again on what its disk kept.
    pub fn restart(&mut self, id: NodeId) {
        let member = self.members.get_mut(&id).expect("a member");
        assert_eq!(member.state, MemberState::Down, "member {id} is not down");
        // Killed first (in `kill`): a restart alone would leave its ports
        // bound.
        self.handle.restart(member.node.id());
        member.state = MemberState::Up;
        self.world.record(Event::Restart { node: id });
    }

    /// Stops member `id`'s tasks from running.
    pub fn pause(&mut self, id: NodeId) {
        let member = self.members.get_mut(&id).expect("a member");
        assert_eq!(member.state, MemberState::Up, "member {id} is not up");
        self.handle.pause(member.node.id());
        member.state = MemberState::Paused;
        self.world.count(|s| s.pauses += 1);
        self.world.record(Event::Pause { node: id });
    }

    /// Lets paused member `id` run again.
    pub fn resume(&mut self, id: NodeId) {
        let member = self.members.get_mut(&id).expect("a member");
        if member.state != MemberState::Paused {
            return;
        }
        self.handle.resume(member.node.id());
        member.state = MemberState::Up;
        self.world.record(Event::Resume { node: id });
    }

    /// Sets member `id`'s clock offset.
    pub fn set_clock_offset(&mut self, id: NodeId, offset_ms: i64) {
        let member = &self.members[&id];
        if member.clock_offset_ms.swap(offset_ms, Ordering::Relaxed) != offset_ms {
            self.world.record(Event::ClockOffset {
                node: id,
                offset_ms,
            });
        }
    }

    /// Member `id`'s clock offset.
    pub fn clock_offset(&self, id: NodeId) -> i64 {
        self.members[&id].clock_offset_ms.load(Ordering::Relaxed)
    }

    /// Turns frame loss and delay on or off (if this run has them).
    pub fn set_link_faults(&mut self, on: bool) {
        if let Some(links) = &self.links {
            if links.on.swap(on, Ordering::Relaxed) != on {
                self.world.record(Event::LinkFaults { on });
            }
        }
    }

    /// Frames lost and delayed so far.
    pub fn link_fault_counts(&self) -> (u64, u64) {
        self.links.as_ref().map_or((0, 0), |l| {
            (
                l.dropped.load(Ordering::Relaxed),
                l.delayed.load(Ordering::Relaxed),
            )
        })
    }

    /// Cuts the links `cut` (pairs of member ids, one direction each).
    /// Bytes on a cut link wait; connections stay open.
    pub fn partition(&mut self, kind: PartitionKind, cut: BTreeSet<(NodeId, NodeId)>) {
        let net = NetSim::current();
        for &(from, to) in &cut {
            if self.cut.insert((from, to)) {
                net.clog_link(self.members[&from].node.id(), self.members[&to].node.id());
            }
        }
        self.world.count(|s| s.partitions += 1);
        self.world.record(Event::Partition {
            kind,
            cut: cut.into_iter().collect(),
        });
    }

    /// True while any link is cut.
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    /// Restores every cut link.
    pub fn heal_network(&mut self) {
        if self.cut.is_empty() {
            return;
        }
        let net = NetSim::current();
        for (from, to) in std::mem::take(&mut self.cut) {
            net.unclog_link(self.members[&from].node.id(), self.members[&to].node.id());
        }
        self.world.record(Event::HealNetwork);
    }

    /// Ends every fault: links restored, paused members resumed, killed
    /// ones restarted, clocks true again, no frame loss.
    pub fn heal(&mut self) {
        self.heal_network();
        self.set_link_faults(false);
        let ids: Vec<NodeId> = self.members.keys().copied().collect();
        for id in ids {
            match self.members[&id].state {
                MemberState::Paused => self.resume(id),
                MemberState::Down => self.restart(id),
                MemberState::Up => {}
            }
            self.set_clock_offset(id, 0);
        }
    }
}

/// A new shared generator for `seed`, salted by `purpose`.
pub fn shared_rng(seed: u64, purpose: u64) -> SharedRng {
    Arc::new(Mutex::new(SmallRng::seed_from_u64(
        seed ^ purpose.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    )))
}

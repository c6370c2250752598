//! The `synod` command line: what each command and flag means.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use consensus::NodeId;

use crate::node::MemberAddrs;

/// Synod: a job queue replicated by Multi-Paxos, speaking Disque's commands
/// over RESP (redis-cli and Disque client libraries work against it).
#[derive(Debug, Parser)]
#[command(name = "synod", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The `synod` commands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run one member of a cluster in the foreground.
    Node(NodeArgs),
    /// Run a local three-member cluster as three child processes (client
    /// ports 7711-7713, data under ./synod-data/), until Ctrl-C.
    Dev(DevArgs),
    /// Load a running cluster and report throughput and latency (p50, p99,
    /// p999) for enqueue, dequeue+ack or mixed workloads.
    Bench(BenchArgs),
    /// Show each member's role, ballot, chosen and applied slots and queue
    /// count.
    Status(StatusArgs),
}

/// `synod node`: one member.
#[derive(Clone, Debug, Args)]
pub struct NodeArgs {
    /// This member's id: one of the ids in --peers.
    #[arg(long)]
    pub id: NodeId,
    /// Address for clients (RESP).
    #[arg(long, default_value = "127.0.0.1:7711")]
    pub listen: SocketAddr,
    /// Address for the other members.
    #[arg(long, default_value = "127.0.0.1:7811")]
    pub peer_listen: SocketAddr,
    /// Every member's peer address, this one included: `1=host:port,2=...`.
    /// The number of members must be odd.
    #[arg(long, value_parser = parse_member_map, required = true)]
    pub peers: MemberMap,
    /// Every member's client address, so that HELLO can list them:
    /// `1=host:port,2=...` (optional).
    #[arg(long, value_parser = parse_member_map)]
    pub clients: Option<MemberMap>,
    /// Directory for this member's log and snapshots (created if missing).
    #[arg(long)]
    pub data: PathBuf,
    /// When to fsync the log. `always` (the default) makes every reply wait
    /// for durability; `never` is for experiments only: a machine crash
    /// can lose acknowledged jobs and break consensus.
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    pub fsync: Fsync,
    /// Largest argument (e.g. a job body) a client may send, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Take a snapshot and drop older log segments once the current
    /// segment reaches this many bytes, or the size of the last snapshot
    /// if that is larger (so that writing snapshots never costs more than
    /// writing the log).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub snapshot_after_bytes: u64,
    /// Seed for this member's randomness (election jitter, job ids);
    /// defaults to one drawn at start.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `--fsync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Fsync {
    /// fsync before anything that depends on a record leaves the member.
    Always,
    /// Never fsync (unsafe; for measuring what durability costs).
    Never,
}

/// `synod dev`: a local cluster.
#[derive(Clone, Debug, Args)]
pub struct DevArgs {
    /// Number of members (odd).
    #[arg(long, default_value_t = 3)]
    pub members: u64,
    /// Client port of member 1; member N listens on this + N - 1.
    #[arg(long, default_value_t = 7711)]
    pub base_port: u16,
    /// Peer port of member 1; member N listens on this + N - 1.
    #[arg(long, default_value_t = 7811)]
    pub base_peer_port: u16,
    /// Where the members keep their data (one directory each).
    #[arg(long, default_value = "synod-data")]
    pub data: PathBuf,
    /// Passed to each member.
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    pub fsync: Fsync,
}

/// `synod status`.
#[derive(Clone, Debug, Args)]
pub struct StatusArgs {
    /// Members' client addresses (default: the `synod dev` cluster).
    #[arg(default_values_t = dev_cluster_addrs())]
    pub addrs: Vec<SocketAddr>,
}

/// `synod bench`.
#[derive(Clone, Debug, Args)]
pub struct BenchArgs {
    /// Members' client addresses (default: the `synod dev` cluster).
    #[arg(default_values_t = dev_cluster_addrs())]
    pub addrs: Vec<SocketAddr>,
    /// What to do: ADDJOBs; GETJOB+ACKJOB rounds over jobs added first
    /// (--jobs of them); or both, alternating on every pipeline lane.
    #[arg(long, short, value_enum, default_value_t = Workload::Enqueue)]
    pub workload: Workload,
    /// Which members to connect to: the leader only (found with INFO), or
    /// every member given, connections spread round-robin.
    #[arg(long, value_enum, default_value_t = Target::Leader)]
    pub target: Target,
    /// Client connections.
    #[arg(long, short, default_value_t = 16)]
    pub connections: usize,
    /// Requests each connection keeps in flight (redis-benchmark's -P).
    #[arg(long, short = 'P', default_value_t = 16)]
    pub pipeline: usize,
    /// Job body size in bytes.
    #[arg(long, short = 'd', default_value_t = 100)]
    pub body_size: usize,
    /// Seconds to run the measured phase.
    #[arg(long = "duration", short = 't', default_value_t = 10.0)]
    pub duration_secs: f64,
    /// Jobs to add before a dequeue run.
    #[arg(long, short = 'n', default_value_t = 200_000)]
    pub jobs: u64,
    /// Jobs per GETJOB (its COUNT).
    #[arg(long, short, default_value_t = 64)]
    pub batch: u32,
    /// Queue name (default: bench-<pid>, a fresh queue).
    #[arg(long, short)]
    pub queue: Option<String>,
    /// Print one JSON object per phase instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `synod bench --workload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// ADDJOB, each answered once durable on a majority.
    Enqueue,
    /// GETJOB NOHANG COUNT --batch, then ACKJOB of the jobs it got.
    Dequeue,
    /// ADDJOB then GETJOB+ACKJOB, in turn, on every lane.
    Mixed,
}

/// `synod bench --target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The member that leads (followers would forward to it anyway).
    Leader,
    /// Every member given.
    All,
}

/// The client addresses of a `synod dev` cluster with its default ports.
fn dev_cluster_addrs() -> Vec<SocketAddr> {
    (7711..=7713)
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .collect()
}

/// Member id to address.
pub type MemberMap = BTreeMap<NodeId, SocketAddr>;

/// Parses `1=host:port,2=host:port`.
pub fn parse_member_map(text: &str) -> Result<MemberMap, String> {
    let mut map = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected ID=HOST:PORT"))?;
        let id: NodeId = id
            .trim()
            .parse()
            .map_err(|_| format!("`{id}`: a member id is a positive number"))?;
        if id == 0 {
            return Err("member id 0 is reserved; use 1, 2, 3, ...".to_string());
        }
        let addr = resolve(addr.trim())?;
        if map.insert(id, addr).is_some() {
            return Err(format!("member {id} is listed twice"));
        }
    }
    if map.is_empty() {
        return Err("no members listed".to_string());
    }
    Ok(map)
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    addr.to_socket_addrs()
        .map_err(|e| format!("`{addr}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{addr}` resolves to no address"))
}

impl NodeArgs {
    /// The members with their addresses, checked against this member's.
    pub fn members(&self) -> Result<BTreeMap<NodeId, MemberAddrs>, String> {
        if !self.peers.contains_key(&self.id) {
            return Err(format!(
                "--id {} is not among --peers ({})",
                self.id,
                self.peers
                    .keys()
                    .map(|id| id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.peers.len() % 2 == 0 {
            return Err(format!(
                "a cluster needs an odd number of members, --peers lists {}",
                self.peers.len()
            ));
        }
        let mut members = BTreeMap::new();
        for (&id, &peer) in &self.peers {
            let mut client = self.clients.as_ref().and_then(|c| c.get(&id).copied());
            if id == self.id {
                client = Some(self.listen);
            }
            members.insert(id, MemberAddrs { peer, client });
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_maps_parse_and_explain_mistakes() {
        let map = parse_member_map("1=127.0.0.1:7811, 2=127.0.0.1:7812").expect("valid");
        assert_eq!(map.len(), 2);
        assert_eq!(map[&2], "127.0.0.1:7812".parse().expect("literal"));
        assert_eq!(
            parse_member_map("1=127.0.0.1:7811,1=127.0.0.1:7812"),
            Err("member 1 is listed twice".to_string())
        );
        assert_eq!(
            parse_member_map("x=127.0.0.1:1"),
            Err("`x`: a member id is a positive number".to_string())
        );
        assert!(parse_member_map("1").is_err());
        assert!(parse_member_map("0=127.0.0.1:1").is_err());
        assert!(parse_member_map("").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

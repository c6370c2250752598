//! The real member code under madsim: three simulated machines run
//! `server::member` on simulated disks, and a client on a fourth adds a job
//! through one member, takes it through another and acks it through the
//! third. Built only with `--cfg madsim`; `sim_build.rs` builds and runs it
//! so that the crate stays simulation-ready.
#![cfg(madsim)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use madsim::runtime::Handle;
use synod::node::{MemberAddrs, NodeConfig};
use synod::resp::{self, ReplyParser, Value};
use synod::server::{ServerConfig, member};
use synod::storage::MemDisk;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

async fn call(
    stream: &mut TcpStream,
    parser: &mut ReplyParser,
    buf: &mut BytesMut,
    args: &[&str],
) -> Value {
    let mut out = BytesMut::new();
    resp::encode_request(args, &mut out);
    stream.write_all(&out).await.expect("send");
    stream.flush().await.expect("flush");
    loop {
        if let Some(value) = parser.parse(buf).expect("valid reply") {
            return value;
        }
        assert!(stream.read_buf(buf).await.expect("read") > 0, "closed");
    }
}

async fn client(addr: SocketAddr) -> (TcpStream, ReplyParser, BytesMut) {
    (
        TcpStream::connect(addr).await.expect("connect"),
        ReplyParser::new(),
        BytesMut::new(),
    )
}

#[madsim::test]
async fn three_simulated_members_replicate_a_job() {
    let handle = Handle::current();
    let members: BTreeMap<u64, MemberAddrs> = (1..=3)
        .map(|id| {
            let addrs = MemberAddrs {
                peer: SocketAddr::new(ip(id as u8), 7811),
                client: Some(SocketAddr::new(ip(id as u8), 7711)),
            };
            (id, addrs)
        })
        .collect();
    for id in 1..=3u64 {
        let members = members.clone();
        let disk = MemDisk::new();
        handle
            .create_node()
            .name(format!("member-{id}"))
            .ip(ip(id as u8))
            .init(move || {
                let (members, disk) = (members.clone(), disk.clone());
                async move {
                    let mut config = NodeConfig::new(id, members.clone());
                    config.seed = 7 + id;
                    let server = Arc::new(ServerConfig {
                        node_id: id,
                        members,
                        limits: resp::Limits::default(),
                        max_pending_per_connection: 64,
                        max_clients: 100,
                        request_timeout: config.request_timeout,
                        seed: config.seed,
                    });
                    let peers = TcpListener::bind("0.0.0.0:7811").await.expect("bind peers");
                    let clients = TcpListener::bind("0.0.0.0:7711")
                        .await
                        .expect("bind clients");
                    member(
                        config,
                        server,
                        disk,
                        (peers, clients),
                        std::future::pending(),
                    )
                    .await
                    .expect("member runs");
                }
            })
            .build();
    }
    let user = handle.create_node().name("client").ip(ip(9)).build();
    user.spawn(async move {
        // Elections take a few hundred simulated milliseconds.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (mut one, mut p1, mut b1) = client(SocketAddr::new(ip(1), 7711)).await;
        let added = call(&mut one, &mut p1, &mut b1, &["ADDJOB", "q", "hello", "0"]).await;
        let Value::Simple(id) = added else {
            panic!("ADDJOB answered {added:?}")
        };
        let (mut two, mut p2, mut b2) = client(SocketAddr::new(ip(2), 7711)).await;
        let got = call(
            &mut two,
            &mut p2,
            &mut b2,
            &["GETJOB", "TIMEOUT", "5000", "FROM", "q"],
        )
        .await;
        let Value::Array(jobs) = got else {
            panic!("GETJOB answered {got:?}")
        };
        assert_eq!(
            jobs,
            vec![Value::Array(vec![
                Value::Bulk("q".into()),
                Value::Bulk(id.clone().into()),
                Value::Bulk("hello".into()),
            ])]
        );
        let (mut three, mut p3, mut b3) = client(SocketAddr::new(ip(3), 7711)).await;
        let acked = call(&mut three, &mut p3, &mut b3, &["ACKJOB", &id]).await;
        assert_eq!(acked, Value::Integer(1));
        // Every member applies the ack.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (stream, parser, buf) in [(&mut one, &mut p1, &mut b1), (&mut two, &mut p2, &mut b2)] {
            assert_eq!(call(stream, parser, buf, &["SHOW", &id]).await, Value::Null);
        }
    })
    .await
    .expect("the client's exchange");
}

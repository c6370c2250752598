//! Bad input from clients never crashes or hangs a member: errors come back
//! as RESP errors, and the connection stays usable (or, for broken
//! protocol, is closed cleanly); truncated requests, huge lengths, garbage
//! and deep pipelines leave it serving; it stops cleanly on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use synod::resp::Value;
use system_tests::Cluster;

/// Sends raw bytes on a new connection and reads until the reply contains
/// `until` or the member closes the connection; returns what arrived and
/// whether it closed.
fn raw_exchange(cluster: &Cluster, bytes: &[u8], until: &str) -> (String, bool) {
    let mut stream = TcpStream::connect(cluster.specs[&1].client).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(bytes).expect("send");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut closed = false;
    while !String::from_utf8_lossy(&got).contains(until) {
        match stream.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(error) => panic!("no reply containing {until:?}: {error}; got {got:?}"),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[test]
fn client_mistakes_get_errors_and_the_connection_stays_usable() {
    let mut cluster = Cluster::start_with("bad-input", 1, &["--max-body-bytes", "1024"]);
    cluster.wait_for_leader(Duration::from_secs(20));
    let mut client = cluster.client(1);

    let unknown = client.call(&["FROBNICATE", "x"]).expect("reply");
    assert_eq!(
        unknown,
        Value::Error("ERR unknown command 'FROBNICATE', with args beginning with: 'x' ".into())
    );
    let arity = client.call(&["ADDJOB", "q"]).expect("reply");
    assert_eq!(
        arity,
        Value::Error("ERR wrong number of arguments for 'addjob' command".into())
    );
    let bad_id = client.call(&["ACKJOB", "not-an-id"]).expect("reply");
    assert_eq!(bad_id, Value::Error("BADID Invalid Job ID format.".into()));
    let big = "x".repeat(4096);
    let oversized = client.call(&["ADDJOB", "q", &big, "0"]).expect("reply");
    assert!(
        matches!(&oversized, Value::Error(e) if e.contains("argument too long")),
        "{oversized:?}"
    );
    assert_eq!(
        client.call(&["QLEN", "q"]).expect("reply"),
        Value::Integer(0)
    );
    assert_eq!(
        client.call(&["PING"]).expect("reply"),
        Value::Simple("PONG".into())
    );

    // Broken protocol: an error, then the connection is closed.
    let (reply, closed) = raw_exchange(&cluster, b"*1\r\n$x\r\n", "never in a reply");
    assert!(reply.starts_with("-ERR Protocol error"), "{reply:?}");
    assert!(
        closed,
        "the connection should be closed after a protocol error"
    );
    // Inline commands, as typed into telnet, work.
    let (reply, _) = raw_exchange(&cluster, b"PING\r\n", "\r\n");
    assert_eq!(reply, "+PONG\r\n");
    // A flood of garbage does not hurt the member.
    let garbage: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut stream = TcpStream::connect(cluster.specs[&1].client).expect("connect");
    let _ = stream.write_all(&garbage);
    drop(stream);
    assert_eq!(
        client.call(&["PING"]).expect("reply"),
        Value::Simple("PONG".into())
    );

    // A huge bulk length is refused before anything is allocated, and the
    // connection closed.
    let (reply, closed) = raw_exchange(
        &cluster,
        b"*2\r\n$4\r\nPING\r\n$99999999999\r\n",
        "never in a reply",
    );
    assert!(reply.starts_with("-ERR Protocol error"), "{reply:?}");
    assert!(closed);
    // A client that vanishes in the middle of a command leaves nothing
    // behind.
    let mut stream = TcpStream::connect(cluster.specs[&1].client).expect("connect");
    stream
        .write_all(b"*4\r\n$6\r\nADDJOB\r\n$1\r\nq\r\n$5\r\nhel")
        .expect("send");
    drop(stream);
    assert_eq!(
        client.call(&["QLEN", "q"]).expect("reply"),
        Value::Integer(0)
    );
    // 10,000 pipelined commands in one write get 10,000 replies, in order.
    let mut pipelined = Vec::new();
    for i in 0..10_000 {
        let message = format!("m{i}");
        pipelined.extend_from_slice(
            format!("*2\r\n$4\r\nECHO\r\n${}\r\n{message}\r\n", message.len()).as_bytes(),
        );
    }
    let (replies, _) = raw_exchange(&cluster, &pipelined, "$5\r\nm9999\r\n");
    let echoed: Vec<&str> = replies
        .split("\r\n")
        .filter(|line| line.starts_with('m'))
        .collect();
    assert_eq!(echoed.len(), 10_000);
    assert!(
        echoed
            .iter()
            .enumerate()
            .all(|(i, m)| *m == format!("m{i}"))
    );

    // SIGTERM: a clean stop.
    let pid = cluster.pid(1).expect("running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = cluster
        .wait_exit(1, Duration::from_secs(10))
        .expect("it should stop on SIGTERM");
    assert!(exit.success(), "exit status {exit:?}\n{}", cluster.log(1));
    assert!(cluster.log(1).contains("stopped"));
}

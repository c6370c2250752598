//! How long GETJOB waits, end to end: a queue paused for output blocks it
//! without filling the log, a client that leaves while blocked takes no
//! job with it, and GETJOB answers (rather than waiting forever) when no
//! leader can be reached.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use synod::resp::Value;
use system_tests::Cluster;

fn applied_slot(cluster: &Cluster, member: u64) -> u64 {
    let info = cluster.info(member).expect("INFO");
    info["applied_slot"].parse().expect("a slot number")
}

#[test]
fn getjob_on_a_queue_paused_for_output_waits_without_filling_the_log() {
    let cluster = Cluster::start("getjob-paused", 3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let mut client = cluster.client(leader);
    client.call(&["ADDJOB", "held", "j", "0"]).expect("ADDJOB");
    client.call(&["PAUSE", "held", "out"]).expect("PAUSE");
    let before = applied_slot(&cluster, leader);
    let started = Instant::now();
    let reply = client
        .call(&["GETJOB", "TIMEOUT", "1500", "FROM", "held"])
        .expect("GETJOB");
    assert_eq!(reply, Value::NullArray);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    let after = applied_slot(&cluster, leader);
    // A few ticks may be proposed meanwhile, not one GETJOB per pass.
    assert!(after - before < 20, "slots {before} -> {after}");
}

#[test]
fn a_client_that_leaves_while_blocked_takes_no_job() {
    let cluster = Cluster::start("getjob-leaves", 3);
    cluster.wait_for_leader(Duration::from_secs(20));
    let addr = cluster.specs[&1].client;
    let mut ghost = TcpStream::connect(addr).expect("connect");
    ghost
        .write_all(b"*3\r\n$6\r\nGETJOB\r\n$4\r\nFROM\r\n$5\r\nghost\r\n")
        .expect("send");
    thread::sleep(Duration::from_millis(300));
    drop(ghost);
    // The member notices within a tick or two.
    thread::sleep(Duration::from_millis(300));
    let mut client = cluster.client(1);
    let added = client
        .call(&["ADDJOB", "ghost", "for a live worker", "0"])
        .expect("ADDJOB");
    let id = system_tests::text(&added).unwrap_or_else(|| panic!("ADDJOB answered {added:?}"));
    assert_eq!(
        client.call(&["QLEN", "ghost"]).expect("QLEN"),
        Value::Integer(1),
        "the job went to the client that left"
    );
    let Value::Array(jobs) = client
        .call(&["GETJOB", "NOHANG", "FROM", "ghost"])
        .expect("GETJOB")
    else {
        panic!("no job for a live worker");
    };
    assert!(format!("{jobs:?}").contains(&id), "{jobs:?}");
}

#[test]
fn getjob_answers_without_a_leader() {
    let mut cluster = Cluster::start("getjob-outage", 3);
    cluster.wait_for_leader(Duration::from_secs(20));
    let mut client = cluster.client(1);
    client.call(&["ADDJOB", "pre", "j", "0"]).expect("ADDJOB");
    cluster.wait_applied(1, Duration::from_secs(5));
    cluster.kill(2);
    cluster.kill(3);

    // A job is there, so GETJOB proposes, and nobody answers: it waits for
    // the outcome up to the request timeout (10 s), then gives up.
    let mut client = cluster.client(1);
    client.timeout = Duration::from_secs(20);
    let started = Instant::now();
    let reply = client
        .call(&["GETJOB", "TIMEOUT", "1000", "FROM", "pre"])
        .expect("GETJOB");
    assert_eq!(reply, Value::NullArray);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "TIMEOUT 1000 answered after {:?}",
        started.elapsed()
    );

    // NOHANG never blocks: without a leader its outcome is unknown, an
    // error after the request timeout, as for any write.
    let started = Instant::now();
    let reply = client
        .call(&["GETJOB", "NOHANG", "FROM", "pre"])
        .expect("GETJOB NOHANG");
    assert!(
        matches!(&reply, Value::Error(e) if e.starts_with("NOREPL")),
        "{reply:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "NOHANG answered after {:?}",
        started.elapsed()
    );
}

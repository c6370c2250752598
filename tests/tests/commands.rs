//! The client commands end to end, against a three-member cluster of real
//! processes: any member takes any command, blocking GETJOB wakes when a
//! job arrives through another member, and the replies have Disque's
//! shapes.

use std::thread;
use std::time::{Duration, Instant};

use synod::resp::Value;
use system_tests::{Cluster, text};

fn bulk(text: &str) -> Value {
    Value::Bulk(text.to_string().into())
}

/// The fields of the first job in a GETJOB reply.
fn first_job(reply: &Value) -> &[Value] {
    match reply {
        Value::Array(jobs) => match jobs.first() {
            Some(Value::Array(fields)) => fields,
            _ => panic!("no job entry in {reply:?}"),
        },
        _ => panic!("GETJOB answered {reply:?}"),
    }
}

#[test]
fn every_member_serves_disque_commands() {
    let cluster = Cluster::start("commands", 3);
    cluster.wait_for_leader(Duration::from_secs(20));
    let (mut one, mut two, mut three) = (cluster.client(1), cluster.client(2), cluster.client(3));

    // PING, HELLO (bare: Disque's member list; 3: the RESP3 handshake).
    assert_eq!(
        one.call(&["PING"]).expect("PING"),
        Value::Simple("PONG".into())
    );
    let Value::Array(hello) = two.call(&["HELLO"]).expect("HELLO") else {
        panic!("bare HELLO is an array")
    };
    assert_eq!(hello[0], Value::Integer(1));
    assert_eq!(hello.len(), 2 + 3, "version, my id, then three members");

    // A blocking GETJOB on member 3 wakes when member 1 adds a job.
    let getter = thread::spawn(move || {
        let started = Instant::now();
        let reply = three
            .call(&["GETJOB", "TIMEOUT", "4000", "WITHCOUNTERS", "FROM", "mail"])
            .expect("GETJOB");
        (reply, started.elapsed(), three)
    });
    thread::sleep(Duration::from_millis(300));
    let id = text(
        &one.call(&["ADDJOB", "mail", "hello", "0", "RETRY", "1"])
            .expect("ADDJOB"),
    )
    .expect("an id");
    let (reply, waited, mut three) = getter.join().expect("getter");
    assert!(waited < Duration::from_secs(3), "GETJOB waited {waited:?}");
    assert_eq!(
        reply,
        Value::Array(vec![Value::Array(vec![
            bulk("mail"),
            bulk(&id),
            bulk("hello"),
            bulk("nacks"),
            Value::Integer(0),
            bulk("additional-deliveries"),
            Value::Integer(0),
        ])])
    );
    // Leased: not queued; WORKING extends the lease by RETRY (1 s).
    assert_eq!(
        two.call(&["QLEN", "mail"]).expect("QLEN"),
        Value::Integer(0)
    );
    assert_eq!(
        two.call(&["WORKING", &id]).expect("WORKING"),
        Value::Integer(1)
    );
    // NACK puts it back at once, counting a nack.
    assert_eq!(one.call(&["NACK", &id]).expect("NACK"), Value::Integer(1));
    let again = three
        .call(&["GETJOB", "NOHANG", "WITHCOUNTERS", "FROM", "mail"])
        .expect("GETJOB");
    assert_eq!(
        first_job(&again)[4],
        Value::Integer(1),
        "one nack: {again:?}"
    );
    // Not acked within RETRY: delivered again, counted as an additional
    // delivery.
    thread::sleep(Duration::from_millis(1_500));
    let later = two
        .call(&["GETJOB", "TIMEOUT", "3000", "WITHCOUNTERS", "FROM", "mail"])
        .expect("GETJOB");
    assert_eq!(
        first_job(&later)[6],
        Value::Integer(1),
        "one lease expiry: {later:?}"
    );
    // SHOW on any member; FASTACK; then the job is gone everywhere.
    let shown = one.call(&["SHOW", &id]).expect("SHOW");
    assert!(matches!(shown, Value::Array(_)), "{shown:?}");
    assert_eq!(
        three.call(&["FASTACK", &id]).expect("FASTACK"),
        Value::Integer(1)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    for client in [&mut one, &mut two, &mut three] {
        while client.call(&["SHOW", &id]).expect("SHOW") != Value::Null {
            assert!(
                Instant::now() < deadline,
                "the ack did not reach every member"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
    // GETJOB with nothing to take: a timeout and NOHANG both answer null.
    assert_eq!(
        one.call(&["GETJOB", "TIMEOUT", "200", "FROM", "mail"])
            .expect("GETJOB"),
        Value::NullArray
    );
    assert_eq!(
        one.call(&["GETJOB", "NOHANG", "FROM", "mail"])
            .expect("GETJOB"),
        Value::NullArray
    );
    // ACKJOB of an unknown (but well-formed) id counts nothing.
    assert_eq!(
        one.call(&["ACKJOB", &id]).expect("ACKJOB"),
        Value::Integer(0)
    );
    // INFO has the replication section.
    let info = text(&two.call(&["INFO", "replication"]).expect("INFO")).expect("text");
    for key in [
        "role:",
        "leader:",
        "ballot:",
        "chosen_slot:",
        "applied_slot:",
        "snapshot_slot:",
    ] {
        assert!(info.contains(key), "INFO lacks {key}: {info}");
    }
}

#[test]
fn client_list_shows_how_long_each_connection_has_been_idle() {
    let cluster = Cluster::start("client-list", 3);
    cluster.wait_for_leader(Duration::from_secs(20));
    let mut idle = cluster.client(1);
    assert_eq!(
        idle.call(&["CLIENT", "SETNAME", "sleeper"])
            .expect("SETNAME"),
        Value::Simple("OK".into())
    );
    thread::sleep(Duration::from_millis(2100));
    let mut looking = cluster.client(1);
    let list = looking.call(&["CLIENT", "LIST"]).expect("CLIENT LIST");
    let list = text(&list).expect("CLIENT LIST is text");
    let line = list
        .lines()
        .find(|line| line.contains("name=sleeper"))
        .unwrap_or_else(|| panic!("no sleeper in {list}"));
    let field = |key: &str| -> u64 {
        let value = line
            .split(' ')
            .find_map(|f| f.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {line}"));
        value.parse().expect("a number")
    };
    assert!(field("idle") >= 2, "{line}");
    assert!(field("age") >= 2, "{line}");
    assert!(line.contains("cmd=client"), "{line}");
}

#[test]
fn hello_ranks_a_member_that_went_silent_below_the_others() {
    let mut cluster = Cluster::start("hello-priority", 3);
    cluster.wait_for_leader(Duration::from_secs(20));
    // Each member's priority, from member 1's HELLO.
    let priorities = |cluster: &Cluster| -> Vec<String> {
        let Value::Array(hello) = cluster.client(1).call(&["HELLO"]).expect("HELLO") else {
            panic!("bare HELLO is an array")
        };
        hello[2..]
            .iter()
            .map(|node| match node {
                Value::Array(fields) => text(&fields[3]).expect("a priority"),
                other => panic!("a member entry, not {other:?}"),
            })
            .collect()
    };
    thread::sleep(Duration::from_millis(500));
    assert_eq!(priorities(&cluster), ["1", "1", "1"]);
    cluster.kill(3);
    thread::sleep(Duration::from_millis(2500));
    assert_eq!(priorities(&cluster), ["1", "1", "10"]);
}

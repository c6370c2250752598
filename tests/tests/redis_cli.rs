//! `redis-cli`, the client most users try first, works against a cluster:
//! ADDJOB through one member, GETJOB through another, ACKJOB through the
//! third; and a short `redis-benchmark` run completes without an error.
//! `.ci/run` installs both (Debian's redis-tools).

use std::process::Command;
use std::time::Duration;

use system_tests::Cluster;

fn redis_cli(cluster: &Cluster, member: u64, args: &[&str]) -> String {
    let addr = cluster.specs[&member].client;
    let output = Command::new("redis-cli")
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli must be installed (Debian: apt-get install redis-tools)");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("text")
}

#[test]
fn redis_cli_adds_takes_and_acks_a_job() {
    let cluster = Cluster::start("redis-cli", 3);
    cluster.wait_for_leader(Duration::from_secs(20));
    assert_eq!(redis_cli(&cluster, 1, &["PING"]), "PONG\n");
    let id = redis_cli(&cluster, 1, &["ADDJOB", "greetings", "hello world", "0"]);
    let id = id.trim();
    assert!(id.starts_with("D-") && id.len() == 40, "{id:?}");
    let got = redis_cli(
        &cluster,
        2,
        &["GETJOB", "TIMEOUT", "5000", "FROM", "greetings"],
    );
    assert_eq!(got, format!("greetings\n{id}\nhello world\n"));
    assert_eq!(redis_cli(&cluster, 3, &["ACKJOB", id]), "1\n");
    // The ack reaches every member.
    for member in 1..=3 {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while redis_cli(&cluster, member, &["SHOW", id]) != "\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "member {member} still has {id}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn redis_benchmark_runs_without_errors() {
    let cluster = Cluster::start("redis-benchmark", 3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    // Through a follower, so every ADDJOB is also forwarded to the leader.
    let follower = if leader == 1 { 2 } else { 1 };
    let addr = cluster.specs[&follower].client;
    const JOBS: u64 = 2_000;
    let runs: [&[&str]; 2] = [&["PING"], &["ADDJOB", "bench", "x", "0"]];
    for command in runs {
        let output = Command::new("redis-benchmark")
            .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args(["-n", &JOBS.to_string(), "-c", "10", "-P", "4", "-q"])
            .args(command)
            .output()
            .expect("redis-benchmark must be installed (Debian: apt-get install redis-tools)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // redis-benchmark stops with a failure status at an error reply.
        assert!(
            output.status.success() && stdout.contains("requests per second"),
            "redis-benchmark {command:?}: {}\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        );
    }
    // Every ADDJOB took effect, once, on every member.
    for member in 1..=3 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let len = redis_cli(&cluster, member, &["QLEN", "bench"]);
            if len.trim() == JOBS.to_string() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "member {member} has {} jobs, not {JOBS}",
                len.trim()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

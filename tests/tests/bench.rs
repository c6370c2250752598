//! `synod bench` against a real cluster: it finds the leader, runs each
//! workload, and what it reports matches what the cluster holds after.

use std::process::Command;
use std::time::Duration;

use system_tests::{Cluster, synod_bin};

/// Runs `synod bench` with `args` against every member of `cluster`;
/// returns its JSON lines.
fn bench(cluster: &Cluster, args: &[&str]) -> Vec<String> {
    let addrs: Vec<String> = cluster
        .specs
        .values()
        .map(|s| s.client.to_string())
        .collect();
    let output = Command::new(synod_bin())
        .arg("bench")
        .args(&addrs)
        .args(args)
        .arg("--json")
        .output()
        .expect("run synod bench");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "synod bench {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout.lines().map(str::to_string).collect()
}

/// The number after `"key":` in a JSON line.
fn number(line: &str, key: &str) -> f64 {
    let pattern = format!("\"{key}\":");
    let start = line
        .find(&pattern)
        .unwrap_or_else(|| panic!("{key} in {line}"))
        + pattern.len();
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {line}"))
}

#[test]
fn bench_enqueues_then_drains_what_it_added() {
    let cluster = Cluster::start("bench", 3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20));

    let lines = bench(
        &cluster,
        &["-w", "enqueue", "-c", "2", "-P", "4", "-t", "1", "-q", "e"],
    );
    assert_eq!(lines.len(), 1, "{lines:?}");
    let enqueued = number(&lines[0], "enqueued");
    assert!(enqueued > 0.0, "{lines:?}");
    assert_eq!(number(&lines[0], "errors"), 0.0);
    assert_eq!(number(&lines[0], "in_flight"), 8.0);
    // Every job it counted is in the queue.
    let mut client = cluster.client(leader);
    let qlen = client.call(&["QLEN", "e"]).expect("QLEN");
    assert_eq!(format!("{qlen:?}"), format!("Integer({})", enqueued as i64));

    // A dequeue run adds --jobs jobs first, then takes and acks them all.
    let lines = bench(
        &cluster,
        &[
            "-w", "dequeue", "-n", "500", "-b", "16", "-c", "2", "-P", "2", "-t", "30", "-q", "d",
        ],
    );
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("\"phase\":\"fill\""), "{lines:?}");
    assert_eq!(number(&lines[0], "enqueued"), 500.0, "{lines:?}");
    assert!(lines[1].contains("\"phase\":\"dequeue+ack\""), "{lines:?}");
    assert_eq!(number(&lines[1], "dequeued"), 500.0, "{lines:?}");
    let qlen = client.call(&["QLEN", "d"]).expect("QLEN");
    assert_eq!(format!("{qlen:?}"), "Integer(0)");
}

#[test]
fn bench_says_when_no_member_answers() {
    let output = Command::new(synod_bin())
        .args(["bench", "127.0.0.1:1", "-t", "1"])
        .output()
        .expect("run synod bench");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no leader among the members given"),
        "{stderr}"
    );
}

//! Recovery from disk, with real processes: a torn log tail is cut and the
//! member starts without that record; damage before the tail stops the
//! member with a message naming the file and the byte offset; snapshots
//! compact the log and a restart recovers from them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use synod::resp::Value;
use system_tests::{Cluster, text};

/// The log segments in a member's data directory, oldest first.
fn segments(data: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(data)
        .expect("data dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("wal-") && n.ends_with(".log"))
        })
        .collect();
    segments.sort();
    segments
}

/// The byte offsets of the records in a segment: after the segment header,
/// each record is `[length u32 LE][crc32c u32 LE][payload]`.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    const SEGMENT_HEADER_BYTES: usize = 21;
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER_BYTES;
    while at + 8 <= bytes.len() {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if length == 0 || at + 8 + length > bytes.len() {
            break;
        }
        offsets.push(at);
        at += 8 + length;
    }
    offsets
}

/// A one-member cluster holding `jobs` acknowledged jobs, then killed.
fn killed_single_member(name: &str, jobs: usize) -> Cluster {
    let mut cluster = Cluster::start(name, 1);
    cluster.wait_for_leader(Duration::from_secs(20));
    let mut client = cluster.client(1);
    for i in 0..jobs {
        let reply = client
            .call(&["ADDJOB", "q", &format!("job-{i}"), "5000"])
            .expect("ADDJOB");
        assert!(
            text(&reply).is_some_and(|id| id.starts_with("D-")),
            "ADDJOB answered {reply:?}"
        );
    }
    cluster.kill(1);
    cluster
}

fn qlen(cluster: &Cluster, id: u64) -> i64 {
    match cluster.client(id).call(&["QLEN", "q"]) {
        Ok(Value::Integer(n)) => n,
        other => panic!("QLEN answered {other:?}\n{}", cluster.logs()),
    }
}

#[test]
fn a_log_cut_mid_record_restarts_without_that_record() {
    let mut cluster = killed_single_member("cut-tail", 20);
    let data = cluster.specs[&1].data.clone();
    let last = segments(&data).pop().expect("a log segment");
    let bytes = std::fs::read(&last).expect("read segment");
    // The last record is the 20th job's accepted value: cut into it.
    std::fs::write(&last, &bytes[..bytes.len() - 3]).expect("cut the tail");
    cluster.restart(1);
    cluster.wait_for_leader(Duration::from_secs(20));
    assert_eq!(qlen(&cluster, 1), 19, "{}", cluster.logs());
    let peek = cluster
        .client(1)
        .call(&["QPEEK", "q", "-1"])
        .expect("QPEEK");
    let Value::Array(newest) = peek else {
        panic!("QPEEK answered {peek:?}")
    };
    let Value::Array(fields) = &newest[0] else {
        panic!("QPEEK entry {:?}", newest[0])
    };
    assert_eq!(text(&fields[2]).as_deref(), Some("job-18"));
    let log = cluster.log(1);
    assert!(
        log.contains("torn or damaged and has been cut"),
        "the member should say it cut the tail:\n{log}"
    );
}

#[test]
fn a_flipped_byte_before_the_tail_stops_the_member_naming_file_and_offset() {
    let mut cluster = killed_single_member("flipped-byte", 20);
    let data = cluster.specs[&1].data.clone();
    let last = segments(&data).pop().expect("a log segment");
    let mut bytes = std::fs::read(&last).expect("read segment");
    let offsets = record_offsets(&bytes);
    assert!(
        offsets.len() >= 10,
        "expected the jobs' records: {offsets:?}"
    );
    let damaged = offsets[5];
    // A payload byte: the checksum no longer matches, and valid records
    // follow, so this is not a torn tail.
    bytes[damaged + 8] ^= 0x40;
    std::fs::write(&last, &bytes).expect("damage the log");
    cluster.restart(1);
    let status = cluster
        .wait_exit(1, Duration::from_secs(20))
        .expect("the member should stop by itself");
    assert!(!status.success(), "it must not exit successfully");
    let log = cluster.log(1);
    let file = last.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(
        log.contains(file) && log.contains(&format!("byte offset {damaged}")),
        "the message should name {file} and byte offset {damaged}:\n{log}"
    );
}

#[test]
fn snapshots_compact_the_log_and_a_full_restart_recovers_from_them() {
    let mut cluster = Cluster::start_with("snapshots", 3, &["--snapshot-after-bytes", "8192"]);
    cluster.wait_for_leader(Duration::from_secs(20));
    let mut client = cluster.client(1);
    let body = "x".repeat(200);
    for i in 0..300 {
        let reply = client
            .call(&["ADDJOB", "q", &format!("{i}-{body}"), "5000"])
            .expect("ADDJOB");
        assert!(
            text(&reply).is_some_and(|id| id.starts_with("D-")),
            "{reply:?}"
        );
    }
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let chosen: u64 = cluster
        .info(leader)
        .and_then(|info| info.get("chosen_slot")?.parse().ok())
        .expect("chosen slot");
    cluster.wait_applied(chosen, Duration::from_secs(20));
    for id in 1..=3 {
        let data = &cluster.specs[&id].data;
        assert!(
            data.join("snapshot.bin").exists(),
            "member {id} took no snapshot"
        );
        let first = segments(data).first().cloned().expect("a segment");
        assert_ne!(
            first.file_name().and_then(|n| n.to_str()),
            Some("wal-00000000000000000001.log"),
            "member {id} kept its first segment after snapshotting"
        );
    }
    for id in 1..=3 {
        cluster.kill(id);
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    cluster.wait_for_leader(Duration::from_secs(20));
    for id in 1..=3 {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while qlen(&cluster, id) != 300 {
            assert!(
                std::time::Instant::now() < deadline,
                "member {id} holds {} jobs, not 300\n{}",
                qlen(&cluster, id),
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

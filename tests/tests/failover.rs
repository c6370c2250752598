//! A three-member cluster of real processes keeps every acknowledged job
//! through `kill -9`: of the leader, of a follower, and of all three at
//! once (then recovered from disk).
//!
//! Each scenario adds 1,000 jobs with unique bodies, spread over the
//! members, killing in the middle; clients retry on another member when one
//! fails, as Disque clients do. Afterwards every member is running again,
//! and the jobs are taken (GETJOB) and acked until none is left. Every job
//! whose ADDJOB was acknowledged must have been delivered, and nothing may
//! be delivered that was never added.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use synod::resp::Value;
use system_tests::{Cluster, text};

const JOBS: usize = 1_000;
const QUEUE: &str = "work";

/// What happened to the ADDJOBs.
#[derive(Default)]
struct Added {
    /// Bodies whose ADDJOB was acknowledged, with their ids.
    acknowledged: BTreeMap<String, String>,
    /// Every body ever sent (acknowledged or not).
    attempted: BTreeSet<String>,
}

/// Adds `JOBS` jobs, member `i % size` first for job `i`, calling
/// `disrupt(i, cluster)` before each.
fn add_jobs(cluster: &mut Cluster, mut disrupt: impl FnMut(usize, &mut Cluster)) -> Added {
    let mut added = Added::default();
    let ids: Vec<u64> = cluster.specs.keys().copied().collect();
    let mut clients: BTreeMap<u64, _> = ids.iter().map(|&id| (id, cluster.client(id))).collect();
    for i in 0..JOBS {
        disrupt(i, cluster);
        let body = format!("job-{i}");
        added.attempted.insert(body.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut attempt = 0;
        loop {
            let id = ids[(i + attempt) % ids.len()];
            attempt += 1;
            let client = clients.get_mut(&id).expect("client");
            // RETRY 2: a job handed out whose ack is lost comes back soon.
            match client.call(&["ADDJOB", QUEUE, &body, "5000", "RETRY", "2"]) {
                Ok(reply) => {
                    if let Some(job_id) = text(&reply).filter(|t| t.starts_with("D-")) {
                        added.acknowledged.insert(body, job_id);
                        break;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            assert!(
                Instant::now() < deadline,
                "job {i} could not be added for 30 s\n{}",
                cluster.logs()
            );
        }
    }
    added
}

/// Takes and acks every job, from all members in turn, until every
/// acknowledged job was seen and nothing more comes. Returns the bodies
/// delivered.
fn drain(cluster: &Cluster, added: &Added) -> BTreeSet<String> {
    let mut delivered = BTreeSet::new();
    let ids = cluster.running();
    let mut clients: BTreeMap<u64, _> = ids.iter().map(|&id| (id, cluster.client(id))).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_passes = 0;
    while quiet_passes < 3 || !added.acknowledged.keys().all(|b| delivered.contains(b)) {
        if Instant::now() > deadline {
            let missing: Vec<(&String, &String)> = added
                .acknowledged
                .iter()
                .filter(|(body, _)| !delivered.contains(*body))
                .collect();
            let shown: Vec<String> = missing
                .iter()
                .take(3)
                .flat_map(|(_, id)| {
                    ids.iter().map(move |&member| {
                        let reply = cluster.client(member).call(&["SHOW", id]);
                        format!("SHOW {id} on {member}: {reply:?}")
                    })
                })
                .collect();
            panic!(
                "{} acknowledged jobs still missing after 60 s: {:?}\n{}\n{}",
                missing.len(),
                missing.iter().take(10).collect::<Vec<_>>(),
                shown.join("\n"),
                cluster.logs()
            );
        }
        let mut got_any = false;
        for id in &ids {
            let client = clients.get_mut(id).expect("client");
            let Ok(Value::Array(jobs)) =
                client.call(&["GETJOB", "NOHANG", "COUNT", "100", "FROM", QUEUE])
            else {
                continue;
            };
            let mut job_ids = Vec::new();
            for job in jobs {
                let Value::Array(fields) = job else {
                    panic!("GETJOB job entry is not an array: {job:?}")
                };
                let body = text(&fields[2]).expect("body");
                assert!(
                    added.attempted.contains(&body),
                    "delivered a job that was never added: {body}"
                );
                delivered.insert(body);
                job_ids.push(text(&fields[1]).expect("id"));
            }
            got_any |= !job_ids.is_empty();
            if !job_ids.is_empty() {
                let mut ack = vec!["ACKJOB"];
                ack.extend(job_ids.iter().map(String::as_str));
                let _ = client.call(&ack);
            }
        }
        quiet_passes = if got_any { 0 } else { quiet_passes + 1 };
        if !got_any {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    delivered
}

/// Waits until every running member has applied what `leader` knows
/// chosen, takes and acks every job, and checks the outcome.
fn settle_and_check(cluster: &Cluster, leader: u64, added: &Added) {
    let chosen: u64 = cluster
        .info(leader)
        .and_then(|info| info.get("chosen_slot")?.parse().ok())
        .expect("leader's chosen slot");
    cluster.wait_applied(chosen, Duration::from_secs(30));
    let delivered = drain(cluster, added);
    check(cluster, added, &delivered);
}

fn check(cluster: &Cluster, added: &Added, delivered: &BTreeSet<String>) {
    let lost: Vec<&String> = added
        .acknowledged
        .keys()
        .filter(|body| !delivered.contains(*body))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged jobs lost: {lost:?}\n{}",
        cluster.logs()
    );
    assert!(
        added.acknowledged.len() >= JOBS * 9 / 10,
        "only {} of {JOBS} ADDJOBs were acknowledged",
        added.acknowledged.len()
    );
}

#[test]
fn killing_the_leader_mid_stream_loses_no_acknowledged_job() {
    let mut cluster = Cluster::start("kill-leader", 3);
    let first_leader = cluster.wait_for_leader(Duration::from_secs(20));
    let added = add_jobs(&mut cluster, |i, cluster| {
        if i == JOBS / 3 {
            cluster.kill(first_leader);
        }
    });
    let new_leader = cluster.wait_for_leader(Duration::from_secs(20));
    assert_ne!(new_leader, first_leader, "a killed member cannot lead");
    cluster.restart(first_leader);
    settle_and_check(&cluster, new_leader, &added);
}

#[test]
fn killing_a_follower_mid_stream_loses_no_acknowledged_job() {
    let mut cluster = Cluster::start("kill-follower", 3);
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    let follower = cluster
        .specs
        .keys()
        .copied()
        .find(|&id| id != leader)
        .expect("a follower");
    let added = add_jobs(&mut cluster, |i, cluster| {
        if i == JOBS / 3 {
            cluster.kill(follower);
        }
        if i == 2 * JOBS / 3 {
            cluster.restart(follower);
        }
    });
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    settle_and_check(&cluster, leader, &added);
}

#[test]
fn restarting_every_member_at_once_recovers_from_disk() {
    let mut cluster = Cluster::start("restart-all", 3);
    cluster.wait_for_leader(Duration::from_secs(20));
    let added = add_jobs(&mut cluster, |i, cluster| {
        if i == JOBS / 2 {
            for id in 1..=3 {
                cluster.kill(id);
            }
            for id in 1..=3 {
                cluster.restart(id);
            }
        }
    });
    let leader = cluster.wait_for_leader(Duration::from_secs(20));
    settle_and_check(&cluster, leader, &added);
}

//! Checkers over the whole history, run once the liveness phase is over.
//!
//! - total-queue (Jepsen's): each attempted ADDJOB body is classified as
//!   lost (acknowledged, never delivered), unexpected (delivered, never
//!   attempted), duplicated (delivered more than once: at-least-once
//!   allows it) or recovered (outcome unknown or failed, delivered later).
//!   Valid means nothing lost and nothing unexpected.
//! - acked stays acked: once ACKJOB answered that it removed a job, no
//!   GETJOB sent afterwards hands it out.
//! - leases hold: a job handed out is not handed out again before its
//!   RETRY has passed, unless it was NACKed. Only checked when the
//!   members' clocks stayed true (a forward jump ends leases early, as it
//!   should).
//! - one job per body: a body is never delivered under two job ids.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Call, Op, Outcome, Reply};
use crate::world::Finding;

/// Jepsen's total-queue classification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TotalQueue {
    /// ADDJOBs sent.
    pub attempted: usize,
    /// ADDJOBs answered with an id.
    pub acknowledged: usize,
    /// Bodies delivered at least once.
    pub delivered: usize,
    /// Acknowledged and never delivered.
    pub lost: Vec<String>,
    /// Delivered and never attempted.
    pub unexpected: Vec<String>,
    /// Delivered more than once.
    pub duplicated: usize,
    /// Not acknowledged (unknown or failed) yet delivered.
    pub recovered: usize,
}

impl TotalQueue {
    /// Nothing lost and nothing unexpected.
    pub fn valid(&self) -> bool {
        self.lost.is_empty() && self.unexpected.is_empty()
    }
}

/// Classifies every ADDJOB body of `history`.
pub fn total_queue(history: &[Op]) -> TotalQueue {
    let mut attempted = BTreeSet::new();
    let mut acknowledged = BTreeSet::new();
    for op in history {
        if let Call::Add { body, .. } = &op.call {
            attempted.insert(body.as_str());
            if matches!(op.outcome, Outcome::Ok { .. }) {
                acknowledged.insert(body.as_str());
            }
        }
    }
    let mut deliveries: BTreeMap<&str, usize> = BTreeMap::new();
    for op in history {
        for job in op.delivered() {
            *deliveries.entry(job.body.as_str()).or_default() += 1;
        }
    }
    TotalQueue {
        attempted: attempted.len(),
        acknowledged: acknowledged.len(),
        delivered: deliveries.len(),
        lost: acknowledged
            .iter()
            .filter(|body| !deliveries.contains_key(*body))
            .map(|body| body.to_string())
            .collect(),
        unexpected: deliveries
            .keys()
            .filter(|body| !attempted.contains(*body))
            .map(|body| body.to_string())
            .collect(),
        duplicated: deliveries.values().filter(|&&n| n > 1).count(),
        recovered: deliveries
            .keys()
            .filter(|body| attempted.contains(*body) && !acknowledged.contains(*body))
            .count(),
    }
}

/// At most this many examples in a finding.
const EXAMPLES: usize = 5;

fn examples<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    let items: Vec<&str> = items.into_iter().map(String::as_str).collect();
    let mut text = items
        .iter()
        .take(EXAMPLES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > EXAMPLES {
        text.push_str(&format!(", ... ({} in all)", items.len()));
    }
    text
}

/// What the checkers found.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// The total-queue classification.
    pub total_queue: TotalQueue,
    /// Violations: the run failed.
    pub findings: Vec<Finding>,
}

/// Runs every history checker. `clocks_true` says whether the members'
/// clocks stayed true all run (the lease check needs it).
pub fn check(history: &[Op], clocks_true: bool) -> Verdict {
    let mut verdict = Verdict {
        total_queue: total_queue(history),
        ..Verdict::default()
    };
    let queue = &verdict.total_queue;
    if !queue.lost.is_empty() {
        verdict.findings.push(Finding {
            checker: "total-queue",
            detail: format!(
                "{} acknowledged jobs lost: {}",
                queue.lost.len(),
                examples(&queue.lost)
            ),
        });
    }
    if !queue.unexpected.is_empty() {
        verdict.findings.push(Finding {
            checker: "total-queue",
            detail: format!(
                "{} jobs delivered that no client added: {}",
                queue.unexpected.len(),
                examples(&queue.unexpected)
            ),
        });
    }
    verdict.findings.extend(one_id_per_body(history));
    verdict.findings.extend(acked_stays_acked(history));
    if clocks_true {
        verdict.findings.extend(leases_hold(history));
    }
    verdict
}

fn one_id_per_body(history: &[Op]) -> Vec<Finding> {
    let mut ids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for op in history {
        if let (
            Call::Add { body, .. },
            Outcome::Ok {
                reply: Reply::Added { id },
            },
        ) = (&op.call, &op.outcome)
        {
            ids.entry(body).or_default().insert(id);
        }
        let delivered = op.delivered();
        for (i, job) in delivered.iter().enumerate() {
            ids.entry(&job.body).or_default().insert(&job.id);
            if delivered[..i].iter().any(|earlier| earlier.id == job.id) {
                return vec![Finding {
                    checker: "total-queue",
                    detail: format!("one GETJOB reply holds job {} twice", job.id),
                }];
            }
        }
    }
    ids.into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .take(1)
        .map(|(body, ids)| Finding {
            checker: "total-queue",
            detail: format!("body {body} was added or delivered as jobs {ids:?}"),
        })
        .collect()
}

/// A finding for each job delivered by a GETJOB sent after an ACKJOB
/// answered that it removed the job.
fn acked_stays_acked(history: &[Op]) -> Vec<Finding> {
    // When each job was first known removed.
    let mut acked_at: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        if let (
            Call::Ack { id },
            Outcome::Ok {
                reply: Reply::Count { n },
            },
            Some(done),
        ) = (&op.call, &op.outcome, op.completed_us)
        {
            if *n >= 1 {
                let first = acked_at.entry(id).or_insert((done, index));
                *first = (*first).min((done, index));
            }
        }
    }
    let mut violations: BTreeMap<&str, Finding> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        for job in op.delivered() {
            if let Some(&(acked_us, ack)) = acked_at.get(job.id.as_str()) {
                if op.invoked_us > acked_us {
                    violations.entry(&job.id).or_insert_with(|| Finding {
                        checker: "acked stays acked",
                        detail: format!(
                            "job {} ({}) was acked by op {ack} at {acked_us} µs, \
                             then delivered by op {index} sent at {} µs",
                            job.id, job.body, op.invoked_us
                        ),
                    });
                }
            }
        }
    }
    violations.into_values().collect()
}

/// One GETJOB that handed a job out.
#[derive(Clone, Copy)]
struct Delivery {
    invoked_us: u64,
    completed_us: u64,
    op: usize,
}

/// A finding for each job handed out twice within one lease.
fn leases_hold(history: &[Op]) -> Vec<Finding> {
    let mut retry_us: BTreeMap<&str, u64> = BTreeMap::new();
    let mut nacked_at: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    // Per job id: its body and its deliveries.
    let mut deliveries: BTreeMap<&str, (&str, Vec<Delivery>)> = BTreeMap::new();
    for (index, op) in history.iter().enumerate() {
        match &op.call {
            Call::Add {
                body, retry_secs, ..
            } => {
                retry_us.insert(body, retry_secs * 1_000_000);
            }
            Call::Nack { id } => nacked_at.entry(id).or_default().push(op.invoked_us),
            _ => {}
        }
        if let Some(done) = op.completed_us {
            for job in op.delivered() {
                deliveries
                    .entry(&job.id)
                    .or_insert((&job.body, Vec::new()))
                    .1
                    .push(Delivery {
                        invoked_us: op.invoked_us,
                        completed_us: done,
                        op: index,
                    });
            }
        }
    }
    // Stamps are whole milliseconds.
    const SLACK_US: u64 = 2_000;
    let mut violations = Vec::new();
    'jobs: for (id, (body, times)) in deliveries {
        let Some(&lease_us) = retry_us.get(body) else {
            continue;
        };
        for (i, a) in times.iter().enumerate() {
            for b in &times[i + 1..] {
                let (invoked_a, done_a, op_a) = (a.invoked_us, a.completed_us, a.op);
                let (invoked_b, done_b, op_b) = (b.invoked_us, b.completed_us, b.op);
                // Whichever was applied first leased the job from its
                // stamp, which is no earlier than its invocation; the
                // other could take it only once that lease had run out,
                // and before it completed.
                let explained = done_b + SLACK_US >= invoked_a + lease_us
                    || done_a + SLACK_US >= invoked_b + lease_us;
                let latest = done_a.max(done_b);
                let nacked = nacked_at
                    .get(id)
                    .is_some_and(|times| times.iter().any(|&t| t < latest));
                if !explained && !nacked {
                    let finding = Finding {
                        checker: "leases hold",
                        detail: format!(
                            "job {id} ({body}) with a {} s lease was delivered by op {op_a} \
                             ({invoked_a}..{done_a} µs) and by op {op_b} ({invoked_b}..{done_b} µs)",
                            lease_us / 1_000_000
                        ),
                    };
                    violations.push(finding);
                    continue 'jobs;
                }
            }
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Delivered;

    fn op(call: Call, invoked_us: u64, completed_us: u64, outcome: Outcome) -> Op {
        Op {
            client: 1,
            member: 1,
            call,
            invoked_us,
            completed_us: Some(completed_us),
            outcome,
        }
    }

    fn add(body: &str, id: &str, at_us: u64) -> Op {
        let call = Call::Add {
            queue: "q".into(),
            body: body.into(),
            retry_secs: 5,
        };
        let reply = Reply::Added { id: id.into() };
        op(call, at_us, at_us + 10, Outcome::Ok { reply })
    }

    fn add_unknown(body: &str, at_us: u64) -> Op {
        let call = Call::Add {
            queue: "q".into(),
            body: body.into(),
            retry_secs: 5,
        };
        let why = "timed out".into();
        op(call, at_us, at_us + 10, Outcome::Unknown { why })
    }

    fn get(jobs: &[(&str, &str)], invoked_us: u64, completed_us: u64) -> Op {
        let call = Call::Get {
            queues: vec!["q".into()],
            count: 1,
            timeout_ms: None,
        };
        let jobs = jobs
            .iter()
            .map(|&(id, body)| Delivered {
                queue: "q".into(),
                id: id.into(),
                body: body.into(),
            })
            .collect();
        let reply = Reply::Jobs { jobs };
        op(call, invoked_us, completed_us, Outcome::Ok { reply })
    }

    fn acked(id: &str, at_us: u64) -> Op {
        let call = Call::Ack { id: id.into() };
        op(
            call,
            at_us,
            at_us + 10,
            Outcome::Ok {
                reply: Reply::Count { n: 1 },
            },
        )
    }

    fn nacked(id: &str, at_us: u64) -> Op {
        let call = Call::Nack { id: id.into() };
        op(
            call,
            at_us,
            at_us + 10,
            Outcome::Ok {
                reply: Reply::Count { n: 1 },
            },
        )
    }

    fn checkers(verdict: &Verdict) -> Vec<&'static str> {
        verdict.findings.iter().map(|f| f.checker).collect()
    }

    #[test]
    fn a_clean_history_passes() {
        let history = [
            add("a", "D-1", 0),
            get(&[("D-1", "a")], 100, 200),
            acked("D-1", 300),
        ];
        let verdict = check(&history, true);
        assert_eq!(checkers(&verdict), Vec::<&str>::new());
        assert!(verdict.total_queue.valid());
        assert_eq!(verdict.total_queue.acknowledged, 1);
        assert_eq!(verdict.total_queue.delivered, 1);
    }

    #[test]
    fn an_acknowledged_job_never_delivered_is_lost() {
        let verdict = check(&[add("a", "D-1", 0), add("b", "D-2", 0)], true);
        assert_eq!(verdict.total_queue.lost, ["a", "b"]);
        assert_eq!(checkers(&verdict), ["total-queue"]);
    }

    #[test]
    fn a_job_nobody_added_is_unexpected() {
        let verdict = check(&[get(&[("D-9", "z")], 0, 10)], true);
        assert_eq!(verdict.total_queue.unexpected, ["z"]);
        assert_eq!(checkers(&verdict), ["total-queue"]);
    }

    #[test]
    fn an_unknown_add_delivered_later_is_recovered() {
        let history = [add_unknown("a", 0), get(&[("D-1", "a")], 100, 200)];
        let verdict = check(&history, true);
        assert_eq!(verdict.total_queue.recovered, 1);
        assert!(verdict.total_queue.valid());
        assert_eq!(checkers(&verdict), Vec::<&str>::new());
    }

    #[test]
    fn a_job_delivered_again_after_its_lease_is_a_duplicate_not_a_failure() {
        let history = [
            add("a", "D-1", 0),
            get(&[("D-1", "a")], 100, 200),
            get(&[("D-1", "a")], 6_000_000, 6_000_100),
        ];
        let verdict = check(&history, true);
        assert_eq!(verdict.total_queue.duplicated, 1);
        assert_eq!(checkers(&verdict), Vec::<&str>::new());
    }

    #[test]
    fn a_job_delivered_again_within_its_lease_breaks_it() {
        let history = [
            add("a", "D-1", 0),
            get(&[("D-1", "a")], 100, 200),
            get(&[("D-1", "a")], 1_000_000, 1_000_100),
        ];
        assert_eq!(checkers(&check(&history, true)), ["leases hold"]);
        // With clocks jumping a lease may end early: not checked.
        assert_eq!(checkers(&check(&history, false)), Vec::<&str>::new());
    }

    #[test]
    fn a_nack_ends_the_lease() {
        let history = [
            add("a", "D-1", 0),
            get(&[("D-1", "a")], 100, 200),
            nacked("D-1", 500),
            get(&[("D-1", "a")], 1_000_000, 1_000_100),
        ];
        assert_eq!(checkers(&check(&history, true)), Vec::<&str>::new());
    }

    #[test]
    fn a_job_delivered_after_its_ack_answered_is_found() {
        let history = [
            add("a", "D-1", 0),
            get(&[("D-1", "a")], 100, 200),
            acked("D-1", 300),
            get(&[("D-1", "a")], 7_000_000, 7_000_100),
        ];
        assert_eq!(checkers(&check(&history, true)), ["acked stays acked"]);
    }

    #[test]
    fn a_get_sent_before_the_ack_answered_may_still_deliver() {
        let history = [
            add("a", "D-1", 0),
            get(&[("D-1", "a")], 100, 200),
            get(&[("D-1", "a")], 250, 6_000_000),
            acked("D-1", 300),
        ];
        assert_eq!(checkers(&check(&history, true)), Vec::<&str>::new());
    }

    #[test]
    fn one_body_under_two_ids_is_found() {
        let history = [add("a", "D-1", 0), get(&[("D-2", "a")], 100, 200)];
        assert_eq!(checkers(&check(&history, true)), ["total-queue"]);
    }

    #[test]
    fn one_reply_holding_a_job_twice_is_found() {
        let history = [
            add("a", "D-1", 0),
            get(&[("D-1", "a"), ("D-1", "a")], 100, 200),
        ];
        // (It breaks the lease too; without the lease check, only this.)
        assert_eq!(checkers(&check(&history, false)), ["total-queue"]);
    }
}

//! JSCAN and QSCAN: iterate over all jobs or all queues a page at a time,
//! with filters. A scan started before a change still returns every job (or
//! queue) that existed for the whole scan, because pages follow a stable
//! order (creation order for jobs, name order for queues).

use std::ops::Bound;

use super::{JobInfo, JobState, StateMachine};

/// Where a job scan continues: `JobCursor::START` begins one, and a page
/// whose `next` is `None` ends it (Disque's cursor "0").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct JobCursor(pub u64);

impl JobCursor {
    /// The start of a scan.
    pub const START: JobCursor = JobCursor(0);
}

/// JSCAN's filters: a job matches when every given filter does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs in this queue.
    pub queue: Option<String>,
    /// Only jobs in one of these states (empty: any state).
    pub states: Vec<JobState>,
}

/// QSCAN's filters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueFilter {
    /// Only queues with at least this many queued jobs.
    pub min_len: Option<usize>,
    /// Only queues with at most this many queued jobs.
    pub max_len: Option<usize>,
}

/// One page of a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T, C> {
    /// The matching items of this page (possibly none).
    pub items: Vec<T>,
    /// Where to continue, or `None` when the scan is complete.
    pub next: Option<C>,
}

impl StateMachine {
    /// JSCAN: examines up to `count` jobs (at least one) from `cursor` on, in
    /// creation order, and returns those matching `filter`.
    pub fn scan_jobs(
        &self,
        cursor: JobCursor,
        count: usize,
        filter: &JobFilter,
    ) -> Page<JobInfo, JobCursor> {
        let mut live = self.live_in_order(cursor.0);
        let mut items = Vec::new();
        let mut last = None;
        for (seq, handle) in live.by_ref().take(count.max(1)) {
            last = Some(seq);
            let job = self.job(handle);
            let queue_ok = filter
                .queue
                .as_deref()
                .is_none_or(|q| **self.names.get(job.queue) == *q);
            let state_ok = filter.states.is_empty() || filter.states.contains(&job.state);
            if queue_ok && state_ok {
                items.push(self.info(handle));
            }
        }
        let next = last
            .filter(|_| live.next().is_some())
            .map(|seq| JobCursor(seq + 1));
        Page { items, next }
    }

    /// QSCAN: examines up to `count` queues (at least one) in name order,
    /// starting at `cursor` (a queue name; `None` to start), and returns the
    /// names of those matching `filter`. A queue exists from its first
    /// push, PAUSE or QCONFIG until it has been empty and without settings
    /// for [`IDLE_QUEUE_FORGOTTEN_AFTER_MS`](crate::IDLE_QUEUE_FORGOTTEN_AFTER_MS).
    pub fn scan_queues(
        &self,
        cursor: Option<&str>,
        count: usize,
        filter: QueueFilter,
    ) -> Page<String, String> {
        let from = match cursor {
            Some(name) => Bound::Included(name),
            None => Bound::Unbounded,
        };
        let range = self
            .queues
            .range::<str, _>((from, Bound::Unbounded))
            .take(count.max(1).saturating_add(1));
        let mut items = Vec::new();
        let mut next = None;
        for (examined, (name, queue)) in range.enumerate() {
            if examined == count.max(1) {
                next = Some(name.to_string());
                break;
            }
            let len = queue.queued.len();
            if filter.min_len.is_none_or(|min| len >= min)
                && filter.max_len.is_none_or(|max| len <= max)
            {
                items.push(name.to_string());
            }
        }
        Page { items, next }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{AddJob, Command, JobId};

    fn add(machine: &mut StateMachine, n: u8, queue: &str) -> JobId {
        let id = JobId::new(1, [n; 18], 60_000, 1_000);
        let add = AddJob {
            id,
            queue: queue.to_string(),
            body: Bytes::from_static(b"x"),
            ttl_ms: Some(60_000),
            retry_ms: Some(1_000),
            delay_ms: None,
            max_len: None,
            delivery_limit: None,
        };
        machine.apply(0, Command::Add(add));
        id
    }

    #[test]
    fn job_scan_visits_every_job_once_in_creation_order() {
        let mut m = StateMachine::new();
        let ids: Vec<JobId> = (0..7)
            .map(|n| add(&mut m, n, if n % 2 == 0 { "a" } else { "b" }))
            .collect();
        let mut seen = Vec::new();
        let mut cursor = JobCursor::START;
        loop {
            let page = m.scan_jobs(cursor, 3, &JobFilter::default());
            seen.extend(page.items.iter().map(|j| j.id));
            match page.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        assert_eq!(seen, ids);

        let only_b = JobFilter {
            queue: Some("b".to_string()),
            states: vec![JobState::Queued],
        };
        let page = m.scan_jobs(JobCursor::START, 100, &only_b);
        let b: Vec<JobId> = page.items.iter().map(|j| j.id).collect();
        assert_eq!(b, vec![ids[1], ids[3], ids[5]]);
        assert_eq!(page.next, None, "one page covers all");
    }

    #[test]
    fn queue_scan_pages_through_names_with_length_filters() {
        let mut m = StateMachine::new();
        for (n, queue) in ["a", "b", "b", "c", "c", "c"].iter().enumerate() {
            add(&mut m, n as u8, queue);
        }
        let first = m.scan_queues(None, 2, QueueFilter::default());
        assert_eq!(first.items, vec!["a", "b"]);
        assert_eq!(first.next.as_deref(), Some("c"));
        let second = m.scan_queues(first.next.as_deref(), 2, QueueFilter::default());
        assert_eq!(second.items, vec!["c"]);
        assert_eq!(second.next, None);

        let busy = QueueFilter {
            min_len: Some(2),
            max_len: Some(2),
        };
        assert_eq!(m.scan_queues(None, 10, busy).items, vec!["b"]);
    }
}

//! Random sequences of appends, syncs, compactions, crashes and restarts,
//! checked against a model of what the log promises: after a crash the
//! recovered records are exactly the synced ones plus possibly a prefix of the
//! unsynced ones, in order, behind the last installed snapshot.

use std::future::Future;

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use synod::storage::MemDisk;
use synod::wal::{Recovery, Rotation, SnapshotInstalled, Wal, WalError};

/// Polls a future that is complete at once, as every future over a
/// [`MemDisk`] is.
fn now<T>(future: impl Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => value,
        std::task::Poll::Pending => panic!("a future over MemDisk was pending"),
    }
}

/// Polls a future once: `None` if it waits.
fn poll<T>(future: &mut std::pin::Pin<Box<dyn Future<Output = T>>>) -> Option<T> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => Some(value),
        std::task::Poll::Pending => None,
    }
}

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<u8>),
    /// Starts a sync and holds its job, as a spawned task would.
    StartSync,
    /// Runs the held sync job and reports it.
    FinishSync,
    /// Finishes the held sync job, then runs a whole new one.
    Sync,
    /// Rotates, carrying this many fresh records.
    Rotate(usize),
    /// Starts installing a snapshot for the last rotation.
    StartInstall,
    /// Runs the held install job (and the held sync, if it waits for that
    /// one to create the segment) and reports it.
    FinishInstall,
    /// Loses unsynced writes, then restarts.
    Crash(u64),
    /// Restarts without a crash.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 1..40).prop_map(Op::Append),
        3 => Just(Op::StartSync),
        3 => Just(Op::FinishSync),
        2 => Just(Op::Sync),
        2 => (0..3usize).prop_map(Op::Rotate),
        3 => Just(Op::StartInstall),
        3 => Just(Op::FinishInstall),
        1 => any::<u64>().prop_map(Op::Crash),
        1 => Just(Op::Reopen),
    ]
}

/// A record the model expects to find after the installed snapshot.
#[derive(Clone, Debug)]
struct Entry {
    /// Appended ever before this one, across restarts: orders records.
    id: u64,
    /// Its LSN in the current incarnation; 0 once recovered (durable).
    lsn: u64,
    payload: Vec<u8>,
}

type Job<T> = std::pin::Pin<Box<dyn Future<Output = Result<T, WalError>>>>;

struct Install {
    job: Job<SnapshotInstalled>,
    first_id: u64,
    carried: u64,
    snapshot: Vec<u8>,
}

struct Harness {
    disk: MemDisk,
    wal: Wal<MemDisk>,
    /// The held sync, as a spawned task would run it.
    sync_job: Option<Job<u64>>,
    /// The last rotation not yet given to an install, the first entry id
    /// after it (its carried records included), and how many it carried.
    rotation: Option<(Rotation, u64, u64)>,
    install_job: Option<Install>,
    /// Entries before this id are durable whatever their LSN: an install
    /// made them so.
    durable_below_id: u64,
    /// Model: the last installed snapshot and the records after it.
    snapshot: Option<Vec<u8>>,
    entries: Vec<Entry>,
    next_id: u64,
    snapshots_made: u64,
}

impl Harness {
    fn new() -> Harness {
        let disk = MemDisk::new();
        let (wal, _) = now(Wal::open(disk.clone())).expect("open");
        Harness {
            disk,
            wal,
            sync_job: None,
            rotation: None,
            install_job: None,
            durable_below_id: 0,
            snapshot: None,
            entries: Vec::new(),
            next_id: 0,
            snapshots_made: 0,
        }
    }

    fn push(&mut self, lsn: u64, payload: Vec<u8>) {
        self.entries.push(Entry {
            id: self.next_id,
            lsn,
            payload,
        });
        self.next_id += 1;
    }

    /// How many leading entries are certain to survive a crash.
    fn durable_count(&self) -> usize {
        self.entries
            .iter()
            .take_while(|e| e.id < self.durable_below_id || e.lsn <= self.wal.durable())
            .count()
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Append(payload) => {
                let lsn = self.wal.append(&payload).expect("append");
                prop_assert_eq!(lsn, self.wal.appended());
                self.push(lsn, payload);
            }
            Op::StartSync => {
                if let Some(job) = self.wal.start_sync() {
                    prop_assert!(self.sync_job.is_none(), "two syncs at once");
                    self.sync_job = Some(Box::pin(job.run()));
                }
            }
            Op::FinishSync => self.finish_sync(true)?,
            Op::Sync => {
                self.apply(Op::FinishSync)?;
                self.apply(Op::StartSync)?;
                self.apply(Op::FinishSync)?;
            }
            Op::Rotate(carried) => {
                if !self.wal.can_rotate() {
                    return Ok(());
                }
                let carry: Vec<Vec<u8>> = (0..carried)
                    .map(|i| format!("carry {} {i}", self.next_id).into_bytes())
                    .collect();
                let first_id = self.next_id;
                let rotation = self.wal.rotate(&carry).expect("rotate");
                let first_lsn = rotation.lsn() - carried as u64 + 1;
                for (i, payload) in carry.into_iter().enumerate() {
                    self.push(first_lsn + i as u64, payload);
                }
                self.rotation = Some((rotation, first_id, carried as u64));
            }
            Op::StartInstall => {
                if self.rotation.is_some() && !self.wal.is_installing() {
                    let (rotation, first_id, carried) = self.rotation.take().expect("a rotation");
                    self.snapshots_made += 1;
                    let snapshot = format!("snapshot {}", self.snapshots_made).into_bytes();
                    let job = self.wal.install_snapshot(rotation, snapshot.clone());
                    self.install_job = Some(Install {
                        job: Box::pin(job.run()),
                        first_id,
                        carried,
                        snapshot,
                    });
                }
            }
            Op::FinishInstall => self.finish_install(true)?,
            Op::Crash(seed) => {
                self.disk.crash(&mut SmallRng::seed_from_u64(seed));
                self.restart(false)?;
            }
            Op::Reopen => self.restart(true)?,
        }
        prop_assert!(self.wal.durable() <= self.wal.appended());
        Ok(())
    }

    /// Runs the held sync, which may first wait for the held install to
    /// create the rotation's segment.
    fn finish_sync(&mut self, may_run_install: bool) -> Result<(), TestCaseError> {
        let Some(mut job) = self.sync_job.take() else {
            return Ok(());
        };
        let result = match poll(&mut job) {
            Some(result) => result,
            None => {
                prop_assert!(
                    may_run_install && self.install_job.is_some(),
                    "a sync waits for nothing"
                );
                self.finish_install(false)?;
                poll(&mut job).expect("sync after the install")
            }
        };
        let lsn = result.expect("sync");
        self.wal.synced(lsn).expect("synced");
        prop_assert!(self.wal.durable() >= lsn);
        Ok(())
    }

    /// Runs the held install, which may first wait for the held sync to
    /// create the rotation's segment.
    fn finish_install(&mut self, may_run_sync: bool) -> Result<(), TestCaseError> {
        let Some(mut install) = self.install_job.take() else {
            return Ok(());
        };
        let result = match poll(&mut install.job) {
            Some(result) => result,
            None => {
                prop_assert!(
                    may_run_sync && self.sync_job.is_some(),
                    "an install waits for nothing"
                );
                self.finish_sync(false)?;
                poll(&mut install.job).expect("install after the sync")
            }
        };
        self.wal.snapshot_installed(result.expect("install"));
        self.snapshot = Some(install.snapshot);
        self.entries.retain(|e| e.id >= install.first_id);
        self.durable_below_id = install.first_id + install.carried;
        Ok(())
    }

    /// Drops the log and its jobs, reopens, and checks what came back.
    fn restart(&mut self, clean: bool) -> Result<(), TestCaseError> {
        // Without a crash, only records still held in memory (a rotation's
        // segment not yet created) can be missing.
        let all_on_disk = clean && !self.wal.is_rotating();
        let durable_count = self.durable_count();
        self.sync_job = None;
        self.install_job = None;
        self.rotation = None;
        let (wal, recovery) = now(Wal::open(self.disk.clone())).expect("open after restart");
        self.check(&recovery, durable_count, all_on_disk)?;

        // Recovering again changes nothing.
        drop(wal);
        let (wal, again) = now(Wal::open(self.disk.clone())).expect("second open");
        prop_assert_eq!(&again.snapshot, &recovery.snapshot);
        prop_assert_eq!(&again.records, &recovery.records);
        prop_assert_eq!(&again.truncated, &None);

        self.wal = wal;
        self.entries.truncate(recovery.records.len());
        for entry in &mut self.entries {
            entry.lsn = 0;
        }
        Ok(())
    }

    fn check(
        &self,
        recovery: &Recovery,
        durable_count: usize,
        all_on_disk: bool,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(&recovery.snapshot, &self.snapshot);
        let kept = recovery.records.len();
        prop_assert!(
            kept >= durable_count,
            "lost a synced record: kept {}, synced {}",
            kept,
            durable_count
        );
        prop_assert!(
            kept <= self.entries.len(),
            "recovered records never appended"
        );
        if all_on_disk {
            prop_assert_eq!(kept, self.entries.len(), "a clean restart lost records");
        }
        for (found, expected) in recovery.records.iter().zip(&self.entries) {
            prop_assert_eq!(found, &expected.payload, "not a prefix of the appends");
        }
        Ok(())
    }

    /// Finishes what is running, syncs everything, and checks that nothing at
    /// all is lost in a crash.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        self.apply(Op::FinishSync)?;
        self.apply(Op::FinishInstall)?;
        while let Some(job) = self.wal.start_sync() {
            let lsn = now(job.run()).expect("sync");
            self.wal.synced(lsn).expect("synced");
        }
        prop_assert_eq!(self.wal.durable(), self.wal.appended());
        prop_assert_eq!(self.durable_count(), self.entries.len());
        self.apply(Op::Crash(0))?;
        prop_assert_eq!(self.wal.appended(), 0);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        // A failure prints its minimal case; no regression file is kept.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn recovery_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        let mut harness = Harness::new();
        for op in ops {
            harness.apply(op)?;
        }
        harness.settle()?;
    }
}

//! The write-ahead log over the in-memory disk: round trips, group commit,
//! crashes that lose unsynced writes, torn tails, corruption, and crashes at
//! every step of a compaction.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use synod::storage::{Disk, MemDisk};
use synod::wal::{Recovery, SNAPSHOT_FILE, TruncatedTail, Wal, WalError, segment_name};

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

fn open<D: Disk>(disk: &D) -> (Wal<D>, Recovery) {
    now(Wal::open(disk.clone())).expect("open")
}

/// Runs syncs until nothing is left to sync.
fn sync_all<D: Disk>(wal: &mut Wal<D>) -> Result<(), WalError> {
    while let Some(job) = wal.start_sync() {
        let lsn = now(job.run())?;
        wal.synced(lsn)?;
    }
    Ok(())
}

/// Rotates with `carry`, syncs, and installs `snapshot`.
fn compact<D: Disk>(wal: &mut Wal<D>, carry: &[Vec<u8>], snapshot: &[u8]) -> Result<(), WalError> {
    let rotation = wal.rotate(carry)?;
    sync_all(wal)?;
    let installed = now(wal.install_snapshot(rotation, snapshot.to_vec()).run())?;
    wal.snapshot_installed(installed);
    Ok(())
}

/// Distinct records of varied lengths.
fn record(i: usize) -> Vec<u8> {
    format!("record {i} {}", "x".repeat(i * 7 % 23)).into_bytes()
}

fn records(range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    range.map(record).collect()
}

/// Appends `payloads`, returning the offset of each record in the current
/// segment.
fn append_all<D: Disk>(wal: &mut Wal<D>, disk: &MemDisk, payloads: &[Vec<u8>]) -> Vec<u64> {
    payloads
        .iter()
        .map(|payload| {
            wal.append(payload).expect("append");
            let end = disk.len(&wal.current_segment()).expect("segment exists");
            end - 8 - payload.len() as u64
        })
        .collect()
}

#[test]
fn appended_and_synced_records_come_back_in_order() {
    let disk = MemDisk::new();
    let (mut wal, recovery) = open(&disk);
    assert_eq!(
        recovery,
        Recovery {
            snapshot: None,
            records: vec![],
            truncated: None
        }
    );
    assert!(disk.is_empty(), "opening an empty log writes nothing");
    for (i, payload) in records(0..100).iter().enumerate() {
        assert_eq!(wal.append(payload).unwrap(), i as u64 + 1);
    }
    assert_eq!(wal.appended(), 100);
    assert_eq!(wal.durable(), 0);
    sync_all(&mut wal).unwrap();
    assert_eq!(wal.durable(), 100);
    drop(wal);

    let (mut wal, recovery) = open(&disk);
    assert_eq!(recovery.records, records(0..100));
    assert_eq!(recovery.snapshot, None);
    assert_eq!(recovery.truncated, None);
    // LSNs start again after a restart; appends continue the same segment.
    assert_eq!(wal.append(&record(100)).unwrap(), 1);
    sync_all(&mut wal).unwrap();
    assert_eq!(open(&disk).1.records, records(0..101));
    assert_eq!(disk.list().unwrap(), vec![segment_name(1)]);
}

#[test]
fn one_sync_covers_every_record_appended_before_it_started() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    assert!(wal.start_sync().is_none(), "nothing to sync yet");
    for payload in records(0..3) {
        wal.append(&payload).unwrap();
    }
    let job = wal.start_sync().expect("records to sync");
    assert_eq!(job.lsn(), 3);
    assert!(wal.is_syncing());
    // Appends go on while the sync runs; a second sync waits for the first.
    wal.append(&record(3)).unwrap();
    wal.append(&record(4)).unwrap();
    assert!(wal.start_sync().is_none(), "one sync at a time");
    assert_eq!(wal.durable(), 0);
    let lsn = now(job.run()).unwrap();
    wal.synced(lsn).unwrap();
    assert_eq!(wal.durable(), 3);
    assert!(!wal.is_syncing());

    let job = wal.start_sync().expect("records 4 and 5");
    assert_eq!(job.lsn(), 5);
    let lsn = now(job.run()).unwrap();
    wal.synced(lsn).unwrap();
    assert_eq!(wal.durable(), 5);
    assert!(wal.start_sync().is_none(), "everything is durable");
}

#[test]
fn a_snapshot_replaces_the_records_before_it() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    for payload in records(0..10) {
        wal.append(&payload).unwrap();
    }
    let rotation = wal.rotate(records(100..102)).unwrap();
    assert_eq!(rotation.segment(), segment_name(2));
    assert_eq!(rotation.lsn(), 13, "ten records, the rotation, two carried");
    assert!(wal.is_rotating());
    // Appended after the rotation: they belong to the new segment.
    wal.append(&record(10)).unwrap();
    assert_eq!(disk.len(&segment_name(2)), None, "created by the next sync");
    let job = wal.start_sync().unwrap();
    wal.append(&record(11)).unwrap();
    let lsn = now(job.run()).unwrap();
    wal.synced(lsn).unwrap();
    assert!(!wal.is_rotating());
    assert!(wal.durable() >= rotation.lsn());
    wal.append(&record(12)).unwrap();
    sync_all(&mut wal).unwrap();

    let job = wal.install_snapshot(rotation, b"snapshot one".to_vec());
    assert!(wal.is_installing());
    wal.append(&record(13)).unwrap();
    let installed = now(job.run()).unwrap();
    wal.snapshot_installed(installed);
    sync_all(&mut wal).unwrap();
    assert_eq!(
        disk.list().unwrap(),
        vec![SNAPSHOT_FILE.to_string(), segment_name(2)]
    );
    drop(wal);

    let (mut wal, recovery) = open(&disk);
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"snapshot one"[..]));
    let mut expected = records(100..102);
    expected.extend(records(10..14));
    assert_eq!(recovery.records, expected);

    // A second compaction, from a reopened log.
    compact(&mut wal, &records(200..201), b"snapshot two").unwrap();
    wal.append(&record(14)).unwrap();
    sync_all(&mut wal).unwrap();
    let (_, recovery) = open(&disk);
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"snapshot two"[..]));
    assert_eq!(recovery.records, vec![record(200), record(14)]);
    assert_eq!(
        disk.list().unwrap(),
        vec![SNAPSHOT_FILE.to_string(), segment_name(3)]
    );
}

#[test]
fn a_snapshot_can_be_installed_right_after_rotating() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    for payload in records(0..4) {
        wal.append(&payload).unwrap();
    }
    let rotation = wal.rotate(records(100..102)).unwrap();
    wal.append(&record(4)).unwrap();
    // No sync has created the segment: the install does, after syncing the
    // old one.
    let install = wal.install_snapshot(rotation, b"state".to_vec());
    wal.append(&record(5)).unwrap();
    let installed = now(install.run()).unwrap();
    wal.snapshot_installed(installed);
    assert!(wal.is_rotating(), "the next sync takes the segment over");
    wal.append(&record(6)).unwrap();
    sync_all(&mut wal).unwrap();
    assert!(!wal.is_rotating());
    assert_eq!(wal.durable(), wal.appended());
    wal.append(&record(7)).unwrap();
    sync_all(&mut wal).unwrap();
    drop(wal);

    let (_, recovery) = open(&disk);
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"state"[..]));
    let mut expected = records(100..102);
    expected.extend(records(4..8));
    assert_eq!(recovery.records, expected);
    assert_eq!(
        disk.list().unwrap(),
        vec![SNAPSHOT_FILE.to_string(), segment_name(2)]
    );
}

#[test]
fn a_rotation_may_follow_a_completed_install_at_once() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    wal.append(&record(0)).unwrap();
    let rotation = wal.rotate([record(100)]).unwrap();
    assert!(!wal.can_rotate(), "its segment is not created yet");
    let installed = now(wal.install_snapshot(rotation, b"one".to_vec()).run()).unwrap();
    wal.snapshot_installed(installed);
    assert!(wal.can_rotate());
    wal.append(&record(1)).unwrap();
    // No sync ran since: the rotation takes the created segment over first.
    let rotation = wal.rotate([record(101)]).unwrap();
    let installed = now(wal.install_snapshot(rotation, b"two".to_vec()).run()).unwrap();
    wal.snapshot_installed(installed);
    wal.append(&record(2)).unwrap();
    sync_all(&mut wal).unwrap();
    drop(wal);

    let (_, recovery) = open(&disk);
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"two"[..]));
    assert_eq!(recovery.records, vec![record(101), record(2)]);
    assert_eq!(
        disk.list().unwrap(),
        vec![SNAPSHOT_FILE.to_string(), segment_name(3)]
    );
}

/// Polls a future once: `None` if it waits.
fn poll<F: Future>(future: &mut std::pin::Pin<Box<F>>) -> Option<F::Output> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(value) => Some(value),
        std::task::Poll::Pending => None,
    }
}

#[test]
fn syncs_and_installs_wait_for_whichever_creates_the_segment() {
    // A sync creates it; the install waits.
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    wal.append(&record(0)).unwrap();
    let rotation = wal.rotate([record(100)]).unwrap();
    let sync = wal.start_sync().expect("the sync creating the segment");
    let mut install = Box::pin(wal.install_snapshot(rotation, b"one".to_vec()).run());
    assert!(
        poll(&mut install).is_none(),
        "the segment is not created yet"
    );
    let lsn = now(sync.run()).unwrap();
    wal.synced(lsn).unwrap();
    let installed = poll(&mut install).expect("created now").unwrap();
    wal.snapshot_installed(installed);

    // The install creates it; a sync started meanwhile waits.
    wal.append(&record(1)).unwrap();
    let rotation = wal.rotate([record(101)]).unwrap();
    let mut install = Box::pin(wal.install_snapshot(rotation, b"two".to_vec()).run());
    wal.append(&record(2)).unwrap();
    let mut sync = Box::pin(wal.start_sync().expect("records to sync").run());
    assert!(poll(&mut sync).is_none(), "the segment is not created yet");
    let installed = poll(&mut install).expect("the install creates it").unwrap();
    let lsn = poll(&mut sync).expect("created now").unwrap();
    assert_eq!(lsn, wal.appended() - 1, "all but the record appended since");
    wal.synced(lsn).unwrap();
    wal.snapshot_installed(installed);
    assert!(
        !wal.is_rotating(),
        "the log writes to the new segment itself"
    );
    sync_all(&mut wal).unwrap();
    assert_eq!(wal.durable(), wal.appended());
    drop(wal);

    let (_, recovery) = open(&disk);
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"two"[..]));
    assert_eq!(recovery.records, vec![record(101), record(2)]);
}

#[test]
fn a_crash_may_lose_unsynced_records_but_never_synced_ones() {
    let (mut lost_all, mut kept_some, mut torn) = (0, 0, 0);
    for seed in 0..400 {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        for payload in records(0..10) {
            wal.append(&payload).unwrap();
        }
        sync_all(&mut wal).unwrap();
        for payload in records(10..20) {
            wal.append(&payload).unwrap();
        }
        drop(wal);
        disk.crash(&mut SmallRng::seed_from_u64(seed));

        let (mut wal, recovery) = open(&disk);
        let kept = recovery.records.len();
        assert!(kept >= 10, "seed {seed}: lost a synced record");
        assert_eq!(recovery.records, records(0..kept), "seed {seed}");
        if kept == 10 {
            lost_all += 1;
        } else {
            kept_some += 1;
        }
        if let Some(tail) = &recovery.truncated {
            torn += 1;
            assert_eq!(tail.file, segment_name(1));
            assert_eq!(disk.len(&tail.file), Some(tail.offset_bytes));
        }

        // Recovering again finds the same log and nothing more to cut.
        drop(wal);
        let (again, recovery_again) = open(&disk);
        assert_eq!(recovery_again.records, recovery.records, "seed {seed}");
        assert_eq!(recovery_again.truncated, None, "seed {seed}");
        wal = again;

        // The log goes on after the cut, and what is synced now survives.
        wal.append(&record(99)).unwrap();
        sync_all(&mut wal).unwrap();
        drop(wal);
        disk.crash(&mut SmallRng::seed_from_u64(seed + 1000));
        let (_, recovery) = open(&disk);
        let mut expected = records(0..kept);
        expected.push(record(99));
        assert_eq!(recovery.records, expected, "seed {seed}");
    }
    // The crash model must exercise every case for this test to mean much.
    assert!(
        lost_all > 0 && kept_some > 0 && torn > 0,
        "{lost_all} {kept_some} {torn}"
    );
}

#[test]
fn a_log_cut_anywhere_in_its_last_record_restarts_without_it() {
    let payloads = records(0..5);
    let build = || {
        let disk = MemDisk::new();
        let (mut wal, _) = open(&disk);
        let offsets = append_all(&mut wal, &disk, &payloads);
        sync_all(&mut wal).unwrap();
        (disk, offsets)
    };
    let (disk, offsets) = build();
    let start = offsets[4];
    let end = disk.len(&segment_name(1)).unwrap();
    for cut in start..end {
        let (disk, _) = build();
        now(disk.truncate(&segment_name(1), cut)).unwrap();
        let (mut wal, recovery) = open(&disk);
        assert_eq!(recovery.records, payloads[..4], "cut at {cut}");
        let expected_tail = (cut > start).then(|| TruncatedTail {
            file: segment_name(1),
            offset_bytes: start,
            dropped_bytes: cut - start,
            reason: recovery
                .truncated
                .as_ref()
                .map(|t| t.reason.clone())
                .unwrap_or_default(),
        });
        assert_eq!(recovery.truncated, expected_tail, "cut at {cut}");
        assert_eq!(disk.len(&segment_name(1)), Some(start), "cut at {cut}");

        wal.append(&record(50)).unwrap();
        sync_all(&mut wal).unwrap();
        let (_, recovery) = open(&disk);
        let mut expected = payloads[..4].to_vec();
        expected.push(record(50));
        assert_eq!(recovery.records, expected, "cut at {cut}");
    }

    // Space allocated but never written reads back as zeros: a torn tail too.
    for zeroed_from in start..end {
        let (disk, _) = build();
        now(disk.truncate(&segment_name(1), zeroed_from)).unwrap();
        now(disk.truncate(&segment_name(1), end + 100)).unwrap();
        let (_, recovery) = open(&disk);
        assert_eq!(recovery.records, payloads[..4], "zeros from {zeroed_from}");
        let tail = recovery.truncated.expect("a torn tail");
        assert_eq!(
            (tail.offset_bytes, tail.dropped_bytes),
            (start, end + 100 - start)
        );
    }
}

#[test]
fn a_damaged_final_record_is_a_torn_tail() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    let offsets = append_all(&mut wal, &disk, &records(0..5));
    sync_all(&mut wal).unwrap();
    let end = disk.len(&segment_name(1)).unwrap();
    disk.corrupt(&segment_name(1), end - 1);
    let (_, recovery) = open(&disk);
    assert_eq!(recovery.records, records(0..4));
    let tail = recovery.truncated.unwrap();
    assert_eq!(tail.offset_bytes, offsets[4]);
    assert!(tail.reason.contains("checksum"), "{}", tail.reason);
}

fn expect_corrupt(result: Result<(Wal<MemDisk>, Recovery), WalError>, file: &str, offset: u64) {
    match result {
        Err(error @ WalError::Corrupt { .. }) => {
            let message = error.to_string();
            let WalError::Corrupt {
                file: found_file,
                offset_bytes,
                ..
            } = error
            else {
                unreachable!()
            };
            assert_eq!((found_file.as_str(), offset_bytes), (file, offset));
            assert!(message.contains(file), "{message}");
            assert!(
                message.contains(&format!("byte offset {offset}")),
                "{message}"
            );
        }
        Err(other) => panic!("expected corruption in {file} at {offset}, got {other}"),
        Ok((_, recovery)) => {
            panic!("expected corruption in {file} at {offset}, recovered {recovery:?}")
        }
    }
}

#[test]
fn a_flipped_byte_before_the_tail_stops_recovery_naming_file_and_offset() {
    let payloads = records(0..6);
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    let offsets = append_all(&mut wal, &disk, &payloads);
    sync_all(&mut wal).unwrap();
    drop(wal);
    let name = segment_name(1);
    let pristine = disk.read(&name).unwrap().unwrap();

    for (k, &offset) in offsets.iter().enumerate().take(5) {
        let len = payloads[k].len() as u64;
        // The top length byte (the length goes over the maximum), each checksum
        // byte, and the first and last payload bytes.
        for within in [3, 4, 5, 6, 7, 8, 8 + len - 1] {
            let damaged = MemDisk::new();
            damaged.append(&name, &pristine).unwrap();
            damaged.corrupt(&name, offset + within);
            let before = damaged.read(&name).unwrap();
            expect_corrupt(now(Wal::open(damaged.clone())), &name, offset);
            assert_eq!(damaged.read(&name).unwrap(), before, "left as found");
        }
    }
    // The segment header is checked too.
    let damaged = MemDisk::new();
    damaged.append(&name, &pristine).unwrap();
    damaged.corrupt(&name, 12);
    expect_corrupt(now(Wal::open(damaged)), &name, 0);
}

#[test]
fn damage_in_a_segment_before_the_last_is_corruption_even_at_its_end() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    let offsets = append_all(&mut wal, &disk, &records(0..3));
    let _rotation = wal.rotate(records(10..11)).unwrap();
    wal.append(&record(3)).unwrap();
    sync_all(&mut wal).unwrap();
    drop(wal);
    let first = segment_name(1);
    let end = disk.len(&first).unwrap();
    // In the last segment this would be a torn tail; here the next segment
    // was created only after this one was synced, so it is damage.
    disk.corrupt(&first, end - 1);
    expect_corrupt(now(Wal::open(disk.clone())), &first, offsets[2]);
}

#[test]
fn a_damaged_or_newer_snapshot_or_segment_is_refused() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    wal.append(&record(0)).unwrap();
    compact(&mut wal, &records(1..2), b"state").unwrap();
    drop(wal);

    let damaged = MemDisk::new();
    for name in disk.list().unwrap() {
        damaged
            .append(&name, &disk.read(&name).unwrap().unwrap())
            .unwrap();
    }
    let len = damaged.len(SNAPSHOT_FILE).unwrap();
    damaged.corrupt(SNAPSHOT_FILE, len - 2);
    expect_corrupt(now(Wal::open(damaged)), SNAPSHOT_FILE, 25);

    // Flipping the format byte makes it 0xfe: written by a newer build.
    let newer = MemDisk::new();
    for name in disk.list().unwrap() {
        newer
            .append(&name, &disk.read(&name).unwrap().unwrap())
            .unwrap();
    }
    let segment = segment_name(2);
    newer.corrupt(&segment, 8);
    match now(Wal::open(newer)) {
        Err(WalError::NewerFormat { file, found, .. }) => {
            assert_eq!((file, found), (segment, 0xfe));
        }
        other => panic!("expected a newer format, got {other:?}"),
    }
}

#[test]
fn a_missing_segment_is_refused() {
    let disk = MemDisk::new();
    let (mut wal, _) = open(&disk);
    for i in 0..3 {
        wal.append(&record(i)).unwrap();
        let _rotation = wal.rotate(records(10..11)).unwrap();
        sync_all(&mut wal).unwrap();
    }
    drop(wal);
    assert_eq!(disk.list().unwrap().len(), 4);
    now(disk.remove(&segment_name(2))).unwrap();
    match now(Wal::open(disk)) {
        Err(WalError::MissingSegment { file }) => assert_eq!(file, segment_name(2)),
        other => panic!("expected a missing segment, got {other:?}"),
    }
}

#[test]
fn records_must_be_one_byte_to_the_maximum() {
    let (mut wal, _) = open(&MemDisk::new());
    assert!(matches!(wal.append(b""), Err(WalError::EmptyRecord)));
    let huge = vec![1; synod::wal::MAX_RECORD_BYTES as usize + 1];
    assert!(matches!(
        wal.append(&huge),
        Err(WalError::RecordTooLarge { .. })
    ));
    assert!(matches!(wal.rotate([&b""[..]]), Err(WalError::EmptyRecord)));
    assert_eq!(wal.appended(), 0, "refused records take no LSN");
    assert!(!wal.is_rotating());
}

/// A disk whose process dies after a set number of writes: every write after
/// that fails and changes nothing.
#[derive(Clone, Debug)]
struct DyingDisk {
    inner: MemDisk,
    writes_left: Arc<AtomicUsize>,
}

impl DyingDisk {
    fn write(&self) -> io::Result<()> {
        let left = self.writes_left.load(Ordering::SeqCst);
        if left == 0 {
            return Err(io::Error::other("the process died"));
        }
        self.writes_left.store(left - 1, Ordering::SeqCst);
        Ok(())
    }
}

impl Disk for DyingDisk {
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        self.inner.read(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.write()?;
        self.inner.append(name, bytes)
    }

    fn sync(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
        std::future::ready(self.write().and_then(|()| now(self.inner.sync(name))))
    }

    fn truncate(
        &self,
        name: &str,
        len_bytes: u64,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        std::future::ready(
            self.write()
                .and_then(|()| now(self.inner.truncate(name, len_bytes))),
        )
    }

    fn write_atomic(
        &self,
        name: &str,
        parts: Vec<Bytes>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        std::future::ready(
            self.write()
                .and_then(|()| now(self.inner.write_atomic(name, parts))),
        )
    }

    fn remove(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
        std::future::ready(self.write().and_then(|()| now(self.inner.remove(name))))
    }
}

#[test]
fn a_crash_at_every_step_of_a_compaction_recovers_the_old_or_the_new_state() {
    // A sync creates the new segment, or the install does.
    for install_at_once in [false, true] {
        crash_at_every_step_of_a_compaction(install_at_once);
    }
}

fn crash_at_every_step_of_a_compaction(install_at_once: bool) {
    let old_records = records(0..6);
    let carry = records(100..102);
    let (mut saw_old, mut saw_new) = (0, 0);
    for writes in 0.. {
        let mut finished = false;
        for seed in 0..20 {
            let disk = MemDisk::new();
            let (mut wal, _) = open(&disk);
            for payload in &old_records[..5] {
                wal.append(payload).unwrap();
            }
            compact(&mut wal, &[], b"old snapshot").unwrap();
            for payload in &old_records[..5] {
                wal.append(payload).unwrap();
            }
            sync_all(&mut wal).unwrap();
            drop(wal);

            // After opening, the process dies after `writes` writes.
            let dying = DyingDisk {
                inner: disk.clone(),
                writes_left: Arc::new(AtomicUsize::new(usize::MAX)),
            };
            let (mut wal, _) = open(&dying);
            dying.writes_left.store(writes, Ordering::SeqCst);
            let steps = (|| {
                // Unsynced when the rotation starts.
                wal.append(&old_records[5])?;
                let rotation = wal.rotate(&carry)?;
                wal.append(&record(6))?;
                if !install_at_once {
                    sync_all(&mut wal)?;
                }
                let installed = now(wal
                    .install_snapshot(rotation, b"new snapshot".to_vec())
                    .run())?;
                wal.snapshot_installed(installed);
                wal.append(&record(7))?;
                sync_all(&mut wal)
            })();
            finished = steps.is_ok();
            drop(wal);
            disk.crash(&mut SmallRng::seed_from_u64(seed));

            let (_, recovery) = open(&disk);
            let (full, synced) = match recovery.snapshot.as_deref() {
                Some(b"old snapshot") => {
                    saw_old += 1;
                    let mut full = [&old_records[..5], &old_records[5..]].concat();
                    full.extend(carry.iter().cloned());
                    full.push(record(6));
                    (full, 5)
                }
                Some(b"new snapshot") => {
                    saw_new += 1;
                    let mut full = carry.clone();
                    full.push(record(6));
                    full.push(record(7));
                    // The new segment was durable before the snapshot named it.
                    (full, 3 + usize::from(finished))
                }
                other => panic!(
                    "install at once {install_at_once}, writes {writes}, seed {seed}: \
                     snapshot {other:?}"
                ),
            };
            let kept = recovery.records.len();
            assert!(
                kept >= synced && kept <= full.len() && recovery.records == full[..kept],
                "install at once {install_at_once}, writes {writes}, seed {seed}: recovered {:?}",
                recovery.records
            );
            // And recovery is idempotent.
            let (_, again) = open(&disk);
            assert_eq!(again.snapshot, recovery.snapshot);
            assert_eq!(again.records, recovery.records);
            assert_eq!(again.truncated, None);
        }
        if finished {
            break;
        }
    }
    assert!(saw_old > 0 && saw_new > 0);
}

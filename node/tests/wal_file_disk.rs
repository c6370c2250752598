//! The write-ahead log on a real directory.

// Real files would escape the simulation; `FileDisk` is absent under madsim.
#![cfg(not(madsim))]

use std::fs::OpenOptions;
use std::io;
use std::path::PathBuf;

use bytes::Bytes;
use synod::storage::{Disk, FileDisk};
use synod::wal::{SNAPSHOT_FILE, Wal, WalError, segment_name};

/// A fresh directory under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("synod-{test}-{}", std::process::id()));
        // Left over from an earlier run that was killed.
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn record(i: usize) -> Vec<u8> {
    format!("record {i} {}", "y".repeat(i * 5 % 19)).into_bytes()
}

async fn sync_all(wal: &mut Wal<FileDisk>) -> Result<(), WalError> {
    while let Some(job) = wal.start_sync() {
        // As the node does: the sync runs as its own task.
        let lsn = tokio::spawn(job.run()).await.expect("sync task")?;
        wal.synced(lsn)?;
    }
    Ok(())
}

#[tokio::test]
async fn records_and_a_snapshot_survive_a_restart() {
    let dir = TempDir::new("wal-round-trip");
    let disk = FileDisk::open(dir.0.join("data")).expect("create the directory");
    let (mut wal, recovery) = Wal::open(disk.clone()).await.unwrap();
    assert_eq!(recovery.records, Vec::<Vec<u8>>::new());
    for i in 0..50 {
        wal.append(&record(i)).unwrap();
    }
    sync_all(&mut wal).await.unwrap();
    assert_eq!(wal.durable(), 50);
    drop(wal);

    let disk = FileDisk::open(dir.0.join("data")).unwrap();
    let (mut wal, recovery) = Wal::open(disk.clone()).await.unwrap();
    assert_eq!(recovery.records, (0..50).map(record).collect::<Vec<_>>());
    assert_eq!(recovery.truncated, None);

    // The install runs as a task from the moment of the rotation, while
    // appends and syncs go on; one of them creates the new segment and the
    // other waits for it.
    let rotation = wal.rotate([record(100)]).unwrap();
    let install = tokio::spawn(wal.install_snapshot(rotation, b"the state".to_vec()).run());
    wal.append(&record(50)).unwrap();
    sync_all(&mut wal).await.unwrap();
    let installed = install.await.unwrap().unwrap();
    wal.snapshot_installed(installed);
    wal.append(&record(51)).unwrap();
    sync_all(&mut wal).await.unwrap();
    drop(wal);
    assert_eq!(
        disk.list().unwrap(),
        vec![SNAPSHOT_FILE.to_string(), segment_name(2)],
        "the old segment is gone and no temporary file is left"
    );

    let disk = FileDisk::open(dir.0.join("data")).unwrap();
    let (_, recovery) = Wal::open(disk).await.unwrap();
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"the state"[..]));
    assert_eq!(recovery.records, vec![record(100), record(50), record(51)]);
}

#[tokio::test]
async fn a_file_cut_mid_record_restarts_without_that_record() {
    let dir = TempDir::new("wal-cut-tail");
    let disk = FileDisk::open(&dir.0).unwrap();
    let (mut wal, _) = Wal::open(disk.clone()).await.unwrap();
    for i in 0..5 {
        wal.append(&record(i)).unwrap();
    }
    sync_all(&mut wal).await.unwrap();
    drop(wal);
    let path = dir.0.join(segment_name(1));
    let len = std::fs::metadata(&path).unwrap().len();
    let last_start = len - 8 - record(4).len() as u64;
    let cut = last_start + 5;
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let disk = FileDisk::open(&dir.0).unwrap();
    let (mut wal, recovery) = Wal::open(disk.clone()).await.unwrap();
    assert_eq!(recovery.records, (0..4).map(record).collect::<Vec<_>>());
    let tail = recovery.truncated.expect("a torn tail");
    assert_eq!(
        (tail.file.as_str(), tail.offset_bytes, tail.dropped_bytes),
        (segment_name(1).as_str(), last_start, 5)
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), last_start);

    // Appends go on from the cut.
    wal.append(&record(9)).unwrap();
    sync_all(&mut wal).await.unwrap();
    drop(wal);
    let (_, recovery) = Wal::open(FileDisk::open(&dir.0).unwrap()).await.unwrap();
    let mut expected: Vec<Vec<u8>> = (0..4).map(record).collect();
    expected.push(record(9));
    assert_eq!(recovery.records, expected);
    assert_eq!(recovery.truncated, None);
}

#[tokio::test]
async fn the_disk_keeps_its_contract() {
    let dir = TempDir::new("file-disk");
    let disk = FileDisk::open(&dir.0).unwrap();
    assert_eq!(disk.read("a").unwrap(), None);
    disk.append("b", b"12").unwrap();
    disk.append("b", b"34").unwrap();
    disk.append("a", b"x").unwrap();
    disk.sync("b").await.unwrap();
    disk.sync("a").await.unwrap();
    assert_eq!(disk.list().unwrap(), vec!["a".to_string(), "b".to_string()]);
    assert_eq!(disk.read("b").unwrap().unwrap(), b"1234");

    disk.truncate("b", 1).await.unwrap();
    disk.append("b", b"9").unwrap();
    assert_eq!(
        disk.read("b").unwrap().unwrap(),
        b"19",
        "appends follow a cut"
    );

    disk.write_atomic("b", vec![Bytes::from_static(b"whole")])
        .await
        .unwrap();
    disk.append("b", b"+").unwrap();
    assert_eq!(disk.read("b").unwrap().unwrap(), b"whole+");

    disk.remove("a").await.unwrap();
    disk.remove("a").await.unwrap();
    assert_eq!(disk.list().unwrap(), vec!["b".to_string()]);
    assert_eq!(
        disk.sync("a").await.unwrap_err().kind(),
        io::ErrorKind::NotFound
    );

    // A directory that cannot be created is named in the error.
    let blocked = dir.0.join("b").join("data");
    let error = FileDisk::open(&blocked).unwrap_err();
    assert!(
        error.to_string().contains(&blocked.display().to_string()),
        "{error}"
    );
}

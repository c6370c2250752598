//! Where the node keeps its files: a trait, so tests and the simulator can supply their own disk.
//!
//! A [`Disk`] is one flat directory of named files. It separates writing
//! ([`Disk::append`]) from making durable ([`Disk::sync`]) because that gap is
//! exactly what a crash exposes: [`MemDisk`] models it, losing unsynced bytes
//! (or keeping a torn part of them) on [`MemDisk::crash`]. [`FileDisk`] is the
//! real directory, and is absent under `--cfg madsim`, where real files would
//! escape the simulation.

// `madsim` is set by the simulator's RUSTFLAGS; the manifests do not declare
// it to check-cfg.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use rand::Rng;

/// A directory of named files (flat names, no subdirectories).
///
/// Reads, listing and appends are quick and synchronous; everything that
/// waits for the device is a future that borrows nothing, so it can be
/// spawned as its own task while the caller keeps appending.
///
/// Nothing written by [`append`](Disk::append) survives a crash until a
/// [`sync`](Disk::sync) of that file has completed. The other writes
/// ([`truncate`](Disk::truncate), [`write_atomic`](Disk::write_atomic),
/// [`remove`](Disk::remove)) are durable when their future completes.
pub trait Disk: Clone + Send + Sync + 'static {
    /// The whole content of `name`, or `None` if there is no such file.
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>>;

    /// The names of all files, sorted.
    fn list(&self) -> io::Result<Vec<String>>;

    /// Appends `bytes` to `name`, creating it if absent. Not durable until a
    /// later [`sync`](Disk::sync) of `name` completes.
    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()>;

    /// Makes every byte appended to `name` before this call durable, and the
    /// file's existence too. Fails with [`io::ErrorKind::NotFound`] if there
    /// is no such file.
    fn sync(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static;

    /// Cuts `name` to `len_bytes` (or extends it with zeros), durably.
    fn truncate(
        &self,
        name: &str,
        len_bytes: u64,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static;

    /// Replaces `name` with `parts`, one after another, all or nothing,
    /// durably: after a crash the file holds either its old content or all
    /// of `parts`. (Parts, so that a header goes in front of a large
    /// payload without copying the payload.)
    fn write_atomic(
        &self,
        name: &str,
        parts: Vec<Bytes>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static;

    /// Removes `name`, durably. Removing an absent file is not an error, so
    /// that an interrupted cleanup can simply be run again.
    fn remove(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static;
}

/// The error for an operation on a file that does not exist.
fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no file named {name}"))
}

/// One file of a [`MemDisk`].
#[derive(Clone, Debug, Default)]
struct MemFile {
    /// What a reader sees now.
    bytes: Vec<u8>,
    /// How much of `bytes` is certain to survive a crash.
    durable_len_bytes: usize,
    /// Whether the file itself survives a crash: a created file becomes
    /// durable on its first sync, like a directory entry on a real disk.
    exists_durably: bool,
}

/// An in-memory [`Disk`] that loses unsynced writes on [`crash`](MemDisk::crash).
///
/// Clones share one set of files, so a test can keep a handle, give another to
/// the code under test, and crash or damage the files from outside. Every
/// future it returns is already complete when first polled.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    files: Arc<Mutex<BTreeMap<String, MemFile>>>,
}

impl MemDisk {
    /// An empty disk.
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<String, MemFile>> {
        // A panic elsewhere while the lock was held cannot leave the map
        // half-updated (every change is a single assignment), so go on.
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Simulates a power failure followed by a reboot.
    ///
    /// Each file keeps its durable bytes plus a random prefix of the bytes
    /// appended since its last sync (a torn write), and sometimes the tail of
    /// that surviving prefix reads back as zeros (space allocated but never
    /// written). A file that was created but never synced may vanish. What
    /// survives is durable afterwards.
    pub fn crash(&self, rng: &mut impl Rng) {
        let mut files = self.files();
        let names: Vec<String> = files.keys().cloned().collect();
        for name in names {
            let Some(file) = files.get_mut(&name) else {
                continue;
            };
            if !file.exists_durably && rng.random_bool(0.5) {
                files.remove(&name);
                continue;
            }
            let durable_len_bytes = if file.exists_durably {
                file.durable_len_bytes
            } else {
                0
            };
            let unsynced_bytes = file.bytes.len().saturating_sub(durable_len_bytes);
            let kept_len_bytes = durable_len_bytes + rng.random_range(0..=unsynced_bytes);
            file.bytes.truncate(kept_len_bytes);
            if kept_len_bytes > durable_len_bytes && rng.random_bool(0.25) {
                let zeroed_from = rng.random_range(durable_len_bytes..kept_len_bytes);
                file.bytes[zeroed_from..].fill(0);
            }
            file.durable_len_bytes = kept_len_bytes;
            file.exists_durably = true;
        }
    }

    /// Flips every bit of the byte at `offset_bytes` of `name`, as media
    /// damage would: durable or not, the byte is wrong from now on.
    ///
    /// # Panics
    ///
    /// If there is no such file or byte: that is a mistake in the test.
    pub fn corrupt(&self, name: &str, offset_bytes: u64) {
        let mut files = self.files();
        let file = files
            .get_mut(name)
            .unwrap_or_else(|| panic!("corrupt: no file named {name}"));
        let byte = usize::try_from(offset_bytes)
            .ok()
            .and_then(|offset| file.bytes.get_mut(offset))
            .unwrap_or_else(|| panic!("corrupt: {name} has no byte at offset {offset_bytes}"));
        *byte ^= 0xff;
    }

    /// The current length of `name` in bytes, durable or not; `None` if there
    /// is no such file.
    pub fn len(&self, name: &str) -> Option<u64> {
        self.files().get(name).map(|file| file.bytes.len() as u64)
    }

    /// How many leading bytes of `name` are certain to survive a crash;
    /// `None` if there is no such file.
    pub fn durable_len(&self, name: &str) -> Option<u64> {
        self.files().get(name).map(|file| {
            if file.exists_durably {
                file.durable_len_bytes as u64
            } else {
                0
            }
        })
    }

    /// True when the disk holds no files at all.
    pub fn is_empty(&self) -> bool {
        self.files().is_empty()
    }

    fn sync_now(&self, name: &str) -> io::Result<()> {
        let mut files = self.files();
        let file = files.get_mut(name).ok_or_else(|| not_found(name))?;
        file.durable_len_bytes = file.bytes.len();
        file.exists_durably = true;
        Ok(())
    }

    fn truncate_now(&self, name: &str, len_bytes: u64) -> io::Result<()> {
        let len_bytes = usize::try_from(len_bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length out of range"))?;
        let mut files = self.files();
        let file = files.get_mut(name).ok_or_else(|| not_found(name))?;
        file.bytes.resize(len_bytes, 0);
        // A real truncate is made durable by syncing the whole file.
        file.durable_len_bytes = len_bytes;
        file.exists_durably = true;
        Ok(())
    }
}

impl Disk for MemDisk {
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.files().get(name).map(|file| file.bytes.clone()))
    }

    fn list(&self) -> io::Result<Vec<String>> {
        // BTreeMap keys come out sorted.
        Ok(self.files().keys().cloned().collect())
    }

    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.files()
            .entry(name.to_string())
            .or_default()
            .bytes
            .extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
        std::future::ready(self.sync_now(name))
    }

    fn truncate(
        &self,
        name: &str,
        len_bytes: u64,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        std::future::ready(self.truncate_now(name, len_bytes))
    }

    fn write_atomic(
        &self,
        name: &str,
        parts: Vec<Bytes>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let bytes = parts.concat();
        let durable_len_bytes = bytes.len();
        self.files().insert(
            name.to_string(),
            MemFile {
                bytes,
                durable_len_bytes,
                exists_durably: true,
            },
        );
        std::future::ready(Ok(()))
    }

    fn remove(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.files().remove(name);
        std::future::ready(Ok(()))
    }
}

#[cfg(not(madsim))]
pub use file_disk::FileDisk;

#[cfg(not(madsim))]
mod file_disk {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fs::{self, File, OpenOptions};
    use std::future::Future;
    use std::io::{self, Write};
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, MutexGuard};

    use bytes::Bytes;

    use super::Disk;

    /// A real directory. Blocking file system calls that wait for the device
    /// run on tokio's blocking pool, so they never stall the event loop.
    #[derive(Clone, Debug)]
    pub struct FileDisk {
        inner: Arc<Inner>,
    }

    #[derive(Debug)]
    struct Inner {
        dir: PathBuf,
        state: Mutex<State>,
    }

    #[derive(Debug, Default)]
    struct State {
        /// Files kept open for appending, so that an append is one `write`.
        appenders: BTreeMap<String, Arc<File>>,
        /// Files created here whose directory entry has not been synced yet:
        /// syncing a new file's data does not make its name durable.
        unsynced_names: BTreeSet<String>,
    }

    impl FileDisk {
        /// Opens the directory at `dir`, creating it (and its parents) if
        /// missing.
        pub fn open(dir: impl AsRef<Path>) -> io::Result<FileDisk> {
            let dir = dir.as_ref().to_path_buf();
            let existed = dir.is_dir();
            fs::create_dir_all(&dir).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create data directory {}: {e}", dir.display()),
                )
            })?;
            if !existed {
                // Make the new directory's own name durable, or every file in
                // it could vanish with it.
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    sync_dir(parent)?;
                }
            }
            Ok(FileDisk {
                inner: Arc::new(Inner {
                    dir,
                    state: Mutex::new(State::default()),
                }),
            })
        }

        /// The directory this disk writes to.
        pub fn dir(&self) -> &Path {
            &self.inner.dir
        }

        fn state(&self) -> MutexGuard<'_, State> {
            // Every change under the lock is a single insert or remove.
            self.inner
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        fn path(&self, name: &str) -> PathBuf {
            self.inner.dir.join(name)
        }
    }

    /// Makes the names in `dir` durable.
    fn sync_dir(dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    /// Runs blocking file system work off the event loop.
    async fn blocking<T: Send + 'static>(
        work: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(io::Error::other)?
    }

    impl Disk for FileDisk {
        fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
            match fs::read(self.path(name)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }

        fn list(&self) -> io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in fs::read_dir(&self.inner.dir)? {
                let entry = entry?;
                if !entry.file_type()?.is_file() {
                    continue;
                }
                // Names this node did not write may not be UTF-8; they are not ours.
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
            names.sort();
            Ok(names)
        }

        fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
            let file = {
                let mut state = self.state();
                match state.appenders.get(name) {
                    Some(file) => Arc::clone(file),
                    None => {
                        let path = self.path(name);
                        let created = OpenOptions::new().append(true).create_new(true).open(&path);
                        let file = match created {
                            Ok(file) => {
                                state.unsynced_names.insert(name.to_string());
                                file
                            }
                            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                                OpenOptions::new().append(true).open(&path)?
                            }
                            Err(e) => return Err(e),
                        };
                        let file = Arc::new(file);
                        state.appenders.insert(name.to_string(), Arc::clone(&file));
                        file
                    }
                }
            };
            (&*file).write_all(bytes)
        }

        fn sync(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
            let (file, new_name) = {
                let state = self.state();
                (
                    state.appenders.get(name).cloned(),
                    state.unsynced_names.contains(name),
                )
            };
            let this = self.clone();
            let name = name.to_string();
            async move {
                let path = this.path(&name);
                let dir = this.inner.dir.clone();
                blocking(move || {
                    let file = match file {
                        Some(file) => file,
                        None => Arc::new(File::open(&path)?),
                    };
                    file.sync_data()?;
                    if new_name {
                        sync_dir(&dir)?;
                    }
                    Ok(())
                })
                .await?;
                if new_name {
                    this.state().unsynced_names.remove(&name);
                }
                Ok(())
            }
        }

        fn truncate(
            &self,
            name: &str,
            len_bytes: u64,
        ) -> impl Future<Output = io::Result<()>> + Send + 'static {
            let new_name = self.state().unsynced_names.contains(name);
            let this = self.clone();
            let name = name.to_string();
            async move {
                let path = this.path(&name);
                let dir = this.inner.dir.clone();
                blocking(move || {
                    // Appenders use O_APPEND, so they carry on at the new end.
                    let file = OpenOptions::new().write(true).open(&path)?;
                    file.set_len(len_bytes)?;
                    file.sync_all()?;
                    if new_name {
                        sync_dir(&dir)?;
                    }
                    Ok(())
                })
                .await?;
                if new_name {
                    this.state().unsynced_names.remove(&name);
                }
                Ok(())
            }
        }

        fn write_atomic(
            &self,
            name: &str,
            parts: Vec<Bytes>,
        ) -> impl Future<Output = io::Result<()>> + Send + 'static {
            {
                // The rename replaces the file, so an open handle would write
                // to the old, unlinked one.
                let mut state = self.state();
                state.appenders.remove(name);
                state.unsynced_names.remove(name);
            }
            let dir = self.inner.dir.clone();
            let path = self.path(name);
            let temp_path = self.path(&format!("{name}.tmp"));
            blocking(move || {
                let mut temp = File::create(&temp_path)?;
                for part in &parts {
                    temp.write_all(part)?;
                }
                temp.sync_all()?;
                drop(temp);
                fs::rename(&temp_path, &path)?;
                sync_dir(&dir)
            })
        }

        fn remove(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
            {
                let mut state = self.state();
                state.appenders.remove(name);
                state.unsynced_names.remove(name);
            }
            let dir = self.inner.dir.clone();
            let path = self.path(name);
            blocking(move || {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(e),
                }
                sync_dir(&dir)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;

    /// Polls a future that is complete at once, as every [`MemDisk`] future is.
    fn now<T>(future: impl Future<Output = T>) -> T {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => panic!("a MemDisk future was pending"),
        }
    }

    #[test]
    fn synced_bytes_survive_every_crash_and_unsynced_ones_leave_a_prefix() {
        for seed in 0..200 {
            let disk = MemDisk::new();
            disk.append("a", b"durable").unwrap();
            now(disk.sync("a")).unwrap();
            disk.append("a", b"-volatile").unwrap();
            disk.append("new", b"never synced").unwrap();
            disk.crash(&mut SmallRng::seed_from_u64(seed));

            let a = disk.read("a").unwrap().unwrap();
            assert!(a.starts_with(b"durable"), "seed {seed}: {a:?}");
            let tail = &a[b"durable".len()..];
            // Either a prefix of what was written, or one whose end reads as zeros.
            let written = &b"-volatile"[..tail.len()];
            let zeros = tail.iter().rev().take_while(|&&b| b == 0).count();
            assert_eq!(
                &tail[..tail.len() - zeros],
                &written[..tail.len() - zeros],
                "seed {seed}"
            );
            // What survived is durable now: a second crash keeps it all.
            disk.crash(&mut SmallRng::seed_from_u64(seed + 1));
            assert_eq!(disk.read("a").unwrap().unwrap(), a);
        }
    }

    #[test]
    fn a_never_synced_file_sometimes_vanishes_and_a_synced_one_never() {
        let mut vanished = 0;
        for seed in 0..100 {
            let disk = MemDisk::new();
            disk.append("kept", b"x").unwrap();
            now(disk.sync("kept")).unwrap();
            disk.append("new", b"y").unwrap();
            disk.crash(&mut SmallRng::seed_from_u64(seed));
            assert!(disk.len("kept").is_some());
            if disk.len("new").is_none() {
                vanished += 1;
            }
        }
        assert!(vanished > 10 && vanished < 90, "vanished {vanished} of 100");
    }

    #[test]
    fn durable_operations_are_durable_at_once() {
        let disk = MemDisk::new();
        disk.append("t", b"0123456789").unwrap();
        now(disk.truncate("t", 4)).unwrap();
        now(disk.write_atomic("w", vec![Bytes::from_static(b"whole")])).unwrap();
        disk.append("gone", b"z").unwrap();
        now(disk.sync("gone")).unwrap();
        now(disk.remove("gone")).unwrap();
        now(disk.remove("never existed")).unwrap();
        disk.crash(&mut SmallRng::seed_from_u64(7));
        assert_eq!(disk.read("t").unwrap().unwrap(), b"0123");
        assert_eq!(disk.read("w").unwrap().unwrap(), b"whole");
        assert_eq!(disk.read("gone").unwrap(), None);
        assert_eq!(disk.list().unwrap(), vec!["t".to_string(), "w".to_string()]);
        assert_eq!(
            now(disk.sync("gone")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn corrupt_flips_one_byte() {
        let disk = MemDisk::new();
        disk.append("f", &[1, 2, 3]).unwrap();
        disk.corrupt("f", 1);
        assert_eq!(disk.read("f").unwrap().unwrap(), vec![1, !2, 3]);
        assert_eq!(disk.len("f"), Some(3));
        assert_eq!(disk.durable_len("f"), Some(0));
    }
}

//! `--fsync never`: a disk whose syncs do nothing.

use std::io;

use bytes::Bytes;

use crate::storage::Disk;

/// Wraps a disk so that [`Disk::sync`] returns at once without making
/// anything durable. For measuring what durability costs, never for data
/// that matters: a machine crash loses what the page cache held, including
/// promises and accepted values other members counted on.
#[derive(Clone, Debug)]
pub struct NoSync<D>(pub D);

impl<D: Disk> Disk for NoSync<D> {
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        self.0.read(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        self.0.list()
    }

    fn append(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.0.append(name, bytes)
    }

    fn sync(&self, _name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
        std::future::ready(Ok(()))
    }

    fn truncate(
        &self,
        name: &str,
        len_bytes: u64,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.0.truncate(name, len_bytes)
    }

    fn write_atomic(
        &self,
        name: &str,
        parts: Vec<Bytes>,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.0.write_atomic(name, parts)
    }

    fn remove(&self, name: &str) -> impl Future<Output = io::Result<()>> + Send + 'static {
        self.0.remove(name)
    }
}

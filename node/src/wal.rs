//! The write-ahead log.
//!
//! A [`Wal`] stores opaque byte records in segment files on a [`Disk`], next
//! to at most one snapshot file. The node appends what it must remember (its
//! promise, the values it accepted) and replays it after a restart.
//!
//! # Group commit
//!
//! [`Wal::append`] only writes; it returns the record's log sequence number
//! (LSN). [`Wal::start_sync`] hands out a [`SyncJob`] that the caller spawns
//! as a task while it keeps appending; when the job completes the caller
//! reports it with [`Wal::synced`]. One sync runs at a time, and one sync
//! covers every record appended before it started.
//!
//! **Nothing that depends on a record may leave the node before
//! [`Wal::durable`] is at least the record's LSN**: no Promise or Accepted
//! message, no client reply. A crash may lose any record past `durable()`,
//! and never loses one before it.
//!
//! # Compaction
//!
//! When the application has taken a snapshot, the caller calls
//! [`Wal::rotate`] with the records still needed after that snapshot (its
//! promise, the values accepted above the snapshot's slot). They become the
//! first records of a new segment, and later appends go there too. Then, at
//! once, [`Wal::install_snapshot`] hands out an [`InstallJob`] to spawn (or
//! await) that (a) makes the new segment durable, (b) atomically writes the
//! snapshot file naming the new segment as the first to replay, and (c)
//! removes the older segments. Appends and syncs go on meanwhile.
//!
//! **A segment file is only ever created once every older segment is
//! durable**, so every segment but the last is whole after any crash. Until
//! then its records wait in memory; the next sync creates it after syncing
//! the older ones, or step (a) does if no sync has yet (and later syncs wait
//! for it).
//!
//! A crash before (b) completes recovers the old snapshot and every segment
//! (the new one possibly cut short or absent); one after recovers the new
//! snapshot and the segments from the new one on. Both are consistent,
//! provided that replaying a record twice does no harm (carried records
//! repeat records of the old segments): a promise keeps the highest ballot,
//! and a later accepted value for a slot replaces an earlier one.
//!
//! # Files
//!
//! Segments are named `wal-<20-digit number>.log`, so lexical order is
//! numeric order. A segment starts with a 21-byte header: the magic
//! `SYNODWAL`, the format version ([`WAL_FORMAT`]), the length in bytes of the
//! previous segment when this one was started (u64 LE, a cross-check), and a
//! CRC32C of those 17 bytes (u32 LE). Then come records:
//!
//! ```text
//! [len: u32 LE][crc32c of payload: u32 LE][payload: len bytes]
//! ```
//!
//! A payload is 1 to [`MAX_RECORD_BYTES`] bytes; a longer length on disk is
//! damage and is never allocated. A zero length is damage too, which makes a
//! run of zero bytes (space a crash allocated but never wrote) invalid rather
//! than a series of empty records.
//!
//! The snapshot file, [`SNAPSHOT_FILE`], is the magic `SYNODSNP`, the format
//! version, the first segment to replay (u64 LE), the payload length (u64 LE),
//! a CRC32C of those 25 bytes and the payload (u32 LE), then the payload. It
//! is written atomically, so any damage in it is corruption.
//!
//! # Recovery and the torn tail
//!
//! [`Wal::open`] reads the snapshot, then the segments from the one it names
//! (or from segment 1 without a snapshot) in order; they must be consecutive.
//! In a segment it reads records until the end of the file or a *bad record*:
//! fewer than 8 bytes left, a zero length, a length over the maximum, a length
//! running past the end of the file, or a checksum mismatch. A bad segment
//! header counts as a bad record at offset 0.
//!
//! **A bad record is a torn tail if it is in the last segment and nothing but
//! zero bytes follows it**, counting from the end of the file for a short
//! header or a length past the end (so those are always torn), from the end of
//! its 8-byte header for a zero or oversized length, and from the end of its
//! payload for a checksum mismatch (so a final record ending exactly at the end
//! of the file is torn). A torn tail is cut off at the last valid record,
//! durably, reported in [`Recovery::truncated`] and logged. Only bytes that
//! were never synced are lost that way.
//!
//! Then every recovered segment is synced: if only the process died, what it
//! wrote may still sit unsynced in the OS cache, and the node must not act on
//! records a power failure could still take away.
//!
//! Anything else is corruption before the tail, and [`Wal::open`] fails with
//! [`WalError::Corrupt`] naming the file and the offset of the damaged record
//! or header, leaving the disk as it found it: a bad record followed by any
//! nonzero byte, any bad record in a segment that is not the last (it was
//! synced before the next one was created), a missing segment, or a segment
//! whose header disagrees with the previous segment's length. (Damage that
//! looks exactly like a torn write, such as the length field of the last
//! segment's final record flipped to point past the end of the file, cannot be
//! told apart from one and is treated as one.)

use std::collections::BTreeSet;
use std::io;

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::storage::Disk;

/// The largest payload a record may have. A length above it on disk is damage.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;

/// The format version of segments and snapshot files this build writes; it
/// reads this one and older ones.
pub const WAL_FORMAT: u8 = 1;

/// The name of the snapshot file.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";

const SEGMENT_MAGIC: [u8; 8] = *b"SYNODWAL";
const SNAPSHOT_MAGIC: [u8; 8] = *b"SYNODSNP";
/// Magic, version, previous segment's length, checksum.
const SEGMENT_HEADER_BYTES: usize = 8 + 1 + 8 + 4;
/// Where a segment header keeps the previous segment's length.
const PREVIOUS_LEN_OFFSET_BYTES: u64 = 9;
/// Length, checksum.
const RECORD_HEADER_BYTES: usize = 4 + 4;
/// Magic, version, first segment, payload length, checksum.
const SNAPSHOT_HEADER_BYTES: usize = 8 + 1 + 8 + 8 + 4;
/// Segment numbers above this are not ours, which keeps `number + 1` from
/// overflowing whatever the directory holds.
const MAX_SEGMENT_NUMBER: u64 = u64::MAX / 2;

/// The file name of segment `number`.
pub fn segment_name(number: u64) -> String {
    format!("wal-{number:020}.log")
}

/// The number of a segment file, or `None` for a file that is not a segment.
fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    (1..=MAX_SEGMENT_NUMBER).contains(&number).then_some(number)
}

/// Why the log could not be opened, written or synced.
///
/// Every variant but [`EmptyRecord`](WalError::EmptyRecord) and
/// [`RecordTooLarge`](WalError::RecordTooLarge) (refused before anything is
/// written) is fatal for the node: after a failed write or sync the state of
/// the file is unknown, so stop and let the next start recover; damage on
/// disk needs an operator.
#[derive(Debug, Error)]
pub enum WalError {
    /// The disk failed.
    #[error("i/o error on {file}: {source}")]
    Io {
        /// The file (or directory listing) involved.
        file: String,
        /// What the disk reported.
        source: io::Error,
    },
    /// Damage before the tail of the log, or in the snapshot: replaying past
    /// it could silently lose records that were synced, so recovery stops.
    #[error("{file} is corrupt at byte offset {offset_bytes}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: String,
        /// Where the damaged record or header starts.
        offset_bytes: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Written by a newer build; this one cannot read it.
    #[error(
        "{file} has format version {found}, newer than this build understands ({supported}); upgrade"
    )]
    NewerFormat {
        /// The file.
        file: String,
        /// Its format version.
        found: u8,
        /// The newest format this build reads.
        supported: u8,
    },
    /// A segment the log cannot be replayed without is not on disk.
    #[error("{file} is missing; the log cannot be replayed without it")]
    MissingSegment {
        /// The missing segment.
        file: String,
    },
    /// An empty payload: it could not be told apart from zeroed space.
    #[error("a record cannot be empty")]
    EmptyRecord,
    /// A payload over [`MAX_RECORD_BYTES`].
    #[error("a record of {len_bytes} bytes is over the maximum of {MAX_RECORD_BYTES} bytes")]
    RecordTooLarge {
        /// The payload's length.
        len_bytes: usize,
    },
}

/// A closure turning a disk error on `file` into a [`WalError`].
fn io_error(file: &str) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        file: file.to_string(),
        source,
    }
}

/// What [`Wal::open`] found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The last installed snapshot, if any. Restore it before replaying
    /// `records`.
    pub snapshot: Option<Vec<u8>>,
    /// Every record after the snapshot, in the order appended. Records carried
    /// into a new segment by [`Wal::rotate`] may repeat earlier ones.
    pub records: Vec<Vec<u8>>,
    /// Set when the log ended in a torn tail that was cut off.
    pub truncated: Option<TruncatedTail>,
}

/// A torn tail that recovery cut off the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncatedTail {
    /// The segment that was cut.
    pub file: String,
    /// Where it was cut: the end of its last valid record (or 0 if even its
    /// header was torn).
    pub offset_bytes: u64,
    /// How many bytes were cut off.
    pub dropped_bytes: u64,
    /// What was wrong at `offset_bytes`.
    pub reason: String,
}

/// A segment on disk, as the [`Wal`] tracks it.
#[derive(Clone, Debug)]
struct Segment {
    number: u64,
    len_bytes: u64,
    /// The previous segment's length, for this segment's header, which an
    /// empty segment gets with its first record.
    previous_len_bytes: u64,
}

/// A segment started by [`Wal::rotate`] that the [`Wal`] does not write to
/// yet: its file may only appear once every older segment is durable, so a
/// job creates it.
#[derive(Clone, Debug)]
struct NewSegment {
    number: u64,
    previous_len_bytes: u64,
    /// Bytes no job has taken yet: its header and carried records at first,
    /// then records appended while it waits.
    buffered: Vec<u8>,
    /// Set once a job (a sync or an install) is creating the file. Only that
    /// job writes to it; later records wait in `buffered` until the file is
    /// created.
    creation: Option<Creation>,
}

/// A rotation's segment that a job has taken over to create.
#[derive(Clone, Debug)]
struct Creation {
    /// The bytes the creator writes: the file's length once created.
    len_bytes: u64,
    /// What is durable once the file is created: the creator syncs every
    /// older segment first.
    lsn: u64,
    /// Turns true once the file is created and synced.
    created: watch::Receiver<bool>,
}

/// Creating a rotation's segment, after every older one is durable.
#[derive(Debug)]
struct Create {
    file: String,
    bytes: Vec<u8>,
    created: watch::Sender<bool>,
}

/// A write-ahead log over a [`Disk`]. See the [module docs](self).
///
/// LSNs number the appended records and the rotations (which also become
/// durable by a sync), from 1 after each [`open`](Wal::open). Recovered
/// records are durable and have no LSN.
///
/// After an error other than a refused record, the log must not be used
/// again: stop the node and let the next [`open`](Wal::open) recover.
#[derive(Debug)]
pub struct Wal<D: Disk> {
    disk: D,
    /// Segments on disk from the snapshot's first on, ascending. The last one
    /// takes appends unless a rotation is pending; an empty one may not exist
    /// as a file yet. Never empty while `new_segment` is `None`.
    segments: Vec<Segment>,
    /// The segment a rotation started, until the log finds it created.
    new_segment: Option<NewSegment>,
    /// The first segment named by the installed snapshot, if any.
    snapshot_segment: Option<u64>,
    appended_lsn: u64,
    durable_lsn: u64,
    /// Segments written to since the last sync started.
    unsynced_segments: BTreeSet<u64>,
    sync_in_flight: bool,
    install_in_flight: bool,
}

/// A sync to run as a task: see [`Wal::start_sync`].
#[must_use = "a sync does nothing until run"]
#[derive(Debug)]
pub struct SyncJob<D: Disk> {
    disk: D,
    /// Segments to sync, oldest first.
    files: Vec<String>,
    /// A rotation's segment to create once `files` are durable.
    create: Option<Create>,
    /// A rotation's segment that an install is creating, to wait for.
    wait: Option<(String, watch::Receiver<bool>)>,
    /// A write that failed when the job was handed out.
    failed: Option<WalError>,
    lsn: u64,
}

/// Proof that [`Wal::rotate`] started a segment; pass it to
/// [`Wal::install_snapshot`].
#[must_use = "pass it to Wal::install_snapshot"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    segment: u64,
    lsn: u64,
}

/// A snapshot installation to run as a task: see [`Wal::install_snapshot`].
#[must_use = "a snapshot install does nothing until run"]
#[derive(Debug)]
pub struct InstallJob<D: Disk> {
    disk: D,
    /// Segments to sync before creating the new one, oldest first.
    sync_files: Vec<String>,
    /// The rotation's segment, if this job creates it.
    create: Option<Create>,
    /// The rotation's segment and its creation by a sync, if one creates it.
    wait: Option<(String, watch::Receiver<bool>)>,
    /// Segments the new snapshot makes obsolete, oldest first.
    obsolete_files: Vec<String>,
    first_segment: u64,
    snapshot: Bytes,
}

/// A completed [`InstallJob`]; pass it to [`Wal::snapshot_installed`].
#[must_use = "pass it to Wal::snapshot_installed"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInstalled {
    first_segment: u64,
}

/// A bad record or header: where it starts, where the bytes that follow it
/// start, and what is wrong.
struct BadSpot {
    offset_bytes: usize,
    end_bytes: usize,
    reason: String,
}

/// Decides whether a bad spot is a torn tail (returned) or corruption before
/// the tail (the error). `in_last_segment` is false for a segment that was
/// synced before its successor was created: nothing in it may be torn.
fn torn_or_corrupt(
    file: &str,
    bytes: &[u8],
    bad: BadSpot,
    in_last_segment: bool,
) -> Result<BadSpot, WalError> {
    let corrupt = |why: String| WalError::Corrupt {
        file: file.to_string(),
        offset_bytes: bad.offset_bytes as u64,
        reason: format!("{}, {why}", bad.reason),
    };
    if !in_last_segment {
        return Err(corrupt("in a segment that is not the last".to_string()));
    }
    let following = &bytes[bad.end_bytes.min(bytes.len())..];
    match following.iter().position(|&b| b != 0) {
        None => Ok(bad),
        Some(nonzero) => Err(corrupt(format!(
            "and data follows it (a nonzero byte at offset {})",
            bad.end_bytes + nonzero
        ))),
    }
}

/// What a segment's header says.
enum HeaderCheck {
    Valid { previous_len_bytes: u64 },
    Torn { reason: String },
}

fn segment_header(previous_len_bytes: u64) -> [u8; SEGMENT_HEADER_BYTES] {
    let mut header = [0; SEGMENT_HEADER_BYTES];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8] = WAL_FORMAT;
    header[9..17].copy_from_slice(&previous_len_bytes.to_le_bytes());
    let crc = crc32c::crc32c(&header[..17]);
    header[17..].copy_from_slice(&crc.to_le_bytes());
    header
}

fn check_header(file: &str, bytes: &[u8], in_last_segment: bool) -> Result<HeaderCheck, WalError> {
    let bad = |end_bytes: usize, reason: String| {
        let spot = BadSpot {
            offset_bytes: 0,
            end_bytes,
            reason,
        };
        torn_or_corrupt(file, bytes, spot, in_last_segment).map(|spot| HeaderCheck::Torn {
            reason: spot.reason,
        })
    };
    if bytes.len() < SEGMENT_HEADER_BYTES {
        return bad(
            bytes.len(),
            format!(
                "incomplete segment header ({} of {SEGMENT_HEADER_BYTES} bytes)",
                bytes.len()
            ),
        );
    }
    let header = &bytes[..SEGMENT_HEADER_BYTES];
    if header[..8] != SEGMENT_MAGIC {
        return bad(
            SEGMENT_HEADER_BYTES,
            "not a segment header (bad magic)".to_string(),
        );
    }
    let version = header[8];
    if version > WAL_FORMAT {
        // Checked before the checksum: a newer format may lay out the rest
        // differently.
        return Err(WalError::NewerFormat {
            file: file.to_string(),
            found: version,
            supported: WAL_FORMAT,
        });
    }
    let stored_crc = u32::from_le_bytes(header[17..21].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[..17]) != stored_crc {
        return bad(
            SEGMENT_HEADER_BYTES,
            "segment header checksum mismatch".to_string(),
        );
    }
    if version == 0 {
        return bad(SEGMENT_HEADER_BYTES, "segment format version 0".to_string());
    }
    Ok(HeaderCheck::Valid {
        previous_len_bytes: u64::from_le_bytes(header[9..17].try_into().expect("8 bytes")),
    })
}

/// The payload of the record at the start of `rest`, or, for a bad record,
/// where the bytes after it start (relative to `rest`) and what is wrong.
fn check_record(rest: &[u8]) -> Result<&[u8], (usize, String)> {
    if rest.len() < RECORD_HEADER_BYTES {
        return Err((
            rest.len(),
            format!(
                "incomplete record header ({} of {RECORD_HEADER_BYTES} bytes)",
                rest.len()
            ),
        ));
    }
    let len_bytes = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
    let stored_crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len_bytes == 0 {
        return Err((RECORD_HEADER_BYTES, "zero record length".to_string()));
    }
    if len_bytes > MAX_RECORD_BYTES {
        return Err((
            RECORD_HEADER_BYTES,
            format!("record length {len_bytes} is over the maximum of {MAX_RECORD_BYTES}"),
        ));
    }
    // At most 64 MiB, so this fits any usize we run on.
    let end_bytes = RECORD_HEADER_BYTES + len_bytes as usize;
    if end_bytes > rest.len() {
        return Err((
            rest.len(),
            format!(
                "record length {len_bytes} runs past the end of the file ({} bytes left)",
                rest.len() - RECORD_HEADER_BYTES
            ),
        ));
    }
    let payload = &rest[RECORD_HEADER_BYTES..end_bytes];
    if crc32c::crc32c(payload) != stored_crc {
        return Err((end_bytes, "record checksum mismatch".to_string()));
    }
    Ok(payload)
}

/// How a segment's records end.
enum Scan {
    /// Every byte belongs to a valid record.
    Clean,
    /// Valid up to `offset_bytes`, then a torn tail.
    Torn { offset_bytes: u64, reason: String },
}

/// Reads the records of a segment from `start_bytes` into `records`.
fn scan_records(
    file: &str,
    bytes: &[u8],
    start_bytes: usize,
    in_last_segment: bool,
    records: &mut Vec<Vec<u8>>,
) -> Result<Scan, WalError> {
    let mut offset_bytes = start_bytes;
    while offset_bytes < bytes.len() {
        match check_record(&bytes[offset_bytes..]) {
            Ok(payload) => {
                records.push(payload.to_vec());
                offset_bytes += RECORD_HEADER_BYTES + payload.len();
            }
            Err((end_bytes, reason)) => {
                let spot = BadSpot {
                    offset_bytes,
                    end_bytes: offset_bytes + end_bytes,
                    reason,
                };
                let spot = torn_or_corrupt(file, bytes, spot, in_last_segment)?;
                return Ok(Scan::Torn {
                    offset_bytes: offset_bytes as u64,
                    reason: spot.reason,
                });
            }
        }
    }
    Ok(Scan::Clean)
}

fn encode_record(out: &mut Vec<u8>, payload: &[u8]) {
    // check_payload has bounded the length.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn check_payload(payload: &[u8]) -> Result<(), WalError> {
    if payload.is_empty() {
        return Err(WalError::EmptyRecord);
    }
    if payload.len() > MAX_RECORD_BYTES as usize {
        return Err(WalError::RecordTooLarge {
            len_bytes: payload.len(),
        });
    }
    Ok(())
}

/// The snapshot file's header for `payload`, which follows it.
fn snapshot_header(first_segment: u64, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(SNAPSHOT_HEADER_BYTES);
    bytes.extend_from_slice(&SNAPSHOT_MAGIC);
    bytes.push(WAL_FORMAT);
    bytes.extend_from_slice(&first_segment.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes), payload);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The first segment to replay and the payload of a snapshot file.
fn decode_snapshot(bytes: &[u8]) -> Result<(u64, Vec<u8>), WalError> {
    let corrupt = |offset_bytes: u64, reason: String| WalError::Corrupt {
        file: SNAPSHOT_FILE.to_string(),
        offset_bytes,
        reason,
    };
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err(corrupt(
            0,
            format!(
                "incomplete snapshot header ({} of {SNAPSHOT_HEADER_BYTES} bytes)",
                bytes.len()
            ),
        ));
    }
    if bytes[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, "not a snapshot file (bad magic)".to_string()));
    }
    let version = bytes[8];
    if version > WAL_FORMAT {
        return Err(WalError::NewerFormat {
            file: SNAPSHOT_FILE.to_string(),
            found: version,
            supported: WAL_FORMAT,
        });
    }
    let first_segment = u64::from_le_bytes(bytes[9..17].try_into().expect("8 bytes"));
    let payload_len_bytes = u64::from_le_bytes(bytes[17..25].try_into().expect("8 bytes"));
    let stored_crc = u32::from_le_bytes(bytes[25..29].try_into().expect("4 bytes"));
    let payload = &bytes[SNAPSHOT_HEADER_BYTES..];
    if payload_len_bytes != payload.len() as u64 {
        return Err(corrupt(
            17,
            format!(
                "header says {payload_len_bytes} bytes of state follow, but {} do",
                payload.len()
            ),
        ));
    }
    if crc32c::crc32c_append(crc32c::crc32c(&bytes[..25]), payload) != stored_crc {
        return Err(corrupt(25, "snapshot checksum mismatch".to_string()));
    }
    if version == 0 {
        return Err(corrupt(8, "snapshot format version 0".to_string()));
    }
    if !(1..=MAX_SEGMENT_NUMBER).contains(&first_segment) {
        return Err(corrupt(
            9,
            format!("names segment {first_segment}, which cannot exist"),
        ));
    }
    Ok((first_segment, payload.to_vec()))
}

impl<D: Disk> Wal<D> {
    /// Opens the log on `disk` and recovers what it holds: see the
    /// [module docs](self) for what counts as a torn tail (cut off, durably,
    /// and reported) and what as corruption (an error, with the disk left as
    /// found). Segments older than the snapshot's first are removed, and the
    /// others are synced: every recovered record is durable.
    pub async fn open(disk: D) -> Result<(Wal<D>, Recovery), WalError> {
        let names = disk.list().map_err(io_error("the directory listing"))?;
        let snapshot = match disk.read(SNAPSHOT_FILE).map_err(io_error(SNAPSHOT_FILE))? {
            Some(bytes) => Some(decode_snapshot(&bytes)?),
            None => None,
        };
        let first_segment = snapshot.as_ref().map_or(1, |(first, _)| *first);
        let mut numbers: Vec<u64> = names.iter().filter_map(|n| segment_number(n)).collect();
        numbers.sort_unstable();
        let (obsolete, numbers): (Vec<u64>, Vec<u64>) =
            numbers.into_iter().partition(|&n| n < first_segment);

        // Read everything before changing anything, so that corruption leaves
        // the disk as it was found.
        let mut segments: Vec<Segment> = Vec::new();
        let mut records = Vec::new();
        let mut truncated: Option<TruncatedTail> = None;
        for (index, &number) in numbers.iter().enumerate() {
            let expected = first_segment + index as u64;
            if number != expected {
                return Err(WalError::MissingSegment {
                    file: segment_name(expected),
                });
            }
            let name = segment_name(number);
            let in_last_segment = index + 1 == numbers.len();
            let bytes = disk
                .read(&name)
                .map_err(io_error(&name))?
                .unwrap_or_default();
            let previous_len = segments.last().map(|s: &Segment| s.len_bytes);
            match check_header(&name, &bytes, in_last_segment)? {
                HeaderCheck::Torn { reason } => {
                    if index == 0 && snapshot.is_some() {
                        // It was synced before the snapshot naming it was written.
                        return Err(WalError::Corrupt {
                            file: name,
                            offset_bytes: 0,
                            reason: format!("{reason}, in the snapshot's first segment"),
                        });
                    }
                    segments.push(Segment {
                        number,
                        len_bytes: 0,
                        previous_len_bytes: previous_len.unwrap_or(0),
                    });
                    truncated = Some(TruncatedTail {
                        file: name,
                        offset_bytes: 0,
                        dropped_bytes: bytes.len() as u64,
                        reason,
                    });
                }
                HeaderCheck::Valid { previous_len_bytes } => {
                    if let Some(previous_len) = previous_len {
                        if previous_len != previous_len_bytes {
                            return Err(WalError::Corrupt {
                                file: name,
                                offset_bytes: PREVIOUS_LEN_OFFSET_BYTES,
                                reason: format!(
                                    "header says the previous segment held {previous_len_bytes} \
                                     bytes, but it holds {previous_len}"
                                ),
                            });
                        }
                    }
                    let scan = scan_records(
                        &name,
                        &bytes,
                        SEGMENT_HEADER_BYTES,
                        in_last_segment,
                        &mut records,
                    )?;
                    let len_bytes = match scan {
                        Scan::Clean => bytes.len() as u64,
                        Scan::Torn {
                            offset_bytes,
                            reason,
                        } => {
                            truncated = Some(TruncatedTail {
                                file: name,
                                offset_bytes,
                                dropped_bytes: bytes.len() as u64 - offset_bytes,
                                reason,
                            });
                            offset_bytes
                        }
                    };
                    segments.push(Segment {
                        number,
                        len_bytes,
                        previous_len_bytes,
                    });
                }
            }
        }
        if segments.is_empty() {
            if snapshot.is_some() {
                return Err(WalError::MissingSegment {
                    file: segment_name(first_segment),
                });
            }
            // A fresh log; the file appears with the first record.
            segments.push(Segment {
                number: first_segment,
                len_bytes: 0,
                previous_len_bytes: 0,
            });
        }

        for number in obsolete {
            let name = segment_name(number);
            debug!(file = %name, "removing a segment older than the snapshot");
            disk.remove(&name).await.map_err(io_error(&name))?;
        }
        // An empty file with a torn header leaves nothing to report.
        let truncated = truncated.filter(|tail| tail.dropped_bytes > 0);
        if let Some(tail) = &truncated {
            disk.truncate(&tail.file, tail.offset_bytes)
                .await
                .map_err(io_error(&tail.file))?;
            warn!(
                file = %tail.file,
                offset_bytes = tail.offset_bytes,
                dropped_bytes = tail.dropped_bytes,
                reason = %tail.reason,
                "cut a torn tail off the write-ahead log"
            );
        }

        // What an earlier run wrote may still sit unsynced in the OS cache if
        // only the process died. Acting on it, then losing it to a power
        // failure, would be acting on records that were never durable.
        for segment in &segments {
            if numbers.contains(&segment.number) {
                let name = segment_name(segment.number);
                disk.sync(&name).await.map_err(io_error(&name))?;
            }
        }

        let (snapshot_segment, snapshot) = match snapshot {
            Some((first, payload)) => (Some(first), Some(payload)),
            None => (None, None),
        };
        let wal = Wal {
            disk,
            segments,
            new_segment: None,
            snapshot_segment,
            appended_lsn: 0,
            durable_lsn: 0,
            unsynced_segments: BTreeSet::new(),
            sync_in_flight: false,
            install_in_flight: false,
        };
        let recovery = Recovery {
            snapshot,
            records,
            truncated,
        };
        Ok((wal, recovery))
    }

    /// Writes a record (1 to [`MAX_RECORD_BYTES`] bytes) and returns its LSN.
    /// It is not durable until [`durable`](Wal::durable) reaches that LSN.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, WalError> {
        check_payload(payload)?;
        if let Some(new_segment) = &mut self.new_segment {
            // Its file may not be created before the older segments are durable.
            encode_record(&mut new_segment.buffered, payload);
        } else {
            let current = self.segments.last().expect("a current segment");
            let mut bytes =
                Vec::with_capacity(SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + payload.len());
            if current.len_bytes == 0 {
                bytes.extend_from_slice(&segment_header(current.previous_len_bytes));
            }
            encode_record(&mut bytes, payload);
            self.write_current(&bytes)?;
        }
        self.appended_lsn += 1;
        Ok(self.appended_lsn)
    }

    /// The last LSN handed out since [`open`](Wal::open); 0 if none.
    pub fn appended(&self) -> u64 {
        self.appended_lsn
    }

    /// Every record and rotation up to this LSN survives a crash.
    pub fn durable(&self) -> u64 {
        self.durable_lsn
    }

    /// Starts a group commit: `None` if a sync is already running or there is
    /// nothing new to sync. Otherwise spawn the job, keep appending, and when
    /// it completes pass its LSN to [`synced`](Wal::synced). It makes every
    /// record and rotation before this call durable (but records appended
    /// while an install creates a rotation's segment wait for the next sync).
    pub fn start_sync(&mut self) -> Option<SyncJob<D>> {
        if self.sync_in_flight {
            return None;
        }
        let failed = self.adopt_created_segment().err();
        let mut lsn = self.appended_lsn;
        let mut create = None;
        let mut wait = None;
        if failed.is_none() {
            if let Some(new_segment) = &mut self.new_segment {
                let file = segment_name(new_segment.number);
                match &new_segment.creation {
                    None => {
                        let bytes = std::mem::take(&mut new_segment.buffered);
                        let (sender, receiver) = watch::channel(false);
                        new_segment.creation = Some(Creation {
                            len_bytes: bytes.len() as u64,
                            lsn,
                            created: receiver,
                        });
                        create = Some(Create {
                            file,
                            bytes,
                            created: sender,
                        });
                    }
                    Some(creation) => {
                        // An install is creating it. This sync can promise
                        // only what that makes durable; its completion lets
                        // the log take the segment over.
                        lsn = creation.lsn;
                        wait = Some((file, creation.created.clone()));
                    }
                }
            }
        }
        if failed.is_none()
            && create.is_none()
            && wait.is_none()
            && self.unsynced_segments.is_empty()
        {
            return None;
        }
        self.sync_in_flight = true;
        let files = std::mem::take(&mut self.unsynced_segments)
            .into_iter()
            .map(segment_name)
            .collect();
        Some(SyncJob {
            disk: self.disk.clone(),
            files,
            create,
            wait,
            failed,
            lsn,
        })
    }

    /// Records that the running sync has made everything up to `lsn` durable,
    /// and lets the next one start. Once a rotation's segment is created, the
    /// records appended meanwhile are written to it here, which can fail.
    pub fn synced(&mut self, lsn: u64) -> Result<(), WalError> {
        debug_assert!(self.sync_in_flight, "synced without a sync running");
        debug_assert!(lsn <= self.appended_lsn, "synced past the last append");
        self.durable_lsn = self.durable_lsn.max(lsn);
        self.sync_in_flight = false;
        self.adopt_created_segment()
    }

    /// Once a job has created a rotation's segment, makes it the current
    /// segment and writes to it the records that waited.
    fn adopt_created_segment(&mut self) -> Result<(), WalError> {
        let created = self.new_segment.take_if(|new_segment| {
            new_segment
                .creation
                .as_ref()
                .is_some_and(|creation| *creation.created.borrow())
        });
        let Some(new_segment) = created else {
            return Ok(());
        };
        let creation = new_segment.creation.expect("created");
        // The creator synced every older segment, then the new one; it may
        // have been an install, outside any sync's LSN.
        self.durable_lsn = self.durable_lsn.max(creation.lsn);
        self.segments.push(Segment {
            number: new_segment.number,
            len_bytes: creation.len_bytes,
            previous_len_bytes: new_segment.previous_len_bytes,
        });
        if !new_segment.buffered.is_empty() {
            self.write_current(&new_segment.buffered)?;
        }
        Ok(())
    }

    /// True while a [`SyncJob`] is out.
    pub fn is_syncing(&self) -> bool {
        self.sync_in_flight
    }

    /// Starts a new segment whose first records are `carry` (the records still
    /// needed after the snapshot about to be installed); later appends go to
    /// it too. Nothing is written here: the file is created by the next sync
    /// or by [`install_snapshot`](Wal::install_snapshot), whichever comes
    /// first, once the older segments are durable. The rotation and the
    /// carried records get LSNs; [`Rotation::lsn`] is the last one.
    ///
    /// # Panics
    ///
    /// Unless [`can_rotate`](Wal::can_rotate): a bug in the caller.
    pub fn rotate<I>(&mut self, carry: I) -> Result<Rotation, WalError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        self.adopt_created_segment()?;
        assert!(
            self.new_segment.is_none(),
            "rotate while the previous rotation's segment is not created yet"
        );
        let carry: Vec<I::Item> = carry.into_iter().collect();
        for payload in &carry {
            check_payload(payload.as_ref())?;
        }
        let current = self.segments.last().expect("a current segment");
        let (number, previous_len_bytes) = if current.len_bytes == 0 {
            // Nothing was ever written to it: start the new segment in its
            // place rather than leave an empty one behind.
            let current = self.segments.pop().expect("a current segment");
            (current.number, current.previous_len_bytes)
        } else {
            (current.number + 1, current.len_bytes)
        };
        let mut buffered = segment_header(previous_len_bytes).to_vec();
        for payload in &carry {
            encode_record(&mut buffered, payload.as_ref());
        }
        self.new_segment = Some(NewSegment {
            number,
            previous_len_bytes,
            buffered,
            creation: None,
        });
        self.appended_lsn += 1 + carry.len() as u64;
        Ok(Rotation {
            segment: number,
            lsn: self.appended_lsn,
        })
    }

    /// False while the previous rotation's segment is not created yet, which
    /// a completed [`InstallJob`] (or the sync it waited for) guarantees.
    pub fn can_rotate(&self) -> bool {
        self.new_segment.as_ref().is_none_or(|new_segment| {
            new_segment
                .creation
                .as_ref()
                .is_some_and(|creation| *creation.created.borrow())
        })
    }

    /// True from [`rotate`](Wal::rotate) until the log finds the new segment
    /// created (in [`synced`](Wal::synced), [`start_sync`](Wal::start_sync)
    /// or [`rotate`](Wal::rotate)); appends are held in memory meanwhile.
    pub fn is_rotating(&self) -> bool {
        self.new_segment.is_some()
    }

    /// Prepares installing `snapshot`, the application's state at the moment
    /// of `rotation`: with the records carried by that rotation and all those
    /// appended after it, the whole state. May be called right after
    /// [`rotate`](Wal::rotate). Spawn the job (or await it); appends and syncs
    /// may go on meanwhile. When it completes, pass its result to
    /// [`snapshot_installed`](Wal::snapshot_installed).
    ///
    /// # Panics
    ///
    /// If an install is already running (check
    /// [`is_installing`](Wal::is_installing)), or if `rotation` is not newer
    /// than the installed snapshot. Both are bugs in the caller.
    pub fn install_snapshot(
        &mut self,
        rotation: Rotation,
        snapshot: impl Into<Bytes>,
    ) -> InstallJob<D> {
        let snapshot = snapshot.into();
        assert!(
            !self.install_in_flight,
            "install_snapshot while another install is running"
        );
        assert!(
            self.snapshot_segment.is_none_or(|s| rotation.segment > s),
            "install_snapshot with a stale rotation"
        );
        let mut sync_files = Vec::new();
        let mut create = None;
        let mut wait = None;
        match &mut self.new_segment {
            Some(new_segment) if new_segment.number == rotation.segment => {
                let file = segment_name(new_segment.number);
                match &new_segment.creation {
                    None => {
                        // No sync has taken it: create it here, after syncing
                        // every older segment. Later syncs wait for it, so
                        // their LSNs cover the older records too.
                        let bytes = std::mem::take(&mut new_segment.buffered);
                        let (sender, receiver) = watch::channel(false);
                        new_segment.creation = Some(Creation {
                            len_bytes: bytes.len() as u64,
                            lsn: self.appended_lsn,
                            created: receiver,
                        });
                        create = Some(Create {
                            file,
                            bytes,
                            created: sender,
                        });
                        sync_files = self
                            .segments
                            .iter()
                            .map(|s| segment_name(s.number))
                            .collect();
                        self.unsynced_segments.retain(|&n| n >= rotation.segment);
                    }
                    Some(creation) => wait = Some((file, creation.created.clone())),
                }
            }
            _ => assert!(
                // Created, hence durable.
                self.segments.iter().any(|s| s.number == rotation.segment),
                "install_snapshot with a rotation this log did not make"
            ),
        }
        self.install_in_flight = true;
        let obsolete_files = self
            .segments
            .iter()
            .filter(|s| s.number < rotation.segment)
            .map(|s| segment_name(s.number))
            .collect();
        InstallJob {
            disk: self.disk.clone(),
            sync_files,
            create,
            wait,
            obsolete_files,
            first_segment: rotation.segment,
            snapshot,
        }
    }

    /// Records that an [`InstallJob`] completed: the segments before its
    /// first are gone, and another install may start.
    pub fn snapshot_installed(&mut self, installed: SnapshotInstalled) {
        debug_assert!(
            self.install_in_flight,
            "snapshot_installed without an install"
        );
        let first = installed.first_segment;
        self.segments.retain(|s| s.number >= first);
        self.unsynced_segments.retain(|&n| n >= first);
        self.snapshot_segment = Some(first);
        self.install_in_flight = false;
    }

    /// True while an [`InstallJob`] is out.
    pub fn is_installing(&self) -> bool {
        self.install_in_flight
    }

    /// The name of the segment appends go to.
    pub fn current_segment(&self) -> String {
        match (&self.new_segment, self.segments.last()) {
            (Some(new_segment), _) => segment_name(new_segment.number),
            (None, Some(current)) => segment_name(current.number),
            (None, None) => unreachable!("a current segment"),
        }
    }

    /// How many bytes have been appended to the current segment, to decide
    /// when to compact.
    pub fn current_segment_bytes(&self) -> u64 {
        match (&self.new_segment, self.segments.last()) {
            (Some(new_segment), _) => {
                new_segment.creation.as_ref().map_or(0, |c| c.len_bytes)
                    + new_segment.buffered.len() as u64
            }
            (None, Some(current)) => current.len_bytes,
            (None, None) => unreachable!("a current segment"),
        }
    }

    fn write_current(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        let current = self.segments.last_mut().expect("a current segment");
        let name = segment_name(current.number);
        self.disk.append(&name, bytes).map_err(io_error(&name))?;
        current.len_bytes += bytes.len() as u64;
        self.unsynced_segments.insert(current.number);
        Ok(())
    }
}

impl Create {
    /// Writes and syncs the new segment, then tells whoever waits for it.
    async fn run<D: Disk>(self, disk: &D) -> Result<(), WalError> {
        disk.append(&self.file, &self.bytes)
            .map_err(io_error(&self.file))?;
        disk.sync(&self.file).await.map_err(io_error(&self.file))?;
        self.created.send_replace(true);
        Ok(())
    }
}

/// Waits until another job has created `file`.
async fn wait_created(file: &str, mut created: watch::Receiver<bool>) -> Result<(), WalError> {
    match created.wait_for(|&created| created).await {
        Ok(_) => Ok(()),
        Err(_) => Err(WalError::Io {
            file: file.to_string(),
            source: io::Error::other("the job creating this segment failed"),
        }),
    }
}

impl<D: Disk> SyncJob<D> {
    /// The LSN this sync makes durable.
    pub fn lsn(&self) -> u64 {
        self.lsn
    }

    /// Syncs the segments written to, oldest first, then creates a rotation's
    /// new segment or waits for the install creating it; returns the LSN now
    /// durable.
    pub async fn run(self) -> Result<u64, WalError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        for file in &self.files {
            match self.disk.sync(file).await {
                Ok(()) => {}
                // An install removes a segment only after syncing it, once a
                // durable snapshot covers it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(WalError::Io {
                        file: file.clone(),
                        source,
                    });
                }
            }
        }
        if let Some(create) = self.create {
            // Only now: had the new file reached the disk before the older
            // segments were durable, a crash could keep it and lose them.
            create.run(&self.disk).await?;
        }
        if let Some((file, created)) = self.wait {
            wait_created(&file, created).await?;
        }
        Ok(self.lsn)
    }
}

impl Rotation {
    /// The new segment: the first that the snapshot will name.
    pub fn segment(&self) -> String {
        segment_name(self.segment)
    }

    /// The rotation's last LSN (that of the last carried record, if any).
    pub fn lsn(&self) -> u64 {
        self.lsn
    }
}

impl<D: Disk> InstallJob<D> {
    /// Makes the rotation's segment durable (creating it after syncing the
    /// older ones, or waiting for the sync that creates it), writes the
    /// snapshot file atomically, then removes the older segments.
    pub async fn run(self) -> Result<SnapshotInstalled, WalError> {
        for file in &self.sync_files {
            self.disk.sync(file).await.map_err(io_error(file))?;
        }
        if let Some(create) = self.create {
            create.run(&self.disk).await?;
        }
        if let Some((file, created)) = self.wait {
            wait_created(&file, created).await?;
        }
        // The commit point: from here on, recovery starts at the new segment.
        let header = snapshot_header(self.first_segment, &self.snapshot);
        self.disk
            .write_atomic(SNAPSHOT_FILE, vec![Bytes::from(header), self.snapshot])
            .await
            .map_err(io_error(SNAPSHOT_FILE))?;
        // Oldest first; the next open finishes the job after a crash.
        for file in &self.obsolete_files {
            self.disk.remove(file).await.map_err(io_error(file))?;
        }
        Ok(SnapshotInstalled {
            first_segment: self.first_segment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_sort_numerically_and_parse_back() {
        assert_eq!(segment_name(1), "wal-00000000000000000001.log");
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(segment_number(&segment_name(12_345)), Some(12_345));
        for name in [
            "wal-1.log",
            "wal-00000000000000000000.log",
            "wal-0000000000000000000x.log",
            "wal-99999999999999999999.log",
            "snapshot.bin",
            "wal-00000000000000000001.log.tmp",
        ] {
            assert_eq!(segment_number(name), None, "{name}");
        }
    }

    #[test]
    fn records_are_checked_before_anything_is_allocated() {
        let mut bytes = Vec::new();
        encode_record(&mut bytes, b"hello");
        assert_eq!(check_record(&bytes), Ok(&b"hello"[..]));
        assert_eq!(check_record(&bytes[..7]).unwrap_err().0, 7);
        assert_eq!(check_record(&bytes[..12]).unwrap_err().0, 12);
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(check_record(&huge).unwrap_err().0, RECORD_HEADER_BYTES);
        assert_eq!(check_record(&[0; 20]).unwrap_err().0, RECORD_HEADER_BYTES);
        let mut flipped = bytes.clone();
        flipped[9] ^= 1;
        assert_eq!(check_record(&flipped).unwrap_err().0, bytes.len());
    }

    #[test]
    fn headers_torn_only_in_the_last_segment_and_newer_ones_refused() {
        let file = "f";
        assert!(matches!(
            check_header(file, &[0; 40], true),
            Ok(HeaderCheck::Torn { .. })
        ));
        assert!(matches!(
            check_header(file, &[0; 40], false),
            Err(WalError::Corrupt { .. })
        ));
        assert!(matches!(
            check_header(file, &segment_header(7), false),
            Ok(HeaderCheck::Valid {
                previous_len_bytes: 7
            })
        ));
        let mut newer = segment_header(0);
        newer[8] = WAL_FORMAT + 1;
        assert!(matches!(
            check_header(file, &newer, true),
            Err(WalError::NewerFormat { found: 2, .. })
        ));
        let mut damaged = segment_header(0).to_vec();
        damaged[10] ^= 1;
        damaged.push(1);
        assert!(matches!(
            check_header(file, &damaged, true),
            Err(WalError::Corrupt {
                offset_bytes: 0,
                ..
            })
        ));
    }

    #[test]
    fn snapshots_round_trip_and_refuse_damage() {
        let mut bytes = snapshot_header(3, b"state");
        bytes.extend_from_slice(b"state");
        assert_eq!(decode_snapshot(&bytes).unwrap(), (3, b"state".to_vec()));
        for offset in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[offset] ^= 0x40;
            assert!(decode_snapshot(&damaged).is_err(), "offset {offset}");
        }
        for len in 0..bytes.len() {
            assert!(decode_snapshot(&bytes[..len]).is_err(), "len {len}");
        }
    }
}

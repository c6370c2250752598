//! The event trace: every fault, client operation, leadership change and
//! applied slot, hashed as it happens (two runs of a seed must give the
//! same hash) and, when asked, written as JSON lines.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, BufWriter, Write};

use serde::Serialize;

use crate::history::{Call, Outcome};
use crate::options::PartitionKind;

/// One thing that happened.
#[derive(Clone, Debug, Hash, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A phase of the run began.
    Phase {
        /// `faults`, `heal`, `liveness`, `convergence` or `end`.
        name: &'static str,
    },
    /// Links were cut (each pair: no bytes from the first to the second).
    Partition {
        /// The kind.
        kind: PartitionKind,
        /// The links cut, by member id.
        cut: Vec<(u64, u64)>,
    },
    /// Every cut link was restored.
    HealNetwork,
    /// A member was killed and its disk lost what was not synced.
    Kill {
        /// The member.
        node: u64,
    },
    /// A killed member was started again.
    Restart {
        /// The member.
        node: u64,
    },
    /// Every member lost power at once.
    PowerFailure,
    /// A member stopped running.
    Pause {
        /// The member.
        node: u64,
    },
    /// A paused member runs again.
    Resume {
        /// The member.
        node: u64,
    },
    /// A member's clock now runs this far from the true time.
    ClockOffset {
        /// The member.
        node: u64,
        /// The offset.
        offset_ms: i64,
    },
    /// A member sent a frame to another (written only when tracing to a
    /// file, and not part of the trace hash).
    Message {
        /// The sender.
        from: u64,
        /// The receiver.
        to: u64,
        /// The frame, in one line (consensus messages as `Message`'s
        /// Display: ballots, slots, entries, commit points).
        frame: String,
        /// What the transport did with it: deliver, drop or delay.
        fate: String,
    },
    /// Frame loss and delay in the members' transport turned on or off.
    LinkFaults {
        /// On or off.
        on: bool,
    },
    /// A client sent a request.
    Invoke {
        /// The client.
        client: u32,
        /// The operation's index in the history.
        op: usize,
        /// The member it went to.
        member: u64,
        /// What it asked.
        #[serde(flatten)]
        call: Call,
    },
    /// A client's request ended.
    Complete {
        /// The client.
        client: u32,
        /// The operation's index in the history.
        op: usize,
        /// What came of it.
        #[serde(flatten)]
        outcome: Outcome,
    },
    /// A member's view of the leader changed.
    Leadership {
        /// The member.
        node: u64,
        /// Whom it follows (`None`: an election is on).
        leader: Option<u64>,
        /// The ballot's round.
        round: u64,
        /// The ballot's owner.
        ballot_node: u64,
    },
    /// A member applied a slot.
    Applied {
        /// The member.
        node: u64,
        /// The slot.
        slot: u64,
        /// Digest of the entry.
        entry: u64,
        /// Values in the entry (0: a no-op).
        values: usize,
        /// The highest stamp in the entry.
        max_stamp_ms: Option<u64>,
        /// The member's log time after the slot.
        log_time_ms: u64,
        /// The values, described (only when writing a trace).
        #[serde(skip_serializing_if = "Described::is_empty")]
        described: Described,
    },
    /// A member reported the digest of its whole job state.
    StateDigest {
        /// The member.
        node: u64,
        /// After applying this slot.
        slot: u64,
        /// The digest.
        digest: u64,
    },
    /// A member installed a snapshot sent by the leader.
    InstalledSnapshot {
        /// The member.
        node: u64,
        /// Covering up to this slot.
        slot: u64,
        /// Digest of its state.
        digest: u64,
    },
    /// A member's code returned an error and stopped.
    MemberStopped {
        /// The member.
        node: u64,
        /// The error.
        error: String,
    },
    /// A checker found a violation.
    Finding {
        /// The checker.
        checker: &'static str,
        /// What it found.
        detail: String,
    },
}

/// What a person reading the trace needs beyond the entry's digest: left
/// out of the hash, which must not depend on whether a trace is written.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Described(pub Vec<String>);

impl Described {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Hash for Described {
    fn hash<H: Hasher>(&self, _state: &mut H) {}
}

/// A line of the trace file.
#[derive(Serialize)]
struct Line<'a> {
    /// Simulated microseconds since the start.
    t_us: u64,
    #[serde(flatten)]
    event: &'a Event,
}

/// FNV-1a, as `synod::hooks::digest`: the same on every run, unlike the
/// standard library's seeded hashers.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The running hash of the events and, when tracing, the file they go to.
pub struct Trace {
    hash: Fnv,
    events: u64,
    last_us: u64,
    out: Option<BufWriter<File>>,
}

impl Trace {
    /// A trace that only hashes.
    pub fn hash_only() -> Trace {
        Trace {
            hash: Fnv::default(),
            events: 0,
            last_us: 0,
            out: None,
        }
    }

    /// A trace written to `path`, starting with `header` (the options).
    pub fn to_file(path: &str, header: &impl Serialize) -> io::Result<Trace> {
        let mut out = BufWriter::new(File::create(path)?);
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(Trace {
            hash: Fnv::default(),
            events: 0,
            last_us: 0,
            out: Some(out),
        })
    }

    /// Records `event`, which happened `t_us` into the run.
    pub fn record(&mut self, t_us: u64, event: &Event) {
        self.last_us = t_us;
        // Frames are traced only when writing to a file; leaving them out
        // of the hash keeps a traced replay's hash equal to the run's.
        if !matches!(event, Event::Message { .. }) {
            t_us.hash(&mut self.hash);
            event.hash(&mut self.hash);
            self.events += 1;
        }
        if let Some(out) = &mut self.out {
            let line = Line { t_us, event };
            // The trace is for a person replaying a seed: if it cannot be
            // written, say so once and carry on with the run.
            let written = serde_json::to_writer(&mut *out, &line)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            if let Err(error) = written {
                eprintln!("cannot write the trace: {error}");
                self.out = None;
            }
        }
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// True when events are written out (worth describing in full).
    pub fn is_writing(&self) -> bool {
        self.out.is_some()
    }

    /// When the last event happened.
    pub fn last_us(&self) -> u64 {
        self.last_us
    }

    /// How many events were recorded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Writes out whatever is buffered.
    pub fn flush(&mut self) {
        if let Some(out) = &mut self.out {
            if let Err(error) = out.flush() {
                eprintln!("cannot write the trace: {error}");
            }
        }
    }
}

//! Job ids in Disque's 40-character format:
//! `D-` + 8 hex digits (the proposing node) + `-` + 24 base64 characters
//! (random, drawn by the proposer) + `-` + 4 hex digits (the TTL in minutes,
//! with the lowest bit set when RETRY > 0, i.e. the job may be delivered
//! again). Example: `D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1`.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::QueueError;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// True for the 64 characters of an id's random part. (Not a search of
/// `BASE64`: every id a follower decodes checks 24 of them.)
fn is_base64(byte: &u8) -> bool {
    byte.is_ascii_alphanumeric() || *byte == b'+' || *byte == b'/'
}

/// Each base64 character's 6-bit value (other bytes: 0, never looked up for
/// a `JobId`, whose random part is always base64 text).
const BASE64_VALUE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 64 {
        table[BASE64[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// 18 random bytes as the 24 base64 characters of an id.
fn encode_random(random: &[u8; 18]) -> [u8; 24] {
    let mut text = [0u8; 24];
    for (chunk, out) in random.chunks(3).zip(text.chunks_mut(4)) {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for (i, c) in out.iter_mut().enumerate() {
            *c = BASE64[(n >> (18 - 6 * i) & 63) as usize];
        }
    }
    text
}

/// A [`JobId`] in 24 bytes instead of 32: its random part as the 18 bytes
/// its 24 base64 characters stand for. Every `JobId` packs (its random part
/// is always base64 text) and unpacks to itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedId {
    node: u32,
    random: [u8; 18],
    ttl_field: u16,
}

impl PackedId {
    /// A fixed (seedless, so deterministic) 64-bit hash of the id, for the
    /// state machine's id index. Only lookups use it: nothing is ever
    /// iterated in hash order.
    pub(crate) fn index_hash(&self) -> u64 {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            let end = (i + 8).min(18);
            b[..end - i].copy_from_slice(&self.random[i..end]);
            u64::from_le_bytes(b)
        };
        let mut h = (u64::from(self.node) << 16 | u64::from(self.ttl_field)).wrapping_mul(K);
        for i in [0, 8, 16] {
            h = (h ^ word(i)).wrapping_mul(K);
            h ^= h >> 29;
        }
        h = (h ^ (h >> 32)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^ (h >> 31)
    }

    pub(crate) fn unpack(&self) -> JobId {
        JobId {
            node: self.node,
            random: encode_random(&self.random),
            ttl_field: self.ttl_field,
        }
    }
}

/// A job id. Ordered by its text, so listings are stable.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "UncheckedJobId")]
pub struct JobId {
    node: u32,
    random: [u8; 24],
    ttl_field: u16,
}

/// A job id as decoded (from a snapshot or a command), before the check that
/// its random part is base64 text: otherwise it could not be displayed (its
/// `Display` would fail, and `to_string` panic) nor named by a client.
#[derive(Deserialize)]
struct UncheckedJobId {
    node: u32,
    random: [u8; 24],
    ttl_field: u16,
}

impl TryFrom<UncheckedJobId> for JobId {
    type Error = QueueError;

    fn try_from(id: UncheckedJobId) -> Result<Self, QueueError> {
        if !id.random.iter().all(is_base64) {
            return Err(QueueError::BadId);
        }
        Ok(JobId {
            node: id.node,
            random: id.random,
            ttl_field: id.ttl_field,
        })
    }
}

impl JobId {
    /// The id a proposer makes: `random` is 18 random bytes (shown as 24
    /// base64 characters); the TTL and RETRY go into the last field as
    /// Disque does, so a client can read them from the id alone.
    pub fn new(node: u32, random: [u8; 18], ttl_ms: u64, retry_ms: u64) -> Self {
        let text = encode_random(&random);
        let minutes = (ttl_ms / 60_000).min(u64::from(u16::MAX)) as u16;
        let ttl_field = if retry_ms > 0 {
            minutes | 1
        } else {
            minutes & !1
        };
        JobId {
            node,
            random: text,
            ttl_field,
        }
    }

    /// True when the id says the job may be delivered more than once.
    pub fn may_repeat(&self) -> bool {
        self.ttl_field & 1 == 1
    }

    /// The id in 24 bytes; [`PackedId::unpack`] gives it back.
    pub(crate) fn pack(&self) -> PackedId {
        let mut random = [0u8; 18];
        for (text, out) in self.random.chunks(4).zip(random.chunks_mut(3)) {
            let n = text
                .iter()
                .fold(0u32, |n, &c| n << 6 | u32::from(BASE64_VALUE[c as usize]));
            out.copy_from_slice(&n.to_be_bytes()[1..]);
        }
        PackedId {
            node: self.node,
            random,
            ttl_field: self.ttl_field,
        }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let random = core::str::from_utf8(&self.random).map_err(|_| fmt::Error)?;
        write!(f, "D-{:08x}-{random}-{:04x}", self.node, self.ttl_field)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for JobId {
    type Err = QueueError;

    /// Parses and validates an id; anything malformed is `BadId`.
    fn from_str(text: &str) -> Result<Self, QueueError> {
        let bytes = text.as_bytes();
        let well_formed = bytes.len() == 40
            && bytes.starts_with(b"D-")
            && bytes[10] == b'-'
            && bytes[35] == b'-'
            && bytes[2..10].iter().all(u8::is_ascii_hexdigit)
            && bytes[11..35].iter().all(is_base64)
            && bytes[36..40].iter().all(u8::is_ascii_hexdigit);
        if !well_formed {
            return Err(QueueError::BadId);
        }
        let hex = |range: core::ops::Range<usize>| u32::from_str_radix(&text[range], 16);
        let node = hex(2..10).map_err(|_| QueueError::BadId)?;
        let ttl_field = hex(36..40).map_err(|_| QueueError::BadId)? as u16;
        let mut random = [0u8; 24];
        random.copy_from_slice(&bytes[11..35]);
        Ok(JobId {
            node,
            random,
            ttl_field,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64_characters_are_exactly_the_alphabet() {
        for byte in 0..=u8::MAX {
            assert_eq!(is_base64(&byte), BASE64.contains(&byte), "byte {byte}");
        }
    }

    #[test]
    fn formats_like_disque() {
        let id = JobId::new(0xdcb8_33cf, [0xff; 18], 24 * 3600 * 1000, 1);
        let text = id.to_string();
        assert_eq!(text.len(), 40);
        assert_eq!(text, "D-dcb833cf-////////////////////////-05a1");
        assert!(id.may_repeat(), "RETRY > 0 sets the low bit");
        let once = JobId::new(1, [0; 18], 60_000, 0);
        assert_eq!(once.to_string(), "D-00000001-AAAAAAAAAAAAAAAAAAAAAAAA-0000");
        assert!(!once.may_repeat(), "RETRY 0 clears it");
    }

    #[test]
    fn malformed_ids_are_bad_ids() {
        for text in [
            "",
            "D-",
            "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a",
            "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1x",
            "X-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1",
            "D-dcb833cg-8YL1NT17e9+wsA/09NqxscQI-05a1",
            "D-dcb833cf-8YL1NT17e9+wsA/09Nqxsc!I-05a1",
            "D-dcb833cf_8YL1NT17e9+wsA/09NqxscQI-05a1",
            "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05é",
        ] {
            assert_eq!(text.parse::<JobId>(), Err(QueueError::BadId), "{text:?}");
        }
        let good = "D-dcb833cf-8YL1NT17e9+wsA/09NqxscQI-05a1";
        assert_eq!(good.parse::<JobId>().unwrap().to_string(), good);
    }

    proptest! {
        #[test]
        fn ids_round_trip_through_text(node: u32, random: [u8; 18], ttl_ms: u64, retry_ms: u64) {
            let id = JobId::new(node, random, ttl_ms, retry_ms);
            prop_assert_eq!(id.to_string().parse::<JobId>(), Ok(id));
        }

        #[test]
        fn ids_pack_and_unpack_to_themselves(node: u32, random: [u8; 18], ttl_ms: u64, retry_ms: u64) {
            let id = JobId::new(node, random, ttl_ms, retry_ms);
            prop_assert_eq!(id.pack().unpack(), id);
            let parsed: JobId = id.to_string().parse().unwrap();
            prop_assert_eq!(parsed.pack(), id.pack());
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,48}") {
            let _ = text.parse::<JobId>();
        }
    }
}

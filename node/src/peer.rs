//! The peer transport: TCP between members, carrying length-prefixed,
//! versioned postcard frames.
//!
//! Each member dials every other member and uses that connection only to
//! send; what it receives arrives on the connections the others dialed. A
//! link that fails is dialled again with backoff, and frames queued for a
//! peer are bounded: when the queue is full, new frames are dropped, as a
//! lossy network would. Consensus tolerates loss, duplication and reordering,
//! and detects failures by its own timeouts, never by socket errors.
//!
//! Frame: `[length: u32 LE][version: u8][postcard(PeerFrame)]`, where the
//! length counts the version byte and the payload.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use consensus::{Message, NodeId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::hooks::{LinkFaults, LinkVerdict};
use crate::proposal::{Forwarded, Proposal};

/// The peer protocol version this build speaks. A frame with another
/// version closes the connection with a clear log line.
pub const PEER_PROTOCOL_VERSION: u8 = 1;

/// The largest frame accepted: a snapshot travels in one frame, so this is
/// generous; the reader grows its buffer only as bytes arrive, so a bogus
/// length cannot make it allocate this much up front.
pub const MAX_FRAME_BYTES: usize = 1 << 30;

/// Frames queued for one peer before new ones are dropped.
const PEER_QUEUE_FRAMES: usize = 8192;

/// Bytes written to a peer before a flush, at most.
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// What members say to each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PeerFrame {
    /// The first frame on every connection: who dialled.
    Hello {
        /// The dialling member.
        from: NodeId,
    },
    /// A consensus message.
    Paxos(Message<Proposal>),
    /// Client requests a follower passes to the member it believes leads.
    Forward {
        /// The follower that owes the replies.
        origin: NodeId,
        /// The follower's run (see [`Proposal::incarnation`]).
        incarnation: u64,
        /// The requests.
        requests: Vec<Forwarded>,
    },
    /// The receiver of a `Forward` could not propose these requests (it is
    /// not the leader, or is too busy); the origin may try again.
    Refused {
        /// The refused requests' numbers.
        request_ids: Vec<u64>,
        /// Who the refusing member believes leads.
        leader_hint: Option<NodeId>,
    },
}

/// Why a frame could not be read.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The length prefix is beyond [`MAX_FRAME_BYTES`] (or zero).
    #[error("frame length {length_bytes} is out of range (1..={MAX_FRAME_BYTES})")]
    Length {
        /// The length read.
        length_bytes: usize,
    },
    /// Another protocol version.
    #[error("peer speaks protocol version {found}, this build speaks {PEER_PROTOCOL_VERSION}")]
    Version {
        /// The version byte read.
        found: u8,
    },
    /// The payload does not decode.
    #[error("frame does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

/// Appends `frame` to `out`, framed.
pub fn encode_frame(frame: &PeerFrame, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32_le(0);
    out.put_u8(PEER_PROTOCOL_VERSION);
    let mut writer = out.writer();
    postcard::to_io(frame, &mut writer).expect("writing to memory cannot fail");
    let out = writer.into_inner();
    let length = u32::try_from(out.len() - start - 4).expect("frames are below 4 GiB");
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
}

/// Takes one whole frame from the front of `buf`, if it holds one.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<PeerFrame>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let length_bytes = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    if length_bytes == 0 || length_bytes > MAX_FRAME_BYTES {
        return Err(FrameError::Length { length_bytes });
    }
    if buf.len() < 4 + length_bytes {
        buf.reserve(4 + length_bytes - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let body = buf.split_to(length_bytes);
    if body[0] != PEER_PROTOCOL_VERSION {
        return Err(FrameError::Version { found: body[0] });
    }
    Ok(Some(postcard::from_bytes(&body[1..])?))
}

/// The sending side of the transport: one queue and one dialling task per
/// peer.
#[derive(Clone)]
pub struct PeerLinks {
    my_id: NodeId,
    queues: BTreeMap<NodeId, mpsc::Sender<PeerFrame>>,
    faults: Option<Arc<dyn LinkFaults>>,
}

impl PeerLinks {
    /// Starts a dialling task for each of `peers` (not including `my_id`).
    /// `seed` seeds the reconnect backoff jitter.
    /// `faults`, if given, decides each frame's fate (the simulator's
    /// message loss and delay).
    pub fn start(
        my_id: NodeId,
        peers: &BTreeMap<NodeId, SocketAddr>,
        seed: u64,
        faults: Option<Arc<dyn LinkFaults>>,
    ) -> Self {
        let mut queues = BTreeMap::new();
        for (&peer, &addr) in peers {
            if peer == my_id {
                continue;
            }
            let (sender, receiver) = mpsc::channel(PEER_QUEUE_FRAMES);
            let rng = SmallRng::seed_from_u64(seed ^ peer.rotate_left(17));
            tokio::spawn(dial_loop(my_id, peer, addr, receiver, rng));
            queues.insert(peer, sender);
        }
        PeerLinks {
            my_id,
            queues,
            faults,
        }
    }

    /// Queues `frame` for `to`. Returns false if it was dropped (unknown
    /// peer, or its queue is full; a frame the fault hook loses counts as
    /// sent, as a frame lost on the wire would).
    pub fn send(&self, to: NodeId, frame: PeerFrame) -> bool {
        let Some(queue) = self.queues.get(&to) else {
            return false;
        };
        match self
            .faults
            .as_ref()
            .map(|f| f.verdict(self.my_id, to, &frame))
        {
            None | Some(LinkVerdict::Deliver) => queue.try_send(frame).is_ok(),
            Some(LinkVerdict::Drop) => true,
            Some(LinkVerdict::Delay(delay)) => {
                let queue = queue.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = queue.try_send(frame);
                });
                true
            }
        }
    }
}

/// Keeps one outgoing connection to `peer` alive and writes its frames.
async fn dial_loop(
    my_id: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    mut frames: mpsc::Receiver<PeerFrame>,
    mut rng: SmallRng,
) {
    let mut backoff = Duration::from_millis(20);
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        let mut stream = match TcpStream::connect(addr).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(peer, %addr, %error, "cannot reach peer; retrying");
                // Full jitter: spread the retries of members that lost the
                // same peer at once.
                let wait = rng.random_range(backoff / 2..=backoff);
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        let _ = stream.set_nodelay(true);
        out.clear();
        encode_frame(&PeerFrame::Hello { from: my_id }, &mut out);
        tracing::debug!(peer, %addr, "connected to peer");
        loop {
            if !out.is_empty() {
                let written = async {
                    stream.write_all(&out).await?;
                    stream.flush().await
                }
                .await;
                out.clear();
                if let Err(error) = written {
                    tracing::debug!(peer, %error, "peer connection lost; redialling");
                    break;
                }
            }
            let Some(frame) = frames.recv().await else {
                // The node stopped.
                return;
            };
            encode_frame(&frame, &mut out);
            // Batch whatever else is queued into the same write.
            while out.len() < WRITE_BATCH_BYTES {
                match frames.try_recv() {
                    Ok(frame) => encode_frame(&frame, &mut out),
                    Err(_) => break,
                }
            }
        }
    }
}

/// Accepts members' connections and passes every frame they send to
/// `inbox` as `(sender, frame)`. Runs until `inbox` closes.
pub async fn accept_peers<T>(listener: TcpListener, my_id: NodeId, inbox: mpsc::Sender<T>)
where
    T: From<(NodeId, PeerFrame)> + Send + 'static,
{
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if inbox.is_closed() {
            return;
        }
        let inbox = inbox.clone();
        tokio::spawn(async move {
            if let Err(error) = read_peer(stream, my_id, inbox).await {
                tracing::warn!(%addr, %error, "closed a peer connection");
            }
        });
    }
}

/// Why an incoming peer connection was closed.
#[derive(Debug, Error)]
enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("first frame was not a Hello")]
    NoHello,
    #[error("a message from {from} to {to} arrived on member {claimed}'s connection to {me}")]
    Misaddressed {
        from: NodeId,
        to: NodeId,
        claimed: NodeId,
        me: NodeId,
    },
}

async fn read_peer<T>(
    mut stream: TcpStream,
    my_id: NodeId,
    inbox: mpsc::Sender<T>,
) -> Result<(), ReadError>
where
    T: From<(NodeId, PeerFrame)>,
{
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut from = None;
    loop {
        while let Some(frame) = decode_frame(&mut buf)? {
            let sender = match (from, &frame) {
                (None, PeerFrame::Hello { from: hello }) => {
                    from = Some(*hello);
                    continue;
                }
                (None, _) => return Err(ReadError::NoHello),
                (Some(sender), _) => sender,
            };
            if let PeerFrame::Paxos(message) = &frame {
                if message.from != sender || message.to != my_id {
                    return Err(ReadError::Misaddressed {
                        from: message.from,
                        to: message.to,
                        claimed: sender,
                        me: my_id,
                    });
                }
            }
            if inbox.send(T::from((sender, frame))).await.is_err() {
                return Ok(());
            }
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_whole_and_split() {
        let frames = [
            PeerFrame::Hello { from: 3 },
            PeerFrame::Refused {
                request_ids: vec![1, 2, 3],
                leader_hint: Some(2),
            },
        ];
        let mut bytes = BytesMut::new();
        for frame in &frames {
            encode_frame(frame, &mut bytes);
        }
        let whole = bytes.clone();
        let mut decoded = Vec::new();
        while let Some(frame) = decode_frame(&mut bytes).expect("valid") {
            decoded.push(frame);
        }
        assert_eq!(decoded, frames);
        // Byte by byte: nothing until a frame is whole.
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for byte in whole {
            buf.put_u8(byte);
            if let Some(frame) = decode_frame(&mut buf).expect("valid") {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut zero = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert!(matches!(
            decode_frame(&mut zero),
            Err(FrameError::Length { length_bytes: 0 })
        ));
        let mut huge = BytesMut::from(&u32::MAX.to_le_bytes()[..]);
        assert!(matches!(
            decode_frame(&mut huge),
            Err(FrameError::Length { .. })
        ));
        let mut newer = BytesMut::new();
        encode_frame(&PeerFrame::Hello { from: 1 }, &mut newer);
        newer[4] = PEER_PROTOCOL_VERSION + 1;
        assert!(matches!(
            decode_frame(&mut newer),
            Err(FrameError::Version { found }) if found == PEER_PROTOCOL_VERSION + 1
        ));
        let mut garbage = BytesMut::from(&[3u8, 0, 0, 0, PEER_PROTOCOL_VERSION, 0xff, 0xff][..]);
        assert!(matches!(
            decode_frame(&mut garbage),
            Err(FrameError::Decode(_))
        ));
    }
}

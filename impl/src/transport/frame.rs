//! The wire format between nodes: one frame per message.
//!
//! ```text
//! magic "RKVT" (4) | version u8 (1) | reserved u8 = 0 (1) | sender node id u64 LE (8)
//! | payload length u32 LE (4) | payload (postcard-encoded message)
//! ```
//!
//! The header is checked field by field before anything else is read: wrong magic, an
//! unsupported version, an unknown sender and a length above the configured maximum are all
//! rejected before the payload buffer is allocated.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::NodeId;

/// Magic bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"RKVT";
/// Version of the frame format and message encoding.
pub const FRAME_VERSION: u8 = 1;
/// Length of the frame header.
pub const FRAME_HEADER_LEN: usize = 18;

/// Why an incoming frame was rejected. The connection is closed after any of these.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or closed in the middle of a frame.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Not a raftkv peer connection (or garbage).
    #[error("bad frame magic {0:02x?}: not a raftkv peer connection")]
    BadMagic([u8; 4]),
    /// Unsupported format version.
    #[error("unsupported frame version {0} (this build speaks version {FRAME_VERSION})")]
    Version(u8),
    /// The reserved header byte is not zero.
    #[error("reserved frame header byte is {0}, expected 0")]
    Reserved(u8),
    /// The sender id is not a configured peer (or is our own id).
    #[error("frame from unknown node id {0}")]
    UnknownSender(NodeId),
    /// A connection may carry frames of one sender only.
    #[error("frame from node {got} on a connection opened by node {first}")]
    SenderChanged {
        /// The sender of the connection's first frame.
        first: NodeId,
        /// The sender of this frame.
        got: NodeId,
    },
    /// The declared payload length exceeds the maximum frame size.
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Declared length.
        len: u32,
        /// Configured maximum.
        max: u32,
    },
    /// A frame started but did not complete in time.
    #[error("incomplete frame: not completed within {0:?}")]
    Timeout(Duration),
    /// The payload is not a valid message.
    #[error("undecodable message from node {from}: {source}")]
    Decode {
        /// The sender.
        from: NodeId,
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
}

/// Builds a complete frame around an encoded payload.
pub fn encode_frame(sender: NodeId, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("payload length checked against the maximum frame size");
    let mut f = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    f.extend_from_slice(&FRAME_MAGIC);
    f.push(FRAME_VERSION);
    f.push(0);
    f.extend_from_slice(&sender.to_le_bytes());
    f.extend_from_slice(&len.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// Reads one frame. Returns `Ok(None)` on a clean end of stream between frames.
///
/// `known` decides whether a sender id is acceptable; it is called before the payload length
/// is even looked at. The payload buffer is allocated only after the length passed `max`.
/// Waiting for a frame to start has no time limit (peers may be idle), but once its first
/// byte arrived the whole frame must arrive within `frame_timeout`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: u32,
    frame_timeout: Duration,
    known: impl Fn(NodeId) -> bool,
) -> Result<Option<(NodeId, Vec<u8>)>, FrameError> {
    let mut h = [0u8; FRAME_HEADER_LEN];
    let n = r.read(&mut h).await?;
    if n == 0 {
        return Ok(None);
    }
    match tokio::time::timeout(frame_timeout, read_rest(r, h, n, max, known)).await {
        Ok(res) => res.map(Some),
        Err(_) => Err(FrameError::Timeout(frame_timeout)),
    }
}

/// Reads the rest of a frame of which the first `n` header bytes are in `h`.
async fn read_rest<R: AsyncRead + Unpin>(
    r: &mut R,
    mut h: [u8; FRAME_HEADER_LEN],
    n: usize,
    max: u32,
    known: impl Fn(NodeId) -> bool,
) -> Result<(NodeId, Vec<u8>), FrameError> {
    // Check the magic as soon as it is in, so that garbage is rejected promptly.
    if n < 4 {
        r.read_exact(&mut h[n..4]).await?;
    }
    let magic = [h[0], h[1], h[2], h[3]];
    if magic != FRAME_MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    if n < FRAME_HEADER_LEN {
        r.read_exact(&mut h[n.max(4)..]).await?;
    }
    if h[4] != FRAME_VERSION {
        return Err(FrameError::Version(h[4]));
    }
    if h[5] != 0 {
        return Err(FrameError::Reserved(h[5]));
    }
    let sender = u64::from_le_bytes(h[6..14].try_into().expect("8 bytes"));
    if !known(sender) {
        return Err(FrameError::UnknownSender(sender));
    }
    let len = u32::from_le_bytes(h[14..18].try_into().expect("4 bytes"));
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    Ok((sender, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], max: u32) -> Result<Option<(NodeId, Vec<u8>)>, FrameError> {
        let mut r = bytes;
        read_frame(&mut r, max, Duration::from_secs(5), |id| id == 1 || id == 2).await
    }

    #[tokio::test]
    async fn round_trip_and_rejections() {
        let f = encode_frame(2, b"hello");
        assert_eq!(read(&f, 100).await.unwrap(), Some((2, b"hello".to_vec())));
        assert!(read(&[], 100).await.unwrap().is_none());
        assert!(matches!(
            read(&f, 4).await,
            Err(FrameError::TooLarge { len: 5, max: 4 })
        ));
        assert!(matches!(
            read(&encode_frame(7, b"x"), 100).await,
            Err(FrameError::UnknownSender(7))
        ));
        assert!(matches!(
            read(b"GET / HTTP/1.1\r\n\r\n", 100).await,
            Err(FrameError::BadMagic(_))
        ));
        let mut bad = f.clone();
        bad[4] = 9;
        assert!(matches!(read(&bad, 100).await, Err(FrameError::Version(9))));
        let mut bad = f.clone();
        bad[5] = 1;
        assert!(matches!(
            read(&bad, 100).await,
            Err(FrameError::Reserved(1))
        ));
        assert!(matches!(
            read(&f[..f.len() - 1], 100).await,
            Err(FrameError::Io(_))
        ));
        assert!(matches!(read(&f[..10], 100).await, Err(FrameError::Io(_))));
    }
}

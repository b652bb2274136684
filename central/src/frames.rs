//! Reading and writing uplink frames on QUIC streams (the async shell around
//! [`hotspot_device_protocols::uplink`]). Shared by central and the gateway.

use hotspot_device_protocols::uplink::{self, FrameError, HEADER_LEN};
use serde::{Serialize, de::DeserializeOwned};

/// Errors moving a frame over a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The peer closed or reset the stream, or the connection failed.
    #[error("stream read failed: {0}")]
    Read(#[from] quinn::ReadExactError),
    /// Writing failed.
    #[error("stream write failed: {0}")]
    Write(#[from] quinn::WriteError),
    /// The stream was already finished.
    #[error("stream already closed: {0}")]
    Closed(#[from] quinn::ClosedStream),
    /// The frame itself is bad.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Reads one frame, refusing bodies above `limit` bytes before reading them.
pub async fn read_frame<T: DeserializeOwned>(
    recv: &mut quinn::RecvStream,
    limit: usize,
) -> Result<T, StreamError> {
    let mut header = [0u8; HEADER_LEN];
    recv.read_exact(&mut header).await?;
    let len = uplink::decode_header(header, limit)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await?;
    Ok(uplink::decode_body(&body)?)
}

/// Writes one frame and finishes the stream.
pub async fn write_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    msg: &T,
) -> Result<(), StreamError> {
    let bytes = uplink::encode_frame(msg)?;
    write_encoded(send, &bytes).await
}

/// Writes an already-encoded frame and finishes the stream.
pub async fn write_encoded(send: &mut quinn::SendStream, frame: &[u8]) -> Result<(), StreamError> {
    send.write_all(frame).await?;
    send.finish()?;
    Ok(())
}

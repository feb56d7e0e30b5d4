//! Size-prefixed framing: every Kafka request and response is an `int32`
//! length followed by that many bytes.

use bytes::{Buf, Bytes, BytesMut};

use crate::ProtocolError;

/// Splits a byte stream into frames, refusing any whose declared size exceeds
/// `frame_bytes_max` before a single byte of it is buffered.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    frame_bytes_max: usize,
}

impl FrameDecoder {
    pub fn new(frame_bytes_max: usize) -> Self {
        Self { frame_bytes_max }
    }

    /// The size of the next frame if its prefix is complete, checked against the cap.
    /// Lets a reader reserve exactly what the frame needs.
    pub fn peek_size(&self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if size < 0 || size as usize > self.frame_bytes_max {
            return Err(ProtocolError::FrameTooLarge {
                size: size as i64,
                limit: self.frame_bytes_max,
            });
        }
        Ok(Some(size as usize))
    }

    /// Takes one whole frame (without its prefix) off the front of `buf`, if present.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        let Some(size) = self.peek_size(buf)? else {
            return Ok(None);
        };
        if buf.len() < 4 + size {
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(size).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_waits_for_more() {
        let d = FrameDecoder::new(100);
        let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 2, 9][..]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().as_ref(), &[1, 2, 3]);
        assert!(d.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&[8]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().as_ref(), &[9, 8]);
    }

    #[test]
    fn refuses_oversized_and_negative_sizes() {
        let d = FrameDecoder::new(10);
        let mut big = BytesMut::from(&[0, 0, 0, 11][..]);
        assert!(matches!(
            d.decode(&mut big),
            Err(ProtocolError::FrameTooLarge { size: 11, .. })
        ));
        let mut neg = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(d.decode(&mut neg).is_err());
    }
}

//! Sans-IO Kafka wire codec.
//!
//! Owns: request/response framing (the 4-byte size prefix), request and response
//! header handling, decoding requests and encoding responses through the
//! `kafka-protocol` crate's generated messages, and the table of API versions
//! Millrace advertises. It performs no I/O, spawns nothing, and must not depend
//! on `storage` or `broker`; the record-batch format belongs to `storage`,
//! because it is the on-disk format.
//!
//! Modules:
//! - [`frame`]: splitting a byte stream into size-prefixed frames, with a size cap.
//! - [`versions`]: the advertised API version table.
//! - [`codec`]: request decode / response encode (broker side) and the reverse
//!   (client side).
//! - [`error`]: the crate's error type.

pub mod codec;
pub mod error;
pub mod frame;
pub mod versions;

pub use codec::{decode_request, decode_response, encode_request, encode_response, DecodedRequest};
pub use error::ProtocolError;
pub use frame::FrameDecoder;
pub use kafka_protocol;

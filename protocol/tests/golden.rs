//! Request frames captured from real clients (kcat/librdkafka 2.0.2,
//! kafka-python 3.0.12, the Java client 3.9.1) through a recording proxy:
//! each must decode at its version and re-encode to the same bytes; mangled
//! copies must fail cleanly, never panic.
//!
//! File names: `<client>-k<api key>-v<version>.bin`, one frame without its
//! size prefix.

use std::path::PathBuf;

use bytes::Bytes;
use millrace_protocol::{decode_request, encode_request, ProtocolError};
use proptest::prelude::*;

fn golden() -> Vec<(String, Bytes)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut frames: Vec<(String, Bytes)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, Bytes::from(std::fs::read(&p).unwrap()))
        })
        .collect();
    frames.sort();
    assert!(
        frames.len() >= 20,
        "golden frames missing from {}",
        dir.display()
    );
    frames
}

fn key_and_version(name: &str) -> (i16, i16) {
    let stem = name.trim_end_matches(".bin");
    let mut parts = stem.rsplit('-');
    let v = parts
        .next()
        .unwrap()
        .trim_start_matches('v')
        .parse()
        .unwrap();
    let k = parts
        .next()
        .unwrap()
        .trim_start_matches('k')
        .parse()
        .unwrap();
    (k, v)
}

#[test]
fn real_client_frames_decode_and_reencode_identically() {
    for (name, frame) in golden() {
        let (key, version) = key_and_version(&name);
        let request = decode_request(frame.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(request.api_key as i16, key, "{name}");
        assert_eq!(request.header.request_api_version, version, "{name}");
        let again = encode_request(&request.header, &request.body)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            &again[4..],
            &frame[..],
            "{name}: re-encoding changed the bytes"
        );
    }
}

#[test]
fn kcat_produce_carries_its_record_batch_untouched() {
    let frames = golden();
    let (_, frame) = frames
        .iter()
        .find(|(n, _)| n.starts_with("kcat-k0-"))
        .unwrap();
    let request = decode_request(frame.clone()).unwrap();
    let kafka_protocol::messages::RequestKind::Produce(p) = request.body else {
        panic!("not a produce request")
    };
    let records = p.topic_data[0].partition_data[0].records.clone().unwrap();
    // Magic byte 2 at offset 16 of the v2 batch, and the batch is inside the frame as-is.
    assert_eq!(records[16], 2);
    assert!(frame.windows(records.len()).any(|w| w == &records[..]));
}

#[test]
fn truncated_frames_are_errors() {
    for (name, frame) in golden() {
        for cut in [0, 3, 7, frame.len() / 2, frame.len() - 1] {
            let short = frame.slice(..cut.min(frame.len()));
            match decode_request(short) {
                Err(_) => {}
                Ok(r) => {
                    // A cut can land on a field boundary of a request whose tail is optional;
                    // then it must at least still be the same API.
                    assert_eq!(
                        r.api_key as i16,
                        key_and_version(&name).0,
                        "{name} cut at {cut}"
                    );
                }
            }
        }
    }
}

#[test]
fn unknown_keys_and_versions_are_named() {
    let mut frame = golden().into_iter().next().unwrap().1.to_vec();
    frame[0..2].copy_from_slice(&999i16.to_be_bytes());
    assert!(matches!(
        decode_request(frame.clone().into()),
        Err(ProtocolError::UnknownApiKey { api_key: 999, .. })
    ));
    frame[0..2].copy_from_slice(&18i16.to_be_bytes());
    frame[2..4].copy_from_slice(&99i16.to_be_bytes());
    assert!(matches!(
        decode_request(frame.into()),
        Err(ProtocolError::UnsupportedVersion {
            api_key: 18,
            version: 99,
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(Bytes::from(bytes));
    }

    #[test]
    fn mutated_client_frames_never_panic(index in 0usize..64, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let frames = golden();
        let mut frame = frames[index % frames.len()].1.to_vec();
        for (at, byte) in flips {
            let at = at % frame.len();
            frame[at] = byte;
        }
        let _ = decode_request(Bytes::from(frame));
    }
}

//! Fetch: whole record batches from each partition up to its high watermark,
//! long-polling until `min_bytes` are there or `max_wait_ms` has passed.
//! A fetch with a replica id is a follower's: it reads up to the log end and
//! tells the leader how far that follower has come.
//!
//! Fetch sessions (KIP-227) are not kept: every response has session id 0,
//! which tells clients to keep sending full fetch requests.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use crate::{Broker, BrokerError};

/// Longest long-poll honoured, whatever the client asks (its request timeout
/// is normally a little above max_wait_ms, so it never waits longer).
const WAIT_MS_MAX: u64 = 60_000;

pub async fn handle(broker: &Broker, version: i16, request: FetchRequest) -> FetchResponse {
    let wait = Duration::from_millis((request.max_wait_ms.max(0) as u64).min(WAIT_MS_MAX));
    let deadline = Instant::now() + wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let mut appends = broker.replicas.subscribe_appends();
    loop {
        // Mark the current append count as seen before reading, so an append
        // that lands during the read wakes the wait below.
        appends.borrow_and_update();
        let (response, bytes, errors) = read_once(broker, version, &request);
        if bytes >= min_bytes || errors || Instant::now() >= deadline {
            return response;
        }
        match tokio::time::timeout_at(deadline, appends.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) | Err(_) => return read_once(broker, version, &request).0,
        }
    }
}

/// One pass over the requested partitions: the response, the record bytes
/// in it, and whether any partition carries an error.
fn read_once(
    broker: &Broker,
    version: i16,
    request: &FetchRequest,
) -> (FetchResponse, usize, bool) {
    let image = broker.controller.image();
    let replica = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let now = crate::now_ms();
    let mut hw_moved = false;
    let mut remaining = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let t = if version >= 13 {
            image.topic_by_id(&topic.topic_id)
        } else {
            image.topic(topic.topic.0.as_str())
        };
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let data = PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1);
                let Some(t) = t else {
                    errors = true;
                    let code = if version >= 13 {
                        ResponseError::UnknownTopicId
                    } else {
                        ResponseError::UnknownTopicOrPartition
                    };
                    return data.with_error_code(code.code());
                };
                let Some(partition) = broker.replicas.get(&t.name, p.partition) else {
                    errors = true;
                    return data.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                };
                // Past the response limit only the first non-empty partition
                // may exceed it (KIP-74); the others come back empty.
                let limit = (p.partition_max_bytes.max(0) as usize).min(remaining);
                let result = if replica >= 0 {
                    partition
                        .replica_fetch(
                            replica,
                            p.fetch_offset,
                            p.current_leader_epoch,
                            limit.max(1),
                            now,
                        )
                        .map(|(bytes, offsets, moved)| {
                            hw_moved |= moved;
                            (bytes, offsets)
                        })
                } else if let Err(e) = partition.check_epoch(p.current_leader_epoch) {
                    Err(e)
                } else if limit == 0 && total > 0 {
                    Ok((Bytes::new(), partition.offsets()))
                } else {
                    partition.read(p.fetch_offset, limit.max(1))
                };
                match result {
                    Ok((records, offsets)) => {
                        total += records.len();
                        remaining = remaining.saturating_sub(records.len());
                        data.with_high_watermark(offsets.high_watermark)
                            .with_last_stable_offset(offsets.high_watermark)
                            .with_log_start_offset(offsets.log_start)
                            .with_aborted_transactions(
                                (request.isolation_level == 1).then(Vec::new),
                            )
                            .with_records(Some(records))
                    }
                    Err(e) => {
                        errors = true;
                        let offsets = partition.offsets();
                        data.with_error_code(BrokerError::from(e).code())
                            .with_high_watermark(offsets.high_watermark)
                            .with_last_stable_offset(offsets.high_watermark)
                            .with_log_start_offset(offsets.log_start)
                    }
                }
            })
            .collect();
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    if hw_moved {
        // acks=all producers and consumers waiting on the HW.
        broker.replicas.notify_appended();
    }
    (
        FetchResponse::default().with_responses(topics),
        total,
        errors,
    )
}

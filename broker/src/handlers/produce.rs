//! Produce: append each partition's record batches to its log (as leader);
//! with acks=all, answer once the high watermark passed every append, that
//! is once every in-sync replica has the records.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::replica::{Partition, ReplicaError};
use crate::{now_ms, Broker, BrokerError};

/// An acks=all append waiting for the ISR: where its answer sits in the
/// response, and the offset the high watermark must reach.
struct Waiting {
    topic: usize,
    slot: usize,
    partition: Arc<Partition>,
    next_offset: i64,
    min_isr: usize,
}

/// `None` when acks=0: Kafka sends no response then.
pub async fn handle(
    broker: &Broker,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    // A request-level refusal applies to every partition; decide it once.
    let refusal = if !matches!(acks, -1..=1) {
        Some((
            ResponseError::InvalidRequiredAcks,
            format!("acks must be -1, 0 or 1, got {acks}"),
        ))
    } else if request.transactional_id.is_some() {
        tracing::debug!("transactional produce refused: transactions are not implemented yet");
        Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactions are not implemented yet".to_string(),
        ))
    } else {
        None
    };
    let image = broker.controller.image();
    let now = now_ms();
    let mut appended = false;
    let mut waiting = Vec::new();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let t = if version >= 13 {
            image.topic_by_id(&topic.topic_id)
        } else {
            image.topic(topic.name.0.as_str())
        };
        let unknown = if version >= 13 {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        let min_isr = t.map_or(1, |t| broker.replicas.min_insync(&image, &t.name));
        let topic_slot = responses.len();
        let partitions = topic
            .partition_data
            .into_iter()
            .enumerate()
            .map(|(slot, p)| {
                let r = PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_base_offset(-1);
                let Some(t) = t else {
                    return r.with_error_code(unknown.code());
                };
                let Some(partition) = broker.replicas.get(&t.name, p.index) else {
                    return r.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                };
                let records = p.records.unwrap_or_default();
                let outcome = match &refusal {
                    Some((code, message)) => Err(BrokerError::invalid(*code, message.clone())),
                    None => partition
                        .append(&records, now, (acks == -1).then_some(min_isr))
                        .map_err(BrokerError::from),
                };
                match outcome {
                    Ok(info) => {
                        appended |= !info.duplicate;
                        if acks == -1 {
                            waiting.push(Waiting {
                                topic: topic_slot,
                                slot,
                                partition: partition.clone(),
                                next_offset: info.last_offset + 1,
                                min_isr,
                            });
                        }
                        r.with_base_offset(info.first_offset)
                            .with_log_append_time_ms(info.log_append_time)
                            .with_log_start_offset(info.log_start_offset)
                    }
                    Err(e) => r
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(e.message())))
                        .with_log_start_offset(partition.offsets().log_start),
                }
            })
            .collect();
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if appended {
        broker.replicas.notify_appended();
    }
    if acks == 0 {
        return None;
    }
    if !waiting.is_empty() {
        let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
        for (w, outcome) in wait_for_isr(broker, waiting, timeout).await {
            if let Err(e) = outcome {
                let r = &mut responses[w.topic].partition_responses[w.slot];
                r.error_code = e.code();
                r.error_message = Some(str_bytes(e.message()));
            }
        }
    }
    Some(ProduceResponse::default().with_responses(responses))
}

/// Waits until every append is below its partition's high watermark, the
/// partition is lost, or `timeout` passes (REQUEST_TIMED_OUT, as Kafka).
async fn wait_for_isr(
    broker: &Broker,
    mut waiting: Vec<Waiting>,
    timeout: Duration,
) -> Vec<(Waiting, Result<(), BrokerError>)> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut progress = broker.replicas.subscribe_appends();
    let mut done = Vec::with_capacity(waiting.len());
    loop {
        progress.borrow_and_update();
        let mut still = Vec::with_capacity(waiting.len());
        for w in waiting {
            match w.partition.acks_all_done(w.next_offset, w.min_isr) {
                Ok(true) => done.push((w, Ok(()))),
                Ok(false) => still.push(w),
                Err(ReplicaError::NotEnoughReplicas {
                    partition,
                    isr,
                    min,
                }) => {
                    let e = BrokerError::invalid(
                        ResponseError::NotEnoughReplicasAfterAppend,
                        format!("{partition}: the ISR shrank to {isr} (min.insync.replicas {min}) after the append"),
                    );
                    done.push((w, Err(e)));
                }
                Err(e) => done.push((w, Err(e.into()))),
            }
        }
        waiting = still;
        if waiting.is_empty() {
            return done;
        }
        let woke = tokio::time::timeout_at(deadline, progress.changed()).await;
        if !matches!(woke, Ok(Ok(()))) {
            for w in waiting {
                let e = BrokerError::invalid(
                    ResponseError::RequestTimedOut,
                    "not every in-sync replica acknowledged the records in time",
                );
                done.push((w, Err(e)));
            }
            return done;
        }
    }
}

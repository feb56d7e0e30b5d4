//! Produce: append each partition's record batches to its log.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::{now_ms, Broker, BrokerError};

/// `None` when acks=0: Kafka sends no response then.
pub fn handle(broker: &Broker, version: i16, request: ProduceRequest) -> Option<ProduceResponse> {
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
        let partitions = topic
            .partition_data
            .into_iter()
            .map(|p| {
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
                    None => partition.append(&records, now).map_err(BrokerError::from),
                };
                match outcome {
                    Ok(info) => {
                        appended |= !info.duplicate;
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
    Some(ProduceResponse::default().with_responses(responses))
}

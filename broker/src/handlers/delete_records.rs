//! DeleteRecords: advances partitions' log start offsets.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use crate::{Broker, BrokerError};

pub fn handle(
    broker: &Broker,
    _version: i16,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let Some(partition) = broker.replicas.get(t.name.0.as_str(), p.partition_index)
                    else {
                        return r.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let hw = partition.offsets().high_watermark;
                    // -1 means "up to the high watermark".
                    let offset = if p.offset == -1 { hw } else { p.offset };
                    let outcome = if offset < 0 || offset > hw {
                        Err(BrokerError::invalid(
                            ResponseError::OffsetOutOfRange,
                            format!("offset {offset} is beyond the high watermark {hw}"),
                        ))
                    } else {
                        partition.delete_records(offset).map_err(BrokerError::from)
                    };
                    match outcome {
                        Ok(low) => r.with_low_watermark(low),
                        Err(e) => r.with_error_code(e.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

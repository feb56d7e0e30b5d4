//! DescribeCluster: the cluster id, the controller and the brokers.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::Broker;

pub fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    // endpoint_type 1 = brokers, 2 = controllers (KIP-919); one node is both.
    if !matches!(request.endpoint_type, 1 | 2) {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(str_bytes(
                "endpoint_type must be 1 (brokers) or 2 (controllers)",
            )));
    }
    let brokers = super::metadata::live_brokers(broker)
        .into_iter()
        .map(|(id, host, port, rack)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(id))
                .with_host(str_bytes(host))
                .with_port(port as i32)
                .with_rack(rack.map(str_bytes))
        })
        .collect();
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(str_bytes(broker.controller.image().cluster_id.clone()))
        .with_controller_id(BrokerId(
            broker
                .controller
                .leader_id()
                .unwrap_or(broker.config.node_id),
        ))
        .with_brokers(brokers)
}

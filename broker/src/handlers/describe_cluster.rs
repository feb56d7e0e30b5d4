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
    let me = broker.config.advertised();
    let node = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.config.node_id))
        .with_host(str_bytes(me.host.clone()))
        .with_port(me.port as i32)
        .with_rack(broker.config.rack.clone().map(str_bytes));
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(str_bytes(broker.controller.image().cluster_id.clone()))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_brokers(vec![node])
}

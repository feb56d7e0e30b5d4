//! DescribeConfigs: every config of a topic or of this broker, with its value,
//! source, type and (on request) synonyms and documentation.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use super::common::str_bytes;
use crate::config::{keys, topic, Source};
use crate::Broker;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

fn source_code(s: Source) -> i8 {
    match s {
        Source::Default => SOURCE_DEFAULT,
        Source::File | Source::Override | Source::Env => SOURCE_STATIC_BROKER,
    }
}

struct Opts {
    synonyms: bool,
    docs: bool,
}

pub fn handle(
    broker: &Broker,
    _version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let opts = Opts {
        synonyms: request.include_synonyms,
        docs: request.include_documentation,
    };
    let results = request
        .resources
        .into_iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let wanted = |k: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|w| w.as_str() == k))
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                RESOURCE_TOPIC => match describe_topic(broker, &name, &opts, &wanted) {
                    Some(configs) => result.with_configs(configs),
                    None => error(
                        result,
                        ResponseError::UnknownTopicOrPartition,
                        format!("topic '{name}' does not exist"),
                    ),
                },
                RESOURCE_BROKER if name.is_empty() || name == broker.config.node_id.to_string() => {
                    result.with_configs(describe_broker(broker, &opts, &wanted))
                }
                RESOURCE_BROKER => error(
                    result,
                    ResponseError::InvalidRequest,
                    format!("this is broker {}, not '{name}'", broker.config.node_id),
                ),
                other => error(
                    result,
                    ResponseError::InvalidRequest,
                    format!("resource type {other} is not supported"),
                ),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn error(
    result: DescribeConfigsResult,
    code: ResponseError,
    message: String,
) -> DescribeConfigsResult {
    result
        .with_error_code(code.code())
        .with_error_message(Some(str_bytes(message)))
}

fn describe_topic(
    broker: &Broker,
    name: &str,
    opts: &Opts,
    wanted: &dyn Fn(&str) -> bool,
) -> Option<Vec<DescribeConfigsResourceResult>> {
    let image = broker.controller.image();
    let t = image.topic(name)?;
    let configs = topic::TOPIC_KEYS
        .iter()
        .filter(|k| wanted(k.name))
        .map(|k| {
            let (default, default_source, broker_key) =
                topic::broker_default(&broker.config, k.name);
            let mut synonyms = Vec::new();
            let (value, source) = match t.configs.get(k.name) {
                Some(v) => {
                    synonyms.push(synonym(k.name, v, SOURCE_DYNAMIC_TOPIC));
                    (v.clone(), SOURCE_DYNAMIC_TOPIC)
                }
                None => (default.clone(), source_code(default_source)),
            };
            if !broker_key.is_empty() {
                synonyms.push(synonym(broker_key, &default, source_code(default_source)));
            }
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(k.name))
                .with_value(Some(str_bytes(value)))
                .with_config_source(source)
                .with_config_type(k.config_type)
                .with_synonyms(if opts.synonyms { synonyms } else { Vec::new() })
                .with_documentation(opts.docs.then(|| str_bytes(k.doc)))
        })
        .collect();
    Some(configs)
}

fn describe_broker(
    broker: &Broker,
    opts: &Opts,
    wanted: &dyn Fn(&str) -> bool,
) -> Vec<DescribeConfigsResourceResult> {
    keys::KEYS
        .iter()
        .filter(|k| wanted(k.name))
        .map(|k| {
            let (value, source) = match broker.config.get(k.name) {
                Some((v, s)) => (Some(v.to_string()), source_code(s)),
                None => (None, SOURCE_DEFAULT),
            };
            let synonyms = match (&value, opts.synonyms) {
                (Some(v), true) => vec![synonym(k.name, v, source)],
                _ => Vec::new(),
            };
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(k.name))
                .with_value(value.map(str_bytes))
                .with_config_source(source)
                .with_read_only(true)
                .with_config_type(config_type(k.kind))
                .with_synonyms(synonyms)
                .with_documentation(opts.docs.then(|| str_bytes(k.doc)))
        })
        .collect()
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str_bytes(name))
        .with_value(Some(str_bytes(value)))
        .with_source(source)
}

fn config_type(kind: keys::Kind) -> i8 {
    match kind {
        keys::Kind::Bool => 1,
        keys::Kind::Str => 2,
        keys::Kind::Int => 3,
        keys::Kind::Long => 5,
        keys::Kind::Double => 6,
        keys::Kind::List => 7,
    }
}

//! Topic administration through librdkafka's admin API: create, list,
//! describe and alter configs, add partitions, delete, and the error codes
//! for bad CreateTopics requests.

use std::time::{Duration, Instant};

use millrace_tests::clients::{admin, admin_opts, bounded, topic_name, wait_for_leaders};
use millrace_tests::BrokerProcess;
use rdkafka::admin::{
    AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::types::RDKafkaErrorCode;

/// Topic names in a full Metadata request (no auto-creation).
fn listed_topics(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
) -> Vec<String> {
    let md = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("Metadata for all topics");
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

async fn describe_retention(
    admin: &rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>,
    topic: &str,
) -> (Option<String>, String) {
    let results = bounded(
        "DescribeConfigs",
        admin.describe_configs([&ResourceSpecifier::Topic(topic)], &admin_opts()),
    )
    .await
    .expect("DescribeConfigs request");
    assert_eq!(results.len(), 1);
    let resource = results[0].as_ref().expect("DescribeConfigs result");
    let entry = resource
        .get("retention.ms")
        .expect("retention.ms is described");
    (entry.value.clone(), format!("{:?}", entry.source))
}

#[tokio::test]
async fn topic_lifecycle_create_list_configs_partitions_delete() {
    let broker = BrokerProcess::start(&[]);
    let admin = admin(&broker);
    let topic = topic_name("admin");

    let new = NewTopic::new(&topic, 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let created = bounded("CreateTopics", admin.create_topics([&new], &admin_opts()))
        .await
        .expect("CreateTopics request");
    assert_eq!(created, vec![Ok(topic.clone())]);
    wait_for_leaders(&admin, &topic, 3);
    assert!(listed_topics(&admin).contains(&topic));

    let (value, source) = describe_retention(&admin, &topic).await;
    assert_eq!(value.as_deref(), Some("3600000"));
    assert_eq!(
        source,
        format!("{:?}", ConfigSource::DynamicTopic),
        "a create-time config is a topic override"
    );

    let alter = AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("retention.ms", "7200000");
    let altered = bounded("AlterConfigs", admin.alter_configs([&alter], &admin_opts()))
        .await
        .expect("AlterConfigs request");
    assert_eq!(altered.len(), 1);
    assert!(altered[0].is_ok(), "AlterConfigs: {:?}", altered[0]);
    let (value, _) = describe_retention(&admin, &topic).await;
    assert_eq!(value.as_deref(), Some("7200000"));

    let more = NewPartitions::new(&topic, 5);
    let grown = bounded(
        "CreatePartitions",
        admin.create_partitions([&more], &admin_opts()),
    )
    .await
    .expect("CreatePartitions request");
    assert_eq!(grown, vec![Ok(topic.clone())]);
    wait_for_leaders(&admin, &topic, 5);

    let deleted = bounded(
        "DeleteTopics",
        admin.delete_topics(&[&topic], &admin_opts()),
    )
    .await
    .expect("DeleteTopics request");
    assert_eq!(deleted, vec![Ok(topic.clone())]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while listed_topics(&admin).contains(&topic) {
        assert!(
            Instant::now() < deadline,
            "{topic} still listed after delete"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn create_error(broker: &BrokerProcess, name: &str, partitions: i32) -> RDKafkaErrorCode {
    let admin = admin(broker);
    let new = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = bounded("CreateTopics", admin.create_topics([&new], &admin_opts()))
        .await
        .expect("CreateTopics request");
    assert_eq!(results.len(), 1);
    match &results[0] {
        Ok(t) => panic!("CreateTopics {t:?} with {partitions} partitions succeeded"),
        Err((_, code)) => *code,
    }
}

#[tokio::test]
async fn create_existing_topic_is_topic_already_exists() {
    let broker = BrokerProcess::start(&[]);
    let topic = topic_name("exists");
    millrace_tests::clients::create_topic(&broker, &topic, 1).await;
    assert_eq!(
        create_error(&broker, &topic, 1).await,
        RDKafkaErrorCode::TopicAlreadyExists
    );
}

#[tokio::test]
async fn invalid_topic_names_are_invalid_topic() {
    let broker = BrokerProcess::start(&[]);
    let long = "x".repeat(250);
    for name in ["bad name!", long.as_str(), "a/b", ".", ".."] {
        assert_eq!(
            create_error(&broker, name, 1).await,
            RDKafkaErrorCode::InvalidTopic,
            "name {name:?}"
        );
    }
    let admin = admin(&broker);
    let listed = listed_topics(&admin);
    assert!(
        !listed.iter().any(|t| t.contains('!') || t.contains('/')),
        "{listed:?}"
    );
}

#[tokio::test]
async fn zero_partitions_is_invalid_partitions() {
    let broker = BrokerProcess::start(&[]);
    assert_eq!(
        create_error(&broker, &topic_name("zero"), 0).await,
        RDKafkaErrorCode::InvalidPartitions
    );
}

#[tokio::test]
async fn broker_configs_describe_the_running_values() {
    let broker = BrokerProcess::start(&["log.retention.hours=42"]);
    let admin = admin(&broker);
    let results = bounded(
        "DescribeConfigs",
        admin.describe_configs([&ResourceSpecifier::Broker(1)], &admin_opts()),
    )
    .await
    .expect("DescribeConfigs request");
    let resource = results[0].as_ref().expect("broker 1 is described");
    let value = |k: &str| resource.get(k).and_then(|e| e.value.clone());
    assert_eq!(value("num.partitions").as_deref(), Some("4"));
    assert_eq!(value("log.retention.hours").as_deref(), Some("42"));
}

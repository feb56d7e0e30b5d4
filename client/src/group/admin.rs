//! Group admin calls on [`Client`]: find the coordinator, list, describe and
//! delete groups, read and overwrite committed offsets (what
//! `kafka-consumer-groups` does).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest,
};

use super::protocol::{Assignment, Subscription};
use super::rpc::{self, str_bytes, MemberIdentityRef, Offsets};
use crate::{BrokerInfo, Client, ClientError, Connection};

const GROUP_ID_NOT_FOUND: i16 = 69;

/// One row of ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    /// Empty when the broker is older than ListGroups v4.
    pub state: String,
    pub protocol_type: String,
}

/// A group member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded when the group speaks the "consumer" protocol.
    pub subscription: Option<Subscription>,
    pub assignment: Option<Assignment>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// Kafka's names: Empty, PreparingRebalance, CompletingRebalance, Stable, Dead.
    pub state: String,
    pub protocol_type: String,
    /// The chosen assignor, e.g. "range".
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    pub coordinator: BrokerInfo,
}

impl GroupDescription {
    /// Whether offsets may be changed from outside (no live members).
    pub fn is_inactive(&self) -> bool {
        self.members.is_empty() && matches!(self.state.as_str(), "Empty" | "Dead")
    }
}

impl Client {
    /// The broker coordinating `group`.
    pub async fn find_coordinator(&self, group: &str) -> Result<BrokerInfo, ClientError> {
        self.with_retries(|| async {
            let conn = self.any_connection().await?;
            rpc::find_coordinator(&conn, group).await
        })
        .await
    }

    /// A pooled connection to `group`'s coordinator (for admin calls).
    pub async fn coordinator_connection(
        &self,
        group: &str,
    ) -> Result<(BrokerInfo, Arc<Connection>), ClientError> {
        let info = self.find_coordinator(group).await?;
        if !self.metadata().brokers.contains_key(&info.node_id) {
            self.refresh_metadata().await?;
        }
        if self.metadata().brokers.contains_key(&info.node_id) {
            let conn = self.broker_connection(info.node_id).await?;
            return Ok((info, conn));
        }
        let conn = Connection::connect(&info.addr(), self.config().connection.clone()).await?;
        Ok((info, Arc::new(conn)))
    }

    /// Groups on every broker, sorted by id; `states` filters (v4+) when not empty.
    pub async fn list_groups(&self, states: &[String]) -> Result<Vec<GroupListing>, ClientError> {
        let metadata = self.refresh_metadata().await?;
        let mut out = BTreeMap::new();
        for &node_id in metadata.brokers.keys() {
            let conn = self.broker_connection(node_id).await?;
            let version = conn.version(ApiKey::ListGroups)?;
            let mut request = ListGroupsRequest::default();
            if version >= 4 {
                request.states_filter = states.iter().map(|s| str_bytes(s)).collect();
            }
            let response = conn.send(request).await?;
            ClientError::check(
                response.error_code,
                format!("list groups on broker {node_id}"),
                None,
            )?;
            for g in response.groups {
                let listing = GroupListing {
                    group_id: g.group_id.0.to_string(),
                    state: g.group_state.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                };
                // Old brokers ignore the filter: apply it here too.
                if version < 4
                    || states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(&listing.state))
                {
                    out.insert(listing.group_id.clone(), listing);
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// State, protocol and members of one group (state "Dead" if it does not exist).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription, ClientError> {
        self.with_retries(|| self.describe_group_once(group)).await
    }

    async fn describe_group_once(&self, group: &str) -> Result<GroupDescription, ClientError> {
        let (coordinator, conn) = self.coordinator_connection(group).await?;
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
        let response = conn.send(request).await?;
        let g = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| {
                ClientError::UnexpectedResponse(format!("DescribeGroups: no group '{group}'"))
            })?;
        // DescribeGroups v6+ (KIP-1043) answers GROUP_ID_NOT_FOUND where older
        // versions said "Dead"; both mean the same here.
        if g.error_code == GROUP_ID_NOT_FOUND {
            return Ok(GroupDescription {
                group_id: group.to_owned(),
                state: "Dead".to_owned(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
                coordinator,
            });
        }
        ClientError::check(
            g.error_code,
            format!("describe group '{group}'"),
            g.error_message.as_deref(),
        )?;
        let consumer = g.protocol_type.as_str() == "consumer";
        let members = g
            .members
            .into_iter()
            .map(|m| MemberDescription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                subscription: consumer
                    .then(|| Subscription::decode(m.member_metadata).ok())
                    .flatten(),
                assignment: consumer
                    .then(|| Assignment::decode(m.member_assignment).ok())
                    .flatten(),
            })
            .collect();
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
            coordinator,
        })
    }

    /// Deletes groups without members (and their committed offsets).
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<(), ClientError> {
        for group in groups {
            self.with_retries(|| async {
                let (_, conn) = self.coordinator_connection(group).await?;
                let request = DeleteGroupsRequest::default()
                    .with_groups_names(vec![GroupId(str_bytes(group))]);
                let response = conn.send(request).await?;
                for r in &response.results {
                    ClientError::check(
                        r.error_code,
                        format!("delete group '{}'", r.group_id.0),
                        None,
                    )?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Committed offsets of `group`, for `topics` or for everything when `None`.
    pub async fn committed_offsets(
        &self,
        group: &str,
        topics: Option<&BTreeMap<String, Vec<i32>>>,
    ) -> Result<Offsets, ClientError> {
        self.with_retries(|| async {
            let (_, conn) = self.coordinator_connection(group).await?;
            rpc::fetch_offsets(&conn, group, topics).await
        })
        .await
    }

    /// Overwrites committed offsets of a group without members (an admin
    /// commit: generation -1, no member id; the coordinator refuses it while
    /// the group has members).
    pub async fn alter_committed_offsets(
        &self,
        group: &str,
        offsets: &Offsets,
    ) -> Result<(), ClientError> {
        let who = MemberIdentityRef {
            group_id: group,
            generation_id: -1,
            member_id: "",
            group_instance_id: None,
        };
        self.with_retries(|| async {
            let (_, conn) = self.coordinator_connection(group).await?;
            rpc::commit_offsets(&conn, &who, offsets).await
        })
        .await
    }
}

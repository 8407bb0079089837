//! Metadata answers: brokers, topics (auto-created when allowed) and leaders.

use super::MockCluster;
use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::metadata::{
    MetadataRequest, MetadataResponse, MetadataResponseBroker, MetadataResponsePartition,
    MetadataResponseTopic,
};

impl MockCluster {
    pub(super) fn metadata(&mut self, req: &MetadataRequest, version: i16) -> MetadataResponse {
        let brokers = self
            .brokers
            .iter()
            .enumerate()
            .map(|(i, b)| MetadataResponseBroker {
                node_id: i as i32,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
                ..Default::default()
            })
            .collect();
        let mut topics = Vec::new();
        match &req.topics {
            None => {
                for name in self.topics.keys() {
                    topics.push(self.topic_metadata(name, version));
                }
            }
            Some(requested) => {
                for t in requested {
                    let name = match &t.name {
                        Some(n) => n.clone(),
                        None => match self.topics.iter().find(|(_, v)| v.id == t.topic_id) {
                            Some((n, _)) => n.clone(),
                            None => {
                                topics.push(MetadataResponseTopic {
                                    error_code: ErrorCode::UnknownTopicId.code(),
                                    name: None,
                                    topic_id: t.topic_id,
                                    ..Default::default()
                                });
                                continue;
                            }
                        },
                    };
                    if !self.topics.contains_key(&name)
                        && self.config.auto_create_topics
                        && req.allow_auto_topic_creation
                    {
                        let n = self.config.default_partitions;
                        if let Err(e) = self.create_topic(&name, n) {
                            topics.push(MetadataResponseTopic {
                                error_code: e.code(),
                                name: Some(name),
                                ..Default::default()
                            });
                            continue;
                        }
                    }
                    if self.topics.contains_key(&name) {
                        topics.push(self.topic_metadata(&name, version));
                    } else {
                        topics.push(MetadataResponseTopic {
                            error_code: ErrorCode::UnknownTopicOrPartition.code(),
                            name: Some(name),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        MetadataResponse {
            throttle_time_ms: 0,
            brokers,
            cluster_id: Some(self.config.cluster_id.clone()),
            controller_id: 0,
            topics,
            ..Default::default()
        }
    }

    fn topic_metadata(&self, name: &str, version: i16) -> MetadataResponseTopic {
        let t = &self.topics[name];
        MetadataResponseTopic {
            error_code: 0,
            name: Some(name.to_owned()),
            topic_id: if version >= 10 { t.id } else { [0; 16] },
            is_internal: false,
            partitions: t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| MetadataResponsePartition {
                    error_code: 0,
                    partition_index: i as i32,
                    leader_id: p.leader,
                    leader_epoch: if version >= 7 { p.leader_epoch } else { -1 },
                    replica_nodes: vec![p.leader],
                    isr_nodes: vec![p.leader],
                    offline_replicas: Vec::new(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

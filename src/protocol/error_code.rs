//! Kafka's error codes: the full table of `Errors.java` (Kafka 4.x), with
//! Kafka's names and whether Kafka treats each error as retriable (its exception
//! class extends `RetriableException`).
//!
//! Messages keep error codes as raw `i16` so that codes this table does not know
//! survive a decode/encode round trip; callers map them with [`ErrorCode::from_code`].

use std::fmt;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, $retriable:literal;)*) => {
        /// A Kafka error code (`0` is [`ErrorCode::None`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            /// NONE (0): no error.
            None,
            $($(#[$doc])* $variant,)*
            /// A code this table does not know (kept as received).
            Unknown(i16),
        }

        impl ErrorCode {
            /// Every known code (without `None` and `Unknown`), in code order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// Kafka's numeric code.
            pub const fn code(self) -> i16 {
                match self {
                    ErrorCode::None => 0,
                    $(ErrorCode::$variant => $code,)*
                    ErrorCode::Unknown(c) => c,
                }
            }

            /// The error for a numeric code: `None` for 0, `Unknown(code)` for codes not in the table.
            pub const fn from_code(code: i16) -> ErrorCode {
                match code {
                    0 => ErrorCode::None,
                    $($code => ErrorCode::$variant,)*
                    c => ErrorCode::Unknown(c),
                }
            }

            /// Kafka's UPPER_SNAKE name (`"UNKNOWN"` for unknown codes).
            pub const fn name(self) -> &'static str {
                match self {
                    ErrorCode::None => "NONE",
                    $(ErrorCode::$variant => $name,)*
                    ErrorCode::Unknown(_) => "UNKNOWN",
                }
            }

            /// True when Kafka's exception for this code is a `RetriableException`.
            ///
            /// Unknown codes are not retriable here (the Java client maps them to
            /// `UNKNOWN_SERVER_ERROR`, which is not retriable either).
            pub const fn is_retriable(self) -> bool {
                match self {
                    ErrorCode::None => false,
                    $(ErrorCode::$variant => $retriable,)*
                    ErrorCode::Unknown(_) => false,
                }
            }
        }
    };
}

error_codes! {
    /// UNKNOWN_SERVER_ERROR (-1).
    UnknownServerError = -1, "UNKNOWN_SERVER_ERROR", false;
    /// OFFSET_OUT_OF_RANGE (1).
    OffsetOutOfRange = 1, "OFFSET_OUT_OF_RANGE", false;
    /// CORRUPT_MESSAGE (2), retriable.
    CorruptMessage = 2, "CORRUPT_MESSAGE", true;
    /// UNKNOWN_TOPIC_OR_PARTITION (3), retriable.
    UnknownTopicOrPartition = 3, "UNKNOWN_TOPIC_OR_PARTITION", true;
    /// INVALID_FETCH_SIZE (4).
    InvalidFetchSize = 4, "INVALID_FETCH_SIZE", false;
    /// LEADER_NOT_AVAILABLE (5), retriable.
    LeaderNotAvailable = 5, "LEADER_NOT_AVAILABLE", true;
    /// NOT_LEADER_OR_FOLLOWER (6), retriable.
    NotLeaderOrFollower = 6, "NOT_LEADER_OR_FOLLOWER", true;
    /// REQUEST_TIMED_OUT (7), retriable.
    RequestTimedOut = 7, "REQUEST_TIMED_OUT", true;
    /// BROKER_NOT_AVAILABLE (8).
    BrokerNotAvailable = 8, "BROKER_NOT_AVAILABLE", false;
    /// REPLICA_NOT_AVAILABLE (9), retriable.
    ReplicaNotAvailable = 9, "REPLICA_NOT_AVAILABLE", true;
    /// MESSAGE_TOO_LARGE (10).
    MessageTooLarge = 10, "MESSAGE_TOO_LARGE", false;
    /// STALE_CONTROLLER_EPOCH (11).
    StaleControllerEpoch = 11, "STALE_CONTROLLER_EPOCH", false;
    /// OFFSET_METADATA_TOO_LARGE (12).
    OffsetMetadataTooLarge = 12, "OFFSET_METADATA_TOO_LARGE", false;
    /// NETWORK_EXCEPTION (13), retriable.
    NetworkException = 13, "NETWORK_EXCEPTION", true;
    /// COORDINATOR_LOAD_IN_PROGRESS (14), retriable.
    CoordinatorLoadInProgress = 14, "COORDINATOR_LOAD_IN_PROGRESS", true;
    /// COORDINATOR_NOT_AVAILABLE (15), retriable.
    CoordinatorNotAvailable = 15, "COORDINATOR_NOT_AVAILABLE", true;
    /// NOT_COORDINATOR (16), retriable.
    NotCoordinator = 16, "NOT_COORDINATOR", true;
    /// INVALID_TOPIC_EXCEPTION (17).
    InvalidTopicException = 17, "INVALID_TOPIC_EXCEPTION", false;
    /// RECORD_LIST_TOO_LARGE (18).
    RecordListTooLarge = 18, "RECORD_LIST_TOO_LARGE", false;
    /// NOT_ENOUGH_REPLICAS (19), retriable.
    NotEnoughReplicas = 19, "NOT_ENOUGH_REPLICAS", true;
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND (20), retriable.
    NotEnoughReplicasAfterAppend = 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true;
    /// INVALID_REQUIRED_ACKS (21).
    InvalidRequiredAcks = 21, "INVALID_REQUIRED_ACKS", false;
    /// ILLEGAL_GENERATION (22).
    IllegalGeneration = 22, "ILLEGAL_GENERATION", false;
    /// INCONSISTENT_GROUP_PROTOCOL (23).
    InconsistentGroupProtocol = 23, "INCONSISTENT_GROUP_PROTOCOL", false;
    /// INVALID_GROUP_ID (24).
    InvalidGroupId = 24, "INVALID_GROUP_ID", false;
    /// UNKNOWN_MEMBER_ID (25).
    UnknownMemberId = 25, "UNKNOWN_MEMBER_ID", false;
    /// INVALID_SESSION_TIMEOUT (26).
    InvalidSessionTimeout = 26, "INVALID_SESSION_TIMEOUT", false;
    /// REBALANCE_IN_PROGRESS (27).
    RebalanceInProgress = 27, "REBALANCE_IN_PROGRESS", false;
    /// INVALID_COMMIT_OFFSET_SIZE (28).
    InvalidCommitOffsetSize = 28, "INVALID_COMMIT_OFFSET_SIZE", false;
    /// TOPIC_AUTHORIZATION_FAILED (29).
    TopicAuthorizationFailed = 29, "TOPIC_AUTHORIZATION_FAILED", false;
    /// GROUP_AUTHORIZATION_FAILED (30).
    GroupAuthorizationFailed = 30, "GROUP_AUTHORIZATION_FAILED", false;
    /// CLUSTER_AUTHORIZATION_FAILED (31).
    ClusterAuthorizationFailed = 31, "CLUSTER_AUTHORIZATION_FAILED", false;
    /// INVALID_TIMESTAMP (32).
    InvalidTimestamp = 32, "INVALID_TIMESTAMP", false;
    /// UNSUPPORTED_SASL_MECHANISM (33).
    UnsupportedSaslMechanism = 33, "UNSUPPORTED_SASL_MECHANISM", false;
    /// ILLEGAL_SASL_STATE (34).
    IllegalSaslState = 34, "ILLEGAL_SASL_STATE", false;
    /// UNSUPPORTED_VERSION (35).
    UnsupportedVersion = 35, "UNSUPPORTED_VERSION", false;
    /// TOPIC_ALREADY_EXISTS (36).
    TopicAlreadyExists = 36, "TOPIC_ALREADY_EXISTS", false;
    /// INVALID_PARTITIONS (37).
    InvalidPartitions = 37, "INVALID_PARTITIONS", false;
    /// INVALID_REPLICATION_FACTOR (38).
    InvalidReplicationFactor = 38, "INVALID_REPLICATION_FACTOR", false;
    /// INVALID_REPLICA_ASSIGNMENT (39).
    InvalidReplicaAssignment = 39, "INVALID_REPLICA_ASSIGNMENT", false;
    /// INVALID_CONFIG (40).
    InvalidConfig = 40, "INVALID_CONFIG", false;
    /// NOT_CONTROLLER (41), retriable.
    NotController = 41, "NOT_CONTROLLER", true;
    /// INVALID_REQUEST (42).
    InvalidRequest = 42, "INVALID_REQUEST", false;
    /// UNSUPPORTED_FOR_MESSAGE_FORMAT (43).
    UnsupportedForMessageFormat = 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false;
    /// POLICY_VIOLATION (44).
    PolicyViolation = 44, "POLICY_VIOLATION", false;
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    OutOfOrderSequenceNumber = 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false;
    /// DUPLICATE_SEQUENCE_NUMBER (46).
    DuplicateSequenceNumber = 46, "DUPLICATE_SEQUENCE_NUMBER", false;
    /// INVALID_PRODUCER_EPOCH (47).
    InvalidProducerEpoch = 47, "INVALID_PRODUCER_EPOCH", false;
    /// INVALID_TXN_STATE (48).
    InvalidTxnState = 48, "INVALID_TXN_STATE", false;
    /// INVALID_PRODUCER_ID_MAPPING (49).
    InvalidProducerIdMapping = 49, "INVALID_PRODUCER_ID_MAPPING", false;
    /// INVALID_TRANSACTION_TIMEOUT (50).
    InvalidTransactionTimeout = 50, "INVALID_TRANSACTION_TIMEOUT", false;
    /// CONCURRENT_TRANSACTIONS (51), retriable.
    ConcurrentTransactions = 51, "CONCURRENT_TRANSACTIONS", true;
    /// TRANSACTION_COORDINATOR_FENCED (52).
    TransactionCoordinatorFenced = 52, "TRANSACTION_COORDINATOR_FENCED", false;
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
    TransactionalIdAuthorizationFailed = 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false;
    /// SECURITY_DISABLED (54).
    SecurityDisabled = 54, "SECURITY_DISABLED", false;
    /// OPERATION_NOT_ATTEMPTED (55).
    OperationNotAttempted = 55, "OPERATION_NOT_ATTEMPTED", false;
    /// KAFKA_STORAGE_ERROR (56), retriable.
    KafkaStorageError = 56, "KAFKA_STORAGE_ERROR", true;
    /// LOG_DIR_NOT_FOUND (57).
    LogDirNotFound = 57, "LOG_DIR_NOT_FOUND", false;
    /// SASL_AUTHENTICATION_FAILED (58).
    SaslAuthenticationFailed = 58, "SASL_AUTHENTICATION_FAILED", false;
    /// UNKNOWN_PRODUCER_ID (59).
    UnknownProducerId = 59, "UNKNOWN_PRODUCER_ID", false;
    /// REASSIGNMENT_IN_PROGRESS (60).
    ReassignmentInProgress = 60, "REASSIGNMENT_IN_PROGRESS", false;
    /// DELEGATION_TOKEN_AUTH_DISABLED (61).
    DelegationTokenAuthDisabled = 61, "DELEGATION_TOKEN_AUTH_DISABLED", false;
    /// DELEGATION_TOKEN_NOT_FOUND (62).
    DelegationTokenNotFound = 62, "DELEGATION_TOKEN_NOT_FOUND", false;
    /// DELEGATION_TOKEN_OWNER_MISMATCH (63).
    DelegationTokenOwnerMismatch = 63, "DELEGATION_TOKEN_OWNER_MISMATCH", false;
    /// DELEGATION_TOKEN_REQUEST_NOT_ALLOWED (64).
    DelegationTokenRequestNotAllowed = 64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false;
    /// DELEGATION_TOKEN_AUTHORIZATION_FAILED (65).
    DelegationTokenAuthorizationFailed = 65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false;
    /// DELEGATION_TOKEN_EXPIRED (66).
    DelegationTokenExpired = 66, "DELEGATION_TOKEN_EXPIRED", false;
    /// INVALID_PRINCIPAL_TYPE (67).
    InvalidPrincipalType = 67, "INVALID_PRINCIPAL_TYPE", false;
    /// NON_EMPTY_GROUP (68).
    NonEmptyGroup = 68, "NON_EMPTY_GROUP", false;
    /// GROUP_ID_NOT_FOUND (69).
    GroupIdNotFound = 69, "GROUP_ID_NOT_FOUND", false;
    /// FETCH_SESSION_ID_NOT_FOUND (70), retriable.
    FetchSessionIdNotFound = 70, "FETCH_SESSION_ID_NOT_FOUND", true;
    /// INVALID_FETCH_SESSION_EPOCH (71), retriable.
    InvalidFetchSessionEpoch = 71, "INVALID_FETCH_SESSION_EPOCH", true;
    /// LISTENER_NOT_FOUND (72), retriable.
    ListenerNotFound = 72, "LISTENER_NOT_FOUND", true;
    /// TOPIC_DELETION_DISABLED (73).
    TopicDeletionDisabled = 73, "TOPIC_DELETION_DISABLED", false;
    /// FENCED_LEADER_EPOCH (74), retriable.
    FencedLeaderEpoch = 74, "FENCED_LEADER_EPOCH", true;
    /// UNKNOWN_LEADER_EPOCH (75), retriable.
    UnknownLeaderEpoch = 75, "UNKNOWN_LEADER_EPOCH", true;
    /// UNSUPPORTED_COMPRESSION_TYPE (76).
    UnsupportedCompressionType = 76, "UNSUPPORTED_COMPRESSION_TYPE", false;
    /// STALE_BROKER_EPOCH (77).
    StaleBrokerEpoch = 77, "STALE_BROKER_EPOCH", false;
    /// OFFSET_NOT_AVAILABLE (78), retriable.
    OffsetNotAvailable = 78, "OFFSET_NOT_AVAILABLE", true;
    /// MEMBER_ID_REQUIRED (79).
    MemberIdRequired = 79, "MEMBER_ID_REQUIRED", false;
    /// PREFERRED_LEADER_NOT_AVAILABLE (80), retriable.
    PreferredLeaderNotAvailable = 80, "PREFERRED_LEADER_NOT_AVAILABLE", true;
    /// GROUP_MAX_SIZE_REACHED (81).
    GroupMaxSizeReached = 81, "GROUP_MAX_SIZE_REACHED", false;
    /// FENCED_INSTANCE_ID (82).
    FencedInstanceId = 82, "FENCED_INSTANCE_ID", false;
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE (83), retriable.
    EligibleLeadersNotAvailable = 83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true;
    /// ELECTION_NOT_NEEDED (84), retriable.
    ElectionNotNeeded = 84, "ELECTION_NOT_NEEDED", true;
    /// NO_REASSIGNMENT_IN_PROGRESS (85).
    NoReassignmentInProgress = 85, "NO_REASSIGNMENT_IN_PROGRESS", false;
    /// GROUP_SUBSCRIBED_TO_TOPIC (86).
    GroupSubscribedToTopic = 86, "GROUP_SUBSCRIBED_TO_TOPIC", false;
    /// INVALID_RECORD (87).
    InvalidRecord = 87, "INVALID_RECORD", false;
    /// UNSTABLE_OFFSET_COMMIT (88), retriable.
    UnstableOffsetCommit = 88, "UNSTABLE_OFFSET_COMMIT", true;
    /// THROTTLING_QUOTA_EXCEEDED (89), retriable.
    ThrottlingQuotaExceeded = 89, "THROTTLING_QUOTA_EXCEEDED", true;
    /// PRODUCER_FENCED (90).
    ProducerFenced = 90, "PRODUCER_FENCED", false;
    /// RESOURCE_NOT_FOUND (91).
    ResourceNotFound = 91, "RESOURCE_NOT_FOUND", false;
    /// DUPLICATE_RESOURCE (92).
    DuplicateResource = 92, "DUPLICATE_RESOURCE", false;
    /// UNACCEPTABLE_CREDENTIAL (93).
    UnacceptableCredential = 93, "UNACCEPTABLE_CREDENTIAL", false;
    /// INCONSISTENT_VOTER_SET (94).
    InconsistentVoterSet = 94, "INCONSISTENT_VOTER_SET", false;
    /// INVALID_UPDATE_VERSION (95).
    InvalidUpdateVersion = 95, "INVALID_UPDATE_VERSION", false;
    /// FEATURE_UPDATE_FAILED (96).
    FeatureUpdateFailed = 96, "FEATURE_UPDATE_FAILED", false;
    /// PRINCIPAL_DESERIALIZATION_FAILURE (97).
    PrincipalDeserializationFailure = 97, "PRINCIPAL_DESERIALIZATION_FAILURE", false;
    /// SNAPSHOT_NOT_FOUND (98).
    SnapshotNotFound = 98, "SNAPSHOT_NOT_FOUND", false;
    /// POSITION_OUT_OF_RANGE (99).
    PositionOutOfRange = 99, "POSITION_OUT_OF_RANGE", false;
    /// UNKNOWN_TOPIC_ID (100), retriable.
    UnknownTopicId = 100, "UNKNOWN_TOPIC_ID", true;
    /// DUPLICATE_BROKER_REGISTRATION (101).
    DuplicateBrokerRegistration = 101, "DUPLICATE_BROKER_REGISTRATION", false;
    /// BROKER_ID_NOT_REGISTERED (102).
    BrokerIdNotRegistered = 102, "BROKER_ID_NOT_REGISTERED", false;
    /// INCONSISTENT_TOPIC_ID (103), retriable.
    InconsistentTopicId = 103, "INCONSISTENT_TOPIC_ID", true;
    /// INCONSISTENT_CLUSTER_ID (104).
    InconsistentClusterId = 104, "INCONSISTENT_CLUSTER_ID", false;
    /// TRANSACTIONAL_ID_NOT_FOUND (105).
    TransactionalIdNotFound = 105, "TRANSACTIONAL_ID_NOT_FOUND", false;
    /// FETCH_SESSION_TOPIC_ID_ERROR (106), retriable.
    FetchSessionTopicIdError = 106, "FETCH_SESSION_TOPIC_ID_ERROR", true;
    /// INELIGIBLE_REPLICA (107).
    IneligibleReplica = 107, "INELIGIBLE_REPLICA", false;
    /// NEW_LEADER_ELECTED (108).
    NewLeaderElected = 108, "NEW_LEADER_ELECTED", false;
    /// OFFSET_MOVED_TO_TIERED_STORAGE (109).
    OffsetMovedToTieredStorage = 109, "OFFSET_MOVED_TO_TIERED_STORAGE", false;
    /// FENCED_MEMBER_EPOCH (110).
    FencedMemberEpoch = 110, "FENCED_MEMBER_EPOCH", false;
    /// UNRELEASED_INSTANCE_ID (111).
    UnreleasedInstanceId = 111, "UNRELEASED_INSTANCE_ID", false;
    /// UNSUPPORTED_ASSIGNOR (112).
    UnsupportedAssignor = 112, "UNSUPPORTED_ASSIGNOR", false;
    /// STALE_MEMBER_EPOCH (113).
    StaleMemberEpoch = 113, "STALE_MEMBER_EPOCH", false;
    /// MISMATCHED_ENDPOINT_TYPE (114).
    MismatchedEndpointType = 114, "MISMATCHED_ENDPOINT_TYPE", false;
    /// UNSUPPORTED_ENDPOINT_TYPE (115).
    UnsupportedEndpointType = 115, "UNSUPPORTED_ENDPOINT_TYPE", false;
    /// UNKNOWN_CONTROLLER_ID (116).
    UnknownControllerId = 116, "UNKNOWN_CONTROLLER_ID", false;
    /// UNKNOWN_SUBSCRIPTION_ID (117).
    UnknownSubscriptionId = 117, "UNKNOWN_SUBSCRIPTION_ID", false;
    /// TELEMETRY_TOO_LARGE (118).
    TelemetryTooLarge = 118, "TELEMETRY_TOO_LARGE", false;
    /// INVALID_REGISTRATION (119).
    InvalidRegistration = 119, "INVALID_REGISTRATION", false;
    /// TRANSACTION_ABORTABLE (120).
    TransactionAbortable = 120, "TRANSACTION_ABORTABLE", false;
    /// INVALID_RECORD_STATE (121).
    InvalidRecordState = 121, "INVALID_RECORD_STATE", false;
    /// SHARE_SESSION_NOT_FOUND (122), retriable.
    ShareSessionNotFound = 122, "SHARE_SESSION_NOT_FOUND", true;
    /// INVALID_SHARE_SESSION_EPOCH (123), retriable.
    InvalidShareSessionEpoch = 123, "INVALID_SHARE_SESSION_EPOCH", true;
    /// FENCED_STATE_EPOCH (124).
    FencedStateEpoch = 124, "FENCED_STATE_EPOCH", false;
    /// INVALID_VOTER_KEY (125).
    InvalidVoterKey = 125, "INVALID_VOTER_KEY", false;
    /// DUPLICATE_VOTER (126).
    DuplicateVoter = 126, "DUPLICATE_VOTER", false;
    /// VOTER_NOT_FOUND (127).
    VoterNotFound = 127, "VOTER_NOT_FOUND", false;
    /// INVALID_REGULAR_EXPRESSION (128).
    InvalidRegularExpression = 128, "INVALID_REGULAR_EXPRESSION", false;
    /// REBOOTSTRAP_REQUIRED (129).
    RebootstrapRequired = 129, "REBOOTSTRAP_REQUIRED", false;
    /// STREAMS_INVALID_TOPOLOGY (130).
    StreamsInvalidTopology = 130, "STREAMS_INVALID_TOPOLOGY", false;
    /// STREAMS_INVALID_TOPOLOGY_EPOCH (131).
    StreamsInvalidTopologyEpoch = 131, "STREAMS_INVALID_TOPOLOGY_EPOCH", false;
    /// STREAMS_TOPOLOGY_FENCED (132).
    StreamsTopologyFenced = 132, "STREAMS_TOPOLOGY_FENCED", false;
    /// SHARE_SESSION_LIMIT_REACHED (133), retriable.
    ShareSessionLimitReached = 133, "SHARE_SESSION_LIMIT_REACHED", true;
}

impl ErrorCode {
    /// True for [`ErrorCode::None`].
    pub const fn is_ok(self) -> bool {
        matches!(self, ErrorCode::None)
    }

    /// `Ok(())` for `None`, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ErrorCode> {
        if self.is_ok() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl From<i16> for ErrorCode {
    fn from(code: i16) -> Self {
        ErrorCode::from_code(code)
    }
}

impl From<ErrorCode> for i16 {
    fn from(e: ErrorCode) -> Self {
        e.code()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Unknown(c) => write!(f, "UNKNOWN error code {c}"),
            e => write!(f, "{} ({})", e.name(), e.code()),
        }
    }
}

impl std::error::Error for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        assert_eq!(ErrorCode::ALL.len(), 134);
        let mut seen = std::collections::BTreeSet::new();
        for e in ErrorCode::ALL {
            assert!(seen.insert(e.code()), "duplicate code {}", e.code());
            assert_eq!(ErrorCode::from_code(e.code()), *e);
            assert_ne!(e.name(), "UNKNOWN");
        }
        for c in i16::MIN..=i16::MAX {
            assert_eq!(ErrorCode::from_code(c).code(), c);
        }
        assert_eq!(ErrorCode::from_code(0), ErrorCode::None);
        assert_eq!(ErrorCode::from_code(-1), ErrorCode::UnknownServerError);
        assert_eq!(
            ErrorCode::from_code(133),
            ErrorCode::ShareSessionLimitReached
        );
        assert_eq!(ErrorCode::from_code(134), ErrorCode::Unknown(134));
        assert_eq!(ErrorCode::from_code(-2), ErrorCode::Unknown(-2));
    }

    #[test]
    fn retriable_as_in_kafka() {
        let retriable = [3, 5, 6, 7, 19, 20, 13, 14, 15, 16, 51, 56, 74, 75, 2];
        let fatal = [
            -1, 1, 8, 10, 17, 18, 29, 35, 45, 46, 47, 48, 59, 87, 90, 120, 129,
        ];
        for c in retriable {
            assert!(ErrorCode::from_code(c).is_retriable(), "{c}");
        }
        for c in fatal {
            assert!(!ErrorCode::from_code(c).is_retriable(), "{c}");
        }
        assert!(!ErrorCode::None.is_retriable());
        assert!(!ErrorCode::Unknown(999).is_retriable());
    }

    #[test]
    fn names_and_display() {
        assert_eq!(
            ErrorCode::NotLeaderOrFollower.name(),
            "NOT_LEADER_OR_FOLLOWER"
        );
        assert_eq!(
            ErrorCode::from_code(45).name(),
            "OUT_OF_ORDER_SEQUENCE_NUMBER"
        );
        assert_eq!(ErrorCode::from_code(46).name(), "DUPLICATE_SEQUENCE_NUMBER");
        assert_eq!(ErrorCode::from_code(59).name(), "UNKNOWN_PRODUCER_ID");
        assert_eq!(ErrorCode::from_code(90).name(), "PRODUCER_FENCED");
        assert_eq!(ErrorCode::None.name(), "NONE");
        assert_eq!(
            ErrorCode::UnsupportedVersion.to_string(),
            "UNSUPPORTED_VERSION (35)"
        );
        assert_eq!(
            ErrorCode::Unknown(500).to_string(),
            "UNKNOWN error code 500"
        );
        assert_eq!(ErrorCode::None.into_result(), Ok(()));
        assert_eq!(
            ErrorCode::from(7).into_result(),
            Err(ErrorCode::RequestTimedOut)
        );
        assert_eq!(i16::from(ErrorCode::TopicAuthorizationFailed), 29);
    }
}

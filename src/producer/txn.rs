//! The transaction manager: a pure state machine, with no IO and no clock of
//! its own, that says which transaction request comes next and how each
//! answer moves it (the role of Java's `TransactionManager`).
//!
//! [`Producer`](super::Producer) drives it when `transactional.id` is set;
//! any core drives it so: a user call ([`TxnManager::init_transactions`],
//! [`TxnManager::begin_transaction`], [`TxnManager::send_offsets`],
//! [`TxnManager::commit_transaction`], [`TxnManager::abort_transaction`])
//! is accepted or refused at once with a typed error; an accepted call
//! finishes later, through [`TxnManager::poll_outcome`]. In between, the
//! core asks [`TxnManager::next_request`] what to send, sends it, and feeds
//! the answer (or the request's failure) back. Records go through
//! [`TxnManager::add_partition`] before they are appended and through
//! [`TxnManager::may_produce`] before their partition's Produce.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::protocol::error_code::ErrorCode;
use crate::protocol::messages::add_offsets_to_txn::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse,
};
use crate::protocol::messages::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, AddPartitionsToTxnTopic,
};
use crate::protocol::messages::end_txn::{EndTxnRequest, EndTxnResponse};
use crate::protocol::messages::find_coordinator::{
    FindCoordinatorRequest, FindCoordinatorResponse, KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION,
};
use crate::protocol::messages::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use crate::protocol::messages::txn_offset_commit::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    TxnOffsetCommitResponse,
};

/// Backoff after CONCURRENT_TRANSACTIONS on AddPartitionsToTxn: the previous
/// transaction's markers are usually written within milliseconds, so Java
/// retries this one much sooner than its general retry backoff.
const CONCURRENT_TRANSACTIONS_BACKOFF: Duration = Duration::from_millis(20);

/// Java's transaction states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// `init_transactions` not called yet.
    Uninitialized,
    /// Obtaining the producer id and epoch (or bumping the epoch).
    Initializing,
    /// Between transactions.
    Ready,
    /// A transaction is open.
    InTransaction,
    /// `commit_transaction` accepted, EndTxn not answered yet.
    CommittingTransaction,
    /// `abort_transaction` accepted, EndTxn not answered yet.
    AbortingTransaction,
    /// The transaction cannot commit; only `abort_transaction` is allowed.
    AbortableError,
    /// The producer cannot go on (fenced, unauthorized, unsupported).
    FatalError,
}

impl TxnState {
    /// Java's allowed transitions: true when `self` may be entered from `from`.
    pub fn may_follow(self, from: TxnState) -> bool {
        use TxnState::*;
        match self {
            Uninitialized => from == Uninitialized,
            // From AbortingTransaction when an abort needs an epoch bump.
            Initializing => matches!(from, Uninitialized | AbortingTransaction),
            Ready => matches!(
                from,
                Initializing | CommittingTransaction | AbortingTransaction
            ),
            InTransaction => from == Ready,
            CommittingTransaction => from == InTransaction,
            AbortingTransaction => matches!(from, InTransaction | AbortableError),
            AbortableError => matches!(
                from,
                InTransaction | CommittingTransaction | AbortableError | Initializing
            ),
            FatalError => true,
        }
    }
}

/// The transaction protocol in use, from the finalized `transaction.version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnProtocol {
    /// AddPartitionsToTxn before a partition's first Produce.
    V1,
    /// KIP-890 part 2: Produce v12+ adds partitions, EndTxn v5 bumps the epoch.
    V2,
}

impl TxnProtocol {
    /// The protocol for a finalized `transaction.version` level.
    pub fn from_feature_level(level: i16) -> TxnProtocol {
        if level >= 2 {
            TxnProtocol::V2
        } else {
            TxnProtocol::V1
        }
    }
}

/// A user call on a transactional producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnCall {
    /// `init_transactions`.
    InitTransactions,
    /// `begin_transaction`.
    BeginTransaction,
    /// A record sent to a partition.
    Send,
    /// `send_offsets_to_transaction`.
    SendOffsets,
    /// `commit_transaction`.
    Commit,
    /// `abort_transaction`.
    Abort,
}

impl fmt::Display for TxnCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxnCall::InitTransactions => "init_transactions",
            TxnCall::BeginTransaction => "begin_transaction",
            TxnCall::Send => "send",
            TxnCall::SendOffsets => "send_offsets_to_transaction",
            TxnCall::Commit => "commit_transaction",
            TxnCall::Abort => "abort_transaction",
        })
    }
}

/// Why a transaction or the transactional producer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// The call is not allowed in the current state.
    #[error("{call} is not allowed in transaction state {state:?}")]
    InvalidState {
        /// The refused call.
        call: TxnCall,
        /// The state it was refused in.
        state: TxnState,
    },
    /// A previous call has not finished yet.
    #[error("{call} refused: {pending} has not finished")]
    Pending {
        /// The refused call.
        call: TxnCall,
        /// The call still in progress.
        pending: TxnCall,
    },
    /// The producer is closed for transactions (fenced, unauthorized,
    /// unsupported); every later call fails with this error.
    #[error("transactional producer failed fatally: {0}")]
    Fatal(ErrorCode),
    /// The open transaction cannot commit; abort it and go on.
    #[error("transaction must be aborted: {cause}")]
    Abortable {
        /// What failed.
        cause: AbortCause,
    },
    /// A transaction call on a producer without `transactional.id`.
    #[error("{call} needs a transactional producer (set transactional.id)")]
    NotTransactional {
        /// The refused call.
        call: TxnCall,
    },
}

/// The cause of an abortable error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbortCause {
    /// A broker answered a transaction request with this error.
    #[error("broker error {0}")]
    Broker(ErrorCode),
    /// A record of the transaction was not delivered.
    #[error("a record's delivery failed with {0}")]
    RecordFailed(ErrorCode),
    /// A record or a transaction request timed out.
    #[error("timed out")]
    Timeout,
    /// Records of the transaction were purged before they were sent.
    #[error("records of the transaction were purged")]
    Purged,
    /// A record of the transaction failed without a broker error code
    /// (its topic or partition not found, its batch not encodable, ...).
    #[error("a record's delivery failed: {0}")]
    Delivery(crate::producer::DeliveryError),
}

/// How an error answering a transaction request is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handling {
    /// Success.
    Done,
    /// Find the coordinator again, then retry.
    Relocate,
    /// Retry the same request after `backoff`.
    Retry(Duration),
    /// The transaction must be aborted; `bump` when the epoch must be bumped afterwards.
    Abortable { bump: bool },
    /// The producer cannot go on.
    Fatal,
}

/// Java's split of the errors a transaction coordinator (or, for
/// TxnOffsetCommit, a group coordinator) answers.
fn classify(code: ErrorCode, backoff: Duration, concurrent_backoff: Duration) -> Handling {
    use ErrorCode as E;
    match code {
        E::None => Handling::Done,
        E::NotCoordinator | E::CoordinatorNotAvailable | E::RequestTimedOut => Handling::Relocate,
        E::ConcurrentTransactions => Handling::Retry(concurrent_backoff),
        E::CoordinatorLoadInProgress | E::UnknownTopicOrPartition => Handling::Retry(backoff),
        E::UnknownProducerId | E::InvalidProducerIdMapping => Handling::Abortable { bump: true },
        E::TransactionAbortable
        | E::TopicAuthorizationFailed
        | E::GroupAuthorizationFailed
        | E::UnknownMemberId
        | E::IllegalGeneration
        | E::FencedInstanceId
        | E::OperationNotAttempted => Handling::Abortable { bump: false },
        // PRODUCER_FENCED, INVALID_PRODUCER_EPOCH (from a coordinator the
        // epoch is stale: another instance took over),
        // TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_TXN_STATE,
        // UNSUPPORTED_VERSION and anything unexpected.
        _ => Handling::Fatal,
    }
}

/// Java's split of a record's delivery failure inside a transaction: most
/// leave the producer usable after an abort; a fence, a missing
/// authorization or an unsupported version does not.
pub fn record_failure_is_fatal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ProducerFenced
            | ErrorCode::TransactionalIdAuthorizationFailed
            | ErrorCode::ClusterAuthorizationFailed
            | ErrorCode::UnsupportedVersion
            | ErrorCode::UnsupportedForMessageFormat
            | ErrorCode::TransactionCoordinatorFenced
    )
}

/// Where a transaction request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnTarget {
    /// Any broker (FindCoordinator).
    AnyBroker,
    /// The transaction coordinator.
    TxnCoordinator(i32),
    /// The consumer group's coordinator (TxnOffsetCommit).
    GroupCoordinator(i32),
}

/// The next transaction request, built for the core to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRequest {
    /// Find the transaction or group coordinator (sent at v0-3 with `key`,
    /// v4+ with `coordinator_keys`; [`TxnManager::find_coordinator_request`]
    /// gives the message for a version).
    FindCoordinator {
        /// KEY_TYPE_TRANSACTION or KEY_TYPE_GROUP.
        key_type: i8,
        /// The transactional id or the group id.
        key: String,
    },
    /// InitProducerId with the transactional id.
    InitProducerId(InitProducerIdRequest),
    /// AddPartitionsToTxn (v0-3 form).
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    /// AddOffsetsToTxn.
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    /// TxnOffsetCommit.
    TxnOffsetCommit(TxnOffsetCommitRequest),
    /// EndTxn.
    EndTxn(EndTxnRequest),
}

/// A request to send, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnSend {
    /// Where it goes.
    pub target: TxnTarget,
    /// What it is.
    pub request: TxnRequest,
}

/// A consumer group's position to commit with the transaction
/// (Java's `ConsumerGroupMetadata` and offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffsets {
    /// The consumer group id.
    pub group_id: String,
    /// The consumer's generation or member epoch, -1 when unknown.
    pub generation_id: i32,
    /// The member id, "" when unknown.
    pub member_id: String,
    /// The static member's instance id.
    pub group_instance_id: Option<String>,
    /// Offset (the next record to consume) per topic and partition.
    pub offsets: BTreeMap<(String, i32), i64>,
}

/// A finished user call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOutcome {
    /// The call that finished.
    pub call: TxnCall,
    /// Its result.
    pub result: Result<(), TxnError>,
}

/// Stage of the offsets of a `send_offsets_to_transaction` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OffsetsStage {
    AddOffsets,
    Commit,
}

/// The request in flight, if any (one at a time, as Java).
#[derive(Debug, Clone, PartialEq, Eq)]
enum InFlight {
    FindCoordinator { key_type: i8 },
    InitProducerId,
    AddPartitions(BTreeSet<(String, i32)>),
    AddOffsets,
    TxnOffsetCommit,
    EndTxn,
}

/// The transaction manager of one transactional producer.
#[derive(Debug)]
pub struct TxnManager {
    transactional_id: String,
    transaction_timeout_ms: i32,
    retry_backoff: Duration,
    protocol: TxnProtocol,
    state: TxnState,
    producer_id: i64,
    producer_epoch: i16,
    coordinator: Option<i32>,
    group_coordinator: Option<(String, i32)>,
    /// Partitions the coordinator has added to the open transaction.
    added: BTreeSet<(String, i32)>,
    /// Partitions with records, not yet added (v1).
    new_partitions: BTreeSet<(String, i32)>,
    offsets: Option<(GroupOffsets, OffsetsStage)>,
    in_flight: Option<InFlight>,
    need_init: bool,
    bump_epoch: bool,
    end: Option<bool>,
    /// The call whose outcome is owed (init, send offsets, commit, abort).
    pending_call: Option<TxnCall>,
    /// No request before this instant (backoff).
    not_before: Option<Instant>,
    error: Option<TxnError>,
    /// The transaction has records or offsets: a commit needs EndTxn.
    started: bool,
    /// The coordinator knows the transaction: an abort needs EndTxn.
    registered: bool,
    outcomes: VecDeque<TxnOutcome>,
}

impl TxnManager {
    /// A manager for `transactional_id`, uninitialized.
    pub fn new(
        transactional_id: impl Into<String>,
        transaction_timeout_ms: i32,
        retry_backoff: Duration,
    ) -> Self {
        TxnManager {
            transactional_id: transactional_id.into(),
            transaction_timeout_ms,
            retry_backoff,
            protocol: TxnProtocol::V1,
            state: TxnState::Uninitialized,
            producer_id: -1,
            producer_epoch: -1,
            coordinator: None,
            group_coordinator: None,
            added: BTreeSet::new(),
            new_partitions: BTreeSet::new(),
            offsets: None,
            in_flight: None,
            need_init: false,
            bump_epoch: false,
            end: None,
            pending_call: None,
            not_before: None,
            error: None,
            started: false,
            registered: false,
            outcomes: VecDeque::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> TxnState {
        self.state
    }

    /// The protocol in use.
    pub fn protocol(&self) -> TxnProtocol {
        self.protocol
    }

    /// Sets the protocol from the broker's finalized `transaction.version`
    /// (ApiVersions); takes effect between transactions only, as a
    /// transaction keeps the protocol it started with.
    pub fn set_transaction_version(&mut self, level: i16) {
        if matches!(
            self.state,
            TxnState::Uninitialized | TxnState::Initializing | TxnState::Ready
        ) {
            self.protocol = TxnProtocol::from_feature_level(level);
        }
    }

    /// The producer id and epoch to stamp batches with (-1 before init).
    pub fn producer_id_and_epoch(&self) -> (i64, i16) {
        (self.producer_id, self.producer_epoch)
    }

    /// The transaction coordinator's node id, once found.
    pub fn coordinator(&self) -> Option<i32> {
        self.coordinator
    }

    /// Partitions the open transaction holds (added by the coordinator, or
    /// under v2 by their first Produce).
    pub fn partitions(&self) -> &BTreeSet<(String, i32)> {
        &self.added
    }

    /// The error of an abortable or fatal state.
    pub fn error(&self) -> Option<&TxnError> {
        self.error.as_ref()
    }

    /// The next finished user call.
    pub fn poll_outcome(&mut self) -> Option<TxnOutcome> {
        self.outcomes.pop_front()
    }

    fn transition(&mut self, to: TxnState) {
        debug_assert!(
            to.may_follow(self.state),
            "transaction state {:?} -> {to:?}",
            self.state
        );
        log::debug!(
            "transaction {}: {:?} -> {to:?}",
            self.transactional_id,
            self.state
        );
        self.state = to;
    }

    /// Refuses `call` unless the state is one of `allowed`, failing with
    /// the stored error in the error states, as Java does.
    fn check(&self, call: TxnCall, allowed: &[TxnState]) -> Result<(), TxnError> {
        if let Some(pending) = self.pending_call {
            return Err(TxnError::Pending { call, pending });
        }
        if allowed.contains(&self.state) {
            return Ok(());
        }
        match (&self.error, self.state) {
            (Some(e), TxnState::FatalError | TxnState::AbortableError) => Err(e.clone()),
            _ => Err(TxnError::InvalidState {
                call,
                state: self.state,
            }),
        }
    }

    fn finish(&mut self, call: TxnCall, result: Result<(), TxnError>) {
        if self.pending_call == Some(call) {
            self.pending_call = None;
        }
        self.outcomes.push_back(TxnOutcome { call, result });
    }

    /// `init_transactions`: obtain the producer id and epoch (fencing any
    /// previous producer with this transactional id).
    pub fn init_transactions(&mut self) -> Result<(), TxnError> {
        self.check(TxnCall::InitTransactions, &[TxnState::Uninitialized])?;
        self.transition(TxnState::Initializing);
        self.need_init = true;
        self.pending_call = Some(TxnCall::InitTransactions);
        Ok(())
    }

    /// `begin_transaction`: open a transaction (no request is sent).
    pub fn begin_transaction(&mut self) -> Result<(), TxnError> {
        self.check(TxnCall::BeginTransaction, &[TxnState::Ready])?;
        self.transition(TxnState::InTransaction);
        self.started = false;
        Ok(())
    }

    /// A record is about to be appended for `topic`/`partition`: refused
    /// outside a transaction; the partition joins the transaction (under v1
    /// through AddPartitionsToTxn before its first Produce).
    pub fn add_partition(&mut self, topic: &str, partition: i32) -> Result<(), TxnError> {
        self.check_send()?;
        self.register_partition(topic, partition);
        self.started = true;
        Ok(())
    }

    /// The partition joins the open transaction (under v1 once
    /// AddPartitionsToTxn is answered).
    fn register_partition(&mut self, topic: &str, partition: i32) {
        let key = (topic.to_owned(), partition);
        if !self.added.contains(&key) {
            match self.protocol {
                TxnProtocol::V1 => {
                    self.new_partitions.insert(key);
                }
                // The partition's first Produce (v12+) adds it.
                TxnProtocol::V2 => {
                    self.added.insert(key);
                    self.registered = true;
                }
            }
        }
    }

    /// A record accepted inside the transaction (its send passed
    /// [`TxnManager::check_send`]) is placed on `topic`/`partition`: the
    /// partition joins the transaction even after `commit_transaction` was
    /// called, for the record was accepted before (its topic's metadata
    /// came later). Refused only once the transaction is aborting or failed.
    pub fn join_partition(&mut self, topic: &str, partition: i32) -> Result<(), TxnError> {
        if self.state != TxnState::CommittingTransaction {
            return self.add_partition(topic, partition);
        }
        self.register_partition(topic, partition);
        Ok(())
    }

    /// A record was accepted inside the transaction, its partition not
    /// chosen yet (waiting for metadata): a commit must wait for it.
    pub fn record_accepted(&mut self) {
        if self.state == TxnState::InTransaction {
            self.started = true;
        }
    }

    /// Whether a record may be sent now: only inside a transaction, and
    /// with the stored error in the error states.
    pub fn check_send(&self) -> Result<(), TxnError> {
        // A send does not wait for a pending call: records of an open
        // transaction may be sent while offsets are being committed.
        if self.state == TxnState::InTransaction {
            return Ok(());
        }
        match (&self.error, self.state) {
            (Some(e), TxnState::FatalError | TxnState::AbortableError) => Err(e.clone()),
            _ => Err(TxnError::InvalidState {
                call: TxnCall::Send,
                state: self.state,
            }),
        }
    }

    /// True when records for `topic`/`partition` may go out in a Produce:
    /// under v1 once AddPartitionsToTxn has added it, under v2 at once.
    pub fn may_produce(&self, topic: &str, partition: i32) -> bool {
        matches!(
            self.state,
            TxnState::InTransaction | TxnState::CommittingTransaction
        ) && self.added.contains(&(topic.to_owned(), partition))
    }

    /// `send_offsets_to_transaction`: commit a consumer group's offsets
    /// with the transaction (v1: AddOffsetsToTxn, then TxnOffsetCommit to
    /// the group coordinator; v2: TxnOffsetCommit alone).
    pub fn send_offsets(&mut self, offsets: GroupOffsets) -> Result<(), TxnError> {
        self.check(TxnCall::SendOffsets, &[TxnState::InTransaction])?;
        if offsets.offsets.is_empty() {
            self.finish(TxnCall::SendOffsets, Ok(()));
            return Ok(());
        }
        let stage = match self.protocol {
            TxnProtocol::V1 => OffsetsStage::AddOffsets,
            TxnProtocol::V2 => OffsetsStage::Commit,
        };
        if self
            .group_coordinator
            .as_ref()
            .is_some_and(|(g, _)| *g != offsets.group_id)
        {
            self.group_coordinator = None;
        }
        self.offsets = Some((offsets, stage));
        self.started = true;
        self.registered |= self.protocol == TxnProtocol::V2;
        self.pending_call = Some(TxnCall::SendOffsets);
        Ok(())
    }

    /// `commit_transaction`: EndTxn(commit) once every record of the
    /// transaction is acknowledged (see `records_pending` of
    /// [`TxnManager::next_request`]). A transaction with nothing in it
    /// commits at once.
    pub fn commit_transaction(&mut self) -> Result<(), TxnError> {
        self.check(TxnCall::Commit, &[TxnState::InTransaction])?;
        self.transition(TxnState::CommittingTransaction);
        self.pending_call = Some(TxnCall::Commit);
        if self.started {
            self.end = Some(true);
        } else {
            self.complete_end();
        }
        Ok(())
    }

    /// `abort_transaction`: EndTxn(abort). The core must first drop the
    /// transaction's unsent records (a purge) and let in-flight Produce
    /// requests finish. A transaction with nothing in it aborts at once.
    pub fn abort_transaction(&mut self) -> Result<(), TxnError> {
        self.check(
            TxnCall::Abort,
            &[TxnState::InTransaction, TxnState::AbortableError],
        )?;
        self.transition(TxnState::AbortingTransaction);
        self.pending_call = Some(TxnCall::Abort);
        self.new_partitions.clear();
        self.offsets = None;
        // An AddPartitionsToTxn or AddOffsetsToTxn in flight may register
        // the transaction: end it to be sure.
        let registering = matches!(
            self.in_flight,
            Some(InFlight::AddPartitions(_) | InFlight::AddOffsets)
        );
        if self.registered || registering {
            self.end = Some(false);
        } else {
            self.complete_end();
        }
        Ok(())
    }

    /// A record of the transaction was not delivered: the transaction can
    /// no longer commit (fatal for a fence, a missing authorization or an
    /// unsupported version).
    pub fn on_record_failed(&mut self, code: ErrorCode) {
        if record_failure_is_fatal(code) {
            self.fail_fatal(code);
        } else {
            // A failed batch leaves a gap in its partition's sequence
            // numbers: under v1 the abort is followed by an epoch bump
            // (KIP-360), as Java's transaction manager asks for one after
            // any failed batch; under v2 every EndTxn bumps.
            self.fail_abortable(AbortCause::RecordFailed(code), true);
        }
    }

    /// A record of the transaction failed with `e`, not a broker error code.
    pub fn on_record_error(&mut self, e: crate::producer::DeliveryError) {
        self.fail_abortable(AbortCause::Delivery(e), true);
    }

    /// Records of the transaction were purged unsent: it cannot commit.
    pub fn on_records_purged(&mut self) {
        self.fail_abortable(AbortCause::Purged, false);
    }

    /// The producer failed fatally for `code` (outside the transaction
    /// protocol, e.g. no usable API version): so does the transaction.
    pub fn on_fatal(&mut self, code: ErrorCode) {
        if self.state != TxnState::FatalError {
            self.fail_fatal(code);
        }
    }

    /// When a request held back by a backoff may go, if one is.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.not_before
    }

    /// The transactional id.
    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    /// A record of the transaction timed out.
    pub fn on_record_timeout(&mut self) {
        self.fail_abortable(AbortCause::Timeout, true);
    }

    /// The request returned by [`TxnManager::next_request`] got no answer
    /// (connection lost, request timed out): the coordinator is looked up
    /// again and the request retried after the backoff.
    pub fn on_request_failed(&mut self, now: Instant) {
        if let Some(InFlight::AddPartitions(p)) = self.in_flight.take() {
            self.new_partitions.extend(p);
        }
        self.coordinator = None;
        self.group_coordinator = None;
        self.not_before = Some(now + self.retry_backoff);
    }

    fn fail_fatal(&mut self, code: ErrorCode) {
        let e = TxnError::Fatal(code);
        self.transition(TxnState::FatalError);
        self.error = Some(e.clone());
        self.end = None;
        self.need_init = false;
        self.offsets = None;
        self.new_partitions.clear();
        self.fail_pending(e);
    }

    /// Fails the running user call, if any, with `e`.
    fn fail_pending(&mut self, e: TxnError) {
        if let Some(call) = self.pending_call.take() {
            self.outcomes.push_back(TxnOutcome {
                call,
                result: Err(e),
            });
        }
    }

    fn fail_abortable(&mut self, cause: AbortCause, bump: bool) {
        if self.state == TxnState::FatalError {
            return;
        }
        if !TxnState::AbortableError.may_follow(self.state) {
            // Outside a transaction (e.g. while aborting) the error only
            // fails the running call.
            self.fail_pending(TxnError::Abortable { cause });
            return;
        }
        let e = TxnError::Abortable { cause };
        self.transition(TxnState::AbortableError);
        self.bump_epoch |= bump;
        self.error = Some(e.clone());
        self.end = None;
        self.offsets = None;
        self.new_partitions.clear();
        self.fail_pending(e);
    }

    /// The next request to send, if any. `records_pending` is true while
    /// records of the transaction are unacknowledged (buffered or in
    /// flight): EndTxn waits for them, as Java's does (a commit flushes
    /// first; an abort purges what is unsent and waits for what is in
    /// flight). At most one request is in flight.
    pub fn next_request(&mut self, now: Instant, records_pending: bool) -> Option<TxnSend> {
        if self.in_flight.is_some() || self.state == TxnState::FatalError {
            return None;
        }
        if self.not_before.is_some_and(|t| now < t) {
            return None;
        }
        self.not_before = None;
        let needs_txn_coordinator = self.need_init
            || !self.new_partitions.is_empty()
            || matches!(self.offsets, Some((_, OffsetsStage::AddOffsets)))
            || self.end.is_some();
        if !needs_txn_coordinator && self.offsets.is_none() {
            return None;
        }
        let Some(coordinator) = self.coordinator else {
            if needs_txn_coordinator {
                return Some(self.find(KEY_TYPE_TRANSACTION, self.transactional_id.clone()));
            }
            // Only offsets to commit, which go to the group coordinator.
            return self.next_offsets_request();
        };
        let target = TxnTarget::TxnCoordinator(coordinator);
        if self.need_init {
            self.in_flight = Some(InFlight::InitProducerId);
            let (producer_id, producer_epoch) = if self.bump_epoch {
                (self.producer_id, self.producer_epoch)
            } else {
                (-1, -1)
            };
            return Some(TxnSend {
                target,
                request: TxnRequest::InitProducerId(InitProducerIdRequest {
                    transactional_id: Some(self.transactional_id.clone()),
                    transaction_timeout_ms: self.transaction_timeout_ms,
                    producer_id,
                    producer_epoch,
                    ..Default::default()
                }),
            });
        }
        if !self.new_partitions.is_empty() {
            let batch = std::mem::take(&mut self.new_partitions);
            let request = self.add_partitions_request(&batch);
            self.in_flight = Some(InFlight::AddPartitions(batch));
            return Some(TxnSend {
                target,
                request: TxnRequest::AddPartitionsToTxn(request),
            });
        }
        if self.offsets.is_some() {
            return self.next_offsets_request();
        }
        match self.end {
            Some(_) if !records_pending && !self.registered => {
                // The coordinator never took the transaction in (what would
                // have registered it was refused, e.g. by a coordinator
                // that moved): an EndTxn would be taken for the previous
                // transaction's, so the end is over here, as Java's
                // `transactionStarted` check makes it.
                self.complete_end();
                self.next_request(now, records_pending)
            }
            Some(committed) if !records_pending => {
                self.in_flight = Some(InFlight::EndTxn);
                Some(TxnSend {
                    target,
                    request: TxnRequest::EndTxn(EndTxnRequest {
                        transactional_id: self.transactional_id.clone(),
                        producer_id: self.producer_id,
                        producer_epoch: self.producer_epoch,
                        committed,
                        ..Default::default()
                    }),
                })
            }
            _ => None,
        }
    }

    fn find(&mut self, key_type: i8, key: String) -> TxnSend {
        self.in_flight = Some(InFlight::FindCoordinator { key_type });
        TxnSend {
            target: TxnTarget::AnyBroker,
            request: TxnRequest::FindCoordinator { key_type, key },
        }
    }

    fn next_offsets_request(&mut self) -> Option<TxnSend> {
        let (offsets, stage) = self.offsets.as_ref()?;
        match stage {
            OffsetsStage::AddOffsets => {
                let coordinator = self.coordinator?;
                let request = AddOffsetsToTxnRequest {
                    transactional_id: self.transactional_id.clone(),
                    producer_id: self.producer_id,
                    producer_epoch: self.producer_epoch,
                    group_id: offsets.group_id.clone(),
                    ..Default::default()
                };
                self.in_flight = Some(InFlight::AddOffsets);
                Some(TxnSend {
                    target: TxnTarget::TxnCoordinator(coordinator),
                    request: TxnRequest::AddOffsetsToTxn(request),
                })
            }
            OffsetsStage::Commit => {
                let group = offsets.group_id.clone();
                let Some(node) = self
                    .group_coordinator
                    .as_ref()
                    .filter(|(g, _)| *g == group)
                    .map(|(_, n)| *n)
                else {
                    return Some(self.find(KEY_TYPE_GROUP, group));
                };
                let request = self.txn_offset_commit_request(offsets);
                self.in_flight = Some(InFlight::TxnOffsetCommit);
                Some(TxnSend {
                    target: TxnTarget::GroupCoordinator(node),
                    request: TxnRequest::TxnOffsetCommit(request),
                })
            }
        }
    }

    fn add_partitions_request(
        &self,
        partitions: &BTreeSet<(String, i32)>,
    ) -> AddPartitionsToTxnRequest {
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for (topic, partition) in partitions {
            match topics.last_mut() {
                Some(t) if t.name == *topic => t.partitions.push(*partition),
                _ => topics.push(AddPartitionsToTxnTopic {
                    name: topic.clone(),
                    partitions: vec![*partition],
                    ..Default::default()
                }),
            }
        }
        AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: self.transactional_id.clone(),
            v3_and_below_producer_id: self.producer_id,
            v3_and_below_producer_epoch: self.producer_epoch,
            v3_and_below_topics: topics,
            ..Default::default()
        }
    }

    fn txn_offset_commit_request(&self, offsets: &GroupOffsets) -> TxnOffsetCommitRequest {
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for ((topic, partition), offset) in &offsets.offsets {
            let p = TxnOffsetCommitRequestPartition {
                partition_index: *partition,
                committed_offset: *offset,
                ..Default::default()
            };
            match topics.last_mut() {
                Some(t) if t.name == *topic => t.partitions.push(p),
                _ => topics.push(TxnOffsetCommitRequestTopic {
                    name: topic.clone(),
                    partitions: vec![p],
                    ..Default::default()
                }),
            }
        }
        TxnOffsetCommitRequest {
            transactional_id: self.transactional_id.clone(),
            group_id: offsets.group_id.clone(),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            generation_id_or_member_epoch: offsets.generation_id,
            member_id: offsets.member_id.clone(),
            group_instance_id: offsets.group_instance_id.clone(),
            topics,
            ..Default::default()
        }
    }

    /// The FindCoordinator message for `key_type` and `key` at `version`
    /// (one key in `key` before v4, in `coordinator_keys` from v4).
    pub fn find_coordinator_request(
        key_type: i8,
        key: &str,
        version: i16,
    ) -> FindCoordinatorRequest {
        if version >= 4 {
            FindCoordinatorRequest {
                key_type,
                coordinator_keys: vec![key.to_owned()],
                ..Default::default()
            }
        } else {
            FindCoordinatorRequest {
                key: key.to_owned(),
                key_type,
                ..Default::default()
            }
        }
    }

    /// Applies `h` to the request in flight; returns true on success.
    fn handle(&mut self, h: Handling, now: Instant, abort_cause: ErrorCode) -> bool {
        match h {
            Handling::Done => true,
            Handling::Relocate => {
                self.coordinator = None;
                self.not_before = Some(now + self.retry_backoff);
                false
            }
            Handling::Retry(backoff) => {
                self.not_before = Some(now + backoff);
                false
            }
            Handling::Abortable { bump } => {
                self.fail_abortable(AbortCause::Broker(abort_cause), bump);
                false
            }
            Handling::Fatal => {
                self.fail_fatal(abort_cause);
                false
            }
        }
    }

    fn classify(&self, code: i16) -> (Handling, ErrorCode) {
        let code = ErrorCode::from_code(code);
        (
            classify(code, self.retry_backoff, CONCURRENT_TRANSACTIONS_BACKOFF),
            code,
        )
    }

    /// Feeds a FindCoordinator answer (of `version`, for the key in flight).
    pub fn on_find_coordinator(&mut self, r: &FindCoordinatorResponse, version: i16, now: Instant) {
        let Some(InFlight::FindCoordinator { key_type }) = self.in_flight.take() else {
            return;
        };
        let key = if key_type == KEY_TYPE_GROUP {
            match &self.offsets {
                Some((o, _)) => o.group_id.clone(),
                None => return,
            }
        } else {
            self.transactional_id.clone()
        };
        let Some(c) = r
            .coordinators_for(&key, version)
            .into_iter()
            .find(|c| c.key == key)
        else {
            self.not_before = Some(now + self.retry_backoff);
            return;
        };
        let code = ErrorCode::from_code(c.error_code);
        let h = match code {
            // A group the producer may not use fails the transaction, not
            // the producer.
            ErrorCode::GroupAuthorizationFailed => Handling::Abortable { bump: false },
            _ => classify(code, self.retry_backoff, self.retry_backoff),
        };
        // Relocating means asking again.
        let h = if h == Handling::Relocate {
            Handling::Retry(self.retry_backoff)
        } else {
            h
        };
        if self.handle(h, now, code) {
            if key_type == KEY_TYPE_GROUP {
                self.group_coordinator = Some((key, c.node_id));
            } else {
                self.coordinator = Some(c.node_id);
            }
        }
    }

    /// Feeds an InitProducerId answer.
    pub fn on_init_producer_id(&mut self, r: &InitProducerIdResponse, now: Instant) {
        if self.in_flight.take() != Some(InFlight::InitProducerId) {
            return;
        }
        // An epoch error here means another producer holds the id: fatal.
        let (h, code) = self.classify(r.error_code);
        if self.handle(h, now, code) {
            self.producer_id = r.producer_id;
            self.producer_epoch = r.producer_epoch;
            self.need_init = false;
            self.bump_epoch = false;
            self.transition(TxnState::Ready);
            self.error = None;
            let call = self.pending_call.unwrap_or(TxnCall::InitTransactions);
            self.finish(call, Ok(()));
        }
    }

    /// Feeds an AddPartitionsToTxn answer (v0-3 form).
    pub fn on_add_partitions(&mut self, r: &AddPartitionsToTxnResponse, now: Instant) {
        let Some(InFlight::AddPartitions(sent)) = self.in_flight.take() else {
            return;
        };
        let mut worst: Option<(Handling, ErrorCode)> = None;
        let mut ok = BTreeSet::new();
        for t in &r.results_by_topic_v3_and_below {
            for p in &t.results_by_partition {
                let (h, code) = self.classify(p.partition_error_code);
                if h == Handling::Done {
                    ok.insert((t.name.clone(), p.partition_index));
                } else if worst.as_ref().is_none_or(|(w, _)| rank(h) > rank(*w)) {
                    worst = Some((h, code));
                }
            }
        }
        // Partitions the answer does not name are retried.
        let unanswered: BTreeSet<_> = sent.difference(&ok).cloned().collect();
        self.registered |= !ok.is_empty();
        self.added.extend(ok);
        if self.state != TxnState::InTransaction && self.state != TxnState::CommittingTransaction {
            // Aborting or failed already: nothing more to add.
            return;
        }
        match worst {
            None if unanswered.is_empty() => {}
            None => {
                self.new_partitions.extend(unanswered);
                self.not_before = Some(now + self.retry_backoff);
            }
            Some((h, code)) => {
                if matches!(h, Handling::Relocate | Handling::Retry(_)) {
                    self.new_partitions.extend(unanswered);
                }
                self.handle(h, now, code);
            }
        }
    }

    /// Feeds an AddOffsetsToTxn answer.
    pub fn on_add_offsets(&mut self, r: &AddOffsetsToTxnResponse, now: Instant) {
        if self.in_flight.take() != Some(InFlight::AddOffsets) {
            return;
        }
        let (h, code) = self.classify(r.error_code);
        if self.handle(h, now, code) {
            self.registered = true;
            if let Some((_, stage)) = &mut self.offsets {
                *stage = OffsetsStage::Commit;
            }
        }
    }

    /// Feeds a TxnOffsetCommit answer.
    pub fn on_txn_offset_commit(&mut self, r: &TxnOffsetCommitResponse, now: Instant) {
        if self.in_flight.take() != Some(InFlight::TxnOffsetCommit) {
            return;
        }
        let worst = r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| self.classify(p.error_code))
            .max_by_key(|(h, _)| rank(*h));
        let (h, code) = worst.unwrap_or((Handling::Done, ErrorCode::None));
        // Relocation is of the group coordinator here.
        if h == Handling::Relocate {
            self.group_coordinator = None;
            self.not_before = Some(now + self.retry_backoff);
            return;
        }
        // Offsets no longer wanted (the transaction failed or is aborting
        // while the request was in flight) finish nothing: the call has
        // had its outcome already.
        if self.handle(h, now, code) && self.offsets.take().is_some() {
            self.finish(TxnCall::SendOffsets, Ok(()));
        }
    }

    /// Feeds an EndTxn answer of `version` (v5+ carries the next epoch).
    pub fn on_end_txn(&mut self, r: &EndTxnResponse, version: i16, now: Instant) {
        if self.in_flight.take() != Some(InFlight::EndTxn) {
            return;
        }
        let (h, code) = self.classify(r.error_code);
        if self.handle(h, now, code) {
            if version >= 5 && r.producer_id >= 0 {
                self.producer_id = r.producer_id;
                self.producer_epoch = r.producer_epoch;
            }
            self.complete_end();
        }
    }

    /// The transaction has ended (EndTxn answered, or there was nothing to end).
    fn complete_end(&mut self) {
        let call = if self.state == TxnState::CommittingTransaction {
            TxnCall::Commit
        } else {
            TxnCall::Abort
        };
        self.end = None;
        self.added.clear();
        self.new_partitions.clear();
        self.offsets = None;
        self.started = false;
        self.registered = false;
        if call == TxnCall::Abort && self.bump_epoch && self.protocol == TxnProtocol::V1 {
            // KIP-360: the abort is followed by an epoch bump.
            self.transition(TxnState::Initializing);
            self.need_init = true;
            self.pending_call = Some(TxnCall::Abort);
            return;
        }
        self.bump_epoch = false;
        self.error = None;
        self.transition(TxnState::Ready);
        self.finish(call, Ok(()));
    }
}

/// Severity order of handlings, the worst of several partitions' errors wins.
fn rank(h: Handling) -> u8 {
    match h {
        Handling::Done => 0,
        Handling::Retry(_) => 1,
        Handling::Relocate => 2,
        Handling::Abortable { .. } => 3,
        Handling::Fatal => 4,
    }
}

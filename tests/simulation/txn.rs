//! Transactional scenarios: an application drives a transactional producer
//! through the simulation's own harness (same network, same faults) over a
//! plan drawn from the seed: transactions of random sizes across the
//! partitions of two topics, committed or aborted, some carrying a consumer
//! group's offsets, under transactions v1 or v2; mid-transaction the
//! coordinator moves, and the process restarts with the same
//! transactional.id, the old instance either gone (a crash) or still
//! running (a zombie, which the new instance's `init_transactions` must
//! fence). Along the way wrong calls are made, and must be refused with
//! Java's typed errors. The check reads what a read_committed consumer
//! reads (the mock's `committed_records`) and holds it against what the
//! application was told.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_sansio::mock::MockCluster;
use kafka_sansio::protocol::frame::{decode_response, encode_request};
use kafka_sansio::protocol::messages::fetch::{
    FetchPartition, FetchRequest, FetchResponse, FetchTopic, READ_COMMITTED,
};
use kafka_sansio::protocol::RecordBatch;

use kafka_sansio::producer::txn::{GroupOffsets, TxnCall, TxnError, TxnOutcome, TxnState};
use kafka_sansio::producer::SendError;
use kafka_sansio::protocol::{ApiKey, ErrorCode};

use super::{new_producer, Outcome, Rng, Sim, SimEvent, TOPIC};

/// The transactional.id every instance of a scenario shares.
pub const TRANSACTIONAL_ID: &str = "sim-tx";
/// The second topic transactions span.
pub const TOPIC_B: &str = "sim-b";
/// The consumer group whose offsets go with some transactions, and the
/// topic (never produced to) they are positions in.
const GROUP: &str = "sim-group";
const INPUT: &str = "sim-in";
/// Instances started after fatal errors before the application gives up.
const MAX_FATAL_RESTARTS: usize = 4;

/// What the application will do, drawn from the seed.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The cluster's finalized `transaction.version` (1 or 2).
    pub level: i16,
    /// Partitions of [`TOPIC_B`].
    pub partitions_b: i32,
    txns: Vec<Planned>,
}

/// One planned transaction.
#[derive(Debug, Clone)]
struct Planned {
    /// Per record: true when it goes to [`TOPIC_B`].
    records: Vec<bool>,
    commit: bool,
    /// Offsets sent after this many records.
    offsets_at: Option<usize>,
    /// The transaction coordinator moves after this many records.
    move_at: Option<usize>,
    /// The process restarts after this many records (the number of
    /// records: once the transaction has ended); `zombie` when the old
    /// instance keeps running.
    restart: Option<(usize, bool)>,
}

impl Plan {
    /// Draws a plan from the scenario's randomness.
    pub fn draw(r: &mut Rng) -> Plan {
        let level = 1 + r.below(2) as i16;
        let partitions_b = 1 + r.below(3) as i32;
        let count = 1 + r.below(8) as usize;
        let txns = (0..count)
            .map(|_| {
                let n = if r.below(15) == 0 {
                    0
                } else {
                    1 + r.below(30) as usize
                };
                let records = (0..n).map(|_| r.below(3) == 0).collect();
                let at = |r: &mut Rng, per: u64| {
                    (r.below(per) == 0).then(|| r.below(n as u64 + 1) as usize)
                };
                Planned {
                    records,
                    commit: r.below(4) != 0,
                    offsets_at: at(r, 3),
                    move_at: at(r, 4),
                    restart: at(r, 6).map(|k| (k, r.below(2) == 0)),
                }
            })
            .collect();
        Plan {
            level,
            partitions_b,
            txns,
        }
    }
}

/// How a transaction the application began ended.
#[derive(Debug, Clone, PartialEq)]
enum End {
    Open,
    Committed,
    Aborted,
    /// Its instance crashed, was fenced or failed fatally.
    Failed(String),
}

/// A transaction the application began.
#[derive(Debug)]
struct Attempt {
    instance: usize,
    /// Numbers of its records that the producer accepted.
    records: Vec<usize>,
    /// The offsets sent with it, once `send_offsets_to_transaction` succeeded.
    offsets: BTreeMap<i32, i64>,
    /// The plan said commit (a zombie's transaction: no).
    planned_commit: bool,
    end: End,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// A new instance, `init_transactions` not called yet.
    Start,
    Initializing,
    Ready,
    /// Inside a transaction, `sent` of its planned records sent.
    InTxn {
        sent: usize,
    },
    Committing,
    Aborting,
    Done,
}

/// An instance replaced while still running.
#[derive(Debug)]
struct Zombie {
    instance: usize,
    /// Its open transaction, if it had one.
    attempt: Option<usize>,
    /// Transactions it tried after the fence (it may abort one at once).
    tries: usize,
}

/// Counts over transactional scenarios.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub scenarios: u64,
    pub v2_scenarios: u64,
    pub committed: u64,
    pub aborted: u64,
    /// Transactions lost with their instance (crash, fence, fatal error).
    pub failed: u64,
    pub with_offsets: u64,
    /// Zombies fenced by a new instance (their calls failing fatally).
    pub fencings: u64,
    pub crashes: u64,
    pub coordinator_moves: u64,
    /// Wrong calls refused with the expected typed error.
    pub refusals: u64,
}

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        self.scenarios += o.scenarios;
        self.v2_scenarios += o.v2_scenarios;
        self.committed += o.committed;
        self.aborted += o.aborted;
        self.failed += o.failed;
        self.with_offsets += o.with_offsets;
        self.fencings += o.fencings;
        self.crashes += o.crashes;
        self.coordinator_moves += o.coordinator_moves;
        self.refusals += o.refusals;
    }
}

/// The transactional application.
#[derive(Debug)]
pub struct App {
    plan: Plan,
    pub totals: Totals,
    /// Index of the planned transaction under way.
    current: usize,
    /// The instance the application runs on.
    instance: usize,
    phase: Phase,
    attempts: Vec<Attempt>,
    /// The application's open transaction, an index in `attempts`.
    open: Option<usize>,
    next_record: usize,
    zombie: Option<Zombie>,
    fatal_restarts: usize,
    gave_up: bool,
    /// Offsets of the open transaction asked for, not answered yet.
    offsets_pending: Option<BTreeMap<i32, i64>>,
    /// Per planned transaction: what was done already (the restart and
    /// the move happen once even when the transaction is redone).
    offsets_sent: bool,
    moved: bool,
    restarted: bool,
    /// A restart to do once the current instance is ready for the next
    /// transaction (planned after a transaction's end).
    restart_now: Option<bool>,
    /// The offsets a committed transaction last set, per input partition.
    committed_offsets: BTreeMap<i32, i64>,
}

impl App {
    pub fn new(plan: Plan) -> App {
        let totals = Totals {
            scenarios: 1,
            v2_scenarios: u64::from(plan.level >= 2),
            ..Totals::default()
        };
        App {
            plan,
            totals,
            current: 0,
            instance: 0,
            phase: Phase::Start,
            attempts: Vec::new(),
            open: None,
            next_record: 0,
            zombie: None,
            fatal_restarts: 0,
            gave_up: false,
            offsets_pending: None,
            offsets_sent: false,
            moved: false,
            restarted: false,
            restart_now: None,
            committed_offsets: BTreeMap::new(),
        }
    }

    /// The application has closed its last instance and no zombie runs.
    pub fn done(&self) -> bool {
        self.phase == Phase::Done && self.zombie.is_none()
    }

    /// The application's open transaction (a zombie's are apart).
    fn open_attempt(&mut self) -> &mut Attempt {
        let k = self.open.expect("a transaction was begun");
        let a = &mut self.attempts[k];
        assert_eq!(a.end, End::Open);
        a
    }

    fn end_attempt(&mut self, k: usize, end: End) {
        match end {
            End::Committed => self.totals.committed += 1,
            End::Aborted => self.totals.aborted += 1,
            End::Failed(_) => self.totals.failed += 1,
            End::Open => unreachable!("an end"),
        }
        self.attempts[k].end = end;
    }

    /// The planned transaction is over (whatever its end): the next one.
    fn next_planned(&mut self) {
        if let Some((k, zombie)) = self.plan.txns[self.current].restart {
            if k == self.plan.txns[self.current].records.len() && !self.restarted {
                self.restart_now = Some(zombie);
            }
        }
        self.current += 1;
        self.offsets_sent = false;
        self.moved = false;
        self.restarted = false;
    }
}

fn app(sim: &mut Sim) -> &mut App {
    sim.app.as_mut().expect("a transactional scenario")
}

/// Schedules the application's next step after a short think time.
fn later(sim: &mut Sim) {
    let d = if sim.rng.chance(300) {
        Duration::from_micros(sim.rng.below(20_000))
    } else {
        Duration::ZERO
    };
    sim.schedule(sim.now + d, SimEvent::App);
}

/// Starts a new instance with the same transactional.id; the old one is
/// dropped (a crash) or keeps running as a zombie.
fn restart(sim: &mut Sim, zombie: bool) {
    let old = app(sim).instance;
    let a = app(sim);
    let open = a.open.take();
    if zombie {
        a.zombie = Some(Zombie {
            instance: old,
            attempt: open,
            tries: 0,
        });
    } else {
        a.totals.crashes += 1;
        if let Some(k) = open {
            a.end_attempt(k, End::Failed("crashed".into()));
        }
        sim.drop_instance(old);
    }
    app(sim).offsets_pending = None;
    start_instance(sim);
}

/// A new instance with the same transactional.id, on which the
/// application goes on (from `init_transactions`).
fn start_instance(sim: &mut Sim) {
    let new = sim.producers.len();
    sim.producers
        .push(new_producer(&sim.sc, new, sim.start, sim.now));
    sim.closed.push(false);
    sim.dropped.push(false);
    let a = app(sim);
    a.instance = new;
    a.phase = Phase::Start;
    sim.schedule(sim.now, SimEvent::App);
}

/// The current instance failed fatally with `code`: its transaction is
/// lost; it closes and, up to a bound, a new instance takes over.
fn fatal(sim: &mut Sim, code: ErrorCode) {
    let i = app(sim).instance;
    let a = app(sim);
    if let Some(k) = a.open.take() {
        a.end_attempt(k, End::Failed(format!("fatal {code:?}")));
    }
    a.offsets_pending = None;
    a.fatal_restarts += 1;
    sim.producers[i].close(sim.now);
    if app(sim).fatal_restarts > MAX_FATAL_RESTARTS {
        let a = app(sim);
        a.gave_up = true;
        a.phase = Phase::Done;
        return;
    }
    start_instance(sim);
}

/// Now and then makes a call the application's phase does not allow on
/// its instance and checks it is refused with the typed error Java's rules give (the
/// refusal must change nothing).
fn probe(sim: &mut Sim) {
    if !sim.rng.chance(150) {
        return;
    }
    let a = sim.app.as_ref().expect("app");
    let i = a.instance;
    let phase = a.phase;
    let pending = match phase {
        Phase::Initializing => Some(TxnCall::InitTransactions),
        Phase::Committing => Some(TxnCall::Commit),
        Phase::Aborting => Some(TxnCall::Abort),
        Phase::InTxn { .. } if a.offsets_pending.is_some() => Some(TxnCall::SendOffsets),
        _ => None,
    };
    let calls: &[TxnCall] = match (phase, pending) {
        (_, Some(_)) => &[
            TxnCall::InitTransactions,
            TxnCall::BeginTransaction,
            TxnCall::Commit,
            TxnCall::Abort,
        ],
        (Phase::Start, _) => &[TxnCall::BeginTransaction, TxnCall::Commit, TxnCall::Abort],
        (Phase::Ready, _) => &[
            TxnCall::InitTransactions,
            TxnCall::Commit,
            TxnCall::Abort,
            TxnCall::SendOffsets,
            TxnCall::Send,
        ],
        (Phase::InTxn { .. }, _) => &[TxnCall::InitTransactions, TxnCall::BeginTransaction],
        _ => return,
    };
    let call = calls[sim.rng.below(calls.len() as u64) as usize];
    let now = sim.now;
    let p = &mut sim.producers[i];
    let state = p.transaction_state().expect("transactional");
    let r = match call {
        TxnCall::InitTransactions => p.init_transactions(now),
        TxnCall::BeginTransaction => p.begin_transaction(now),
        TxnCall::Commit => p.commit_transaction(now),
        TxnCall::Abort => p.abort_transaction(now),
        TxnCall::SendOffsets => p.send_offsets_to_transaction(offsets_of(&[0], 0), now),
        TxnCall::Send => match p.send(kafka_sansio::producer::ProducerRecord::new(TOPIC, "x"), now)
        {
            Err(SendError::Transaction { error, .. }) => Err(error),
            Ok(id) => panic!(
                "send outside a transaction accepted as {id:?}\n{}",
                sim.state()
            ),
            Err(e) => panic!("send outside a transaction: {e}\n{}", sim.state()),
        },
    };
    let ok = match (&r, pending) {
        (
            Err(TxnError::Pending {
                call: c,
                pending: p,
            }),
            Some(want),
        ) => *c == call && *p == want,
        (_, Some(_)) => false,
        (Err(TxnError::InvalidState { call: c, state: s }), None) => *c == call && *s == state,
        // An error state answers with its stored error.
        (Err(TxnError::Abortable { .. }), None) => state == TxnState::AbortableError,
        (Err(TxnError::Fatal(_)), None) => state == TxnState::FatalError,
        _ => false,
    };
    assert!(
        ok,
        "{call} in phase {phase:?} (state {state:?}, pending {pending:?}): {r:?}\n{}",
        sim.state()
    );
    assert_eq!(
        sim.producers[i].transaction_state(),
        Some(state),
        "a refusal changed the state"
    );
    app(sim).totals.refusals += 1;
}

/// Offsets for input partitions `parts`, distinct per transaction `k`.
fn offsets_of(parts: &[i32], k: usize) -> GroupOffsets {
    GroupOffsets {
        group_id: GROUP.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        offsets: parts
            .iter()
            .map(|p| ((INPUT.to_owned(), *p), 1 + k as i64 * 100 + *p as i64))
            .collect(),
    }
}

/// Moves the transaction (or the group) coordinator to another broker.
fn move_coordinator(sim: &mut Sim, key: &str) {
    // Another broker when there is one; with one, the same broker's
    // coordinator epoch goes up (a failover back onto it).
    let brokers = sim.sc.brokers as u64;
    let step = 1 + sim.rng.below(brokers.saturating_sub(1).max(1)) as i32;
    let to = (sim.cluster.coordinator_of(key) + step) % brokers as i32;
    sim.cluster.move_coordinator(key, to);
    app(sim).totals.coordinator_moves += 1;
}

/// The application's next step (a `SimEvent::App`).
pub fn step(sim: &mut Sim) {
    probe(sim);
    let now = sim.now;
    let a = app(sim);
    let i = a.instance;
    match a.phase {
        Phase::Start => {
            let r = sim.producers[i].init_transactions(now);
            assert_eq!(r, Ok(()), "init_transactions\n{}", sim.state());
            app(sim).phase = Phase::Initializing;
        }
        Phase::Ready => {
            if let Some(zombie) = app(sim).restart_now.take() {
                if app(sim).zombie.is_none() {
                    restart(sim, zombie);
                    return;
                }
            }
            let a = app(sim);
            if a.current == a.plan.txns.len() {
                a.phase = Phase::Done;
                sim.producers[i].close(now);
                return;
            }
            let r = sim.producers[i].begin_transaction(now);
            assert_eq!(r, Ok(()), "begin_transaction\n{}", sim.state());
            let a = app(sim);
            let planned_commit = a.plan.txns[a.current].commit;
            a.attempts.push(Attempt {
                instance: i,
                records: Vec::new(),
                offsets: BTreeMap::new(),
                planned_commit,
                end: End::Open,
            });
            a.open = Some(a.attempts.len() - 1);
            a.phase = Phase::InTxn { sent: 0 };
            later(sim);
        }
        Phase::InTxn { sent } => in_transaction(sim, i, sent),
        Phase::Initializing | Phase::Committing | Phase::Aborting | Phase::Done => {}
    }
}

fn in_transaction(sim: &mut Sim, i: usize, sent: usize) {
    let now = sim.now;
    let a = app(sim);
    let planned = a.plan.txns[a.current].clone();
    let k = a.open.expect("open");
    if let Some((at, zombie)) = planned.restart {
        // One zombie at a time: it is fenced by the next instance's init.
        if at == sent && at < planned.records.len() && !a.restarted && a.zombie.is_none() {
            a.restarted = true;
            restart(sim, zombie);
            return;
        }
    }
    if planned.move_at == Some(sent) && !a.moved {
        a.moved = true;
        move_coordinator(sim, TRANSACTIONAL_ID);
        if sim.rng.chance(300) {
            move_coordinator(sim, GROUP);
        }
    }
    let a = app(sim);
    if planned.offsets_at == Some(sent) && !a.offsets_sent {
        a.offsets_sent = true;
        let parts: Vec<i32> = (0..3).filter(|_| sim.rng.chance(600)).collect();
        let parts = if parts.is_empty() { vec![1] } else { parts };
        let o = offsets_of(&parts, k);
        let want: BTreeMap<i32, i64> = o.offsets.iter().map(|((_, p), v)| (*p, *v)).collect();
        match sim.producers[i].send_offsets_to_transaction(o, now) {
            Ok(()) => app(sim).offsets_pending = Some(want),
            Err(TxnError::Abortable { .. }) => {}
            Err(TxnError::Fatal(code)) => return fatal(sim, code),
            Err(e) => panic!("send_offsets_to_transaction: {e}\n{}", sim.state()),
        }
    }
    if sent < planned.records.len() {
        let n = app(sim).next_record;
        app(sim).next_record += 1;
        let topic = if planned.records[sent] {
            TOPIC_B
        } else {
            TOPIC
        };
        match sim.send_record(i, n, topic) {
            Ok(()) => app(sim).open_attempt().records.push(n),
            // The transaction failed already: commit will say so.
            Err(SendError::Transaction {
                error: TxnError::Abortable { .. },
                ..
            }) => {}
            Err(SendError::BufferFull { .. }) => sim.refused += 1,
            Err(SendError::Fatal { code, .. }) => return fatal(sim, code),
            Err(e) => panic!("send in a transaction: {e}\n{}", sim.state()),
        }
        app(sim).phase = Phase::InTxn { sent: sent + 1 };
        later(sim);
        return;
    }
    if app(sim).offsets_pending.is_some() {
        // Its outcome steps the application on.
        return;
    }
    if planned.commit {
        match sim.producers[i].commit_transaction(now) {
            Ok(()) => app(sim).phase = Phase::Committing,
            Err(TxnError::Abortable { .. }) => abort(sim, i),
            Err(TxnError::Fatal(code)) => fatal(sim, code),
            Err(e) => panic!("commit_transaction: {e}\n{}", sim.state()),
        }
    } else {
        abort(sim, i);
    }
}

fn abort(sim: &mut Sim, i: usize) {
    match sim.producers[i].abort_transaction(sim.now) {
        Ok(()) => app(sim).phase = Phase::Aborting,
        Err(TxnError::Fatal(code)) => fatal(sim, code),
        Err(e) => panic!("abort_transaction: {e}\n{}", sim.state()),
    }
}

/// A finished transaction call of instance `i`.
pub fn on_outcome(sim: &mut Sim, i: usize, o: TxnOutcome) {
    if app(sim).zombie.as_ref().is_some_and(|z| z.instance == i) {
        return on_zombie_outcome(sim, i, o);
    }
    assert_eq!(
        i,
        app(sim).instance,
        "an outcome from a replaced instance: {o:?}"
    );
    let phase = app(sim).phase;
    match (o.call, o.result) {
        (TxnCall::InitTransactions, Ok(())) => {
            assert_eq!(phase, Phase::Initializing);
            // The previous instance's transaction is over at the coordinator.
            assert!(
                sim.cluster
                    .transaction_partitions(TRANSACTIONAL_ID)
                    .is_empty(),
                "a transaction stays open after init_transactions\n{}",
                sim.state()
            );
            let a = app(sim);
            a.phase = Phase::Ready;
            // A zombie learns of its fence once, from the first init after it.
            if a.zombie.as_ref().is_some_and(|z| z.tries == 0) {
                zombie_goes_on(sim);
            }
            later(sim);
        }
        (TxnCall::SendOffsets, Ok(())) => {
            let a = app(sim);
            let Some(want) = a.offsets_pending.take() else {
                panic!("offsets not asked for\n{}", sim.state());
            };
            a.open_attempt().offsets = want;
            later(sim);
        }
        (TxnCall::SendOffsets, Err(TxnError::Abortable { .. })) => {
            app(sim).offsets_pending = None;
            later(sim);
        }
        (TxnCall::Commit, Ok(())) => {
            assert_eq!(phase, Phase::Committing);
            let a = sim.app.as_ref().expect("app");
            let k = a.open.expect("open");
            // A commit that succeeded had every record delivered.
            for n in &a.attempts[k].records {
                let rid = sim.ids[n];
                assert!(
                    matches!(sim.outcomes.get(&rid), Some(Outcome::Delivered { .. })),
                    "transaction {k} committed, its record {n}: {:?}\n{}",
                    sim.outcomes.get(&rid),
                    sim.state()
                );
            }
            // Its offsets are committed now, with it.
            let a = app(sim);
            let offsets = a.attempts[k].offsets.clone();
            if !offsets.is_empty() {
                a.totals.with_offsets += 1;
            }
            a.committed_offsets.extend(offsets);
            check_offsets(sim, "after a commit");
            let a = app(sim);
            a.open = None;
            a.end_attempt(k, End::Committed);
            a.next_planned();
            a.phase = Phase::Ready;
            later(sim);
        }
        (TxnCall::Commit, Err(TxnError::Abortable { .. })) => abort(sim, i),
        (TxnCall::Abort, Ok(())) => {
            assert_eq!(phase, Phase::Aborting);
            let a = app(sim);
            let k = a.open.take().expect("open");
            a.end_attempt(k, End::Aborted);
            a.next_planned();
            a.phase = Phase::Ready;
            // Its offsets are not committed.
            check_offsets(sim, "after an abort");
            later(sim);
        }
        (_, Err(TxnError::Fatal(code))) => fatal(sim, code),
        (call, r) => panic!("{call}: {r:?} in phase {phase:?}\n{}", sim.state()),
    }
}

/// The group's committed offsets are exactly those of the committed transactions.
fn check_offsets(sim: &Sim, when: &str) {
    let a = sim.app.as_ref().expect("app");
    for p in 0..3 {
        assert_eq!(
            sim.cluster.committed_offset(GROUP, INPUT, p),
            a.committed_offsets.get(&p).copied(),
            "input partition {p} {when}\n{}",
            sim.state()
        );
    }
}

/// The zombie, fenced by the new instance's init, goes on as if nothing
/// happened: a record and a commit (in a new transaction if it had none).
pub fn zombie_goes_on(sim: &mut Sim) {
    let now = sim.now;
    let z = app(sim).zombie.as_mut().expect("zombie");
    z.tries += 1;
    assert!(z.tries <= 50, "the zombie is never fenced\n{}", sim.state());
    let (zi, attempt) = (z.instance, z.attempt);
    if attempt.is_none() {
        match sim.producers[zi].begin_transaction(now) {
            Ok(()) => {}
            Err(TxnError::Fatal(code)) => return zombie_fenced(sim, zi, code),
            Err(e) => panic!("zombie begin_transaction: {e}\n{}", sim.state()),
        }
        let a = app(sim);
        a.attempts.push(Attempt {
            instance: zi,
            records: Vec::new(),
            offsets: BTreeMap::new(),
            planned_commit: false,
            end: End::Open,
        });
        let k = a.attempts.len() - 1;
        a.zombie.as_mut().expect("zombie").attempt = Some(k);
    }
    let k = app(sim)
        .zombie
        .as_ref()
        .and_then(|z| z.attempt)
        .expect("open");
    let n = app(sim).next_record;
    app(sim).next_record += 1;
    match sim.send_record(zi, n, TOPIC) {
        Ok(()) => app(sim).attempts[k].records.push(n),
        Err(SendError::Fatal { code, .. }) => return zombie_fenced(sim, zi, code),
        Err(SendError::Transaction { .. }) | Err(SendError::BufferFull { .. }) => {}
        Err(e) => panic!("zombie send: {e}\n{}", sim.state()),
    }
    zombie_commits(sim, zi);
}

/// The zombie commits (once the offsets it sent before it was replaced
/// have their outcome).
fn zombie_commits(sim: &mut Sim, zi: usize) {
    match sim.producers[zi].commit_transaction(sim.now) {
        Ok(()) => {}
        Err(TxnError::Pending {
            pending: TxnCall::SendOffsets,
            ..
        }) => {}
        Err(TxnError::Abortable { .. }) => zombie_aborts(sim, zi),
        Err(TxnError::Fatal(code)) => zombie_fenced(sim, zi, code),
        Err(e) => panic!("zombie commit_transaction: {e}\n{}", sim.state()),
    }
}

fn zombie_aborts(sim: &mut Sim, zi: usize) {
    match sim.producers[zi].abort_transaction(sim.now) {
        Ok(()) => {}
        Err(TxnError::Fatal(code)) => zombie_fenced(sim, zi, code),
        Err(e) => panic!("zombie abort_transaction: {e}\n{}", sim.state()),
    }
}

fn on_zombie_outcome(sim: &mut Sim, zi: usize, o: TxnOutcome) {
    match (o.call, o.result) {
        (TxnCall::Commit, Ok(())) => panic!("a fenced instance committed\n{}", sim.state()),
        (TxnCall::Commit, Err(TxnError::Abortable { .. })) => zombie_aborts(sim, zi),
        (TxnCall::Abort, Ok(())) => {
            // Aborted with nothing at the coordinator: it tries again.
            let a = app(sim);
            let z = a.zombie.as_mut().expect("zombie");
            let k = z.attempt.take().expect("open");
            a.end_attempt(k, End::Aborted);
            // Later: its records may have failed before reaching a broker
            // (the topic's metadata refused), then nothing told it yet.
            let d = Duration::from_millis(10 + sim.rng.below(50));
            sim.schedule(sim.now + d, SimEvent::Zombie);
        }
        (_, Err(TxnError::Fatal(code))) => zombie_fenced(sim, zi, code),
        // Sent before it was replaced: it may commit now if it was told to.
        (TxnCall::SendOffsets, Ok(())) if zombie_told(sim) => zombie_commits(sim, zi),
        (TxnCall::SendOffsets, Err(TxnError::Abortable { .. })) if zombie_told(sim) => {
            zombie_aborts(sim, zi)
        }
        (TxnCall::SendOffsets, _) => {}
        (call, r) => panic!("zombie {call}: {r:?}\n{}", sim.state()),
    }
}

/// Whether the zombie has been told to go on (its replacement is ready).
fn zombie_told(sim: &Sim) -> bool {
    sim.app
        .as_ref()
        .and_then(|a| a.zombie.as_ref())
        .is_some_and(|z| z.tries > 0)
}

/// The zombie failed with `code`: it must be the fence, and every later
/// call and send fails with it.
fn zombie_fenced(sim: &mut Sim, zi: usize, code: ErrorCode) {
    assert_eq!(
        code,
        ErrorCode::ProducerFenced,
        "the zombie failed, not fenced\n{}",
        sim.state()
    );
    let now = sim.now;
    let p = &mut sim.producers[zi];
    assert_eq!(p.transaction_state(), Some(TxnState::FatalError));
    let fenced = Err(TxnError::Fatal(ErrorCode::ProducerFenced));
    assert_eq!(p.begin_transaction(now), fenced);
    assert_eq!(p.commit_transaction(now), fenced);
    assert_eq!(p.abort_transaction(now), fenced);
    assert_eq!(
        p.send_offsets_to_transaction(offsets_of(&[0], 0), now),
        fenced
    );
    let r = p.send(kafka_sansio::producer::ProducerRecord::new(TOPIC, "z"), now);
    assert!(
        matches!(
            r,
            Err(SendError::Fatal {
                code: ErrorCode::ProducerFenced,
                ..
            })
        ),
        "zombie send after the fence: {r:?}"
    );
    p.close(now);
    let a = app(sim);
    let z = a.zombie.take().expect("zombie");
    if let Some(k) = z.attempt {
        a.end_attempt(k, End::Failed("fenced".into()));
    }
    a.totals.fencings += 1;
}

/// Faults of transactional scenarios, besides the others: coordinator
/// moves and the errors coordinators answer while moving or busy.
pub fn inject_faults(sim: &mut Sim) {
    let rate = sim.sc.fault_rate;
    if sim.rng.chance(rate / 20) {
        move_coordinator(sim, TRANSACTIONAL_ID);
    }
    if sim.rng.chance(rate / 2) {
        let (api, codes): (ApiKey, &[ErrorCode]) = match sim.rng.below(5) {
            0 => (
                ApiKey::EndTxn,
                &[
                    ErrorCode::NotCoordinator,
                    ErrorCode::CoordinatorLoadInProgress,
                    ErrorCode::ConcurrentTransactions,
                ],
            ),
            1 => (
                ApiKey::AddPartitionsToTxn,
                &[ErrorCode::ConcurrentTransactions, ErrorCode::NotCoordinator],
            ),
            2 => (
                ApiKey::InitProducerId,
                &[
                    ErrorCode::CoordinatorLoadInProgress,
                    ErrorCode::NotCoordinator,
                ],
            ),
            3 => (
                ApiKey::FindCoordinator,
                &[ErrorCode::CoordinatorNotAvailable],
            ),
            _ => (
                ApiKey::TxnOffsetCommit,
                &[
                    ErrorCode::CoordinatorLoadInProgress,
                    ErrorCode::NotCoordinator,
                ],
            ),
        };
        let c = codes[sim.rng.below(codes.len() as u64) as usize];
        sim.push_error(api, c);
    }
}

/// Record numbers and offsets a read_committed consumer reads of
/// `topic`/`partition` through the mock's Fetch (v11, READ_COMMITTED),
/// filtering as Java's consumer does: up to the last stable offset,
/// control batches dropped, and a producer's batches dropped from the
/// first offset of an aborted transaction the answer lists to its marker.
fn fetch_committed(c: &mut MockCluster, topic: &str, partition: i32) -> Vec<(usize, i64)> {
    const VERSION: i16 = 11;
    let node = c.leader(topic, partition).expect("a leader");
    let mut out = Vec::new();
    let mut offset = 0;
    let mut aborted: Vec<(i64, i64)> = Vec::new();
    let mut aborting: BTreeSet<i64> = BTreeSet::new();
    loop {
        let req = FetchRequest {
            replica_id: -1,
            max_bytes: 1 << 20,
            isolation_level: READ_COMMITTED,
            topics: vec![FetchTopic {
                topic: topic.into(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_request(&mut buf, 1, Some("reader"), VERSION, &req).expect("encodes");
        let r = c.handle_request(node, Bytes::from(buf).slice(4..), Instant::now());
        let resp = r.response.expect("a Fetch answer");
        let (_, f) = decode_response::<FetchResponse>(resp.slice(4..), VERSION).expect("decodes");
        let pd = &f.responses[0].partitions[0];
        assert_eq!(pd.error_code, 0, "{topic}/{partition}: {pd:?}");
        for a in pd.aborted_transactions.iter().flatten() {
            if !aborted.contains(&(a.producer_id, a.first_offset)) {
                aborted.push((a.producer_id, a.first_offset));
            }
        }
        aborted.sort_by_key(|(_, first)| *first);
        let batches = RecordBatch::decode_all(pd.records.clone().unwrap_or_default())
            .expect("batches decode");
        let mut progressed = false;
        for b in batches {
            if b.base_offset < offset {
                continue;
            }
            if b.base_offset >= pd.last_stable_offset {
                return out;
            }
            let last = b.base_offset + b.last_offset_delta as i64;
            aborted.retain(|(pid, first)| {
                if *first <= last {
                    aborting.insert(*pid);
                    false
                } else {
                    true
                }
            });
            offset = last + 1;
            progressed = true;
            if b.is_control() {
                aborting.remove(&b.producer_id);
                continue;
            }
            if b.is_transactional() && aborting.contains(&b.producer_id) {
                continue;
            }
            for (k, rec) in b.records().expect("records decode").into_iter().enumerate() {
                let n = std::str::from_utf8(rec.value.as_ref().expect("value"))
                    .expect("utf-8")
                    .parse()
                    .expect("a record number");
                out.push((n, b.base_offset + k as i64));
            }
        }
        if !progressed {
            return out;
        }
    }
}

/// What a read_committed consumer reads, against what the application
/// was told.
pub fn check(sim: &Sim, ctx: &str) {
    let a = sim.app.as_ref().expect("app");
    let plan = &a.plan;
    let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
    for (k, t) in a.attempts.iter().enumerate() {
        for n in &t.records {
            owner.insert(*n, k);
        }
        if !a.gave_up {
            assert_ne!(t.end, End::Open, "transaction {k} never ended\n{ctx}");
        }
    }
    // Record number -> where the read_committed reader found it.
    let mut read: BTreeMap<usize, Vec<(&str, i32, i64)>> = BTreeMap::new();
    // A copy of the cluster to read from, every broker up, as a consumer
    // would find it once the faults have passed.
    let mut reader = sim.cluster.clone();
    for n in 0..sim.sc.brokers as i32 {
        reader.set_broker_down(n, false);
    }
    for (topic, partitions) in [(TOPIC, sim.sc.partitions), (TOPIC_B, plan.partitions_b)] {
        for p in 0..partitions {
            let records: Vec<(usize, i64)> = sim
                .cluster
                .committed_records(topic, p)
                .expect("log decodes")
                .iter()
                .map(|r| {
                    let n = std::str::from_utf8(r.value.as_ref().expect("value"))
                        .expect("utf-8")
                        .parse()
                        .expect("a record number");
                    (n, r.offset)
                })
                .collect();
            // A consumer reading with Fetch filters to the same. (Not on a
            // SASL listener: this reader does not authenticate.)
            if sim.sc.sasl.is_none() {
                let fetched = fetch_committed(&mut reader, topic, p);
                assert_eq!(
                    fetched, records,
                    "{topic}/{p}: read_committed Fetch against committed_records\n{ctx}"
                );
            }
            let mut last: Option<usize> = None;
            for (n, offset) in records {
                if let Some(l) = last {
                    assert!(n > l, "{topic}/{p}: record {n} read after {l}\n{ctx}");
                }
                last = Some(n);
                read.entry(n).or_default().push((topic, p, offset));
            }
            if !a.gave_up {
                assert_eq!(
                    sim.cluster.last_stable_offset(topic, p),
                    sim.cluster.log_end_offset(topic, p),
                    "{topic}/{p}: a transaction left open\n{ctx}"
                );
            }
        }
    }
    for (n, places) in &read {
        let k = owner
            .get(n)
            .unwrap_or_else(|| panic!("record {n} read, never accepted\n{ctx}"));
        assert_eq!(
            a.attempts[*k].end,
            End::Committed,
            "record {n} of transaction {k} read at {places:?}\n{ctx}"
        );
        assert_eq!(places.len(), 1, "record {n} read twice: {places:?}\n{ctx}");
    }
    for (k, t) in a.attempts.iter().enumerate() {
        if t.end != End::Committed {
            continue;
        }
        for n in &t.records {
            let Some(places) = read.get(n) else {
                panic!("record {n} of committed transaction {k} not read\n{ctx}");
            };
            let (topic, p, offset) = places[0];
            let rid = sim.ids[n];
            assert_eq!(rid.0, t.instance);
            let want = Outcome::Delivered {
                partition: p,
                offset,
            };
            assert_eq!(
                sim.outcomes.get(&rid),
                Some(&want),
                "record {n} read at {topic}/{p}/{offset}\n{ctx}"
            );
        }
    }
    check_offsets(sim, "at the end");
    // Without faults, every transaction planned to commit commits (or is
    // lost with its instance to a planned restart), and none fails fatally.
    if sim.sc.fault_rate == 0 && !sim.sc.fatal {
        for (k, t) in a.attempts.iter().enumerate() {
            assert!(
                !(t.planned_commit && t.end == End::Aborted),
                "transaction {k} aborted without faults\n{ctx}"
            );
            assert!(
                !matches!(&t.end, End::Failed(why) if why.starts_with("fatal")),
                "transaction {k}: {:?} without faults\n{ctx}",
                t.end
            );
        }
    }
}

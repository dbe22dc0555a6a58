//! The search: Wing & Gong's algorithm with Lowe's just-in-time
//! linearization and memoisation, as in Porcupine.
//!
//! A partition's history becomes a doubly linked list of call and return
//! entries in real-time order. The search walks the list: at a call it tries
//! to linearize the operation now (apply it to the model state, lift its call
//! and return out of the list, restart from the head); at a return it has
//! found an operation that had to be linearized already, so it backtracks.
//! Each (set of linearized operations, model state) is visited once: the set
//! is a bitset whose 128-bit fingerprint is kept incrementally (two random
//! words per operation, XORed in and out), and the memo is keyed by that
//! fingerprint combined with the state's hash. The memo of a short
//! partition stores bitsets in one flat vector; that of a long one only the
//! fingerprints, since bitsets would grow with the square of its length
//! (see [`check_partition`]). The inner loop allocates nothing once its
//! buffers have grown: the list is index arrays and the stack is reused.
//!
//! One pruning goes beyond Porcupine: an operation that never changes the
//! state ([`Model::read_only`]: a read, a failed cas) and can be linearized
//! now, may as well be linearized now. Any linearization that places it later stays
//! valid when it is moved to the front: it is callable, so everything that
//! must precede it is placed already, and it changes nothing. So when that
//! choice fails (or the memo shows it failed before), the search backtracks
//! at once instead of trying to place the read later. This makes many
//! concurrent reads cost linear, not exponential, time. For the same reason
//! the search, whenever it goes on from the head of the list, first looks
//! for such an operation among the callable ones and places it before any
//! write: with many concurrent writes and reads of their values, each read
//! then follows its own write at once, where the list's order would have
//! it try the orders of the writes first (2^32 sets for 16 writes and 16
//! reads).
//!
//! Before the search, [`impossible_op`] looks for an operation that no
//! order of the others can make possible (a read of a value no one had
//! begun to write when it returned): that refutes the partition without
//! the search, which would have to try every order of the operations
//! concurrent with it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A sequential specification: what a single copy of the object does.
///
/// `Op` is one operation together with its observed outcome (for example
/// "read returned 3"); `step` says which states the operation may lead to
/// from `state` (none: the outcome is impossible there). Pushing several
/// states makes the model nondeterministic. `Ctx` is per-partition scratch
/// space that the model may use to intern values, so that states stay small
/// and cheap to copy and compare; use `()` when no such thing is needed.
pub trait Model: Sync {
    /// One operation with its outcome.
    type Op: Clone + Send + Sync;
    /// The object's state; equal states must hash equally.
    type State: Clone + Eq + Hash + Send;
    /// Per-partition scratch space (interners, buffers).
    type Ctx: Send;

    /// The initial state.
    fn init(&self, ctx: &mut Self::Ctx) -> Self::State;

    /// Pushes onto `next` every state that `op` may lead to from `state`.
    fn step(
        &self,
        ctx: &mut Self::Ctx,
        state: &Self::State,
        op: &Self::Op,
        next: &mut Vec<Self::State>,
    );

    /// True when `op` never changes the state: wherever it can take
    /// effect, `step` leads back to the same state only (a read, a failed
    /// cas). The search then places it greedily (see the module docs).
    /// The default, false, is always safe.
    fn read_only(&self, op: &Self::Op) -> bool {
        let _ = op;
        false
    }

    /// A short human-readable rendering of an operation and its outcome.
    fn describe_op(&self, ctx: &Self::Ctx, op: &Self::Op) -> String;

    /// A short human-readable rendering of a state.
    fn describe_state(&self, ctx: &Self::Ctx, state: &Self::State) -> String;
}

/// One operation of a history, with its real-time interval.
///
/// `call` and `ret` are points on one clock (timestamps, or positions in
/// the file). `ret == u64::MAX` marks an operation whose outcome is unknown:
/// it may take effect at any point after its call, or never. Two operations
/// whose intervals touch (one's return time equals the other's call time) are
/// taken as concurrent.
#[derive(Debug, Clone)]
pub struct Operation<O> {
    /// Index of the operation in the whole history (for reports).
    pub id: usize,
    /// The client (process) that ran it.
    pub client: u64,
    pub call: u64,
    pub ret: u64,
    pub op: O,
}

/// The time that stands for "no return": the end of the history.
pub const NEVER: u64 = u64::MAX;

/// The operations of one partition (one key, or the whole history) and
/// the model's scratch space for them.
pub struct Partition<M: Model> {
    /// What the partition is (a key), for reports.
    pub key: String,
    pub ctx: M::Ctx,
    pub ops: Vec<Operation<M::Op>>,
}

/// The verdict for one partition or a whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Linearizable,
    /// The time or memo budget ran out (or the check was cancelled) first.
    Unknown,
    NotLinearizable,
}

/// Options for a check.
#[derive(Debug, Clone)]
pub struct Options {
    /// Give up (verdict unknown) after this long; `None`: no limit.
    pub timeout: Option<Duration>,
    /// Worker threads for partitions; 0 means one per available core.
    pub threads: usize,
    /// Stop the other partitions as soon as one is not linearizable.
    pub stop_on_failure: bool,
    /// Give up (verdict unknown) when one partition's memo of visited
    /// (linearized set, state) pairs grows past about this many bytes;
    /// `None`: no limit. The estimate counts each entry's bitset, its
    /// state's inline size and the table's slot, not memory a state owns
    /// on the heap (a key's value), so the real footprint is somewhat larger.
    pub memo_limit: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: None,
            threads: 0,
            stop_on_failure: true,
            memo_limit: None,
        }
    }
}

/// The longest linearization the search found, for explanations.
#[derive(Debug, Clone)]
pub struct Longest<S> {
    /// Indices (into the partition's `ops`) in linearization order.
    pub order: Vec<usize>,
    /// The state after them.
    pub state: S,
}

/// The outcome of checking one partition.
#[derive(Debug, Clone)]
pub struct PartitionResult<S> {
    pub verdict: Verdict,
    /// Search steps taken (operations tried).
    pub steps: u64,
    /// When tracking was asked for: the longest linearization found (for a
    /// linearizable partition, a complete one).
    pub longest: Option<Longest<S>>,
}

/// Everything `check` learned.
pub struct CheckResult<M: Model> {
    pub verdict: Verdict,
    /// The partitions, in the order given, with their results.
    pub partitions: Vec<(Partition<M>, PartitionResult<M::State>)>,
}

impl<M: Model> CheckResult<M> {
    /// The first partition that is not linearizable.
    pub fn failing(&self) -> Option<&(Partition<M>, PartitionResult<M::State>)> {
        self.partitions
            .iter()
            .find(|(_, r)| r.verdict == Verdict::NotLinearizable)
    }
}

/// A stop signal shared by the workers: a deadline, a memo size limit
/// and a cancel flag.
pub struct Budget {
    deadline: Option<Instant>,
    memo_limit: Option<usize>,
    cancel: AtomicBool,
}

impl Budget {
    pub fn new(timeout: Option<Duration>) -> Self {
        Budget {
            deadline: timeout.map(|t| Instant::now() + t),
            memo_limit: None,
            cancel: AtomicBool::new(false),
        }
    }

    /// The same budget, and each partition's memo at most about `bytes`.
    pub fn with_memo_limit(mut self, bytes: Option<usize>) -> Self {
        self.memo_limit = bytes;
        self
    }

    /// A budget of its own that ends with this one or after `limit`,
    /// whichever comes first (it does not see a later cancel of this one).
    fn capped(&self, limit: Duration) -> Budget {
        let end = Instant::now() + limit;
        Budget {
            deadline: Some(self.deadline.map_or(end, |d| d.min(end))),
            memo_limit: self.memo_limit,
            cancel: AtomicBool::new(self.cancel.load(Ordering::Relaxed)),
        }
    }

    /// Asks every search using this budget to stop.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    fn exhausted(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Checks every partition, in parallel, and combines the verdicts: not
/// linearizable if one partition is not, else unknown if one ran out of
/// time, else linearizable.
pub fn check<M: Model>(
    model: &M,
    partitions: Vec<Partition<M>>,
    options: &Options,
) -> CheckResult<M> {
    let budget = Budget::new(options.timeout).with_memo_limit(options.memo_limit);
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        options.threads
    }
    .clamp(1, partitions.len().max(1));
    // Largest partitions first, so the long poles start early.
    let mut order: Vec<usize> = (0..partitions.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(partitions[i].ops.len()));
    order.reverse();
    let queue = Mutex::new(order);
    let cells: Vec<Mutex<Cell<M>>> = partitions
        .into_iter()
        .map(|p| Mutex::new((Some(p), None)))
        .collect();
    let worker = || loop {
        let Some(i) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
            return;
        };
        let mut cell = cells[i].lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut partition) = cell.0.take() else {
            continue;
        };
        let result = if budget.exhausted() {
            PartitionResult {
                verdict: Verdict::Unknown,
                steps: 0,
                longest: None,
            }
        } else {
            check_partition(model, &mut partition, &budget, false)
        };
        if result.verdict == Verdict::NotLinearizable && options.stop_on_failure {
            budget.cancel();
        }
        *cell = (Some(partition), Some(result));
    };
    if threads == 1 {
        // No thread to spawn for one partition (or one core).
        worker();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(worker);
            }
        });
    }
    let partitions: Vec<_> = cells
        .into_iter()
        .map(|c| {
            let (p, r) = c.into_inner().unwrap_or_else(|e| e.into_inner());
            (
                p.expect("every partition is returned"),
                r.expect("every partition has a result"),
            )
        })
        .collect();
    let verdict = partitions
        .iter()
        .map(|(_, r)| r.verdict)
        .max()
        .unwrap_or(Verdict::Linearizable);
    CheckResult {
        verdict,
        partitions,
    }
}

/// A partition waiting to be checked, or checked with its result.
type Cell<M> = (
    Option<Partition<M>>,
    Option<PartitionResult<<M as Model>::State>>,
);

/// Hashes states (and nothing else) with FxHash's multiply-rotate scheme:
/// fast, and good enough for a memo that compares keys exactly.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

const FX_K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(FX_K);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`FxHasher`]s, for small keys such as ids.
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

fn state_hash<S: Hash>(s: &S) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    // Final avalanche (from splitmix64) so that low bits are well mixed.
    mix(h.finish())
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The memo of visited (linearized set, state) pairs. Entries live in flat
/// vectors; the table maps a combined hash to the newest entry with that
/// hash, and entries with equal hashes are chained.
///
/// A linearized set is known by its 128-bit fingerprint (the XOR of two
/// random words per operation in it) and, in an exact memo, also by its
/// bitset. The bitset of a partition of n operations takes n/8 bytes, so a
/// memo of a long partition holding bitsets grows with the square of its
/// length (about 1 GB for 50,000 operations); a fingerprint takes 16. See
/// [`check_partition`] for why a search with fingerprints only never gives
/// a wrong verdict.
struct Memo<S> {
    /// Words per bitset; 0 when the memo holds fingerprints only.
    words: usize,
    table: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>,
    chain: Vec<u32>,
    states: Vec<S>,
    prints: Vec<u128>,
    bits: Vec<u64>,
}

const NO_ENTRY: u32 = u32::MAX;

impl<S: Eq + Clone> Memo<S> {
    /// A memo that keeps each set's bitset of `words` words (exact), or
    /// only its fingerprint (`words` 0).
    fn new(words: usize) -> Self {
        Memo {
            words,
            table: HashMap::default(),
            chain: Vec::new(),
            states: Vec::new(),
            prints: Vec::new(),
            bits: Vec::new(),
        }
    }

    /// Records the pair; false if it was there already. One hash-table
    /// lookup either way.
    fn insert(&mut self, set: &LinSet, state: &S, state_hash: u64) -> bool {
        use std::collections::hash_map::Entry;
        let key = (set.print as u64) ^ state_hash.rotate_left(29);
        let Memo {
            words,
            table,
            chain,
            states,
            prints,
            bits: all_bits,
        } = self;
        let new = states.len() as u32;
        let head = match table.entry(key) {
            Entry::Vacant(v) => {
                v.insert(new);
                NO_ENTRY
            }
            Entry::Occupied(mut o) => {
                let mut e = *o.get();
                while e != NO_ENTRY {
                    let i = e as usize;
                    if prints[i] == set.print
                        && states[i] == *state
                        && all_bits[i * *words..(i + 1) * *words] == set.bits[..*words]
                    {
                        return false;
                    }
                    e = chain[i];
                }
                std::mem::replace(o.get_mut(), new)
            }
        };
        chain.push(head);
        states.push(state.clone());
        prints.push(set.print);
        all_bits.extend_from_slice(&set.bits[..*words]);
        true
    }
}

/// The set of linearized operations: a bitset and its fingerprint.
struct LinSet {
    bits: Vec<u64>,
    print: u128,
    /// Two random words per operation, XORed into `print` while it is in.
    zobrist: Vec<u128>,
}

impl LinSet {
    fn new(n: usize) -> Self {
        LinSet {
            bits: vec![0; n.div_ceil(64).max(1)],
            print: 0,
            zobrist: (0..n).map(zobrist).collect(),
        }
    }

    /// Adds operation `o` if it is out, removes it if it is in.
    fn flip(&mut self, o: usize) {
        self.bits[o / 64] ^= 1 << (o % 64);
        self.print ^= self.zobrist[o];
    }
}

/// Partitions of more operations than this are searched with a memo of
/// fingerprints first (see [`check_partition`]); at this size a bitset
/// takes 512 bytes.
const EXACT_UP_TO: usize = 4096;

/// The longest a tracked search of a partition that [`impossible_op`]
/// refuted looks for a prefix to show.
const PREFIX_BUDGET: Duration = Duration::from_secs(1);

/// The entry list: index 0 is the head sentinel, entries 1..=2n are calls
/// and returns in real-time order.
struct Entries {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// For a call entry: its operation; for a return entry: NOT_CALL.
    op: Vec<u32>,
    /// For a call entry: its return entry.
    matching: Vec<u32>,
}

const NIL: u32 = u32::MAX;
const NOT_CALL: u32 = u32::MAX;

impl Entries {
    fn new<O>(ops: &[Operation<O>]) -> Self {
        // (time, is_return, original position) sorts calls before returns at
        // equal times (so touching intervals overlap) and keeps file order.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, o) in ops.iter().enumerate() {
            events.push((o.call, false, i));
            events.push((o.ret.max(o.call), true, i));
        }
        events.sort_by_key(|&(t, r, i)| (t, r, i));
        let n = events.len() + 1;
        let mut e = Entries {
            next: vec![NIL; n],
            prev: vec![NIL; n],
            op: vec![NOT_CALL; n],
            matching: vec![NIL; n],
        };
        let mut call_entry = vec![0u32; ops.len()];
        for (k, &(_, is_return, i)) in events.iter().enumerate() {
            let idx = (k + 1) as u32;
            e.prev[idx as usize] = idx - 1;
            e.next[idx as usize - 1] = idx;
            if is_return {
                e.matching[call_entry[i] as usize] = idx;
            } else {
                e.op[idx as usize] = i as u32;
                call_entry[i] = idx;
            }
        }
        e
    }

    fn lift(&mut self, call: u32) {
        let ret = self.matching[call as usize];
        for x in [call, ret] {
            let (p, n) = (self.prev[x as usize], self.next[x as usize]);
            self.next[p as usize] = n;
            if n != NIL {
                self.prev[n as usize] = p;
            }
        }
    }

    fn unlift(&mut self, call: u32) {
        let ret = self.matching[call as usize];
        for x in [ret, call] {
            let (p, n) = (self.prev[x as usize], self.next[x as usize]);
            self.next[p as usize] = x;
            if n != NIL {
                self.prev[n as usize] = x;
            }
        }
    }
}

struct Frame<S> {
    call: u32,
    /// The operation left the state as it was (see the module docs).
    pure: bool,
    /// The state before this operation.
    before: S,
    /// Where this frame's untried alternative states start in `alts`.
    alts_from: usize,
}

/// The two random words that stand for operation `i` in the fingerprint of
/// a linearized set.
fn zobrist(i: usize) -> u128 {
    let x = (i as u64).wrapping_add(1);
    let lo = mix(x.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let hi = mix(x.wrapping_mul(0xd1b5_4a32_d192_ed03) ^ 0x2545_f491_4f6c_dd1d);
    (u128::from(hi) << 64) | u128::from(lo)
}

/// How far [`impossible_op`] goes before it gives up: states kept, and
/// calls of [`Model::step`]. Small: it pays where few states are reachable
/// (a register of a few dozen values), and a model whose states grow with
/// each step (appends: every state a longer value) must not fill memory
/// with them before the search starts.
const REACH_STATES: usize = 256;
const REACH_STEPS: u64 = 1 << 17;

/// An operation that must take effect (its outcome is known: `ret` is not
/// [`NEVER`]) but can take effect in no state that the partition's
/// operations called by its return could produce, applied any number of
/// times in any order. Then no linearization exists, whatever the order of
/// the rest, and the search, which would have to try every order of the
/// operations concurrent with it to find that out (exponential when many
/// are), is not needed: a read of a value no write had begun to write by
/// the time the read returned, say.
///
/// Sound: in a linearization the operation takes effect at a point of its
/// interval, in the state that the operations linearized before it left,
/// and each of those took effect before that point, so was called no later
/// than the operation's return (touching intervals count as concurrent, as
/// in the search). The states computed here include every such state, since
/// the operations that do not change the state ([`Model::read_only`]) are
/// left out and the others are applied in every order, each any number of
/// times. So an operation that none of them allows cannot take effect in
/// any linearization. Not complete: it ignores the order that real time
/// imposes among the others, which only the search takes into account.
///
/// Gives up (`None`) past [`REACH_STATES`] states or [`REACH_STEPS`] steps:
/// appends, for one, make new states without end.
pub fn impossible_op<M: Model>(
    model: &M,
    ctx: &mut M::Ctx,
    ops: &[Operation<M::Op>],
) -> Option<usize> {
    use std::collections::HashSet;
    let mut by_call: Vec<usize> = (0..ops.len()).collect();
    by_call.sort_by_key(|&i| ops[i].call);
    let mut by_ret: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret != NEVER).collect();
    by_ret.sort_by_key(|&i| ops[i].ret);
    let init = model.init(ctx);
    let mut states = vec![init.clone()];
    let mut seen: HashSet<M::State> = HashSet::from([init]);
    // The state-changing operations called so far; `states[..closed]` have
    // had `writers[..applied]` applied to them.
    let mut writers: Vec<usize> = Vec::new();
    let (mut closed, mut applied, mut called) = (0, 0, 0);
    let mut steps = 0u64;
    let mut next = Vec::new();
    for &r in &by_ret {
        while called < by_call.len() && ops[by_call[called]].call <= ops[r].ret {
            let i = by_call[called];
            called += 1;
            if !model.read_only(&ops[i].op) {
                writers.push(i);
            }
        }
        // Close the states under every writer: the new writers on the
        // states already closed, then every writer on the states found.
        let mut at = 0;
        while at < states.len() {
            let from = if at < closed { applied } else { 0 };
            for &w in &writers[from..] {
                steps += 1;
                next.clear();
                model.step(ctx, &states[at], &ops[w].op, &mut next);
                for s in next.drain(..) {
                    if seen.insert(s.clone()) {
                        states.push(s);
                    }
                }
            }
            if states.len() > REACH_STATES || steps > REACH_STEPS {
                return None;
            }
            at += 1;
        }
        (closed, applied) = (states.len(), writers.len());
        let possible = states.iter().any(|s| {
            next.clear();
            model.step(ctx, s, &ops[r].op, &mut next);
            !next.is_empty()
        });
        steps += states.len() as u64;
        if !possible {
            return Some(r);
        }
        if steps > REACH_STEPS {
            return None;
        }
    }
    None
}

/// Checks one partition. With `track`, also records the longest
/// linearization found (this costs a copy of the stack at each new maximum).
///
/// An operation that [`impossible_op`] finds makes the partition not
/// linearizable without a search; with `track` a search still looks for a
/// prefix to show, within at most [`PREFIX_BUDGET`].
///
/// A partition of more than [`EXACT_UP_TO`] operations is searched first
/// with a memo of fingerprints: memory linear in its length, not
/// quadratic. Two different sets whose fingerprints collide (a chance of
/// about 2^-128 per pair) could only make the search skip a way it had not
/// tried, never accept a wrong one: a linearizable verdict comes with a
/// whole linearization found, so it stands. A verdict of not linearizable
/// is confirmed by a second search with an exact memo before it is given.
pub fn check_partition<M: Model>(
    model: &M,
    partition: &mut Partition<M>,
    budget: &Budget,
    track: bool,
) -> PartitionResult<M::State> {
    // Most partitions are decided within a few thousand steps. Only one
    // that is not is looked at for an impossible operation (which costs
    // up to REACH_STEPS steps of the model, more than the search of a
    // small partition), and then searched again from the start.
    let quick_steps = QUICK_STEPS.max(16 * partition.ops.len() as u64);
    let first = decide(model, partition, budget, track, quick_steps);
    if first.verdict != Verdict::Unknown {
        return first;
    }
    if impossible_op(model, &mut partition.ctx, &partition.ops).is_some() {
        if !track {
            return PartitionResult {
                verdict: Verdict::NotLinearizable,
                steps: first.steps,
                longest: None,
            };
        }
        let words = partition.ops.len().div_ceil(64).max(1);
        let short = budget.capped(PREFIX_BUDGET);
        let mut r = search(model, partition, &short, true, words, u64::MAX);
        debug_assert_ne!(r.verdict, Verdict::Linearizable, "impossible_op is sound");
        r.verdict = Verdict::NotLinearizable;
        r.steps += first.steps;
        return r;
    }
    if first.steps < quick_steps {
        // Stopped by the budget, not by QUICK_STEPS.
        return first;
    }
    let mut r = decide(model, partition, budget, track, u64::MAX);
    r.steps += first.steps;
    r
}

/// Steps after which [`check_partition`] stops its first search to look
/// for an impossible operation: this many, or 16 per operation if that is
/// more (a long partition that is easy takes a few steps per operation).
const QUICK_STEPS: u64 = 1 << 16;

/// The search of a partition within `max_steps` steps: exact, or first
/// with fingerprints for a long one (see [`check_partition`]).
fn decide<M: Model>(
    model: &M,
    partition: &mut Partition<M>,
    budget: &Budget,
    track: bool,
    max_steps: u64,
) -> PartitionResult<M::State> {
    let words = partition.ops.len().div_ceil(64).max(1);
    if partition.ops.len() <= EXACT_UP_TO {
        return search(model, partition, budget, track, words, max_steps);
    }
    let quick = search(model, partition, budget, track, 0, max_steps);
    if quick.verdict != Verdict::NotLinearizable {
        return quick;
    }
    let mut exact = search(model, partition, budget, track, words, u64::MAX);
    exact.steps += quick.steps;
    exact
}

/// Where the search goes on from the head of the list in `state`: at a
/// callable operation that changes nothing and can take effect now, if
/// there is one, else at the head. Such an operation may as well be placed
/// first (see the module docs), and placing it before any write that is
/// also callable keeps the search from trying the orders of many
/// concurrent writes before it finds that each read fits right after its
/// own write.
fn start<M: Model>(
    model: &M,
    ctx: &mut M::Ctx,
    ops: &[Operation<M::Op>],
    entries: &Entries,
    state: &M::State,
    next: &mut Vec<M::State>,
) -> u32 {
    let head = entries.next[0];
    let mut e = head;
    // Only calls before the first return are callable.
    while e != NIL && entries.op[e as usize] != NOT_CALL {
        let op = &ops[entries.op[e as usize] as usize].op;
        if model.read_only(op) {
            next.clear();
            model.step(ctx, state, op, next);
            if !next.is_empty() {
                return e;
            }
        }
        e = entries.next[e as usize];
    }
    head
}

/// The search, with a memo of bitsets of `words` words or (0) of
/// fingerprints only.
fn search<M: Model>(
    model: &M,
    partition: &mut Partition<M>,
    budget: &Budget,
    track: bool,
    words: usize,
    max_steps: u64,
) -> PartitionResult<M::State> {
    let ctx = &mut partition.ctx;
    let ops = &partition.ops;
    let n = ops.len();
    let mut entries = Entries::new(ops);
    let mut set = LinSet::new(n);
    let mut memo = Memo::new(words);
    // The memo's bytes per entry, as Options::memo_limit counts them: the
    // bitset, the fingerprint, the state inline, the chain link and a
    // table slot.
    let entry_bytes = words * 8 + 16 + std::mem::size_of::<M::State>() + 4 + 16;
    let max_entries = budget.memo_limit.map(|b| b / entry_bytes);
    let mut stack: Vec<Frame<M::State>> = Vec::with_capacity(n);
    let mut alts: Vec<M::State> = Vec::new();
    let mut next: Vec<M::State> = Vec::with_capacity(4);
    let mut state = model.init(ctx);
    let mut steps = 0u64;
    let mut longest: Option<Longest<M::State>> = track.then(|| Longest {
        order: Vec::new(),
        state: state.clone(),
    });
    let mut entry = start(model, ctx, ops, &entries, &state, &mut next);
    let verdict = 'search: loop {
        if entry == NIL {
            break Verdict::Linearizable;
        }
        steps += 1;
        if steps & 0xfff == 0
            && (steps >= max_steps
                || budget.exhausted()
                || max_entries.is_some_and(|m| memo.states.len() > m))
        {
            break Verdict::Unknown;
        }
        let op = entries.op[entry as usize];
        if op != NOT_CALL {
            let o = op as usize;
            next.clear();
            model.step(ctx, &state, &ops[o].op, &mut next);
            if next.is_empty() {
                entry = entries.next[entry as usize];
                continue;
            }
            set.flip(o);
            let pure = model.read_only(&ops[o].op);
            let mut chosen = None;
            for (k, s) in next.iter().enumerate() {
                if memo.insert(&set, s, state_hash(s)) {
                    chosen = Some(k);
                    break;
                }
            }
            if let Some(k) = chosen {
                let alts_from = alts.len();
                alts.extend(next.drain(k + 1..));
                let new_state = next.swap_remove(k);
                let before = std::mem::replace(&mut state, new_state);
                stack.push(Frame {
                    call: entry,
                    pure,
                    before,
                    alts_from,
                });
                entries.lift(entry);
                if let Some(l) = longest.as_mut() {
                    if stack.len() > l.order.len() {
                        l.order.clear();
                        l.order
                            .extend(stack.iter().map(|f| entries.op[f.call as usize] as usize));
                        l.state = state.clone();
                    }
                }
                entry = start(model, ctx, ops, &entries, &state, &mut next);
                continue;
            }
            set.flip(o);
            if !pure {
                entry = entries.next[entry as usize];
                continue;
            }
            // Placing this no-op now was tried before and failed, so every
            // way on from this node fails (see the module docs).
        }
        // This node has no way on (a return entry whose operation is not
        // linearized, or a no-op that failed): try the top frame's other
        // outcomes, else undo it; past a no-op frame its parent fails too.
        loop {
            let Some(top) = stack.last() else {
                break 'search Verdict::NotLinearizable;
            };
            while alts.len() > top.alts_from {
                let s = alts.pop().expect("non-empty");
                if memo.insert(&set, &s, state_hash(&s)) {
                    state = s;
                    entry = start(model, ctx, ops, &entries, &state, &mut next);
                    continue 'search;
                }
            }
            let top = stack.pop().expect("non-empty");
            state = top.before;
            entries.unlift(top.call);
            let o = entries.op[top.call as usize] as usize;
            set.flip(o);
            if !top.pure {
                entry = entries.next[top.call as usize];
                continue 'search;
            }
        }
    };
    if verdict == Verdict::Linearizable {
        if let Some(l) = longest.as_mut() {
            l.order.clear();
            l.order
                .extend(stack.iter().map(|f| entries.op[f.call as usize] as usize));
            l.state = state.clone();
        }
    }
    PartitionResult {
        verdict,
        steps,
        longest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A register of small numbers, written here so that the search is
    /// tested on its own.
    struct Register;

    #[derive(Clone, Copy, Debug)]
    enum RegOp {
        Write(u32),
        Read(u32),
    }

    impl Model for Register {
        type Op = RegOp;
        type State = u32;
        type Ctx = ();

        fn init(&self, _: &mut ()) -> u32 {
            0
        }

        fn step(&self, _: &mut (), state: &u32, op: &RegOp, next: &mut Vec<u32>) {
            match *op {
                RegOp::Write(v) => next.push(v),
                RegOp::Read(v) if v == *state => next.push(v),
                RegOp::Read(_) => {}
            }
        }

        fn read_only(&self, op: &RegOp) -> bool {
            matches!(op, RegOp::Read(_))
        }

        fn describe_op(&self, _: &(), op: &RegOp) -> String {
            format!("{op:?}")
        }

        fn describe_state(&self, _: &(), state: &u32) -> String {
            state.to_string()
        }
    }

    /// A history of `n` operations by `clients` clients, cut from one
    /// sequential run (each takes effect at a point inside its interval),
    /// one write in `unknown` of them with an unknown outcome (none for 0).
    /// Linearizable. The first writes 7; the others write values below 4.
    fn history(rng: &mut impl Rng, n: usize, clients: u64, unknown: u32) -> Vec<Operation<RegOp>> {
        let mut value = 0;
        let mut ops = Vec::with_capacity(n);
        for i in 0..n {
            let at = 10 * i as u64 + 5;
            let op = if i == 0 {
                value = 7;
                RegOp::Write(7)
            } else if rng.random_bool(0.5) {
                value = rng.random_range(0..4);
                RegOp::Write(value)
            } else {
                RegOp::Read(value)
            };
            let call = at - rng.random_range(0..30).min(at);
            let ret = if i > 0
                && unknown > 0
                && matches!(op, RegOp::Write(_))
                && rng.random_ratio(1, unknown)
            {
                NEVER
            } else {
                at + rng.random_range(0..30)
            };
            ops.push(Operation {
                id: i,
                client: i as u64 % clients,
                call,
                ret,
                op,
            });
        }
        ops
    }

    fn partition(ops: Vec<Operation<RegOp>>) -> Partition<Register> {
        Partition {
            key: "r".into(),
            ctx: (),
            ops,
        }
    }

    #[test]
    fn fingerprints_and_bitsets_give_the_same_verdicts() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let budget = Budget::new(None);
        let mut seen = [0; 2];
        for _ in 0..3000 {
            let n = rng.random_range(2..14);
            let mut ops = history(&mut rng, n, 3, 8);
            // Half of them get one read of a value it may not have seen.
            if rng.random_bool(0.5) {
                let i = rng.random_range(0..n);
                ops[i].op = RegOp::Read(rng.random_range(0..8));
            }
            let mut p = partition(ops);
            let words = n.div_ceil(64);
            let exact = search(&Register, &mut p, &budget, false, words, u64::MAX).verdict;
            let prints = search(&Register, &mut p, &budget, false, 0, u64::MAX).verdict;
            assert_eq!(exact, prints, "{:?}", p.ops);
            seen[usize::from(exact == Verdict::NotLinearizable)] += 1;
        }
        assert!(
            seen[0] > 500 && seen[1] > 500,
            "both verdicts tried: {seen:?}"
        );
    }

    #[test]
    fn a_long_partition_is_searched_with_fingerprints_and_a_stale_read_still_fails() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let n = EXACT_UP_TO + 1_000;
        let budget = Budget::new(None);
        let ops = history(&mut rng, n, 5, 50);
        let mut good = partition(ops.clone());
        let r = check_partition(&Register, &mut good, &budget, true);
        assert_eq!(r.verdict, Verdict::Linearizable);
        // Every operation with a known outcome is in the linearization.
        assert!(r.longest.expect("tracked").order.len() >= n - unknown(&ops));
        // (A failed search tries every subset of the unknown-outcome
        // operations that may have taken effect: none here.)
        let ops = history(&mut rng, n, 5, 0);
        // A read at the end of the value the first operation wrote, after
        // writes that every later operation must follow: stale.
        let mut bad = ops;
        let last = bad.len() - 1;
        let tail = bad[last].call;
        for (k, o) in bad.iter_mut().rev().take(3).enumerate() {
            o.op = RegOp::Write(1 + k as u32 % 2);
            o.call = tail + 1_000 * k as u64;
            o.ret = o.call + 1;
        }
        bad.push(Operation {
            id: last + 1,
            client: 9,
            call: tail + 10_000,
            ret: tail + 10_001,
            op: RegOp::Read(7),
        });
        let mut bad = partition(bad);
        let quick = search(&Register, &mut bad, &budget, false, 0, u64::MAX);
        assert_eq!(quick.verdict, Verdict::NotLinearizable);
        let r = check_partition(&Register, &mut bad, &budget, false);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        assert_eq!(r.steps, 2 * quick.steps, "confirmed by an exact search");
    }

    #[test]
    fn an_impossible_operation_is_always_one_the_search_refutes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
        let budget = Budget::new(None);
        let mut found = 0;
        for _ in 0..3000 {
            let n = rng.random_range(2..14);
            let mut ops = history(&mut rng, n, 3, 8);
            // A read of a value that may be written by none, or only later.
            let i = rng.random_range(0..n);
            ops[i].op = RegOp::Read(rng.random_range(0..9));
            let mut p = partition(ops);
            if let Some(i) = impossible_op(&Register, &mut (), &p.ops) {
                found += 1;
                assert!(p.ops[i].ret != NEVER, "{:?}", p.ops);
                let words = n.div_ceil(64);
                let r = search(&Register, &mut p, &budget, false, words, u64::MAX);
                assert_eq!(r.verdict, Verdict::NotLinearizable, "{:?}", p.ops);
            }
        }
        assert!(found > 300, "found only {found}");
    }

    #[test]
    fn a_read_of_a_value_written_only_after_it_returned_is_impossible() {
        let op = |id, call, ret, op| Operation {
            id,
            client: id as u64,
            call,
            ret,
            op,
        };
        // Reads 5 (lines 1-2); 5 is written from line 3 on.
        let ops = vec![
            op(0, 0, 10, RegOp::Write(1)),
            op(1, 1, 2, RegOp::Read(5)),
            op(2, 3, 4, RegOp::Write(5)),
        ];
        assert_eq!(impossible_op(&Register, &mut (), &ops), Some(1));
        let mut p = partition(ops.clone());
        let r = check_partition(&Register, &mut p, &Budget::new(None), false);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        // With tracking, a prefix is found to show, and the verdict stands.
        let r = check_partition(&Register, &mut p, &Budget::new(None), true);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
        assert!(r.longest.is_some());
        // Touching intervals are concurrent: the write may come first.
        let mut touching = ops.clone();
        touching[2].call = 2;
        assert_eq!(impossible_op(&Register, &mut (), &touching), None);
        // Of unknown outcome, the read need not take effect at all.
        let mut unknown = ops;
        unknown[1].ret = NEVER;
        assert_eq!(impossible_op(&Register, &mut (), &unknown), None);
    }

    #[test]
    fn concurrent_writes_and_reads_of_each_value_are_placed_without_trying_write_orders() {
        // 32 writes of distinct values and 32 reads, one of each value in
        // a shuffled order, all concurrent: each read fits right after its
        // write. Trying the writes' orders first took longer than any
        // budget (2^32 sets of placed operations).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = 32u32;
        let mut values: Vec<u32> = (1..=n).collect();
        for i in (1..values.len()).rev() {
            values.swap(i, rng.random_range(0..=i));
        }
        let mut ops: Vec<Operation<RegOp>> = (1..=n)
            .map(RegOp::Write)
            .chain(values.iter().map(|&v| RegOp::Read(v)))
            .enumerate()
            .map(|(id, op)| Operation {
                id,
                client: id as u64,
                call: id as u64,
                ret: 1_000 + id as u64,
                op,
            })
            .collect();
        let mut p = partition(ops.clone());
        let budget = Budget::new(Some(Duration::from_secs(10)));
        let r = check_partition(&Register, &mut p, &budget, false);
        assert_eq!(r.verdict, Verdict::Linearizable);
        assert!(r.steps < 20_000, "{} steps", r.steps);
        // One read of a value nobody wrote: refuted.
        ops[40].op = RegOp::Read(n + 1);
        let mut p = partition(ops);
        let r = check_partition(&Register, &mut p, &budget, false);
        assert_eq!(r.verdict, Verdict::NotLinearizable);
    }

    /// A counter: every increment makes a new state.
    struct Counter;

    impl Model for Counter {
        type Op = Option<u32>;
        type State = u32;
        type Ctx = ();

        fn init(&self, _: &mut ()) -> u32 {
            0
        }

        /// `None` adds one; `Some(v)` reads v.
        fn step(&self, _: &mut (), state: &u32, op: &Option<u32>, next: &mut Vec<u32>) {
            match *op {
                None => next.push(state + 1),
                Some(v) if v == *state => next.push(v),
                Some(_) => {}
            }
        }

        fn read_only(&self, op: &Option<u32>) -> bool {
            op.is_some()
        }

        fn describe_op(&self, _: &(), op: &Option<u32>) -> String {
            format!("{op:?}")
        }

        fn describe_state(&self, _: &(), state: &u32) -> String {
            state.to_string()
        }
    }

    #[test]
    fn reachable_states_without_end_give_up_instead_of_refuting() {
        let ops = vec![
            Operation {
                id: 0,
                client: 0,
                call: 0,
                ret: 5,
                op: None,
            },
            Operation {
                id: 1,
                client: 1,
                call: 1,
                ret: 2,
                op: Some(7),
            },
        ];
        // Applying the increment any number of times reaches every count:
        // no refutation, and no endless loop either.
        assert_eq!(impossible_op(&Counter, &mut (), &ops), None);
        let mut p = Partition {
            key: String::new(),
            ctx: (),
            ops,
        };
        let r = check_partition(&Counter, &mut p, &Budget::new(None), false);
        assert_eq!(r.verdict, Verdict::NotLinearizable, "the search decides");
    }

    /// Unknown-outcome writes the search may leave out.
    fn unknown(ops: &[Operation<RegOp>]) -> usize {
        ops.iter().filter(|o| o.ret == NEVER).count()
    }
}

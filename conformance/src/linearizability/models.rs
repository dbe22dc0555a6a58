//! The models: a compare-and-set register (Jepsen's etcd histories), a
//! key-value store with get/put/append (Porcupine's kv histories), and our
//! own store `raftkv` (read/write/cas/delete/append per key).
//!
//! Values are interned per partition, so a state is a small integer (or,
//! for the unpartitioned key-value store, an interned map): states are
//! copied, hashed and compared in constant time, and a step allocates only
//! the first time it builds a value never seen before.

use std::collections::HashMap;

use super::engine::{FxBuild, Model, Operation, Partition, NEVER};
use super::history::{Call, History, HistoryOp, Outcome};

/// Interns byte strings (and sequences of ids) to dense `u32` ids.
#[derive(Debug, Default)]
pub struct Interner<T: std::hash::Hash + Eq + Clone> {
    ids: HashMap<T, u32>,
    values: Vec<T>,
}

impl<T: std::hash::Hash + Eq + Clone> Interner<T> {
    pub fn intern(&mut self, v: T) -> u32 {
        if let Some(&id) = self.ids.get(&v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.clone());
        self.ids.insert(v, id);
        id
    }

    pub fn get(&self, id: u32) -> &T {
        &self.values[id as usize]
    }
}

/// Value ids with id 0 reserved for "absent" (nil).
#[derive(Debug)]
pub struct Values {
    interner: Interner<String>,
    /// Scratch space for concatenations.
    scratch: String,
    /// Interned maps (unpartitioned key-value store) and their scratch.
    maps: Interner<Vec<u32>>,
    map_scratch: Vec<u32>,
    /// Key names, for describing map states.
    keys: Vec<String>,
    /// Steps already computed: (value, appended value) -> value, and
    /// (map, key, new value) -> map; so a step that was taken before costs
    /// one small hash lookup, however long the values.
    concats: HashMap<(u32, u32), u32, FxBuild>,
    updates: HashMap<(u32, u32, u32), u32, FxBuild>,
}

/// The id of "absent".
pub const ABSENT: u32 = 0;
/// The id of the empty string.
pub const EMPTY: u32 = 1;

impl Default for Values {
    fn default() -> Self {
        let mut interner = Interner::default();
        // Id 0 is "absent"; the NUL string cannot occur in any input.
        interner.intern("\0absent".to_string());
        interner.intern(String::new());
        Values {
            interner,
            scratch: String::new(),
            maps: Interner::default(),
            map_scratch: Vec::new(),
            keys: Vec::new(),
            concats: HashMap::default(),
            updates: HashMap::default(),
        }
    }
}

impl Values {
    pub fn id(&mut self, v: Option<&str>) -> u32 {
        match v {
            None => ABSENT,
            Some(s) => self.interner.intern(s.to_string()),
        }
    }

    /// The value of id as text (`nil` for absent).
    pub fn show(&self, id: u32) -> String {
        if id == ABSENT {
            "nil".into()
        } else {
            format!("{:?}", self.interner.get(id))
        }
    }

    /// The id of `value(a) ++ b`, where absent counts as "".
    fn concat(&mut self, a: u32, b: u32) -> u32 {
        if let Some(&id) = self.concats.get(&(a, b)) {
            return id;
        }
        let id = self.concat_slow(a, b);
        self.concats.insert((a, b), id);
        id
    }

    fn concat_slow(&mut self, a: u32, b: u32) -> u32 {
        self.scratch.clear();
        if a != ABSENT {
            self.scratch.push_str(self.interner.get(a));
        }
        if b != ABSENT {
            self.scratch.push_str(self.interner.get(b));
        }
        if let Some(&id) = self.interner.ids.get(self.scratch.as_str()) {
            return id;
        }
        let s = self.scratch.clone();
        self.interner.intern(s)
    }
}

/// A typed operation on one value (a register, or one key of a store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueOp {
    /// A read that returned this value id.
    Read(u32),
    Write(u32),
    /// A cas that succeeded: from, to.
    CasOk(u32, u32),
    /// A cas that ran and failed: the value was not `from`.
    CasFail(u32),
    /// A cas with unknown outcome: applies if the value is `from`.
    CasMaybe(u32, u32),
    Append(u32),
    Delete,
}

/// An operation of the unpartitioned key-value store: a key index and an
/// operation on that key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedOp {
    pub key: u32,
    pub op: ValueOp,
}

fn step_value(values: &mut Values, v: u32, op: ValueOp, empty_is_absent: bool) -> Option<u32> {
    let norm = |x: u32| {
        if empty_is_absent && x == ABSENT {
            EMPTY
        } else {
            x
        }
    };
    match op {
        ValueOp::Read(r) => (norm(v) == norm(r)).then_some(v),
        ValueOp::Write(w) => Some(w),
        ValueOp::CasOk(from, to) => (norm(v) == norm(from)).then_some(to),
        ValueOp::CasFail(from) => (norm(v) != norm(from)).then_some(v),
        ValueOp::CasMaybe(from, to) => Some(if norm(v) == norm(from) { to } else { v }),
        ValueOp::Append(a) => Some(values.concat(v, a)),
        ValueOp::Delete => Some(ABSENT),
    }
}

/// Which model to check a history against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// One register of read, write and cas; the initial value is nil.
    CasRegister,
    /// get, put, append per key; every key starts as "".
    Kv,
    /// Our store: read, write, cas, delete, append per key; keys start
    /// absent.
    RaftKv,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::RaftKv => "raftkv",
        }
    }
}

/// An operation the model cannot express (e.g. an append on a register).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: operation {op} is not supported by the {model} model")]
pub struct UnsupportedOp {
    pub file: String,
    pub line: u64,
    pub op: String,
    pub model: &'static str,
}

/// A model over values that are interned per partition: the register, the
/// key-value store and raftkv, partitioned by key.
#[derive(Debug, Clone, Copy)]
pub struct ValueModel {
    pub kind: ModelKind,
}

impl ValueModel {
    fn empty_is_absent(&self) -> bool {
        self.kind == ModelKind::Kv
    }
}

impl Model for ValueModel {
    type Op = ValueOp;
    type State = u32;
    type Ctx = Values;

    fn init(&self, _: &mut Values) -> u32 {
        ABSENT
    }

    fn step(&self, ctx: &mut Values, state: &u32, op: &ValueOp, next: &mut Vec<u32>) {
        if let Some(s) = step_value(ctx, *state, *op, self.empty_is_absent()) {
            next.push(s);
        }
    }

    fn read_only(&self, op: &ValueOp) -> bool {
        matches!(op, ValueOp::Read(_) | ValueOp::CasFail(_))
    }

    fn describe_op(&self, ctx: &Values, op: &ValueOp) -> String {
        describe_value_op(ctx, op)
    }

    fn describe_state(&self, ctx: &Values, state: &u32) -> String {
        show_value(ctx, *state, self.empty_is_absent())
    }
}

fn show_value(ctx: &Values, v: u32, empty_is_absent: bool) -> String {
    if empty_is_absent && v == ABSENT {
        "\"\"".into()
    } else {
        ctx.show(v)
    }
}

fn describe_value_op(ctx: &Values, op: &ValueOp) -> String {
    match *op {
        ValueOp::Read(v) => format!("read -> {}", ctx.show(v)),
        ValueOp::Write(v) => format!("write {}", ctx.show(v)),
        ValueOp::CasOk(a, b) => format!("cas {} -> {} ok", ctx.show(a), ctx.show(b)),
        ValueOp::CasFail(a) => format!("cas from {} failed", ctx.show(a)),
        ValueOp::CasMaybe(a, b) => format!("cas {} -> {} ?", ctx.show(a), ctx.show(b)),
        ValueOp::Append(v) => format!("append {}", ctx.show(v)),
        ValueOp::Delete => "delete".into(),
    }
}

/// The key-value store as one object whose state maps every key to its
/// value (no partitioning): for measuring, and for models where keys
/// interact.
#[derive(Debug, Clone, Copy)]
pub struct MapModel {
    pub kind: ModelKind,
}

impl Model for MapModel {
    type Op = KeyedOp;
    /// The id of the interned map (a vector of value ids, one per key).
    type State = u32;
    type Ctx = Values;

    fn init(&self, ctx: &mut Values) -> u32 {
        let empty = vec![ABSENT; ctx.keys.len()];
        ctx.maps.intern(empty)
    }

    fn step(&self, ctx: &mut Values, state: &u32, op: &KeyedOp, next: &mut Vec<u32>) {
        let v = ctx.maps.get(*state)[op.key as usize];
        let Some(nv) = step_value(ctx, v, op.op, self.kind == ModelKind::Kv) else {
            return;
        };
        if nv == v {
            next.push(*state);
            return;
        }
        if let Some(&id) = ctx.updates.get(&(*state, op.key, nv)) {
            next.push(id);
            return;
        }
        let mut scratch = std::mem::take(&mut ctx.map_scratch);
        scratch.clear();
        scratch.extend_from_slice(ctx.maps.get(*state));
        scratch[op.key as usize] = nv;
        let id = match ctx.maps.ids.get(&scratch) {
            Some(&id) => id,
            None => ctx.maps.intern(scratch.clone()),
        };
        ctx.map_scratch = scratch;
        ctx.updates.insert((*state, op.key, nv), id);
        next.push(id);
    }

    fn read_only(&self, op: &KeyedOp) -> bool {
        matches!(op.op, ValueOp::Read(_) | ValueOp::CasFail(_))
    }

    fn describe_op(&self, ctx: &Values, op: &KeyedOp) -> String {
        format!(
            "[{:?}] {}",
            ctx.keys[op.key as usize],
            describe_value_op(ctx, &op.op)
        )
    }

    fn describe_state(&self, ctx: &Values, state: &u32) -> String {
        let parts: Vec<String> = ctx
            .maps
            .get(*state)
            .iter()
            .zip(&ctx.keys)
            .map(|(v, k)| format!("{k:?}: {}", show_value(ctx, *v, self.kind == ModelKind::Kv)))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }
}

/// Converts one history operation; `Ok(None)`: it constrains nothing and
/// is dropped (a failed or unknown read, a failed write).
fn convert(
    kind: ModelKind,
    values: &mut Values,
    file: &str,
    h: &HistoryOp,
) -> Result<Option<ValueOp>, UnsupportedOp> {
    let unsupported = || UnsupportedOp {
        file: file.to_string(),
        line: h.invoke_line,
        op: h.describe(),
        model: kind.name(),
    };
    let op = match (&h.call, &h.outcome) {
        (Call::Read, Outcome::Ok(v)) => ValueOp::Read(values.id(v.as_deref())),
        (Call::Read, _) => return Ok(None),
        (_, Outcome::Fail) if !matches!(h.call, Call::Cas { .. }) => return Ok(None),
        (Call::Write(v), _) => ValueOp::Write(values.id(Some(v))),
        (Call::Cas { from, to }, o) => {
            if kind == ModelKind::Kv {
                return Err(unsupported());
            }
            let from = values.id(from.as_deref());
            let to = values.id(Some(to));
            match o {
                Outcome::Ok(_) => ValueOp::CasOk(from, to),
                Outcome::Fail => ValueOp::CasFail(from),
                Outcome::Unknown => ValueOp::CasMaybe(from, to),
            }
        }
        (Call::Append(v), _) => {
            if kind == ModelKind::CasRegister {
                return Err(unsupported());
            }
            ValueOp::Append(values.id(Some(v)))
        }
        (Call::Delete, _) => {
            if kind != ModelKind::RaftKv {
                return Err(unsupported());
            }
            ValueOp::Delete
        }
    };
    Ok(Some(op))
}

fn operation<O>(id: usize, h: &HistoryOp, op: O) -> Operation<O> {
    Operation {
        id,
        client: h.client,
        call: h.invoke,
        // An unknown outcome has an end only where the trace showed the
        // operation applied ([`super::ClientEvents::finish_with_applies`]).
        ret: h.ret.unwrap_or(NEVER),
        op,
    }
}

/// Splits a history by key (P-compositionality: a history is linearizable
/// exactly when each key's sub-history is) and converts every operation.
/// `Operation::id` is the index into `history.ops`.
pub fn partition_by_key(
    kind: ModelKind,
    history: &History,
) -> Result<Vec<Partition<ValueModel>>, UnsupportedOp> {
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    let mut parts: Vec<Partition<ValueModel>> = Vec::new();
    for (id, h) in history.ops.iter().enumerate() {
        let k = if kind == ModelKind::CasRegister {
            ""
        } else {
            h.key.as_str()
        };
        let p = *by_key.entry(k).or_insert_with(|| {
            parts.push(Partition {
                key: k.to_string(),
                ctx: Values::default(),
                ops: Vec::new(),
            });
            parts.len() - 1
        });
        let part = &mut parts[p];
        if let Some(op) = convert(kind, &mut part.ctx, &history.file, h)? {
            part.ops.push(operation(id, h, op));
        }
    }
    Ok(parts)
}

/// The whole history as one partition over a map state.
pub fn single_partition(
    kind: ModelKind,
    history: &History,
) -> Result<Vec<Partition<MapModel>>, UnsupportedOp> {
    let mut ctx = Values::default();
    let mut key_ids: HashMap<&str, u32> = HashMap::new();
    let mut ops = Vec::new();
    for (id, h) in history.ops.iter().enumerate() {
        let key = *key_ids.entry(h.key.as_str()).or_insert_with(|| {
            ctx.keys.push(h.key.clone());
            (ctx.keys.len() - 1) as u32
        });
        if let Some(op) = convert(kind, &mut ctx, &history.file, h)? {
            ops.push(operation(id, h, KeyedOp { key, op }));
        }
    }
    Ok(vec![Partition {
        key: "(all keys)".into(),
        ctx,
        ops,
    }])
}

//! The fast path of the reader: a node or client event decoded straight from
//! the line's bytes into one flat struct (no intermediate `serde_json::Value`,
//! no buffering of internally tagged enums), then checked against its type's
//! required and allowed fields. It returns `None` for anything it does not
//! accept whole (an escape in a string, a `null` outside a vote, a leader or
//! an operation's `from`, a missing, repeated or foreign field, a type
//! error); the reader then takes the slow path, which either
//! accepts the line in the same way or names exactly what is wrong with it.
//!
//! The bytes are read by hand ([`Cursor`]), as serde_json would read them
//! (the same whitespace, strings, integers and literals), except `data`
//! fields, any JSON, which serde_json reads where they stand. Keys in any
//! order are accepted; each object lists its keys in the order our writer
//! emits them, and a key where that order expects it is recognised by one
//! comparison of 32 bytes instead of being scanned and looked up; known
//! words (event types, RPC names, roles...) are read likewise.

use std::borrow::Cow;

use crate::event::*;
use crate::history::{ClientEvent, Invoke, Op, Return, Status};

#[derive(Default)]
struct Line<'a> {
    ty: Option<EventType>,
    node: Option<NodeId>,
    seq: Option<u64>,
    time: Option<u64>,
    post: Option<PostState>,
    reason: Option<Cow<'a, str>>,
    term: Option<Term>,
    vote: Option<Option<NodeId>>,
    snapshot: Option<SnapshotMeta>,
    commit: Option<Index>,
    last_index: Option<Index>,
    last_term: Option<Term>,
    entries: Option<Vec<WireEntry<'a>>>,
    entry_count: Option<u64>,
    role: Option<Role>,
    timer: Option<TimerKind>,
    msg: Option<WireMsg<'a>>,
    index: Option<Index>,
    from: Option<Index>,
    client: Option<u64>,
    req: Option<u64>,
    duplicate: Option<bool>,
    lost: Option<u64>,
    via: Option<ReadVia>,
    context: Option<u64>,
    op: Option<WireOp<'a>>,
    status: Option<Status>,
    value: Option<Cow<'a, str>>,
    error: Option<Cow<'a, str>>,
}

#[derive(Default)]
struct WireMsg<'a> {
    id: Option<u64>,
    from: Option<NodeId>,
    to: Option<NodeId>,
    term: Option<Term>,
    rpc: Option<RpcName>,
    last_index: Option<Index>,
    last_term: Option<Term>,
    granted: Option<bool>,
    prev_index: Option<Index>,
    prev_term: Option<Term>,
    commit: Option<Index>,
    entries: Option<Vec<WireEntry<'a>>>,
    entry_count: Option<u64>,
    success: Option<bool>,
    match_index: Option<Index>,
    hint_index: Option<Index>,
    hint_term: Option<Term>,
    offset: Option<u64>,
    done: Option<bool>,
    data: Option<serde_json::Value>,
    transfer: Option<bool>,
    context: Option<u64>,
    commit_term: Option<Term>,
}

#[derive(Default)]
struct WireEntry<'a> {
    term: Option<Term>,
    data: Option<WireData<'a>>,
}

#[derive(Default)]
struct WireData<'a> {
    kind: Option<Cow<'a, str>>,
    client: Option<u64>,
    req: Option<u64>,
    op: Option<WireOp<'a>>,
    voters: Option<Vec<NodeId>>,
    learners: Option<Vec<NodeId>>,
    outgoing_voters: Option<Vec<NodeId>>,
    data: Option<serde_json::Value>,
}

#[derive(Default)]
struct WireOp<'a> {
    f: Option<Cow<'a, str>>,
    key: Option<Cow<'a, str>>,
    value: Option<Cow<'a, str>>,
    from: Option<Option<Cow<'a, str>>>,
    to: Option<Cow<'a, str>>,
}

/// A reading position in one line. Every method returns `None` (or
/// `false`) where the bytes are not what it reads, or are something the
/// fast path leaves to the slow one.
struct Cursor<'a> {
    /// The line's bytes. JSON text is UTF-8: a byte past ASCII can stand
    /// only in a string (anywhere else nothing reads it), and each string
    /// is checked where it is read; the slow path names the first bad byte.
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// Skips JSON whitespace.
    #[inline(always)]
    fn ws(&mut self) {
        // Our writer puts none: one comparison sees that.
        if self.b.get(self.i).is_none_or(|&c| c > b' ') {
            return;
        }
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// Reads `c` after any whitespace.
    #[inline(always)]
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Reads the literal `word` after any whitespace.
    fn word(&mut self, word: &[u8]) -> bool {
        self.ws();
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    /// A string: borrowed from the line, or read by serde_json where it
    /// has an escape.
    fn str(&mut self) -> Option<Cow<'a, str>> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        let len = self.b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        let end = start + len;
        match self.b[end] {
            b'"' => {}
            b'\\' => {
                self.i = start - 1;
                return self.serde::<String>().map(Cow::Owned);
            }
            // A control character JSON does not allow unescaped.
            _ => return None,
        }
        self.i = end + 1;
        std::str::from_utf8(&self.b[start..end])
            .ok()
            .map(Cow::Borrowed)
    }

    /// An unsigned integer as serde_json reads a `u64`: digits, no leading
    /// zero, no fraction or exponent, no overflow. (`-0`, which serde_json
    /// takes as 0, is left to the slow path.)
    #[inline(always)]
    fn u64(&mut self) -> Option<u64> {
        self.ws();
        let rest = &self.b[self.i..];
        let (mut v, mut n) = (0u64, 0usize);
        for &c in rest {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // Nineteen digits cannot overflow a u64; the twentieth may.
            v = if n < 19 {
                v * 10 + u64::from(d)
            } else {
                v.checked_mul(10)?.checked_add(u64::from(d))?
            };
            n += 1;
        }
        if n == 0 || (n > 1 && rest[0] == b'0') || matches!(rest.get(n), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.i += n;
        Some(v)
    }

    fn bool(&mut self) -> Option<bool> {
        if self.word(b"true") {
            Some(true)
        } else if self.word(b"false") {
            Some(false)
        } else {
            None
        }
    }

    /// Any JSON value but `null`, read by serde_json where it stands.
    fn json(&mut self) -> Option<serde_json::Value> {
        self.ws();
        self.serde::<serde_json::Value>().filter(|v| !v.is_null())
    }

    /// A value read by serde_json from here, exactly as the slow path reads
    /// it.
    fn serde<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        let mut values = serde_json::Deserializer::from_slice(&self.b[self.i..]).into_iter::<T>();
        let v = values.next()?.ok()?;
        self.i += values.byte_offset();
        Some(v)
    }

    /// An object whose keys are among `keys`: `field` reads the value of
    /// `keys[k]`. Keys may come in any order and spelling (escapes are read
    /// by serde_json); a key that follows the one before it in `keys`, the
    /// order our writer emits, is recognised where it stands, without
    /// scanning it, and any other unescaped key by comparing it with each.
    /// A key not in `keys` fails.
    fn fields(
        &mut self,
        keys: &[Key],
        mut field: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        let mut next = 0;
        loop {
            let k = self.key(keys, next)?;
            if !self.eat(b':') {
                return None;
            }
            field(self, k)?;
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
            next = k + 1;
        }
    }

    /// A string that is one of `keys` (an object key, or a value of a few
    /// known words), by its position: `keys[guess]` is tried first.
    #[inline(always)]
    fn key(&mut self, keys: &[Key], guess: usize) -> Option<usize> {
        self.ws();
        let head = Key::head(&self.b[self.i..]);
        let found = if keys.get(guess).is_some_and(|k| k.starts(head)) {
            Some(guess)
        } else {
            keys.iter().position(|k| k.starts(head))
        };
        if let Some(k) = found {
            self.i += keys[k].text.len() + 2;
            return Some(k);
        }
        let key = self.str()?;
        keys.iter().position(|k| k.text == key.as_bytes())
    }

    /// An array of items each read by `item`.
    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        if !self.eat(b'[') {
            return None;
        }
        let mut items = Vec::new();
        if self.eat(b']') {
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(b']') {
                return Some(items);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn ids(&mut self) -> Option<Vec<NodeId>> {
        self.array(Self::u64)
    }
}

/// A word (an object key, or a string value of a few known ones) and the
/// bytes it reads as, quoted (`"word"`), as two 16-byte numbers and the masks
/// of their bytes, for a word of at most 30 bytes.
struct Key {
    text: &'static [u8],
    quoted: [u128; 2],
    mask: [u128; 2],
}

impl Key {
    const fn new(text: &'static str) -> Key {
        let t = text.as_bytes();
        let (mut quoted, mut mask) = ([0u128; 2], [0u128; 2]);
        if t.len() + 2 <= 32 {
            // Little-endian: the byte at offset i is bits 8i to 8i + 7 of
            // half i / 16.
            let mut i = 0;
            while i < t.len() + 2 {
                let byte = if i == 0 || i == t.len() + 1 {
                    b'"'
                } else {
                    t[i - 1]
                };
                quoted[i / 16] |= (byte as u128) << (8 * (i % 16));
                mask[i / 16] |= 0xff << (8 * (i % 16));
                i += 1;
            }
        }
        Key {
            text: t,
            quoted,
            mask,
        }
    }

    /// The next 32 bytes of `rest` (zeros past its end, which no quoted
    /// word has), read little-endian.
    #[inline(always)]
    fn head(rest: &[u8]) -> [u128; 2] {
        let half = |b: &[u8]| u128::from_le_bytes(b.try_into().unwrap_or([0; 16]));
        if let Some(all) = rest.get(..32) {
            return [half(&all[..16]), half(&all[16..])];
        }
        let mut bytes = [0u8; 32];
        bytes[..rest.len()].copy_from_slice(rest);
        [half(&bytes[..16]), half(&bytes[16..])]
    }

    /// Whether `head` begins with this word, quoted.
    #[inline(always)]
    fn starts(&self, head: [u128; 2]) -> bool {
        self.mask[0] != 0
            && head[0] & self.mask[0] == self.quoted[0]
            && head[1] & self.mask[1] == self.quoted[1]
    }
}

/// `choice!(c, { "word" => value, ... })`: the value of the string `c` reads
/// next, which must be one of the words.
macro_rules! choice {
    ($c:ident, { $($word:literal => $value:expr),+ $(,)? }) => {{
        const WORDS: &[Key] = &[$(Key::new($word)),+];
        $c.key(WORDS, 0).and_then(|k| nth!(k, $(Some($value)),+))
    }};
}

/// `nth!(k, e0, e1, ...)`: returns expression number `k` from the closure
/// it stands in, else evaluates to `None`.
macro_rules! nth {
    ($k:expr, $($e:expr),+) => {{
        let mut n = 0usize;
        $(
            if $k == n {
                return $e;
            }
            n += 1;
        )+
        let _ = n;
        None
    }};
}

/// `fields!(c, { "key" => read, ... })` reads an object whose keys are
/// among those listed (see [`Cursor::fields`]), each value by its `read`
/// expression, which reads from `c`. List the keys in the order our writer
/// emits them: that order is read fastest.
macro_rules! fields {
    ($c:ident, { $($key:literal => $read:expr),+ $(,)? }) => {{
        const KEYS: &[Key] = &[$(Key::new($key)),+];
        $c.fields(KEYS, |$c, k| nth!(k, $($read),+))
    }};
}

/// Fills `slot` with `value` once: a key given twice is left to the slow
/// path (serde names it a duplicate field).
fn once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

/// An empty value put into `slot` to be built there, once (as [`once`]: a
/// key given twice is left to the slow path).
fn fresh<T: Default>(slot: &mut Option<T>) -> Option<&mut T> {
    if slot.is_some() {
        return None;
    }
    Some(slot.insert(T::default()))
}

/// A value that may be `null` (a vote, a leader, an operation's `from`).
fn nullable<'a, T>(
    c: &mut Cursor<'a>,
    read: impl FnOnce(&mut Cursor<'a>) -> Option<T>,
) -> Option<Option<T>> {
    if c.word(b"null") {
        Some(None)
    } else {
        read(c).map(Some)
    }
}

fn role(c: &mut Cursor) -> Option<Role> {
    choice!(c, {
        "follower" => Role::Follower,
        "pre_candidate" => Role::PreCandidate,
        "candidate" => Role::Candidate,
        "leader" => Role::Leader,
    })
}

/// The RPCs the fast path reads (`propose` takes the slow path).
#[derive(Clone, Copy)]
enum RpcName {
    RequestVote,
    RequestVoteReply,
    AppendEntries,
    AppendEntriesReply,
    InstallSnapshot,
    InstallSnapshotReply,
    PreVote,
    PreVoteReply,
    Heartbeat,
    HeartbeatReply,
    TimeoutNow,
}

fn rpc_name(c: &mut Cursor) -> Option<RpcName> {
    choice!(c, {
        "append_entries" => RpcName::AppendEntries,
        "append_entries_reply" => RpcName::AppendEntriesReply,
        "heartbeat" => RpcName::Heartbeat,
        "heartbeat_reply" => RpcName::HeartbeatReply,
        "request_vote" => RpcName::RequestVote,
        "request_vote_reply" => RpcName::RequestVoteReply,
        "pre_vote" => RpcName::PreVote,
        "pre_vote_reply" => RpcName::PreVoteReply,
        "install_snapshot" => RpcName::InstallSnapshot,
        "install_snapshot_reply" => RpcName::InstallSnapshotReply,
        "timeout_now" => RpcName::TimeoutNow,
    })
}

fn event_type(c: &mut Cursor) -> Option<EventType> {
    choice!(c, {
        "send" => EventType::Send,
        "receive" => EventType::Receive,
        "persist" => EventType::Persist,
        "append" => EventType::Append,
        "commit" => EventType::Commit,
        "apply" => EventType::Apply,
        "timeout" => EventType::Timeout,
        "role" => EventType::Role,
        "snapshot" => EventType::Snapshot,
        "install" => EventType::Install,
        "read" => EventType::Read,
        "init" => EventType::Init,
        "crash" => EventType::Crash,
        "truncate" => EventType::Truncate,
        "gap" => EventType::Gap,
        "invoke" => EventType::Invoke,
        "return" => EventType::Return,
    })
}

/// The last post state the fast path read for each of a few nodes, with the
/// bytes it was read from. A node's consecutive events mostly leave its state
/// as it was (a send, a receive that changes nothing), and the post state is
/// close to half of a line's bytes: where the bytes are the same, so is the
/// value, and they are compared instead of read again.
#[derive(Default)]
pub(crate) struct PostCache(Vec<(NodeId, Vec<u8>, PostState)>);

/// Nodes a [`PostCache`] remembers (a run has a handful; past this many, the
/// others are read every time).
const POST_CACHE_NODES: usize = 16;

/// Reads a post state into `slot`, where it is built, or takes it from
/// `cache` where the bytes are those `node`'s last post state was read
/// from. Reading a JSON value looks at its own bytes only (up to its closing
/// brace), so equal bytes read as an equal value, ending at the same place.
fn post(
    c: &mut Cursor,
    slot: &mut Option<PostState>,
    node: Option<NodeId>,
    cache: &mut PostCache,
) -> Option<()> {
    if slot.is_some() {
        // A repeated key: the slow path names it.
        return None;
    }
    c.ws();
    let start = c.i;
    let at = node.and_then(|n| cache.0.iter().position(|(m, ..)| *m == n));
    if let Some(k) = at {
        let (_, bytes, value) = &cache.0[k];
        if c.b[start..].starts_with(bytes) {
            *slot = Some(value.clone());
            c.i += bytes.len();
            return Some(());
        }
    }
    read_post(c, slot)?;
    let (Some(n), Some(value)) = (node, slot.as_ref()) else {
        return Some(());
    };
    let read = &c.b[start..c.i];
    match at {
        Some(k) => {
            let (_, bytes, cached) = &mut cache.0[k];
            bytes.clear();
            bytes.extend_from_slice(read);
            cached.clone_from(value);
        }
        None if cache.0.len() < POST_CACHE_NODES => {
            cache.0.push((n, read.to_vec(), value.clone()));
        }
        None => {}
    }
    Some(())
}

/// Reads a post state into `slot`, where it is built.
fn read_post(c: &mut Cursor, slot: &mut Option<PostState>) -> Option<()> {
    let p = fresh(slot)?;
    fields!(c, {
        "term" => once(&mut p.term, c.u64()),
        "vote" => once(&mut p.vote, nullable(c, Cursor::u64)),
        "role" => once(&mut p.role, role(c)),
        "leader" => once(&mut p.leader, nullable(c, Cursor::u64)),
        "commit" => once(&mut p.commit, c.u64()),
        "applied" => once(&mut p.applied, c.u64()),
        "last_index" => once(&mut p.last_index, c.u64()),
        "last_term" => once(&mut p.last_term, c.u64()),
        "snapshot_index" => once(&mut p.snapshot_index, c.u64()),
        "snapshot_term" => once(&mut p.snapshot_term, c.u64()),
    })
}

fn snapshot(c: &mut Cursor) -> Option<SnapshotMeta> {
    let (mut index, mut term, mut config) = (None, None, None);
    fields!(c, {
        "index" => once(&mut index, c.u64()),
        "term" => once(&mut term, c.u64()),
        "config" => once(&mut config, configuration(c)),
    })?;
    Some(SnapshotMeta {
        index: index?,
        term: term?,
        config,
    })
}

fn configuration(c: &mut Cursor) -> Option<Configuration> {
    let (mut voters, mut learners, mut outgoing_voters) = (None, None, None);
    fields!(c, {
        "voters" => once(&mut voters, c.ids()),
        "learners" => once(&mut learners, c.ids()),
        "outgoing_voters" => once(&mut outgoing_voters, c.ids()),
    })?;
    Some(Configuration {
        voters: voters?,
        learners,
        outgoing_voters,
    })
}

fn wire_op<'a>(c: &mut Cursor<'a>) -> Option<WireOp<'a>> {
    let mut o = WireOp::default();
    fields!(c, {
        "f" => once(&mut o.f, c.str()),
        "key" => once(&mut o.key, c.str()),
        "value" => once(&mut o.value, c.str()),
        "from" => once(&mut o.from, nullable(c, Cursor::str)),
        "to" => once(&mut o.to, c.str()),
    })?;
    Some(o)
}

fn wire_data<'a>(c: &mut Cursor<'a>) -> Option<WireData<'a>> {
    let mut d = WireData::default();
    fields!(c, {
        "kind" => once(&mut d.kind, c.str()),
        "client" => once(&mut d.client, c.u64()),
        "req" => once(&mut d.req, c.u64()),
        "op" => once(&mut d.op, wire_op(c)),
        "voters" => once(&mut d.voters, c.ids()),
        "learners" => once(&mut d.learners, c.ids()),
        "outgoing_voters" => once(&mut d.outgoing_voters, c.ids()),
        "data" => once(&mut d.data, c.json()),
    })?;
    Some(d)
}

fn wire_entries<'a>(c: &mut Cursor<'a>) -> Option<Vec<WireEntry<'a>>> {
    c.array(|c| {
        let mut e = WireEntry::default();
        fields!(c, {
            "term" => once(&mut e.term, c.u64()),
            "data" => once(&mut e.data, wire_data(c)),
        })?;
        Some(e)
    })
}

/// Reads a message into `slot`, where it is built (a message is a few
/// hundred bytes: built elsewhere and moved in, it would be copied twice).
fn wire_msg<'a>(c: &mut Cursor<'a>, slot: &mut Option<WireMsg<'a>>) -> Option<()> {
    let m = fresh(slot)?;
    fields!(c, {
        "id" => once(&mut m.id, c.u64()),
        "from" => once(&mut m.from, c.u64()),
        "to" => once(&mut m.to, c.u64()),
        "term" => once(&mut m.term, c.u64()),
        "rpc" => once(&mut m.rpc, rpc_name(c)),
        "prev_index" => once(&mut m.prev_index, c.u64()),
        "prev_term" => once(&mut m.prev_term, c.u64()),
        "commit" => once(&mut m.commit, c.u64()),
        "entries" => once(&mut m.entries, wire_entries(c)),
        "context" => once(&mut m.context, c.u64()),
        "success" => once(&mut m.success, c.bool()),
        "match_index" => once(&mut m.match_index, c.u64()),
        "hint_index" => once(&mut m.hint_index, c.u64()),
        "hint_term" => once(&mut m.hint_term, c.u64()),
        "last_index" => once(&mut m.last_index, c.u64()),
        "last_term" => once(&mut m.last_term, c.u64()),
        "offset" => once(&mut m.offset, c.u64()),
        "done" => once(&mut m.done, c.bool()),
        "data" => once(&mut m.data, c.json()),
        "granted" => once(&mut m.granted, c.bool()),
        "entry_count" => once(&mut m.entry_count, c.u64()),
        "transfer" => once(&mut m.transfer, c.bool()),
        "commit_term" => once(&mut m.commit_term, c.u64()),
    })
}

/// Reads the line into `l`, or `None`; nothing but whitespace may follow
/// the object.
fn line<'a>(bytes: &'a [u8], l: &mut Line<'a>, posts: &mut PostCache) -> Option<()> {
    let mut c = Cursor { b: bytes, i: 0 };
    fields!(c, {
        "node" => once(&mut l.node, c.u64()),
        "seq" => once(&mut l.seq, c.u64()),
        "time" => once(&mut l.time, c.u64()),
        "type" => once(&mut l.ty, event_type(c)),
        "msg" => wire_msg(c, &mut l.msg),
        "post" => post(c, &mut l.post, l.node, posts),
        "index" => once(&mut l.index, c.u64()),
        "term" => once(&mut l.term, c.u64()),
        "client" => once(&mut l.client, c.u64()),
        "req" => once(&mut l.req, c.u64()),
        "duplicate" => once(&mut l.duplicate, c.bool()),
        "vote" => once(&mut l.vote, nullable(c, Cursor::u64)),
        "last_index" => once(&mut l.last_index, c.u64()),
        "last_term" => once(&mut l.last_term, c.u64()),
        "entries" => once(&mut l.entries, wire_entries(c)),
        "entry_count" => once(&mut l.entry_count, c.u64()),
        "timer" => once(
            &mut l.timer,
            choice!(c, {
                "election" => TimerKind::Election,
                "heartbeat" => TimerKind::Heartbeat,
            }),
        ),
        "role" => once(&mut l.role, role(c)),
        "reason" => once(&mut l.reason, c.str()),
        "snapshot" => once(&mut l.snapshot, snapshot(c)),
        "commit" => once(&mut l.commit, c.u64()),
        "from" => once(&mut l.from, c.u64()),
        "lost" => once(&mut l.lost, c.u64()),
        "via" => once(
            &mut l.via,
            choice!(c, {
                "read_index" => ReadVia::ReadIndex,
                "lease" => ReadVia::Lease,
            }),
        ),
        "context" => once(&mut l.context, c.u64()),
        "op" => once(&mut l.op, wire_op(c)),
        "status" => once(
            &mut l.status,
            choice!(c, {
                "ok" => Status::Ok,
                "fail" => Status::Fail,
                "info" => Status::Info,
            }),
        ),
        "value" => once(&mut l.value, c.str()),
        "error" => once(&mut l.error, c.str()),
    })?;
    c.ws();
    (c.i == bytes.len()).then_some(())
}

fn op(w: WireOp) -> Option<Op> {
    let WireOp {
        f,
        key,
        value,
        from,
        to,
    } = w;
    let key = key?.into_owned();
    Some(match (&*f?, value, from, to) {
        ("read", None, None, None) => Op::Read { key },
        ("write", Some(value), None, None) => Op::Write {
            key,
            value: value.into_owned(),
        },
        ("cas", None, Some(from), Some(to)) => Op::Cas {
            key,
            from: from.map(Cow::into_owned),
            to: to.into_owned(),
        },
        ("delete", None, None, None) => Op::Delete { key },
        ("append", Some(value), None, None) => Op::Append {
            key,
            value: value.into_owned(),
        },
        _ => return None,
    })
}

fn entry(w: WireEntry) -> Option<Entry> {
    let data = match w.data {
        None => None,
        Some(d) => Some(match (&*d.kind?, d.client, d.req, d.op, d.data) {
            (kind, ..)
                if kind != "config"
                    && (d.voters.is_some()
                        || d.learners.is_some()
                        || d.outgoing_voters.is_some()) =>
            {
                return None
            }
            ("noop", None, None, None, None) => EntryData::Noop,
            ("command", Some(client), Some(req), Some(o), None) => EntryData::Command {
                client,
                req,
                op: op(o)?,
            },
            ("config", None, None, None, data) => EntryData::Config {
                voters: d.voters,
                learners: d.learners,
                outgoing_voters: d.outgoing_voters,
                data,
            },
            ("opaque", None, None, None, data) => EntryData::Opaque { data },
            _ => return None,
        }),
    };
    Some(Entry {
        term: w.term?,
        data,
    })
}

fn entries(w: Option<Vec<WireEntry>>) -> Option<Option<Vec<Entry>>> {
    match w {
        None => Some(None),
        Some(v) => v
            .into_iter()
            .map(entry)
            .collect::<Option<Vec<_>>>()
            .map(Some),
    }
}

fn rpc(m: &mut WireMsg) -> Option<Message> {
    // Which optional fields each RPC may carry, as a bit mask.
    const LI: u32 = 1;
    const LT: u32 = 2;
    const GR: u32 = 4;
    const PI: u32 = 8;
    const PT: u32 = 16;
    const CO: u32 = 32;
    const EN: u32 = 64;
    const EC: u32 = 128;
    const SU: u32 = 256;
    const MI: u32 = 512;
    const HI: u32 = 1024;
    const HT: u32 = 2048;
    const OF: u32 = 4096;
    const DO: u32 = 8192;
    const DA: u32 = 16384;
    const CX: u32 = 32768;
    const TR: u32 = 65536;
    let present = [
        (m.last_index.is_some(), LI),
        (m.last_term.is_some(), LT),
        (m.granted.is_some(), GR),
        (m.prev_index.is_some(), PI),
        (m.prev_term.is_some(), PT),
        (m.commit.is_some(), CO),
        (m.entries.is_some(), EN),
        (m.entry_count.is_some(), EC),
        (m.success.is_some(), SU),
        (m.match_index.is_some(), MI),
        (m.hint_index.is_some(), HI),
        (m.hint_term.is_some(), HT),
        (m.offset.is_some(), OF),
        (m.done.is_some(), DO),
        (m.data.is_some(), DA),
        (m.context.is_some(), CX),
        (m.transfer.is_some(), TR),
    ]
    .iter()
    .fold(0, |acc, &(p, bit)| if p { acc | bit } else { acc });
    // Every RPC may carry `commit` (feature commit-any-message; its own for
    // append_entries and heartbeat).
    let rpc = m.rpc?;
    let allowed = CO
        | match rpc {
            RpcName::RequestVote => LI | LT | TR,
            RpcName::RequestVoteReply => GR,
            RpcName::AppendEntries => PI | PT | EN | EC | CX,
            RpcName::AppendEntriesReply => SU | MI | HI | HT | CX,
            RpcName::InstallSnapshot => LI | LT | OF | DO | DA,
            RpcName::InstallSnapshotReply => LI,
            RpcName::PreVote => LI | LT,
            RpcName::PreVoteReply => GR,
            RpcName::Heartbeat => CX,
            RpcName::HeartbeatReply => CX,
            RpcName::TimeoutNow => 0,
        };
    if present & !allowed != 0 {
        return None;
    }
    let (commit, commit_term) = (m.commit, m.commit_term);
    let body = match rpc {
        RpcName::RequestVote => Rpc::RequestVote {
            last_index: m.last_index?,
            last_term: m.last_term?,
            transfer: m.transfer.unwrap_or(false),
        },
        RpcName::RequestVoteReply => Rpc::RequestVoteReply {
            granted: m.granted?,
        },
        RpcName::AppendEntries => Rpc::AppendEntries {
            prev_index: m.prev_index?,
            prev_term: m.prev_term?,
            commit: m.commit?,
            entries: entries(m.entries.take())?,
            entry_count: m.entry_count,
            context: m.context,
        },
        RpcName::AppendEntriesReply => Rpc::AppendEntriesReply {
            success: m.success?,
            match_index: m.match_index,
            hint_index: m.hint_index,
            hint_term: m.hint_term,
            context: m.context,
        },
        RpcName::InstallSnapshot => Rpc::InstallSnapshot {
            last_index: m.last_index?,
            last_term: m.last_term?,
            offset: m.offset.unwrap_or(0),
            done: m.done?,
            data: m.data.take(),
        },
        RpcName::InstallSnapshotReply => Rpc::InstallSnapshotReply {
            last_index: m.last_index?,
        },
        RpcName::PreVote => Rpc::PreVote {
            last_index: m.last_index?,
            last_term: m.last_term?,
        },
        RpcName::PreVoteReply => Rpc::PreVoteReply {
            granted: m.granted?,
        },
        RpcName::Heartbeat => Rpc::Heartbeat {
            commit: m.commit?,
            context: m.context,
        },
        RpcName::HeartbeatReply => Rpc::HeartbeatReply { context: m.context },
        RpcName::TimeoutNow => Rpc::TimeoutNow {},
    };
    let own = body.own_commit().is_some();
    let msg = Message {
        id: m.id?,
        from: m.from?,
        to: m.to?,
        term: m.term?,
        rpc: body,
        commit: if own { None } else { commit },
        commit_term,
    };
    // A message whose commit fields do not go together takes the slow path,
    // which names the field.
    msg.commit_fields_error().is_none().then_some(msg)
}

/// Decodes one line as a node event, or `None` (see the module docs).
pub(crate) fn decode(bytes: &[u8]) -> Option<crate::event::Record> {
    decode_with(bytes, &mut PostCache::default())
}

/// [`decode`], with the post states of earlier lines in `posts`.
pub(crate) fn decode_with(bytes: &[u8], posts: &mut PostCache) -> Option<crate::event::Record> {
    let mut l = Line::default();
    line(bytes, &mut l, posts)?;
    // Fields every node event has; the rest must belong to the event's type.
    const REASON: u32 = 1;
    const TERM: u32 = 2;
    const VOTE: u32 = 4;
    const SNAPSHOT: u32 = 8;
    const LAST_INDEX: u32 = 16;
    const LAST_TERM: u32 = 32;
    const ENTRIES: u32 = 64;
    const ENTRY_COUNT: u32 = 128;
    const ROLE: u32 = 256;
    const TIMER: u32 = 512;
    const MSG: u32 = 1024;
    const INDEX: u32 = 2048;
    const FROM: u32 = 4096;
    const CLIENT: u32 = 8192;
    const REQ: u32 = 16384;
    const DUPLICATE: u32 = 32768;
    const LOST: u32 = 65536;
    const COMMIT: u32 = 131072;
    const VIA: u32 = 262144;
    const CONTEXT: u32 = 524288;
    const OP: u32 = 1 << 20;
    const STATUS: u32 = 1 << 21;
    const VALUE: u32 = 1 << 22;
    const ERROR: u32 = 1 << 23;
    let present = [
        (l.commit.is_some(), COMMIT),
        (l.reason.is_some(), REASON),
        (l.term.is_some(), TERM),
        (l.vote.is_some(), VOTE),
        (l.snapshot.is_some(), SNAPSHOT),
        (l.last_index.is_some(), LAST_INDEX),
        (l.last_term.is_some(), LAST_TERM),
        (l.entries.is_some(), ENTRIES),
        (l.entry_count.is_some(), ENTRY_COUNT),
        (l.role.is_some(), ROLE),
        (l.timer.is_some(), TIMER),
        (l.msg.is_some(), MSG),
        (l.index.is_some(), INDEX),
        (l.from.is_some(), FROM),
        (l.client.is_some(), CLIENT),
        (l.req.is_some(), REQ),
        (l.duplicate.is_some(), DUPLICATE),
        (l.lost.is_some(), LOST),
        (l.via.is_some(), VIA),
        (l.context.is_some(), CONTEXT),
        (l.op.is_some(), OP),
        (l.status.is_some(), STATUS),
        (l.value.is_some(), VALUE),
        (l.error.is_some(), ERROR),
    ]
    .iter()
    .fold(0, |acc, &(p, bit)| if p { acc | bit } else { acc });
    let ty = l.ty?;
    // A client event: its own fields, and no node event's (a `node` it
    // may name: the node it sent the request to).
    if let EventType::Invoke | EventType::Return = ty {
        if l.seq.is_some() || l.post.is_some() {
            return None;
        }
        let (client, req, time) = (l.client?, l.req?, l.time);
        return Some(Record::Client(Box::new(if let EventType::Invoke = ty {
            if present & !(CLIENT | REQ | OP) != 0 {
                return None;
            }
            ClientEvent::Invoke(Invoke {
                client,
                req,
                node: l.node,
                op: op(l.op?)?,
                time,
            })
        } else {
            if present & !(CLIENT | REQ | STATUS | VALUE | ERROR) != 0 || l.node.is_some() {
                return None;
            }
            ClientEvent::Return(Return {
                client,
                req,
                status: l.status?,
                value: l.value.map(Cow::into_owned),
                error: l.error.map(Cow::into_owned),
                time,
            })
        })));
    }
    let allowed = match ty {
        EventType::Init => {
            REASON | TERM | VOTE | SNAPSHOT | COMMIT | LAST_INDEX | LAST_TERM | ENTRIES
        }
        EventType::Crash => 0,
        EventType::Role => ROLE | TERM | REASON,
        EventType::Timeout => TIMER,
        EventType::Send | EventType::Receive => MSG,
        EventType::Append => INDEX | ENTRIES | ENTRY_COUNT,
        EventType::Truncate => FROM,
        EventType::Persist => TERM | VOTE | LAST_INDEX,
        EventType::Commit => INDEX,
        EventType::Apply => INDEX | TERM | CLIENT | REQ | DUPLICATE,
        EventType::Snapshot | EventType::Install => INDEX | TERM,
        EventType::Gap => LOST | REASON,
        EventType::Read => INDEX | VIA | CONTEXT | CLIENT | REQ,
        // Read above.
        EventType::Invoke | EventType::Return => return None,
    };
    if present & !allowed != 0 {
        return None;
    }
    let event = match ty {
        EventType::Init => Event::Init(Init {
            reason: match &*l.reason? {
                "boot" => InitReason::Boot,
                "restart" => InitReason::Restart,
                _ => return None,
            },
            term: l.term?,
            vote: l.vote?,
            snapshot: l.snapshot,
            commit: l.commit,
            last_index: l.last_index?,
            last_term: l.last_term?,
            entries: entries(l.entries)?,
        }),
        EventType::Crash => Event::Crash(Crash {}),
        EventType::Role => Event::Role(RoleChange {
            role: l.role?,
            term: l.term?,
            reason: match &*l.reason? {
                "election_timeout" => RoleReason::ElectionTimeout,
                "won_election" => RoleReason::WonElection,
                "higher_term" => RoleReason::HigherTerm,
                "leader_discovered" => RoleReason::LeaderDiscovered,
                "lost_election" => RoleReason::LostElection,
                "pre_vote_won" => RoleReason::PreVoteWon,
                "check_quorum" => RoleReason::CheckQuorum,
                "transfer" => RoleReason::Transfer,
                "other" => RoleReason::Other,
                _ => return None,
            },
        }),
        EventType::Timeout => Event::Timeout(Timeout { timer: l.timer? }),
        EventType::Send => Event::Send(MessageEvent {
            msg: rpc(l.msg.as_mut()?)?,
        }),
        EventType::Receive => Event::Receive(MessageEvent {
            msg: rpc(l.msg.as_mut()?)?,
        }),
        EventType::Append => Event::Append(Append {
            index: l.index?,
            entries: entries(l.entries)?,
            entry_count: l.entry_count,
        }),
        EventType::Truncate => Event::Truncate(Truncate { from: l.from? }),
        EventType::Persist => Event::Persist(Persist {
            term: l.term?,
            vote: l.vote?,
            last_index: l.last_index?,
        }),
        EventType::Commit => Event::Commit(Commit { index: l.index? }),
        EventType::Apply => Event::Apply(Apply {
            index: l.index?,
            term: l.term?,
            client: l.client,
            req: l.req,
            duplicate: l.duplicate.unwrap_or(false),
        }),
        EventType::Snapshot => Event::Snapshot(SnapshotEvent {
            index: l.index?,
            term: l.term?,
        }),
        EventType::Install => Event::Install(SnapshotEvent {
            index: l.index?,
            term: l.term?,
        }),
        EventType::Read => Event::Read(Read {
            index: l.index?,
            via: l.via?,
            context: l.context,
            client: l.client,
            req: l.req,
        }),
        EventType::Invoke | EventType::Return => return None,
        EventType::Gap => Event::Gap(Gap {
            lost: l.lost,
            reason: l.reason.map(Cow::into_owned),
        }),
    };
    Some(Record::Node(Box::new(NodeEvent {
        node: l.node?,
        seq: l.seq?,
        time: l.time,
        event,
        post: l.post,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(seq: u64, post: &str) -> String {
        format!(
            r#"{{"node":2,"seq":{seq},"type":"send","msg":{{"id":{seq},"from":2,"to":1,"term":3,"rpc":"request_vote_reply","granted":true}},"post":{post}}}"#
        )
    }

    fn post_of(r: Option<crate::event::Record>) -> PostState {
        match r {
            Some(crate::event::Record::Node(e)) => e.post.expect("a post state"),
            other => panic!("not a node event: {other:?}"),
        }
    }

    /// A post state is taken from the cache only where its bytes are those
    /// of the node's last one, closing brace included: one more digit in
    /// the last field, or another node, reads the line anew.
    #[test]
    fn a_remembered_post_state_serves_only_equal_bytes() {
        let a = r#"{"term":3,"vote":1,"role":"follower","leader":1,"commit":9,"applied":9,"last_index":10,"last_term":3,"snapshot_index":8,"snapshot_term":2}"#;
        let longer = a.replace(r#""snapshot_term":2}"#, r#""snapshot_term":23}"#);
        let mut posts = PostCache::default();
        let first = post_of(decode_with(send(1, a).as_bytes(), &mut posts));
        assert_eq!(first.snapshot_term, Some(2));
        assert_eq!(posts.0.len(), 1);
        assert_eq!(posts.0[0].1, a.as_bytes());
        // The same bytes: the remembered value.
        assert_eq!(
            post_of(decode_with(send(2, a).as_bytes(), &mut posts)),
            first
        );
        // A prefix of the remembered bytes is not enough.
        let second = post_of(decode_with(send(3, &longer).as_bytes(), &mut posts));
        assert_eq!(second.snapshot_term, Some(23));
        assert_eq!(posts.0[0].1, longer.as_bytes());
        // Another node's line neither uses nor replaces node 2's.
        let other = send(4, a).replace(r#""node":2"#, r#""node":3"#);
        assert_eq!(post_of(decode_with(other.as_bytes(), &mut posts)), first);
        assert_eq!(posts.0.len(), 2);
        assert_eq!(posts.0[0].1, longer.as_bytes());
        // A repeated post key is still the slow path's to name.
        let twice = send(5, a).replace(r#","post":"#, &format!(r#","post":{a},"post":"#));
        assert!(decode_with(twice.as_bytes(), &mut posts).is_none());
    }
}

//! Every event type survives a write and a read, and every line the writer
//! produces is valid against traces/schema.json.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use raft_trace::*;

fn node_id() -> impl Strategy<Value = NodeId> {
    1u64..=5
}

fn small() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..10, any::<u64>()]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9]{0,6}", any::<String>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        text().prop_map(|key| Op::Read { key }),
        (text(), text()).prop_map(|(key, value)| Op::Write { key, value }),
        (text(), option::of(text()), text()).prop_map(|(key, from, to)| Op::Cas { key, from, to }),
        text().prop_map(|key| Op::Delete { key }),
        (text(), text()).prop_map(|(key, value)| Op::Append { key, value }),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let data = prop_oneof![
        Just(EntryData::Noop),
        (small(), small(), op()).prop_map(|(client, req, op)| EntryData::Command {
            client,
            req,
            op
        }),
        (
            option::of(node_ids(4)),
            option::of(node_ids(3)),
            option::of(node_ids(3)),
            opaque_data()
        )
            .prop_map(
                |(voters, learners, outgoing_voters, data)| EntryData::Config {
                    voters,
                    learners,
                    outgoing_voters,
                    data
                }
            ),
        opaque_data().prop_map(|data| EntryData::Opaque { data }),
    ];
    (small(), option::of(data)).prop_map(|(term, data)| Entry { term, data })
}

/// Distinct node ids (positive), fewer than `n`.
fn node_ids(n: usize) -> impl Strategy<Value = Vec<u64>> {
    prop::collection::btree_set(1..=64u64, 0..n).prop_map(|s| s.into_iter().collect())
}

/// Any JSON (not null, which reads as absent), or none.
fn opaque_data() -> impl Strategy<Value = Option<serde_json::Value>> {
    option::of(prop_oneof![
        small().prop_map(|n| serde_json::json!(n)),
        text().prop_map(|t| serde_json::json!({ "change": t, "voters": [1, 2, 3] })),
    ])
}

fn entries() -> impl Strategy<Value = Option<Vec<Entry>>> {
    option::of(vec(entry(), 0..4))
}

fn rpc() -> impl Strategy<Value = Rpc> {
    prop_oneof![
        (small(), small(), any::<bool>()).prop_map(|(last_index, last_term, transfer)| {
            Rpc::RequestVote {
                last_index,
                last_term,
                transfer,
            }
        }),
        any::<bool>().prop_map(|granted| Rpc::RequestVoteReply { granted }),
        (
            small(),
            small(),
            small(),
            entries(),
            option::of(small()),
            option::of(small())
        )
            .prop_map(
                |(prev_index, prev_term, commit, entries, entry_count, context)| {
                    Rpc::AppendEntries {
                        prev_index,
                        prev_term,
                        commit,
                        entries,
                        entry_count,
                        context,
                    }
                }
            ),
        (
            any::<bool>(),
            option::of(small()),
            option::of(small()),
            option::of(small()),
            option::of(small())
        )
            .prop_map(|(success, match_index, hint_index, hint_term, context)| {
                Rpc::AppendEntriesReply {
                    success,
                    match_index,
                    hint_index,
                    hint_term,
                    context,
                }
            }),
        (small(), small(), small(), any::<bool>(), option::of(text())).prop_map(
            |(last_index, last_term, offset, done, data)| Rpc::InstallSnapshot {
                last_index,
                last_term,
                offset,
                done,
                data: data.map(serde_json::Value::String)
            }
        ),
        small().prop_map(|last_index| Rpc::InstallSnapshotReply { last_index }),
        (small(), small()).prop_map(|(last_index, last_term)| Rpc::PreVote {
            last_index,
            last_term
        }),
        any::<bool>().prop_map(|granted| Rpc::PreVoteReply { granted }),
        (small(), option::of(small()))
            .prop_map(|(commit, context)| Rpc::Heartbeat { commit, context }),
        option::of(small()).prop_map(|context| Rpc::HeartbeatReply { context }),
        Just(Rpc::TimeoutNow {}),
    ]
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Follower),
        Just(Role::PreCandidate),
        Just(Role::Candidate),
        Just(Role::Leader)
    ]
}

fn post() -> impl Strategy<Value = PostState> {
    (
        (
            option::of(small()),
            option::of(option::of(node_id())),
            option::of(role()),
        ),
        (
            option::of(option::of(node_id())),
            option::of(small()),
            option::of(small()),
        ),
        (
            option::of(small()),
            option::of(small()),
            option::of(small()),
            option::of(small()),
        ),
    )
        .prop_map(
            |((term, vote, role), (leader, commit, applied), (li, lt, si, st))| PostState {
                term,
                vote,
                role,
                leader,
                commit,
                applied,
                last_index: li,
                last_term: lt,
                snapshot_index: si,
                snapshot_term: st,
            },
        )
}

/// An event of `node`: messages are sent from it or received by it.
fn event(node: NodeId) -> impl Strategy<Value = Event> {
    let msg = (
        small(),
        node_id(),
        small(),
        rpc(),
        option::of((small(), small())),
    );
    prop_oneof![
        (
            prop_oneof![Just(InitReason::Boot), Just(InitReason::Restart)],
            small(),
            option::of(node_id()),
            option::of((small(), small()).prop_map(|(index, term)| SnapshotMeta {
                index,
                term,
                config: None
            })),
            (small(), small(), option::of(small())),
            entries()
        )
            .prop_map(
                |(reason, term, vote, snapshot, (last_index, last_term, commit), entries)| {
                    Event::Init(Init {
                        reason,
                        term,
                        vote,
                        snapshot,
                        commit,
                        last_index,
                        last_term,
                        entries,
                    })
                }
            ),
        Just(Event::Crash(Crash {})),
        (
            role(),
            small(),
            prop_oneof![
                Just(RoleReason::ElectionTimeout),
                Just(RoleReason::WonElection),
                Just(RoleReason::HigherTerm),
                Just(RoleReason::LeaderDiscovered),
                Just(RoleReason::LostElection),
                Just(RoleReason::PreVoteWon),
                Just(RoleReason::CheckQuorum),
                Just(RoleReason::Transfer),
                Just(RoleReason::Other)
            ]
        )
            .prop_map(|(role, term, reason)| Event::Role(RoleChange {
                role,
                term,
                reason
            })),
        prop_oneof![Just(TimerKind::Election), Just(TimerKind::Heartbeat)]
            .prop_map(|timer| Event::Timeout(Timeout { timer })),
        (msg, any::<bool>()).prop_map(move |((id, peer, term, rpc, commit), send)| {
            let (from, to) = if send { (node, peer) } else { (peer, node) };
            let mut msg = Message::new(id, from, to, term, rpc);
            // Feature commit-any-message: commit_term, with commit unless
            // the rpc has its own.
            if let Some((index, commit_term)) = commit {
                msg.commit_term = Some(commit_term);
                if msg.rpc.own_commit().is_none() {
                    msg.commit = Some(index);
                }
            }
            let msg = MessageEvent { msg };
            if send {
                Event::Send(msg)
            } else {
                Event::Receive(msg)
            }
        }),
        (1u64..100, entries(), option::of(small())).prop_map(|(index, entries, entry_count)| {
            Event::Append(Append {
                index,
                entries,
                entry_count,
            })
        }),
        (1u64..100).prop_map(|from| Event::Truncate(Truncate { from })),
        (small(), option::of(node_id()), small()).prop_map(|(term, vote, last_index)| {
            Event::Persist(Persist {
                term,
                vote,
                last_index,
            })
        }),
        small().prop_map(|index| Event::Commit(Commit { index })),
        (
            1u64..100,
            small(),
            option::of(small()),
            option::of(small()),
            any::<bool>()
        )
            .prop_map(|(index, term, client, req, duplicate)| Event::Apply(Apply {
                index,
                term,
                client,
                req,
                duplicate
            })),
        (small(), small()).prop_map(|(index, term)| Event::Snapshot(SnapshotEvent { index, term })),
        (small(), small()).prop_map(|(index, term)| Event::Install(SnapshotEvent { index, term })),
        (
            small(),
            any::<bool>(),
            option::of(small()),
            option::of(small()),
            option::of(small())
        )
            .prop_map(|(index, lease, context, client, req)| Event::Read(Read {
                index,
                via: if lease {
                    ReadVia::Lease
                } else {
                    ReadVia::ReadIndex
                },
                context,
                client,
                req,
            })),
        (option::of(small()), option::of(text()))
            .prop_map(|(lost, reason)| Event::Gap(Gap { lost, reason })),
    ]
}

fn client_event() -> impl Strategy<Value = ClientEvent> {
    prop_oneof![
        (
            small(),
            small(),
            option::of(node_id()),
            op(),
            option::of(small())
        )
            .prop_map(|(client, req, node, op, time)| ClientEvent::Invoke(Invoke {
                client,
                req,
                node,
                op,
                time
            })),
        (
            small(),
            small(),
            prop_oneof![Just(Status::Ok), Just(Status::Fail), Just(Status::Info)],
            option::of(text()),
            option::of(text()),
            option::of(small())
        )
            .prop_map(
                |(client, req, status, value, error, time)| ClientEvent::Return(Return {
                    client,
                    req,
                    status,
                    value,
                    error,
                    time
                })
            ),
    ]
}

fn records() -> impl Strategy<Value = Vec<Record>> {
    let node_event = node_id().prop_flat_map(|n| {
        (Just(n), event(n), option::of(small()), option::of(post())).prop_map(
            |(node, event, time, post)| {
                Record::Node(Box::new(NodeEvent {
                    node,
                    seq: 0,
                    time,
                    event,
                    post,
                }))
            },
        )
    });
    let record =
        prop_oneof![4 => node_event, 1 => client_event().prop_map(|c| Record::Client(Box::new(c)))];
    vec(record, 0..40).prop_map(|mut rs| {
        // seq increases per node, as the reader requires.
        let mut next = std::collections::BTreeMap::new();
        for r in &mut rs {
            if let Record::Node(e) = r {
                let s = next.entry(e.node).or_insert(0u64);
                *s += 1;
                e.seq = *s;
            }
        }
        rs
    })
}

fn header() -> Header {
    let mut h = Header::new(
        "proptest",
        vec![1, 2, 3, 4, 5],
        Observes {
            events: EventType::ALL.to_vec(),
            state: vec![StateField::Term, StateField::Vote],
            entries: EntryDetail::Full,
        },
    );
    h.network = Network {
        loss: true,
        duplication: true,
        reorder: false,
    };
    h.features = Some(vec!["lost-election".into(), "stale-append-reply".into()]);
    h.voters = Some(vec![1, 2, 3]);
    h.learners = Some(vec![4]);
    h
}

fn schema() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_event_round_trips_and_matches_the_schema(records in records()) {
        let mut w = TraceWriter::new(Vec::new(), &header()).unwrap();
        for r in &records {
            w.write(r).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let schema = schema();
        for (i, line) in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let errors: Vec<String> = schema.iter_errors(&v).map(|e| e.to_string()).collect();
            prop_assert!(errors.is_empty(), "line {}: {} violates the schema: {:?}", i + 1, v, errors);
        }
        // The reader's fast path accepts every valid node event, and agrees
        // with the slow path (what read_all returns when the fast path is
        // bypassed is checked by the round trip below).
        for (line, record) in bytes.split(|&b| b == b'\n').skip(1).zip(&records) {
            if let Record::Node(_) = record {
                let fast = raft_trace::__fast_decode(line);
                prop_assert_eq!(fast.as_ref(), Some(record));
            }
        }
        let (h, back) = read_all(&bytes[..], "mem").unwrap();
        prop_assert_eq!(h, header());
        prop_assert_eq!(back, records);
    }
}

/// One edit of a line: at a position (a fraction of its length), delete a
/// byte, insert one, or replace one, with bytes that matter to JSON and to
/// the fast path (quotes, escapes, structure, digits, literals, whitespace,
/// a control character, a byte that is not UTF-8); or put a `null`, a
/// repeated key, or whitespace where a value or key stands.
#[derive(Debug, Clone)]
enum Edit {
    Delete(f64),
    Insert(f64, u8),
    Replace(f64, u8),
    Null(f64),
    RepeatKey(f64),
    Space(f64),
    /// A `0` before a number.
    LeadingZero(f64),
    /// A control character at the start of a string value.
    Control(f64),
    /// A key's first letter written as a `\u` escape.
    EscapedKey(f64),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop::sample::select(b"\"\\,:{}[]nul0129-.eE tfr/\x01\xff".to_vec());
    prop_oneof![
        (0.0..1.0f64).prop_map(Edit::Delete),
        (0.0..1.0f64, byte.clone()).prop_map(|(at, b)| Edit::Insert(at, b)),
        (0.0..1.0f64, byte).prop_map(|(at, b)| Edit::Replace(at, b)),
        (0.0..1.0f64).prop_map(Edit::Null),
        (0.0..1.0f64).prop_map(Edit::RepeatKey),
        (0.0..1.0f64).prop_map(Edit::Space),
        (0.0..1.0f64).prop_map(Edit::LeadingZero),
        (0.0..1.0f64).prop_map(Edit::Control),
        (0.0..1.0f64).prop_map(Edit::EscapedKey),
    ]
}

/// The `n`th occurrence (as a fraction `at` of them) of `pattern` in `line`.
fn nth(line: &[u8], pattern: &[u8], at: f64) -> Option<usize> {
    let all: Vec<usize> = line
        .windows(pattern.len())
        .enumerate()
        .filter(|(_, w)| *w == pattern)
        .map(|(i, _)| i)
        .collect();
    (!all.is_empty()).then(|| all[((at * all.len() as f64) as usize).min(all.len() - 1)])
}

fn apply(line: &[u8], edit: &Edit) -> Vec<u8> {
    let mut out = line.to_vec();
    let pos = |at: f64| ((at * line.len() as f64) as usize).min(line.len().saturating_sub(1));
    match *edit {
        Edit::Delete(at) if !line.is_empty() => {
            out.remove(pos(at));
        }
        Edit::Insert(at, b) => out.insert(pos(at), b),
        Edit::Replace(at, b) if !line.is_empty() => out[pos(at)] = b,
        Edit::Null(at) => {
            // The value after a `:` becomes null.
            if let Some(i) = nth(line, b":", at) {
                let end = line[i + 1..]
                    .iter()
                    .position(|&c| matches!(c, b',' | b'}' | b']'))
                    .map_or(line.len(), |e| i + 1 + e);
                out.splice(i + 1..end, b"null".iter().copied());
            }
        }
        Edit::RepeatKey(at) => {
            // `,"key":value` is repeated right after itself.
            if let Some(i) = nth(line, b",\"", at) {
                let end = line[i + 1..]
                    .iter()
                    .position(|&c| matches!(c, b',' | b'}'))
                    .map_or(line.len(), |e| i + 1 + e);
                let pair = line[i..end].to_vec();
                out.splice(end..end, pair);
            }
        }
        Edit::Space(at) => {
            if let Some(i) = nth(line, b":", at) {
                out.splice(i..i, b" \t\r\n".iter().copied());
            }
        }
        Edit::LeadingZero(at) => {
            let digits: Vec<usize> = (1..line.len())
                .filter(|&i| line[i].is_ascii_digit() && matches!(line[i - 1], b':' | b'[' | b','))
                .collect();
            if !digits.is_empty() {
                let i = digits[((at * digits.len() as f64) as usize).min(digits.len() - 1)];
                out.insert(i, b'0');
            }
        }
        Edit::Control(at) => {
            if let Some(i) = nth(line, b":\"", at) {
                out.insert(i + 2, 0x01);
            }
        }
        Edit::EscapedKey(at) => {
            if let Some(i) = nth(line, b"{\"", at).or_else(|| nth(line, b",\"", at)) {
                let c = line[i + 2];
                out.splice(i + 2..i + 3, format!("\\u{:04x}", c).into_bytes());
            }
        }
        _ => {}
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The fast path never accepts what the slow path rejects, nor decodes
    /// a line otherwise: for edited lines of valid events, whatever it
    /// returns, the slow path returns too.
    #[test]
    fn the_fast_path_agrees_with_the_slow_path(
        records in records(),
        edits in vec(vec(edit(), 1..3), 1..8),
    ) {
        let mut w = TraceWriter::new(Vec::new(), &header()).unwrap();
        for r in &records {
            w.write(r).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').skip(1).filter(|l| !l.is_empty()).collect();
        prop_assume!(!lines.is_empty());
        // As the reader decodes: each line after the lines before it, whose
        // post states it remembers (each edited line after its original).
        let mut decoder = raft_trace::__FastDecoder::default();
        for (k, line_edits) in edits.iter().enumerate() {
            let mut line = lines[k % lines.len()].to_vec();
            decoder.decode(&line);
            for e in line_edits {
                line = apply(&line, e);
            }
            if let Some(fast) = decoder.decode(&line) {
                let slow = raft_trace::__slow_decode(&line);
                prop_assert!(
                    slow.as_ref().ok() == Some(&fast),
                    "line {}\nfast: {:?}\nslow: {:?}",
                    String::from_utf8_lossy(&line),
                    fast,
                    slow
                );
            }
        }
    }
}

/// Every one-byte edit (a byte deleted, or one of the bytes [`edit`] uses
/// inserted or put in its place) of every node event in the examples: the
/// fast path accepts the edited line only as the slow path does.
#[test]
fn every_one_byte_edit_of_the_examples_agrees() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let bytes: &[u8] = b"\"\\,:{}[]n0-. \x01\xff";
    let (mut edited, mut accepted) = (0u64, 0u64);
    // Decoded as the reader decodes, remembering earlier lines' post states:
    // each variant after its original line (and the variants before it).
    let mut decoder = raft_trace::__FastDecoder::default();
    for file in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read(file.unwrap().path()).unwrap();
        for line in text.split(|&b| b == b'\n').skip(1) {
            if decoder.decode(line).is_none() {
                continue; // a client event, or a blank line
            }
            for i in 0..line.len() {
                let mut variants = vec![[&line[..i], &line[i + 1..]].concat()];
                // The value after a `:` replaced by `null`.
                if line[i] == b':' {
                    let mut values = serde_json::Deserializer::from_slice(&line[i + 1..])
                        .into_iter::<serde::de::IgnoredAny>();
                    if let Some(Ok(_)) = values.next() {
                        let end = i + 1 + values.byte_offset();
                        variants.push([&line[..=i], b"null", &line[end..]].concat());
                    }
                }
                for &b in bytes {
                    variants.push([&line[..i], &[b], &line[i..]].concat());
                    variants.push([&line[..i], &[b], &line[i + 1..]].concat());
                }
                for v in variants {
                    edited += 1;
                    if let Some(fast) = decoder.decode(&v) {
                        accepted += 1;
                        let slow = raft_trace::__slow_decode(&v);
                        assert!(
                            slow.as_ref().ok() == Some(&fast),
                            "line {}\nfast: {fast:?}\nslow: {slow:?}",
                            String::from_utf8_lossy(&v)
                        );
                    }
                }
            }
        }
    }
    // The edits reach both outcomes.
    assert!(
        edited > 100_000 && accepted > 1_000,
        "{edited} edited, {accepted} accepted"
    );
}

/// `v` as JSON with every object's keys in reverse alphabetical order.
fn reversed_keys(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let pairs: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), reversed_keys(v)))
                .collect();
            format!("{{{}}}", pairs.join(","))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(reversed_keys).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// The fast path reads keys in the writer's order fastest, and keys in any
/// other order alike: every node event of the examples, with the keys of
/// all its objects sorted, then reversed, decodes on the fast path to the
/// same event as the line itself, as on the slow path.
#[test]
fn the_fast_path_reads_keys_in_any_order() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut checked = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read(file.unwrap().path()).unwrap();
        for line in text.split(|&b| b == b'\n').skip(1) {
            let Some(event) = raft_trace::__fast_decode(line) else {
                continue; // a client event, or a blank line
            };
            let value: serde_json::Value = serde_json::from_slice(line).unwrap();
            // serde_json's map (without its preserve_order feature) is sorted.
            let sorted = serde_json::to_string(&value).unwrap();
            assert_ne!(
                sorted.as_bytes(),
                line,
                "the examples are in the writer's order"
            );
            for other in [sorted, reversed_keys(&value)] {
                let fast = raft_trace::__fast_decode(other.as_bytes());
                assert!(
                    fast.as_ref() == Some(&event),
                    "line {other}\nfast: {fast:?}"
                );
                let slow = raft_trace::__slow_decode(other.as_bytes());
                assert!(
                    slow.as_ref().ok() == Some(&event),
                    "line {other}\nslow: {slow:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 800, "{checked} lines checked");
}

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
                Record::Node(NodeEvent {
                    node,
                    seq: 0,
                    time,
                    event,
                    post,
                })
            },
        )
    });
    let record = prop_oneof![4 => node_event, 1 => client_event().prop_map(Record::Client)];
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

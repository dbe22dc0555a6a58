// Command etcdraftdriver hosts the etcd raft (3.4) RawNodes of one simulated
// run and drives them on request: one JSON object per line on stdin, one
// answer per line on stdout. It does nothing on its own: the simulator
// (raftcheck's etcd-raft adapter) decides every tick, message, proposal,
// Ready and crash, and the driver reports after every call what the node's
// raw state became, so the adapter can write the events that explain it.
//
// Messages, entries, hard states and snapshots cross the pipe as their
// protobuf encoding (raftpb), in hex.
//
// Observation and determinism: RawNode does not expose the log, the message
// queue, the read states or the election timeout, so the driver reads them
// (and sets the timeout) through reflection on the unexported fields of
// etcd's raft and raftLog structs; etcd's own code is not changed. etcd 3.4
// draws its randomized election timeout from a package-global rand seeded
// with the clock (raft.go, resetRandomizedElectionTimeout, globalRand) and
// has no hook to set it. That draw happens only in raft.reset, which runs
// when the node becomes follower, candidate or leader (each changes its
// term, role or leader). After every call that changed one of the three, or
// that left a timeout other than the one set last, the driver overwrites the
// timeout with a draw from the node's own seeded RNG. The driver is single
// threaded and the simulator's calls come in a deterministic order, so one
// seed replays byte for byte.
package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"unsafe"

	"go.etcd.io/etcd/raft"
	pb "go.etcd.io/etcd/raft/raftpb"
)

// request is one call from the simulator.
type request struct {
	Op   string `json:"op"`
	Node uint64 `json:"node"`

	// start
	Peers       []uint64 `json:"peers,omitempty"`
	Seed        uint64   `json:"seed,omitempty"`
	PreVote     bool     `json:"pre_vote,omitempty"`
	CheckQuorum bool     `json:"check_quorum,omitempty"`
	MaxSize     uint64   `json:"max_size,omitempty"`
	MaxInflight int      `json:"max_inflight,omitempty"`
	Election    int      `json:"election,omitempty"`
	Heartbeat   int      `json:"heartbeat,omitempty"`
	Applied     uint64   `json:"applied,omitempty"`
	HardState   string   `json:"hard_state,omitempty"`
	Snapshot    string   `json:"snapshot,omitempty"`
	Entries     []string `json:"entries,omitempty"`

	// step, propose, read_index, report_snapshot, compact
	Msg   string `json:"msg,omitempty"`
	Data  string `json:"data,omitempty"`
	To    uint64 `json:"to,omitempty"`
	Index uint64 `json:"index,omitempty"`
}

// obs is the node's raw state after a call.
type obs struct {
	Term     uint64 `json:"term"`
	Vote     uint64 `json:"vote"`
	Role     uint64 `json:"role"` // raft.StateType: 0 follower, 1 candidate, 2 leader, 3 pre-candidate
	Lead     uint64 `json:"lead"`
	Commit   uint64 `json:"commit"`
	Applied  uint64 `json:"applied"`
	Last     uint64 `json:"last"`
	LastTerm uint64 `json:"last_term"`
	Snap     uint64 `json:"snap"`
	SnapTerm uint64 `json:"snap_term"`
	// A snapshot restored in memory (unstable), not yet handed out.
	Unstable *[2]uint64 `json:"unstable,omitempty"`
}

type readState struct {
	Index uint64 `json:"index"`
	Ctx   string `json:"ctx"`
}

// answer is the driver's reply to a call.
type answer struct {
	Err string `json:"err,omitempty"`
	// The state after the call.
	Obs *obs `json:"obs,omitempty"`
	// The log window the adapter diffs: Lo is the first index above the
	// commit index (or snapshot) before the call; Before the terms of
	// Lo..=last before the call; After the terms of Lo-1..=max(last before,
	// last after) after it (0 where the log holds no entry); New the
	// entries (protobuf) from the first index whose term changed (or the
	// first new one) to the last.
	Lo     uint64   `json:"lo,omitempty"`
	Before []uint64 `json:"before,omitempty"`
	After  []uint64 `json:"after,omitempty"`
	New    []string `json:"new,omitempty"`
	// Messages the call queued, in order (protobuf).
	Msgs []string `json:"msgs,omitempty"`
	// Read states the call produced.
	Reads []readState `json:"reads,omitempty"`
	// Whether the call returned an error (a dropped proposal).
	Failed bool `json:"failed,omitempty"`

	// ready
	Ready *ready `json:"ready,omitempty"`
	// entry
	Entry string `json:"entry,omitempty"`
}

type ready struct {
	HardState string   `json:"hard_state,omitempty"`
	Snapshot  string   `json:"snapshot,omitempty"`
	Entries   []string `json:"entries,omitempty"`
	Committed []string `json:"committed,omitempty"`
}

type node struct {
	rn       *raft.RawNode
	st       *raft.MemoryStorage
	r        reflect.Value // the raft struct, addressable
	log      reflect.Value // the raftLog struct
	rng      *rand.Rand
	election int
	// The election timeout the driver set last.
	timeoutSet int
	// How many of raft.msgs were reported already.
	seen int
	// How many of raft.readStates were reported already.
	readsSeen int
	handed    *raft.Ready
}

// field returns a settable view of an unexported struct field.
func field(v reflect.Value, name string) reflect.Value {
	f := v.FieldByName(name)
	if !f.IsValid() {
		panic("etcd raft has no field " + name)
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	must(err)
	return b
}

type marshaler interface{ Marshal() ([]byte, error) }

func enc(m marshaler) string {
	b, err := m.Marshal()
	must(err)
	return hex.EncodeToString(b)
}

// quiet is a raft.Logger that drops everything but panics.
type quiet struct{}

func (quiet) Debug(...interface{})          {}
func (quiet) Debugf(string, ...interface{}) {}
func (quiet) Info(...interface{})           {}
func (quiet) Infof(string, ...interface{})  {}
func (quiet) Warning(...interface{})        {}
func (quiet) Warningf(string, ...interface{}) {
}
func (quiet) Error(...interface{})          {}
func (quiet) Errorf(string, ...interface{}) {}
func (quiet) Fatal(v ...interface{})        { panic(fmt.Sprint(v...)) }
func (quiet) Fatalf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}
func (quiet) Panic(v ...interface{}) { panic(fmt.Sprint(v...)) }
func (quiet) Panicf(f string, v ...interface{}) {
	panic(fmt.Sprintf(f, v...))
}

func start(q *request) *node {
	st := raft.NewMemoryStorage()
	if q.Snapshot != "" {
		var s pb.Snapshot
		must(s.Unmarshal(unhex(q.Snapshot)))
		must(st.ApplySnapshot(s))
	} else {
		// No snapshot yet: the configuration is the storage's initial
		// ConfState (etcd's recommended bootstrap, without Bootstrap's
		// conf-change entries).
		s := field(reflect.ValueOf(st).Elem(), "snapshot")
		s.FieldByName("Metadata").FieldByName("ConfState").Set(reflect.ValueOf(pb.ConfState{Voters: q.Peers}))
	}
	var es []pb.Entry
	for _, h := range q.Entries {
		var e pb.Entry
		must(e.Unmarshal(unhex(h)))
		es = append(es, e)
	}
	must(st.Append(es))
	if q.HardState != "" {
		var hs pb.HardState
		must(hs.Unmarshal(unhex(q.HardState)))
		must(st.SetHardState(hs))
	}
	maxSize := q.MaxSize
	if maxSize == 0 {
		maxSize = 1
	}
	c := &raft.Config{
		ID:                       q.Node,
		ElectionTick:             q.Election,
		HeartbeatTick:            q.Heartbeat,
		Storage:                  st,
		Applied:                  q.Applied,
		MaxSizePerMsg:            maxSize,
		MaxCommittedSizePerReady: 1 << 30,
		MaxInflightMsgs:          q.MaxInflight,
		CheckQuorum:              q.CheckQuorum,
		PreVote:                  q.PreVote,
		ReadOnlyOption:           raft.ReadOnlySafe,
		Logger:                   quiet{},
	}
	rn, err := raft.NewRawNode(c)
	must(err)
	r := field(reflect.ValueOf(rn).Elem(), "raft").Elem()
	n := &node{
		rn:       rn,
		st:       st,
		r:        r,
		log:      field(r, "raftLog").Elem(),
		rng:      rand.New(rand.NewSource(int64(q.Seed))),
		election: q.Election,
	}
	n.redraw()
	return n
}

func (n *node) redraw() {
	t := n.election + n.rng.Intn(n.election)
	field(n.r, "randomizedElectionTimeout").SetInt(int64(t))
	n.timeoutSet = t
}

func (n *node) unstable() (*pb.Snapshot, []pb.Entry, uint64) {
	u := field(n.log, "unstable")
	return field(u, "snapshot").Interface().(*pb.Snapshot),
		field(u, "entries").Interface().([]pb.Entry),
		field(u, "offset").Uint()
}

// The raftLog's own first/last index and term (log.go), read from its
// parts: the unstable snapshot and entries first, then the storage.
func (n *node) firstIndex() uint64 {
	if s, _, _ := n.unstable(); s != nil {
		return s.Metadata.Index + 1
	}
	i, err := n.st.FirstIndex()
	must(err)
	return i
}

func (n *node) lastIndex() uint64 {
	s, es, off := n.unstable()
	if len(es) > 0 {
		return off + uint64(len(es)) - 1
	}
	if s != nil {
		return s.Metadata.Index
	}
	i, err := n.st.LastIndex()
	must(err)
	return i
}

// entry returns the entry at i, if the log holds it; for the snapshot's
// index, an entry with only its index and term.
func (n *node) entry(i uint64) (pb.Entry, bool) {
	if i < n.firstIndex()-1 || i > n.lastIndex() {
		return pb.Entry{}, false
	}
	s, es, off := n.unstable()
	if i >= off && len(es) > 0 && i-off < uint64(len(es)) {
		return es[i-off], true
	}
	if s != nil && s.Metadata.Index == i {
		return pb.Entry{Index: i, Term: s.Metadata.Term}, true
	}
	if i == n.firstIndex()-1 {
		t, err := n.st.Term(i)
		if err != nil {
			return pb.Entry{}, false
		}
		return pb.Entry{Index: i, Term: t}, true
	}
	got, err := n.st.Entries(i, i+1, 1<<62)
	if err != nil || len(got) == 0 {
		return pb.Entry{}, false
	}
	return got[0], true
}

func (n *node) termAt(i uint64) uint64 {
	if e, ok := n.entry(i); ok {
		return e.Term
	}
	return 0
}

func (n *node) obs() *obs {
	o := &obs{
		Term:    field(n.r, "Term").Uint(),
		Vote:    field(n.r, "Vote").Uint(),
		Role:    field(n.r, "state").Uint(),
		Lead:    field(n.r, "lead").Uint(),
		Commit:  field(n.log, "committed").Uint(),
		Applied: field(n.log, "applied").Uint(),
		Last:    n.lastIndex(),
	}
	o.LastTerm = n.termAt(o.Last)
	o.Snap = n.firstIndex() - 1
	o.SnapTerm = n.termAt(o.Snap)
	if s, _, _ := n.unstable(); s != nil {
		o.Unstable = &[2]uint64{s.Metadata.Index, s.Metadata.Term}
	}
	return o
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// call runs f on the node and reports what changed.
func (n *node) call(f func() error) *answer {
	before := n.obs()
	lo := maxU(before.Commit, before.Snap) + 1
	var old []uint64
	for i := lo; i <= before.Last; i++ {
		old = append(old, n.termAt(i))
	}
	err := f()
	after := n.obs()
	a := &answer{Obs: after, Lo: lo, Before: old, Failed: err != nil}
	top := maxU(before.Last, after.Last)
	for i := lo - 1; i <= top; i++ {
		a.After = append(a.After, n.termAt(i))
	}
	firstNew := before.Last + 1
	for i := lo; i <= before.Last; i++ {
		if i > after.Last || n.termAt(i) != old[i-lo] {
			firstNew = i
			break
		}
	}
	if after.Unstable != nil && (before.Unstable == nil || *before.Unstable != *after.Unstable) {
		// A snapshot replaced the log: no entries to report.
		firstNew = after.Last + 1
	}
	for i := firstNew; i <= after.Last; i++ {
		e, ok := n.entry(i)
		if !ok {
			panic(fmt.Sprintf("node %d: no entry %d in its log", field(n.r, "id").Uint(), i))
		}
		a.New = append(a.New, enc(&e))
	}
	msgs := field(n.r, "msgs").Interface().([]pb.Message)
	for i := n.seen; i < len(msgs); i++ {
		a.Msgs = append(a.Msgs, enc(&msgs[i]))
	}
	n.seen = len(msgs)
	reads := field(n.r, "readStates").Interface().([]raft.ReadState)
	for i := n.readsSeen; i < len(reads); i++ {
		a.Reads = append(a.Reads, readState{Index: reads[i].Index, Ctx: hex.EncodeToString(reads[i].RequestCtx)})
	}
	n.readsSeen = len(reads)
	timeout := int(field(n.r, "randomizedElectionTimeout").Int())
	if after.Term != before.Term || after.Role != before.Role || after.Lead != before.Lead || timeout != n.timeoutSet {
		n.redraw()
	}
	return a
}

func (n *node) ready() *answer {
	if !n.rn.HasReady() {
		return &answer{}
	}
	rd := n.rn.Ready()
	// Ready took every queued message and read state (all reported).
	n.seen = 0
	if len(rd.ReadStates) != 0 {
		n.readsSeen = 0
	}
	n.handed = &rd
	out := &ready{}
	if !raft.IsEmptyHardState(rd.HardState) {
		out.HardState = enc(&rd.HardState)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		out.Snapshot = enc(&rd.Snapshot)
	}
	for i := range rd.Entries {
		out.Entries = append(out.Entries, enc(&rd.Entries[i]))
	}
	for i := range rd.CommittedEntries {
		out.Committed = append(out.Committed, enc(&rd.CommittedEntries[i]))
	}
	return &answer{Ready: out}
}

// persist writes the handed Ready to the storage, in etcd's documented
// order (snapshot, entries, hard state); the simulator made it durable.
func (n *node) persist() {
	rd := n.handed
	if rd == nil {
		panic("persist without a Ready")
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		must(n.st.ApplySnapshot(rd.Snapshot))
	}
	must(n.st.Append(rd.Entries))
	if !raft.IsEmptyHardState(rd.HardState) {
		must(n.st.SetHardState(rd.HardState))
	}
}

func serve(nodes map[uint64]*node, q *request) (a *answer) {
	defer func() {
		if p := recover(); p != nil {
			a = &answer{Err: fmt.Sprint(p)}
		}
	}()
	if q.Op == "start" {
		n := start(q)
		nodes[q.Node] = n
		return &answer{Obs: n.obs()}
	}
	n := nodes[q.Node]
	if n == nil {
		return &answer{Err: fmt.Sprintf("no node %d", q.Node)}
	}
	switch q.Op {
	case "tick":
		return n.call(func() error { n.rn.Tick(); return nil })
	case "step":
		var m pb.Message
		must(m.Unmarshal(unhex(q.Msg)))
		// An error is a message etcd refuses: nothing happened.
		return n.call(func() error { _ = n.rn.Step(m); return nil })
	case "propose":
		data := unhex(q.Data)
		return n.call(func() error { return n.rn.Propose(data) })
	case "read_index":
		ctx := unhex(q.Data)
		return n.call(func() error { n.rn.ReadIndex(ctx); return nil })
	case "report_snapshot":
		return n.call(func() error { n.rn.ReportSnapshot(q.To, raft.SnapshotFinish); return nil })
	case "ready":
		return n.ready()
	case "persist":
		n.persist()
		return &answer{}
	case "advance":
		rd := n.handed
		n.handed = nil
		return n.call(func() error { n.rn.Advance(*rd); return nil })
	case "compact":
		// A snapshot of the state machine at an applied index, taken now
		// (the simulated disk gets it with the next Ready).
		_, cs, err := n.st.InitialState()
		must(err)
		_, err = n.st.CreateSnapshot(q.Index, &cs, unhex(q.Data))
		must(err)
		must(n.st.Compact(q.Index))
		return &answer{Obs: n.obs()}
	case "obs":
		return &answer{Obs: n.obs()}
	case "entry":
		if e, ok := n.entry(q.Index); ok && q.Index >= n.firstIndex() {
			return &answer{Entry: enc(&e)}
		}
		return &answer{}
	case "stop":
		delete(nodes, q.Node)
		return &answer{}
	}
	return &answer{Err: "unknown op " + q.Op}
}

func main() {
	nodes := map[uint64]*node{}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	dec := json.NewDecoder(in)
	enc := json.NewEncoder(out)
	for {
		var q request
		if err := dec.Decode(&q); err != nil {
			return
		}
		must(enc.Encode(serve(nodes, &q)))
		must(out.Flush())
	}
}

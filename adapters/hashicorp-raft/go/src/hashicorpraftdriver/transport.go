package main

import (
	"bytes"
	"errors"
	"io"
	"io/ioutil"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

var errDropped = errors.New("message lost (fault injection)")

const rpcTimeout = 500 * time.Millisecond

// transport is one incarnation's raft.Transport: an in-memory network with
// faults, writing a send and a receive for every message that gets through.
type transport struct {
	c    *cluster
	i    *inc
	addr raft.ServerAddress
	// consumer is what raft's main loop reads; capacity 1, filled only by
	// forward under the trace lock (see cluster.flush).
	consumer chan raft.RPC
	inbox    chan *delivery
}

// delivery is one request on its way to a node's main loop.
type delivery struct {
	wire     obj
	cmd      interface{}
	data     []byte
	done     chan answer
	received bool
}

type answer struct {
	resp interface{}
	wire obj
	err  error
}

func newTransport(c *cluster, i *inc) *transport {
	return &transport{c: c, i: i, addr: i.n.addr, consumer: make(chan raft.RPC, 1), inbox: make(chan *delivery, 256)}
}

// forward hands the node's main loop one request at a time and sends its
// answer back.
func (t *transport) forward() {
	c := t.c
	for d := range t.inbox {
		c.lock(t.i)
		t.i.pending = d
		respCh := make(chan raft.RPCResponse, 1)
		rpc := raft.RPC{Command: d.cmd, RespChan: respCh}
		if d.data != nil {
			rpc.Reader = bytes.NewReader(d.data)
		}
		t.consumer <- rpc
		c.unlock()
		resp := <-respCh
		c.lock(t.i)
		n := t.i.n
		var wire obj
		if resp.Error == nil {
			wire = replyWire(d, resp.Response)
			if wire != nil {
				n.msgID++
				wire["id"] = n.msgID
				wire["from"] = n.id
				wire["to"] = d.wire["from"]
				c.tr.event(n, "send", obj{"msg": wire})
			}
		}
		if t.i.owed {
			t.i.owed = false
			c.persist(n)
		}
		t.i.pending = nil
		for _, w := range t.i.deferred {
			c.tr.event(n, "receive", obj{"msg": w})
		}
		t.i.deferred = nil
		c.unlock()
		d.done <- answer{resp: resp.Response, wire: wire, err: resp.Error}
	}
}

// call sends one request and waits for its answer.
func (t *transport) call(target raft.ServerAddress, cmd interface{}, data io.Reader, wire obj) (interface{}, error) {
	c := t.c
	to, err := strconv.Atoi(string(target))
	if err != nil {
		return nil, err
	}
	var payload []byte
	if data != nil {
		if payload, err = ioutil.ReadAll(data); err != nil {
			return nil, err
		}
	}
	c.lock(t.i)
	n := t.i.n
	n.msgID++
	wire["id"] = n.msgID
	wire["from"] = n.id
	wire["to"] = to
	if _, ok := wire["term"]; !ok {
		wire["term"] = n.term
	}
	c.tr.event(n, "send", obj{"msg": wire})
	through := c.connected(n.id, to)
	var dest *inc
	if d := c.nodes[to].cur; d != nil && !d.dead {
		dest = d
	}
	var delay time.Duration
	dup := false
	if c.o.faults["delay"] && c.rng.Intn(5) == 0 {
		delay = time.Duration(c.rng.Intn(10)) * time.Millisecond
	}
	if c.o.faults["dup"] && c.rng.Intn(20) == 0 {
		dup = true
	}
	c.unlock()
	if !through || dest == nil {
		time.Sleep(10 * time.Millisecond)
		return nil, errDropped
	}
	time.Sleep(delay)
	d := &delivery{wire: wire, cmd: cmd, data: payload, done: make(chan answer, 1)}
	select {
	case dest.tr.inbox <- d:
	default:
		return nil, errDropped
	}
	if dup {
		select {
		case dest.tr.inbox <- &delivery{wire: wire, cmd: cmd, data: payload, done: make(chan answer, 1)}:
		default:
		}
	}
	select {
	case a := <-d.done:
		c.lock(t.i)
		defer c.unlock()
		if a.wire == nil {
			return a.resp, a.err
		}
		if !c.connected(to, n.id) {
			return nil, errDropped
		}
		if a.wire["rpc"] == "request_vote_reply" {
			// Read by the candidate loop later, or never.
			t.i.votes = append(t.i.votes, a.wire)
		} else {
			c.tr.event(n, "receive", obj{"msg": a.wire})
		}
		if t.i.role == "leader" && a.wire["term"].(uint64) > n.term {
			t.i.sawHigher = true
		}
		return a.resp, a.err
	case <-time.After(rpcTimeout):
		return nil, errors.New("rpc timed out")
	}
}

func replyWire(d *delivery, resp interface{}) obj {
	switch r := resp.(type) {
	case *raft.AppendEntriesResponse:
		w := obj{"rpc": "append_entries_reply", "term": r.Term, "success": r.Success}
		if r.Success {
			req := d.cmd.(*raft.AppendEntriesRequest)
			w["match_index"] = req.PrevLogEntry + uint64(len(req.Entries))
		} else {
			w["hint_index"] = r.LastLog
		}
		return w
	case *raft.RequestVoteResponse:
		return obj{"rpc": "request_vote_reply", "term": r.Term, "granted": r.Granted}
	case *raft.InstallSnapshotResponse:
		w := obj{"rpc": "install_snapshot_reply", "term": r.Term, "last_index": uint64(0)}
		if r.Success {
			w["last_index"] = d.cmd.(*raft.InstallSnapshotRequest).LastLogIndex
		}
		return w
	}
	// TimeoutNow's answer is not a message of the trace format.
	return nil
}

func (t *transport) Consumer() <-chan raft.RPC          { return t.consumer }
func (t *transport) LocalAddr() raft.ServerAddress      { return t.addr }
func (t *transport) SetHeartbeatHandler(func(raft.RPC)) {}

// AppendEntriesPipeline: no pipelining, every append waits for its answer.
func (t *transport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (t *transport) AppendEntries(_ raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	entries := make([]obj, 0, len(args.Entries))
	for _, l := range args.Entries {
		entries = append(entries, entry(l))
	}
	wire := obj{"rpc": "append_entries", "term": args.Term, "prev_index": args.PrevLogEntry,
		"prev_term": args.PrevLogTerm, "commit": args.LeaderCommitIndex, "entries": entries}
	// The receiver gets its own copy, as over a network.
	cp := *args
	cp.Entries = append([]*raft.Log(nil), args.Entries...)
	r, err := t.call(target, &cp, nil, wire)
	if err != nil {
		return err
	}
	*resp = *r.(*raft.AppendEntriesResponse)
	return nil
}

func (t *transport) RequestVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	wire := obj{"rpc": "request_vote", "term": args.Term, "last_index": args.LastLogIndex, "last_term": args.LastLogTerm}
	if args.LeadershipTransfer {
		wire["transfer"] = true
	}
	cp := *args
	r, err := t.call(target, &cp, nil, wire)
	if err != nil {
		return err
	}
	*resp = *r.(*raft.RequestVoteResponse)
	return nil
}

func (t *transport) InstallSnapshot(_ raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	wire := obj{"rpc": "install_snapshot", "term": args.Term, "last_index": args.LastLogIndex,
		"last_term": args.LastLogTerm, "offset": 0, "done": true}
	cp := *args
	r, err := t.call(target, &cp, data, wire)
	if err != nil {
		return err
	}
	*resp = *r.(*raft.InstallSnapshotResponse)
	return nil
}

func (t *transport) TimeoutNow(_ raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	cp := *args
	// hashicorp's TimeoutNow carries no term: the sender's is written.
	r, err := t.call(target, &cp, nil, obj{"rpc": "timeout_now"})
	if err != nil {
		return err
	}
	*resp = *r.(*raft.TimeoutNowResponse)
	return nil
}

func (t *transport) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte { return []byte(addr) }

// DecodePeer runs on the main loop while it handles an RPC: a point to
// write the RPC's receive as early as possible.
func (t *transport) DecodePeer(b []byte) raft.ServerAddress {
	if t.i != nil {
		t.c.lock(t.i)
		t.c.unlock()
	}
	return raft.ServerAddress(b)
}

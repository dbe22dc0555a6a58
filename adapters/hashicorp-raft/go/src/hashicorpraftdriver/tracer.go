package main

import (
	"bufio"
	"encoding/json"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// tracer owns the trace file and the lock that orders every event.
type tracer struct {
	mu        sync.Mutex
	f         *os.File
	w         *bufio.Writer
	start     time.Time
	lines     int
	elections int
	err       error
}

type obj = map[string]interface{}

func newTracer(path string) (*tracer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &tracer{f: f, w: bufio.NewWriterSize(f, 1<<20), start: time.Now()}, nil
}

// write writes one line; the caller holds mu.
func (t *tracer) write(v obj) {
	b, err := json.Marshal(v)
	if err != nil && t.err == nil {
		t.err = err
	}
	t.w.Write(b)
	t.w.WriteByte('\n')
	t.lines++
}

func (t *tracer) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.w.Flush(); err != nil {
		return err
	}
	if t.err != nil {
		return t.err
	}
	return t.f.Close()
}

// event writes one event of node n; the caller holds mu.
func (t *tracer) event(n *node, typ string, fields obj) {
	n.seq++
	fields["type"] = typ
	fields["node"] = n.id
	fields["seq"] = n.seq
	fields["time"] = time.Since(t.start).Nanoseconds()
	t.write(fields)
}

// client writes one client event; the caller holds mu.
func (t *tracer) client(fields obj) {
	fields["time"] = time.Since(t.start).Nanoseconds()
	t.write(fields)
}

// entry is how a log entry appears in the trace.
func entry(l *raft.Log) obj {
	e := obj{"term": l.Term}
	switch l.Type {
	case raft.LogCommand:
		var c command
		if err := json.Unmarshal(l.Data, &c); err == nil {
			e["data"] = obj{"kind": "command", "client": c.Client, "req": c.Req, "op": c.Op}
		} else {
			e["data"] = obj{"kind": "opaque"}
		}
	case raft.LogNoop:
		e["data"] = obj{"kind": "noop"}
	case raft.LogConfiguration:
		e["data"] = obj{"kind": "config"}
	default:
		e["data"] = obj{"kind": "opaque"}
	}
	return e
}

// header is the trace's first line.
func header(o options) obj {
	ids := make([]int, o.nodes)
	for i := range ids {
		ids[i] = i + 1
	}
	return obj{
		"type":           "header",
		"format":         "raft-trace/1",
		"implementation": "hashicorp/raft 1.1.2 (Debian golang-github-hashicorp-raft-dev), raftcheck hashicorp-raft driver",
		"nodes":          ids,
		"observes": obj{
			"events":  []string{"init", "crash", "role", "send", "receive", "append", "truncate", "persist", "apply", "snapshot", "install"},
			"state":   []string{},
			"entries": "full",
		},
		"network":  obj{"loss": true, "duplication": o.faults["dup"], "reorder": true},
		"features": features(o),
		"params": obj{
			"seed":               o.seed,
			"heartbeat_timeout":  o.heartbeat.String(),
			"snapshot_threshold": o.snapshotThreshold,
			"trailing_logs":      o.trailingLogs,
			"faults":             o.faultList,
			"harness_bug":        o.harnessBug,
		},
	}
}

// features are the behaviours beyond Figure 2 that hashicorp/raft 1.1 has.
func features(o options) []string {
	f := []string{
		// checkLeaderLease; requestVote refuses while it knows a leader.
		"check-quorum",
		// handleStaleTerm, heartbeat: a reply's higher term is not adopted.
		"stale-term-step-down",
		// appendEntries: a previous entry compacted away is refused.
		"refuse-compacted-prev",
		// electSelf: vote requests may leave before the self-vote is written.
		"late-self-vote",
	}
	if o.faults["transfer"] {
		f = append(f, "leader-transfer")
	}
	return f
}

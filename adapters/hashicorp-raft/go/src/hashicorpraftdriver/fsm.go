package main

import (
	"encoding/json"
	"io"
	"io/ioutil"

	"github.com/hashicorp/raft"
)

// fsm is the key-value store the clients use: reads, writes and
// compare-and-set, every one through the log.
type fsm struct {
	c  *cluster
	i  *inc
	kv map[string]string
	// gate holds the FSM back while a snapshot it handed out is being
	// written, so that the snapshot event, written when the snapshot is
	// durable, is of the state machine as it then is.
	gate chan struct{}
}

func (f *fsm) wait() {
	if f.gate != nil {
		<-f.gate
		f.gate = nil
	}
}

type result struct {
	value interface{} // string, or nil: absent
	ok    bool
}

// Apply runs in hashicorp's FSM goroutine for every committed command.
func (f *fsm) Apply(l *raft.Log) interface{} {
	f.wait()
	c, i := f.c, f.i
	c.lock(i)
	defer c.unlock()
	var cmd command
	if err := json.Unmarshal(l.Data, &cmd); err != nil {
		return result{}
	}
	if l.Index > i.commit {
		// Committed by now (hashicorp does not report when).
		i.commit = l.Index
		c.tr.event(i.n, "commit", obj{"index": l.Index})
	}
	// The entries before it that never reach the FSM (no-ops,
	// configurations) were applied by hashicorp's processLogs.
	for k := i.applied + 1; k < l.Index; k++ {
		c.writeApply(i, k)
	}
	if l.Index > i.applied {
		c.writeApply(i, l.Index)
	}
	key, _ := cmd.Op["key"].(string)
	cur, present := f.kv[key]
	var r result
	if present {
		r.value = cur
	}
	switch cmd.Op["f"] {
	case "write":
		f.kv[key], r.ok = cmd.Op["value"].(string), true
	case "cas":
		from, _ := cmd.Op["from"].(string)
		if (cmd.Op["from"] == nil && !present) || (present && cur == from) {
			f.kv[key], r.ok = cmd.Op["to"].(string), true
		}
	default:
		r.ok = true
	}
	return r
}

// writeApply writes the apply of entry k (from the node's copy); holds mu.
func (c *cluster) writeApply(i *inc, k uint64) {
	n := i.n
	e := obj{"index": k}
	if l, ok := n.copies[k]; ok {
		e["term"] = l.Term
		if l.Type == raft.LogCommand {
			var cmd command
			if json.Unmarshal(l.Data, &cmd) == nil {
				e["client"], e["req"] = cmd.Client, cmd.Req
			}
		}
	}
	i.applied = k
	c.tr.event(n, "apply", e)
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	kv := make(map[string]string, len(f.kv))
	for k, v := range f.kv {
		kv[k] = v
	}
	f.wait()
	f.gate = make(chan struct{})
	return &fsmSnapshot{kv: kv, done: f.gate}, nil
}

// Restore runs when a node starts from its snapshot (no event: the init
// says it) and when it installs one received from the leader.
func (f *fsm) Restore(rc io.ReadCloser) error {
	f.wait()
	b, err := ioutil.ReadAll(rc)
	if err != nil {
		return err
	}
	kv := map[string]string{}
	if err := json.Unmarshal(b, &kv); err != nil {
		return err
	}
	f.kv = kv
	c, i := f.c, f.i
	c.lock(i)
	defer c.unlock()
	if i.booting {
		return nil
	}
	if d := i.pending; d != nil {
		if req, ok := d.cmd.(*raft.InstallSnapshotRequest); ok {
			c.tr.event(i.n, "install", obj{"index": req.LastLogIndex, "term": req.LastLogTerm})
			i.applied = req.LastLogIndex
			if req.LastLogIndex > i.commit {
				i.commit = req.LastLogIndex
			}
		}
	}
	return nil
}

type fsmSnapshot struct {
	kv   map[string]string
	done chan struct{}
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := json.Marshal(s.kv)
	if err != nil {
		sink.Cancel()
		return err
	}
	if _, err := sink.Write(b); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { close(s.done) }

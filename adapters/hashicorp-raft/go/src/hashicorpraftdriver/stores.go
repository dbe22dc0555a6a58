package main

import (
	"bytes"
	"fmt"
	"io"
	"io/ioutil"
	"time"

	"github.com/hashicorp/raft"
)

// hashicorp/raft's keys in the stable store (raft.go).
var (
	keyCurrentTerm  = []byte("CurrentTerm")
	keyLastVoteTerm = []byte("LastVoteTerm")
	keyLastVoteCand = []byte("LastVoteCand")
)

// logStore is an incarnation's view of its node's log: writes go to the
// node's store and are traced; reads pass through.
type logStore struct {
	c *cluster
	i *inc
}

func (s *logStore) FirstIndex() (uint64, error)        { return s.i.n.logs.FirstIndex() }
func (s *logStore) LastIndex() (uint64, error)         { return s.i.n.logs.LastIndex() }
func (s *logStore) GetLog(k uint64, l *raft.Log) error { return s.i.n.logs.GetLog(k, l) }
func (s *logStore) StoreLog(l *raft.Log) error         { return s.StoreLogs([]*raft.Log{l}) }

func (s *logStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	c, i, n := s.c, s.i, s.i.n
	c.lock(i)
	defer c.unlock()
	if err := n.logs.StoreLogs(logs); err != nil {
		return err
	}
	if i.booting {
		return nil
	}
	first := logs[0].Index
	if first <= n.last {
		// Written over in place: the old entries from first on are gone.
		c.tr.event(n, "truncate", obj{"from": first})
	}
	entries := make([]obj, 0, len(logs))
	for _, l := range logs {
		entries = append(entries, entry(l))
		n.copies[l.Index] = *l
	}
	c.tr.event(n, "append", obj{"index": first, "entries": entries})
	last := logs[len(logs)-1].Index
	if c.o.harnessBug == "ack-dropped-entries" && i.role == "follower" {
		// Planted: a follower's store loses the batch it was given but
		// says it wrote it; the node acknowledges the entries anyway.
		c.persist(n)
		n.last = last
	} else {
		n.last = last
		c.persist(n)
	}
	return nil
}

func (s *logStore) DeleteRange(min, max uint64) error {
	c, i, n := s.c, s.i, s.i.n
	c.lock(i)
	defer c.unlock()
	if err := n.logs.DeleteRange(min, max); err != nil {
		return err
	}
	if i.booting {
		return nil
	}
	snap := uint64(0)
	if l := n.snaps.latest; l != nil {
		snap = l.meta.Index
	}
	if max <= snap {
		// Compaction after a snapshot: the snapshot event said it.
		return nil
	}
	// A conflicting suffix removed.
	c.tr.event(n, "truncate", obj{"from": min})
	if min-1 < n.last {
		n.last = min - 1
	}
	c.persist(n)
	return nil
}

// stableStore is an incarnation's view of its node's stable store.
// hashicorp writes a vote as two keys (persistVote: LastVoteTerm, then
// LastVoteCand); the pair is written to the node's store together, when
// the second arrives, like one record.
type stableStore struct {
	c           *cluster
	i           *inc
	voteTerm    uint64
	hasVoteTerm bool
}

func (s *stableStore) Set(key []byte, val []byte) error {
	c, i, n := s.c, s.i, s.i.n
	c.lock(i)
	defer c.unlock()
	if !bytes.Equal(key, keyLastVoteCand) {
		return n.stable.Set(key, val)
	}
	if s.hasVoteTerm {
		if err := n.stable.SetUint64(keyLastVoteTerm, s.voteTerm); err != nil {
			return err
		}
		n.voteTerm = s.voteTerm
		s.hasVoteTerm = false
	}
	if err := n.stable.Set(key, val); err != nil {
		return err
	}
	n.voteCand = append([]byte(nil), val...)
	if i.booting {
		return nil
	}
	if c.o.harnessBug == "vote-before-persist" && i.pending != nil {
		// Planted: the vote's persist is written after the reply.
		i.owed = true
		return nil
	}
	c.persist(n)
	return nil
}

func (s *stableStore) Get(key []byte) ([]byte, error) { return s.i.n.stable.Get(key) }

func (s *stableStore) SetUint64(key []byte, val uint64) error {
	c, i, n := s.c, s.i, s.i.n
	c.lock(i)
	defer c.unlock()
	switch {
	case bytes.Equal(key, keyLastVoteTerm):
		s.voteTerm, s.hasVoteTerm = val, true
		return nil
	case bytes.Equal(key, keyCurrentTerm):
		if err := n.stable.SetUint64(key, val); err != nil {
			return err
		}
		c.termWritten(i, val)
		return nil
	}
	return n.stable.SetUint64(key, val)
}

func (s *stableStore) GetUint64(key []byte) (uint64, error) {
	if bytes.Equal(key, keyLastVoteTerm) {
		s.c.tr.mu.Lock()
		v, ok := s.voteTerm, s.hasVoteTerm
		s.c.tr.mu.Unlock()
		if ok {
			return v, nil
		}
	}
	return s.i.n.stable.GetUint64(key)
}

// snapStore is a node's snapshot store: it keeps the latest complete
// snapshot (a crash while one is written leaves the previous one).
type snapStore struct {
	c      *cluster
	n      *node
	latest *snapshot
}

type snapshot struct {
	meta raft.SnapshotMeta
	data []byte
}

// snapView is an incarnation's view of its node's snapshot store.
type snapView struct {
	s *snapStore
	i *inc
}

func (v *snapView) Create(version raft.SnapshotVersion, index, term uint64, conf raft.Configuration, confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	return v.s.create(v.i, version, index, term, conf, confIndex)
}
func (v *snapView) List() ([]*raft.SnapshotMeta, error) { return v.s.List() }
func (v *snapView) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	return v.s.Open(id)
}

// Create, List and Open without an incarnation: BootstrapCluster's use.
func (s *snapStore) Create(version raft.SnapshotVersion, index, term uint64, conf raft.Configuration, confIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	return s.create(nil, version, index, term, conf, confIndex)
}

func (s *snapStore) create(i *inc, version raft.SnapshotVersion, index, term uint64, conf raft.Configuration, confIndex uint64) (raft.SnapshotSink, error) {
	id := fmt.Sprintf("%d-%d-%d", term, index, time.Now().UnixNano())
	return &sink{s: s, i: i, meta: raft.SnapshotMeta{Version: version, ID: id, Index: index, Term: term,
		Configuration: conf, ConfigurationIndex: confIndex}}, nil
}

func (s *snapStore) List() ([]*raft.SnapshotMeta, error) {
	s.c.tr.mu.Lock()
	defer s.c.tr.mu.Unlock()
	if s.latest == nil {
		return nil, nil
	}
	m := s.latest.meta
	return []*raft.SnapshotMeta{&m}, nil
}

func (s *snapStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	s.c.tr.mu.Lock()
	defer s.c.tr.mu.Unlock()
	if s.latest == nil || s.latest.meta.ID != id {
		return nil, nil, fmt.Errorf("snapshot %s not found", id)
	}
	m := s.latest.meta
	return &m, ioutil.NopCloser(bytes.NewReader(s.latest.data)), nil
}

type sink struct {
	s    *snapStore
	i    *inc
	meta raft.SnapshotMeta
	buf  bytes.Buffer
}

func (k *sink) Write(p []byte) (int, error) { return k.buf.Write(p) }
func (k *sink) ID() string                  { return k.meta.ID }
func (k *sink) Cancel() error               { return nil }

func (k *sink) Close() error {
	c, i, n := k.s.c, k.i, k.s.n
	if i == nil {
		return nil
	}
	c.lock(i)
	defer c.unlock()
	k.meta.Size = int64(k.buf.Len())
	k.s.latest = &snapshot{meta: k.meta, data: k.buf.Bytes()}
	if d := i.pending; d != nil && d.received {
		if req, ok := d.cmd.(*raft.InstallSnapshotRequest); ok && req.LastLogIndex == k.meta.Index && req.LastLogTerm == k.meta.Term {
			// A snapshot received from the leader: durable now; its
			// install event is written when the state machine takes it
			// (fsm.Restore).
			c.persist(n)
			return nil
		}
	}
	c.tr.event(n, "snapshot", obj{"index": k.meta.Index, "term": k.meta.Term})
	return nil
}

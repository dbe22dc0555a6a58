package main

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"math/rand"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// node is one server across its incarnations: what its disk holds survives
// a crash, its trace numbering continues.
type node struct {
	id    int
	addr  raft.ServerAddress
	seq   uint64
	msgID uint64

	logs   *raft.InmemStore
	stable *raft.InmemStore
	snaps  *snapStore

	// The durable state as the trace has reported it.
	term     uint64
	voteTerm uint64
	voteCand []byte
	last     uint64
	// Every entry the log has held, by index (the latest copy): the
	// entries an apply skips (no-ops and configurations never reach the
	// FSM) are written from here.
	copies map[uint64]raft.Log

	cur  *inc
	incs int
}

// inc is one incarnation of a node: a raft.Raft from start to crash.
type inc struct {
	n       *node
	no      int
	r       *raft.Raft
	tr      *transport
	dead    bool
	booting bool

	// role as the trace has reported it: follower, candidate, leader;
	// "campaign" between hashicorp's setState(Candidate) and the term
	// it campaigns in.
	role string
	// transfer: the campaign was started by a TimeoutNow.
	transfer bool
	// stepDown: the node became follower and the term it is follower in
	// shows at the next write (a higher term) or not at all.
	stepDown bool
	// sawHigher: as leader, its replication received a reply of a higher
	// term (hashicorp's handleStaleTerm then steps it down, keeping its term).
	sawHigher bool
	// pending: the RPC handed to the node's main loop, not yet answered.
	pending *delivery
	// deferred: vote replies written only once the RPC the main loop was
	// handling is answered, so that they do not split its handling.
	deferred []obj
	// votes: vote replies the transport took that hashicorp's candidate
	// loop may not have read yet (it reads them from a channel, and drops
	// them when its election ends); written when their effect shows (see
	// flushVotes).
	votes   []obj
	applied uint64
	commit  uint64
	// owed: a persist the vote-before-persist harness bug holds back
	// until the reply has been sent.
	owed bool
}

type cluster struct {
	o     options
	tr    *tracer
	nodes []*node // 1-based
	rng   *rand.Rand
	// Faults, read under tr.mu.
	group      map[int]int // partition side; all equal: connected
	lossUntil  time.Time
	start      time.Time
	stopFaults chan struct{}
	wg         sync.WaitGroup
	stats      runStats
}

type runStats struct {
	ops, ok, crashes, partitions, transfers int
}

func newCluster(o options) (*cluster, error) {
	t, err := newTracer(o.out)
	if err != nil {
		return nil, err
	}
	c := &cluster{o: o, tr: t, rng: seeded(o.seed), group: map[int]int{}, stopFaults: make(chan struct{})}
	t.write(header(o))
	var servers []raft.Server
	for id := 1; id <= o.nodes; id++ {
		addr := raft.ServerAddress(strconv.Itoa(id))
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(addr), Address: addr})
	}
	c.nodes = make([]*node, o.nodes+1)
	for id := 1; id <= o.nodes; id++ {
		n := &node{
			id:     id,
			addr:   raft.ServerAddress(strconv.Itoa(id)),
			logs:   raft.NewInmemStore(),
			stable: raft.NewInmemStore(),
			copies: map[uint64]raft.Log{},
		}
		n.snaps = &snapStore{c: c, n: n}
		c.nodes[id] = n
		// hashicorp's own bootstrap: the configuration entry at index 1
		// of term 1, and term 1, written to the stores before the start.
		conf := c.config(n)
		if err := raft.BootstrapCluster(conf, n.logs, n.stable, n.snaps, &transport{c: c, addr: n.addr}, raft.Configuration{Servers: servers}); err != nil {
			return nil, fmt.Errorf("bootstrapping node %d: %v", id, err)
		}
	}
	for id := 1; id <= o.nodes; id++ {
		if err := c.boot(c.nodes[id]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *cluster) config(n *node) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(n.addr)
	conf.HeartbeatTimeout = c.o.heartbeat
	conf.ElectionTimeout = c.o.heartbeat
	conf.LeaderLeaseTimeout = c.o.heartbeat / 2
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = c.o.snapshotThreshold
	conf.TrailingLogs = c.o.trailingLogs
	conf.SnapshotInterval = 4 * c.o.heartbeat
	conf.LogOutput = ioutil.Discard
	conf.LogLevel = "ERROR"
	return conf
}

// boot starts incarnation no of n from what its stores hold, writing its
// init event first.
func (c *cluster) boot(n *node) error {
	n.incs++
	no := n.incs
	if c.o.harnessBug == "vote-lost-on-restart" && no > 1 {
		// Planted: a stable store that does not keep the vote.
		n.stable.SetUint64(keyLastVoteTerm, 0)
		n.stable.Set(keyLastVoteCand, nil)
	}
	i := &inc{n: n, no: no, role: "follower", booting: true}
	i.tr = newTransport(c, i)
	c.tr.mu.Lock()
	c.init(i)
	n.cur = i
	c.tr.mu.Unlock()
	r, err := raft.NewRaft(c.config(n), &fsm{c: c, i: i, kv: map[string]string{}}, &logStore{c: c, i: i}, &stableStore{c: c, i: i}, &snapView{s: n.snaps, i: i}, i.tr)
	if err != nil {
		return fmt.Errorf("starting node %d: %v", n.id, err)
	}
	r.RegisterObserver(raft.NewObserver(nil, false, func(o *raft.Observation) bool {
		c.observe(i, o)
		return false
	}))
	c.tr.mu.Lock()
	i.r = r
	i.booting = false
	c.tr.mu.Unlock()
	go i.tr.forward()
	return nil
}

// init writes the init event of i from its node's stores; holds mu.
func (c *cluster) init(i *inc) {
	n := i.n
	term, _ := n.stable.GetUint64(keyCurrentTerm)
	voteTerm, _ := n.stable.GetUint64(keyLastVoteTerm)
	voteCand, _ := n.stable.Get(keyLastVoteCand)
	n.term, n.voteTerm, n.voteCand = term, voteTerm, voteCand
	e := obj{"reason": "restart", "term": term, "vote": n.vote()}
	snapIndex, snapTerm := uint64(0), uint64(0)
	if s := n.snaps.latest; s != nil {
		snapIndex, snapTerm = s.meta.Index, s.meta.Term
		e["snapshot"] = obj{"index": snapIndex, "term": snapTerm}
	}
	last, _ := n.logs.LastIndex()
	lastIndex, lastTerm := snapIndex, snapTerm
	entries := []obj{}
	for k := snapIndex + 1; k <= last; k++ {
		var l raft.Log
		if err := n.logs.GetLog(k, &l); err != nil {
			break
		}
		entries = append(entries, entry(&l))
		n.copies[k] = l
		lastIndex, lastTerm = l.Index, l.Term
	}
	n.last = lastIndex
	e["last_index"] = lastIndex
	e["last_term"] = lastTerm
	e["entries"] = entries
	i.applied = snapIndex
	i.commit = snapIndex
	c.tr.event(n, "init", e)
}

// vote is the vote the durable state holds for the durable term.
func (n *node) vote() interface{} {
	if n.voteTerm != n.term || len(n.voteCand) == 0 {
		return nil
	}
	id, err := strconv.Atoi(string(n.voteCand))
	if err != nil {
		return nil
	}
	return id
}

// persist writes the node's durable state. Its log ends at the log
// store's last entry or at its newest snapshot, whichever is later (a
// snapshot installed from the leader may cover more than the log store
// holds; a restart starts from it).
func (c *cluster) persist(n *node) {
	last := n.last
	if l := n.snaps.latest; l != nil && l.meta.Index > last {
		last = l.meta.Index
	}
	c.tr.event(n, "persist", obj{"term": n.term, "vote": n.vote(), "last_index": last})
}

// lock takes the trace lock for a hook of incarnation i, and never returns
// for a crashed incarnation: its goroutines stop at their next step, which
// is what a crash does (the disk keeps what was written).
func (c *cluster) lock(i *inc) {
	c.tr.mu.Lock()
	if i.dead {
		c.tr.mu.Unlock()
		select {}
	}
	c.flush(i)
}

func (c *cluster) unlock() { c.tr.mu.Unlock() }

// flush writes what i did before the hook now running: a step-down whose
// term is settled, then the receive of an RPC its main loop has taken.
// Only the main loop reads the consumer channel and the forwarder puts
// an RPC there under mu, so an empty channel with an RPC pending means
// the main loop took it, and everything the main loop does from then on
// is the handling of that RPC. Holds mu.
func (c *cluster) flush(i *inc) {
	if i.booting {
		return
	}
	if d := i.pending; d != nil && !d.received && len(i.tr.consumer) == 0 {
		c.settleStepDown(i)
		c.tr.event(i.n, "receive", obj{"msg": d.wire})
		d.received = true
	}
}

// midRPC: the node's main loop has taken an RPC it has not answered yet.
func midRPC(i *inc) bool {
	d := i.pending
	return d != nil && d.received
}

// receiveLater writes the receive of a stale vote reply now, or after the
// RPC the main loop is handling. Holds mu.
func (c *cluster) receiveLater(i *inc, w obj) {
	if midRPC(i) {
		i.deferred = append(i.deferred, w)
		return
	}
	c.tr.event(i.n, "receive", obj{"msg": w})
}

// flushVotes writes the receives of the queued vote replies that match,
// at the point the candidate loop shows it read them: before the leader
// event those of its term (hashicorp counted them); before a step-down to
// a higher term those of that term (one raised it). With stale, after a
// new term: the rest, stale from then on whether read or not (after the
// RPC in progress, if any). Holds mu.
func (c *cluster) flushVotes(i *inc, stale bool, match func(term uint64) bool) {
	rest := i.votes[:0]
	for _, w := range i.votes {
		switch {
		case !match(w["term"].(uint64)):
			rest = append(rest, w)
		case stale:
			c.receiveLater(i, w)
		default:
			c.tr.event(i.n, "receive", obj{"msg": w})
		}
	}
	i.votes = rest
}

// settleStepDown writes a step-down that no higher term followed: a
// leader's lease ran out, or its replication saw a higher term (hashicorp
// does not adopt that term), or a candidate met the leader of its term.
func (c *cluster) settleStepDown(i *inc) {
	if !i.stepDown {
		return
	}
	i.stepDown = false
	// A leader's lease ran out (checkLeaderLease), or its replication saw
	// a higher term it does not adopt (handleStaleTerm).
	reason := "check_quorum"
	if i.sawHigher {
		reason = "higher_term"
	}
	if i.role == "was-candidate" {
		reason = "leader_discovered"
	}
	i.sawHigher = false
	i.role = "follower"
	c.tr.event(i.n, "role", obj{"role": "follower", "term": i.n.term, "reason": reason})
}

// observe is the observer's filter: it runs in the goroutine that changed
// the node's role, before the change has any other effect.
func (c *cluster) observe(i *inc, o *raft.Observation) {
	st, ok := o.Data.(raft.RaftState)
	if !ok {
		// A RequestVoteRequest: the main loop took the RPC (flush).
		if _, vote := o.Data.(raft.RequestVoteRequest); vote {
			c.lock(i)
			c.unlock()
		}
		return
	}
	c.lock(i)
	defer c.unlock()
	if i.booting {
		return
	}
	switch st {
	case raft.Follower:
		switch i.role {
		case "leader":
			i.stepDown = true
			i.role = "was-leader"
		case "candidate", "campaign":
			i.stepDown = true
			i.role = "was-candidate"
		}
	case raft.Candidate:
		c.settleStepDown(i)
		i.role = "campaign"
		i.transfer = false
		if d := i.pending; d != nil && d.received {
			_, i.transfer = d.cmd.(*raft.TimeoutNowRequest)
		}
	case raft.Leader:
		c.settleStepDown(i)
		term := i.n.term
		c.flushVotes(i, false, func(t uint64) bool { return t == term })
		// A reply of a higher term seen in an earlier leadership says
		// nothing about how this one ends.
		i.sawHigher = false
		i.role = "leader"
		c.tr.event(i.n, "role", obj{"role": "leader", "term": i.n.term, "reason": "won_election"})
	}
}

// term is the hook on a durable term write.
func (c *cluster) termWritten(i *inc, t uint64) {
	n := i.n
	higher := t > n.term
	n.term = t
	switch {
	case i.booting:
		return
	case i.stepDown && higher:
		c.flushVotes(i, false, func(v uint64) bool { return v == t })
		i.stepDown = false
		i.sawHigher = false
		i.role = "follower"
		c.tr.event(n, "role", obj{"role": "follower", "term": t, "reason": "higher_term"})
	case i.stepDown:
		c.settleStepDown(i)
	case higher && (i.role == "campaign" || i.role == "candidate"):
		// electSelf: a new election in term t.
		reason := "election_timeout"
		if i.transfer {
			// Only the campaign a TimeoutNow started; hashicorp resets
			// candidateFromLeadershipTransfer after it.
			reason = "transfer"
			i.transfer = false
		}
		i.role = "candidate"
		c.tr.elections++
		c.tr.event(n, "role", obj{"role": "candidate", "term": t, "reason": reason})
	}
	c.persist(n)
	if higher {
		c.flushVotes(i, true, func(uint64) bool { return true })
	}
}

// ---- the client load ----

type command struct {
	Client int `json:"client"`
	Req    int `json:"req"`
	Op     obj `json:"op"`
}

func (c *cluster) leader() *inc {
	for _, n := range c.nodes[1:] {
		if i := n.cur; i != nil && i.r != nil && !i.dead && i.r.State() == raft.Leader {
			return i
		}
	}
	// No leader known: the clients wait (a request sent anyway would be
	// refused, and a refused cas is an indeterminate operation).
	return nil
}

func (c *cluster) runClient(k int, until time.Time) {
	defer c.wg.Done()
	client := k
	req := 0
	for time.Now().Before(until) {
		c.tr.mu.Lock()
		i := c.leader()
		if i == nil {
			c.tr.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			continue
		}
		req++
		key := fmt.Sprintf("k%d", c.rng.Intn(c.o.keys))
		value := fmt.Sprintf("%d-%d", client, req)
		var op obj
		switch c.rng.Intn(3) {
		case 0:
			op = obj{"f": "read", "key": key}
		case 1:
			op = obj{"f": "write", "key": key, "value": value}
		default:
			var from interface{}
			if c.rng.Intn(4) > 0 {
				from = fmt.Sprintf("%d-%d", c.rng.Intn(c.o.clients)+1, c.rng.Intn(req+1)+1)
			}
			op = obj{"f": "cas", "key": key, "from": from, "to": value}
		}
		c.tr.client(obj{"type": "invoke", "client": client, "req": req, "node": i.n.id, "op": op})
		c.stats.ops++
		r := i.r
		c.tr.mu.Unlock()
		data, _ := json.Marshal(command{Client: client, Req: req, Op: op})
		f := r.Apply(data, 100*time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- f.Error() }()
		var ret obj
		select {
		case err := <-done:
			switch err {
			case nil:
				res, _ := f.Response().(result)
				ret = obj{"status": "ok"}
				if op["f"] == "read" {
					ret["value"] = res.value
				}
				if op["f"] == "cas" && !res.ok {
					ret["status"] = "fail"
				}
			case raft.ErrNotLeader, raft.ErrEnqueueTimeout, raft.ErrLeadershipTransferInProgress:
				// Refused before it reached the log: it did not happen.
				// A failed cas tells the checker its precondition did
				// not hold, which a refused one does not: unknown.
				ret = obj{"status": "fail", "error": err.Error()}
				if op["f"] == "cas" {
					ret["status"] = "info"
				}
			default:
				ret = obj{"status": "info", "error": err.Error()}
			}
		case <-time.After(time.Second):
			ret = obj{"status": "info", "error": "timed out"}
		}
		c.tr.mu.Lock()
		ret["type"] = "return"
		ret["client"] = client
		ret["req"] = req
		c.tr.client(ret)
		if ret["status"] == "ok" {
			c.stats.ok++
		}
		c.tr.mu.Unlock()
		if ret["status"] == "info" {
			// An indeterminate operation ends the client (Jepsen's rule).
			client += c.o.clients
			req = 0
		}
	}
}

// ---- faults ----

func (c *cluster) run() runStats {
	c.start = time.Now()
	until := c.start.Add(c.o.duration)
	for k := 1; k <= c.o.clients; k++ {
		c.wg.Add(1)
		go c.runClient(k, until)
	}
	c.wg.Add(1)
	go c.runFaults(until)
	c.wg.Wait()
	// Let the cluster settle, then stop every node where it stands.
	time.Sleep(2 * c.o.heartbeat)
	c.tr.mu.Lock()
	for _, n := range c.nodes[1:] {
		if i := n.cur; i != nil {
			i.dead = true
		}
	}
	c.tr.mu.Unlock()
	return c.stats
}

func (c *cluster) runFaults(until time.Time) {
	defer c.wg.Done()
	var kinds []string
	for _, f := range []string{"partition", "crash", "transfer", "loss"} {
		if c.o.faults[f] {
			kinds = append(kinds, f)
		}
	}
	if len(kinds) == 0 {
		return
	}
	for time.Now().Before(until) {
		c.tr.mu.Lock()
		wait := time.Duration(100+c.rng.Intn(300)) * time.Millisecond
		kind := kinds[c.rng.Intn(len(kinds))]
		victim := c.rng.Intn(c.o.nodes) + 1
		hold := time.Duration(100+c.rng.Intn(400)) * time.Millisecond
		c.tr.mu.Unlock()
		time.Sleep(wait)
		switch kind {
		case "partition":
			c.tr.mu.Lock()
			c.group = map[int]int{victim: 1}
			c.stats.partitions++
			c.tr.mu.Unlock()
			time.Sleep(hold)
			c.tr.mu.Lock()
			c.group = map[int]int{}
			c.tr.mu.Unlock()
		case "loss":
			c.tr.mu.Lock()
			c.lossUntil = time.Now().Add(hold)
			c.tr.mu.Unlock()
		case "crash":
			c.crash(victim)
			time.Sleep(hold / 2)
			if err := c.boot(c.nodes[victim]); err != nil {
				panic(err)
			}
		case "transfer":
			c.tr.mu.Lock()
			var l *inc
			for _, n := range c.nodes[1:] {
				if i := n.cur; i != nil && i.r != nil && i.r.State() == raft.Leader {
					l = i
				}
			}
			c.tr.mu.Unlock()
			if l != nil {
				c.tr.mu.Lock()
				c.stats.transfers++
				c.tr.mu.Unlock()
				l.r.LeadershipTransfer()
			}
		}
	}
}

// crash stops node id where it stands: its goroutines stop at their next
// step (lock), its disk keeps what was written.
func (c *cluster) crash(id int) {
	c.tr.mu.Lock()
	defer c.tr.mu.Unlock()
	n := c.nodes[id]
	i := n.cur
	if i == nil || i.r == nil {
		return
	}
	i.dead = true
	n.cur = nil
	c.stats.crashes++
	c.tr.event(n, "crash", obj{})
}

// connected says whether a message from a to b gets through now; holds mu.
func (c *cluster) connected(a, b int) bool {
	if c.group[a] != c.group[b] {
		return false
	}
	if !c.o.faults["loss"] {
		return true
	}
	p := 0.01
	if time.Now().Before(c.lossUntil) {
		p = 0.3
	}
	return c.rng.Float64() >= p
}

// Command hashicorpraftdriver runs one cluster of hashicorp/raft (1.1, the
// Raft library behind Consul and Nomad) in this process, in real time, under
// a client load and faults, and writes what every node did as raft-trace/1
// (ndjson) for `raftcheck validate`.
//
// Nothing in hashicorp/raft is changed or reached into. Every event comes
// from a component the library lets its user supply:
//
//   - the Transport (transport.go here): sends and receives, message loss,
//     duplication, delay and partitions, and the order in which the node's
//     main loop takes an RPC (see flushReceive);
//   - the LogStore and StableStore (stores.go): appends, truncations and
//     persists, the durable term and vote;
//   - the SnapshotStore and the FSM (fsm.go): snapshots, installs, commits
//     and applies, and the key-value store the clients use;
//   - an Observer whose filter runs synchronously in the goroutine that
//     changed the node's role: role changes (observer.go).
//
// One lock (tracer.mu) orders every event of the cluster. Each hook takes
// it, writes its events, and lets raft continue, so the events of one node
// appear in the order its goroutines did them.
//
// Runs are in real time and not replayable; the seed only fixes the choice
// of faults and client operations.
package main

import (
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"time"
)

func main() {
	opts := options{}
	flag.IntVar(&opts.nodes, "nodes", 3, "cluster size")
	flag.Int64Var(&opts.seed, "seed", 1, "seed of the fault and client choices")
	flag.DurationVar(&opts.duration, "duration", 3*time.Second, "how long the load and faults run")
	flag.StringVar(&opts.out, "out", "", "trace file to write (required)")
	flag.StringVar(&opts.faultList, "faults", "all", "comma-separated: loss, dup, delay, partition, crash, transfer; all; none")
	flag.IntVar(&opts.clients, "clients", 3, "concurrent clients")
	flag.IntVar(&opts.keys, "keys", 3, "distinct keys")
	flag.Uint64Var(&opts.snapshotThreshold, "snapshot-threshold", 16, "entries since the last snapshot that trigger one")
	flag.Uint64Var(&opts.trailingLogs, "trailing-logs", 4, "entries kept in the log after a snapshot")
	flag.DurationVar(&opts.heartbeat, "heartbeat-timeout", 50*time.Millisecond, "hashicorp HeartbeatTimeout (and ElectionTimeout)")
	flag.StringVar(&opts.harnessBug, "harness-bug", "", "plant a bug in this harness (not in hashicorp/raft): vote-lost-on-restart, ack-dropped-entries, vote-before-persist")
	flag.Parse()
	if opts.out == "" {
		fmt.Fprintln(os.Stderr, "hashicorpraftdriver: -out FILE is required")
		os.Exit(2)
	}
	if err := opts.parseFaults(); err != nil {
		fmt.Fprintln(os.Stderr, "hashicorpraftdriver:", err)
		os.Exit(2)
	}
	switch opts.harnessBug {
	case "", "vote-lost-on-restart", "ack-dropped-entries", "vote-before-persist":
	default:
		fmt.Fprintf(os.Stderr, "hashicorpraftdriver: unknown -harness-bug %q\n", opts.harnessBug)
		os.Exit(2)
	}
	if opts.nodes < 1 || opts.nodes > 9 {
		fmt.Fprintln(os.Stderr, "hashicorpraftdriver: -nodes must be 1 to 9")
		os.Exit(2)
	}
	c, err := newCluster(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hashicorpraftdriver:", err)
		os.Exit(1)
	}
	stats := c.run()
	if err := c.tr.close(); err != nil {
		fmt.Fprintln(os.Stderr, "hashicorpraftdriver: writing the trace:", err)
		os.Exit(1)
	}
	fmt.Printf("{\"seed\":%d,\"events\":%d,\"ops\":%d,\"ok\":%d,\"crashes\":%d,\"partitions\":%d,\"transfers\":%d,\"elections\":%d}\n",
		opts.seed, c.tr.lines, stats.ops, stats.ok, stats.crashes, stats.partitions, stats.transfers, c.tr.elections)
}

type options struct {
	nodes             int
	seed              int64
	duration          time.Duration
	out               string
	faultList         string
	faults            map[string]bool
	clients           int
	keys              int
	snapshotThreshold uint64
	trailingLogs      uint64
	heartbeat         time.Duration
	harnessBug        string
}

var allFaults = []string{"loss", "dup", "delay", "partition", "crash", "transfer"}

func (o *options) parseFaults() error {
	o.faults = map[string]bool{}
	for _, f := range strings.Split(o.faultList, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "", "none":
		case "all":
			for _, a := range allFaults {
				o.faults[a] = true
			}
		default:
			known := false
			for _, a := range allFaults {
				known = known || a == f
			}
			if !known {
				return fmt.Errorf("unknown fault %q in -faults (known: %s, all, none)", f, strings.Join(allFaults, ", "))
			}
			o.faults[f] = true
		}
	}
	return nil
}

// seeded is a lock-free-enough RNG wrapper: callers hold tracer.mu.
func seeded(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }

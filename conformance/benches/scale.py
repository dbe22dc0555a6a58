#!/usr/bin/env python3
"""How `raftcheck validate` scales: cost per event and peak memory on
simulator runs of about 10^5, 10^6 and 10^7 node events, against reading
the same files alone (`validate --format-only`) in the same run.

    cargo build --release
    python3 conformance/benches/scale.py [--bin target/release/raftcheck]
        [--sizes 20000,200000,2000000] [--faults loss,reorder,partition,crash]
        [--dir DIR] [--reps 1]

Each size is one run of `raftcheck sim --seeds 1 --start-seed 4242 --steps
N` (the 10^7-event run writes 3.4 GB into DIR, removed afterwards). The
default faults leave out duplication: where the header does not declare it,
the validator forgets a message once it is received, so memory follows the
messages in flight or lost, not the length of the run. Not a test: it
prints the figures, it asserts nothing.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def timed(cmd):
    """Runs cmd; returns (seconds, peak resident MB, stdout)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - start
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}\n{out}")
    return elapsed, usage.ru_maxrss / 1024, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/raftcheck")
    ap.add_argument("--sizes", default="20000,200000,2000000", help="simulator steps")
    ap.add_argument("--faults", default="loss,reorder,partition,crash")
    ap.add_argument("--dir", default=None, help="where the traces go (a temporary folder)")
    ap.add_argument("--reps", type=int, default=1, help="best of this many timings")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin}: not found (cargo build --release first)")
    base = a.dir or tempfile.mkdtemp(prefix="raftcheck-scale-")
    print(f"raftcheck validate, faults {a.faults}, best of {a.reps}")
    print(f"{'steps':>9} {'events':>10} {'read s':>8} {'full s':>8} {'us/event':>9} "
          f"{'events/s':>10} {'vs read':>8} {'peak MB':>8} {'read MB':>8}")
    first = None
    for steps in [int(s) for s in a.sizes.split(",")]:
        d = os.path.join(base, f"steps-{steps}")
        shutil.rmtree(d, ignore_errors=True)
        subprocess.run([a.bin, "sim", "--seeds", "1", "--start-seed", "4242", "--steps",
                        str(steps), "--faults", a.faults, "--trace-dir", d],
                       check=True, stdout=subprocess.DEVNULL)
        run = os.path.join(d, "seed-4242")
        files = sorted(os.path.join(run, f) for f in os.listdir(run))
        reads = [timed([a.bin, "validate", "--format-only", *files]) for _ in range(a.reps)]
        fulls = [timed([a.bin, "validate", run]) for _ in range(a.reps)]
        read_s, read_mb = min(r[0] for r in reads), max(r[1] for r in reads)
        full_s, full_mb = min(r[0] for r in fulls), max(r[1] for r in fulls)
        m = re.search(r"valid \((\d+) events", fulls[0][2])
        if not m:
            sys.exit(f"{run}: not valid:\n{fulls[0][2]}")
        events = int(m.group(1))
        per = full_s / events * 1e6
        first = first or per
        print(f"{steps:>9} {events:>10} {read_s:>8.2f} {full_s:>8.2f} {per:>9.2f} "
              f"{events / full_s:>10,.0f} {read_s / full_s:>7.2f}x {full_mb:>8.0f} {read_mb:>8.0f}"
              f"   (cost per event {per / first:.2f}x the first size's)")
        shutil.rmtree(d, ignore_errors=True)
    if not a.dir:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

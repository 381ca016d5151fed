#!/usr/bin/env python3
"""Interleaved A/B timing: every command once per round, N rounds; median and minimum wall time and
CPU time (user + system of the command and its children) per label.

    PRE='tar -cf - STORE | cat > /dev/null' python3 bench/interleave.py 6 old='OLD/bin/run.js backup ...' new='bin/run.js backup ...'

PRE (optional) runs untimed before every command (e.g. to warm the page cache). CPU time is less
sensitive than wall time to other work on a shared machine; report both."""
import os, resource, statistics, subprocess, sys, time

if len(sys.argv) < 3:
    sys.exit(__doc__)
rounds = int(sys.argv[1])
commands = [a.split('=', 1) for a in sys.argv[2:]]
pre = os.environ.get('PRE')
results = {label: ([], []) for label, _ in commands}
for _ in range(rounds):
    for label, command in commands:
        if pre:
            subprocess.run(pre, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        r = subprocess.run(command, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            print(f'{label}: exit {r.returncode}: {r.stderr.decode(errors="replace")[-300:]}', file=sys.stderr)
        results[label][0].append(wall)
        results[label][1].append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
for label, (wall, cpu) in results.items():
    print(f'{label}: wall median {statistics.median(wall):.3f} min {min(wall):.3f}  cpu median {statistics.median(cpu):.3f} min {min(cpu):.3f}  ({len(wall)} runs)')

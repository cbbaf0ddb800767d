#!/usr/bin/env python3
"""Sorts the samples of a `perf record -g` profile of one server process into
the parts of a request, and prints each part's CPU per request.

Usage (a server under loadgen, 6 s of samples at 2,000 Hz):

    perf record -F 2000 -g -p <server pid> -o /tmp/perf.data -- sleep 6
    perf script -i /tmp/perf.data | python3 bench/perf_buckets.py <requests in those 6 s> 500

The second argument is the CPU time one sample stands for, in µs (1e6 / the
-F frequency). A sample goes to the first part whose pattern is in its stack
(kernel frames included), in the order below; allocation and GC assists
inside any part are also counted on their own lines.
"""
import collections
import sys

PARTS = [
    ("GC: background mark, sweep, scavenge", ["runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"]),
    ("runtime: sysmon", ["runtime.sysmon"]),
    ("audit: writing the line to the file", ["audit.(*FileSink).writeLines"]),
    ("audit: building and encoding the event", ["server.(*Server).writeAudit", "server.(*Server).event"]),
    ("the operation (service code, crypto)", ["server.(*Server).invoke"]),
    ("request body, decode and validation", ["awsjson.JSON11.Decode", "Input).Validate", "awsjson.ReadBody"]),
    ("SigV4 header parsing (dev mode)", ["sigv4."]),
    ("response encode and write", ["awsjson.JSON11.WriteOutput", "AppendOutput", "net/http.(*response).finishRequest",
                                   "net/http.(*chunkWriter)", "net/http.(*response).Write"]),
    ("keyfort request setup (ids, contexts, routing, metrics, logging)", ["server.(*Server)."]),
    ("net/http: reading and parsing the request", ["net/http.(*conn).readRequest"]),
    ("net/http: rest of the connection loop", ["net/http.(*conn).serve"]),
    ("scheduler, idle, netpoll", ["runtime.schedule", "runtime.findRunnable", "runtime.park_m", "runtime.mcall",
                                  "runtime.netpoll", "runtime.goexit0", "runtime.mstart"]),
]
ALSO = [("  (of which: allocation, runtime.mallocgc)", "runtime.mallocgc"),
        ("  (of which: GC assist)", "runtime.gcAssistAlloc")]


def main():
    requests, per_sample = float(sys.argv[1]), float(sys.argv[2])
    counts, total, stack = collections.Counter(), 0, []

    def flush():
        nonlocal total
        if not stack:
            return
        total += 1
        s = "\n".join(stack)
        for name, patterns in PARTS:
            if any(p in s for p in patterns):
                counts[name] += 1
                break
        else:
            counts["other"] += 1
        for name, pattern in ALSO:
            if pattern in s:
                counts[name] += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            stack = []
        elif line.startswith((" ", "\t")):
            fields = line.split()
            if len(fields) >= 2:
                stack.append(fields[1])
        else:
            flush()
            stack = []
    flush()
    if total == 0:
        sys.exit("no samples")
    print(f"{total} samples, {total * per_sample / requests:.1f} µs per request")
    for name, n in sorted(counts.items(), key=lambda x: -x[1]):
        print(f"{n * per_sample / requests:6.1f} µs  {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate the small synthetic Mooncake-format traces bundled with dynosim-tui.

Four traces are written (one JSON object per line, timestamps in ms, one hash_id
per 512-token trace block; equal leading hash_ids = shareable prompt prefix):

overload.jsonl
    ~250 long requests (8k-32k prompt tokens, 1000-2000 output tokens) arriving
    within ~3 s, about half of them sharing one of a few "system prompt"
    prefixes.  Their total KV demand is several times the capacity of one
    default worker (16384 blocks x 64 tokens = 1,048,576 tokens), so a single
    worker has to preempt running requests when their decodes grow.

multiturn.jsonl
    ~160 rows over ~60 s: single-turn rows (no ``session_id``) mixed with
    multi-turn sessions (``session_id``, 2-5 turns).  Each later turn's
    hash_ids extend the previous turn's hash_ids (prefix reuse).  Some later
    turns carry an explicit ``delay`` (ms after the previous turn completes);
    the others rely on the timestamp difference to the previous turn.  Turn 0
    never has a ``delay``.  ``input_length`` sometimes ends in a partial block.

disagg_pressure.jsonl
    1500 long-prompt requests (4k-24k tokens, 100-1200 output tokens) at ~25/s for a minute,
    a third of them opening with one of a few shared system prompts: fed by several prefill
    workers, one or two decode workers run out of KV blocks, hand-offs wait for room while
    transfers are in flight and decode requests get preempted (the P:D goldens).

prefix_heavy.jsonl
    800 requests over ~2 min, 85% of them starting with one of 12 long shared
    prefixes (4k-16k tokens, a few of them popular) plus a unique suffix: the
    workload where KV-aware routing pays off.

The output is fully determined by ``--seed`` (stdlib ``random`` only).
"""

import argparse
import json
import os
import random

TRACE_BLOCK = 512  # tokens per hash_id (Mooncake trace block size)


def n_blocks(tokens):
    return -(-tokens // TRACE_BLOCK)


class Ids:
    """Hands out fresh, never-repeated hash_ids."""

    def __init__(self):
        self.next = 0

    def take(self, n):
        ids = list(range(self.next, self.next + n))
        self.next += n
        return ids


def overload(rng, n_requests=250, window_ms=3000):
    ids = Ids()
    prefixes = [ids.take(rng.randint(4, 14)) for _ in range(4)]
    rows = []
    for _ in range(n_requests):
        isl = rng.randint(8000, 32000)
        osl = rng.randint(1000, 2000)
        blocks = n_blocks(isl)  # >= 16, longer than any shared prefix
        prefix = rng.choice(prefixes) if rng.random() < 0.5 else []
        hash_ids = prefix + ids.take(blocks - len(prefix))
        rows.append({"timestamp": rng.randint(0, window_ms), "input_length": isl,
                     "output_length": osl, "hash_ids": hash_ids})
    rows.sort(key=lambda r: r["timestamp"])  # stable: equal stamps keep order
    return rows


def multiturn(rng, n_single=55, n_sessions=30, span_ms=60000):
    ids = Ids()
    system_prompts = [ids.take(2), ids.take(3)]
    rows = []
    for _ in range(n_single):
        isl = rng.randint(200, 6000)
        prefix = rng.choice(system_prompts) if rng.random() < 0.5 else []
        blocks = max(n_blocks(isl), len(prefix) + 1)
        isl = max(isl, (blocks - 1) * TRACE_BLOCK + 1)  # use every hash_id
        rows.append({"timestamp": rng.randint(0, span_ms), "input_length": isl,
                     "output_length": rng.randint(20, 400),
                     "hash_ids": prefix + ids.take(blocks - len(prefix))})
    for s in range(n_sessions):
        session = "sess-%02d" % s
        ts = rng.randint(0, span_ms - 15000)
        hash_ids = ids.take(rng.randint(1, 8))
        for turn in range(rng.randint(2, 5)):
            if turn > 0:
                ts += rng.randint(1000, 6000)  # think time via timestamps
                hash_ids = hash_ids + ids.take(rng.randint(1, 6))
            isl = len(hash_ids) * TRACE_BLOCK
            if rng.random() < 0.5:  # partial last block
                isl -= rng.randint(1, TRACE_BLOCK - 1)
            row = {"timestamp": ts, "input_length": isl,
                   "output_length": rng.randint(20, 400),
                   "hash_ids": list(hash_ids), "session_id": session}
            if turn > 0 and rng.random() < 0.4:
                row["delay"] = rng.choice([0, rng.randint(200, 8000)])
            rows.append(row)
    rows.sort(key=lambda r: r["timestamp"])  # stable: a session stays in turn order
    return rows


def prefix_heavy(rng, n_requests=800, n_groups=12, span_ms=120000):
    """Requests that mostly start with one of a few long shared prefixes (system prompts,
    documents): where routing by cached prefix pays off. Poisson arrivals over span_ms."""
    ids = Ids()
    groups = [ids.take(rng.randint(8, 32)) for _ in range(n_groups)]  # 4k-16k token prefixes
    weights = [1.0 / (k + 1) for k in range(n_groups)]  # a few popular prefixes
    rows = []
    t = 0.0
    rate = n_requests / span_ms
    for _ in range(n_requests):
        t += rng.expovariate(rate)
        if rng.random() < 0.85:
            prefix = rng.choices(groups, weights)[0]
        else:
            prefix = []
        suffix_tokens = rng.randint(200, 3000)
        hash_ids = prefix + ids.take(n_blocks(suffix_tokens))
        input_length = len(prefix) * TRACE_BLOCK + suffix_tokens
        rows.append({"timestamp": int(t), "input_length": input_length,
                     "output_length": rng.randint(20, 400), "hash_ids": hash_ids})
    return rows


def disagg_pressure(rng, n_requests=1500, span_ms=60000):
    """Poisson arrivals of long prompts (random lengths, so (arrival, input, output) pairs each
    request with the reference's per-request record)."""
    ids = Ids()
    prefixes = [ids.take(rng.randint(2, 10)) for _ in range(5)]
    rows = []
    t = 0.0
    rate = n_requests / span_ms
    for _ in range(n_requests):
        t += rng.expovariate(rate)
        isl = rng.randint(4000, 24000)
        prefix = rng.choice(prefixes) if rng.random() < 0.35 else []
        hash_ids = prefix + ids.take(n_blocks(isl) - len(prefix))
        rows.append({"timestamp": int(t), "input_length": isl,
                     "output_length": rng.randint(100, 1200), "hash_ids": hash_ids})
    return rows


def write(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print("wrote %s (%d rows)" % (path, len(rows)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)),
                    help="directory to write into (default: this script's directory)")
    ap.add_argument("--seed", type=int, default=20251, help="random seed (default: 20251)")
    a = ap.parse_args()
    write(os.path.join(a.out_dir, "overload.jsonl"), overload(random.Random(a.seed)))
    write(os.path.join(a.out_dir, "multiturn.jsonl"), multiturn(random.Random(a.seed + 1)))
    write(os.path.join(a.out_dir, "prefix_heavy.jsonl"), prefix_heavy(random.Random(a.seed + 2)))
    write(os.path.join(a.out_dir, "disagg_pressure.jsonl"),
          disagg_pressure(random.Random(a.seed + 3)))


if __name__ == "__main__":
    main()

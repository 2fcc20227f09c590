"""The request stream handed to the engine: plain typed columns, one entry per request (turn).

Built at the edge (trace parser or synthetic generator); the engine never parses anything.
Requests are in file order. Turns of one session are consecutive in `session` order of
appearance but need not be adjacent in the file; `next_turn[i]` links turn k to turn k+1.
"""
from __future__ import annotations

from typing import final

from engine.blockhash import TracePrefixes


@final
class Workload:
    arrival_ms: list[float]  # turn 0: normalised, speedup-applied arrival; later turns: 0.0 (unused)
    delay_ms: list[float]  # turn k>0: think time after turn k-1 completes (speedup applied); 0 else
    input_length: list[int]
    output_length: list[int]
    hash_start: list[int]  # len n+1; request i's hash ids are hash_ids[hash_start[i]:hash_start[i+1]]
    hash_ids: list[int]  # raw block ids, one per trace block; only equality matters
    # Sessions: -1 = none (single-turn row); otherwise an index into session_names.
    session: list[int]
    turn: list[int]  # turn index within the session (0 for single-turn rows)
    next_turn: list[int]  # index of the session's next turn, -1 if last
    session_names: list[str]
    trace_block_size: int
    # Synthetic workloads: True => every request gets fresh unique prompt blocks and
    # hash_ids is ignored (saves memory on large generated runs).
    unique_prompts: bool
    # The trie node of every trace block (engine/blockhash.py), once per workload: the trace
    # parser computes it, so every point a sweep worker runs on the trace shares it.
    prefixes: TracePrefixes | None

    def __init__(self, trace_block_size: int) -> None:
        self.arrival_ms = []
        self.delay_ms = []
        self.input_length = []
        self.output_length = []
        self.hash_start = [0]
        self.hash_ids = []
        self.session = []
        self.turn = []
        self.next_turn = []
        self.session_names = []
        self.trace_block_size = trace_block_size
        self.unique_prompts = False
        self.prefixes = None

    def __len__(self) -> int:
        return len(self.input_length)

    def add(
        self,
        arrival_ms: float,
        delay_ms: float,
        input_length: int,
        output_length: int,
        hash_ids: list[int],
        session: int,
        turn: int,
    ) -> int:
        """Append one request; returns its index. The caller links session turns via next_turn."""
        idx = len(self.input_length)
        self.arrival_ms.append(arrival_ms)
        self.delay_ms.append(delay_ms)
        self.input_length.append(input_length)
        self.output_length.append(output_length)
        self.hash_ids.extend(hash_ids)
        self.hash_start.append(len(self.hash_ids))
        self.session.append(session)
        self.turn.append(turn)
        self.next_turn.append(-1)
        return idx

    def trace_prefixes(self) -> TracePrefixes:
        """The trie of the requests' hash-id prefixes, computed on first use (and again if
        requests were added since) and kept."""
        p = self.prefixes
        if p is None or not p.describes(self.hash_ids, self.hash_start):
            p = TracePrefixes(self.hash_ids, self.hash_start)
            self.prefixes = p
        return p

    def first_turns(self) -> list[int]:
        """Indices of requests that start a session (or are single-turn), in file order."""
        out: list[int] = []
        for i in range(len(self.turn)):
            if self.turn[i] == 0:
                out.append(i)
        return out

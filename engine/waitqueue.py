"""A worker's waiting queue: its requests in FIFO order, and the prompt tokens they still have
to compute, kept as a running sum.

The planner's forward-pass metrics report those queued prefill tokens after every pass; an
overloaded worker has thousands of requests waiting, so a recount each pass cost O(waiting).
A request's share (`queued_tokens`) is fixed when it joins the queue and taken back when it
leaves: nothing changes a request's `computed` while it waits (a scheduler updates it only
once the request is out of the queue, or before it goes back in).
"""
from __future__ import annotations

from collections import deque
from typing import Iterator, final

from engine.request import Request


@final
class WaitQueue:
    q: deque[Request]
    prefill_tokens: int  # sum of queued_tokens over the queue

    def __init__(self) -> None:
        self.q = deque()
        self.prefill_tokens = 0

    def _join(self, r: Request) -> None:
        n = r.prompt_len - r.computed
        if n < 0:
            n = 0
        r.queued_tokens = n
        self.prefill_tokens += n

    def __len__(self) -> int:
        return len(self.q)

    def __bool__(self) -> bool:
        return len(self.q) > 0

    def __getitem__(self, k: int) -> Request:
        return self.q[k]

    def __iter__(self) -> Iterator[Request]:
        return iter(self.q)

    def append(self, r: Request) -> None:
        self._join(r)
        self.q.append(r)

    def appendleft(self, r: Request) -> None:
        self._join(r)
        self.q.appendleft(r)

    def insert(self, k: int, r: Request) -> None:
        self._join(r)
        self.q.insert(k, r)

    def popleft(self) -> Request:
        r = self.q.popleft()
        self.prefill_tokens -= r.queued_tokens
        return r

    def pop_at(self, k: int) -> Request:
        q = self.q
        r = q[k]
        del q[k]
        self.prefill_tokens -= r.queued_tokens
        return r

    def remove(self, r: Request) -> None:
        self.q.remove(r)
        self.prefill_tokens -= r.queued_tokens

    def reorder(self, order: list[Request]) -> None:
        """Replace the queue's order by `order` (a permutation of its requests)."""
        self.q.clear()
        self.q.extend(order)

    def recount(self) -> int:
        """The prompt tokens still to compute, counted afresh (what prefill_tokens must equal)."""
        n = 0
        for r in self.q:
            if r.computed < r.prompt_len:
                n += r.prompt_len - r.computed
        return n

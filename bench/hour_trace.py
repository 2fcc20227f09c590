"""A 1-hour, 12,511-request Mooncake trace for the bench rows that need one: the bundled
synthetic_trace (17 min, 3,993 requests) laid end to end every 1,150 s, each copy with its
own hash ids (new conversations, no prefix shared across copies), cut at 3,600 s."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "traces" / "synthetic_trace.jsonl"
COPY_EVERY_MS = 1_150_000
END_MS = 3_600_000


def hour_trace(directory: str | Path) -> Path:
    """Write the trace into `directory` (once) and return its path."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    out = Path(directory) / "hour_trace.jsonl"
    if out.exists():
        return out
    rows = [json.loads(line) for line in SOURCE.read_text().splitlines() if line.strip()]
    ids = max(max(r["hash_ids"]) for r in rows) + 1
    lines = []
    copy = 0
    while copy * COPY_EVERY_MS < END_MS:
        for r in rows:
            t = r["timestamp"] + copy * COPY_EVERY_MS
            if t >= END_MS:
                break
            lines.append(json.dumps({**r, "timestamp": t,
                                     "hash_ids": [h + copy * ids for h in r["hash_ids"]]}))
        copy += 1
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
    return out

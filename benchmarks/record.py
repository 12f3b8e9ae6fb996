"""Where every benchmark keeps what it measured: benchmarks/results/<kind>-<time>.json."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save(payload: dict, kind: str, directory: Path = RESULTS, stamp: str | None = None) -> Path:
    """Write the payload as indented JSON, say where, and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / f"{kind}-{stamp or datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"results: {out}")
    return out

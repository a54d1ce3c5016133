"""Files a simulation writes: per-request CSV, per-iteration CSV, Chrome trace JSON, summary JSON.

Floats are written with Python's shortest round-trip ``repr``, so the same run gives
the same bytes. The trace follows the Chrome Trace Event Format (``ph: "X"``
complete events, microseconds), which chrome://tracing and https://ui.perfetto.dev
open: one process per replica, one thread per engine (pipeline virtual engine),
one slice per iteration.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .engine import SimulationResult
from .metrics import Summary, request_metrics

#: iterations written to the trace by default (a long run has millions)
DEFAULT_TRACE_LIMIT = 200_000

REQUEST_COLUMNS = ("request", "replica", "arrival_s", "first_scheduled_s", "first_token_s", "completion_s",
                   "input_tokens", "output_tokens", "prefix_group", "prefix_hit_tokens", "preemptions",
                   "ttft_s", "tpot_s", "e2e_s", "queue_s")
ITERATION_COLUMNS = ("replica", "engine", "step", "start_s", "duration_s", "prefill_tokens", "prefill_seqs",
                     "decode_seqs", "kv_blocks_used", "kv_utilization", "preempted", "swap_s", "flops", "bytes",
                     "mfu", "mbu")


def _fmt(x) -> str:
    if isinstance(x, float):
        return "" if math.isnan(x) else repr(x)
    return str(x)


def _write_csv(path: Path, header: tuple, columns: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for row in zip(*columns):
            w.writerow([_fmt(x) for x in row])


def write_requests_csv(result: SimulationResult, path: Path) -> None:
    req = result.requests
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(REQUEST_COLUMNS)
        write_request_rows(w, req, request_metrics(req), 0)


def write_request_rows(writer, req: dict[str, np.ndarray], rm: dict[str, np.ndarray], first: int) -> None:
    """Rows of requests ``first``, ``first + 1``, ... (``req`` and their metrics ``rm``) to a csv writer."""
    n = req["arrival_s"].size
    cols = {"request": np.arange(first, first + n), **req, **rm}
    for row in zip(*[cols[c].tolist() for c in REQUEST_COLUMNS]):
        writer.writerow([_fmt(x) for x in row])


def write_iterations_csv(it: dict, path: Path) -> None:
    _write_csv(path, ITERATION_COLUMNS, [it[c].tolist() for c in ITERATION_COLUMNS])


def trace_events(result: SimulationResult, it: dict, limit: int = DEFAULT_TRACE_LIMIT) -> dict:
    """Chrome trace of the first ``limit`` iterations (by start time, all engines)."""
    order = np.argsort(it["start_s"], kind="stable")[:limit]
    events = []
    for e, rep in enumerate(result.engine_replica):
        events.append({"name": "process_name", "ph": "M", "pid": rep, "tid": e,
                       "args": {"name": f"replica {rep}"}})
        events.append({"name": "thread_name", "ph": "M", "pid": rep, "tid": e, "args": {"name": f"engine {e}"}})
    for i in order.tolist():
        pt = int(it["prefill_tokens"][i])
        ds = int(it["decode_seqs"][i])
        name = "prefill+decode" if pt and ds else ("prefill" if pt else "decode")
        events.append({
            "name": name, "cat": "iteration", "ph": "X", "pid": int(it["replica"][i]), "tid": int(it["engine"][i]),
            "ts": float(it["start_s"][i]) * 1e6, "dur": float(it["duration_s"][i]) * 1e6,
            "args": {"step": int(it["step"][i]), "prefill_tokens": pt, "prefill_seqs": int(it["prefill_seqs"][i]),
                     "decode_seqs": ds, "kv_utilization": float(it["kv_utilization"][i]),
                     "mfu": float(it["mfu"][i]), "mbu": float(it["mbu"][i])},
        })
    total = int(it["start_s"].size)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"scenario": result.scenario.name, "iterations": total,
                          "iterations_written": int(order.size), "truncated": bool(order.size < total)}}


def write_trace_json(result: SimulationResult, it: dict, path: Path, limit: int = DEFAULT_TRACE_LIMIT) -> None:
    path.write_text(json.dumps(trace_events(result, it, limit), separators=(",", ":")), encoding="utf-8")


def summary_json(summary: Summary) -> str:
    return json.dumps(json_safe(summary.to_dict()), indent=2, sort_keys=False)


def json_safe(x):
    """NaN/inf are not JSON: write them as null."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_outputs(result: SimulationResult, summary: Summary, it: dict, out_dir: str | Path,
                  trace_limit: int = DEFAULT_TRACE_LIMIT) -> list[Path]:
    """requests.csv, iterations.csv, trace.json and summary.json in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "requests.csv", out / "iterations.csv", out / "trace.json", out / "summary.json"]
    write_requests_csv(result, paths[0])
    write_iterations_csv(it, paths[1])
    write_trace_json(result, it, paths[2], trace_limit)
    paths[3].write_text(summary_json(summary) + "\n", encoding="utf-8")
    return paths

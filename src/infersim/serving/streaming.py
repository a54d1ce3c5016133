"""Simulating millions of requests in bounded memory: per-request records and step logs are
streamed to disk in chunks while the simulation runs.

The in-memory path (:func:`infersim.serving.engine.simulate` then
:func:`~infersim.serving.metrics.summarize`) keeps one Python record per request and one per
step, about 3.5 kB per request (``benchmarks/bench_memory.py``): 10 million requests would need
some 35 GB. :func:`simulate_streaming` runs the same event loop with two differences:

* The request log holds only the requests in flight. Its columns are dicts keyed by request
  id that fall back to the workload's arrays (inputs) or to the not-yet-happened value
  (outcomes), so the replicas read and write them exactly as they do the in-memory lists.
  Every ``chunk`` arrivals, each whole chunk of requests that have all completed is taken out,
  in request order: its per-request latencies go to spool files on disk (and its rows to
  ``requests.csv`` when an output directory is given), its counts and token sums to running
  totals.
* At the same moments every engine's step log is drained: its busy time, FLOPs, bytes and KV
  occupancy are added to running totals (:func:`~infersim.serving.metrics.add_step_totals`)
  and its inter-token gaps and their weights are appended to spool files.

What the summary reports is then computed from the spools:

* TTFT, TPOT, E2E and queueing percentiles and means, and the SLO percentiles, read back one
  column at a time: the same numbers as the in-memory path (same arrays, same numpy calls).
* Inter-token-latency percentiles (the inverted CDF of gaps weighted by the tokens that share
  them) by an exact two-pass selection (:class:`SpooledSample`): a weighted histogram of the
  spooled gaps finds the bin that holds the percentile, a second pass sorts that bin only.
  The weights are token counts, so their sums are exact in float64 and the value selected is
  the one the in-memory sort selects.
* Sums over steps or requests (busy time, FLOPs, bytes, KV occupancy, the ITL mean) are added
  chunk by chunk, so they can differ from the in-memory sums in the last bits (tests allow
  1e-9 relative). The time-average number of requests in the system is the integral of the
  in-system count, computed as the sum of the completed requests' E2E over the makespan
  (every completed request lies inside it), instead of the in-memory event sweep.

``iterations.csv`` and ``trace.json`` are per-step files (tens of millions of rows for such a
run) and are not written by a streamed run; ``requests.csv`` (the same bytes as the in-memory
run's) and ``summary.json`` are.
"""

from __future__ import annotations

import csv
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .engine import simulate
from .metrics import (_PER_REQUEST, Summary, _pcts, add_step_totals, new_step_totals, request_metrics, slo_meets,
                      slo_values, summary_from)
from .outputs import REQUEST_COLUMNS, summary_json, write_request_rows
from .scenario import Scenario
from .workload import Workload

NAN = math.nan
#: requests taken out of the log at a time (and the arrivals between two drains of the step logs)
DEFAULT_CHUNK = 1 << 15
#: ``infersim simulate`` streams runs of more requests than this without being asked
STREAM_ABOVE = 1_000_000
#: spooled values read back per pass of the ITL selection
_BLOCK = 1 << 22
_BINS = 4096


class _Input(dict):
    """A request-log column of workload inputs: the workload's value unless one was written."""

    def __init__(self, source: np.ndarray, cast) -> None:
        super().__init__()
        self.source = source
        self.cast = cast

    def __missing__(self, rid: int):
        return self.cast(self.source[rid])


class _Outcome(dict):
    """A request-log column of outcomes: ``default`` until the simulation writes one."""

    def __init__(self, default) -> None:
        super().__init__()
        self.default = default

    def __missing__(self, rid: int):
        return self.default


class StreamLog:
    """The :class:`~infersim.serving.run_logs.RequestLog` interface over the requests in flight only."""

    def __init__(self, wl: Workload) -> None:
        self.n = wl.n
        self.arrival_s = _Input(wl.arrival_s, float)
        self.input_tokens = _Input(wl.input_tokens, int)
        self.output_tokens = _Input(wl.output_tokens, int)
        self.prefix_group = _Input(wl.prefix_group, int)
        self.prefix_tokens = _Input(wl.prefix_tokens, int)
        self.first_scheduled_s = _Outcome(NAN)
        self.first_token_s = _Outcome(NAN)
        self.completion_s = _Outcome(NAN)
        self.preemptions = _Outcome(0)
        self.replica = _Outcome(-1)
        self.prefix_hit_tokens = _Outcome(0)

    def live(self) -> int:
        """Requests with any outcome recorded and not yet taken out."""
        return len(self.replica)

    def take(self, lo: int, hi: int, wl: Workload) -> dict[str, np.ndarray]:
        """The per-request arrays of requests ``lo..hi-1`` (as the in-memory run builds them),
        removed from the log."""
        n = hi - lo

        def pop(col: dict, dtype) -> np.ndarray:
            default = col.default
            return np.fromiter((col.pop(r, default) for r in range(lo, hi)), dtype=dtype, count=n)

        arrival = wl.arrival_s[lo:hi].astype(np.float64)
        if self.arrival_s:  # closed loop: the engine wrote the arrival times
            arrival = np.fromiter((self.arrival_s.pop(r, NAN) for r in range(lo, hi)), dtype=np.float64, count=n)
        return {"arrival_s": arrival,
                "input_tokens": np.asarray(wl.input_tokens[lo:hi], dtype=np.int64),
                "output_tokens": np.asarray(wl.output_tokens[lo:hi], dtype=np.int64),
                "prefix_group": np.asarray(wl.prefix_group[lo:hi], dtype=np.int64),
                "prefix_hit_tokens": pop(self.prefix_hit_tokens, np.int64),
                "replica": pop(self.replica, np.int64),
                "first_scheduled_s": pop(self.first_scheduled_s, np.float64),
                "first_token_s": pop(self.first_token_s, np.float64),
                "completion_s": pop(self.completion_s, np.float64),
                "preemptions": pop(self.preemptions, np.int64)}

    def completed(self, lo: int, hi: int) -> bool:
        done = self.completion_s
        return all(r in done for r in range(lo, hi))


class SpooledSample:
    """Weighted values appended to files; :meth:`percentile` is the inverted CDF of
    :class:`~infersim.serving.metrics.WeightedSample` (the smallest value whose cumulative weight
    reaches ``q`` percent of the total), found exactly with bounded memory: one pass bins the
    values (weighted histogram over [min, max]), a second sorts the values of the bin that holds
    the percentile. Exact when the weights are integers (their float64 sums then are)."""

    def __init__(self, directory: Path, name: str = "itl") -> None:
        self.paths = (directory / f"{name}_values.f8", directory / f"{name}_weights.f8")
        self._files = [p.open("wb") for p in self.paths]
        self.count = 0
        self.total = 0.0
        self._weighted_sum = 0.0
        self.lo, self.hi = math.inf, -math.inf
        self._cum: np.ndarray | None = None

    def add(self, values, weights) -> None:
        v = np.asarray(values, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        keep = w > 0
        v, w = v[keep], w[keep]
        if not v.size:
            return
        v.tofile(self._files[0])
        w.tofile(self._files[1])
        self.count += int(v.size)
        self.total += float(w.sum())
        self._weighted_sum += float((v * w).sum())
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))

    @property
    def mean(self) -> float:
        return self._weighted_sum / self.total if self.total > 0 else NAN

    def close(self) -> None:
        for fh in self._files:
            fh.close()

    def _blocks(self):
        """The spooled (values, weights), a block at a time (read, not mapped: bounded resident memory)."""
        with self.paths[0].open("rb") as fv, self.paths[1].open("rb") as fw:
            for _ in range(0, self.count, _BLOCK):
                yield np.fromfile(fv, dtype=np.float64, count=_BLOCK), np.fromfile(fw, dtype=np.float64, count=_BLOCK)

    def _bins(self, v: np.ndarray) -> np.ndarray:
        span = self.hi - self.lo
        if span <= 0:
            return np.zeros(v.size, dtype=np.int64)
        return np.clip(((v - self.lo) / span * _BINS).astype(np.int64), 0, _BINS - 1)

    def percentile(self, q: float) -> float:
        if self.count == 0:
            return NAN
        if self._cum is None:
            hist = np.zeros(_BINS)
            for v, w in self._blocks():
                hist += np.bincount(self._bins(v), weights=w, minlength=_BINS)
            self._cum = np.cumsum(hist)
        target = q / 100.0 * self.total
        b = min(int(np.searchsorted(self._cum, target, side="left")), _BINS - 1)
        before = float(self._cum[b - 1]) if b else 0.0
        chosen_v, chosen_w = [], []
        for v, w in self._blocks():
            sel = self._bins(v) == b
            chosen_v.append(v[sel])
            chosen_w.append(w[sel])
        v, w = np.concatenate(chosen_v), np.concatenate(chosen_w)
        order = np.argsort(v, kind="stable")
        cum = before + np.cumsum(w[order])
        idx = int(np.searchsorted(cum, target, side="left"))
        return float(v[order][min(idx, v.size - 1)])


class RequestSink:
    """Takes completed chunks of requests out of a :class:`StreamLog` and the steps out of the
    engines' logs, keeping running figures and spooling what the percentiles need."""

    def __init__(self, scenario: Scenario, directory: Path, chunk: int, csv_path: Path | None) -> None:
        self.scenario = scenario
        self.chunk = chunk
        self.directory = directory
        self.wl: Workload | None = None
        self.log: StreamLog | None = None
        self.next = 0  # first request not yet taken out
        self.totals = new_step_totals()
        self.itl = SpooledSample(directory)
        self._columns = {key: (directory / f"{key}.f8").open("wb") for key in _PER_REQUEST.values()}
        self.fig = {"requests": 0, "completed": 0, "t0": math.inf, "t1": -math.inf, "arrival_min": math.inf,
                    "arrival_max": -math.inf, "input_tokens": 0, "output_tokens": 0, "preemptions": 0,
                    "preempted_requests": 0, "e2e_sum": 0.0, "slo_meets": 0}
        self._csv = None
        if csv_path is not None:
            self._csv = csv_path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._csv, lineterminator="\n")
            self._writer.writerow(REQUEST_COLUMNS)
        self.peak_live = 0  # most requests held in the log at a drain (tests read it)

    def request_log(self, scenario: Scenario, wl: Workload) -> StreamLog:
        """The log a run writes to (``scenario``: with the effective scheduler)."""
        self.scenario = scenario
        self.wl = wl
        self.log = StreamLog(wl)
        return self.log

    def drain(self, engines: list, issued: int | None) -> None:
        """Take out every leading chunk whose requests have all completed (all requests when
        ``issued`` is None: the run is over) and the engines' steps so far."""
        bs = self.scenario.scheduler.block_size
        for e in engines:
            steps, e.steps = e.steps, e.steps.empty()
            values, weights = [], []
            add_step_totals(self.totals, steps, e.cost, bs, values, weights)
            for v, w in zip(values, weights):
                self.itl.add(v, w)
        self.peak_live = max(self.peak_live, self.log.live())
        n = self.wl.n
        while self.next < n:
            hi = min(n, self.next + self.chunk)
            if issued is not None and not self.log.completed(self.next, hi):
                break
            self._take(self.next, hi)
            self.next = hi

    def _take(self, lo: int, hi: int) -> None:
        req = self.log.take(lo, hi, self.wl)
        rm = request_metrics(req)
        arrival, done = req["arrival_s"], req["completion_s"]
        ok = np.isfinite(done)
        f = self.fig
        f["requests"] += hi - lo
        f["completed"] += int(ok.sum())
        if arrival.size:
            f["t0"] = min(f["t0"], float(np.nanmin(arrival)))
            f["arrival_min"] = min(f["arrival_min"], float(arrival.min()))
            f["arrival_max"] = max(f["arrival_max"], float(arrival.max()))
        if ok.any():
            f["t1"] = max(f["t1"], float(done[ok].max()))
            f["e2e_sum"] += float((done[ok] - arrival[ok]).sum())
        f["input_tokens"] += int(req["input_tokens"][ok].sum())
        f["output_tokens"] += int(req["output_tokens"][ok].sum())
        f["preemptions"] += int(req["preemptions"].sum())
        f["preempted_requests"] += int((req["preemptions"] > 0).sum())
        f["slo_meets"] += int(slo_meets(self.scenario, rm).sum())
        for key, fh in self._columns.items():
            rm[key].astype(np.float64).tofile(fh)
        if self._csv is not None:
            write_request_rows(self._writer, req, rm, lo)

    def figures(self) -> dict:
        """The request figures :func:`~infersim.serving.metrics.summary_from` takes."""
        for fh in self._columns.values():
            fh.close()
        if self._csv is not None:
            self._csv.close()
        self.itl.close()
        f = dict(self.fig)
        if f["requests"] == 0:
            f["t0"] = 0.0
            f["arrival_min"] = f["arrival_max"] = NAN
        if not f["completed"]:
            f["t1"] = f["t0"]
        makespan = f["t1"] - f["t0"]
        f["mean_in_system"] = f.pop("e2e_sum") / makespan if f["completed"] and makespan > 0 else NAN
        f["slo_values"] = {}
        for metric, key in _PER_REQUEST.items():  # one column in memory at a time
            x = np.fromfile(self.directory / f"{key}.f8", dtype=np.float64)
            f[key] = _pcts(x)
            f["slo_values"].update(slo_values(self.scenario, metric, x))
            if key == "e2e_s":
                f["e2e_mean"] = float(np.nanmean(x)) if f["completed"] else NAN
            del x
        return f


@dataclass
class StreamedRun:
    summary: Summary
    paths: list[Path]
    peak_live_requests: int


def simulate_streaming(scenario: Scenario, out_dir: str | Path | None = None, chunk: int = DEFAULT_CHUNK,
                       workload: Workload | None = None) -> StreamedRun:
    """Simulate ``scenario`` with per-request records and step logs streamed to disk every
    ``chunk`` arrivals; with ``out_dir``, write ``requests.csv`` and ``summary.json`` there."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    start = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    spool = Path(tempfile.mkdtemp(prefix="infersim-stream-", dir=out))
    try:
        sink = RequestSink(scenario, spool, chunk, out / "requests.csv" if out is not None else None)
        result = simulate(scenario, workload=workload, sink=sink)
        result.wall_s = time.perf_counter() - start
        summary = summary_from(result, {**sink.totals, "itl": sink.itl}, sink.figures())
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    summary.wall_s = time.perf_counter() - start
    paths = []
    if out is not None:
        paths = [out / "requests.csv", out / "summary.json"]
        paths[1].write_text(summary_json(summary) + "\n", encoding="utf-8")
    return StreamedRun(summary, paths, sink.peak_live)

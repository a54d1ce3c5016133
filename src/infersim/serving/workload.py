"""Workloads: arrival processes, length distributions, trace replay, shared prefixes.

:func:`build_workload` turns a scenario's ``workload`` section into a
:class:`Workload` of numpy arrays (one entry per request): arrival times (open
loop), prompt and output lengths, shared-prefix group. Every random stream comes
from its own child of ``numpy.random.SeedSequence(seed)`` (arrivals, input
lengths, output lengths, prefix groups, think times), so the same seed gives the
same requests to the byte, and changing one distribution leaves the others'
draws unchanged.

Closed-loop workloads have no arrival times up front: user ``u`` sends its first
request after one think time, then its next one a think time after each
completion; the engine issues them (:attr:`Workload.think_s` holds the
pre-drawn think time of each request, in issue order).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .scenario import (ClosedLoopArrivals, ConstantArrivals, EmpiricalLength, FixedLength, GammaArrivals,
                       LogNormalLength, OfflineArrivals, PoissonArrivals, Scenario, UniformLength)

_STREAMS = ("arrival", "input", "output", "prefix", "think")


@dataclass(frozen=True)
class Workload:
    """Requests to simulate. ``arrival_s`` is NaN for closed-loop workloads (issued by the engine)."""

    arrival_s: np.ndarray  # float64, nondecreasing (open loop)
    input_tokens: np.ndarray  # int64, prompt tokens including any shared prefix
    output_tokens: np.ndarray  # int64, >= 1
    prefix_group: np.ndarray  # int64, -1 = no shared prefix
    prefix_tokens: np.ndarray  # int64, shared tokens at the start of the prompt (0 when no group)
    closed_loop_users: int = 0  # > 0: closed loop with this many users
    think_s: np.ndarray | None = None  # closed loop: think time before each request, in issue order

    @property
    def n(self) -> int:
        return int(self.input_tokens.size)

    @property
    def closed_loop(self) -> bool:
        return self.closed_loop_users > 0


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children)}


def _read_csv_columns(path: Path, columns: list[str], origin: object, field: str) -> dict[str, list[str]]:
    if not path.is_file():
        raise ConfigError(origin, field, f"file not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for col in columns:
            if col not in header:
                raise ConfigError(origin, field, f"{path} has no column '{col}' (columns: {', '.join(header)})")
        out: dict[str, list[str]] = {c: [] for c in columns}
        for row in reader:
            for c in columns:
                out[c].append(row[c])
    if not out[columns[0]]:
        raise ConfigError(origin, field, f"{path} has no data rows")
    return out


def _ints(values: list[str], path: Path, column: str, origin: object, field: str, lo: int) -> np.ndarray:
    try:
        arr = np.array([int(float(v)) for v in values], dtype=np.int64)
    except ValueError as exc:
        raise ConfigError(origin, field, f"{path} column '{column}': not a number ({exc})") from None
    bad = np.flatnonzero(arr < lo)
    if bad.size:
        raise ConfigError(origin, field, f"{path} column '{column}' row {int(bad[0]) + 2}: "
                                         f"{int(arr[bad[0]])} < {lo}")
    return arr


def sample_lengths(dist, n: int, rng: np.random.Generator, scenario: Scenario, field: str) -> np.ndarray:
    """``n`` token counts (int64, >= 1) from a length distribution."""
    if isinstance(dist, FixedLength):
        return np.full(n, dist.value, dtype=np.int64)
    if isinstance(dist, UniformLength):
        return rng.integers(dist.min, dist.max + 1, size=n, dtype=np.int64)
    if isinstance(dist, LogNormalLength):
        x = dist.median * np.exp(dist.sigma * rng.standard_normal(n))
        return np.clip(np.rint(x), dist.min, dist.max).astype(np.int64)
    if isinstance(dist, EmpiricalLength):
        path = scenario.resolve_path(dist.path)
        cols = _read_csv_columns(path, [dist.column], scenario.origin, f"{field}.path")
        values = _ints(cols[dist.column], path, dist.column, scenario.origin, f"{field}.column", 1)
        return values[rng.integers(0, values.size, size=n)]
    raise TypeError(dist)  # pragma: no cover


def _poisson(spec: PoissonArrivals, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.cumsum(rng.exponential(1.0 / spec.rate, size=n))


def _gamma(spec: GammaArrivals, n: int, rng: np.random.Generator) -> np.ndarray:
    shape = 1.0 / spec.cv**2  # CV of Gamma(k, theta) is 1/sqrt(k); mean k*theta = 1/rate
    return np.cumsum(rng.gamma(shape, 1.0 / (spec.rate * shape), size=n))


def _constant(spec: ConstantArrivals, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.cumsum(np.full(n, 1.0 / spec.rate))


def _offline(spec: OfflineArrivals, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.zeros(n)


#: open-loop arrival processes: the scenario section's class -> arrival times (s) of ``n`` requests.
#: Closed loop (:class:`ClosedLoopArrivals`) has no times up front: the engine issues its requests.
ARRIVAL_PROCESSES = {PoissonArrivals: _poisson, GammaArrivals: _gamma, ConstantArrivals: _constant,
                     OfflineArrivals: _offline}


def arrival_times(spec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Open-loop arrival times (s) of ``n`` requests (Poisson, Gamma and constant: the first at the
    first inter-arrival gap; offline: all at 0)."""
    return ARRIVAL_PROCESSES[type(spec)](spec, n, rng)


def _parse_timestamps(values: list[str], path: Path, column: str, origin: object, field: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        pass
    out = np.empty(len(values))
    for i, v in enumerate(values):
        text = v.strip()
        # Azure traces carry 7 fractional digits; datetime takes at most 6
        if "." in text:
            head, frac = text.split(".", 1)
            digits = "".join(ch for ch in frac if ch.isdigit())
            rest = frac[len(digits):]
            text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
        try:
            out[i] = datetime.fromisoformat(text).timestamp()
        except ValueError:
            raise ConfigError(origin, field, f"{path} column '{column}' row {i + 2}: "
                                             f"'{v}' is neither seconds nor an ISO-8601 date-time") from None
    return out


def load_trace(scenario: Scenario) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrival times (s, from 0), prompt and output tokens of a trace, in arrival order."""
    spec = scenario.workload.trace
    path = scenario.resolve_path(spec.path)
    field = "workload.trace"
    cols = _read_csv_columns(path, [spec.timestamp_column, spec.input_column, spec.output_column],
                             scenario.origin, f"{field}.path")
    ts = _parse_timestamps(cols[spec.timestamp_column], path, spec.timestamp_column, scenario.origin,
                           f"{field}.timestamp_column")
    inp = _ints(cols[spec.input_column], path, spec.input_column, scenario.origin, f"{field}.input_column", 1)
    # a request generates at least one token (its first); 0 in a trace means "prefill only"
    out = np.maximum(_ints(cols[spec.output_column], path, spec.output_column, scenario.origin,
                           f"{field}.output_column", 0), 1)
    order = np.argsort(ts, kind="stable")
    ts, inp, out = ts[order], inp[order], out[order]
    arrival = (ts - ts[0]) * spec.time_scale
    n = scenario.workload.requests
    if n is not None:
        arrival, inp, out = arrival[:n], inp[:n], out[:n]
    return arrival, inp, out


def build_workload(scenario: Scenario) -> Workload:
    """The requests of a scenario (deterministic in ``scenario.seed``)."""
    w = scenario.workload
    rng = _streams(scenario.seed)
    users = 0
    think = None
    if w.trace is not None:
        arrival, inp, out = load_trace(scenario)
        n = inp.size
    else:
        n = w.requests
        inp = sample_lengths(w.input_tokens, n, rng["input"], scenario, "workload.input_tokens")
        out = sample_lengths(w.output_tokens, n, rng["output"], scenario, "workload.output_tokens")
        if isinstance(w.arrival, ClosedLoopArrivals):
            users = w.arrival.users
            arrival = np.full(n, np.nan)
            if w.arrival.think == "fixed" or w.arrival.think_time_s == 0.0:
                think = np.full(n, w.arrival.think_time_s)
            else:
                think = rng["think"].exponential(w.arrival.think_time_s, size=n)
        else:
            arrival = arrival_times(w.arrival, n, rng["arrival"])
    group = np.full(n, -1, dtype=np.int64)
    prefix = np.zeros(n, dtype=np.int64)
    if w.prefix is not None:
        r = rng["prefix"]
        member = r.random(n) < w.prefix.fraction
        g = r.integers(0, w.prefix.groups, size=n)
        group = np.where(member, g, -1).astype(np.int64)
        prefix = np.where(member, w.prefix.tokens, 0).astype(np.int64)
        inp = inp + prefix
    return Workload(arrival_s=np.asarray(arrival, dtype=np.float64), input_tokens=inp.astype(np.int64),
                    output_tokens=out.astype(np.int64), prefix_group=group, prefix_tokens=prefix,
                    closed_loop_users=users, think_s=think)


def mean_rate(workload: Workload) -> float:
    """Mean arrival rate (requests/s) of an open-loop workload: (n - 1) / span, or inf for one request."""
    a = workload.arrival_s
    if workload.closed_loop or a.size < 2 or a[-1] <= a[0]:
        return math.inf
    return (a.size - 1) / float(a[-1] - a[0])

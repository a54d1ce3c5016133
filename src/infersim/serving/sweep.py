"""Rate sweeps and capacity search: the highest request rate that meets the scenario's SLOs.

Every rate reuses the scenario's seed, so the runs share their random numbers
(common random numbers): the Poisson/Gamma gaps are the same draws scaled by
``1 / rate``, and the lengths are identical. Latency then grows smoothly with the
rate instead of jumping with sampling noise.

The automatic search brackets the capacity by doubling (or halving) from a start
rate, then bisects until the bracket is within ``tolerance`` (relative). It assumes
that meeting the SLOs is monotone in the rate, which holds for these schedulers up
to sampling noise; the reported capacity is the highest passing rate below the
lowest failing one among those run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ConfigError
from .engine import Deployment, prepare, simulate
from .metrics import Summary, summarize
from .scenario import ClosedLoopArrivals, OfflineArrivals, Scenario
from .workload import build_workload, load_trace


@dataclass
class SweepPoint:
    rate: float
    summary: Summary


@dataclass
class SweepResult:
    scenario: str
    points: list[SweepPoint] = field(default_factory=list)
    capacity_rps: float | None = None  # None: no rate met the SLOs

    def sorted_points(self) -> list[SweepPoint]:
        return sorted(self.points, key=lambda p: p.rate)


def base_rate(scenario: Scenario) -> float:
    """The scenario's own mean arrival rate (requests/s)."""
    w = scenario.workload
    if w.trace is not None:
        arrival, _, _ = load_trace(scenario)
        if arrival.size < 2 or arrival[-1] <= arrival[0]:
            raise ConfigError(scenario.origin, "workload.trace", "a rate sweep needs a trace spanning some time")
        return (arrival.size - 1) / float(arrival[-1] - arrival[0])
    if isinstance(w.arrival, ClosedLoopArrivals):
        raise ConfigError(scenario.origin, "workload.arrival.process",
                          "a rate sweep needs an open-loop arrival process (poisson, gamma, constant or a trace); "
                          "closed_loop sets its own rate")
    if isinstance(w.arrival, OfflineArrivals):
        raise ConfigError(scenario.origin, "workload.arrival.process",
                          "a rate sweep needs an open-loop arrival process with a rate (poisson, gamma, constant "
                          "or a trace); offline queues every request at t = 0")
    return w.arrival.rate


def with_rate(scenario: Scenario, rate: float) -> Scenario:
    """The scenario with its mean arrival rate set to ``rate`` (a trace is time-scaled)."""
    if rate <= 0:
        raise ConfigError(scenario.origin, "workload.arrival.rate", f"rates must be > 0, got {rate}")
    w = scenario.workload
    if w.trace is not None:
        return scenario.with_changes(**{"workload.trace.time_scale": w.trace.time_scale * base_rate(scenario) / rate})
    base_rate(scenario)  # closed loop: error
    return scenario.with_changes(**{"workload.arrival.rate": rate})


def _require_slos(scenario: Scenario) -> None:
    if not scenario.slo:
        raise ConfigError(scenario.origin, "slo", "a capacity search needs SLOs, e.g. "
                                                  "slo: [{metric: ttft, percentile: 99, max_ms: 500}]")


class _Runner:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        wl = build_workload(scenario)
        max_ctx = int((wl.input_tokens + wl.output_tokens).max()) + 1 if wl.n else 2
        self.deployment: Deployment = prepare(scenario, max_context_tokens=max_ctx)
        self.points: list[SweepPoint] = []

    def run(self, rate: float) -> SweepPoint:
        sc = with_rate(self.scenario, rate)
        summary = summarize(simulate(sc, deployment=self.deployment))
        point = SweepPoint(rate, summary)
        self.points.append(point)
        return point


def capacity_of(tried: list[tuple[float, bool]]) -> float | None:
    """The highest rate that met the SLOs below the lowest one that did not, from (rate, met) pairs."""
    failing = [rate for rate, met in tried if not met]
    limit = min(failing) if failing else float("inf")
    passing = [rate for rate, met in tried if met and rate < limit]
    return max(passing) if passing else None


def _capacity(points: list[SweepPoint]) -> float | None:
    return capacity_of([(p.rate, p.summary.slo_met) for p in points])


def bracket_and_bisect(meets: Callable[[float], bool], start_rate: float, tolerance: float = 0.05,
                       max_runs: int = 24) -> list[tuple[float, bool]]:
    """Rates tried and whether each met the SLOs: double (or halve) from ``start_rate`` until the
    capacity is bracketed, then bisect until the bracket is within ``tolerance`` (relative)."""
    tried: list[tuple[float, bool]] = []

    def run(rate: float) -> bool:
        met = bool(meets(rate))
        tried.append((rate, met))
        return met

    rate = start_rate
    lo = hi = None
    if run(rate):
        lo = rate
        while hi is None and len(tried) < max_runs:
            rate *= 2.0
            if run(rate):
                lo = rate
            else:
                hi = rate
    else:
        hi = rate
        while lo is None and len(tried) < max_runs:
            rate /= 2.0
            if run(rate):
                lo = rate
            else:
                hi = rate
    if lo is not None and hi is not None:
        while (hi - lo) / lo > tolerance and len(tried) < max_runs:
            mid = 0.5 * (lo + hi)
            if run(mid):
                lo = mid
            else:
                hi = mid
    return tried


def sweep_rates(scenario: Scenario, rates: list[float]) -> SweepResult:
    """Simulate each rate; capacity = the highest passing rate below the lowest failing one."""
    _require_slos(scenario)
    for r in rates:
        if r <= 0:
            raise ConfigError(scenario.origin, "--rates", f"rates must be > 0, got {r}")
    runner = _Runner(scenario)
    for r in sorted(rates):
        runner.run(r)
    return SweepResult(scenario.name, runner.points, _capacity(runner.points))


def find_capacity(scenario: Scenario, start_rate: float | None = None, tolerance: float = 0.05,
                  max_runs: int = 24) -> SweepResult:
    """Bracket and bisect the highest rate meeting the SLOs (see module docstring)."""
    _require_slos(scenario)
    if not 0 < tolerance < 1:
        raise ConfigError(scenario.origin, "--tolerance", f"must be in (0, 1), got {tolerance}")
    runner = _Runner(scenario)
    rate = start_rate if start_rate is not None else base_rate(scenario)
    bracket_and_bisect(lambda r: runner.run(r).summary.slo_met, rate, tolerance, max_runs)
    return SweepResult(scenario.name, runner.points, _capacity(runner.points))

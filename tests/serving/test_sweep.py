"""Rate sweeps and the capacity search."""

import pytest

from infersim.errors import ConfigError
from infersim.serving.sweep import find_capacity, sweep_rates, with_rate
from infersim.serving.workload import build_workload, mean_rate

from ._util import scenario, trace_scenario

SLO = [{"metric": "ttft", "percentile": 90, "max_ms": 300}, {"metric": "tpot", "percentile": 90, "max_ms": 30}]
WORK = {"requests": 300, "arrival": {"process": "poisson", "rate": 4.0},
        "input_tokens": {"dist": "lognormal", "median": 800, "sigma": 0.6, "max": 4000},
        "output_tokens": {"dist": "lognormal", "median": 150, "sigma": 0.6, "max": 1000}}


def test_sweep_table_and_capacity():
    res = sweep_rates(scenario(slo=SLO, workload=WORK), [2.0, 6.0, 60.0, 30.0])
    pts = res.sorted_points()
    assert [p.rate for p in pts] == [2.0, 6.0, 30.0, 60.0]
    met = [p.summary.slo_met for p in pts]
    assert met[0] and not met[-1]
    first_fail = met.index(False)
    assert res.capacity_rps == pts[first_fail - 1].rate
    # each point's offered rate is its own
    for p in pts:
        assert p.summary.offered_rate == pytest.approx(p.rate, rel=0.25)


def test_automatic_search_brackets_the_capacity():
    res = find_capacity(scenario(slo=SLO, workload=WORK), start_rate=3.0, tolerance=0.05)
    c = res.capacity_rps
    passing = [p.rate for p in res.points if p.summary.slo_met]
    failing = [p.rate for p in res.points if not p.summary.slo_met]
    assert c == max(r for r in passing if r < min(failing))
    assert (min(r for r in failing if r > c) - c) / c <= 0.05 + 1e-12


def test_trace_is_time_scaled_to_the_rate(tmp_path):
    sc = trace_scenario(tmp_path, [(0.0, 10, 2), (1.0, 10, 2), (1.5, 10, 2), (4.0, 10, 2)])
    assert mean_rate(build_workload(sc)) == pytest.approx(0.75)
    fast = with_rate(sc, 3.0)
    assert mean_rate(build_workload(fast)) == pytest.approx(3.0, rel=1e-12)
    assert build_workload(fast).arrival_s.tolist() == pytest.approx([0.0, 0.25, 0.375, 1.0])


def test_sweep_needs_slos_and_an_open_loop():
    with pytest.raises(ConfigError) as info:
        sweep_rates(scenario(workload=WORK), [1.0])
    assert info.value.field == "slo"
    closed = dict(WORK, arrival={"process": "closed_loop", "users": 4})
    with pytest.raises(ConfigError) as info:
        sweep_rates(scenario(slo=SLO, workload=closed), [1.0])
    assert info.value.field == "workload.arrival.process"

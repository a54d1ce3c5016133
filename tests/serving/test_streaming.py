"""A streamed simulation (per-request records and step logs spooled to disk in chunks) gives the
in-memory run's results: the same requests.csv bytes, the same percentiles and counts, sums equal
to rounding; its memory holds only the requests in flight."""

from __future__ import annotations

import gc
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from infersim.serving.engine import simulate
from infersim.serving.metrics import WeightedSample, iterations, summarize
from infersim.serving.outputs import write_outputs
from infersim.serving.replica import Seq
from infersim.serving.scenario import load_scenario
from infersim.serving.streaming import RequestSink, SpooledSample, simulate_streaming

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "examples" / "scenarios"

#: figures summed chunk by chunk in a streamed run (last-bit differences from the in-memory sums)
SUMMED = {"kv_utilization_mean", "mfu_mean", "mbu_mean", "busy_fraction", "mean_in_system"}


def _same_summary(mem: dict, streamed: dict) -> None:
    assert mem.keys() == streamed.keys()
    for key, a in mem.items():
        b = streamed[key]
        if key in SUMMED:
            assert (math.isnan(a) and math.isnan(b)) or b == pytest.approx(a, rel=1e-9), key
        elif key == "itl_s":  # percentiles selected exactly; the mean is a sum
            assert {k: v for k, v in a.items() if k != "mean"} == {k: v for k, v in b.items() if k != "mean"}
            assert b["mean"] == pytest.approx(a["mean"], rel=1e-9)
        elif isinstance(a, float) and math.isnan(a):
            assert math.isnan(b), key
        else:
            assert b == a, key


@pytest.mark.parametrize("name, requests, chunk", [
    ("default-chat.yaml", 1500, 256),
    ("multi-replica-bursty.yaml", 1200, 300),
    ("prefix-caching.yaml", 800, 100),
    ("closed-loop-static.yaml", 300, 64),
    ("chunked-prefill.yaml", 600, 1000),  # one chunk: everything taken out at the end
])
def test_streamed_run_matches_the_in_memory_run(tmp_path, name, requests, chunk):
    sc = load_scenario(SCENARIOS / name).with_changes(**{"workload.requests": requests})
    result = simulate(sc)
    it = iterations(result, detail=True)
    mem = summarize(result, it)
    write_outputs(result, mem, it, tmp_path / "mem")
    run = simulate_streaming(sc, tmp_path / "streamed", chunk=chunk)
    _same_summary(mem.to_dict(), run.summary.to_dict())
    assert (tmp_path / "streamed" / "requests.csv").read_bytes() == (tmp_path / "mem" / "requests.csv").read_bytes()
    assert sorted(p.name for p in (tmp_path / "streamed").iterdir()) == ["requests.csv", "summary.json"]


def test_summary_json_mean_in_system_obeys_littles_law_in_a_streamed_run(tmp_path):
    # the streamed mean in system is sum(E2E) / makespan, Little's law's right side is
    # throughput x mean E2E: equal by L = lambda W (Little 1961), here computed two ways
    sc = load_scenario(SCENARIOS / "default-chat.yaml").with_changes(**{"workload.requests": 500})
    s = simulate_streaming(sc, chunk=128).summary
    assert s.mean_in_system == pytest.approx(s.littles_law_rhs, rel=1e-12)
    assert s.completed == 500


class _Watch(RequestSink):
    """Records, at every drain, the live Seq objects and the requests the engines hold."""

    def drain(self, engines, issued):
        gc.collect()
        with warnings.catch_warnings():  # isinstance on every live object touches deprecated module attributes
            warnings.simplefilter("ignore", FutureWarning)
            seqs = sum(isinstance(o, Seq) for o in gc.get_objects())
        held = sum(e.active for e in engines)
        before = (seqs, held, self.log.live(), issued, self.next)
        super().drain(engines, issued)
        first_kept = self.next
        incomplete = first_kept < self.wl.n and not self.log.completed(first_kept, min(self.wl.n, first_kept + self.chunk))
        self.seen.append((*before, first_kept, incomplete))


def test_a_finished_request_leaves_no_state_behind(tmp_path):
    sc = load_scenario(SCENARIOS / "default-chat.yaml").with_changes(**{"workload.requests": 2000})
    chunk = 200
    sink = _Watch(sc, tmp_path, chunk, None)
    sink.seen = []
    result = simulate(sc, sink=sink)
    assert len(sink.seen) == 2000 // chunk + 1
    for seqs, held, live, issued, taken, first_kept, incomplete in sink.seen[:-1]:
        assert seqs == held  # a Seq exists only while its request is in a replica
        # the log holds the requests issued and not yet taken out, nothing else ...
        assert live == issued - taken
        # ... and a drain takes out every leading chunk whose requests have all completed
        assert incomplete or first_kept == issued
    assert sink.log.live() == 0 and not sink.log.completion_s and not sink.log.first_token_s
    assert all(s.n_steps == 0 and not s.singles and not s.runs for s in result.engines)  # drained


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=1, max_size=300),
       weights=st.lists(st.integers(0, 40), min_size=300, max_size=300),
       q=st.sampled_from([0.0, 1.0, 50.0, 90.0, 99.0, 99.9, 100.0]),
       parts=st.integers(1, 5))
def test_spooled_percentile_is_the_in_memory_inverted_cdf(tmp_path_factory, values, weights, q, parts):
    v = np.array(values)
    w = np.array(weights[: v.size], dtype=np.float64)
    if not (w > 0).any():
        w[0] = 1.0
    sample = SpooledSample(tmp_path_factory.mktemp("spool"))
    for piece_v, piece_w in zip(np.array_split(v, parts), np.array_split(w, parts)):
        sample.add(piece_v, piece_w)
    sample.close()
    ref = WeightedSample(v, w)
    assert sample.percentile(q) == ref.percentile(q)
    assert sample.mean == pytest.approx(ref.mean, rel=1e-12)


def test_spooled_percentile_selects_inside_a_crowded_bin(tmp_path):
    # many values in one histogram bin and a few far away: the selection sorts the bin
    rng = np.random.default_rng(3)
    v = np.concatenate([1.0 + rng.random(50_000) * 1e-9, [1e3, 2e3]])
    w = rng.integers(1, 4, v.size).astype(np.float64)
    sample = SpooledSample(tmp_path)
    sample.add(v, w)
    sample.close()
    ref = WeightedSample(v, w)
    for q in (10.0, 50.0, 99.99, 100.0):
        assert sample.percentile(q) == ref.percentile(q)

"""The AFD study's own logic: the prefill pool sized to the rate, the SLO split, the pool resized
without preparing again, and the choice of the attention:FFN ratio (hand-made rows)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from infersim.errors import ConfigError
from infersim.serving.pipeline.deploy import prepare_pipeline, with_llm_replicas
from infersim.serving.pipeline.spec import load_pipeline
from infersim.serving.pipeline.studies import (
    ConfigResult,
    PrefillSizing,
    StudyResult,
    _Config,
    best_afd_ratio,
    best_by_group,
    decode_tokens_per_gpu_s,
    prefill_replica_capacity,
    prefill_replicas_for,
    split_slos,
)

from ._util import pd_data, pipeline

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "disagg"


@pytest.mark.parametrize("rate, capacity, replicas", [
    (90.0, 42.5, 3),   # 90 / 42.5 = 2.12 -> 3
    (85.0, 42.5, 2),   # exactly two replicas' worth
    (130.0, 42.5, 4),  # 3.06 -> 4
    (10.0, 42.5, 1),
    (0.0, 42.5, 1),    # never an empty pool
])
def test_prefill_replicas_follow_the_rate(rate, capacity, replicas):
    assert prefill_replicas_for(rate, capacity) == replicas


def test_prefill_sizing_spare_replica_and_bad_capacity():
    sizing = PrefillSizing("prefill", 42.5, 16, spare=1)
    assert sizing.replicas_at(90.0) == 4  # 3 by the rule + 1 spare
    assert PrefillSizing("prefill", 42.5, 16).replicas_at(90.0) * 16 == 48
    with pytest.raises(ValueError, match="positive"):
        prefill_replicas_for(10.0, 0.0)


def test_slos_split_into_prefill_and_decode_sides():
    data = pd_data(slo=[{"metric": "tpot", "percentile": 90, "max_ms": 50},
                        {"metric": "ttft", "percentile": 99, "max_ms": 800},
                        {"metric": "e2e", "percentile": 50, "max_ms": 9000}])
    prefill, decode = split_slos(pipeline(data))
    assert [(s["metric"], s["percentile"], s["max_ms"]) for s in prefill] == [("ttft", 99.0, 800.0)]
    assert [s["metric"] for s in decode] == ["tpot", "e2e"]


def test_resized_pool_shares_the_prepared_engines():
    sc = pipeline(pd_data())
    dep = prepare_pipeline(sc)
    bigger = sc.with_changes(**{"engines.prefill.parallelism.replicas": 3})
    out = with_llm_replicas(dep, bigger, "prefill", 3)
    pre, old = out.engines["prefill"], dep.engines["prefill"]
    assert pre.replicas == 3 and pre.device_count == 3 and old.replicas == 1 and old.device_count == 1
    assert pre.deployment.cost is old.deployment.cost  # cost caches shared
    assert pre.deployment.scenario.parallelism.replicas == 3
    assert out.engines["decode"] is dep.engines["decode"] and out.scenario is bigger


def test_config_runs_with_the_pool_its_rate_needs():
    """One replica keeps TTFT up to 2 req/s (stated, not measured): at 5 req/s the run has
    ceil(5 / 2) = 3 prefill GPUs (llama-3.1-8b, one GPU a replica), at 1 req/s one."""
    cfg = _Config(pipeline(pd_data()), 20, 4.0, PrefillSizing("prefill", 2.0, 1))
    devices = {e.name: e.devices for e in cfg.run(5.0).engines}
    assert devices == {"prefill": 3, "decode": 1}
    assert {e.name: e.devices for e in cfg.run(1.0).engines}["prefill"] == 1
    assert {e.name: e.devices for e in cfg.run_with_prefill(5.0, 2).engines}["prefill"] == 2


def _row(study, label, gpus, cap, tokens_per_request, decode_gpus):
    """A hand-made row; its run completed 50 req/s (any value: only tokens per request matter)."""
    summary = SimpleNamespace(throughput_rps=50.0, output_tokens_per_s=50.0 * tokens_per_request)
    return ConfigResult(study, label, gpus, cap, summary,
                        {"decode_gpus": decode_gpus, "afd": label.startswith("AFD")})


def test_ratio_is_the_most_decode_tokens_per_decode_gpu_among_afd_rows():
    rows = [
        _row("short", "colocated", 16, 30.0, 300.0, 16),          # 30 x 300 / 16 = 562.5, but not AFD
        _row("short", "AFD 32A:32F m1", 112, 90.0, 320.0, 64),    # 90 x 320 / 64 = 450
        _row("short", "AFD 64A:32F m1", 160, 130.0, 320.0, 96),   # 130 x 320 / 96 = 433.3
        _row("short", "AFD 16A:16F m1", 48, None, 900.0, 32),     # no capacity: not a candidate
        _row("long", "AFD 16A:32F m1", 80, 45.0, 320.0, 48),      # 300
        _row("long", "AFD 64A:32F m1", 160, 100.0, 300.0, 96),    # 312.5
    ]
    result = StudyResult("afd", "hand", rows)
    ratio = best_afd_ratio(result)
    assert ratio["short"].label == "AFD 32A:32F m1" and ratio["long"].label == "AFD 64A:32F m1"
    assert decode_tokens_per_gpu_s(rows[1]) == pytest.approx(450.0)
    assert decode_tokens_per_gpu_s(rows[5]) == pytest.approx(312.5)
    assert decode_tokens_per_gpu_s(rows[3]) != decode_tokens_per_gpu_s(rows[3])  # NaN without a capacity
    # goodput per GPU of the whole configuration is another measure: 30/16 = 1.875 > 130/160 > 90/112
    assert best_by_group(result)["short"].label == "colocated"


def test_auto_pool_needs_a_ttft_and_a_decode_slo():
    sc = load_pipeline(EXAMPLES / "afd_deepseek.yaml")
    only_tpot = sc.with_changes(slo=[{"metric": "tpot", "percentile": 90, "max_ms": 50}])
    with pytest.raises(ConfigError) as exc:
        prefill_replica_capacity(only_tpot, sc.study, None, "w")
    assert exc.value.field == "study.prefill_pool" and "ttft" in exc.value.problem


def test_prefill_pool_rejects_unknown_values():
    sc = load_pipeline(EXAMPLES / "afd_deepseek.yaml")
    data = sc.model_dump(exclude_none=True)
    data["study"]["prefill_pool"] = "huge"
    with pytest.raises(ConfigError) as exc:
        pipeline(data)
    assert exc.value.field == "study.prefill_pool" and "'fixed' or 'auto'" in exc.value.problem

"""The simulation evaluator: a study point's stored metrics are what the serving simulator gives for that
deployment; infeasible points never reach the simulator; failures are recorded; workers do not change results."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import infersim.search.evaluators.simulation as sim
from infersim.errors import ConfigError
from infersim.hardware import get_device
from infersim.search import InlineBackend, LocalBackend, load_study, open_store, run_study, study_from_dict
from infersim.search.evaluators import StaticEvaluator, evaluator_for
from infersim.serving import find_capacity, simulate, summarize, validate_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "studies" / "sim-llama8b.yaml"
RATE = 8.0
IN, OUT = 512, 128
SLO = {"ttft_p99_s": 0.5, "tpot_p90_s": 0.02}


def sim_study(name="sim", space=None, options=None, slo=None, **extra):
    data = {
        "name": name, "evaluator": {"kind": "simulation", "options": {"requests": 120, **(options or {})}},
        "workload": {"input_tokens": IN, "output_tokens": OUT, "rate_rps": RATE},
        "space": space or {"model": "llama-3.1-8b", "device": "h100-sxm", "tp": [1, 2], "max_batch": [4, 8]},
        "slo": SLO if slo is None else slo,
        "objectives": [{"min": "usd_per_million_output_tokens"}, {"max": "goodput_tokens_per_s_per_device"}],
        **extra,
    }
    return study_from_dict(data, "sim.yaml")


def stored(db, name):
    with open_store(db) as store:
        return store.con.execute("SELECT trial, key, status, config, metrics, error FROM evaluations WHERE study = ? "
                                 "ORDER BY trial", [name]).fetchall()


def by_config(rows, **match):
    (row,) = [r for r in rows if all(json.loads(r[3]).get(k) == v for k, v in match.items())]
    return row


def scenario(tp, max_batch, *, policy="chunked", prefill_tokens=8192, requests=120):
    """The serving scenario a study point stands for, written out here (not built by the evaluator)."""
    return validate_scenario({
        "name": "expected", "seed": 0, "model": "llama-3.1-8b", "hardware": "h100-sxm",
        "parallelism": {"tp": tp, "pp": 1, "replicas": 1},
        "scheduler": {"policy": policy, "max_num_seqs": max_batch, "max_num_batched_tokens": prefill_tokens},
        "workload": {"requests": requests, "arrival": {"process": "poisson", "rate": RATE},
                     "input_tokens": {"dist": "fixed", "value": IN}, "output_tokens": {"dist": "fixed", "value": OUT}},
        "slo": [{"metric": "ttft", "percentile": 99, "max_ms": 500},
                {"metric": "tpot", "percentile": 90, "max_ms": 20}],
    })


@pytest.fixture
def count_simulations(monkeypatch):
    calls = []
    real = sim.simulate

    def counting(sc, *args, **kwargs):
        calls.append(sc)
        return real(sc, *args, **kwargs)

    monkeypatch.setattr(sim, "simulate", counting)
    return calls


def test_stored_metrics_are_the_direct_simulation_of_the_same_scenario(db):
    study = sim_study()
    with open_store(db, write=True) as store:
        p = run_study(study, store)
    assert (p.evaluated, p.failed, p.rejected) == (4, 0, 0)
    rows = stored(db, study.name)
    m = json.loads(by_config(rows, tp=2, max_batch=4)[4])
    result = simulate(scenario(2, 4))
    s = summarize(result)
    assert m["ttft_p99_s"] == s.ttft_s["p99"] and m["tpot_p90_s"] == s.tpot_s["p90"]
    assert m["ttft_s"] == s.ttft_s["mean"] and m["e2e_p50_s"] == s.e2e_s["p50"] and m["itl_p99_s"] == s.itl_s["p99"]
    assert m["served_output_tokens_per_s"] == s.output_tokens_per_s and m["requests_per_s"] == s.throughput_rps
    assert m["devices"] == 2
    # cost: 2 devices at the catalog's price over the simulated output rate
    usd_per_hour = 2 * get_device("h100-sxm").usd_per_hour
    assert m["usd_per_million_output_tokens"] == pytest.approx(usd_per_hour / (s.output_tokens_per_s * 3600) * 1e6,
                                                               rel=1e-12)
    # goodput from the raw requests: those within both thresholds, per second of makespan, x 128 tokens, per device
    req = result.requests
    ttft = req["first_token_s"] - req["arrival_s"]
    tpot = (req["completion_s"] - req["first_token_s"]) / (OUT - 1)
    good = int(((ttft <= 0.5) & (tpot <= 0.02)).sum())
    makespan = req["completion_s"].max() - req["arrival_s"].min()
    assert 0 < good < 120  # this point misses some requests: the count matters
    assert m["goodput_tokens_per_s_per_device"] == pytest.approx(good / makespan * OUT / 2, rel=1e-9)
    assert m["slo_attainment"] == pytest.approx(good / 120)
    assert m["slo_met"] == float(s.ttft_s["p99"] <= 0.5 and s.tpot_s["p90"] <= 0.02)
    assert "joules_per_output_token" not in m


def test_a_missed_slo_that_is_not_checked_per_request_zeroes_goodput():
    study = sim_study(slo={"tpot_p90_s": 0.02, "ttft_s": 1e-6},
                      space={"model": "llama-3.1-8b", "device": "h100-sxm", "max_batch": 8})
    (outcome,) = evaluator_for(study.context).evaluate(list(study.space.grid()))
    m = outcome.metrics
    assert m["ttft_s"] > 1e-6 and m["slo_met"] == 0.0
    assert m["slo_attainment"] > 0 and m["goodput_requests_per_s"] == 0 == m["goodput_tokens_per_s_per_device"]


def test_paged_kv_screen_lets_through_a_batch_that_only_a_reservation_could_not_hold():
    # 1024 x (512 + 128) tokens of KV (86 GB) do not fit beside Llama-3.1-8B on an L40S; one request does
    point = {"model": "llama-3.1-8b", "device": "l40s", "max_batch": 1024}
    study = sim_study(space=point)
    (static,) = StaticEvaluator(study.context).evaluate([point]).outcomes()
    assert static.status == "rejected" and "does not fit" in static.error
    (outcome,) = evaluator_for(study.context).evaluate([point])
    assert outcome.status == "ok" and outcome.metrics["devices"] == 1


def test_infeasible_points_are_rejected_before_any_simulation(db, count_simulations):
    study = sim_study(space={"model": "llama-3.1-70b", "device": ["h100-sxm", "l40s"], "tp": [1, 3]})
    with open_store(db, write=True) as store:
        p = run_study(study, store)
    assert (p.evaluated, p.rejected) == (4, 4) and count_simulations == []
    rows = stored(db, study.name)
    assert "does not divide" in by_config(rows, tp=3, device="l40s")[5]
    assert "does not fit in memory" in by_config(rows, tp=1, device="l40s")[5]


def test_static_slo_screen_rejects_hopeless_points_without_simulating(count_simulations):
    study = sim_study(slo={"tpot_p90_s": 0.0005}, options={"screen_slo_factor": 2})
    outcomes = evaluator_for(study.context).evaluate(list(study.space.grid()))
    assert [o.status for o in outcomes] == ["rejected"] * 4 and count_simulations == []
    assert all("static screen: tpot_p90_s" in o.error for o in outcomes)


def test_the_simulators_own_checks_reject_the_point():
    # a non-chunked scheduler prefills whole prompts: a 256-token step cap cannot take a 512-token prompt
    study = sim_study(space={"model": "llama-3.1-8b", "device": "h100-sxm", "scheduler": "continuous",
                             "max_prefill_tokens": [256, 1024]})
    small, large = evaluator_for(study.context).evaluate(list(study.space.grid()))
    assert small.status == "rejected" and "max_num_batched_tokens" in small.error
    assert large.status == "ok"
    assert large.metrics["ttft_p99_s"] == summarize(simulate(scenario(1, 16, policy="continuous",
                                                                      prefill_tokens=1024))).ttft_s["p99"]


def test_a_simulation_that_raises_is_recorded_as_failed(db, monkeypatch):
    real = sim.simulate

    def flaky(sc, *args, **kwargs):
        if sc.parallelism.tp == 2:
            raise RuntimeError("boom")
        return real(sc, *args, **kwargs)

    monkeypatch.setattr(sim, "simulate", flaky)
    study = sim_study()
    with open_store(db, write=True) as store:
        p = run_study(study, store)
    assert (p.evaluated, p.failed) == (4, 2)
    rows = stored(db, study.name)
    for r in rows:
        if json.loads(r[3])["tp"] == 2:
            assert r[2] == "failed" and r[4] is None and "RuntimeError: boom" in r[5]
        else:
            assert r[2] == "ok"


def test_capacity_search_reports_the_simulated_capacity_and_utilization():
    study = sim_study(space={"model": "llama-3.1-8b", "device": "h100-sxm", "max_batch": 64},
                      options={"capacity_search": True}, constraints=["utilization <= 1"])
    (outcome,) = evaluator_for(study.context).evaluate([{"model": "llama-3.1-8b", "device": "h100-sxm",
                                                         "max_batch": 64}])
    found = find_capacity(scenario(1, 64), start_rate=RATE)
    assert found.capacity_rps and outcome.metrics["slo_capacity_requests_per_s"] == found.capacity_rps
    assert outcome.metrics["utilization"] == RATE / found.capacity_rps
    at_rate = next(pt.summary for pt in found.points if pt.rate == RATE)
    assert outcome.metrics["ttft_p99_s"] == at_rate.ttft_s["p99"]


def test_one_and_two_workers_store_identical_results_and_a_rerun_evaluates_nothing(tmp_path):
    study = sim_study(space={"model": "llama-3.1-8b", "device": ["h100-sxm", "l40s"], "tp": [1, 2, 3],
                             "max_batch": [8, 64]})
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    with open_store(one, write=True) as store:
        run_study(study, store, InlineBackend())
    with open_store(two, write=True) as store, LocalBackend(workers=2) as backend:
        first = run_study(study, store, backend)
        again = run_study(study, store, backend)
    assert (first.evaluated, first.rejected) == (12, 4)
    assert (again.evaluated, again.cached) == (0, 12)
    assert stored(one, study.name) == stored(two, study.name)
    assert {r[2] for r in stored(one, study.name)} == {"ok", "rejected"}


def test_example_study_runs_from_the_command_line_and_resumes(tmp_path, monkeypatch):
    from infersim.cli.app import InfersimGroup
    from infersim.cli.search_cmd import search_cmd

    monkeypatch.chdir(tmp_path)
    cli = InfersimGroup(commands={"search": search_cmd})
    args = ["search", str(EXAMPLE), "--budget", "6", "--workers", "1", "--no-progress", "--db", "r.duckdb"]
    first = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "6 evaluated now" in " ".join(first.output.split())
    again = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert "0 evaluated now" in " ".join(again.output.split())
    study = load_study(EXAMPLE)
    assert study.context.kind == "simulation" and 24 <= study.trial_budget() <= 64


def test_options_and_knobs_are_checked_at_load():
    def fails(field, *words, **changes):
        with pytest.raises(ConfigError) as err:
            sim_study(**changes)
        assert err.value.field == field, str(err.value)
        for w in words:
            assert w in str(err.value), str(err.value)

    fails("evaluator.options.request", "unknown option", "requests", options={"request": 10})
    fails("evaluator.options.requests", "greater than or equal", options={"requests": 0})
    fails("evaluator.options.arrival", "unknown kind 'bursty'", options={"arrival": "bursty"})
    fails("evaluator.options.arrival_cv", "gamma", options={"arrival": "gamma"})
    fails("evaluator.options.length_sigma", "greater than or equal", options={"length_sigma": -1})
    fails("evaluator.options.screen_slo_factor", ">= 1", options={"screen_slo_factor": 0.5})
    fails("evaluator.options.capacity_search", "percentile SLO", options={"capacity_search": True}, slo={})
    fails("space.scheduler", "'sarathi'", space={"model": "llama-3.1-8b", "device": "h100-sxm",
                                                 "scheduler": ["chunked", "sarathi"]})
    fails("objectives.0", "no energy model", objectives=[{"min": "joules_per_output_token"}])
    fails("constraints.0", "capacity_search", constraints=["utilization <= 1"])
    # an SLO at another percentile is a metric of its own, computed by the simulator
    study = sim_study(slo={"ttft_p95_s": 1.0}, space={"model": "llama-3.1-8b", "device": "h100-sxm", "max_batch": 8})
    (outcome,) = evaluator_for(study.context).evaluate(list(study.space.grid()))
    req = simulate(scenario(1, 8)).requests
    assert outcome.metrics["ttft_p95_s"] == pytest.approx(np.percentile(req["first_token_s"] - req["arrival_s"], 95),
                                                          rel=1e-12)

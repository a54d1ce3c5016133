"""MoE routing models (infersim.perf.routing): hand cases and the power-law generator's statistics."""

from __future__ import annotations

import numpy as np
import pytest

from infersim.errors import InfersimError
from infersim.models import get_model
from infersim.perf.graph import GraphOptions, build_step_graph
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.routing import (
    ROUTINGS,
    BalancedRouting,
    PowerLawRouting,
    UniformRouting,
    max_expert_load_factor,
    parse_routing,
    power_law_table,
)
from infersim.perf.shape import StepShape


def test_max_expert_load_factor_hand_cases():
    # balanced: every expert the same load -> 1
    assert max_expert_load_factor([16, 16, 16, 16, 16, 16, 16, 16], top_k=2) == 1.0
    # one expert takes every token (64 tokens, top-2 of 8: 128 assignments, mean 16): a token picks
    # an expert once, so the busiest expert holds at most the 64 tokens -> E / k = 4
    assert max_expert_load_factor([128, 0, 0, 0, 0, 0, 0, 0], top_k=2) == pytest.approx(8 / 2)
    assert max_expert_load_factor([64, 64, 0, 0, 0, 0, 0, 0], top_k=2) == pytest.approx(4.0)
    # a computed case: loads 40, 24, 16, 16, 8, 8, 8, 8 (128 in all, mean 16) -> 40 / 16
    assert max_expert_load_factor([40, 24, 16, 16, 8, 8, 8, 8], top_k=2) == pytest.approx(2.5)


def test_every_registered_routing_keeps_the_contract():
    tokens = np.array([0.0, 1.0, 7.0, 64.0, 4096.0])
    for name, cls in ROUTINGS.items():
        model = cls()
        for ep in (1, 4, 8):
            loads = model.loads(tokens, 2, 8, ep)
            assert loads.rank_factor.shape == tokens.shape and loads.active_local.shape == tokens.shape, name
            # the busiest rank holds at least the mean and at most everything
            assert np.all(loads.rank_factor >= 1.0 - 1e-12) and np.all(loads.rank_factor <= ep + 1e-12), name
            assert np.all(loads.active_local >= 0) and np.all(loads.active_local <= 8 / ep + 1e-9), name
            assert loads.active_local[0] == 0.0, name  # no tokens, no experts


def test_balanced_routing_is_exact_shares():
    loads = BalancedRouting().loads(np.array([1.0, 3.0, 1000.0]), 2, 8, 4)
    assert np.all(loads.rank_factor == 1.0)
    # min(T k, E) distinct experts, spread over the 4 ranks
    assert loads.active_local == pytest.approx([2 / 4, 6 / 4, 8 / 4])


def test_uniform_routing_is_the_binomial_model():
    loads = UniformRouting().loads(np.array([1e9]), 2, 8, 8)
    assert loads.rank_factor[0] == pytest.approx(1.0, abs=1e-3)  # a large sample balances out
    assert loads.active_local[0] == pytest.approx(1.0)


def test_power_law_table_follows_the_generator_by_hand():
    # one rank: the busiest rank is the whole load
    _, rank, active, expert = power_law_table(8, 2, 1, 1.2)
    assert np.allclose(rank, 1.0)
    # one expert per rank: the busiest rank holds the busiest expert, so the two factors agree
    # (rank load / (T k / 8) = expert load / (T k / 8))
    log_t, rank8, _, expert8 = power_law_table(8, 2, 8, 1.2)
    assert np.allclose(rank8, np.maximum(expert8, 1.0), rtol=1e-9)
    # no expert above T: the factor never passes E / k = 4
    assert np.all(expert8 <= 4.0 + 1e-9)
    # the heavy tail: at 4,096 tokens a power law with alpha 1.2 on [1, 0.8 T] puts most of the
    # load on few experts (the draws' largest share is typically 30-50 % of the assignments)
    at = np.interp(12.0, log_t, rank8)
    assert 2.0 < at < 4.0


def test_power_law_at_least_the_tokens_active_and_steeper_alpha_skews_less():
    # T k <= E: [0.01, 2] draws rounded and topped up to exactly T k assignments -> active
    # experts between 1 and T k
    _, _, active, _ = power_law_table(256, 8, 1, 1.2)
    assert 1.0 <= active[0] <= 8.0
    # a larger exponent concentrates the draws at the lower bound: closer to balanced
    t = np.array([2048.0])
    flat = PowerLawRouting(3.0).loads(t, 2, 8, 8).rank_factor[0]
    skewed = PowerLawRouting(1.01).loads(t, 2, 8, 8).rank_factor[0]
    assert flat < skewed


def test_parse_routing_names_and_errors():
    assert isinstance(parse_routing("uniform"), UniformRouting)
    assert isinstance(parse_routing("balanced"), BalancedRouting)
    assert parse_routing("power_law_1.2") == PowerLawRouting(1.2)
    for bad in ("power_law", "power_law_x", "power_law_-1", "zipf"):
        with pytest.raises(InfersimError, match="routing"):
            parse_routing(bad)


def test_skewed_routing_slows_the_expert_gemms_of_an_ep_layout():
    model = get_model("mixtral-8x7b")
    shape = StepShape.uniform(model, prefill_seqs=np.array([4.0]), chunk=np.array([512.0]), past=np.array([0.0]))
    rows = {}
    for routing in ("balanced", "uniform", "power_law_1.2"):
        g = build_step_graph(model, Parallelism(tp=8, ep=8), Precision(), shape,
                             GraphOptions(moe_routing=routing))
        i = list(g.names).index("moe.experts.gate_up")
        rows[routing] = g.gemm_m[i, 0]
    # 2,048 tokens x top-2 over 8 ranks: exactly 512 rows balanced
    assert rows["balanced"] == pytest.approx(512.0)
    assert rows["balanced"] < rows["uniform"] < rows["power_law_1.2"] <= 2048.0


def test_routing_knob_in_estimate_scenario_and_study(tmp_path):
    """``--moe-routing`` (estimate, plan), ``parallelism.moe_routing`` (scenarios) and the
    evaluators' ``moe_routing`` option reach the step graph; bad names are one-line errors naming
    the field."""
    import json

    from click.testing import CliRunner

    from infersim.cli.main import cli
    from infersim.errors import ConfigError
    from infersim.search.evaluators.base import EvaluatorContext, check_option_keys
    from infersim.serving.scenario import validate_scenario as load_scenario_dict

    def prefill_s(routing):
        res = CliRunner().invoke(cli, ["estimate", "--model", "mixtral-8x7b", "--hardware", "h200", "--tp", "8",
                                       "--ep", "8", "--batch", "8", "--input", "2048", "--output", "8",
                                       "--moe-routing", routing, "--json"], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return json.loads(res.output)["prefill_s"]

    # 16k prompt tokens x top-2 over 8 EP ranks: the skewed router's busiest rank takes longer
    assert prefill_s("balanced") <= prefill_s("uniform") < prefill_s("power_law_1.2")
    base = {"name": "s", "model": "mixtral-8x7b", "hardware": "h200",
            "workload": {"requests": 4, "arrival": {"process": "offline"}, "input_tokens": {"dist": "fixed", "value": 8},
                         "output_tokens": {"dist": "fixed", "value": 2}}}
    ok = load_scenario_dict({**base, "parallelism": {"tp": 8, "ep": 8, "moe_routing": "power_law_1.2"}}, "s.yaml")
    assert ok.parallelism.moe_routing == "power_law_1.2"
    with pytest.raises(ConfigError, match="parallelism.moe_routing"):
        load_scenario_dict({**base, "parallelism": {"tp": 8, "moe_routing": "zipf"}}, "s.yaml")
    with pytest.raises(ConfigError, match="evaluator.options.moe_routing"):
        check_option_keys(EvaluatorContext(kind="static", options={"moe_routing": "power_law_0"}),
                          ("moe_routing",), "study.yaml")

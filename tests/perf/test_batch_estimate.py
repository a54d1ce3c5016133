"""The vectorized estimate against the exact one, and its quadrature and percentiles from first principles."""

import numpy as np
import pytest

from infersim.errors import InfersimError
from infersim.hardware import get_device
from infersim.models import get_model
from infersim.perf.batch_estimate import batch_estimate, sum_nodes
from infersim.perf.estimate import estimate, plan_prefill, step_costs
from infersim.perf.parallel import Parallelism, Precision
from infersim.perf.shape import StepShape

CASES = [
    ("llama-3.1-70b", "h200", Parallelism(4), Precision("fp8")),
    ("llama-3.1-8b", "h100-sxm", Parallelism(1), Precision()),
    ("mixtral-8x7b", "mi300x", Parallelism(2, 1, 2), Precision()),
    ("gemma-2-9b", "b200", Parallelism(1), Precision()),  # sliding-window layers
    ("deepseek-v3", "b200", Parallelism(8, 1, 8), Precision("fp8")),  # MLA + MoE
    ("llama-3.1-70b", "h100-sxm", Parallelism(4, 2), Precision(kv_cache="fp8")),  # pipeline
]
# (batch, input, output, max_prefill_tokens): one step, packed prompts, chunked prompts, 1 and 2 output tokens
SHAPES = np.array([[1, 128, 1, 8192], [4, 1024, 2, 256], [16, 4000, 300, 2048], [64, 512, 1000, 8192],
                   [256, 2048, 64, 1000], [3, 8000, 4096, 512], [7, 3000, 17, 4096], [100, 20000, 9, 3000]])


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_matches_estimate(case):
    """Fit and prefill/TTFT identical (to floating point); TPOT and what follows within 0.5 %
    (the quadrature; in practice ~1e-5)."""
    model, device, par, prec = get_model(case[0]), get_device(case[1]), case[2], case[3]
    b, i, o, c = SHAPES.T
    got = batch_estimate(model, device, par, prec, batch=b, input_tokens=i, output_tokens=o, max_prefill_tokens=c)
    for k in range(len(SHAPES)):
        if model.context_problem(int(i[k] + o[k])):  # estimate refuses what the model cannot hold
            with pytest.raises(InfersimError, match="max_position_embeddings"):
                estimate(model, device, par, prec, batch=int(b[k]), input_tokens=int(i[k]), output_tokens=int(o[k]))
            continue
        want = estimate(model, device, par, prec, batch=int(b[k]), input_tokens=int(i[k]), output_tokens=int(o[k]),
                        max_prefill_tokens=int(c[k]))
        assert bool(got.fits[k]) == want.fits
        assert got.kv_cache_bytes[k] == pytest.approx(want.memory.kv_cache_bytes, rel=1e-12)
        assert got.activation_bytes[k] == pytest.approx(want.memory.activation_bytes, rel=1e-12)
        if not want.fits:
            assert np.isnan(got.ttft_s[k])
            continue
        assert got.prefill_s[k] == pytest.approx(want.prefill_s, rel=1e-12)
        assert got.ttft_s[k] == pytest.approx(want.ttft_s, rel=1e-12)
        for name in ("tpot_s", "e2e_s", "output_tokens_per_s", "power_w_per_device", "joules_per_output_token",
                     "usd_per_million_output_tokens"):
            assert getattr(got, name)[k] == pytest.approx(getattr(want, name), rel=5e-3, abs=1e-15), name


def test_exact_when_the_decode_nodes_cover_every_step():
    model, device = get_model("llama-3.1-8b"), get_device("h100-sxm")
    got = batch_estimate(model, device, batch=32, input_tokens=700, output_tokens=200, decode_nodes=201)
    want = estimate(model, device, batch=32, input_tokens=700, output_tokens=200)
    assert got.tpot_s[0] == pytest.approx(want.tpot_s, rel=1e-12)
    assert got.joules_per_output_token[0] == pytest.approx(want.joules_per_output_token, rel=1e-12)


def test_ttft_percentiles_are_nearest_rank_over_the_batch():
    """Brute force: cost each planned prefill step, list every request's finish time, take percentiles."""
    model, device = get_model("llama-3.1-8b"), get_device("h100-sxm")
    for batch, inp, cap in [(37, 1000, 4096), (9, 5000, 2048), (5, 100, 8192), (64, 512, 1024)]:
        plan = plan_prefill(batch, inp, cap)
        shape = StepShape.uniform(model, prefill_seqs=plan.seqs, chunk=plan.chunk, past=plan.past,
                                  decode_seqs=0, decode_context=0)
        step = step_costs(model, device, Parallelism(), Precision(), shape)[1].step_time_s
        finish, clock = [], 0.0
        if inp <= cap:
            for seqs, reps, t in zip(plan.seqs, plan.repeats, step):
                for _ in range(int(reps)):
                    clock += t
                    finish += [clock] * int(seqs)
        else:
            per_prompt = step.sum()
            finish = [(r + 1) * per_prompt for r in range(batch)]
        got = batch_estimate(model, device, batch=batch, input_tokens=inp, output_tokens=4, max_prefill_tokens=cap)
        for name, q in (("ttft_p50_s", 0.5), ("ttft_p90_s", 0.9), ("ttft_p99_s", 0.99)):
            rank = int(np.ceil(q * batch)) - 1
            assert getattr(got, name)[0] == pytest.approx(finish[rank], rel=1e-12)
        assert got.ttft_s[0] == pytest.approx(np.mean(finish), rel=1e-12)
        assert got.prefill_s[0] == pytest.approx(finish[-1], rel=1e-12)


def test_sum_nodes_exact_for_short_sums_and_linear_functions():
    first, count = np.array([1.0, 10.0, 5.0, 3.0]), np.array([4, 0, 1000, 9])
    owner, x, w = sum_nodes(first, count, 9)

    def approx_sum(f):
        return np.bincount(owner, weights=w * f(x), minlength=4)

    def true_sum(f):
        return np.array([sum(f(np.arange(a, a + n, dtype=float))) for a, n in zip(first, count)])

    for f in (lambda t: 3.0 * t + 2.0, lambda t: np.ones_like(t)):
        assert approx_sum(f) == pytest.approx(true_sum(f), rel=1e-12)
    # curvature: exact for the short sums; the long one misses only the Euler-Maclaurin
    # derivative term (f'(b) - f'(a)) / 12 = 2 * 999 / 1e6 / 12 for this quadratic
    def f(t):
        return 1.0 + t / 1000.0 + (t / 1000.0) ** 2

    assert approx_sum(f)[[0, 1, 3]] == pytest.approx(true_sum(f)[[0, 1, 3]], rel=1e-12)
    assert true_sum(f)[2] - approx_sum(f)[2] == pytest.approx(2 * 999 / 1e6 / 12, rel=1e-6)
    with pytest.raises(ValueError):
        sum_nodes(first, count, 4)


def test_bad_input():
    model, device = get_model("llama-3.1-8b"), get_device("h100-sxm")
    with pytest.raises(InfersimError, match="batch must be >= 1"):
        batch_estimate(model, device, batch=[1, 0], input_tokens=10, output_tokens=10)
    with pytest.raises(InfersimError, match="tp"):
        batch_estimate(model, device, Parallelism(tp=3), batch=1, input_tokens=10, output_tokens=10)

"""The causal LM (SmolLM2-135M from its GGUF): tokenizer, RoPE, a plausible dense perplexity, sequential
compression on a two-layer slice, and the record it writes read back by estimate."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("gguf", reason="the compress extra (pip install 'infersim[compress]') is absent")
pytest.importorskip("tokenizers", reason="the compress extra (pip install 'infersim[compress]') is absent")
from .packages import require_smollm2  # noqa: E402

require_smollm2()

from infersim.cli.main import cli  # noqa: E402
from infersim.compress import CompressionSpec, _load_causal, dense_causal, run_compression  # noqa: E402
from infersim.compress.causal import perplexity, rope  # noqa: E402
from infersim.compress.data import causal_split, passages  # noqa: E402
from infersim.compress.models import PACKAGED_MODELS, model_dir  # noqa: E402
from infersim.errors import InfersimError  # noqa: E402

GGUF = str(model_dir("smollm2") / PACKAGED_MODELS["smollm2"].weights_file)


def test_tokenizer_built_from_the_gguf_round_trips_and_splits_digits():
    _, tok = _load_causal(GGUF)
    for text in passages()[:5] + ["Hello world, 2024 is here."]:
        assert tok.decode(tok.encode(text).ids) == text
    assert tok.encode("2024").tokens == ["2", "0", "2", "4"]  # SmolLM2 splits every digit
    assert len(tok.get_vocab()) == 49152


def test_rope_rotates_pairs_and_depends_on_relative_position_only():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 1, 1, 64)).astype(np.float32)
    k = rng.standard_normal((1, 1, 1, 64)).astype(np.float32)
    seq = 40
    qs, ks = rope(np.repeat(q, seq, axis=2), 1e4), rope(np.repeat(k, seq, axis=2), 1e4)
    # a rotation keeps every pair's norm
    pairs = lambda x: np.hypot(x[..., 0::2], x[..., 1::2])  # noqa: E731
    assert np.allclose(pairs(qs), pairs(np.repeat(q, seq, axis=2)), rtol=1e-5)
    # <R_i q, R_j k> depends on i - j only
    dots = (qs[0, 0] @ ks[0, 0].T)
    assert np.isclose(dots[10, 3], dots[30, 23], rtol=1e-4) and np.isclose(dots[5, 5], dots[39, 39], rtol=1e-4)
    # position 0 is the identity
    assert np.array_equal(qs[0, 0, 0], q[0, 0, 0])


def test_dense_perplexity_on_held_out_english_is_plausible():
    """SmolLM2-135M (Q4_1) on 256-token windows of Python's reference docs: a working forward gives a
    perplexity of order 10-30 (a broken one gives hundreds or thousands); swapping the RoPE pair layout
    to the half-split one, which the GGUF's permuted Q/K rows do not use, must make it clearly worse."""
    lm, cal, ev, ppl = dense_causal(GGUF, 1, 1, None)
    assert 5.0 < ppl < 40.0
    import infersim.compress.causal as causal

    def half_split(x, base):
        d = x.shape[-1]
        perm = np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])
        inv = np.argsort(perm)
        return rope(x[..., inv], base)[..., perm]

    original = causal.rope
    causal.rope = half_split
    try:
        wrong = perplexity(lm, ev)
    finally:
        causal.rope = original
    assert wrong > 1.5 * ppl


def test_calibration_and_evaluation_windows_come_from_disjoint_halves():
    _, tok = _load_causal(GGUF)
    cal, ev = causal_split(tok, 3, 3, seq_len=64)
    assert cal.shape == (3, 64) and ev.shape == (3, 64)
    cal_text, ev_text = tok.decode(cal.reshape(-1).tolist()), tok.decode(ev.reshape(-1).tolist())
    assert cal_text[:200] not in ev_text and ev_text[:200] not in cal_text
    with pytest.raises(InfersimError, match="calibration text too short"):
        causal_split(tok, 100_000, 1)


def test_sequential_compression_of_two_layers_keeps_2_of_4_and_orders_the_methods():
    spec = CompressionSpec(n=2, m=4)
    runs = {m: run_compression("smollm2", m, spec, calib=2, evaluation=1, num_layers=2)
            for m in ("magnitude", "wanda", "sparsegpt")}
    for run in runs.values():
        assert len(run.layers) == 14  # 2 layers x 7 linears
        for name, part in run.parts.items():
            assert (part.mask.reshape(part.mask.shape[0], -1, 4).sum(axis=2) == 2).all(), name
        rec = run.record
        assert rec.kind == "causal" and rec.cosine_similarity is None
        assert rec.quality_delta == pytest.approx(rec.perplexity_compressed - rec.perplexity_dense)
    err = {m: r.record.mean_relative_error for m, r in runs.items()}
    assert err["magnitude"] > err["wanda"] > err["sparsegpt"]


def test_compress_writes_a_record_that_estimate_reads_as_measured_here(tmp_path):
    res = CliRunner().invoke(cli, ["compress", "--model", "smollm2", "--method", "sparsegpt", "--sparsity", "2:4",
                                   "--bits", "4", "--layers", "1", "--calib", "1", "--eval", "1", "-o",
                                   str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "perplexity" in res.output
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["n"] == 2 and record["m"] == 4 and record["bits"] == 4 and record["kind"] == "causal"

    def est(*args):
        out = CliRunner().invoke(cli, ["estimate", "--json", *args])
        assert out.exit_code == 0, out.output
        return json.loads(out.output)

    plain = est()
    measured = est("--accuracy-record", str(tmp_path / "record.json"))
    explicit = est("--transform", "quant=w4a16,zero_points=true", "--transform", "sparsity=2:4")
    # the record's shape is 2:4 + int4 g128 with zero points: the same prediction as those transforms
    assert measured["output_tokens_per_s"] == pytest.approx(explicit["output_tokens_per_s"], rel=1e-12)
    assert measured["output_tokens_per_s"] > plain["output_tokens_per_s"]
    costs = [t["accuracy"] for t in measured["transforms"]]
    assert all(c["measured"] for c in costs)
    assert sum(c["delta"] for c in costs) == pytest.approx(record["perplexity_compressed"]
                                                           - record["perplexity_dense"])
    text = CliRunner().invoke(cli, ["estimate", "--accuracy-record", str(tmp_path / "record.json")]).output
    assert "measured here" in text

    # a search study reads the record as a knob, next to published costs of other transforms
    from infersim.search.evaluators import EvaluatorContext, StaticEvaluator

    def point(cfg):
        ev = StaticEvaluator(EvaluatorContext(kind="static", workload={"input_tokens": 512, "output_tokens": 64}))
        (out,) = ev.evaluate([{"model": "llama-3.1-8b", "device": "h100-sxm", "max_batch": 8, **cfg}]).outcomes()
        return out

    rec_point = point({"transform.record": str(tmp_path / "record.json"), "transform.kvquant": "fp8",
                       "transform.kvquant.accuracy_delta": 0.25})
    same = point({"transform.sparsity": "2:4", "transform.quant": "w4a16", "transform.quant.zero_points": True,
                  "transform.kvquant": "fp8", "transform.kvquant.accuracy_delta": 0.25})
    assert rec_point.metrics["tpot_s"] == pytest.approx(same.metrics["tpot_s"], rel=1e-12)
    assert rec_point.metrics["accuracy_delta"] == pytest.approx(
        record["perplexity_compressed"] - record["perplexity_dense"] + 0.25)
    clash = point({"transform.record": str(tmp_path / "record.json"), "transform.sparsity": "2:4"})
    assert clash.status == "rejected" and "transform.record" in clash.error


@pytest.mark.parametrize("edit, words", [
    ({"bits": 3}, "bits"),
    ({"source": "Neural Magic"}, "measured here"),
    ({"sparsity": 1.5}, "sparsity"),
])
def test_a_bad_record_is_a_one_line_error(tmp_path, edit, words):
    record = {"model": "smollm2", "method": "wanda", "setting": "50%", "sparsity": 0.5, "bits": None,
              "group_size": 128, "lowrank": 0.0, "n": None, "m": None, "quality_metric": "perplexity increase",
              "quality_delta": 1.0, "date": "2026-12-05", "source": "measured here (infersim compress)", **edit}
    path = tmp_path / "record.json"
    path.write_text(json.dumps(record))
    res = CliRunner().invoke(cli, ["estimate", "--accuracy-record", str(path)])
    assert res.exit_code != 0 and words in res.output and "Traceback" not in res.output
    assert str(path) in res.output

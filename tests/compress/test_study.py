"""compress-study on a one-layer slice: points in the results database with measured quality beside the
cost model's speed, and the Pareto front checked against the definition of dominance."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("gguf", reason="the compress extra (pip install 'infersim[compress]') is absent")
pytest.importorskip("duckdb", reason="the search extra (pip install 'infersim[search]') is absent")
from .packages import require_smollm2  # noqa: E402

require_smollm2()

from infersim.cli.main import cli  # noqa: E402
from infersim.search.compress_study import load_compress_study  # noqa: E402
from infersim.search.pareto import dominates  # noqa: E402
from infersim.search.store import open_store  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "compress" / "smollm2-study.yaml"
TINY = {"name": "tiny", "model": "smollm2", "calib": 1, "eval": 1, "layers": 1,
        "methods": ["magnitude", "sparsegpt", "gptq"], "sparsity": ["2:4", "0"], "bits": [None, 4],
        "deployment": {"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": 8, "input": 512, "output": 64}}


def write(tmp_path, data) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_example_study_loads():
    spec = load_compress_study(EXAMPLE)
    assert spec.model == "smollm2" and spec.methods == ["wanda", "sparsegpt"] and spec.bits == [None, 4]


def test_study_stores_quality_beside_predicted_speed_and_prints_the_front(tmp_path):
    db = tmp_path / "r.duckdb"
    res = CliRunner().invoke(cli, ["compress-study", str(write(tmp_path, TINY)), "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    points = json.loads(res.output)
    # grid: magnitude / sparsegpt x {2:4, 0} x {none, 4}, less the no-op (0, none); gptq only with bits and
    # no sparsity; plus the uncompressed baseline
    settings = sorted((p["config"]["method"], p["config"]["setting"]) for p in points)
    assert settings == sorted([("none", "dense"), ("magnitude", "2:4"), ("magnitude", "2:4 + int4 g128"),
                               ("magnitude", "dense + int4 g128"), ("sparsegpt", "2:4"),
                               ("sparsegpt", "2:4 + int4 g128"), ("sparsegpt", "dense + int4 g128"),
                               ("gptq", "dense + int4 g128")])
    for p in points:
        m = p["metrics"]
        if p["config"]["method"] != "none":
            assert m["quality_delta"] == pytest.approx(m["perplexity_compressed"] - m["perplexity_dense"])
    # the front by the definition: not dominated by any other point in (min quality_delta, max tokens/s)
    values = [(p["metrics"]["quality_delta"], p["metrics"]["output_tokens_per_s"]) for p in points]
    for p, v in zip(points, values):
        dominated = any(dominates(o, v, ["min", "max"]) for o in values if o != v)
        assert p["front"] == (not dominated)
    # every point in the database, with its metrics
    with open_store(db) as store:
        rows = store.load("tiny")
    assert len(rows) == len(points)
    stored = {json.loads(r[4])["setting"] + "/" + json.loads(r[4])["method"]: json.loads(r[5]) for r in rows}
    for p in points:
        got = stored[p["config"]["setting"] + "/" + p["config"]["method"]]
        assert got["output_tokens_per_s"] == pytest.approx(p["metrics"]["output_tokens_per_s"])
    # speed: 2:4 + int4 with the plain estimate's transforms gives the stored prediction
    est = CliRunner().invoke(cli, ["estimate", "--json", "--batch", "8", "--input", "512", "--output", "64",
                                   "--transform", "quant=w4a16,zero_points=true", "--transform", "sparsity=2:4"])
    expected = json.loads(est.output)["output_tokens_per_s"]
    sparse4 = [p for p in points if p["config"]["setting"] == "2:4 + int4 g128"]
    assert all(p["metrics"]["output_tokens_per_s"] == pytest.approx(expected, rel=1e-12) for p in sparse4)
    text = CliRunner().invoke(cli, ["compress-study", str(write(tmp_path, TINY)), "--db", str(db)]).output
    assert "Pareto front" in text and "skipped" in text
    # the results commands read the study like a search's, with its two objectives
    front = CliRunner().invoke(cli, ["results", "pareto", "tiny", "--db", str(db)])
    assert front.exit_code == 0, front.output
    assert "quality_delta" in front.output and "output_tokens_per_s" in front.output


@pytest.mark.parametrize("edit, words", [
    ({"bits": [3]}, "bits.0"),
    ({"methods": ["obs"]}, "methods.0"),
    ({"sparsity": ["4:4"]}, "sparsity.0"),
    ({"model": "gpt-5"}, "unknown packaged model"),
    ({"colour": "red"}, "colour"),
    ({"deployment": {"runtime": "tgi"}}, "deployment.runtime"),
])
def test_bad_study_file_is_a_one_line_error(tmp_path, edit, words):
    path = write(tmp_path, {**TINY, **edit})
    res = CliRunner().invoke(cli, ["compress-study", str(path), "--db", str(tmp_path / "r.duckdb")])
    assert res.exit_code != 0 and words in res.output and str(path) in res.output
    assert "Traceback" not in res.output

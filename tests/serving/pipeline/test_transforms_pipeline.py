"""Transforms on a pipeline's LLM engines: validated with the file, applied to that engine only."""

from pathlib import Path

import pytest
import yaml

from infersim.errors import ConfigError
from infersim.serving.pipeline.metrics import summarize_pipeline
from infersim.serving.pipeline.simulator import simulate_pipeline
from infersim.serving.pipeline.spec import load_pipeline

EXAMPLE = Path(__file__).parents[3] / "examples" / "disagg" / "pd_vs_colocated.yaml"


def _write(tmp_path, decode_transforms):
    data = yaml.safe_load(EXAMPLE.read_text())
    data["engines"]["decode"]["transforms"] = decode_transforms
    data["workload"]["requests"] = 120
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_engine_transforms_change_only_that_engine(tmp_path):
    plain = summarize_pipeline(simulate_pipeline(load_pipeline(_write(tmp_path, []))))
    spec = summarize_pipeline(simulate_pipeline(load_pipeline(
        _write(tmp_path, ["spec=eagle,alpha=0.8,gamma=4"]))))
    stage = {s["name"]: s for s in plain.to_dict()["stages"]}, {s["name"]: s for s in spec.to_dict()["stages"]}
    # prefill runs on another engine: unchanged; decode rounds emit E = 3.36 tokens per round
    assert stage[1]["prefill"]["time_s"]["mean"] == pytest.approx(stage[0]["prefill"]["time_s"]["mean"], rel=1e-12)
    assert stage[1]["decode"]["time_s"]["mean"] < stage[0]["decode"]["time_s"]["mean"] / 1.5


def test_bad_engine_transform_names_the_engine_field(tmp_path):
    with pytest.raises(ConfigError, match=r"engines\.decode\.transforms.*alpha: must be in \[0, 1\)"):
        load_pipeline(_write(tmp_path, ["spec=eagle,alpha=2"]))

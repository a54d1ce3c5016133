"""--transform on the commands, as a user types it: one error line naming the flag, JSON carrying
the transforms and their accuracy data, `infersim transforms` listing every registered one."""

import json

import pytest
from click.testing import CliRunner

from infersim.cli.main import cli
from infersim.perf.transforms import TRANSFORMS


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("args, needle", [
    (["estimate", "--transform", "warp=9"], "--transform[0] 'warp=9': unknown transform 'warp'"),
    (["estimate", "--transform", "spec=eagle,alpha=1"], "alpha: must be in [0, 1), got 1.0"),
    (["estimate", "--transform", "sparsity=4:2"], "pattern: N:M needs 0 < N < M, got 4:2"),
    (["estimate", "-H", "tpu-v5e", "--transform", "sparsity=2:4,kernel=tensor-core"],
     "device 'tpu-v5e' declares no 2:4 sparse peak"),
    (["simulate", "-n", "5", "--transform", "quant=w5a16"], "scheme: expected one of"),
])
def test_bad_transform_is_one_line_naming_the_flag(args, needle):
    res = run(*args)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "--transform" in lines[0] and needle in lines[0]


def test_estimate_json_carries_transforms_and_accuracy():
    res = run("estimate", "--batch", "1", "--output", "32", "--transform", "quant=w4a16",
              "--transform", "spec=eagle,alpha=0.5,gamma=4", "--json")
    assert res.exit_code == 0
    data = json.loads(res.output)
    assert [t["spec"] for t in data["transforms"]] == ["quant=w4a16", "spec=eagle,alpha=0.5"]
    assert data["transforms"][0]["accuracy"]["published"] is True
    assert data["tokens_per_round"] == pytest.approx(1.9375)  # (1 - 0.5^5) / 0.5


def test_transforms_command_lists_every_registered_transform():
    res = CliRunner().invoke(cli, ["transforms"], catch_exceptions=False, terminal_width=400)
    assert res.exit_code == 0
    for key in TRANSFORMS:
        assert key in res.output

"""Long commands show a rich progress bar with an ETA on a terminal (stderr), and nothing of it
when stderr is not a terminal or with --json."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from rich.console import Console

from infersim.cli import progress as progress_mod
from infersim.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def terminal(monkeypatch):
    """stderr as a terminal: the bar draws into this buffer."""
    buf = io.StringIO()
    monkeypatch.setattr(progress_mod, "err_console", Console(file=buf, force_terminal=True, width=160))
    return buf


def test_progress_reporter_counts_steps_and_shows_an_eta(terminal):
    with progress_mod.progress_reporter("work") as progress:
        progress("first", 1, 3)
        progress("second", 2)  # the total stays as given
    text = terminal.getvalue()
    assert "work" in text and "2/3" in text and "ETA" in text and "second" in text


def test_sweep_rate_draws_a_bar_with_eta_on_a_terminal(terminal, monkeypatch):
    from infersim.cli import simulate_cmd

    monkeypatch.setattr(simulate_cmd, "err_console", progress_mod.err_console)
    res = run("sweep-rate", "--rates", "4,8", "-n", 60)
    assert res.exit_code == 0, res.output
    text = terminal.getvalue()
    assert "sweep-rate" in text and "2/2" in text and "ETA" in text


def test_no_bar_off_a_terminal_or_with_json(terminal, monkeypatch):
    from infersim.cli import simulate_cmd

    monkeypatch.setattr(simulate_cmd, "err_console", progress_mod.err_console)
    res = run("sweep-rate", "--rates", "4,8", "-n", 60, "--json")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["points"] and terminal.getvalue() == ""
    # a pipe: the study prints its steps as plain lines, never a bar
    plain = io.StringIO()
    monkeypatch.setattr(progress_mod, "err_console", Console(file=plain, force_terminal=False))
    with progress_mod.progress_reporter("work") as progress:
        progress("a step", 1, 2)
    assert "a step" in plain.getvalue() and "ETA" not in plain.getvalue()


def test_calibration_reports_each_stage(terminal):
    pytest.importorskip("scipy", reason="calibration needs scipy (pip install 'infersim[fidelity]')")
    from infersim.fidelity.calibrate import calibrate
    from infersim.fidelity.stages import CALIBRATION_STAGES as STAGES
    from infersim.hardware import get_device
    from tests.fidelity.synth import TRUE_GEMM, gemm_rows, synthetic

    seen = []
    table, _ = synthetic(gemm_rows(), TRUE_GEMM)
    calibrate(table, get_device("h100-sxm"), max_rows=200, progress=lambda m, d, t: seen.append((d, t)))
    assert seen == [(i, len(STAGES)) for i in range(len(STAGES) + 1)]

"""Killing a 2-worker search (SIGTERM, SIGINT, SIGKILL) leaves no process behind, and an
interrupted run keeps what it had stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

duckdb = pytest.importorskip("duckdb")

ROOT = Path(__file__).resolve().parents[2]
STUDY = """\
name: slow
workload: {input_tokens: 512, output_tokens: 128, rate_rps: 4}
evaluator: {kind: simulation, options: {requests: 3000, length_sigma: 0.5, seed: 0}}
space:
  model: llama-3.1-8b
  device: [h100-sxm, l40s, h200, a100-sxm-80gb]
  tp: [1, 2]
  replicas: [1, 2]
  max_batch: [16, 64, 256]
slo: {ttft_p99_s: 1.0, tpot_p90_s: 0.050}
objectives: [{min: usd_per_million_output_tokens}]
optimizer: grid
"""


def _children() -> dict[int, int]:
    """pid -> parent pid of every process on the machine (Linux /proc)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(entry)] = int(fields[1])
    return out


def _descendants(root: int) -> set[int]:
    parents = _children()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"  # a zombie has exited


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_killing_a_two_worker_search_leaves_no_process(tmp_path, sig):
    study = tmp_path / "slow.yaml"
    study.write_text(STUDY)
    db = tmp_path / "r.duckdb"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "infersim.cli.main", "search", str(study), "--workers", "2",
                             "--db", str(db), "--no-progress"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while time.monotonic() < deadline:  # forkserver + 2 workers (+ the resource tracker)
            workers = _descendants(proc.pid)
            if len(workers) >= 3:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        assert len(workers) >= 3, f"the pool did not start: {workers}"
        time.sleep(1.0)
        workers = _descendants(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        survivors = [p for p in workers if _alive(p)]
        assert not survivors, f"{sig.name}: processes left behind: {survivors}"
        if sig != signal.SIGKILL:
            assert proc.returncode in (130, 128 + sig), proc.stderr.read().decode()
            assert "Traceback" not in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


RESUMABLE = (STUDY.replace("requests: 3000", "requests: 2500").replace("max_batch: [16, 64, 256]", "max_batch: [32, 256]")
             .replace("[h100-sxm, l40s, h200, a100-sxm-80gb]", "[h100-sxm, l40s]"))  # 16 points


def _stored(db: Path) -> dict[str, float]:
    from infersim.search import open_store

    with open_store(db) as store:
        keys, _, _, cols = store.load_columns("slow", ["usd_per_million_output_tokens"])
    return dict(zip(keys, cols["usd_per_million_output_tokens"].tolist()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_an_interrupted_search_keeps_its_points_and_a_rerun_resumes(tmp_path, sig):
    """Signal a 2-worker search once the database has committed points: the stored rows survive,
    no worker survives, and the re-run evaluates only what is missing."""
    study = tmp_path / "slow.yaml"
    study.write_text(RESUMABLE)
    db = tmp_path / "r.duckdb"
    wal = tmp_path / "r.duckdb.wal"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    args = [sys.executable, "-m", "infersim.cli.main", "search", str(study), "--workers", "2", "--db", str(db),
            "--no-progress"]
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (wal.exists() and wal.stat().st_size > 4096):
            assert proc.poll() is None, proc.stderr.read().decode()  # the results are committed ~ every second
            time.sleep(0.1)
        workers = _descendants(proc.pid)
        assert proc.poll() is None, "the search finished before it could be interrupted"
        proc.send_signal(sig)
        proc.wait(timeout=60)
        assert proc.returncode in (130, 128 + sig), proc.stderr.read().decode()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        assert not [p for p in workers if _alive(p)], f"{sig.name}: processes left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    before = _stored(db)
    total = 16
    assert 1 <= len(before) < total, f"{len(before)} points stored"
    rerun = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    line = " ".join(rerun.stdout.split())
    assert f"{total} trials, {total - len(before)} evaluated now" in line, line
    assert f"{len(before)} already in" in line, line
    after = _stored(db)
    assert len(after) == total
    assert all(after[k] == v or (v != v and after[k] != after[k]) for k, v in before.items())  # untouched

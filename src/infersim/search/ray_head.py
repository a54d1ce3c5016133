"""A local Ray cluster head as a child process (``ray start --head --block``), for the tests and the
benchmark that run studies with ``--backend ray --address HOST:PORT``.

Stopping it ends only the processes this head started (SIGTERM to the blocking ``ray start``,
which takes its node's processes down with it), never other Ray sessions on the machine."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import InfersimError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_cli() -> list[str]:
    exe = shutil.which("ray", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if exe is None:
        raise InfersimError("the 'ray' command was not found: pip install 'infersim[ray]'")
    return [exe]


@contextmanager
def local_ray_head(num_cpus: int = 2, env: dict | None = None, timeout_s: float = 180.0) -> Iterator[str]:
    """Start a one-node Ray cluster with ``num_cpus`` CPUs; yields its address ``127.0.0.1:PORT``.

    ``env`` is added to the environment of the head and so of its workers (e.g. a PYTHONPATH
    holding infersim when it is not installed)."""
    port = _free_port()
    cmd = [*_ray_cli(), "start", "--head", "--block", f"--port={port}", f"--num-cpus={num_cpus}",
           "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})},
                            start_new_session=True)
    lines: list[str] = []
    started = threading.Event()

    def drain() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                started.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    try:
        while not started.wait(0.2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise InfersimError("ray start --head failed:\n" + "".join(lines[-20:]))
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the group of the head we started, nothing else
                proc.wait()

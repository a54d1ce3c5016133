"""Regenerate tests/data/fidelity/sample.parquet from the installed aiconfigurator-core.

    python tests/fidelity/make_sample.py

Deterministic: per (device, op) it keeps the PLAIN_PER_GROUP plain rows and the
VARIANT_PER_GROUP variant rows with the smallest stable row hash (seed SAMPLE_SEED).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from infersim.fidelity.aic_tables import load_aiconfigurator
from infersim.fidelity.measurements import KEY_COLUMNS, hash_rows

DEVICES = ("h100-sxm", "b200")
PLAIN_PER_GROUP = 14
VARIANT_PER_GROUP = 3
SAMPLE_SEED = 20240607
OUT = Path(__file__).resolve().parents[1] / "data" / "fidelity" / "sample.parquet"


def build_sample() -> pa.Table:
    table = load_aiconfigurator(devices=DEVICES, include_variants=True)
    h = hash_rows(table, KEY_COLUMNS, seed=SAMPLE_SEED)
    device = np.asarray(table.column("device").to_pylist(), dtype=object)
    op = np.asarray(table.column("op").to_pylist(), dtype=object)
    plain = np.asarray(table.column("variant").to_pylist(), dtype=object) == ""
    keep: list[int] = []
    for dev in DEVICES:
        for name in sorted(set(op[device == dev])):
            for is_plain, count in ((True, PLAIN_PER_GROUP), (False, VARIANT_PER_GROUP)):
                idx = np.flatnonzero((device == dev) & (op == name) & (plain == is_plain))
                keep.extend(idx[np.argsort(h[idx], kind="stable")[:count]].tolist())
    sample = table.take(pa.array(sorted(keep)))
    meta = {b"aiconfigurator_core_version": importlib.metadata.version("aiconfigurator-core").encode()}
    return sample.replace_schema_metadata(meta)


if __name__ == "__main__":
    sample = build_sample()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(sample, OUT)
    print(f"wrote {sample.num_rows} rows to {OUT}")

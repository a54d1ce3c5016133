"""MoE kernels under skewed routing: measured (aiconfigurator-core) against the cost model with and
without the routing they were measured under.

aiconfigurator-core times every MoE shape under balanced routing and under two power-law routings
(``dist=power_law_1.01``, ``dist=power_law_1.2``). For each device this prints the MdAPE and median
signed error (bias > 0: predicted too slow) of the shipped profile on the test split (20 % of shapes
by hash, ``infersim.fidelity.metrics.three_way_split``), per routing, when every row is predicted

* as measured: each row with its own routing (``infersim.perf.routing``; what ``infersim fidelity``
  does),
* as uniform: the power-law rows as if each token picked its experts uniformly at random (the
  step graph's default, and how these rows were predicted before issue 17),
* as balanced: the power-law rows as if routing were perfectly balanced.

    python benchmarks/bench_moe_routing.py [--devices h100-sxm,h200] [--split test|validation|all]

The shipped profiles' MoE terms are fitted on all balanced rows, so only the power-law columns are
held out. Figures printed, never asserted.
"""

from __future__ import annotations

import argparse

import numpy as np
import pyarrow as pa

from infersim.fidelity import load_aiconfigurator
from infersim.fidelity.kernels import predict
from infersim.fidelity.aic_tables import ROUTING_VARIANTS
from infersim.fidelity.metrics import three_way_split
from infersim.hardware import get_device

ROUTINGS = ("",) + ROUTING_VARIANTS


def _as(table: pa.Table, routing: str | None) -> pa.Table:
    """``table`` with its power-law rows relabelled as ``routing`` (None: as measured)."""
    if routing is None:
        return table
    v = np.asarray(table.column("variant").to_numpy(zero_copy_only=False), dtype=object)
    new = np.where(np.isin(v, ROUTING_VARIANTS), routing, v)
    return table.set_column(table.column_names.index("variant"), "variant", pa.array(new.astype(str)))


def _cell(err: np.ndarray) -> str:
    if err.size == 0:
        return f"{'-':>16}"
    return f"{100 * np.median(np.abs(err)):6.1f}% ({100 * np.median(err):+5.1f}%)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="h100-sxm,h200,b200,gb200,l40s,a100-sxm-80gb")
    ap.add_argument("--split", default="test", choices=("test", "validation", "all"))
    args = ap.parse_args()
    print(f"{'device':14} {'predicted':12} " + " ".join(f"{(r or 'balanced'):>16}" for r in ROUTINGS)
          + f" {'all':>16}   (MdAPE (bias), {args.split} split)")
    for name in args.devices.split(","):
        table = load_aiconfigurator(devices=[name], ops=["moe"])
        if table.num_rows == 0:
            print(f"{name:14} no MoE rows")
            continue
        _, validation, test = three_way_split(table)
        keep = {"test": test, "validation": validation, "all": np.ones(table.num_rows, dtype=bool)}[args.split]
        variant = np.asarray(table.column("variant").to_numpy(zero_copy_only=False), dtype=object)
        meas = np.asarray(table.column("latency_s").to_numpy(), dtype=np.float64)
        device = get_device(name)
        for label, routing in (("as measured", None), ("as uniform", "dist=uniform"),
                               ("as balanced", "")):
            err = predict(_as(table, routing), device) / meas - 1.0
            ok = keep & np.isfinite(err)
            cells = [_cell(err[ok & (variant == r)]) for r in ROUTINGS]
            print(f"{name:14} {label:12} " + " ".join(cells) + f" {_cell(err[ok])}")
        print(f"{'':14} basis: {device.basis}")


if __name__ == "__main__":
    main()

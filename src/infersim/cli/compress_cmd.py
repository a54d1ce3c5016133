"""``infersim compress``: compress a packaged model's real weights and measure what it lost."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import Progress
from rich.table import Table

from .app import console, err_console


@click.command("compress")
@click.option("--model", default="all-minilm-l6-v2", show_default=True, help="a packaged model with real weights")
@click.option("--method", default="sparsegpt", show_default=True,
              type=click.Choice(["magnitude", "wanda", "sparsegpt", "gptq", "optima", "slim"]))
@click.option("--sparsity", default="0", show_default=True, help="fraction pruned (0.5, 50%) or N:M (2:4)")
@click.option("--bits", type=int, default=None, help="quantize the weights to this many bits (2, 3, 4, 8)")
@click.option("--group-size", type=int, default=128, show_default=True, help="input columns per quantization scale")
@click.option("--lowrank", type=float, default=0.0, show_default=True,
              help="low-rank adapters fitted to the error, rank as a fraction of the layer width (SLiM)")
@click.option("--calib", type=int, default=128, show_default=True, help="calibration passages (128 tokens each)")
@click.option("--eval", "evaluation", type=int, default=256, show_default=True, help="held-out evaluation passages")
@click.option("--report", is_flag=True, help="print the layer-by-layer reconstruction error")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="write model.safetensors, record.json and layers.csv here")
@click.option("--json", "as_json", is_flag=True, help="print the record as JSON")
def compress_cmd(model, method, sparsity, bits, group_size, lowrank, calib, evaluation, report, out, as_json):
    """Compress real weights on the CPU (one-shot, layer by layer) and measure the quality kept.

    Quality of the bundled sentence encoder: cosine similarity between dense and compressed embeddings of
    held-out passages of CPython's documentation, and agreement of their top-10 neighbours.
    """
    from ..compress import CompressionSpec, parse_sparsity, run_compression, write_outputs

    fraction, n, m = parse_sparsity(sparsity)
    spec = CompressionSpec(sparsity=fraction, n=n, m=m, bits=bits, group_size=group_size, lowrank=lowrank)
    with Progress(console=err_console, transient=True, disable=as_json) as progress:
        task = progress.add_task(f"{method} {spec.label()}", total=None)
        run = run_compression(model, method, spec, calib, evaluation,
                              on_layer=lambda i: progress.update(task, description=f"{method}: layer {i + 1} done"))
    rec = run.record
    if out is not None:
        write_outputs(out, run.encoder, run.parts, rec, run.layers)
    if as_json:
        click.echo(json.dumps({**rec.to_dict(), "layers": [l.__dict__ for l in run.layers]}, indent=2, default=list))
        return
    console.print(f"[bold]{model}[/bold]: {method}, {spec.label()} ({rec.calibration_passages} calibration / "
                  f"{rec.evaluation_passages} held-out passages, {rec.seconds:.1f} s)")
    if report:
        t = Table(title="Layer by layer: ||WX - W'X|| / ||WX|| on the calibration inputs", title_justify="left")
        for col in ("layer", "shape", "rel. error", "kept", "rank"):
            t.add_column(col, justify="left" if col == "layer" else "right")
        for r in run.layers:
            t.add_row(r.name, f"{r.shape[0]}x{r.shape[1]}", f"{r.relative_error:.4f}", f"{r.kept_fraction:.0%}",
                      str(r.rank))
        console.print(t)
    s = Table(show_header=False, title="Quality (measured here)", title_justify="left")
    s.add_column("measure")
    s.add_column("value", justify="right")
    s.add_row("embedding cosine similarity (dense = 1)", f"{rec.cosine_similarity:.4f}")
    s.add_row("top-10 retrieval agreement (dense = 1)", f"{rec.retrieval_agreement_at_10:.3f}")
    s.add_row("mean layer reconstruction error", f"{rec.mean_relative_error:.4f}")
    s.add_row("linear layers, fp16 dense", f"{rec.dense_linear_bytes / 1e6:.2f} MB")
    s.add_row("linear layers, compressed", f"{rec.compressed_linear_bytes / 1e6:.2f} MB "
                                           f"({rec.compressed_linear_bytes / rec.dense_linear_bytes:.0%})")
    console.print(s)
    if out is not None:
        console.print(f"wrote {out / 'model.safetensors'}, {out / 'record.json'}, {out / 'layers.csv'}")

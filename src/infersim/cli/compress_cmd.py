"""``infersim compress``: compress a packaged model's real weights and measure what it lost."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.progress import Progress
from rich.table import Table

from .app import console, err_console


@click.command("compress")
@click.option("--model", default="all-minilm-l6-v2", show_default=True,
              help="a packaged model with real weights: all-minilm-l6-v2 (encoder) or smollm2 (causal LM)")
@click.option("--method", default="sparsegpt", show_default=True,
              type=click.Choice(["magnitude", "wanda", "sparsegpt", "gptq", "optima", "slim"]))
@click.option("--sparsity", default="0", show_default=True, help="fraction pruned (0.5, 50%) or N:M (2:4)")
@click.option("--bits", type=int, default=None, help="quantize the weights to this many bits (2, 3, 4, 8)")
@click.option("--group-size", type=int, default=128, show_default=True, help="input columns per quantization scale")
@click.option("--lowrank", type=float, default=0.0, show_default=True,
              help="low-rank adapters fitted to the error, rank as a fraction of the layer width (SLiM)")
@click.option("--calib", type=int, default=None,
              help="calibration passages of 128 tokens (encoder, default 128) or windows of 256 tokens (causal LM, "
                   "default 8)")
@click.option("--eval", "evaluation", type=int, default=None,
              help="held-out passages (encoder, default 256) or windows (causal LM, default 8)")
@click.option("--layers", type=int, default=None, help="compress and evaluate only the first N layers (quick tries)")
@click.option("--report", is_flag=True, help="print the layer-by-layer reconstruction error")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="write model.safetensors, record.json and layers.csv here")
@click.option("--json", "as_json", is_flag=True, help="print the record as JSON")
def compress_cmd(model, method, sparsity, bits, group_size, lowrank, calib, evaluation, layers, report, out,
                 as_json):
    """Compress real weights on the CPU (one-shot, layer by layer) and measure the quality kept.

    Quality of the sentence encoder: cosine similarity between dense and compressed embeddings of held-out
    passages of CPython's documentation, and agreement of their top-10 neighbours. Quality of the causal LM
    (SmolLM2-135M, whose dense baseline is its Q4_1 checkpoint dequantized): held-out perplexity before and
    after.
    """
    from ..compress import PACKAGED_MODELS, CompressionSpec, parse_sparsity, run_compression, write_outputs

    causal = PACKAGED_MODELS.get(model) is not None and PACKAGED_MODELS[model].kind == "causal"
    calib = calib if calib is not None else (8 if causal else 128)
    evaluation = evaluation if evaluation is not None else (8 if causal else 256)
    if layers is not None and layers < 1:
        raise click.BadParameter(f"must be >= 1, got {layers}", param_hint="--layers")

    fraction, n, m = parse_sparsity(sparsity)
    spec = CompressionSpec(sparsity=fraction, n=n, m=m, bits=bits, group_size=group_size, lowrank=lowrank)
    with Progress(console=err_console, transient=True, disable=as_json) as progress:
        task = progress.add_task(f"{method} {spec.label()}", total=None)
        run = run_compression(model, method, spec, calib, evaluation, num_layers=layers,
                              on_layer=lambda i: progress.update(task, description=f"{method}: layer {i + 1} done"))
    rec = run.record
    if out is not None:
        write_outputs(out, run.encoder, run.parts, rec, run.layers)
    if as_json:
        click.echo(json.dumps({**rec.to_dict(), "layers": [l.__dict__ for l in run.layers]}, indent=2, default=list))
        return
    unit = "windows of 256 tokens" if causal else "passages"
    console.print(f"[bold]{model}[/bold]: {method}, {spec.label()} ({rec.calibration_passages} calibration / "
                  f"{rec.evaluation_passages} held-out {unit}, {rec.seconds:.1f} s)")
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
    if causal:
        s.add_row("held-out perplexity, dense (Q4_1 dequantized)", f"{rec.perplexity_dense:.3f}")
        s.add_row("held-out perplexity, compressed", f"{rec.perplexity_compressed:.3f}")
    else:
        s.add_row("embedding cosine similarity (dense = 1)", f"{rec.cosine_similarity:.4f}")
        s.add_row("top-10 retrieval agreement (dense = 1)", f"{rec.retrieval_agreement_at_10:.3f}")
    s.add_row("mean layer reconstruction error", f"{rec.mean_relative_error:.4f}")
    s.add_row("linear layers, fp16 dense", f"{rec.dense_linear_bytes / 1e6:.2f} MB")
    s.add_row("linear layers, compressed", f"{rec.compressed_linear_bytes / 1e6:.2f} MB "
                                           f"({rec.compressed_linear_bytes / rec.dense_linear_bytes:.0%})")
    console.print(s)
    if layers is not None:
        console.print(f"[yellow]note:[/yellow] --layers {layers}: quality of the first {layers} layers only (the "
                      "rest skipped), for quick tries; not the model's quality")
    if out is not None:
        console.print(f"wrote {out / 'model.safetensors'}, {out / 'record.json'}, {out / 'layers.csv'}")


@click.command("compress-study")
@click.argument("study_file", type=click.Path(path_type=Path))
@click.option("--db", default="infersim.duckdb", show_default=True, help="results database (DuckDB) to store into")
@click.option("--json", "as_json", is_flag=True, help="print every point as JSON")
def compress_study_cmd(study_file, db, as_json):
    """Sweep methods x sparsity x bits x rank: measured quality beside the cost model's predicted speed.

    Every point compresses the packaged model's real weights and measures what it lost; its compressed
    shape (sparsity pattern, bits, adapter rank) becomes transforms whose speed the cost model predicts
    for the study's deployment. Points go into the results database; the measured accuracy-speed Pareto
    front is printed.
    """
    from ..search.compress_study import load_compress_study, run_compress_study, store_compress_study

    spec = load_compress_study(study_file)
    with Progress(console=err_console, transient=True, disable=as_json) as progress:
        task = progress.add_task(f"compress-study {spec.name}", total=None)
        study = run_compress_study(spec, str(study_file), on_point=lambda p: progress.update(
            task, description=f"{p.config['method']} {p.config['setting']} done"))
    stored = store_compress_study(study, db)
    if as_json:
        click.echo(json.dumps([{"config": p.config, "metrics": p.metrics, "front": p.front} for p in study.points],
                              indent=2))
        return
    causal = any("perplexity_dense" in p.metrics for p in study.points)
    d = spec.deployment
    t = Table(title=f"{spec.name}: quality measured here on {spec.model}; speed predicted for {d.model} on "
                    f"{d.hardware} (tp={d.tp}, batch {d.batch}, {d.input} in / {d.output} out)", title_justify="left")
    for col in ("front", "method", "setting", "ppl after" if causal else "cosine", "quality delta", "layer error",
                "out tok/s", "speed-up", "bytes"):
        t.add_column(col, justify="left" if col in ("method", "setting") else "right")
    for p in sorted(study.points, key=lambda p: (not p.front, p.metrics["quality_delta"])):
        m = p.metrics
        quality = m.get("perplexity_compressed" if causal else "cosine_similarity")
        t.add_row("*" if p.front else "", p.config["method"], p.config["setting"],
                  "-" if quality is None else f"{quality:.3f}", f"{m['quality_delta']:+.4f}",
                  f"{m['mean_relative_error']:.4f}" if "mean_relative_error" in m else "-",
                  f"{m['output_tokens_per_s']:,.0f}", f"{m.get('speedup', 1.0):.2f}x",
                  f"{m['compressed_bytes_fraction']:.0%}" if "compressed_bytes_fraction" in m else "100%")
    console.print(t)
    quality_metric = "perplexity increase" if causal else "1 - embedding cosine"
    console.print(f"* = on the measured accuracy-speed Pareto front (min {quality_metric}, max output tokens/s); "
                  f"{stored} points stored in {db} (study '{spec.name}', evaluator 'compress')")
    for reason in study.skipped:
        console.print(f"[yellow]skipped:[/yellow] {reason}")

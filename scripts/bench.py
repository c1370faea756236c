"""Benchmark the training path against the notebook's loop, its speed tricks' simple versions and makemore.py:
a table per part and JSON (outputs/bench/bench.json). Parts (--only PART ...; default: all; `--only ab`: ~10 min):
  train   notebook MLP: the notebook's loop (notebook_loop.py) against train.py's path, autograd and model.backward=
          manual, interleaved; s/step, val loss
  ab      each speed trick against its simple version per model: interleaved in-process pairs, median time per
          optimizer step (the loop alone: metrics.json's steps_per_s), saving, keep if >= 5% on some model
  family  per model at makemore.py's defaults, ours against makemore.py's printed step times (--peer), interleaved
  data    setup time and peak RSS of a fresh process on 100x the data (the notebook's cell: 10x); training on 100x
  sample / fast   names/s of the notebook's sampling cell against generate; experiment=fast against 25% of 200k steps
"""

import argparse
import contextlib
import itertools
import json
import multiprocessing
import re
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from unittest import mock

import notebook_loop  # scripts/, this file's folder
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
THREADS = torch.get_num_threads()  # torch's default, restored before each in-process run
AB_MODELS = {"mlp": ("seed_11897", 2000), "gru": ("makemore_gru", 400), "transformer": ("makemore_transformer", 200)}
FAMILY = ["bigram", "mlp", "wavenet", "rnn", "gru", "lstm", "bow", "transformer"]
PEER_TYPES = {"bigram", "mlp", "rnn", "gru", "bow", "transformer"}  # the families makemore.py has
QUIET = [f"callbacks.progress_bar.{key}=1000000000" for key in ("refresh_rate", "every")] + ["print_config=false"]
PEER_STEP = re.compile(r"^step (\d+) \| loss [\d.]+ \| step time ([\d.]+)ms")


def run(data: Path, *overrides: str, steps: int | None = None, train_log: bool = False) -> dict:
    """An in-process run of train.py's code: its metrics.json, seconds per step, (train_log) train-loss log times."""
    from hydra import compose, initialize_config_dir
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from makemore.resolvers import register_resolvers
    from makemore.training.train import train

    register_resolvers()
    torch.set_num_threads(THREADS)  # a run that sets none must not inherit the previous run's
    length = [f"trainer.max_steps={steps}", f"val_every={steps}"] if steps else []
    with tempfile.TemporaryDirectory() as run_dir, initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        train(compose("train", [f"data.path={data}", *overrides, *length, *QUIET, f"run_dir={run_dir}"]))
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        if train_log:
            events = EventAccumulator(str(next(Path(run_dir, "tensorboard").rglob("events.out.tfevents.*")).parent))
            metrics["train_log"] = [(e.step, e.wall_time) for e in events.Reload().Scalars("train_loss")]
    return {**metrics, "s_per_step": 1 / metrics["steps_per_s"]}


def bench_train(args: argparse.Namespace, _: dict) -> dict:
    (xtr, ytr), (xval, yval), _ = notebook_loop.build_datasets(args.data.read_text().splitlines())
    out: dict = {"steps": args.steps, "repeats": args.repeats, "bare_runs": [], "project_runs": [], "manual_runs": []}
    for r in range(args.repeats):  # interleaved: both see the same state of the machine
        per_step, (C, W1, b1, W2, b2) = notebook_loop.train(xtr, ytr, args.steps)
        val = F.cross_entropy(torch.tanh(C[xval].view(-1, 30) @ W1 + b1) @ W2 + b2, yval).item()  # the notebook's
        m = run(args.data, "experiment=seed_11897", steps=args.steps)
        mm = run(args.data, "experiment=seed_11897", "model.backward=manual", steps=args.steps)  # hand-derived backward
        for side, x in (("bare", {"s_per_step": per_step, "val_loss": val}), ("project", m), ("manual", mm)):
            out[f"{side}_runs"].append({"s_per_step": x["s_per_step"], "val_loss": x["val_loss"]})
            print(f"  {r} {side}: {x['s_per_step'] * 1e6:.0f} us/step, val {x['val_loss']:.4f}", flush=True)
    for side in ("bare", "project", "manual"):
        out[f"{side}_us_per_step"] = statistics.median(x["s_per_step"] for x in out[f"{side}_runs"]) * 1e6
        out[f"{side}_val_loss"] = statistics.median(x["val_loss"] for x in out[f"{side}_runs"])
    bare = out["bare_us_per_step"]
    out["ratio"], out["manual_ratio"] = out["project_us_per_step"] / bare, out["manual_us_per_step"] / bare
    print("  median: bare {bare_us_per_step:.0f} us/step, ours {project_us_per_step:.0f}: {ratio:.2f}x, manual "
          "backward {manual_us_per_step:.0f}: {manual_ratio:.2f}x".format(**out))  # fmt: skip
    return out


def wrapped_step() -> contextlib.ExitStack:
    """The simple optimizer step: each makemore module that imported optim.unwrapped_step gets `optimizer.step`."""
    import makemore.training.train  # the modules that call it, imported

    stack, original = contextlib.ExitStack(), makemore.optim.unwrapped_step
    for name, module in list(sys.modules.items()):
        if name.startswith("makemore.") and vars(module).get("unwrapped_step") is original:
            stack.enter_context(mock.patch.object(module, "unwrapped_step", lambda optimizer: optimizer.step))
    return stack


def bench_ab(args: argparse.Namespace, _: dict) -> dict:
    from makemore.sampling import sample_next

    g, probs = torch.Generator().manual_seed(0), torch.softmax(torch.randn(10_000, 27), dim=-1)  # draws of 27 ids
    tricks = {  # trick: models, then the trick on and its simple version: (overrides, patch) of a run, or a draw
        "unwrapped optimizer step": (AB_MODELS, ([], None), ([], wrapped_step)),
        "one thread": (["mlp"], (["threads=1"], None), ([f"threads={max(2, THREADS)}"], None)),
        "multi-step path": (AB_MODELS, (["steps_per_call=100"], None), (["steps_per_call=1"], None)),
        "sample_next": (["10000x27"], lambda: sample_next(probs, g), lambda: torch.multinomial(probs, 1, generator=g)),
    }
    rows: list[dict] = []
    print(f"  {'trick':<26}{'model':<13}{'on (per step)':>15}{'off (per step)':>16}{'saving':>9}", flush=True)
    for trick, (models, *sides) in tricks.items():
        for model in models:
            times: tuple[list, list] = ([], [])
            for side in ([0, 1, 1, 0] * args.ab_pairs)[: 2 * args.ab_pairs]:  # pairs: neither side always first
                if callable(sides[side]):  # a draw: the median of 20, on one thread
                    torch.set_num_threads(1)
                    times[side].append(statistics.median(timeit.repeat(sides[side], number=1, repeat=20)) * 1e6)
                    continue
                (overrides, patch), (experiment, steps) = sides[side], AB_MODELS[model]
                with patch() if patch else contextlib.nullcontext():
                    m = run(args.data, f"experiment={experiment}", *overrides, steps=args.ab_steps or steps)
                times[side].append(m["s_per_step"] * 1e6)
            on, off = map(statistics.median, times)
            rows.append({"trick": trick, "model": model, "on_us": on, "off_us": off, "on_runs_us": times[0]})
            rows[-1].update(off_runs_us=times[1], saving_pct=100 - 100 * on / off)
        for r in (r for r in rows if r["trick"] == trick):
            r["keep"] = max(x["saving_pct"] for x in rows if x["trick"] == trick) >= 5  # on some model: it stays
            on_off = f"{r['on_us']:>12,.0f} us{r['off_us']:>13,.0f} us{r['saving_pct']:>8.1f}%"
            print(f"  {trick:<26}{r['model']:<13}{on_off}  {'keep' if r['keep'] else ''}", flush=True)
    return {"pairs": args.ab_pairs, "steps": {m: args.ab_steps or s for m, (_, s) in AB_MODELS.items()}, "rows": rows}


def family_step(args: argparse.Namespace, model: str, peer: Path | None = None) -> float:
    """Seconds per step from step 100 on (0-based) at makemore.py's defaults: of `peer` (its printed step times; its
    threads, no data workers, as its README runs it) or ours (intervals between train-loss logs, at steps 99, 199..)."""
    if peer is None:
        preset = [f"experiment=makemore_{model}"] if model in PEER_TYPES else [f"model={model}", "batch_size=32"]
        logs = run(args.data, *preset, "log_every=100", steps=args.family_steps, train_log=True)["train_log"]
        return statistics.median((t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in itertools.pairwise(logs) if s0 >= 99)
    with tempfile.TemporaryDirectory() as work:
        command = [sys.executable, peer, "-i", args.data, "-o", work, "--type", model, "--max-steps", args.family_steps]
        out = subprocess.run([*map(str, command), "--num-workers", "0"], check=True, capture_output=True, text=True)
    times = [float(m[2]) for line in out.stdout.splitlines() if (m := PEER_STEP.match(line)) and int(m[1]) >= 100]
    return statistics.median(times) / 1e3


def bench_family(args: argparse.Namespace, _: dict) -> dict:
    peer, rows = args.peer if args.peer.is_file() else None, {}
    print(f"  {args.family_steps} steps, {args.family_repeats} repeats, peer {peer or '(absent: skipped)'}")
    for model in FAMILY:
        ours, theirs = [], []
        for _ in range(args.family_repeats):  # interleaved
            ours.append(family_step(args, model) * 1e3)
            if peer is not None and model in PEER_TYPES:
                theirs.append(family_step(args, model, peer) * 1e3)
        row = rows[model] = {"ours_ms": statistics.median(ours), "ours_runs_ms": ours}
        if theirs:
            row.update(peer_ms=(ms := statistics.median(theirs)), peer_runs_ms=theirs, ratio=row["ours_ms"] / ms)
        peer_text = f" | makemore.py {row['peer_ms']:.2f} ms | ratio {row['ratio']:.2f}" if theirs else ""
        print(f"  {model:<12} ours {row['ours_ms']:.2f} ms/step{peer_text}", flush=True)
    return {"steps": args.family_steps, "repeats": args.family_repeats, "peer": peer and str(peer), "models": rows}


def setup(kind: str, path: Path, block_size: int) -> tuple[float, float, int]:
    """In a fresh process: seconds, peak RSS (MB), targets of the notebook's dataset cell or a data module view."""
    if kind != "notebook":  # the notebook's cell runs without the project's imports
        from makemore.data.datamodule import CharDataModule
    start = time.perf_counter()
    if kind == "notebook":
        targets = sum(len(y) for _, y in list(notebook_loop.build_datasets(path.read_text().splitlines(), block_size)))
    else:
        (dm := CharDataModule(str(path), {}, block_size=block_size, batch_size=32, view=kind)).setup()
        targets = sum(dm.split_sizes.values())
    peak_kb = re.search(r"VmHWM:\s*(\d+) kB", Path("/proc/self/status").read_text())[1]  # this process's own peak
    return time.perf_counter() - start, int(peak_kb) / 1024, targets  # (ru_maxrss: the parent's RSS at the fork too)


def bench_data(args: argparse.Namespace, _: dict) -> dict:
    lines, out = args.data.read_text().splitlines(), {"train_steps": (steps := min(args.steps, 10_000))}
    with tempfile.TemporaryDirectory() as tmp:
        (big := Path(tmp, "x100.txt")).write_text("\n".join(lines * 100) + "\n")
        (ten := Path(tmp, "x10.txt")).write_text("\n".join(lines * 10) + "\n")
        sets = {"x100_block8": (big, "context", 8), "x100_sequence16": (big, "sequence", 16)}
        for key, (path, kind, block_size) in {**sets, "notebook_x10_block8": (ten, "notebook", 8)}.items():
            with multiprocessing.get_context("spawn").Pool(1) as fresh:
                seconds, rss, targets = fresh.apply(setup, (kind, path, block_size))
            out.update({f"{key}_setup_s": seconds, f"{key}_peak_rss_mb": rss, f"{key}_targets": targets})
            print(f"  {key}: {seconds:.2f} s, peak RSS {rss:.0f} MB, {targets:,} targets", flush=True)
        for key, path in (("x100", big), ("names", args.data)):
            out[f"{key}_us_per_step"] = run(path, "experiment=seed_11897", steps=steps)["s_per_step"] * 1e6
    print(f"  training: 100x {out['x100_us_per_step']:.0f} us/step, 1x {out['names_us_per_step']:.0f} us/step")
    return out


def bench_sample(args: argparse.Namespace, _: dict, n_batched: int = 10_000, n_seed: int = 500) -> dict:
    from makemore.data.vocab import Vocabulary
    from makemore.models import MLP
    from makemore.sampling import generate

    train_set = next(notebook_loop.build_datasets(args.data.read_text().splitlines()))
    C, W1, b1, W2, b2 = parameters = notebook_loop.train(*train_set, 2000)[1]
    torch.set_num_threads(THREADS)
    g, start = torch.Generator().manual_seed(2147483647 + 10), time.perf_counter()
    with torch.no_grad():
        for _ in range(n_seed):  # the notebook's sampling cell
            context = [0] * 3
            while True:
                h = torch.tanh(C[torch.tensor([context])].view(1, -1) @ W1 + b1)  # emb = C[...]: (1, 3, 10)
                ix = torch.multinomial(F.softmax(h @ W2 + b2, dim=1), num_samples=1, generator=g).item()
                context = context[1:] + [ix]  # noqa: RUF005 (the notebook's own line)
                if ix == 0:
                    break
    seed_rate, start = n_seed / (time.perf_counter() - start), time.perf_counter()
    (model := MLP(27, 3, 10, 200)).load_state_dict(dict(zip(["C", "H", "d", "U", "b"], parameters, strict=True)))
    names = generate(model, Vocabulary.from_items(args.data.read_text().splitlines()), n_batched, seed=0)
    rate = n_batched / (time.perf_counter() - start)
    print(f"  notebook {seed_rate:.0f} names/s, batched {rate:.0f} names/s ({rate / seed_rate:.0f}x), e.g. {names[:5]}")
    return {"seed_names_per_s": seed_rate, "batched_names_per_s": rate, "speedup": rate / seed_rate}


def bench_fast(args: argparse.Namespace, results: dict) -> dict:
    train_set = next(notebook_loop.build_datasets(args.data.read_text().splitlines()))
    bare_s = results.get("train", {}).get("bare_us_per_step", 0) / 1e6 or notebook_loop.train(*train_set, 5000)[0]
    m, budget = run(args.data, "experiment=fast"), 0.25 * bare_s * 200_000  # a quarter of the notebook's 200k steps
    print(f"  experiment=fast: {m['train_time_s']:.1f} s, val {m['val_loss']:.4f} (budget {budget:.1f} s)")
    return {"train_time_s": m["train_time_s"], "val_loss": m["val_loss"], "steps": m["steps"], "budget_s": budget}


PARTS = dict(train=bench_train, ab=bench_ab, family=bench_family, data=bench_data, sample=bench_sample, fast=bench_fast)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "data" / "names.txt")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), metavar="PART", help=", ".join(PARTS))
    parser.add_argument("--steps", type=int, default=30_000, help="train, data: training steps per run")
    parser.add_argument("--repeats", type=int, default=5, help="train: interleaved repeats")
    parser.add_argument("--ab-pairs", type=int, default=5, help="ab: interleaved pairs per trick and model")
    parser.add_argument("--ab-steps", type=int, help="ab: steps per run (default: mlp 2000, gru 400, transformer 200)")
    parser.add_argument("--peer", type=Path, default=REPO.parent / "shared" / "peers" / "makemore.py")
    parser.add_argument("--family-steps", type=int, default=1000, help="family: steps per run")
    parser.add_argument("--family-repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "bench.json")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"bench: {args.data} not found; pass --data /path/to/names.txt")
    results: dict = {"torch_threads": THREADS, "torch": torch.__version__}
    for part in (p for p in PARTS if p in args.only):
        print(f"{part}:", flush=True)
        results[part] = PARTS[part](args, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()

"""Benchmark the project's training path against the notebook's bare loop and against makemore.py.

    python scripts/bench.py                      # everything, 50000 steps, 5 repeats
    python scripts/bench.py --steps 5000 --repeats 1 --only train
    python scripts/bench.py --only family --peer ../shared/peers/makemore.py

Prints a table and writes JSON (default outputs/bench/bench.json). Parts:
  train     per-step time of (a) the notebook's bare loop on one thread and (b) scripts/train.py's path at its
            default settings, same config, interleaved a, b, a, b, ... and the median of each; their val losses
  family    per model, our per-step time with makemore.py's defaults (experiment=makemore_<model>) against
            makemore.py's own printed step time, run as a subprocess in the same run, interleaved; both the
            median per step after the first 100 steps; the peer column is skipped when its file is absent
  data      building the context sets of 100x names.txt at block_size 8 (time, peak RSS of a fresh
            process), the notebook's Python loop on 10x for comparison, and the training speed on 100x
  sample    names/s of the notebook's one-at-a-time sampling loop vs makemore's batched generator
  fast      experiment=fast: wall time and val loss against 25% of the bare loop's 200k-step time
"""

import argparse
import itertools
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hydra import compose, initialize_config_dir  # noqa: E402

from makemore.data.contexts import build_contexts, split_items  # noqa: E402
from makemore.data.text import read_items  # noqa: E402
from makemore.data.vocab import Vocabulary  # noqa: E402
from makemore.resolvers import register_resolvers  # noqa: E402
from makemore.sampling import generate  # noqa: E402

SEED_STEPS = 200_000  # the notebook's run length, for the time-to-quality budget


def seed_loop(xtr, ytr, xval, yval, steps: int, batch_size: int = 32) -> tuple[float, float, list]:
    """The notebook's final training cell, verbatim apart from names and the decay at half of `steps`, on one
    thread (where this tiny loop runs fastest, so the ratio against it is not flattered)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(2147483647)
    C = torch.randn((27, 10), generator=g)
    W1 = torch.randn((30, 200), generator=g)
    b1 = torch.randn(200, generator=g)
    W2 = torch.randn((200, 27), generator=g)
    b2 = torch.randn(27, generator=g)
    parameters = [C, W1, b1, W2, b2]
    for p in parameters:
        p.requires_grad = True
    start = time.perf_counter()
    for i in range(steps):
        ix = torch.randint(0, xtr.shape[0], (batch_size,))
        emb = C[xtr[ix]]
        h = torch.tanh(emb.view(-1, 30) @ W1 + b1)
        logits = h @ W2 + b2
        loss = F.cross_entropy(logits, ytr[ix])
        for p in parameters:
            p.grad = None
        loss.backward()
        lr = 0.1 if i < steps // 2 else 0.01
        for p in parameters:
            p.data += -lr * p.grad
    seconds = time.perf_counter() - start
    with torch.no_grad():
        val = F.cross_entropy(torch.tanh(C[xval].view(-1, 30) @ W1 + b1) @ W2 + b2, yval).item()
    torch.set_num_threads(threads)
    return seconds / steps, val, parameters


def project_run(overrides: list[str]) -> dict:
    """One run of the code scripts/train.py runs, in a temp run dir; returns its metrics.json."""
    from makemore.training.train import train

    register_resolvers()
    with tempfile.TemporaryDirectory() as run_dir:
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            cfg = compose(config_name="train", overrides=[*overrides, f"run_dir={run_dir}"])
        train(cfg)
        return json.loads((Path(run_dir) / "metrics.json").read_text())


def bench_train(names: Path, steps: int, repeats: int, splits) -> dict:
    vocab = Vocabulary.from_items(read_items(names))
    xtr, ytr = build_contexts(splits["train"], vocab, 3).tensors()
    xval, yval = build_contexts(splits["val"], vocab, 3).tensors()
    overrides = [
        f"data.path={names}",
        "experiment=seed_11897",
        f"trainer.max_steps={steps}",
        f"val_every={steps}",
        "callbacks.progress_bar.refresh_rate=10000",
        "print_config=false",
    ]
    bare, ours = [], []
    for r in range(repeats):
        per_step, val, _ = seed_loop(xtr, ytr, xval, yval, steps)
        bare.append({"s_per_step": per_step, "val_loss": val})
        m = project_run(overrides)
        ours.append({"s_per_step": 1 / m["steps_per_s"], "val_loss": m["val_loss"]})
        print(
            f"  repeat {r}: bare {per_step * 1e6:.0f} us/step val {val:.4f} | "
            f"project {ours[-1]['s_per_step'] * 1e6:.0f} us/step val {m['val_loss']:.4f}",
            flush=True,
        )
    a = statistics.median(x["s_per_step"] for x in bare)
    b = statistics.median(x["s_per_step"] for x in ours)
    return {
        "steps": steps,
        "repeats": repeats,
        "bare_us_per_step": a * 1e6,
        "project_us_per_step": b * 1e6,
        "ratio": b / a,
        "bare_val_loss": statistics.median(x["val_loss"] for x in bare),
        "project_val_loss": statistics.median(x["val_loss"] for x in ours),
        "bare_runs": bare,
        "project_runs": ours,
    }


SETUP_CHILD = """
import resource, sys, time
from makemore.data.datamodule import CharDataModule
start = time.perf_counter()
dm = CharDataModule(sys.argv[1], {}, block_size=int(sys.argv[2]), batch_size=32, view=sys.argv[3])
dm.setup()
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(time.perf_counter() - start, rss_mb, sum(dm.split_sizes.values()))
"""

SEED_BUILD_CHILD = """
import random, resource, sys, time, torch
words = open(sys.argv[1]).read().splitlines()
start = time.perf_counter()
chars = sorted(set(''.join(words)))
stoi = {s: i + 1 for i, s in enumerate(chars)}
stoi['.'] = 0
random.seed(42)
random.shuffle(words)
def build_dataset(words, block_size):
    X, Y = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + '.':
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)
n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
sets = [build_dataset(words[:n1], 8), build_dataset(words[n1:n2], 8), build_dataset(words[n2:], 8)]
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(time.perf_counter() - start, rss_mb, sum(len(y) for _, y in sets))
"""


def child(code: str, *args: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=REPO)
    return [float(v) for v in out.stdout.split()]


def bench_data(names: Path, steps: int, tmp: Path) -> dict:
    lines = names.read_text().splitlines()
    big, ten = tmp / "names_x100.txt", tmp / "names_x10.txt"
    big.write_text("\n".join(lines * 100) + "\n")
    ten.write_text("\n".join(lines * 10) + "\n")
    seconds, rss_mb, examples = child(SETUP_CHILD, str(big), "8", "context")
    seq_seconds, seq_rss_mb, seq_targets = child(SETUP_CHILD, str(big), "16", "sequence")
    seed_seconds, seed_rss_mb, _ = child(SEED_BUILD_CHILD, str(ten))
    print(
        f"  100x sequence view (windows of 16): {seq_seconds:.2f} s, peak RSS {seq_rss_mb:.0f} MB, "
        f"{seq_targets:.0f} targets",
        flush=True,
    )
    print(
        f"  100x setup: {seconds:.2f} s, peak RSS {rss_mb:.0f} MB, {examples:.0f} examples; "
        f"seed loop on 10x: {seed_seconds:.2f} s, {seed_rss_mb:.0f} MB",
        flush=True,
    )
    common = [
        "experiment=seed_11897",
        f"trainer.max_steps={steps}",
        f"val_every={steps}",
        "callbacks.progress_bar.refresh_rate=10000",
        "print_config=false",
    ]
    on_big = project_run([f"data.path={big}", *common])
    on_names = project_run([f"data.path={names}", *common])
    print(
        f"  training: 100x {1e6 / on_big['steps_per_s']:.0f} us/step, "
        f"names.txt {1e6 / on_names['steps_per_s']:.0f} us/step",
        flush=True,
    )
    return {
        "x100_lines": len(lines) * 100,
        "x100_examples": int(examples),
        "x100_block8_setup_s": seconds,
        "x100_block8_peak_rss_mb": rss_mb,
        "x100_sequence16_setup_s": seq_seconds,
        "x100_sequence16_peak_rss_mb": seq_rss_mb,
        "x100_sequence16_targets": int(seq_targets),
        "seed_loop_x10_block8_s": seed_seconds,
        "seed_loop_x10_block8_peak_rss_mb": seed_rss_mb,
        "train_steps": steps,
        "x100_us_per_step": 1e6 / on_big["steps_per_s"],
        "names_us_per_step": 1e6 / on_names["steps_per_s"],
    }


def bench_sample(names: Path, splits, n_batched: int = 10_000, n_seed: int = 500) -> dict:
    vocab = Vocabulary.from_items(read_items(names))
    xtr, ytr = build_contexts(splits["train"], vocab, 3).tensors()
    _, _, (C, W1, b1, W2, b2) = seed_loop(xtr, ytr, xtr[:10], ytr[:10], 2000)
    block_size = 3
    g = torch.Generator().manual_seed(2147483647 + 10)
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(n_seed):  # the notebook's sampling cell
            out, context = [], [0] * block_size
            while True:
                emb = C[torch.tensor([context])]
                h = torch.tanh(emb.view(1, -1) @ W1 + b1)
                probs = F.softmax(h @ W2 + b2, dim=1)
                ix = torch.multinomial(probs, num_samples=1, generator=g).item()
                context = context[1:] + [ix]  # noqa: RUF005 (the notebook's own line)
                out.append(ix)
                if ix == 0:
                    break
    seed_rate = n_seed / (time.perf_counter() - start)

    from makemore.models import MLP

    model = MLP(27, 3, 10, 200)
    with torch.no_grad():
        for ours, theirs in zip((model.C, model.H, model.d, model.U, model.b), (C, W1, b1, W2, b2), strict=True):
            ours.copy_(theirs)
    start = time.perf_counter()
    names_out = generate(model, vocab, n_batched, seed=0)
    batched_rate = n_batched / (time.perf_counter() - start)
    print(
        f"  sampling: seed loop {seed_rate:.0f} names/s, batched {batched_rate:.0f} names/s "
        f"({batched_rate / seed_rate:.0f}x); e.g. {names_out[:5]}",
        flush=True,
    )
    return {
        "seed_names_per_s": seed_rate,
        "batched_names_per_s": batched_rate,
        "speedup": batched_rate / seed_rate,
        "batched_n": n_batched,
    }


def bench_fast(names: Path, bare_us_per_step: float) -> dict:
    m = project_run([f"data.path={names}", "experiment=fast"])
    budget = 0.25 * bare_us_per_step * 1e-6 * SEED_STEPS
    print(
        f"  experiment=fast: {m['train_time_s']:.1f} s, val {m['val_loss']:.4f} "
        f"(budget {budget:.1f} s = 25% of the bare loop's 200k steps)",
        flush=True,
    )
    return {
        "train_time_s": m["train_time_s"],
        "val_loss": m["val_loss"],
        "steps": m["steps"],
        "budget_s": budget,
        "seed_loop_200k_s": bare_us_per_step * 1e-6 * SEED_STEPS,
    }


FAMILY = ["bigram", "mlp", "wavenet", "rnn", "gru", "lstm", "bow", "transformer"]
PEER_TYPES = {"bigram", "mlp", "rnn", "gru", "bow", "transformer"}  # the families makemore.py has
PEER_STEP = re.compile(r"^step (\d+) \| loss [\d.]+ \| step time ([\d.]+)ms")


def ours_per_step(names: Path, model: str, steps: int, skip: int = 100) -> float:
    """Seconds per optimizer step of scripts/train.py (its own process, its default settings) at makemore.py's
    defaults, measured as the peer's is: the median over steps after the first `skip`, here of the 100-step
    intervals between train-loss logs (their TensorBoard wall times), so warm-up counts on neither side."""
    preset = f"experiment=makemore_{model}" if model in PEER_TYPES else f"model={model}"
    with tempfile.TemporaryDirectory() as run_dir:
        args = [f"data.path={names}", preset, f"trainer.max_steps={steps}", f"val_every={steps}", "log_every=100"]
        args.append(f"hydra.run.dir={run_dir}")
        if model not in PEER_TYPES:
            args.append("batch_size=32")  # no makemore.py preset: its batch size, the model's own defaults
        subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"), *args], check=True, capture_output=True)
        (events_dir,) = {path.parent for path in Path(run_dir, "tensorboard").rglob("events.out.tfevents.*")}
        events = EventAccumulator(str(events_dir))
        events.Reload()
        logs = [(e.step, e.wall_time) for e in events.Scalars("loss/train")]
    intervals = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in itertools.pairwise(logs) if s0 >= skip]
    return statistics.median(intervals)


def peer_per_step(peer: Path, names: Path, model: str, steps: int, skip: int = 100) -> float:
    """makemore.py's own printed step time (it prints every 10th step; batch 32, its default threads, no data
    workers, as its README runs it), median over steps after the first `skip`."""
    with tempfile.TemporaryDirectory() as work_dir:
        command = [sys.executable, str(peer), "-i", str(names), "-o", work_dir, "--type", model]
        command += ["--max-steps", str(steps), "--num-workers", "0"]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    times = [float(m[2]) for line in out.splitlines() if (m := PEER_STEP.match(line)) and int(m[1]) >= skip]
    return statistics.median(times) / 1e3


def bench_family(names: Path, peer: Path | None, steps: int, repeats: int) -> dict:
    rows = {}
    for model in FAMILY:
        ours, theirs = [], []
        for _ in range(repeats):  # interleaved: both see the same state of the machine
            ours.append(ours_per_step(names, model, steps))
            if peer is not None and model in PEER_TYPES:
                theirs.append(peer_per_step(peer, names, model, steps))
        row = {"ours_ms": statistics.median(ours) * 1e3, "ours_runs_ms": [t * 1e3 for t in ours]}
        if theirs:
            row.update(peer_ms=statistics.median(theirs) * 1e3, peer_runs_ms=[t * 1e3 for t in theirs])
            row["ratio"] = row["ours_ms"] / row["peer_ms"]
        rows[model] = row
        peer_text = f" | makemore.py {row['peer_ms']:.2f} ms | ratio {row['ratio']:.2f}" if theirs else ""
        print(f"  {model:<12} ours {row['ours_ms']:.2f} ms/step{peer_text}", flush=True)
    return {"steps": steps, "repeats": repeats, "peer": str(peer) if peer else None, "models": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO / "data" / "names.txt")
    parser.add_argument("--steps", type=int, default=50_000, help="training steps per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=["train", "family", "data", "sample", "fast"])
    parser.add_argument("--peer", type=Path, default=REPO.parent / "shared" / "peers" / "makemore.py")
    parser.add_argument("--family-steps", type=int, default=1000, help="steps per family measurement")
    parser.add_argument("--family-repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench" / "bench.json")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"bench: {args.data} not found; pass --data /path/to/names.txt")

    splits = split_items(read_items(args.data), [0.8, 0.1, 0.1], 42)
    results: dict = {"torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if "train" in args.only:
        print(f"train: {args.steps} steps, batch 32, {args.repeats} repeats", flush=True)
        results["train"] = bench_train(args.data, args.steps, args.repeats, splits)
    if "family" in args.only:
        peer = args.peer if args.peer.is_file() else None
        print(f"family: {args.family_steps} steps, {args.family_repeats} repeats, peer {peer or '(absent: skipped)'}")
        results["family"] = bench_family(args.data, peer, args.family_steps, args.family_repeats)
    if "data" in args.only:
        print("data:", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            results["data"] = bench_data(args.data, min(args.steps, 10_000), Path(tmp))
    if "sample" in args.only:
        print("sample:", flush=True)
        results["sample"] = bench_sample(args.data, splits)
    if "fast" in args.only:
        print("fast:", flush=True)
        bare = results.get("train", {}).get("bare_us_per_step")
        if bare is None:
            xtr, ytr = (
                t for t in build_contexts(splits["train"], Vocabulary.from_items(read_items(args.data)), 3).tensors()
            )
            bare = seed_loop(xtr, ytr, xtr[:10], ytr[:10], 5000)[0] * 1e6
        results["fast"] = bench_fast(args.data, bare)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: {kk: vv for kk, vv in v.items() if not kk.endswith("_runs")} if isinstance(v, dict) else v
                for k, v in results.items()
            },
            indent=2,
        )
    )
    print(f"written: {args.out}")


if __name__ == "__main__":
    random.seed(0)
    main()

"""The whole family on one data path: the same targets for every model, each scored once, causally, and every
tool (train, sample, eval, resume, lr_find) working on every model's checkpoint."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from makemore.data.datamodule import CharDataModule
from makemore.data.sequences import BUILD_EXAMPLES
from makemore.data.vocab import Vocabulary
from makemore.errors import MakemoreError
from makemore.evaluation import evaluate, mean_nll
from makemore.models import MODELS, build_model
from makemore.optim import resolve_schedule
from makemore.resolvers import register_resolvers
from makemore.sampling import generate
from makemore.training.checkpoint import load_checkpoint
from makemore.training.train import train

from .conftest import REPO

CONTEXT_OF = {"bigram": 1, "mlp": 3, "mlp_batchnorm": 3, "wavenet": 8}  # the rest read windows of 16


def config(*overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_is_trained_and_scored_on_the_seeds_targets(names_path, name):
    cfg = config(f"model={name}", "run_dir=/tmp/unused")
    dm = CharDataModule(str(names_path), {}, cfg.block_size, cfg.batch_size, view=MODELS[name].view)
    dm.setup()
    assert dm.split_sizes == {"train": 182625, "val": 22655, "test": 22866}
    assert cfg.block_size == CONTEXT_OF.get(name, 16)


def target_logits(model, examples) -> torch.Tensor:
    """Logits of every scored target, in item order: (number of targets, V)."""
    x, y = examples[:]
    logits = model(x)
    return logits if model.view == "context" else logits[y != -100]


ITEMS = ["emma", "olivia", "ava", "isabella", "sophiabellamaria", "mia"]  # one longer than the windows


def small_model(name: str, vocab_size: int, block_size: int):
    knobs = {"emb_dim": 10, "hidden": 32} if name in ("mlp", "mlp_batchnorm") else {}
    return build_model({"name": name, "block_size": block_size, **knobs}, vocab_size).eval()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_changing_a_later_character_never_changes_an_earlier_prediction(name):
    """Through the data path and the model together: target j of an item is predicted from characters
    before j only, for context and sequence models alike."""
    vocab = Vocabulary.from_items([*ITEMS, "z"])
    torch.manual_seed(0)
    model = small_model(name, vocab.size, CONTEXT_OF.get(name, 4))
    with torch.no_grad():  # away from the initialisation, which may ignore the input (the bigram's zero table)
        for parameter in model.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    for position in (0, 2, 5, 9):
        changed = [item[:position] + "z" + item[position + 1 :] if position < len(item) else item for item in ITEMS]
        with torch.no_grad():
            a = target_logits(model, BUILD_EXAMPLES[model.view](ITEMS, vocab, model.block_size))
            b = target_logits(model, BUILD_EXAMPLES[model.view](changed, vocab, model.block_size))
        start = 0
        for item in ITEMS:  # targets 0..position of each item (position = its length for short items)
            same = min(position, len(item)) + 1
            assert torch.equal(a[start : start + same], b[start : start + same]), (name, item, position)
            start += len(item) + 1
        assert not torch.equal(a, b)  # and the change is seen by the later predictions


@pytest.mark.parametrize("name", ["rnn", "bow", "transformer"])
def test_sequence_loss_is_the_mean_over_targets_of_each_windows_prediction(name):
    """mean_nll of the sequence view, by hand: item by item, target j predicted from the window it falls in."""
    vocab = Vocabulary.from_items(ITEMS)
    T = 4
    torch.manual_seed(1)
    model = small_model(name, vocab.size, T)
    total, count = 0.0, 0
    with torch.no_grad():
        for item in ITEMS:
            ids = [0, *vocab.encode(item), 0]  # the boundary starts and ends the item
            for j in range(len(item) + 1):  # target j is ids[j + 1]
                window_start = j // T * T
                logits = model(torch.tensor([ids[window_start : j + 1]]))[0, -1]
                total += F.cross_entropy(logits, torch.tensor(ids[j + 1])).item()
                count += 1
    examples = BUILD_EXAMPLES["sequence"](ITEMS, vocab, T)
    assert examples.num_targets == count == sum(len(item) + 1 for item in ITEMS)
    assert mean_nll(model, examples) == pytest.approx(total / count, rel=1e-5)


# The default suite runs one sequence model (bag of words, the quickest) through every tool (the MLP is covered
# by the other test files); the slow suite runs the others.
FAMILY = [n if n == "bow" else pytest.param(n, marks=pytest.mark.slow) for n in sorted(MODELS)]


@pytest.mark.parametrize("name", FAMILY)
def test_every_tool_works_on_every_models_checkpoint(names_path, tmp_path, name):
    """Train, resume (ckpt_path=), sample, evaluate and find the lr, in-process, for one model."""
    from makemore.lr_find import find_lr

    run = [f"data.path={names_path}", f"model={name}", "trainer.max_steps=60", "val_every=30", "log_every=10"]
    run += ["ckpt_every=30", "batch_size=16", "sample.num_samples=5"]
    longer = [*run[:2], "trainer.max_steps=90", *run[3:]]
    # The first run is planned for 90 steps and stopped at 60: its schedule is pinned to the 90-step plan.
    plan = resolve_schedule(OmegaConf.to_container(config(*longer).scheduler, resolve=True), 90)
    pinned = [f"scheduler.{key}={json.dumps(value)}" for key, value in plan.items() if key != "name"]
    first = tmp_path / "first"
    train(config(*run, *pinned, f"run_dir={first}"))
    metrics = json.loads((first / "metrics.json").read_text())
    assert metrics["model"] == name and metrics["steps"] == 60
    assert metrics["split_sizes"] == {"train": 182625, "val": 22655, "test": 22866}
    assert metrics["val_loss"] < math.log(27)  # learned something in 60 steps

    module, _ = load_checkpoint(first / "checkpoints" / "best.ckpt")
    items = generate(module.model, module.vocab, 20, seed=3, prefix="ka")  # batched
    assert len(items) == 20 and all(item.startswith("ka") for item in items)
    assert items == generate(module.model, module.vocab, 20, seed=3, prefix="ka")
    assert evaluate([module])["members"][0]["val"]["loss"] == pytest.approx(metrics["val_loss"], abs=1e-6)

    last = first / "checkpoints" / "last.ckpt"
    if resolve_schedule(OmegaConf.to_container(config(*run).scheduler, resolve=True), 60) != plan:  # another one
        with pytest.raises(MakemoreError, match=r"scheduler\.\w+: .* in the checkpoint"):
            train(config(*run, f"ckpt_path={last}", f"run_dir={tmp_path / 'refused'}"))
    resumed = tmp_path / "resumed"
    train(config(*longer, f"ckpt_path={last}", f"run_dir={resumed}"))
    assert json.loads((resumed / "metrics.json").read_text())["resumed_from_step"] == 60

    lr_dir = tmp_path / "lr"
    suggestion = find_lr(config(*run, "lr_find.num_training=40", "lr_find.skip_begin=5", f"run_dir={lr_dir}"))
    assert (lr_dir / "lr_find.png").is_file() and (suggestion is None or 1e-3 <= suggestion <= 1.0)
    if module.model.char_embedding() is not None:  # the embedding picture wherever there is an embedding
        assert (first / "embedding.png").is_file()

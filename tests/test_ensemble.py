"""Ensembles: the mean of the members' probabilities, scored over the same targets, checked by hand."""

import hashlib
import json
import math

import pytest
import torch

from makemore.data.contexts import make_splits
from makemore.errors import MakemoreError
from makemore.evaluation import evaluate
from makemore.sampling import generate
from makemore.training.module import LitLanguageModel

from .conftest import run_script

WORDS = ["ab", "abc", "ba", "cab", "acb", "bca", "cc", "a", "bb", "cabbac"] * 3
SPLIT = [0.6, 0.2, 0.2]


def lit(model: dict, vocab: list[str], record: dict, seed: int) -> LitLanguageModel:
    torch.manual_seed(seed)
    module = LitLanguageModel(model, vocab, {"name": "adamw", "lr": 1e-3}, data=record)
    for p in module.parameters():  # weights far from the init, so the members disagree
        p.data.normal_(0, 1)
    return module.eval()


@pytest.fixture
def tiny_pair(tmp_path):
    """A context model (the notebook's MLP, 2 characters of context) and a sequence model (an LSTM of window 3,
    so longer words are cut into windows) on a tiny word file."""
    path = tmp_path / "words.txt"
    path.write_text("\n".join(WORDS) + "\n")
    record = {
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "split": SPLIT,
        "split_seed": 7,
    }
    vocab = ["a", "b", "c"]
    mlp = lit({"name": "mlp", "block_size": 2, "emb_dim": 3, "hidden": 5}, vocab, record, seed=1)
    lstm = lit({"name": "lstm", "block_size": 3, "emb_dim": 4, "hidden": 6}, vocab, record, seed=2)
    return mlp, lstm, record


def by_hand(models, items: list[str]) -> float:
    """-log mean_m p_m(c | prefix) averaged over every character and end of every item, one target at a time:
    the MLP sees the last 2 ids (boundary-padded), the LSTM its window of the item (windows of 3 targets: a
    target in the second window sees the item from the first window's end)."""
    stoi = {"a": 1, "b": 2, "c": 3}
    total, count = 0.0, 0
    for item in items:
        ids = [0] + [stoi[ch] for ch in item] + [0]  # leading boundary, characters, the end
        for t in range(1, len(ids)):
            probs = []
            for m in models:
                if m.view == "context":
                    context = ([0, 0, *ids[:t]])[-2:]
                    logits = m(torch.tensor([context]))[0]
                else:
                    start = ((t - 1) // 3) * 3  # this target's window starts at stream offset start
                    window = torch.tensor([ids[start:t]])
                    logits = m(window)[0, -1]
                probs.append(torch.softmax(logits.double(), -1)[ids[t]].item())
            total -= math.log(sum(probs) / len(probs))
            count += 1
    return total / count


def test_ensemble_nll_matches_a_hand_computation(tiny_pair):
    mlp, lstm, _record = tiny_pair
    scores = evaluate([mlp, lstm])
    splits = make_splits(WORDS, SPLIT, 7)
    with torch.no_grad():
        for split in ("train", "val", "test"):
            want = by_hand([mlp.model, lstm.model], splits[split])
            assert scores["ensemble"][split]["loss"] == pytest.approx(want, abs=1e-6)
            for member, module in zip(scores["members"], (mlp, lstm), strict=True):
                assert member[split]["loss"] == pytest.approx(by_hand([module.model], splits[split]), abs=1e-6)
    # the mean of probabilities is never worse than the mean of the members' losses (Jensen), here strictly
    val = [m["val"]["loss"] for m in scores["members"]]
    assert scores["ensemble"]["val"]["loss"] < sum(val) / 2


def test_ensemble_samples_follow_the_mean_of_the_members_distributions(tiny_pair):
    """Greedy decoding of the ensemble takes, at each step, the argmax of the mean probability (by hand)."""
    mlp, lstm, _ = tiny_pair
    (item,) = generate([mlp.model, lstm.model], mlp.vocab, 1, max_len=6, temperature=0)
    ids = [0]
    chars = " abc"
    with torch.no_grad():
        for _ in range(6):
            p_mlp = torch.softmax(mlp.model(torch.tensor([([0, 0, *ids])[-2:]]))[0], -1)
            p_lstm = torch.softmax(lstm.model(torch.tensor([ids[-3:]]))[0, -1], -1)
            nxt = int(((p_mlp + p_lstm) / 2).argmax())
            if nxt == 0:
                break
            ids.append(nxt)
    assert item == "".join(chars[i] for i in ids[1:])
    # and one member alone samples as before (a list of one model is the model)
    assert generate([mlp.model], mlp.vocab, 5, seed=3) == generate(mlp.model, mlp.vocab, 5, seed=3)


def test_members_on_other_data_are_refused_in_one_line(tiny_pair, tmp_path):
    from makemore.evaluation import check_members

    mlp, lstm, record = tiny_pair
    other = lit(dict(lstm.hparams.model), ["a", "b", "c"], {**record, "split_seed": 8}, seed=3)
    with pytest.raises(MakemoreError, match=r"same data and vocabulary: .*b\.ckpt has other data"):
        check_members([tmp_path / "a.ckpt", tmp_path / "b.ckpt"], [mlp, other])
    bigger = lit(dict(lstm.hparams.model), ["a", "b", "c", "d"], record, seed=3)
    with pytest.raises(MakemoreError, match="another vocabulary"):
        check_members([tmp_path / "a.ckpt", tmp_path / "b.ckpt"], [mlp, bigger])


@pytest.mark.slow  # the default suite's 5-minute budget (305 s in CI before); CI runs -m slow
def test_eval_sample_and_compare_take_an_ensemble(short_run, tmp_path):
    """Real scripts: eval.py ckpt='[A,B]' prints both members and the ensemble and writes eval.json, which
    compare.py shows as a row; sample.py ckpt='[A,B]' samples."""
    out = tmp_path / "ens" / "eval.json"
    result = run_script("eval.py", f"ckpt=[{short_run},{short_run}]", f"out={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert [line.split("|")[2].strip() for line in lines[1:]] == ["mlp", "mlp", "ensemble of 2"]
    scores = json.loads(out.read_text())
    single = json.loads((short_run / "metrics.json").read_text())
    # two copies of one model: the ensemble is that model
    assert scores["val_loss"] == pytest.approx(single["val_loss"], abs=1e-6)
    assert [m["val"]["loss"] for m in scores["members"]] == pytest.approx([single["val_loss"]] * 2, abs=1e-6)
    assert scores["train_time_s"] == pytest.approx(2 * single["train_time_s"], abs=0.02)

    table = run_script("compare.py", str(out), str(short_run), "--out", str(tmp_path / "cmp"))
    assert table.returncode == 0, table.stderr[-2000:]
    assert "| ensemble of 2 | mlp x2 |" in table.stdout

    sampled = run_script("sample.py", f"ckpt=[{short_run},{short_run}]", "n=4", "mark_new=false")
    assert sampled.returncode == 0 and len(sampled.stdout.splitlines()) == 4, sampled.stderr[-2000:]

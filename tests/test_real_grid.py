"""benchmarks/real/finetune.py's resume rule: a grid that goes on across sittings (on a
machine without the earlier run folders) skips the runs real.json already holds."""

import importlib
import sys
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1] / "benchmarks" / "real"


def _real_module(name: str):
    """A script of benchmarks/real, imported as its siblings import it (by bare name)."""
    sys.path.insert(0, str(REAL))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(REAL))


@pytest.fixture(scope="module")
def finetune():
    yield from _real_module("finetune")


@pytest.fixture(scope="module")
def plots(finetune):
    yield from _real_module("plots")


def test_missing_keeps_only_unmeasured_methods(finetune):
    entry = {"runs": [{"method": m, "p": p} for m, p in [("aligned", None), ("full", None)]]}
    entry["runs"].append({"method": "seal", "p": 0.8})
    assert finetune.missing(entry, ["full", "seal", "random"], [0.8]) == ["random"]
    # A selecting method is done only at every p asked for; `full` has no p.
    assert finetune.missing(entry, ["full", "seal"], [0.7, 0.8]) == ["seal"]
    assert finetune.missing(entry, ["full", "seal"], [0.8]) == []
    assert finetune.missing({}, ["full", "oracle"], [0.8]) == ["full", "oracle"]


def _run(method: str, p: float | None, refusal: float) -> dict:
    return {"method": method, "p": p, "metrics": {"refusal_rate": refusal}, "harmful_trained": 1}


GRID = {
    "self/10/0/seal-probe": {
        "runs": [_run("aligned", None, 0.9), _run("full", None, 0.5), _run("seal", 0.8, 0.7)]
        + [_run("random", 0.8, 0.6), _run("seal", 0.7, 0.99)]
    },
    "self/10/1/seal-default": {"runs": [_run("random", 0.8, 0.7)]},
    "self/10/1/seal-probe": {"runs": [_run("seal", 0.8, 0.6)]},
    "jbb/10/0/seal-probe": {"runs": [_run("seal", 0.8, 0.8), _run("random", 0.8, 0.5)]},
    "jbb/10/0/seal-paper": {"runs": [_run("seal", 0.8, 0.55)]},
}


def test_paired_compares_within_a_seed_and_pools_every_mix(finetune):
    grid = GRID
    by_seed = finetune.refusals_by_seed(grid)
    # Methods that do not depend on SEAL's settings count from whichever experiment ran them.
    seal_probe = finetune.Arm("seal", "seal-probe")
    assert by_seed["self", 10, 1] == {finetune.Arm("random"): 70.0, seal_probe: 60.0}
    assert str(seal_probe) == "seal (seal-probe)" and str(finetune.Arm("random")) == "random"
    lines = finetune.paired_table(grid).splitlines()
    row = next(x for x in lines if x.startswith("| self | 10% | seal (seal-probe) − random"))
    assert "| 2 | +10.0, -10.0 | +0.0 | – | 1 |" in row
    pooled = next(x for x in lines if x.startswith("| all | 10% | seal (seal-probe) − random"))
    assert "| 3 | +30.0, +10.0, -10.0 | +10.0 |" in pooled and pooled.endswith("| 2 |")
    assert not any("oracle" in x for x in lines)  # no oracle run: nothing to compare with
    # Other settings against the paper's, never the paper's against itself.
    row = next(
        x for x in lines if x.startswith("| jbb | 10% | seal (seal-probe) − seal (seal-paper)")
    )
    assert "| 1 | +25.0 | +25.0 |" in row
    assert not any("seal (seal-paper) − seal (seal-paper)" in x for x in lines)


def test_mean_interval_is_a_t_interval(finetune):
    assert finetune.mean_interval([1.0, 2.0]) == (1.5, None)
    mean, ci = finetune.mean_interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.303; std 1, n 3: half-width 2.48.
    assert mean == 2.0 and ci == pytest.approx((2 - 2.484, 2 + 2.484), abs=1e-3)


def test_the_pictures_label_seal_by_its_settings_and_draw_the_pairs(finetune, plots, tmp_path):
    arm = finetune.Arm
    cells = plots.finetune_points(GRID)
    assert cells["self", 10]["aligned"] == 90.0
    # The fine-tune picture leaves the paper's settings out (their own table); the paired
    # one names them.
    assert set(cells["jbb", 10]["runs"]) == {arm("seal", "seal-probe"), arm("random")}
    assert cells["self", 10]["runs"][arm("seal", "seal-probe")] == {0: (1, 70.0), 1: (1, 60.0)}
    assert plots.shown_label(arm("seal", "seal-probe")) == "seal (defaults)"
    assert plots.shown_label(arm("seal", "seal-paper")) == "seal (paper)"
    assert plots.shown_label(arm("random")) == "random"
    plots.paired_figure(GRID, tmp_path / "paired.png")
    assert (tmp_path / "paired.png").read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def rank(finetune):
    return sys.modules["rank"]


def test_ranking_reuses_a_fine_tunes_selection_with_the_same_settings(rank, tmp_path, monkeypatch):
    from sealft.config import dump_config

    monkeypatch.setattr(rank, "CACHE", tmp_path)
    # The reference model's file is only named in the settings, never read: CI has no wheel.
    monkeypatch.setattr(rank, "smollm_gguf", lambda: "reference.gguf")
    mix = tmp_path / "mix.jsonl"
    paper, ours = (
        rank.select_config(mix, "seal-paper", 1),
        rank.select_config(mix, "seal-default", 1),
    )
    # The experiment's copy of the paper's selection: its own folder, no reference model
    # (a zeros start never reads it).
    run = tmp_path / "finetune" / "quick" / "jbb-10-s1" / "seal-paper" / "seed1" / "select"
    run.mkdir(parents=True)
    saved = paper.model_copy(update={"output_dir": str(run), "reference_model": None})
    (run / "config.yaml").write_text(dump_config(saved))
    assert rank.finished_selection(paper) is None  # not finished: no scores yet
    (run / "scores.parquet").write_bytes(b"")
    assert rank.finished_selection(paper) == run
    # Other settings, or another seed, are another selection.
    assert rank.finished_selection(ours) is None
    assert rank.finished_selection(rank.select_config(mix, "seal-paper", 2)) is None


@pytest.fixture(scope="module")
def align(finetune):
    yield from _real_module("align")


def test_the_preference_stage_trains_the_adapter_with_trl_dpo(align, tmp_path, tiny_model_dir):
    import torch

    from sealft.config import LoraSettings
    from sealft.model.load import load_model_and_tokenizer
    from sealft.model.lora import add_lora

    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    peft_model = add_lora(model, LoraSettings(r=2, alpha=4))
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    pairs = [
        {
            "prompt": f"do harm number {i}",
            "chosen": "I can't help with that .",
            "rejected": f"The word is w{i} .",
            "side": "harmful",
        }
        for i in range(4)
    ]
    recipe = align.Recipe(
        refusals=0, benign=0, risky_repeat=0, epochs=1, lr=1e-2, batch_size=2, max_length=48
    )
    info = align.train_dpo(peft_model, tok, pairs, recipe, tmp_path)
    assert info["steps"] == 2 and info["pairs"]["harmful"] == 4
    moved = [
        n
        for n, p in peft_model.named_parameters()
        if p.requires_grad and not torch.equal(p, before[n])
    ]
    assert moved  # the adapter learned
    assert (tmp_path / "run" / "metrics.jsonl").exists()

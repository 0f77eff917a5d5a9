import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import alpaca_rows, safe_rows, write_jsonl

from sealft import sft
from sealft.cli import main
from sealft.config import ConfigError, FinetuneRecipeConfig, RuntimeConfig, SFTConfig
from sealft.data import DataError, Sample, encode
from sealft.model.load import load_model_and_tokenizer
from sealft.recipes import finetune as recipe
from sealft.scores import n_keep, read_scores, scores_table

FAST_TRAIN = {"epochs": 1, "batch_size": 4}
FP32 = RuntimeConfig(precision="fp32", device="cpu")


def samples(n: int) -> list[Sample]:
    return [
        Sample(f"id{i:03d}", i, ({"role": "user", "content": f"task {i}"},), f"answer {i}", {})
        for i in range(n)
    ]


def test_top_selection_keeps_the_p_best_ranked_in_data_order():
    data = samples(10)
    logits = [float(i % 5) + i / 100 for i in range(10)]  # best: 9, 4, 8, 3, ...
    scores = scores_table(data, logits, p=0.5)
    chosen, weights = sft.apply_selection(data, scores, p=0.4, mode="top", source="s")
    assert weights is None
    assert [s.index for s in chosen] == [3, 4, 8, 9]
    assert len(sft.apply_selection(data, scores, p=1.0, mode="top", source="s")[0]) == 10


def test_soft_selection_weights_every_sample_by_its_score():
    data = samples(4)
    scores = scores_table(data, [0, 1, 2, 3], p=1.0, weights=[0.1, 0.2, 0.3, 3.4])
    chosen, weights = sft.apply_selection(data, scores, p=0.5, mode="soft", source="s")
    assert [s.index for s in chosen] == [0, 1, 2, 3]
    assert weights == pytest.approx([0.1, 0.2, 0.3, 3.4])


def test_scores_of_other_data_are_refused():
    data = samples(6)
    others = [Sample(f"other{i}", i, s.prompt, s.response, {}) for i, s in enumerate(data)]
    with pytest.raises(DataError, match=r"run/scores.parquet: 6 of 6 scored samples are not in"):
        sft.apply_selection(
            data,
            scores_table(others, range(6), 1.0),
            p=1,
            mode="top",
            source="run/scores.parquet",
        )
    # Scores that miss some of the data are refused too ...
    with pytest.raises(DataError, match=r"2 of 6 data samples have no score \(first: id004\)"):
        sft.apply_selection(
            data, scores_table(data[:4], range(4), 1.0), p=1, mode="top", source="s"
        )
    # ... unless the scoring run dropped them itself (too long for its tokenizer).
    chosen, _ = sft.apply_selection(
        data,
        scores_table(data[:4], range(4), 1.0),
        p=0.5,
        mode="top",
        source="s",
        dropped={"id004", "id005"},
    )
    assert [s.index for s in chosen] == [2, 3]


def test_a_scores_file_without_the_needed_columns_is_refused(tmp_path):
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"sample_id": ["a"], "logit": [1.0]}), path)
    with pytest.raises(DataError, match="lacks column.*rank, weight"):
        read_scores(path)
    with pytest.raises(DataError, match="no such scores file"):
        read_scores(tmp_path / "missing.parquet")


def test_subset_is_seeded_and_keeps_order():
    data = samples(20)
    a, b = sft.subset(data, 5, seed=1), sft.subset(data, 5, seed=1)
    assert [s.index for s in a] == [s.index for s in b] == sorted(s.index for s in a)
    assert [s.index for s in sft.subset(data, 5, seed=2)] != [s.index for s in a]
    assert len(sft.subset(data, None, seed=0)) == 20


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_zero_weights_leave_the_model_unchanged_and_weights_matter(tiny_model_dir, tmp_path):
    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    rows = [
        Sample(str(i), i, ({"role": "user", "content": r["instruction"]},), r["output"], r)
        for i, r in enumerate(alpaca_rows(8))
    ]
    data = encode(rows, tok, max_length=64)
    before = _params(model)
    settings = SFTConfig(lr=1e-2, **FAST_TRAIN)
    sft.train(model, tok, data, settings, FP32, run_dir=tmp_path / "a", weights=[0.0] * 8)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(model), strict=True))

    def trained(weights):
        m, _ = load_model_and_tokenizer(str(tiny_model_dir))
        sft.train(m, tok, data, settings, FP32, run_dir=tmp_path / "b", weights=weights)
        return _params(m)

    ones, none, halves = trained([1.0] * 8), trained(None), trained([1.0, 0.0] * 4)
    assert all(torch.allclose(a, b) for a, b in zip(ones, none, strict=True))
    assert not all(torch.allclose(a, b) for a, b in zip(ones, halves, strict=True))


@pytest.fixture
def select_run(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "data.jsonl", alpaca_rows(20))
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows(8))
    run = tmp_path / "select"
    argv = ["select", "--model", str(tiny_model_dir), "--data", str(data), "--safe", str(safe)]
    argv += ["--output-dir", str(run), "--no-progress", "runtime.precision=fp32"]
    argv += ["tokenize.max_length=64", "selector_train.batch_size=4", "--epochs", "2"]
    assert main(argv) == 0
    return data, safe, run


def _ft_config(tmp_path, tiny_model_dir, data, **kw) -> FinetuneRecipeConfig:
    settings = {
        "model": {"name_or_path": str(tiny_model_dir)},
        "data": {"path": str(data)},
        "tokenize": {"max_length": 64},
        "sft": FAST_TRAIN,
        "runtime": FP32.model_dump(),
        "output_dir": str(tmp_path / "ft"),
        **kw,
    }
    return FinetuneRecipeConfig.model_validate(settings)


def test_finetune_on_a_selection_saves_adapter_merged_model_and_record(
    tmp_path, tiny_model_dir, select_run
):
    data, safe, run = select_run
    cfg = _ft_config(
        tmp_path,
        tiny_model_dir,
        data,
        selection={"scores": str(run / "scores.parquet"), "p": 0.5},
        extra={"path": str(safe)},
        extra_count=3,
        save_merged=True,
    )
    result = recipe.run_finetune(cfg, progress=False)
    out = result.run_dir
    assert (out / "adapter" / "adapter_config.json").exists()
    assert (out / "merged" / "config.json").exists()
    trained = [json.loads(x) for x in (out / "trained.jsonl").read_text().splitlines()]
    top = pq.read_table(run / "scores.parquet").to_pylist()
    best = {r["sample_id"] for r in top if r["rank"] <= n_keep(len(top), 0.5)}
    assert {r["sample_id"] for r in trained if r["source"] == "data"} == best
    assert sum(r["source"] == "extra" for r in trained) == 3
    summary = json.loads((out / "result.json").read_text())
    assert summary["trained"] == len(best) + 3 and summary["steps"] > 0
    assert (out / "metrics.jsonl").read_text().strip()

    # A finished run is reused, not retrained; another config in its folder is refused.
    calls = []
    orig = recipe.train
    recipe.train = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        again = recipe.run_finetune(cfg, progress=False)
    finally:
        recipe.train = orig
    assert calls == [] and again.summary == summary
    with pytest.raises(ConfigError, match="different config"):
        recipe.run_finetune(cfg.model_copy(update={"seed": 5}), progress=False)


def test_full_fine_tuning_saves_the_whole_model(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "data.jsonl", alpaca_rows(8))
    cfg = _ft_config(tmp_path, tiny_model_dir, data, lora={"enabled": False})
    result = recipe.run_finetune(cfg, progress=False)
    assert (result.run_dir / "model" / "config.json").exists()
    reloaded, _ = load_model_and_tokenizer(str(result.run_dir / "model"))
    for a, b in zip(reloaded.parameters(), result.model.parameters(), strict=True):
        assert torch.equal(a, b.detach())


def test_cli_finetune_refuses_scores_of_other_data(tmp_path, tiny_model_dir, select_run, capsys):
    _, _, run = select_run
    other = write_jsonl(tmp_path / "other.jsonl", alpaca_rows(20, prefix="job"))
    argv = ["finetune", "--model", str(tiny_model_dir), "--data", str(other), "--no-progress"]
    argv += ["--scores", str(run / "scores.parquet"), "--output-dir", str(tmp_path / "x")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "seal: error:" in err and "scores were computed on other data" in err
    assert not (tmp_path / "x").exists()


def test_cli_finetune_soft_weights(tmp_path, tiny_model_dir, select_run, capsys):
    data, _, run = select_run
    argv = ["finetune", "--model", str(tiny_model_dir), "--data", str(data), "--no-progress"]
    argv += ["--scores", str(run / "scores.parquet"), "--mode", "soft", "sft.epochs=1"]
    argv += ["--output-dir", str(tmp_path / "soft"), "runtime.precision=fp32"]
    argv += ["tokenize.max_length=64"]
    assert main(argv) == 0
    assert "fine-tuned on 20 samples" in capsys.readouterr().out
    trained = [
        json.loads(x) for x in (tmp_path / "soft" / "trained.jsonl").read_text().splitlines()
    ]
    weights = {
        r["sample_id"]: r["weight"] for r in pq.read_table(run / "scores.parquet").to_pylist()
    }
    assert {r["sample_id"]: r["weight"] for r in trained} == pytest.approx(weights)


def test_a_stopped_run_resumes_from_its_last_checkpoint(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "data.jsonl", alpaca_rows(16))
    cfg = _ft_config(
        tmp_path,
        tiny_model_dir,
        data,
        sft={**FAST_TRAIN, "save_steps": 2, "lr": 1e-2, "logging_steps": 1},
    )
    whole = recipe.run_finetune(cfg, progress=False)
    assert whole.summary["steps"] == 4
    out = whole.run_dir
    final = {n: p.detach().clone() for n, p in whole.model.named_parameters() if "lora_" in n}
    # Stopped after step 2: the last checkpoint and every final output are missing.
    shutil.rmtree(out / "checkpoints" / "checkpoint-4")
    shutil.rmtree(out / "adapter")
    (out / "result.json").unlink()
    calls = []
    orig = recipe.train
    recipe.train = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        resumed = recipe.run_finetune(cfg, progress=False)
    finally:
        recipe.train = orig
    assert calls == [1] and resumed.summary["steps"] == 4
    logged = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in logged if "loss" in r]
    # The second run trained steps 3 and 4 only, and their first logs were forgotten.
    assert steps == [1, 2, 3, 4] and len(logged) == 5
    for n, p in resumed.model.named_parameters():
        if "lora_" in n:
            assert torch.allclose(p, final[n], atol=1e-6), n

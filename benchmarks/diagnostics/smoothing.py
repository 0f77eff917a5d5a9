"""Smoothing measured after the fact on finished selector runs of the ranking grid.

`selector.smoothing` acts on the learned logits only, once training is over, so its
effect can be measured exactly on the logits a run stored (without smoothing) instead of
training again: for every finished `rank.py` run whose scores are raw logits, the AUROC
of ranking the harmful rows last and the harmful rows kept at p = 0.8, for the raw
logits, their cross-fitted prediction (`crossfit`) and `blend`, with sealft's own
features and folds (seed 0 over the samples in ID order, as in the runs: a smoothed run
from the same logits gives the same scores).

    python benchmarks/diagnostics/smoothing.py     # -> benchmarks/results/real_smoothing.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import CACHE, DATA  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from sealft.config import DataConfig, FeatureConfig  # noqa: E402
from sealft.data import load_sources  # noqa: E402
from sealft.io import write_json  # noqa: E402
from sealft.scores import n_keep, read_scores  # noqa: E402
from sealft.selection.features import ngram_features  # noqa: E402
from sealft.selection.smoothing import blend, crossfit  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "results" / "real_smoothing.json"


def quality(y: list[int], score: torch.Tensor) -> dict:
    keep = torch.argsort(-score, stable=True)[: n_keep(len(y), 0.8)].tolist()
    auroc = roc_auc_score(y, (-score).tolist())
    return {"auroc": round(float(auroc), 4), "kept@0.8": sum(y[i] for i in keep)}


def main() -> None:
    out = {}
    for run in sorted((CACHE / "rank").glob("*/*/*/scores.parquet")):
        folder = run.parent
        cfg = yaml.safe_load((folder / "config.yaml").read_text())["selector"]
        if cfg["smoothing"] != "none" or cfg["kind"] != "logits":
            continue  # only raw logits can be smoothed after the fact
        # In the order training saw them (by ID), so that the folds are the run's own.
        rows = sorted(read_scores(run).to_pylist(), key=lambda r: r["sample_id"])
        mix = DATA / folder.parent.name / f"{folder.name}.jsonl"
        by_id = {s.sample_id: s for s in load_sources(DataConfig(path=str(mix))).samples}
        samples = [by_id[r["sample_id"]] for r in rows]
        y = [int(s.record["harmful"]) for s in samples]
        logits = torch.tensor([r["score"] for r in rows], dtype=torch.float32)
        x = ngram_features(samples, FeatureConfig())
        key = f"{folder.parent.parent.name}/{folder.parent.name}/{folder.name}"
        out[key] = {
            "none": quality(y, logits),
            "crossfit": quality(y, crossfit(x, logits, seed=0)),
            "blend": quality(y, blend(x, logits, seed=0)),
        }
        print(key, out[key], flush=True)
    write_json(RESULTS, out)


if __name__ == "__main__":
    main()

"""Selector variants on the offline demo world, over several seeds.

    python benchmarks/demo_grid.py                 # Algorithm 1/2 x Adam/SGD, seeds 0-2
    python benchmarks/demo_grid.py --seeds 0 1 2 3 4

Each run is a full `seal demo` (world, alignment, selection) with selector overrides;
results accumulate in benchmarks/results/demo_grid.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from sealft.demo.demo import run_demo

RESULTS = Path(__file__).resolve().parent / "results" / "demo_grid.json"
# The 2x2 grid of the issue, with the loss over the whole response and no warm-up (the
# paper's), then "defaults": sealft's own defaults.
_PAPER_LOSS = {"selector.response_tokens": None, "selector.warmup_epochs": 0}
VARIANTS = {
    "defaults": {},
    "alg1-sgd": {"selector.algorithm": 1, "selector.optimizer": "sgd", "selector.lr": 1.0},
    "alg1-adam": {"selector.algorithm": 1, "selector.optimizer": "adam", "selector.lr": 5e-3},
    "alg2-sgd": {"selector.algorithm": 2, "selector.optimizer": "sgd", "selector.lr": 1.0},
    "alg2-adam": {"selector.algorithm": 2, "selector.optimizer": "adam", "selector.lr": 5e-3},
}
for _name in ("alg1-sgd", "alg1-adam", "alg2-sgd", "alg2-adam"):
    VARIANTS[_name].update(_PAPER_LOSS)
VARIANTS.update(
    {f"{k}-b": {**v, "selector.baseline": "batch"} for k, v in list(VARIANTS.items()) if v}
)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="*", choices=sorted(VARIANTS))
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in args.only or VARIANTS:
        for seed in args.seeds:
            key = f"{name}/seed{seed}"
            if key in results:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                summary = run_demo(tmp, seed=seed, progress=False, overrides=VARIANTS[name])
            results[key] = {k: summary[k] for k in ("auroc", "harmful_kept", "seconds")}
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=1))
    print("| variant | AUROC (mean ± sd) | harmful kept at p=0.8 (of 100) |")
    print("|---|---|---|")
    for name in VARIANTS:
        runs = [v for k, v in results.items() if k.startswith(name + "/")]
        if runs:
            auc = [r["auroc"] for r in runs]
            sd = statistics.stdev(auc) if len(auc) > 1 else 0.0
            kept = [r["harmful_kept"] for r in runs]
            print(
                f"| {name} | {statistics.mean(auc):.3f} ± {sd:.3f} (n={len(auc)}) | "
                f"{', '.join(map(str, kept))} |"
            )


if __name__ == "__main__":
    main()

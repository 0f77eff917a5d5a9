"""`seal select`: load → tokenize → train the selector → rank → write the run folder.

Everything that can fail on bad input (config, data, model) fails before the run folder
is touched; every file in it is written atomically, and a run killed mid-way resumes from
its last finished epoch when started again with the same config.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .bilevel import BilevelTrainer, adapter_names, jsonl_logger
from .config import ConfigError, DataConfig, SelectConfig, TokenizeConfig, as_list, dump_config
from .data import Dropped, Encoded, LoadedData, encode, load_samples, pad_id
from .modeling import add_lora, device_for, load_configured
from .selector import Selector, n_keep, ranking

SCORES_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("index", pa.int64()),
        ("logit", pa.float64()),
        ("weight", pa.float64()),
        ("rank", pa.int64()),
        ("selected", pa.bool_()),
    ]
)


def atomic_write(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    tmp.replace(path)


def write_parquet(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    atomic_write(path, sink.getvalue().to_pybytes())


def encode_configured(
    samples, tokenizer, cfg: TokenizeConfig, response_tokens: int | None = None
) -> Encoded:
    """`encode` with a config's length, overflow rule and template."""
    return encode(
        samples,
        tokenizer,
        max_length=cfg.max_length,
        overflow=cfg.overflow,
        template=cfg.template,
        response_tokens=response_tokens,
    )


def load_data(cfg: DataConfig) -> LoadedData:
    return load_samples(
        cfg.path,
        format=cfg.format,
        fields=cfg.fields,
        hub=cfg.hub,
        hub_config=cfg.hub_config,
        split=cfg.split,
        revision=cfg.revision,
        skip=cfg.skip,
        limit=cfg.limit,
    )


def load_sources(sources: DataConfig | list[DataConfig]) -> LoadedData:
    """One source, or several concatenated with exact duplicates across them dropped.

    `index` counts rows through the concatenation, so it stays unique: the second file's
    first row follows the first file's last.
    """
    parts = [load_data(source) for source in as_list(sources)]
    if len(parts) == 1:
        return parts[0]
    samples, dropped, seen, offset = [], [], set(), 0
    for part in parts:
        dropped += [replace(d, index=d.index + offset) for d in part.dropped]
        for s in part.samples:
            if s.sample_id in seen:
                dropped.append(Dropped(s.sample_id, s.index + offset, "duplicate"))
                continue
            seen.add(s.sample_id)
            samples.append(replace(s, index=s.index + offset))
        offset += 1 + max((x.index for x in [*part.samples, *part.dropped]), default=-1)
    return LoadedData(samples, dropped, " + ".join(p.source for p in parts))


def scores_table(selector: Selector, data: Encoded, p: float) -> pa.Table:
    """One row per scored sample, in input order."""
    logits = selector.logits.detach().double()
    ranks = ranking(logits)
    keep = n_keep(len(selector), p)
    table = pa.Table.from_pydict(
        {
            "sample_id": selector.sample_ids,
            "index": [s.index for s in data.samples],
            "logit": logits.tolist(),
            "weight": selector.weights().detach().double().tolist(),
            "rank": ranks.tolist(),
            "selected": (ranks <= keep).tolist(),
        },
        schema=SCORES_SCHEMA,
    )
    return table.sort_by("index")


def jsonl_text(records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)


@dataclass
class SelectResult:
    run_dir: Path
    scores: pa.Table
    dropped: list[Dropped]
    resumed_from_epoch: int = 0


def inputs_fingerprint(finetune: Encoded, safe: Encoded) -> str:
    """A hash of exactly which samples go in, so a run is never reused for other data."""
    digest = hashlib.sha256()
    for data in (finetune, safe):
        for s in data.samples:
            digest.update(s.sample_id.encode())
        digest.update(b"|")
    return digest.hexdigest()


def prepare_run_dir(
    run_dir: Path,
    config_text: str,
    fingerprint: str,
    *,
    done_marker: str,
    overwrite: bool = False,
    replace_stale: bool = False,
) -> bool:
    """Create or reuse a run folder; True when it already holds this exact finished run.

    A folder with another config or other input data is an error, unless `overwrite` (always
    start afresh) or `replace_stale` (start afresh only when the config or data differ, as
    `seal run` does for each of its steps). A matching unfinished run is kept for resuming.
    """
    saved, inputs = run_dir / "config.yaml", run_dir / "inputs.sha256"
    if saved.exists() and not overwrite:
        same_config = saved.read_text(encoding="utf-8") == config_text
        same_inputs = inputs.exists() and inputs.read_text(encoding="utf-8") == fingerprint
        if same_config and same_inputs:
            return (run_dir / done_marker).exists()
        if not replace_stale:
            what = (
                "a different config"
                if not same_config
                else "different data (same config, other samples)"
            )
            raise ConfigError(
                f"{run_dir} holds a run with {what}; choose another output_dir or pass --overwrite"
            )
        overwrite = True
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(inputs, fingerprint)
    atomic_write(saved, config_text)
    return False


def run_select(
    cfg: SelectConfig,
    *,
    overwrite: bool = False,
    replace_stale: bool = False,
    progress: bool = True,
    model=None,
    tokenizer=None,
) -> SelectResult:
    """Run `seal select`. `model`/`tokenizer` may be passed in to skip loading them."""
    cfg.check_ready()
    torch.manual_seed(cfg.seed)
    finetune = load_sources(cfg.data)
    safe = load_sources(cfg.safe)
    if model is None:
        model, tokenizer = load_configured(cfg.model)
    k = cfg.selector.response_tokens
    # Training sees the samples in ID order, so batches (and so every score) depend on the
    # content of the data set, never on the order of its rows.
    finetune.samples.sort(key=lambda s: s.sample_id)
    safe.samples.sort(key=lambda s: s.sample_id)

    ft = encode_configured(finetune.samples, tokenizer, cfg.tokenize, k)
    sf = encode_configured(safe.samples, tokenizer, cfg.tokenize, k)
    if len(ft) == 0:
        raise ConfigError(f"{finetune.source}: no fine-tuning sample left after tokenization")
    if len(sf) == 0:
        raise ConfigError(f"{safe.source}: no safe sample left after tokenization")
    dropped = finetune.dropped + ft.dropped

    run_dir = Path(cfg.output_dir)
    config_text = dump_config(cfg)
    done = prepare_run_dir(
        run_dir,
        config_text,
        inputs_fingerprint(ft, sf),
        done_marker="scores.parquet",
        overwrite=overwrite,
        replace_stale=replace_stale,
    )
    if done:
        return SelectResult(run_dir, pq.read_table(run_dir / "scores.parquet"), dropped)

    device = device_for(cfg.train.device)
    model.to(device)
    if cfg.lora.enabled:
        adapters = adapter_names(cfg.selector.algorithm)
        model = add_lora(
            model,
            r=cfg.lora.r,
            alpha=cfg.lora.alpha,
            dropout=cfg.lora.dropout,
            target_modules=cfg.lora.target_modules,
            adapter_names=adapters,
        )
    trainer = BilevelTrainer(
        model,
        ft,
        sf,
        selector_cfg=cfg.selector,
        train_cfg=cfg.train,
        pad=pad_id(tokenizer),
        seed=cfg.seed,
        lora=cfg.lora.enabled,
        device=device,
        run_dir=run_dir,
        progress=progress,
    )
    metrics = run_dir / "metrics.jsonl"
    if (run_dir / "checkpoint.pt").exists():
        trainer.load_checkpoint(run_dir / "checkpoint.pt")
        lines = (
            metrics.read_text(encoding="utf-8").splitlines(keepends=True)
            if metrics.exists()
            else []
        )
        atomic_write(
            metrics,
            "".join(line for line in lines if json.loads(line)["epoch"] < trainer.epochs_done),
        )
    else:
        atomic_write(metrics, "")
    atomic_write(
        run_dir / "dropped.jsonl",
        jsonl_text(
            {"sample_id": d.sample_id, "index": d.index, "reason": d.reason} for d in dropped
        ),
    )
    resumed_from = trainer.epochs_done
    selector = trainer.train(log=jsonl_logger(metrics))

    selector.save(
        run_dir / "selector.safetensors",
        extra={"p": str(cfg.p), "algorithm": str(cfg.selector.algorithm)},
    )
    scores = scores_table(selector, ft, cfg.p)
    chosen = {
        sid
        for sid, keep in zip(
            scores.column("sample_id").to_pylist(),
            scores.column("selected").to_pylist(),
            strict=True,
        )
        if keep
    }
    selected = [
        s.record for s in sorted(ft.samples, key=lambda s: s.index) if s.sample_id in chosen
    ]
    atomic_write(run_dir / "selected.jsonl", jsonl_text(selected))
    # scores.parquet is written last: its presence marks a finished run.
    write_parquet(run_dir / "scores.parquet", scores)
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return SelectResult(run_dir, scores, dropped, resumed_from)

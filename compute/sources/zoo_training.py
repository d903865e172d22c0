"""The zoo's recipe: which runs train which models, and training them into a folder.

The zoo holds, per dataset:

- ``trained``: every family x width x seed, snapshotted after 1, 5 and 25 epochs;
- ``untrained``: the seed-0 run of every family x width before its first step (random-init twins);
- ``checkpoint``: two runs snapshotted 12 times over training (a series each, tagged with ``step``);
- ``shuffled-labels``: the widest MLP (3 seeds) and CNN (1 seed) trained long on permuted
  labels (memorising), each beside its ``true-labels`` twin: the same architecture, seed and
  recipe on the true labels (generalising); the ``twin`` tag names the other one.

:func:`build_zoo` writes the weights as ``.safetensors`` and the manifest
(:mod:`compute.sources.zoo_manifest`) into a folder; :func:`compute.sources.zoo_cache.ensure_zoo`
builds it once per dataset. Deterministic: each run seeds torch and its data order; training
uses one thread.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from compute.measures.confusion import topk_accuracy
from compute.settings import private_dir
from compute.sources.stimuli import dataset_split
from compute.sources.weights import weights_key
from compute.sources.zoo_architectures import build_architecture, family_hparams
from compute.sources.zoo_manifest import ZooEntry, write_manifest

WIDTHS = {"mlp": (4, 8, 16, 45), "cnn": (2, 4, 8, 16)}
SEEDS = (0, 1, 2)
EPOCHS = (1, 5, 25)
SERIES = (("mlp", 16, 10), ("cnn", 4, 10))  # (family, width, seed) of the checkpoint series
SERIES_STEPS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 400, 800, 1600)
# (family, width, seeds, epochs) trained on shuffled and on true labels, batch MEMORISE_BATCH
SHUFFLED = (("mlp", 45, (0, 1, 2), 400), ("cnn", 16, (0,), 150))
BATCH_SIZE = 32
MEMORISE_BATCH = 128
LEARNING_RATE = {"mlp": 1e-2, "cnn": 1e-3}  # sigmoid MLPs learn slowly: a larger step
MEMORISE_LR = 1e-2


@dataclass(frozen=True)
class Run:
    """One training run and the snapshots it leaves: ``snapshots`` maps step -> (name, group, tags)."""

    family: str
    width: int
    seed: int
    steps: int
    snapshots: dict
    shuffled: bool = False
    batch_size: int = BATCH_SIZE
    lr: float | None = None

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else LEARNING_RATE[self.family]


def _steps_per_epoch(n_train: int, batch_size: int = BATCH_SIZE) -> int:
    return -(-n_train // batch_size)


def plan(dataset: str = "digits", n_train: int = 1297, prefix: str = "") -> list[Run]:
    """The zoo's runs, in build order; model names are unique within a dataset."""
    per_epoch = _steps_per_epoch(n_train)
    runs = []
    for family, widths in WIDTHS.items():
        for width in widths:
            for seed in SEEDS:
                base = f"{prefix}{family}-w{width}-s{seed}"
                tags = {"family": family, "width": width, "seed": seed, "labels": "true"}
                snaps = {e * per_epoch: (f"{base}-e{e}", "trained", {**tags, "epochs": e, "steps": e * per_epoch})
                         for e in EPOCHS}
                if seed == 0:
                    snaps[0] = (f"{base}-untrained", "untrained", {**tags, "epochs": 0, "steps": 0})
                runs.append(Run(family, width, seed, max(EPOCHS) * per_epoch, snaps))
    for family, width, seed in SERIES:
        series = f"{prefix}{family}-w{width}-s{seed}"
        tags = {"family": family, "width": width, "seed": seed, "labels": "true", "series": series}
        snaps = {s: (f"{series}-step{s:04d}", "checkpoint",
                     {**tags, "step": s, "steps": s, "epochs": round(s / per_epoch, 3)})
                 for s in SERIES_STEPS}
        runs.append(Run(family, width, seed, max(SERIES_STEPS), snaps))
    for family, width, seeds, epochs in SHUFFLED:
        steps = epochs * _steps_per_epoch(n_train, MEMORISE_BATCH)
        for seed in seeds:
            base = f"{prefix}{family}-w{width}-s{seed}"
            names = {True: f"{base}-shuffled-e{epochs}", False: f"{base}-true-e{epochs}"}
            for shuffled in (True, False):
                labels = "shuffled" if shuffled else "true"
                tags = {"family": family, "width": width, "seed": seed, "labels": labels,
                        "epochs": epochs, "steps": steps, "twin": names[not shuffled]}
                runs.append(Run(family, width, seed, steps,
                                {steps: (names[shuffled], f"{labels}-labels", tags)},
                                shuffled=shuffled, batch_size=MEMORISE_BATCH, lr=MEMORISE_LR))
    return runs


@torch.no_grad()
def _scores(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    model.eval()
    return torch.cat([model(images[i:i + 1024]) for i in range(0, len(images), 1024)])


def train_labels(run: Run, train_y: torch.Tensor) -> torch.Tensor:
    """The labels a run learns: the true ones, or a fixed permutation of them (memorising)."""
    if not run.shuffled:
        return train_y
    return train_y[torch.randperm(len(train_y), generator=torch.Generator().manual_seed(1000 + run.seed))]


def _train(run: Run, hparams: dict, train_x, train_y, on_snapshot: Callable) -> None:
    """Adam on cross-entropy, minibatches in a seeded order; ``on_snapshot(step, model)`` at the
    run's snapshot steps (0: before training)."""
    torch.manual_seed(run.seed)
    model = build_architecture(run.family, **hparams)
    order_gen = torch.Generator().manual_seed(run.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=run.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    step, n = 0, len(train_y)
    if 0 in run.snapshots:
        on_snapshot(0, model)
    while step < run.steps:
        order = torch.randperm(n, generator=order_gen)
        for start in range(0, n, run.batch_size):
            batch = order[start:start + run.batch_size]
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(train_x[batch]), train_y[batch]).backward()
            optimizer.step()
            step += 1
            if step in run.snapshots:
                on_snapshot(step, model)
            if step >= run.steps:
                break


def build_zoo(dataset: str, out_dir: str | Path, select: Callable[[str], bool] | None = None,
              progress: bool = False) -> list[ZooEntry]:
    """Train the zoo (or the models ``select(name)`` keeps) into ``out_dir``; return its entries.

    Writes ``<name>.safetensors`` per model and ``manifest.json`` last. ``out_dir`` must be empty
    or missing; :func:`~compute.sources.zoo_cache.ensure_zoo` calls this on a temporary folder and renames it.
    """
    from safetensors.torch import save_file
    from tqdm import tqdm

    out = Path(out_dir)
    private_dir(out, tighten=False)
    train_x, train_y, stimuli = dataset_split(dataset)
    image_shape = tuple(train_x.shape[1:])
    num_classes = stimuli.num_classes
    prefix = "" if dataset == "digits" else f"{dataset}-"
    runs = plan(dataset, len(train_y), prefix)
    if select is not None:
        runs = [r for r in runs if any(select(name) for name, _, _ in r.snapshots.values())]
    entries: list[ZooEntry] = []
    bar = tqdm(total=sum(r.steps for r in runs), desc=f"building the {dataset} zoo", unit="step",
               file=sys.stderr, disable=not progress, mininterval=0.5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest and makes the weights reproducible
    try:
        for run in runs:
            hparams = family_hparams(run.family, run.width, image_shape, num_classes)

            labels = train_labels(run, train_y)

            def snapshot(step: int, model: nn.Module, run=run, hparams=hparams, labels=labels) -> None:
                name, group, tags = run.snapshots[step]
                tags = {"group": group, **tags, "lr": run.learning_rate, "batch_size": run.batch_size}
                if select is not None and not select(name):
                    return
                state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
                scores = _scores(model, stimuli.images)
                train_scores = _scores(model, train_x)
                save_file(state, str(out / f"{name}.safetensors"))
                entries.append(ZooEntry(
                    name=name, architecture=run.family, hparams=hparams, tags=tags,
                    key=weights_key(state), accuracy=topk_accuracy(scores, stimuli.labels, 1),
                    top5=topk_accuracy(scores, stimuli.labels, 5),
                    train_accuracy=topk_accuracy(train_scores, labels.numpy(), 1),
                    num_classes=num_classes, file=f"{name}.safetensors", dataset=dataset))

            _train(run, hparams, train_x, labels, snapshot)
            bar.update(run.steps)
            bar.set_postfix_str(f"{len(entries)} models", refresh=False)
    finally:
        torch.set_num_threads(threads)
        bar.close()
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise RuntimeError("two zoo models have identical weights; the recipe must give distinct models")
    return write_manifest(out, dataset, stimuli, entries)

"""The built-in model zoo: small MLPs and CNNs trained on a fixed split, cached once.

The families follow the RSA-vs-performance paper (Table 1): a sigmoid MLP (FC + Sigmoid x 3, FC
out) and a small CNN (Conv, MaxPool, ReLU, BatchNorm, Dropout; 2 x [FC, ReLU, BatchNorm,
Dropout]; FC out), with widths varied. The zoo holds, per dataset:

- ``trained``: every family x width x seed, snapshotted after 1, 5 and 25 epochs;
- ``untrained``: the seed-0 run of every family x width before its first step (random-init twins);
- ``checkpoint``: two runs snapshotted 12 times over training (a series each, tagged with ``step``);
- ``shuffled-labels``: the widest MLP (3 seeds) and CNN (1 seed) trained long on permuted
  labels (memorising), each beside its ``true-labels`` twin: the same architecture, seed and
  recipe on the true labels (generalising); the ``twin`` tag names the other one.

Built with ``python -m compute.zoo build --dataset digits`` or on first use (:func:`ensure_zoo`)
into ``<zoo_dir>/<dataset>/`` (weights as ``.safetensors``, one ``manifest.json``), written to a
temporary folder and renamed, so a half-built zoo is never taken as built. Deterministic: each
run seeds torch and its data order; training uses one thread.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

ZOO_VERSION = 1
DATASETS = ("digits", "mnist", "fashionmnist", "cifar10")

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
DROPOUT = 0.2


# --- architectures ---------------------------------------------------------------------------

class SigmoidMLP(nn.Module):
    """fc1 -> act1 -> fc2 -> act2 -> fc3 -> act3 -> out (logits); input flattened."""

    default_layers = ("act1", "act2", "act3")

    def __init__(self, hidden=(32, 32, 32), in_features: int = 64, num_classes: int = 10):
        super().__init__()
        h1, h2, h3 = (int(h) for h in hidden)
        self.flatten = nn.Flatten()
        self.fc1, self.act1 = nn.Linear(int(in_features), h1), nn.Sigmoid()
        self.fc2, self.act2 = nn.Linear(h1, h2), nn.Sigmoid()
        self.fc3, self.act3 = nn.Linear(h2, h3), nn.Sigmoid()
        self.out = nn.Linear(h3, int(num_classes))

    def forward(self, x):
        x = self.act1(self.fc1(self.flatten(x)))
        x = self.act2(self.fc2(x))
        return self.out(self.act3(self.fc3(x)))


class SmallCNN(nn.Module):
    """conv1, pool1, relu1, bn1, drop1 -> fc2, relu2, bn2, drop2 -> fc3, relu3, bn3, drop3 -> out."""

    default_layers = ("bn1", "bn2", "bn3")

    def __init__(self, channels: int = 8, hidden=(64, 32), in_channels: int = 1, image_size: int = 8,
                 num_classes: int = 10, dropout: float = DROPOUT):
        super().__init__()
        channels, (h2, h3) = int(channels), (int(h) for h in hidden)
        side = int(image_size) // 2
        self.conv1 = nn.Conv2d(int(in_channels), channels, kernel_size=3, padding=1)
        self.pool1, self.relu1 = nn.MaxPool2d(2), nn.ReLU()
        self.bn1, self.drop1 = nn.BatchNorm2d(channels), nn.Dropout(dropout)
        self.flatten = nn.Flatten()
        self.fc2, self.relu2 = nn.Linear(channels * side * side, h2), nn.ReLU()
        self.bn2, self.drop2 = nn.BatchNorm1d(h2), nn.Dropout(dropout)
        self.fc3, self.relu3 = nn.Linear(h2, h3), nn.ReLU()
        self.bn3, self.drop3 = nn.BatchNorm1d(h3), nn.Dropout(dropout)
        self.out = nn.Linear(h3, int(num_classes))

    def forward(self, x):
        x = self.drop1(self.bn1(self.relu1(self.pool1(self.conv1(x)))))
        x = self.drop2(self.bn2(self.relu2(self.fc2(self.flatten(x)))))
        x = self.drop3(self.bn3(self.relu3(self.fc3(x))))
        return self.out(x)


ARCHITECTURES = {"mlp": SigmoidMLP, "cnn": SmallCNN}


def build_architecture(arch: str, **hparams) -> nn.Module:
    """A fresh zoo module: ``"mlp"`` (hidden, in_features, num_classes) or ``"cnn"`` (channels,
    hidden, in_channels, image_size, num_classes, dropout). Unknown names raise ``ValueError``."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown zoo architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[arch](**hparams)
    except TypeError as error:
        raise ValueError(f"bad hyper-parameters for {arch!r}: {error}") from None


def family_hparams(family: str, width: int, image_shape: tuple[int, int, int], num_classes: int) -> dict:
    """Hyper-parameters of one family at one width for images of shape (C, H, W)."""
    c, h, w = image_shape
    if family == "mlp":
        return {"hidden": [width] * 3, "in_features": c * h * w, "num_classes": num_classes}
    return {"channels": width, "hidden": [8 * width, 4 * width], "in_channels": c, "image_size": h,
            "num_classes": num_classes}


# --- the recipe ----------------------------------------------------------------------------

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


@dataclass
class ZooEntry:
    """One model of the zoo, as recorded in its manifest."""

    name: str
    architecture: str
    hparams: dict
    tags: dict
    key: str
    accuracy: float
    top5: float
    train_accuracy: float  # on the labels it was trained on (shuffled ones for memorising models)
    num_classes: int
    file: str
    dataset: str = "digits"
    path: Path | None = field(default=None, compare=False)


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


def topk_accuracy(scores: torch.Tensor, labels, k: int = 1) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores (ties broken by index)."""
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices
    return float((top == labels[:, None]).any(dim=1).float().mean())


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
    or missing; :func:`ensure_zoo` calls this on a temporary folder and renames it.
    """
    from safetensors.torch import save_file
    from tqdm import tqdm

    from compute.sources.models import weights_key
    from compute.sources.stimuli import dataset_split

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
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
    manifest = {"version": ZOO_VERSION, "dataset": dataset, "stimuli": stimuli.name,
                "stimuli_key": stimuli.key, "torch": torch.__version__,
                "models": [{k: v for k, v in asdict(e).items() if k != "path"} for e in entries]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return [_with_path(e, out) for e in entries]


def _with_path(entry: ZooEntry, directory: Path) -> ZooEntry:
    entry.path = directory / entry.file
    return entry


# --- the cached zoo -------------------------------------------------------------------------

def zoo_path(dataset: str = "digits") -> Path:
    from compute.settings import get_settings

    return get_settings().zoo_dir / dataset


_MANIFESTS: dict[tuple[str, int], list[ZooEntry]] = {}


def load_manifest(directory: str | Path) -> list[ZooEntry] | None:
    """The entries of a built zoo folder, or None when it is missing, partial or outdated."""
    path = Path(directory) / "manifest.json"
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    cached = _MANIFESTS.get((str(path), stamp))
    if cached is not None:
        return cached
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("version") != ZOO_VERSION:
        return None
    entries = [_with_path(ZooEntry(**m), path.parent) for m in manifest["models"]]
    _MANIFESTS[(str(path), stamp)] = entries
    return entries


@contextlib.contextmanager
def _lock(path: Path):
    """An exclusive advisory lock, so two processes starting at once build the zoo once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_zoo(dataset: str = "digits", progress: bool = True, force: bool = False) -> list[ZooEntry]:
    """The zoo of ``dataset``: loaded from its manifest when built, else built now (and cached)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown zoo dataset {dataset!r}; choose one of {list(DATASETS)}")
    target = zoo_path(dataset)
    if not force:
        entries = load_manifest(target)
        if entries is not None:
            return entries
    with _lock(target.parent / f".{dataset}.lock"):
        if not force:
            entries = load_manifest(target)  # another process may have built it meanwhile
            if entries is not None:
                return entries
        tmp = Path(tempfile.mkdtemp(prefix=f".{dataset}-building-", dir=target.parent))
        try:
            build_zoo(dataset, tmp, progress=progress)
            if target.exists():
                old = target.with_name(f".{dataset}-old-{os.getpid()}")
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    entries = load_manifest(target)
    if entries is None:
        raise RuntimeError(f"the zoo was built but {target}/manifest.json cannot be read")
    return entries


def main(argv: list[str] | None = None) -> int:
    """``python -m compute.zoo build --dataset digits [--force] [--quiet]``."""
    parser = argparse.ArgumentParser(prog="python -m compute.zoo", description="Build the built-in model zoo.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="train and cache the zoo of one dataset")
    build.add_argument("--dataset", default="digits", choices=DATASETS)
    build.add_argument("--force", action="store_true", help="rebuild even when it is cached")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    start = time.perf_counter()
    try:
        entries = ensure_zoo(args.dataset, progress=not args.quiet, force=args.force)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    accuracy = [e.accuracy for e in entries]
    groups: dict[str, int] = {}
    for e in entries:
        groups[e.tags["group"]] = groups.get(e.tags["group"], 0) + 1
    print(f"{len(entries)} models in {zoo_path(args.dataset)} ({time.perf_counter() - start:.1f} s); "
          f"groups {groups}; accuracy {min(accuracy):.3f} to {max(accuracy):.3f}")
    return 0

"""Limits on the work one request may ask for: jobs per client, and memory per job.

Both are checked at submission, before anything is queued, and raise a :class:`LimitExceeded`
whose ``http_status`` and message the web layer can show as they are.

The memory estimate is a pre-flight upper bound of the largest array set one step of a job
holds at once (its inputs, its working matrices and its output), from the shapes of the
arrays involved: each kind's ``estimate`` (compute/engine/kinds.py), so every kind has one.
It needs no computation beyond one image through the model to learn a layer's width
(cached), or the stored shapes of inputs that are computed already.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from compute.engine.kinds import KINDS
from compute.settings import format_bytes


class LimitExceeded(Exception):
    """A request was refused by a limit; ``str(error)`` says which and what to do."""

    http_status = 429


class TooManyJobs(LimitExceeded):
    """The client has as many jobs queued or running as it may have."""

    http_status = 429


class TooLarge(LimitExceeded):
    """The job would need more memory than the configured budget."""

    http_status = 413


@dataclass(frozen=True)
class Step:
    """One step of a job: the bytes it holds at its peak, its rough time, and how to ask for less."""

    kind: str
    bytes: int
    seconds: float
    what: str
    fix: str
    key: str  # the artifact's key


_models: dict[str, object] = {}
_widths: dict[tuple, int] = {}
_flops: dict[tuple, float] = {}


def _model_info(key: str):
    """The ModelInfo of a weights key, from one listing of every model (renewed on a miss)."""
    if key not in _models:
        from compute.sources.models import list_models

        _models.clear()
        _models.update({m.key: m for m in list_models(None)})
    return _models[key]


def _layer_width(model_key: str, stimuli: str, layer: str, pooling: str) -> int:
    """Width D of a layer's activations: one stimulus through the model.

    Weights do not change shapes, so torch models of one architecture and hyperparameters
    share the answer (the zoo's 112 models are a handful of architectures); any other model
    (an ONNX graph, uploaded activations) is its own.
    """
    from compute.sources.representations import TORCH_SOURCES

    info = _model_info(model_key)
    owner = (info.architecture, json.dumps(info.hparams, sort_keys=True)) if info.source in TORCH_SOURCES else info.key
    signature = (owner, stimuli, layer, pooling)
    if signature not in _widths:
        from compute.sources.representations import open_model, resolve
        from compute.sources.stimuli import stimulus_set_named

        model = open_model(info)
        _widths[signature] = model.width(stimulus_set_named(stimuli), resolve(model, layer), pooling)
    return _widths[signature]


def forward_seconds(model_key: str, stimuli: str) -> float:
    """Rough seconds of one forward pass of the model over the stimulus set: its FLOPs on one
    stimulus (counted on the CPU, once per architecture) times N, at ``FLOPS_PER_S``; 0 for a
    model that cannot say (uploaded activations are read, not run)."""
    from compute.engine.kinds import FLOPS_PER_S
    from compute.sources.representations import TORCH_SOURCES

    try:
        info = _model_info(model_key)
        owner = (info.architecture, json.dumps(info.hparams, sort_keys=True)) if info.source in TORCH_SOURCES \
            else info.key
        if (owner, stimuli) not in _flops:
            from compute.sources.representations import open_model
            from compute.sources.stimuli import stimulus_set_named

            model = open_model(info)
            counter = getattr(model, "flops", None)
            _flops[owner, stimuli] = counter(stimulus_set_named(stimuli)) if counter else 0.0
        return _flops[owner, stimuli] * _num_stimuli(stimuli) / FLOPS_PER_S
    except Exception:  # noqa: BLE001 - no estimate; the job itself reports any real problem
        return 0.0


@lru_cache(maxsize=64)
def _num_stimuli(stimuli: str) -> int:
    from compute.sources.stimuli import stimulus_set_named

    return len(stimulus_set_named(stimuli))


def default_shape(spec) -> tuple[int, ...] | None:
    """Shape of an activations/predictions artifact not computed yet; None when unknown.

    A spec that cannot be resolved (a bad layer name, a missing model) gives None: its job
    will fail with the reason, which is the better place to tell it.
    """
    try:
        n = _num_stimuli(spec.locate.get("stimuli", "digits"))
        if spec.kind == "predictions":
            return (n, _model_info(spec.params["model"]).num_classes or 1000)
        p = spec.params
        return (n, _layer_width(p["model"], spec.locate.get("stimuli", "digits"), p["layer"], p["pooling"]))
    except Exception:  # noqa: BLE001 - unknown size; the job itself reports the problem
        return None


def job_steps(spec, shape_of: Callable) -> list[Step]:
    """The steps of computing ``spec`` (each distinct artifact once), inputs first.

    ``shape_of(spec)`` gives an artifact's shape when it is known without this estimate
    (stored already, or an activations/predictions spec); it may return None. A step whose
    inputs' shapes are not known has no estimate (its job will tell what went wrong).
    """
    shapes: dict[str, tuple[int, ...] | None] = {}
    steps = []
    for s in {s.key: s for s in spec.walk()}.values():
        known = shape_of(s)
        inputs = [shapes.get(i.key) for i in s.inputs] if s.inputs else [known]
        shapes[s.key] = known
        if any(shape is None for shape in inputs):
            continue
        cost = KINDS[s.kind].estimate(s, inputs)
        shapes[s.key] = known or cost.shape
        steps.append(Step(s.kind, cost.bytes, cost.seconds, cost.what, cost.fix, s.key))
    return steps


@dataclass(frozen=True)
class Work:
    """What computing a spec would take beyond what is cached: artifacts to compute, forward
    passes among them (one per model, stimulus set and pooling) and the steps' summed bytes."""

    artifacts: int
    forward_passes: int
    bytes: int
    seconds: float = 0.0

    def describe(self) -> str:
        passes = f", {self.forward_passes} forward pass{'es' if self.forward_passes != 1 else ''}" \
            if self.forward_passes else ""
        return (f"{self.artifacts} result{'s' if self.artifacts != 1 else ''} to compute{passes}, about "
                f"{format_bytes(self.bytes)} of memory and {format_seconds(self.seconds)}")


def format_seconds(seconds: float) -> str:
    """A rough duration in words: "under a second", "about 40 s", "about 11 min"."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def missing_work(specs, has: Callable, shape_of: Callable) -> Work:
    """The :class:`Work` of computing ``specs`` given ``has(spec)`` (cached) and ``shape_of``."""
    missing = {s.key: s for spec in specs for s in spec.walk() if not has(s)}
    # One forward pass per model, stimulus set and pooling (all its layers), one per predictions.
    passes = {(s.params["model"], s.params["stimuli"], s.params.get("pooling", s.kind)): s.locate.get("stimuli", "digits")
              for s in missing.values() if s.kind in ("activations", "predictions")}
    steps = {step.key: step for spec in specs for step in job_steps(spec, shape_of) if step.key in missing}
    forward = sum(forward_seconds(model, name) for (model, _, _), name in passes.items())
    extractions = sum(1 for (_, _, pooling) in passes if pooling != "predictions")
    return Work(len(missing), extractions, sum(step.bytes for step in steps.values()),
                sum(step.seconds for step in steps.values()) + forward)


def check_memory(spec, budget: int | None, shape_of: Callable) -> None:
    """Raise :class:`TooLarge` when a step of ``spec`` needs more than ``budget`` bytes."""
    if not budget:
        return
    steps = job_steps(spec, shape_of)
    if not steps:
        return
    worst = max(steps, key=lambda step: step.bytes)
    if worst.bytes > budget:
        raise TooLarge(
            f"this job would need about {format_bytes(worst.bytes)} of memory for {worst.what}, over the "
            f"budget of {format_bytes(budget)} (REPSCOPE_MEMORY_BUDGET_BYTES); to reduce it, {worst.fix}"
        )


def check_client(client: str | None, active: int, cap: int | None) -> None:
    """Raise :class:`TooManyJobs` when ``client`` already has ``cap`` jobs queued or running."""
    if client is not None and cap and active >= cap:
        raise TooManyJobs(
            f"you have {active} jobs queued or running, the most allowed per client "
            f"(REPSCOPE_JOBS_PER_CLIENT={cap}); wait for one to finish or cancel one, then try again"
        )

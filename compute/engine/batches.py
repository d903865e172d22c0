"""A job's missing activations, computed in batches of models, and its progress.

:func:`compute_activations` is the first step of :func:`compute.engine.artifacts.ensure`. The
missing activations specs are grouped by (model, stimulus set, pooling): one forward pass of
a model serves every layer asked of it. The groups run in batches of one stimulus set and
pooling, the models of one architecture and hyperparameters next to each other, so that they
share one built module with each one's weights loaded in turn
(:func:`compute.sources.representations.open_models`: the zoo's 112 models build 8 modules).
A missing spec whose inputs are all among one model's fresh activations (its input RDMs, a
dimensionality) is computed at once from the arrays in memory, never read back.

The store afterwards holds exactly the artifacts, keys and arrays, that computing each spec
on its own leaves (tests/integration/test_batches.py); cancel is checked before each model, so a
cancelled job leaves each model's activations with what they feed (its RDMs), never one alone.
What a job is estimated to cost (compute/engine/limits.py) is the sum of its steps, batched or
not. Each model's activations are claimed (compute/engine/claims.py) until the batch's commit:
another job needing them waits, then reads them.
"""
from __future__ import annotations

import json
import math
from contextlib import ExitStack, contextmanager
from itertools import groupby

from compute.engine.claims import claim
from compute.engine.kinds import KINDS
from compute.engine.recipes import Context, stimuli_of

# A model whose forward pass is bounded under this many FLOPs a stimulus (:func:`_small`; the
# zoo's bounds are 4e4 to 5e6, their true counts 7e2 to 1e5) runs, with what its activations
# feed, on one torch thread: ops this small lose more to waking and waiting for a second thread
# than it gives them (the zoo's 112 forward passes on two busy cores: 33 s on two threads, 1.9
# s on one).
SMALL_FORWARD_FLOPS = 1e7


class Steps:
    """A job's progress over ``total`` steps (artifacts to make), reported through ``ctx``."""

    def __init__(self, ctx: Context, total: int):
        self.ctx, self.total, self.done = ctx, max(1, total), 0

    def step(self, kind: str) -> None:
        """One more artifact of ``kind`` made."""
        self.done += 1
        self.ctx.report(self.done / self.total, f"{kind} {self.done}/{self.total}")

    def within(self) -> Context:
        """The context of the next step: its own progress (0 to 1) shown as the share of the
        job it is, after the steps done; the job's cancel flag."""
        def report(fraction: float, message: str) -> None:
            self.ctx.report((self.done + min(max(fraction, 0.0), 1.0)) / self.total, message)

        return Context(report=report, should_stop=self.ctx.should_stop)


@contextmanager
def naming(spec):
    """Prefix a ValueError of an activations or RDM step with the model and layer it was for."""
    acts = spec if spec.kind == "activations" else (
        spec.inputs[0] if spec.kind == "rdm" and spec.inputs and spec.inputs[0].kind == "activations" else None)
    try:
        yield
    except ValueError as error:
        if acts is None:
            raise
        layer = acts.params.get("layer")
        raise ValueError(f"model {acts.params['model']}, layer {layer!r} ({spec.kind}): {error}") from error


def _order(groups) -> list[tuple]:
    """``(group, model info, kin)`` for the groups' keys (model, stimuli, pooling) in batches:
    by stimulus set and pooling, then kin (architecture and hyperparameters; a model the
    registry does not know last, by its key: opening it says why)."""
    from compute.sources.models import list_models

    infos = {info.key: info for info in list_models(None)}

    def kin(model: str) -> tuple:
        info = infos.get(model)
        return (info.architecture, json.dumps(info.hparams, sort_keys=True)) if info else ("\uffff", model)

    ordered = sorted(groups, key=lambda group: (group[1], group[2], kin(group[0]), group[0]))
    return [(group, infos.get(group[0], group[0]), kin(group[0])) for group in ordered]


@contextmanager
def _threads(small: bool):
    """One torch thread inside the block when ``small``, else as many as before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1 if small else before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _small(model, stimuli) -> bool:
    """Whether a bound on ``model``'s forward FLOPs a stimulus, 2 x its parameters x the
    stimulus's pixels (each weight meets each pixel at most once: a convolution's, at stride
    1), is under :data:`SMALL_FORWARD_FLOPS`; False for a model that is no torch module.
    (Counting them exactly, torch's FLOP counter, imports torch._dynamo: seconds.)"""
    module = getattr(model, "module", None)
    if module is None:
        return False
    pixels = math.prod(stimuli.images.shape[2:]) if stimuli.images.ndim > 2 else 1
    return 2 * sum(p.numel() for p in module.parameters()) * pixels < SMALL_FORWARD_FLOPS


def compute_activations(missing: list, store, steps: Steps) -> None:
    """Compute the ``missing`` specs' activations (see the module's note) and what one model's
    fresh activations alone feed; each batch's artifacts are committed together as it ends
    (:meth:`compute.engine.store.ArtifactStore.writing`), also when it ends by cancel or an error."""
    from compute.sources.representations import open_models

    groups: dict[tuple, list] = {}
    for spec in missing:
        if spec.kind == "activations":
            groups.setdefault((spec.params["model"], spec.params["stimuli"], spec.params["pooling"]), []).append(spec)
    if not groups:
        return
    member = {spec.key: group for group, specs in groups.items() for spec in specs}
    fed: dict[tuple, list] = {}
    for spec in missing:
        owners = {member.get(i.key) for i in spec.inputs}
        if spec.kind != "activations" and len(owners) == 1 and None not in owners:
            fed.setdefault(owners.pop(), []).append(spec)
    order = _order(groups)
    models = open_models(info for _, info, _ in order)
    for _, batch in groupby(order, key=lambda item: (item[0][1:], item[2])):
        # Claims released after the batch's commit (exits run in reverse): a job waiting on one reads it.
        with ExitStack() as claims, store.writing() as writes, ExitStack() as policy:
            threads_set = False  # by the batch's first model it computes
            for group, _, _ in batch:
                specs = groups[group]
                steps.ctx.check()
                for spec in sorted(specs, key=lambda s: s.key):
                    claims.enter_context(claim(store, spec.kind, spec.key, steps.within()))
                with naming(specs[0]):
                    model = next(models)
                    if all(store.has(spec.kind, spec.key) for spec in specs):  # another job made them meanwhile
                        for spec in specs:
                            steps.step(spec.kind)
                        continue  # what they feed is made from the store, in ensure's next steps
                    if not threads_set:
                        policy.enter_context(_threads(_small(model, stimuli_of(specs[0]))))
                        threads_set = True
                    computed = KINDS["activations"].recipe(specs, steps.within(), model)
                arrays = {}
                for spec, (array, meta) in zip(specs, computed):
                    writes.put(spec.kind, spec.key, array, meta)
                    arrays[spec.key] = array
                    steps.step(spec.kind)
                for spec in fed.get(group, ()):  # no cancel check: a model's artifacts stay whole
                    with naming(spec):
                        array, meta = KINDS[spec.kind].recipe(spec, [arrays[i.key] for i in spec.inputs],
                                                              steps.within())
                    writes.put(spec.kind, spec.key, array, meta)
                    steps.step(spec.kind)

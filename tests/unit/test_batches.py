"""A job's progress over its steps (compute/engine/batches.py): a step's own progress is shown as
its share of the job, so the bar never runs back."""
from compute.engine.batches import Steps
from compute.engine.recipes import Context


def test_a_steps_own_progress_is_its_share_of_the_job_and_never_runs_back():
    seen = []
    steps = Steps(Context(report=lambda fraction, message: seen.append((fraction, message))), 4)
    steps.step("activations")
    inner = steps.within()
    inner.report(0.5, "extracting activations")
    inner.report(2.0, "extracting activations")  # clipped to the step
    steps.step("activations")
    steps.step("rdm")
    assert [fraction for fraction, _ in seen] == [0.25, 0.375, 0.5, 0.5, 0.75]
    assert seen[-1][1] == "rdm 3/4"
    assert Steps(Context(), 0).total == 1  # nothing missing: no division by zero

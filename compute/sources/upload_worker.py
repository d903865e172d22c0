"""The limited worker process that checks every upload: ``python -m compute.sources.upload_worker``.

:func:`run_in_worker` starts it with the upload kind and its arguments; it runs the kind's task
(``TASKS``: ``"module:function"``, imported only in the worker, with what it imports first) under an address-space limit
(``REPSCOPE_UPLOAD_MEMORY_BYTES`` above what its imports take), a CPU limit and a wall-clock
limit (``REPSCOPE_UPLOAD_TIME_LIMIT``), and answers one JSON line. A new kind of upload is a row
here, a row of :data:`compute.sources.uploads.ACCEPTED` and its task.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from compute.processes import die_with_parent
from compute.settings import ROOT, format_bytes, get_settings
from compute.sources.uploads import UploadError, check_filename

# What each kind imports that maps much memory, taken before the limit (imports map memory,
# and OpenBLAS spins when it cannot). Only a kind's own: a reference or a stimulus set is checked
# without starting torch (~1 s instead of ~8 s).
_NETWORKS = ("torch", "torchvision", "sklearn.datasets", "scipy.io", "scipy.special", "PIL.Image",
             "compute.measures.confusion", "compute.sources.activations", "compute.sources.layers",
             "compute.sources.zoo_architectures")
_FILES = ("scipy.io", "h5py", "PIL.Image")


@dataclass(frozen=True)
class Task:
    """An upload kind's check: ``"module:function"`` (imported only in the worker) and the
    modules it needs imported before the memory limit."""

    function: str
    preload: tuple[str, ...]


TASKS = {
    "checkpoint": Task("compute.sources.uploads:accept_checkpoint", _NETWORKS + ("safetensors.torch",)),
    # a .zip, or a .mat of images
    "stimuli": Task("compute.sources.matlab_stimuli:accept_stimuli", _FILES),
    "reference": Task("compute.sources.uploads:accept_reference", _FILES + ("sklearn.datasets",)),
    "activations": Task("compute.sources.activation_models:accept_activations",
                        _NETWORKS + ("h5py", "safetensors.numpy")),
    "onnx": Task("compute.sources.onnx_models:accept_onnx", _NETWORKS + ("onnx", "onnxruntime")),
}


def _task(kind: str):
    """The check of ``kind``, with what it needs imported."""
    for module in TASKS[kind].preload:
        importlib.import_module(module)
    module, _, function = TASKS[kind].function.partition(":")
    return getattr(importlib.import_module(module), function)


def run_in_worker(kind: str, **arguments) -> dict:
    """Run the task of ``kind`` with ``arguments`` in a fresh, limited process; return its result dict.

    Raises :class:`UploadError` with the worker's message when it refuses the upload, runs out
    of memory or time, or dies.
    """
    check_filename(kind, arguments.get("filename", ""))
    settings = get_settings()
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "MALLOC_ARENA_MAX": "2",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "REPSCOPE_PARENT_PID": str(os.getpid()),  # the checker ends with the app (die_with_parent)
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-m", "compute.sources.upload_worker"], cwd=ROOT, env=env,
                              input=json.dumps({"kind": kind, "arguments": arguments}).encode(),
                              capture_output=True, timeout=settings.upload_time_limit_s)
    except subprocess.TimeoutExpired:
        raise UploadError(f"checking the upload took longer than {settings.upload_time_limit_s} s "
                          "(REPSCOPE_UPLOAD_TIME_LIMIT) and was stopped") from None
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise UploadError(f"checking the upload failed ({tail[0]})") from None
    if not answer.get("ok"):
        raise UploadError(answer.get("error") or "the upload was refused")
    return answer["result"]


def _limit_self(budget: int, seconds: int) -> None:
    """Cap this process's address space at what it maps now plus ``budget``, and its CPU time."""
    import resource

    with open("/proc/self/status") as status:
        mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (mapped + budget, mapped + budget))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))


def _worker_main() -> int:
    # Started by a request thread that waits for it: ends with it, and with the app.
    die_with_parent(int(os.environ.get("REPSCOPE_PARENT_PID", os.getppid())))
    request = json.loads(sys.stdin.buffer.read())
    from compute.sources.architectures import preload

    preload(request["arguments"].get("architecture"))  # timm, transformers or a lab's package

    task = _task(request["kind"])  # before the limit: see TASKS
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    settings = get_settings()
    _limit_self(settings.upload_memory_bytes, settings.upload_time_limit_s)
    try:
        answer = {"ok": True, "result": task(**request["arguments"])}
    except (MemoryError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and "allocate" not in str(error):  # torch's allocator says so
            raise
        answer = {"ok": False, "error": "checking the upload needed more memory than the "
                  f"{format_bytes(settings.upload_memory_bytes)} limit (REPSCOPE_UPLOAD_MEMORY_BYTES)"}
    except (ValueError, FileNotFoundError, KeyError) as error:
        answer = {"ok": False, "error": str(error.args[0] if isinstance(error, KeyError) else error)}
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main())

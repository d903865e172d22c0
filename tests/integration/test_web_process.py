"""The web process never initialises CUDA (a later fork or a GPU worker on the same host would
break): serve pages and submit a job with every CUDA entry point made to fail loudly, so the
test fails on a machine without a GPU too."""
import subprocess
import sys

from tests.support import ROOT

WEB_SESSION = r"""
import torch

def refuse(*args, **kwargs):
    raise SystemExit("the web process initialised CUDA")

# Even asking whether a GPU is there starts the CUDA driver: the web process must not ask.
torch.cuda._lazy_init = refuse
torch.cuda.init = refuse
torch.cuda.is_available = refuse
torch.cuda.device_count = refuse

import app
from dashboard import services
from compute.engine import artifacts

client = app.server.test_client()
for path in ("/", "/_dash-layout", "/_dash-dependencies", "/health"):
    assert client.get(path).status_code == 200, path
models = services.models()[:3]
spec = artifacts.mds_spec(artifacts.model_rdm_spec([m.key for m in models], services.stimuli()))
services.backend().submit(spec)
services.backend().close()
assert not torch.cuda.is_initialized()
print("ok")
"""


def test_serving_pages_and_submitting_jobs_never_initialises_cuda(zoo_dir, tmp_path):
    env = {"REPSCOPE_ZOO_DIR": str(zoo_dir), "REPSCOPE_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", WEB_SESSION], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]

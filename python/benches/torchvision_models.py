"""Every proxy on torchvision models at 224x224 with 8 images: the value,
or the one-line reason; the model unchanged afterwards; peak RSS.

    .venv-py/bin/pip install torchvision==0.28.0
    .venv-py/bin/python python/benches/torchvision_models.py resnet18 [...]

Each model runs in its own process (peak RSS per model)."""

import json
import subprocess
import sys

CHILD = r"""
import copy, json, math, resource, sys, time, torch, torchvision, rbflex
name = sys.argv[1]
torch.manual_seed(0)
net = getattr(torchvision.models, name)(num_classes=1000)
before = copy.deepcopy(net.state_dict())
x = torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))
y = torch.arange(8)
out = {}
for p in rbflex.proxies():
    if p["aggregate"]:
        continue
    t = time.time()
    try:
        v = rbflex.score(net, x, proxies=[p["name"]], labels=y)
        key = "score" if p["name"] == "rbflex" else p["name"]
        out[p["name"]] = {"value": v[key], "seconds": round(time.time() - t, 2)}
    except Exception as e:
        out[p["name"]] = {"reason": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
after = net.state_dict()
out["unchanged"] = net.training and all(torch.equal(before[k], after[k]) for k in before)
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""

res = {}
for name in sys.argv[1:]:
    r = subprocess.run([sys.executable, "-c", CHILD, name], capture_output=True, text=True)
    res[name] = json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr[-500:]}
    print(name, json.dumps(res[name]), flush=True)

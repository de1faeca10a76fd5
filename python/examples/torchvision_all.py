"""A torchvision model scored with every proxy (8 images at 224x224).

    pip install torchvision==0.28.0   # the release paired with torch 2.13
    python python/examples/torchvision_all.py [resnet18]
"""

import math
import sys

import torch
import torchvision

import rbflex

name = sys.argv[1] if len(sys.argv) > 1 else "resnet18"
net = getattr(torchvision.models, name)(num_classes=1000)
x = torch.randn(8, 3, 224, 224, generator=torch.Generator().manual_seed(0))
y = torch.arange(8)
for p in rbflex.proxies():
    if p["aggregate"]:
        continue
    try:
        v = rbflex.score(net, x, proxies=[p["name"]], labels=y)
        first = next(iter(v.values()))
        print(f"{p['name']:18s} {first:.6g}" + ("" if math.isfinite(first) else f"  ({v})"))
    except Exception as e:  # one line: why this proxy cannot score this model
        print(f"{p['name']:18s} -  {type(e).__name__}: {e}")

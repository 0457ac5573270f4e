#!/usr/bin/env python3
"""mml inside a PyTorch loop: a PyTorch backbone's feature maps are scored by mml's metric without copies.

    PYTHONPATH=python /tmp/torchpeer/bin/python examples/torch_harness.py    # a venv with the CPU torch wheel

For each episode a small PyTorch Conv-4 (random weights, eval mode) turns images into (N, 64, h, w) feature maps;
`mml.Metric.score` takes the torch tensors directly (C-contiguous float32 CPU tensors are shared through DLPack,
not copied) and returns per-level and fused scores. As a check, the pixel level is recomputed in PyTorch (DN4:
cosine similarities by batched matmul, top-k per class, summed) and must agree. Without PyTorch it says why and
exits 0.
"""
import sys

try:
    import torch
except ImportError:
    print("skipped: examples/torch_harness.py (PyTorch is not installed for this python; see ../shared/peers/README.md "
          "for a venv with the CPU wheel)")
    sys.exit(0)

import numpy as np

import mml

WAY, SHOT, QUERY, EPISODES, K = 5, 1, 4, 3, 3


def conv4():
    def block(i, o):
        return torch.nn.Sequential(torch.nn.Conv2d(i, o, 3, padding=1), torch.nn.BatchNorm2d(o),
                                   torch.nn.LeakyReLU(0.2), torch.nn.MaxPool2d(2))
    return torch.nn.Sequential(block(3, 64), block(64, 64), torch.nn.Conv2d(64, 64, 3, padding=1)).eval()


def dn4_pixel(support, labels, query, way, k):
    """DN4's image-to-class score in PyTorch: (queries, way)."""
    def descriptors(x):                                   # (N, C, H, W) -> (N, HW, C), unit length
        return torch.nn.functional.normalize(x.flatten(2).transpose(1, 2), dim=2)
    s, q = descriptors(support), descriptors(query)
    out = torch.zeros(len(q), way)
    for c in range(way):
        pooled = s[labels == c].reshape(-1, s.shape[2])   # every descriptor of class c
        sim = q @ pooled.T                                # (queries, HW, shot * HW)
        out[:, c] = sim.topk(k, dim=2).values.sum(dim=(1, 2))
    return out


def main():
    torch.manual_seed(0)
    backbone = conv4()
    metric = mml.Metric(levels="pixel,distribution", pixel_k=K)
    accuracies = []
    for e in range(EPISODES):
        prototypes = torch.randn(WAY, 3, 1, 1)
        labels = torch.arange(WAY).repeat_interleave(SHOT)
        qlabels = torch.arange(WAY).repeat_interleave(QUERY)
        images = lambda y: prototypes[y] + 0.8 * torch.randn(len(y), 3, 28, 28)
        with torch.no_grad():
            fs, fq = backbone(images(labels)).contiguous(), backbone(images(qlabels)).contiguous()
        scores = metric.score(fs, labels, fq, way=WAY)    # torch tensors in, NumPy arrays out
        ref = dn4_pixel(fs, labels, fq, WAY, K).numpy()
        err = np.max(np.abs(scores["pixel"] - ref) / np.maximum(1, np.abs(ref)))
        if err > 1e-4:
            print(f"torch_harness: FAILED: mml's pixel level differs from PyTorch's DN4 by {err:.2e}", file=sys.stderr)
            return 1
        acc = float(np.mean(scores["predictions"] == qlabels.numpy()))
        accuracies.append(acc)
        print(f"episode {e}: features {tuple(fs.shape)}, fused accuracy {acc:.3f}, pixel level = PyTorch DN4 "
              f"(max rel. diff {err:.1e})")
    print(f"torch_harness: ok (mean fused accuracy {np.mean(accuracies):.3f}, chance {1 / WAY:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

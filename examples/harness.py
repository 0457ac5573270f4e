#!/usr/bin/env python3
"""A comparison harness calling mml from Python in-process: `import mml`, score NumPy episodes, no files.

    make python && python3 examples/harness.py          # with the package installed
    PYTHONPATH=python python3 examples/harness.py       # from the repository (finds .build/release/libmmlc.so)

Each episode has `WAY` classes with labels chosen like a real harness's (arbitrary integers). Class c's feature
maps are noise plus a class-specific channel pattern, so the classes are separable and a working metric must beat
chance by far. Prints per-episode and mean accuracy (fused and per level) and exits non-zero when the mean fused
accuracy is not well above chance or when mml fails. (`mml score` does the same from .npy files, for harnesses that
cannot load a library: docs/API.md.)
"""
import sys

import numpy as np

import mml

WAY, SHOT, QUERY, EPISODES = 5, 2, 6, 4
C, H, W = 32, 5, 5
SEED = 2024


def episode(rng):
    """One episode of (N, C, H, W) float32 feature maps with arbitrary integer class labels."""
    names = rng.choice(1000, size=WAY, replace=False)          # e.g. dataset class ids
    patterns = rng.standard_normal((WAY, C, 1, 1)) * 0.35      # one channel pattern per class
    def maps(per_class):
        y = np.repeat(np.arange(WAY), per_class)
        x = patterns[y] + rng.standard_normal((len(y), C, H, W))
        return x.astype(np.float32), names[y].astype(np.int64)
    s, sl = maps(SHOT)
    q, ql = maps(QUERY)
    perm = rng.permutation(len(ql))                            # queries in any order
    return s, sl, q[perm], ql[perm]


def main():
    rng = np.random.default_rng(SEED)
    metric = mml.Metric()                   # all three levels, learned fusion normalised over each episode
    print(f"mml {mml.__version__} (library {mml.library_path}): {metric.description['description']}")
    fused_acc, level_acc = [], {}
    for e in range(EPISODES):
        s, sl, q, ql = episode(rng)
        try:
            scores = metric.score(s, sl, q, way=WAY)
        except mml.MMLError as err:
            print(f"harness: mml failed: {err}", file=sys.stderr)
            return 1
        classes = scores["classes"]                            # column j is class classes[j]
        assert scores["fused"].shape == (len(ql), WAY), scores["fused"].shape
        acc = float(np.mean(scores["predictions"] == ql))
        assert acc == float(np.mean(classes[scores["fused"].argmax(axis=1)] == ql))
        fused_acc.append(acc)
        for level in metric.levels:
            level_acc.setdefault(level, []).append(float(np.mean(classes[scores[level].argmax(axis=1)] == ql)))
        print(f"episode {e}: fused accuracy {acc:.3f}  " +
              "  ".join(f"{k} {v[-1]:.3f}" for k, v in level_acc.items()))
    mean = float(np.mean(fused_acc))
    chance = 1.0 / WAY
    print(f"mean fused accuracy {mean:.3f} over {EPISODES} episodes ({WAY}-way {SHOT}-shot; chance {chance:.3f})")
    for k, v in level_acc.items():
        print(f"  {k}: {np.mean(v):.3f}")
    if mean < chance + 0.5:
        print(f"harness: FAILED: accuracy {mean:.3f} is not well above chance {chance:.3f}", file=sys.stderr)
        return 1
    print("harness: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A comparison harness calling mml from Python: features written with NumPy, scored by `mml score`, read back.

    python3 examples/harness.py            # uses $MML or .build/release/mml

Each episode has `WAY` classes with labels chosen like a real harness's (arbitrary integers). Class c's feature
maps are noise plus a class-specific channel pattern, so the classes are separable and a working metric must beat
chance by far. Prints per-episode and mean accuracy (fused and per level) and exits non-zero when the mean fused
accuracy is not well above chance or when mml fails.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

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
    mml = os.environ.get("MML", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "release", "mml"))
    if not os.access(mml, os.X_OK):
        print(f"harness: mml binary not found at {mml}; build it (swift build -c release) or set MML", file=sys.stderr)
        return 2
    rng = np.random.default_rng(SEED)
    fused_acc, level_acc = [], {}
    with tempfile.TemporaryDirectory(prefix="mml-harness-") as d:
        for e in range(EPISODES):
            s, sl, q, ql = episode(rng)
            paths = {k: os.path.join(d, f"{k}.npy") for k in ("s", "sl", "q", "ql")}
            for k, a in zip(("s", "sl", "q", "ql"), (s, sl, q, ql)):
                np.save(paths[k], a)
            out = os.path.join(d, f"scores{e}.npy")
            cmd = [mml, "score", "--support", paths["s"], "--support-labels", paths["sl"], "--query", paths["q"],
                   "--query-labels", paths["ql"], "--out", out, "--json"]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"harness: mml score failed ({r.returncode}): {r.stderr.strip()}", file=sys.stderr)
                return 1
            report = json.loads(r.stdout)
            # Our own accuracy from the .npy scores: column j is class report["classes"][j].
            fused = np.load(out)
            classes = np.array(report["classes"])
            assert fused.shape == (len(ql), WAY), fused.shape
            acc = float(np.mean(classes[fused.argmax(axis=1)] == ql))
            assert abs(acc - report["accuracy"]["fused"]) < 1e-9, (acc, report["accuracy"])
            fused_acc.append(acc)
            for level in report["levels"]:
                lv = np.load(out[:-4] + f".{level}.npy")
                level_acc.setdefault(level, []).append(float(np.mean(classes[lv.argmax(axis=1)] == ql)))
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

#!/usr/bin/env python3
"""The Python package's cost: per-call overhead against the Swift API, and the 5-way 5-shot pixel-level episode
scored from Python against PyTorch's batched matmul + topk (DN4) in the same process.

Usage (from the project root, after `swift build -c release`; the torch part needs a python with torch, e.g. the
venv of ../shared/peers/README.md):

    PYTHONPATH=python /tmp/torchpeer/bin/python Benchmarks/python_overhead.py [--calls 2000] [--rounds 7]
        [--threads 2] [--json out.json] [--smoke]

1. Overhead: a tiny episode (2-way 1-shot, 1 query, 4 channels of 1 x 1 maps, pixel level K = 1) scored with
   `mml.Metric.score`, median over `--calls` calls, next to `mml-bench api`'s median for the same call through the
   Swift API (`EpisodeScorer.score`, run as a subprocess); overhead = Python median - Swift median, in microseconds.
2. Episode: 5-way 5-shot, 15 queries per class, 64 x 21 x 21 feature maps (441 descriptors of 64), K = 3, pixel
   level only: `mml.Metric(levels="pixel", pixel_k=3).score` against PyTorch's DN4 scoring as the peer benchmark
   defines it (one broadcast matmul + one topk, ../shared/peers/torch_fewshot_bench.py), both in this process,
   medians over `--rounds`; ratio = PyTorch / mml (above 1: mml is faster). The two score matrices are compared.
   Skipped with a message when torch is not importable.
`--smoke` runs everything on tiny sizes with few repetitions, to check that the script works (not a measurement).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import mml  # noqa: E402

WAY, SHOT, QUERY_PER_CLASS, C, SIDE, K = 5, 5, 15, 64, 21, 3


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / 1e9)
    return float(np.median(times))


def swift_api(calls, rounds):
    bench = os.path.join(ROOT, ".build", "release", "mml-bench")
    if not os.access(bench, os.X_OK):
        return None, f"{bench} is not built (swift build -c release)"
    out = subprocess.run([bench, "api", "--calls", str(calls), "--rounds", str(rounds), "--json"], check=True,
                         capture_output=True, text=True).stdout
    rows = json.loads(out[out.index("["):])
    return {r["name"].split(" (")[0]: r["seconds"] for r in rows}, None


def leaky(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return np.maximum(0.2 * x, x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (mml uses all cores)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, few repetitions: checks the script only")
    args = ap.parse_args()
    side, calls, rounds = (5, 50, 2) if args.smoke else (SIDE, args.calls, args.rounds)
    report = {"library": mml.library_path, "calls": calls, "rounds": rounds, "smoke": args.smoke}

    # 1. Per-call overhead.
    rng = np.random.default_rng(0)
    tiny = mml.Metric(levels="pixel")
    ts, tq, tl = leaky(rng, (2, 4, 1, 1)), leaky(rng, (1, 4, 1, 1)), np.array([0, 1])
    tiny.score(ts, tl, tq)
    py = median_time(lambda: tiny.score(ts, tl, tq), calls)
    swift, why = swift_api(calls, rounds)
    report["tiny_python_us"] = py * 1e6
    print(f"tiny episode, per call: Python package {py * 1e6:.1f} us", end="")
    if swift:
        sw = swift["api tiny episode"]
        report["tiny_swift_us"] = sw * 1e6
        report["overhead_us"] = (py - sw) * 1e6
        print(f", Swift API {sw * 1e6:.1f} us, overhead {(py - sw) * 1e6:.1f} us")
    else:
        print(f"; Swift API skipped: {why}")

    # 2. The 5-way 5-shot pixel-level episode against PyTorch in this process.
    s = leaky(rng, (WAY * SHOT, C, side, side))
    q = leaky(rng, (WAY * QUERY_PER_CLASS, C, side, side))
    labels = np.repeat(np.arange(WAY), SHOT)
    metric = mml.Metric(levels="pixel", pixel_k=K)
    metric.score(s, labels, q)
    t_mml = median_time(lambda: metric.score(s, labels, q), rounds)
    report["episode_mml_ms"] = t_mml * 1e3
    print(f"5-way 5-shot pixel level ({side}x{side} maps, K={K}): mml from Python {t_mml * 1e3:.2f} ms", end="")
    if swift and not args.smoke:
        report["episode_swift_ms"] = swift["api pixel level 5-way 5-shot 75 queries 64 x 21 x 21, K=3"] * 1e3
        print(f" (Swift API {report['episode_swift_ms']:.2f} ms)", end="")
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print(f"\nPyTorch part skipped: torch is not importable from {sys.executable} (use the venv of "
              "../shared/peers/README.md)")
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
        tq_, ts_ = torch.from_numpy(q), torch.from_numpy(s)

        def dn4_batched():
            nq, c, h, w = tq_.shape
            qd = F.normalize(tq_.reshape(nq, c, h * w).transpose(1, 2), p=2, dim=-1).unsqueeze(1)
            sd = ts_.reshape(WAY, SHOT, c, h * w).permute(0, 2, 1, 3).reshape(WAY, c, SHOT * h * w)
            sd = F.normalize(sd, p=2, dim=1).unsqueeze(0)
            return torch.topk(torch.matmul(qd, sd), K, dim=-1).values.sum(dim=(2, 3))

        with torch.inference_mode():
            ref = dn4_batched().numpy()
            t_torch = median_time(dn4_batched, rounds)
        # mml's scores from torch tensors (shared, not copied) agree with PyTorch's.
        got = metric.score(ts_, torch.from_numpy(labels), tq_)["pixel"]
        diff = float(np.max(np.abs(got - ref) / np.maximum(1, np.abs(ref))))
        report.update(episode_torch_ms=t_torch * 1e3, ratio=t_torch / t_mml, max_rel_diff=diff,
                      torch=torch.__version__, torch_threads=args.threads)
        print(f", PyTorch batched matmul + topk {t_torch * 1e3:.2f} ms ({args.threads} threads): "
              f"ratio {t_torch / t_mml:.2f}x; scores agree to {diff:.1e}")
    if args.smoke:
        print("(smoke run: tiny sizes, not a measurement)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

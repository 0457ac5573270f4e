#!/usr/bin/env python3
"""Run mml-bench and the PyTorch peer benchmark one right after the other and print speed ratios.

Usage (from the project root, after `swift build -c release`):
    python3 Benchmarks/side_by_side.py kernels [backbone data episode] [--torch /tmp/torchpeer/bin/python]
                                       [--default-config] [--quick] [--bench-args '--kinds conv64f,conv4,resnet12']

Each mml-bench row that names a `peer` result (a path in the peer's JSON, e.g. "dn4_score/5shot/batched") is
printed next to it with ratio = peer median / mml median (above 1: mml is faster). There are two peers, run after
mml only when some row names one of their results:
  - ../shared/peers/torch_fewshot_bench.py (DN4 scoring, Gaussians, episodes, Conv-64F and Conv-4), the sections
    PEER_SECTIONS gives for each mml-bench section;
  - Benchmarks/peer_resnet12.py, mml's ResNet-12 in PyTorch (rows `resnet12 forward (inference) b80 / b100` and
    `resnet12 train step (fwd+bwd+SGD) b80` of `backbone`, i.e. when --kinds includes resnet12 or is not given).
Both run in their tuned configuration (tcmalloc preloaded + channels_last, 2 threads) unless --default-config.
Set-up of the torch venv: ../shared/peers/README.md.
--quick runs every side with fewer repeats (mml-bench --quick, the peers' --quick): a check, not a measurement.
The rows go to --out (JSON), the peers' own results next to it (<out>-peer.json, <out>-peer-resnet12.json).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(os.path.dirname(ROOT), "shared", "peers")
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
# which peer sections each mml-bench section is compared with
PEER_SECTIONS = {"kernels": "c,d", "backbone": "ab", "episode": "ab,c,d,e", "data": ""}
# the rows whose peer is Benchmarks/peer_resnet12.py (its model name in mml-bench's peer paths)
RESNET12_PEER = os.path.join(ROOT, "Benchmarks", "peer_resnet12.py")
RESNET12_PREFIX = "backbone/resnet12_5x5/"


def peer_lookup(results, path):
    """Resolve 'a/b/c' against nested dicts whose keys may contain slashes."""
    def rec(obj, rest):
        if rest == "":
            return obj
        if not isinstance(obj, dict):
            return None
        for key in sorted(obj.keys(), key=len, reverse=True):
            if rest == key or rest.startswith(key + "/"):
                found = rec(obj[key], rest[len(key) + 1:] if rest != key else "")
                if found is not None:
                    return found
        return None
    return rec(results, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sections", nargs="+")
    ap.add_argument("--torch", default="/tmp/torchpeer/bin/python")
    ap.add_argument("--default-config", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="/tmp/mml-side-by-side.json")
    ap.add_argument("--bench-args", default="", help="extra mml-bench arguments, e.g. '--kinds conv64f,conv4'")
    args = ap.parse_args()

    bench = os.path.join(ROOT, ".build", "release", "mml-bench")
    mml = {}
    for s in args.sections:
        quick = ["--quick"] if args.quick else []
        out = subprocess.run([bench, s, "--json"] + quick + args.bench_args.split(), check=True,
                             capture_output=True, text=True).stdout
        mml[s] = json.loads(out[out.index("["):])

    def names_peer(r, resnet12):
        return bool(r.get("peer")) and r["peer"].startswith(RESNET12_PREFIX) == resnet12

    # the shared peer's sections, for the mml sections with a row it answers; the ResNet-12 peer when a row names it
    peer_sections = sorted({p for s in args.sections if any(names_peer(r, False) for r in mml[s])
                            for p in PEER_SECTIONS.get(s, "").split(",") if p})
    resnet12 = any(names_peer(r, True) for s in args.sections for r in mml[s])
    peer = {}
    base = os.path.splitext(args.out)[0]
    env = dict(os.environ)
    tuned = [] if args.default_config else ["--channels-last"]
    if not args.default_config and os.path.exists(TCMALLOC):
        env["LD_PRELOAD"] = TCMALLOC
    # --quick is a check: no waiting for an idle machine or re-measuring contended rows
    quick = ["--quick", "--retry-contended", "0"] if args.quick else []
    if (peer_sections or resnet12) and not os.path.exists(args.torch):
        print(f"(no PyTorch peer at {args.torch}: see ../shared/peers/README.md; printing mml figures only)")
    elif peer_sections or resnet12:
        if peer_sections:
            peer_json = base + "-peer.json"
            cmd = [args.torch, os.path.join(PEERS, "torch_fewshot_bench.py"), "--threads", "2", "--skip-loop2019",
                   "--sections", ",".join(peer_sections), "--json", peer_json]
            subprocess.run(cmd + quick + tuned, check=True, env=env, stdout=subprocess.DEVNULL)
            peer = json.load(open(peer_json))["results"]
        if resnet12:
            peer_json = base + "-peer-resnet12.json"
            cmd = [args.torch, RESNET12_PEER, "--threads", "2", "--peers", PEERS, "--json", peer_json]
            subprocess.run(cmd + quick + tuned, check=True, env=env, stdout=subprocess.DEVNULL)
            extra = json.load(open(peer_json))["results"]
            peer.setdefault("backbone", {}).update(extra["backbone"])

    rows = []
    print(f"{'benchmark':58} {'mml ms':>10} {'peer ms':>10} {'speed-up':>9}")
    for s in args.sections:
        for r in mml[s]:
            p = peer_lookup(peer, r["peer"]) if r.get("peer") else None
            pm = p["median_s"] if isinstance(p, dict) and "median_s" in p else None
            ratio = pm / r["seconds"] if pm else None
            rows.append({**r, "peer_seconds": pm, "speedup": ratio})
            print(f"{r['name'][:58]:58} {r['seconds']*1e3:10.2f} "
                  + (f"{pm*1e3:10.2f} {ratio:9.2f}" if pm else f"{'':10} {'':9}"))
    json.dump(rows, open(args.out, "w"), indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())

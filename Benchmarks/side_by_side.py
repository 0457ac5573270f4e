#!/usr/bin/env python3
"""Run mml-bench and the PyTorch peer benchmark one right after the other and print speed ratios.

Usage (from the project root, after `swift build -c release`):
    python3 Benchmarks/side_by_side.py kernels [backbone data episode] [--torch /tmp/torchpeer/bin/python]
                                       [--default-config] [--quick]

Each mml-bench row that names a `peer` result (a path in the peer's JSON, e.g. "dn4_score/5shot/batched") is
printed next to it with ratio = peer median / mml median (above 1: mml is faster). The peer runs in its tuned
configuration (tcmalloc preloaded + channels_last) unless --default-config. Set-up of the peer: ../shared/peers/README.md.
--quick runs both sides with fewer repeats (mml-bench --quick, the peer's --quick): a check, not a measurement.
The rows go to --out (JSON), the peer's own results next to it (<out>-peer.json).
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

    peer_sections = sorted({p for s in args.sections for p in PEER_SECTIONS.get(s, "").split(",") if p})
    peer = {}
    peer_json = os.path.splitext(args.out)[0] + "-peer.json"
    if peer_sections and os.path.exists(args.torch):
        env = dict(os.environ)
        cmd = [args.torch, os.path.join(PEERS, "torch_fewshot_bench.py"), "--threads", "2", "--skip-loop2019",
               "--sections", ",".join(peer_sections), "--json", peer_json]
        if args.quick:  # a check: no waiting for an idle machine or re-measuring contended rows
            cmd += ["--quick", "--retry-contended", "0"]
        if not args.default_config:
            cmd.append("--channels-last")
            if os.path.exists(TCMALLOC):
                env["LD_PRELOAD"] = TCMALLOC
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        peer = json.load(open(peer_json))["results"]
    elif peer_sections:
        print(f"(no PyTorch peer at {args.torch}: see ../shared/peers/README.md; printing mml figures only)")

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

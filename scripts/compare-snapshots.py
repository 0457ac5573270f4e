#!/usr/bin/env python3
"""Compares two behaviour snapshots (scripts/behaviour-snapshot.sh): every safetensors tensor must be equal bit for
bit, every JSON / JSONL / text output equal once wall-clock fields (seconds, elapsed, rates, ETAs) are dropped.
Exit 0 when they agree, 1 with the differences listed otherwise."""
import json, os, re, struct, sys

TIME_KEYS = {"seconds", "elapsed", "elapsedSeconds", "episodes_per_second"}

def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = (info["dtype"], tuple(info["shape"]), body[a:b])
    return out

def scrub(o):
    if isinstance(o, dict):
        return {k: scrub(v) for k, v in o.items() if k not in TIME_KEYS}
    if isinstance(o, list):
        return [scrub(v) for v in o]
    return o

TIME_TEXT = re.compile(r"[0-9.]+ ?(episodes/s|ep/s)|ETA \S+|\b[0-9]+h[0-9]+m\b|\b[0-9]+m[0-9]+s\b|\b[0-9]+s\b|[0-9.]+ s\b")

def read(path, root):
    """The file's text with the snapshot directory written as SNAP (plain and JSON-escaped)."""
    text = open(path, encoding="utf-8", errors="replace").read()
    root = os.path.abspath(root)
    return text.replace(root.replace("/", "\\/"), "SNAP").replace(root, "SNAP")

def text_lines(path, root):
    return [TIME_TEXT.sub("T", l) for l in read(path, root).split("\n")]

def main(a, b):
    problems = []
    files = 0
    for root, _, names in os.walk(a):
        for name in sorted(names):
            pa = os.path.join(root, name)
            rel = os.path.relpath(pa, a)
            pb = os.path.join(b, rel)
            if not os.path.exists(pb):
                problems.append(f"{rel}: missing in {b}")
                continue
            files += 1
            if name.endswith(".safetensors"):
                ta, tb = tensors(pa), tensors(pb)
                if ta.keys() != tb.keys():
                    problems.append(f"{rel}: tensor names differ: {sorted(set(ta) ^ set(tb))}")
                for k in sorted(set(ta) & set(tb)):
                    if ta[k] != tb[k]:
                        problems.append(f"{rel}: tensor {k} differs")
            elif name.endswith(".jsonl"):
                la = [scrub(json.loads(l)) for l in read(pa, a).split("\n") if l.strip()]
                lb = [scrub(json.loads(l)) for l in read(pb, b).split("\n") if l.strip()]
                if la != lb:
                    problems.append(f"{rel}: log records differ")
            elif name.endswith(".json"):
                try:
                    ja, jb = scrub(json.loads(read(pa, a))), scrub(json.loads(read(pb, b)))
                except json.JSONDecodeError:
                    ja, jb = text_lines(pa, a), text_lines(pb, b)
                if ja != jb:
                    problems.append(f"{rel}: JSON differs")
            elif name.endswith((".txt", ".md")):
                if text_lines(pa, a) != text_lines(pb, b):
                    problems.append(f"{rel}: text differs")
    for p in problems:
        print(p)
    print(f"{files} files compared, {len(problems)} differences")
    return 1 if problems or files == 0 else 0

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: compare-snapshots.py SNAPSHOT_A SNAPSHOT_B")
    sys.exit(main(sys.argv[1], sys.argv[2]))

"""Shared set-up: the package is imported from python/ (no pip install) with the library of the build under test
(MML_LIBRARY, default .build/release/libmmlc.so); `mml` is the CLI of the same build ($MML)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.environ.get("CONFIG", "release")
os.environ.setdefault("MML_LIBRARY", os.path.join(ROOT, ".build", CONFIG, "libmmlc.so"))
sys.path.insert(0, os.path.join(ROOT, "python"))

MML = os.environ.get("MML", os.path.join(ROOT, ".build", CONFIG, "mml"))


def run_mml(args, check=True):
    # The CLI re-executes itself with a faster OPENBLAS_CORETYPE when none is set; a library never does. Keep the
    # CLI on the OpenBLAS kernels this process loaded, so both compute with the same BLAS.
    env = dict(os.environ, MML_NO_BLAS_REEXEC="1")
    r = subprocess.run([MML] + [str(a) for a in args], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"mml {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}")
    return r


@pytest.fixture(scope="session")
def mml_cli():
    if not os.access(MML, os.X_OK):
        pytest.fail(f"the mml CLI is not built at {MML}; run swift build -c release")
    return run_mml


def episode(seed, way=3, shot=2, query=4, c=16, h=4, w=4, layout="nchw", labels=None):
    """A random episode with arbitrary integer labels, classes separable by a channel pattern."""
    rng = np.random.default_rng(seed)
    names = np.array(labels if labels is not None else rng.choice(1000, size=way, replace=False))
    pattern = rng.standard_normal((way, c, 1, 1)) * 0.5

    def maps(per):
        y = np.repeat(np.arange(way), per)
        x = (pattern[y] + rng.standard_normal((len(y), c, h, w))).astype(np.float32)
        if layout == "nmc":
            x = np.ascontiguousarray(x.reshape(len(y), c, h * w).transpose(0, 2, 1))
        return x, names[y].astype(np.int64)

    s, sl = maps(shot)
    q, ql = maps(query)
    perm = rng.permutation(len(ql))
    return s, sl, q[perm], ql[perm]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, mml_cli):
    """A tiny trained episodic checkpoint (narrow Conv-4 on small synthetic images, a few episodes)."""
    d = tmp_path_factory.mktemp("ckpt")
    mml_cli(["train", "synthetic", "--synthetic-size", "20", "--synthetic-images", "12", "--widths", "8,8,8,8",
             "--threads", "1", "--way", "3", "--shot", "1", "--query", "2", "--episodes-per-epoch", "4",
             "--epochs", "1", "--episodes-per-step", "2", "--val-episodes", "2", "--val-query", "2",
             "--out", d / "run"])
    path = d / "run" / "best.safetensors"
    assert path.exists()
    return str(path)


def load_json(text):
    return json.loads(text)

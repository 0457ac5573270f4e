"""Metric.score equals `mml score` on the same inputs (the CLI reads .npy files the test writes)."""
import json

import numpy as np
import pytest

import mml
from conftest import episode


def cli_scores(tmp_path, mml_cli, s, sl, q, flags):
    paths = {}
    for name, a in (("s", s), ("sl", sl), ("q", q)):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], a)
    out = tmp_path / "scores.npy"
    r = mml_cli(["score", "--support", paths["s"], "--support-labels", paths["sl"], "--query", paths["q"],
                 "--out", out, "--json"] + flags)
    report = json.loads(r.stdout)
    files = {level: np.load(tmp_path / f"scores.{level}.npy") for level in report["levels"]}
    files["fused"] = np.load(out)
    files["classes"] = np.load(tmp_path / "scores.classes.npy")
    return report, files


CASES = [
    ("defaults", {}, [], "nchw"),
    ("pixel k3 + w2", dict(levels="pixel,distribution", pixel_k=3, distance="w2"),
     ["--levels", "pixel,distribution", "--pixel-k", "3", "--distance", "w2"], "nchw"),
    ("fixed fusion, channel parts", dict(fusion="fixed", part="channels", part_k=2, distance="kl-sym"),
     ["--fusion", "fixed", "--part-form", "channels", "--part-k", "2", "--distance", "kl-sym"], "nchw"),
    ("grid 2 parts, eps", dict(levels=["part", "distribution"], part="grid:2", distribution_eps=0.1),
     ["--levels", "part,distribution", "--part-form", "grid:2", "--distribution-eps", "0.1"], "nchw"),
    ("(N, M, C) descriptors", dict(part="channels"), ["--part-form", "channels"], "nmc"),
]


@pytest.mark.parametrize("name,kwargs,flags,layout", CASES, ids=[c[0] for c in CASES])
def test_score_equals_mml_score(tmp_path, mml_cli, name, kwargs, flags, layout):
    s, sl, q, _ = episode(3, layout=layout)
    metric = mml.Metric(**kwargs)
    got = metric.score(s, sl, q)
    report, files = cli_scores(tmp_path, mml_cli, s, sl, q, flags)
    assert list(got["classes"]) == report["classes"]
    assert list(got["predictions"]) == report["predictions"]
    assert sorted(k for k in got if k not in ("fused", "classes", "predictions")) == sorted(report["levels"])
    for level in report["levels"] + ["fused"]:
        ref = np.array(report["scores"][level] if level != "fused" else report["fused"])
        assert got[level].shape == ref.shape and got[level].dtype == np.float32
        assert np.all(np.abs(got[level] - ref) <= 1e-6 * np.maximum(1, np.abs(ref))), (level, got[level], ref)
        assert np.all(np.abs(got[level] - files[level]) <= 1e-6 * np.maximum(1, np.abs(files[level]))), level
    assert np.array_equal(got["classes"], files["classes"])
    assert metric.description["description"] == report["metric"]


def test_checkpoint_metric_equals_mml_score(tmp_path, mml_cli, checkpoint):
    s, sl, q, _ = episode(5, c=8, h=3, w=3)
    got = mml.Metric.from_checkpoint(checkpoint).score(s, sl, q)
    report, files = cli_scores(tmp_path, mml_cli, s, sl, q, ["--checkpoint", checkpoint])
    for level in report["levels"] + ["fused"]:
        assert np.all(np.abs(got[level] - files[level]) <= 1e-6 * np.maximum(1, np.abs(files[level]))), level
    assert np.array_equal(mml.load(checkpoint).score(s, sl, q)["fused"], got["fused"])


def test_score_batch_equals_one_by_one():
    eps = [episode(seed) for seed in (1, 2, 3)]
    metric = mml.Metric(levels="pixel,part", pixel_k=2)
    batch = metric.score_batch(np.stack([e[0] for e in eps]), np.stack([e[1] for e in eps]),
                               np.stack([e[2] for e in eps]))
    assert len(batch) == 3
    for e, b in zip(eps, batch):
        one = metric.score(e[0], e[1], e[2])
        for k in one:
            assert np.array_equal(one[k], b[k]), k


def test_way_and_accuracy_of_a_separable_episode():
    s, sl, q, ql = episode(7, way=4, shot=3, query=5)
    got = mml.Metric().score(s, sl, q, way=4)
    assert got["fused"].shape == (20, 4)
    assert np.mean(got["predictions"] == ql) > 0.8


def test_torch_tensors_equal_numpy():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the CPU wheel: see ../shared/peers)")
    s, sl, q, _ = episode(9)
    metric = mml.Metric(pixel_k=3)
    ref = metric.score(s, sl, q)
    got = metric.score(torch.from_numpy(s).requires_grad_(), torch.from_numpy(sl), torch.from_numpy(q))
    for k in ref:
        assert np.array_equal(ref[k], got[k]), k

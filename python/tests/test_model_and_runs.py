"""mml.load(...).features / .score, mml.episodes and mml.evaluate against the CLI on the same checkpoint and data."""
import json

import numpy as np
import pytest

import mml


def test_features_shape_batches_and_determinism(checkpoint):
    model = mml.load(checkpoint)
    img = model.configuration["image"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, model.configuration["inputChannels"], img["size"], img["size"])).astype(np.float32)
    f = model.features(x)
    assert f.ndim == 4 and f.shape[0] == 5 and f.dtype == np.float32
    assert np.array_equal(f[2:4], model.features(x[2:4]))        # each image on its own
    assert np.array_equal(f, mml.load(checkpoint).features(x))    # a second load, the same weights


def test_model_scores_features_as_its_metric(checkpoint):
    model = mml.load(checkpoint)
    img = model.configuration["image"]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, model.configuration["inputChannels"], img["size"], img["size"])).astype(np.float32)
    f = model.features(x)
    labels = np.array([4, 8, 9])
    got = model.score(f[:3], labels, f[3:])
    ref = mml.Metric.from_checkpoint(checkpoint).score(f[:3], labels, f[3:])
    for k in ref:
        assert np.array_equal(ref[k], got[k]), k
    assert model.metric.levels == model.configuration["metric"]["levels"]


def test_episodes_are_exactly_mml_data_episodes(tmp_path, mml_cli):
    out = tmp_path / "episodes.json"
    mml_cli(["data", "episodes", "synthetic", "--split", "test", "--synthetic-size", "12", "--synthetic-images", "10",
             "--way", "4", "--shot", "2", "--query", "3", "--episodes", "7", "--seed", "11", "-o", out])
    text = mml.episodes_json("synthetic", split="test", syntheticSize=12, syntheticImages=10, way=4, shot=2,
                             query=3, count=7, seed=11)
    assert text == out.read_text()
    listed = mml.episodes("synthetic", split="test", syntheticSize=12, syntheticImages=10, way=4, shot=2, query=3,
                          count=7, seed=11)
    assert listed == json.loads(out.read_text())
    assert len(listed["episodes"]) == 7 and all(len(e["classes"]) == 4 for e in listed["episodes"])
    other = mml.episodes("synthetic", split="test", syntheticSize=12, syntheticImages=10, way=4, shot=2, query=3,
                         count=7, seed=12)
    assert other["episodes"] != listed["episodes"]


def test_evaluate_equals_mml_eval(tmp_path, mml_cli, checkpoint):
    r = mml_cli(["eval", "--checkpoint", checkpoint, "synthetic", "--synthetic-images", "12", "--way", "2,3",
                 "--shot", "1", "--query", "2", "--episodes", "4", "--seed", "5", "--json", "--threads", "1"])
    ref = json.loads(r.stdout)
    got = mml.evaluate(checkpoint, dataset="synthetic", syntheticImages=12, ways=[2, 3], shots=[1], query=2,
                       episodes=4, seed=5, threads=1)
    assert [s["way"] for s in got["results"]] == [2, 3]
    for a, b in zip(got["results"], ref["results"]):
        assert a["accuracy"] == b["accuracy"] and a["levels"] == b["levels"]


def test_evaluate_takes_the_precision_field(mml_cli, checkpoint):
    # The evaluation configuration is JSON laid over the defaults, so `precision` (mml eval --precision) needs no
    # parameter of its own: each value gives the CLI's numbers, the default is fp32, a bad value names the field.
    assert mml.default_configuration("evaluation")["precision"] == "fp32"
    args = ["eval", "--checkpoint", checkpoint, "synthetic", "--synthetic-images", "12", "--way", "3", "--shot", "1",
            "--query", "3", "--episodes", "5", "--seed", "4", "--json", "--threads", "1"]
    got = {}
    for p in ("fp32", "bf16", "bf16amx"):
        ref = json.loads(mml_cli(args + ["--precision", p]).stdout)["results"][0]
        got[p] = mml.evaluate(checkpoint, dataset="synthetic", syntheticImages=12, ways=[3], shots=[1], query=3,
                              episodes=5, seed=4, threads=1, precision=p)["results"][0]
        assert got[p]["accuracy"] == ref["accuracy"] and got[p]["levels"] == ref["levels"], p
    default = mml.evaluate(checkpoint, dataset="synthetic", syntheticImages=12, ways=[3], shots=[1], query=3,
                           episodes=5, seed=4, threads=1)["results"][0]
    assert default["accuracy"] == got["fp32"]["accuracy"] and default["levels"] == got["fp32"]["levels"]
    assert got["bf16"]["levels"]["distribution"] == got["fp32"]["levels"]["distribution"]
    with pytest.raises(mml.MMLError) as e:
        mml.evaluate(checkpoint, dataset="synthetic", syntheticImages=12, episodes=2, precision="bf17")
    assert "`precision` bf17: use fp32, bf16 or bf16amx" in str(e.value)


def test_evaluate_an_episode_list(tmp_path, mml_cli, checkpoint):
    lst = tmp_path / "list.json"
    mml.episodes_json("synthetic", split="test", syntheticImages=12, way=3, shot=1, query=2, count=3, seed=2,
                      out=lst)
    r = mml_cli(["eval", "--checkpoint", checkpoint, "synthetic", "--synthetic-images", "12", "--episode-list", lst,
                 "--json", "--threads", "1"])
    ref = json.loads(r.stdout)
    got = mml.evaluate(checkpoint, dataset="synthetic", syntheticImages=12, episode_list=lst)
    assert got["results"][0]["accuracy"] == ref["results"][0]["accuracy"]
    assert got["results"][0]["episodes"] == 3


def test_environment_names_the_kernel_path(mml_cli, monkeypatch):
    # The same facts as `mml env --json`, with mml's kernel path as this process takes it: MML_KERNELS_ISA set from
    # Python reaches the library at the next call.
    monkeypatch.delenv("MML_KERNELS_ISA", raising=False)
    facts = mml.environment()
    cli = json.loads(mml_cli(["env", "--json", "--sgemm-size", "0"]).stdout)
    assert facts["kernels"] == facts["kernelsBest"] == cli["mml_kernels"]
    assert facts["kernels"] in ("avx512", "avx2", "portable")
    assert facts["cpu"] == cli["cpu"] and facts["blasCore"] == cli["blas_core"] and facts["cores"] >= 1
    assert "kernelsSetting" not in facts
    monkeypatch.setenv("MML_KERNELS_ISA", "portable")
    capped = mml.environment()
    assert capped["kernels"] == "portable" and capped["kernelsSetting"] == "portable"
    assert capped["kernelsBest"] == facts["kernelsBest"]
    assert mml.abi_version == "1.1"

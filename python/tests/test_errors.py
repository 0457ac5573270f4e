"""Every error path raises mml.MMLError (a ValueError) carrying mml's message."""
import ctypes

import numpy as np
import pytest

import mml
from mml import _core
from conftest import episode


def raises(fn, *needles, status=None):
    with pytest.raises(mml.MMLError) as e:
        fn()
    for n in needles:
        assert n in str(e.value), (n, str(e.value))
    if status is not None:
        assert e.value.status == status, (e.value.status, str(e.value))
    assert isinstance(e.value, ValueError)
    return e.value


S, SL, Q, _ = episode(1)


def test_configuration_errors():
    raises(lambda: mml.Metric(distance="nope"), "unknown distribution distance 'nope'", status=2)
    raises(lambda: mml.Metric(fusion="sum"), "unknown fusion 'sum'", status=2)
    raises(lambda: mml.Metric(pixel_k="x"), "`pixel_k` in the metric configuration must be an integer", status=2)
    raises(lambda: mml.Metric(levels=[]), "levels", status=2)
    raises(lambda: mml.Metric(levels="pixel,colour"), "colour", status=2)
    raises(lambda: mml.Metric(config={"pixelK": 3}), "has no field `pixelK`", status=2)
    raises(lambda: mml.Metric(threads=-1), "threads is -1")
    raises(lambda: mml.Metric(fusion="fixed", fixed_weights=[1, 2, 3, 4]), "fixed", status=2)


def test_file_errors(tmp_path):
    missing = str(tmp_path / "missing.safetensors")
    raises(lambda: mml.Metric.from_checkpoint(missing), missing, status=3)
    raises(lambda: mml.load(missing), missing, status=3)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{}")
    raises(lambda: mml.load(str(bad)), str(bad), status=3)
    raises(lambda: mml.evaluate(missing, episodes=1), missing, status=3)
    raises(lambda: mml.episodes(str(tmp_path / "nodata")), "nodata", status=3)


def test_shape_and_label_errors():
    m = mml.Metric()
    raises(lambda: m.score(S[0], SL, Q), "give both as (N, C, H, W)")
    raises(lambda: m.score(S, SL, Q[:, :, 0]), "give both as (N, C, H, W)")
    raises(lambda: m.score(S, SL, Q[:, :8]), "C = 16", "C = 8", status=1)
    raises(lambda: m.score(S, SL, Q[:, :, :3, :3]), "spatial size", status=1)
    raises(lambda: m.score(S, SL[:-1], Q), "5 support labels for 6 support items")
    raises(lambda: m.score(S, SL.reshape(2, 3), Q), "1-D array")
    raises(lambda: m.score(S, SL + 0.5, Q), "labels must be integers")
    raises(lambda: m.score(S, SL, Q, way=5), "`way` is 5", "3 distinct", status=1)
    raises(lambda: m.score(S.astype(np.complex64), SL, Q), "dtype complex64", "does not convert to float32")
    raises(lambda: m.score(np.full(S.shape, "x"), SL, Q), "does not convert to float32")
    bad = S.copy()
    bad[1, 2, 0, 3] = np.inf
    raises(lambda: m.score(bad, SL, Q), "is inf", "(1, 2, 0, 3)", status=4)
    raises(lambda: mml.Metric(part="grid:9").score(S, SL, Q), "grid sizes [9]", "`part` channels", status=1)
    raises(lambda: mml.Metric(levels="pixel", pixel_k=33).score(S, SL, Q), "k = 33", "32", status=1)
    raises(lambda: m.score_batch(S, SL, Q), "(E, N, C, H, W)")
    raises(lambda: m.score_batch(np.stack([S, S]), np.stack([SL, SL + 1, SL]), np.stack([Q, Q])),
           "3 rows of support labels for 2 episodes")


def test_closed_and_freed_handles():
    m = mml.Metric()
    m.close()
    raises(lambda: m.score(S, SL, Q), "this metric is closed", status=5)
    m.close()                                       # closing twice is fine
    # Below the package: the library refuses a freed handle and a second free (its registry), never crashes.
    h = ctypes.c_void_p()
    _core.check(_core.lib.mml_metric_create(b"{}", 0, ctypes.byref(h)))
    _core.check(_core.lib.mml_metric_free(h))
    raises(lambda: _core.check(_core.lib.mml_metric_free(h)), "is not a live handle", status=5)
    raises(lambda: _core.take_string(_core.lib.mml_metric_describe, h), "is not a live handle", status=5)


def test_model_errors(checkpoint):
    model = mml.load(checkpoint)
    c = model.configuration["inputChannels"]
    raises(lambda: model.features(np.zeros((2, c, 20), np.float32)), "image_shape has rank 3; it must be 4")
    raises(lambda: model.features(np.zeros((2, c + 2, 20, 20), np.float32)), "channel")
    raises(lambda: model.features(np.full((1, c, 20, 20), np.nan, np.float32)), "images must be finite", status=4)
    raises(lambda: model.features(np.zeros((1, c, 3, 3), np.float32)), "input 3x3 is too small", status=1)
    model.close()
    raises(lambda: model.features(np.zeros((1, c, 20, 20), np.float32)), "this model is closed")


def test_episode_and_evaluation_errors(tmp_path):
    raises(lambda: mml.episodes("synthetic", count=0), "`episodes` must be >= 1")
    raises(lambda: mml.episodes("synthetic", way=500, syntheticImages=20), "500")
    raises(lambda: mml.episodes("synthetic", syntheticSise=8), "has no field `dataset.syntheticSise`", status=2)
    raises(lambda: mml.evaluate("x.safetensors", ways=[0]), "ways")

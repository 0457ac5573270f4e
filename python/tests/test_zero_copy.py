"""Inputs that are C-contiguous float32 reach the C library at their own address (no copy); others are converted
and score the same. Checked through the package's pointer log, which records every address handed to C."""
import numpy as np
import pytest

import mml
from mml import _core
from conftest import episode


@pytest.fixture
def log():
    _core.pointer_log = []
    yield _core.pointer_log
    _core.pointer_log = None


def addresses(log):
    return dict(log)


def test_contiguous_float32_numpy_is_not_copied(log):
    s, sl, q, _ = episode(1)
    mml.Metric(levels="pixel").score(s, sl, q)
    a = addresses(log)
    assert a["support"] == s.ctypes.data
    assert a["query"] == q.ctypes.data


def test_views_that_are_contiguous_are_not_copied(log):
    s, sl, q, _ = episode(2)
    big = np.concatenate([s, s])
    view = big[: len(s)]                          # a C-contiguous view into a larger buffer
    assert view.flags.c_contiguous and view.base is not None
    mml.Metric(levels="pixel").score(view, sl, q)
    assert addresses(log)["support"] == big.ctypes.data


def test_other_inputs_are_converted_and_score_the_same(log):
    s, sl, q, _ = episode(3)
    metric = mml.Metric(levels="pixel,distribution")
    ref = metric.score(s, sl, q)
    strided = np.ascontiguousarray(s.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)   # same values, not C order
    assert not strided.flags.c_contiguous
    log.clear()
    got = metric.score(strided, sl, q.astype(np.float64))
    a = addresses(log)
    assert a["support"] != strided.ctypes.data and a["query"] != q.ctypes.data
    for k in ref:
        assert np.allclose(ref[k], got[k], rtol=0, atol=0), k
    got = metric.score(s.tolist(), list(sl), q)   # nested lists work too
    assert np.array_equal(got["fused"], ref["fused"])


def test_batch_inputs_are_not_copied(log):
    eps = [episode(seed) for seed in (4, 5)]
    s = np.stack([e[0] for e in eps]); q = np.stack([e[2] for e in eps])
    mml.Metric(levels="pixel").score_batch(s, np.stack([e[1] for e in eps]), q)
    assert addresses(log)["support"] == s.ctypes.data and addresses(log)["query"] == q.ctypes.data


def test_torch_cpu_tensors_are_not_copied(log):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the CPU wheel: see ../shared/peers)")
    s, sl, q, _ = episode(6)
    ts, tq = torch.from_numpy(s).clone(), torch.from_numpy(q).clone().requires_grad_()
    mml.Metric(levels="pixel").score(ts, torch.from_numpy(sl), tq)
    a = addresses(log)
    assert a["support"] == ts.data_ptr() and a["query"] == tq.data_ptr()
    log.clear()
    tt = ts.transpose(2, 3)                       # not contiguous: converted
    mml.Metric(levels="pixel").score(tt, sl, tq.detach())
    assert addresses(log)["support"] != tt.data_ptr()

"""Two Python threads scoring at once (ctypes releases the GIL during each C call) give the serial results."""
import threading

import numpy as np

import mml
from conftest import episode


def run_threads(jobs):
    results = [None] * len(jobs)
    errors = []
    start = threading.Barrier(len(jobs))

    def work(i, fn):
        try:
            start.wait()
            results[i] = [fn() for _ in range(5)]
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, fn)) for i, fn in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_two_threads_one_metric():
    metric = mml.Metric(pixel_k=3)
    a, b = episode(1), episode(2, way=4)
    serial = [metric.score(*a[:3]), metric.score(*b[:3])]
    results = run_threads([lambda: metric.score(*a[:3]), lambda: metric.score(*b[:3])])
    for ref, rounds in zip(serial, results):
        for got in rounds:
            for k in ref:
                assert np.array_equal(ref[k], got[k]), k


def test_two_threads_two_metrics_and_errors_stay_per_thread():
    m1, m2 = mml.Metric(levels="pixel"), mml.Metric(distance="w2")
    a = episode(3)
    serial = m2.score(*a[:3])

    def failing():
        try:
            m1.score(a[0], a[1], a[2][:, :4])
        except mml.MMLError as e:
            return str(e)

    results = run_threads([failing, lambda: m2.score(*a[:3])])
    assert all("C = 16" in msg for msg in results[0])
    for got in results[1]:
        assert np.array_equal(got["fused"], serial["fused"])


def test_two_threads_one_model(checkpoint):
    model = mml.load(checkpoint)
    side = model.configuration["image"]["size"]
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((3, model.configuration["inputChannels"], side, side)).astype(np.float32)
          for _ in range(2)]
    serial = [model.features(x) for x in xs]
    results = run_threads([lambda: model.features(xs[0]), lambda: model.features(xs[1])])
    for ref, rounds in zip(serial, results):
        for got in rounds:
            assert np.array_equal(ref, got)

"""mml from Python: the multi-level few-shot metric (pixel, part and distribution levels, fused) over the C ABI.

    import mml
    metric = mml.Metric(levels="pixel,distribution", pixel_k=3)
    s = metric.score(support, support_labels, query)     # NumPy arrays or PyTorch CPU tensors
    s["pixel"], s["distribution"], s["fused"]            # (queries, way) each; s["classes"] labels the columns

    model = mml.load("best.safetensors")                 # a checkpoint: backbone (+ trained metric)
    f = model.features(images)                           # (N, C_in, H, W) -> (N, C, h, w)
    s = model.score(f_support, labels, f_query)          # with the trained fusion

    mml.episodes("synthetic", way=5, shot=1, query=15, seed=0, count=600)   # = `mml data episodes`

Inputs that are C-contiguous float32 (NumPy arrays, PyTorch CPU tensors through DLPack) are handed to the library
without a copy; others are converted first. Errors raise mml.MMLError (a ValueError) with mml's message. The C calls
release the GIL: several Python threads can score at once. docs/PYTHON.md has the details.
"""
import ctypes
import json

import numpy as np

from ._core import MMLError, default_configuration, environment, library_path
from . import _core

__all__ = ["Metric", "Model", "MMLError", "load", "episodes", "episodes_json", "evaluate", "default_configuration",
           "environment", "library_path", "__version__"]
__version__ = "1.1.0"
abi_version = _core.lib.mml_version().decode()

_LEVELS = ("pixel", "part", "distribution")


def _levels(levels):
    if isinstance(levels, str):
        names = [s.strip() for s in levels.split(",") if s.strip()]
    else:
        names = list(levels)
    if names == ["all"]:
        return list(_LEVELS)
    return names


class _Handle:
    """Frees its library handle on close(), on leaving a `with` block, or when garbage-collected."""

    def close(self):
        raise NotImplementedError

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Metric(_Handle):
    """mml's multi-level metric. Arguments left None keep the engine's defaults (docs/API.md section 1):

    levels                any of "pixel", "part", "distribution" (a list or "pixel,part"; "all")
    pixel_k               K of the pixel level's image-to-class top-K rule
    part                  "grid:3,2" (pooled regions over grids) or "channels"
    part_k                K of the part level
    distance              "kl", "kl-cq", "kl-sym", "w2" or "mml-v1" (distribution level)
    distribution_eps      ridge added to every covariance
    fusion                "learned" (each level normalised over the episode, equal weights) or "fixed"
    fusion_normalization  "per-level" or "per-position"
    fixed_weights         fixed fusion: one weight per enabled level
    threads               kernel threads (0: all cores)
    config                a dict of MetricConfiguration JSON fields, laid under the arguments above
    """

    def __init__(self, levels=None, pixel_k=None, part=None, distance=None, fusion=None, part_k=None,
                 distribution_eps=None, fusion_normalization=None, fixed_weights=None, threads=0, config=None):
        fields = dict(config or {})
        for key, value in (("levels", None if levels is None else _levels(levels)), ("pixelNeighbours", pixel_k),
                           ("partForm", part), ("partNeighbours", part_k), ("distance", distance),
                           ("distributionEps", distribution_eps), ("fusion", fusion),
                           ("fusionNormalization", fusion_normalization),
                           ("fixedWeights", None if fixed_weights is None else [float(w) for w in fixed_weights])):
            if value is not None:
                fields[key] = value
        self._handle = None
        self._make(_core.lib.mml_metric_create, json.dumps(fields).encode(), _threads(threads))

    @classmethod
    def from_checkpoint(cls, path, threads=0):
        """The trained metric of an episodic checkpoint (fusion weights and statistics from training)."""
        m = cls.__new__(cls)
        m._handle = None
        m._make(_core.lib.mml_metric_from_checkpoint, str(path).encode(), _threads(threads))
        return m

    @classmethod
    def _adopt(cls, handle):
        m = cls.__new__(cls)
        m._handle = handle
        return m

    def _make(self, fn, arg, threads):
        h = ctypes.c_void_p()
        _core.check(fn(arg, threads, ctypes.byref(h)))
        self._handle = h.value

    def _live(self):
        if self._handle is None:
            raise MMLError("this metric is closed; make a new one", 5)
        return self._handle

    @property
    def description(self):
        """{"configuration": {...}, "description": "...", "levels": [...]}"""
        return json.loads(_core.take_string(_core.lib.mml_metric_describe, self._live()))

    @property
    def levels(self):
        return self.description["levels"]

    def score(self, support, support_labels, query, way=None):
        """Scores one episode.

        support         (N_s, C, H, W) feature maps or (N_s, M, C) descriptor sets
        support_labels  N_s integer labels, any values: column j of the scores is classes[j], the j-th distinct label
        query           (N_q, ...) in the support's layout
        way             the expected number of classes (None: any)

        Returns {level: (N_q, way) float32, ..., "fused": (N_q, way), "classes": (way,) int64, "predictions":
        (N_q,) int64 (predicted labels)}. Equals `mml score` on the same inputs.
        """
        h = self._live()
        s = _core.as_float32(support, "support")
        q = _core.as_float32(query, "query")
        if s.ndim not in (3, 4) or q.ndim != s.ndim:
            raise MMLError(f"support has shape {s.shape} and query {q.shape}; give both as (N, C, H, W) feature maps "
                           "or both as (N, M, C) descriptor sets")
        labels = _core.as_labels(support_labels, "support labels", s.shape[0])
        out = ctypes.c_void_p()
        _core.check(_core.lib.mml_score_episode(
            h, _core.pointer(s, "support"), _core.shape_array(s.shape), _core.pointer(labels, "support_labels"),
            _core.pointer(q, "query"), _core.shape_array(q.shape), s.ndim, int(way or 0), ctypes.byref(out)))
        return _core.scores_dict(out.value)

    def score_batch(self, support, support_labels, query, way=None):
        """Scores E episodes of one shape in one call: support (E, N_s, ...), support_labels (E, N_s), query
        (E, N_q, ...). Returns a list of E score dicts as `score` gives."""
        h = self._live()
        s = _core.as_float32(support, "support")
        q = _core.as_float32(query, "query")
        if s.ndim not in (4, 5) or q.ndim != s.ndim or s.shape[0] != q.shape[0]:
            raise MMLError(f"support has shape {s.shape} and query {q.shape}; give (E, N, C, H, W) or (E, N, M, C) "
                           "for both, with the same number of episodes E")
        e = s.shape[0]
        labels = [_core.as_labels(row, "support labels", s.shape[1]) for row in support_labels]
        if len(labels) != e:
            raise MMLError(f"{len(labels)} rows of support labels for {e} episodes; give one row per episode")
        labels = np.ascontiguousarray(np.stack(labels), dtype=np.int64)
        handles = (ctypes.c_void_p * e)()
        _core.check(_core.lib.mml_score_batch(
            h, e, _core.pointer(s, "support"), _core.shape_array(s.shape[1:]), _core.pointer(labels, "support_labels"),
            _core.pointer(q, "query"), _core.shape_array(q.shape[1:]), s.ndim - 1, int(way or 0),
            ctypes.cast(handles, ctypes.POINTER(ctypes.c_void_p))))
        return [_core.scores_dict(handles[i]) for i in range(e)]

    def close(self):
        """Frees the metric now (otherwise when it is garbage-collected)."""
        if self._handle is not None:
            h, self._handle = self._handle, None
            _core.check(_core.lib.mml_metric_free(h))



class Model(_Handle):
    """A loaded checkpoint: `features(images)` runs its backbone, `score(...)` its trained metric."""

    def __init__(self, path, threads=0):
        self._handle = None
        self._metric = None
        self.path = str(path)
        h = ctypes.c_void_p()
        _core.check(_core.lib.mml_model_load(self.path.encode(), _threads(threads), ctypes.byref(h)))
        self._handle = h.value
        self.configuration = json.loads(_core.take_string(_core.lib.mml_model_describe, self._handle))

    def _live(self):
        if self._handle is None:
            raise MMLError("this model is closed; load it again", 5)
        return self._handle

    def features(self, images):
        """Backbone features in inference mode: images (N, C_in, H, W) float32, already resized and normalised as
        `configuration["image"]` says -> (N, C, h, w) float32."""
        h = self._live()
        x = _core.as_float32(images, "images")
        out = ctypes.c_void_p()
        _core.check(_core.lib.mml_model_features(h, _core.pointer(x, "images"), _core.shape_array(x.shape), x.ndim,
                                                 ctypes.byref(out)))
        return _core.tensor_array(out.value)

    @property
    def metric(self):
        """The trained metric (MMLError for a model without a metric head)."""
        if self._metric is None:
            out = ctypes.c_void_p()
            _core.check(_core.lib.mml_model_metric(self._live(), ctypes.byref(out)))
            self._metric = Metric._adopt(out.value)
        return self._metric

    def score(self, support, support_labels, query, way=None):
        """Scores precomputed features with the model's trained metric (see Metric.score)."""
        return self.metric.score(support, support_labels, query, way=way)

    def close(self):
        if self._metric is not None:
            self._metric.close()
        if self._handle is not None:
            h, self._handle = self._handle, None
            _core.check(_core.lib.mml_model_free(h))



def load(path, threads=0):
    """Loads a checkpoint (.safetensors written by mml train / pretrain / train-embedding, or mml import)."""
    return Model(path, threads=threads)


def _threads(threads):
    if not isinstance(threads, int) or threads < 0:
        raise MMLError(f"threads is {threads!r}; give 0 (all cores) or a positive integer")
    return threads


def _dataset(dataset, split, layout, synthetic):
    d = {"path": str(dataset)}
    if split is not None:
        d["split"] = split
    if layout is not None:
        d["layout"] = layout
    d.update(synthetic)
    return d


def episodes_json(dataset, way=5, shot=1, query=15, seed=0, count=600, split=None, layout=None,
                  drop_small_classes=False, out=None, **synthetic):
    """The episode list as the exact JSON text `mml data episodes` writes for the same settings (and writes it to
    `out` when given). `synthetic` takes the built-in data's settings by their JSON names (syntheticSize,
    syntheticImages, syntheticSeed, syntheticChannels)."""
    config = {"dataset": _dataset(dataset, split, layout, synthetic), "way": way, "shot": shot, "query": query,
              "seed": seed, "episodes": count, "dropSmallClasses": bool(drop_small_classes)}
    if out is not None:
        config["out"] = str(out)
    return _core.take_string(_core.lib.mml_episodes, json.dumps(config).encode())


def episodes(dataset, way=5, shot=1, query=15, seed=0, count=600, split=None, layout=None, drop_small_classes=False,
             **synthetic):
    """Episode i of (seed, i), exactly the episodes `mml data episodes` writes: a dict with dataset, split, way,
    shot, query, seed and "episodes": [{"index", "classes": [name], "support": [[path]], "query": [[path]]}]."""
    return json.loads(episodes_json(dataset, way=way, shot=shot, query=query, seed=seed, count=count, split=split,
                                    layout=layout, drop_small_classes=drop_small_classes, **synthetic))


def evaluate(checkpoint, dataset="synthetic", ways=(5,), shots=(1,), query=15, episodes=600, seed=0,
             episode_list=None, split=None, layout=None, threads=0, **fields):
    """Evaluates a checkpoint as `mml eval` does and returns its JSON report as a dict. `episode_list` evaluates
    the episodes of a list file (mml data episodes / mml.episodes_json(out=...)). Other evaluation configuration
    fields (evaluationProtocol, cosineClassifier, precision="bf16" or "bf16amx") and the built-in data's settings (syntheticImages, ...) may be
    given by their JSON names."""
    synthetic = {k: fields.pop(k) for k in list(fields) if k.startswith("synthetic")}
    config = {"checkpoint": str(checkpoint), "dataset": _dataset(dataset, split, layout, synthetic), "ways": list(ways),
              "shots": list(shots), "query": query, "episodes": episodes, "seed": seed, "threads": _threads(threads)}
    if episode_list is not None:
        config["episodeList"] = str(episode_list)
    config.update(fields)
    return json.loads(_core.take_string(_core.lib.mml_evaluate, json.dumps(config).encode()))


"""The package's implementation over the C ABI: inputs to C pointers (without a copy when they already are
C-contiguous float32), handles, errors, results to NumPy."""
import ctypes
import json
import re
import threading

import numpy as np

from . import _library

lib, library_path = _library.load()

STATUS = {1: "invalid argument", 2: "configuration", 3: "file", 4: "numerical", 5: "invalid handle", 6: "internal"}

# Python keyword names of the metric's configuration fields where they differ from snake_case.
_FIELD_NAMES = {"pixelNeighbours": "pixel_k", "partNeighbours": "part_k", "partForm": "part"}


class MMLError(ValueError):
    """An error reported by mml: `message` says what was wrong, where and what to do; `status` is the C status
    code (1 invalid argument, 2 configuration, 3 file, 4 numerical, 5 invalid handle, 6 internal)."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.message = message
        self.status = status

    @property
    def kind(self):
        return STATUS.get(self.status, "unknown")


_metric_fields = None


def _python_name(field):
    """The keyword argument of mml.Metric for one of the metric configuration's fields; other names unchanged."""
    global _metric_fields
    if _metric_fields is None:
        _metric_fields = set(default_configuration("metric"))
    if field not in _metric_fields:
        return field
    if field in _FIELD_NAMES:
        return _FIELD_NAMES[field]
    return re.sub(r"(?<!^)([A-Z])", r"_\1", field).lower()


def check(status):
    """Raises MMLError with the calling thread's last error when `status` is not 0."""
    if status != 0:
        template = (lib.mml_last_error_template() or b"").decode("utf-8", "replace")
        message = re.sub(r"`([A-Za-z0-9_.]+)`", lambda m: "`" + _python_name(m.group(1)) + "`", template)
        raise MMLError(message or f"mml failed with status {status}", status)


def take_string(fn, *args):
    """Calls fn(*args, char **out) and returns the string, freeing the C copy."""
    out = ctypes.c_void_p()
    check(fn(*args, ctypes.byref(out)))
    try:
        return ctypes.string_at(out.value).decode("utf-8")
    finally:
        lib.mml_string_free(out)


# ---- Inputs -------------------------------------------------------------------------------------------------------

# Tests set this to a list to see every input address handed to C: (role, address).
pointer_log = None
_log_lock = threading.Lock()


def _is_torch(x):
    return type(x).__module__.startswith("torch")


def as_float32(x, role):
    """`x` as a C-contiguous float32 ndarray that shares memory with `x` when it already is one (NumPy arrays,
    PyTorch CPU tensors through DLPack, anything with the buffer protocol); otherwise a converted copy. Real dtypes
    (float, int, bool) convert; others raise MMLError."""
    if _is_torch(x):
        if getattr(x, "device", None) is not None and x.device.type != "cpu":
            raise MMLError(f"{role} is a PyTorch tensor on {x.device}; move it to the CPU first (.cpu())")
        if getattr(x, "requires_grad", False):
            x = x.detach()                      # shares memory
        x = np.from_dlpack(x)
    elif not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype != np.float32:
        if x.dtype.kind not in "fiub":
            raise MMLError(f"{role} has dtype {x.dtype}, which does not convert to float32; give real numbers "
                           "(float32 is used as is, other real dtypes are converted)")
        x = x.astype(np.float32)
    if not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    return x


def as_labels(x, role, count):
    if _is_torch(x):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1:
        raise MMLError(f"{role} have shape {a.shape}; give a 1-D array with one label per item")
    if a.dtype.kind not in "iub":
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise MMLError(f"{role} have dtype {a.dtype}; labels must be integers")
    if len(a) != count:
        raise MMLError(f"{len(a)} {role} for {count} support items; give one label per support item")
    return np.ascontiguousarray(a, dtype=np.int64)


def pointer(a, role):
    address = a.ctypes.data
    if pointer_log is not None:
        with _log_lock:
            pointer_log.append((role, address))
    return ctypes.c_void_p(address)


def shape_array(shape):
    return (ctypes.c_int64 * len(shape))(*shape)


# ---- Results ------------------------------------------------------------------------------------------------------

def _array(address, count, dtype):
    """A new array of `count` elements copied from a result's memory (one memmove)."""
    if not address:
        check(5)
    a = np.empty(count, dtype=dtype)
    ctypes.memmove(a.ctypes.data, address, a.nbytes)
    return a


def scores_dict(handle):
    """The scores of one episode as {level: (queries, way), "fused": ..., "classes": (way,), "predictions":
    (queries,)}, copied out of the C handle, which is then freed."""
    try:
        q, w = lib.mml_scores_queries(handle), lib.mml_scores_way(handle)
        if q < 0 or w < 0:
            check(5)
        out = {}
        for i in range(lib.mml_scores_level_count(handle)):
            name = lib.mml_scores_level_name(handle, i).decode()
            out[name] = _array(lib.mml_scores_level(handle, i), q * w, np.float32).reshape(q, w)
        out["fused"] = _array(lib.mml_scores_fused(handle), q * w, np.float32).reshape(q, w)
        out["classes"] = _array(lib.mml_scores_classes(handle), w, np.int64)
        out["predictions"] = _array(lib.mml_scores_predictions(handle), q, np.int64)
        return out
    finally:
        lib.mml_scores_free(handle)


def tensor_array(handle):
    try:
        rank = lib.mml_tensor_rank(handle)
        if rank < 0:
            check(5)
        shape = tuple(lib.mml_tensor_shape(handle)[i] for i in range(rank))
        return _array(lib.mml_tensor_data(handle), int(np.prod(shape)), np.float32).reshape(shape)
    finally:
        lib.mml_tensor_free(handle)


def environment():
    """What this process computes with (the C ABI's mml_environment) as a dict: "cpu", "cpuFeatures", "cores", the
    OpenBLAS facts ("blasCore", "blasCoreSource", "blasBestCore", "blasThreads", "blasConfig"), mml's kernel path
    "kernels" ("avx512", "avx2" or "portable") with "kernelsBest" and "kernelsSetting" (MML_KERNELS_ISA), the bf16
    paths and "blasWarning". Log it beside a harness's figures: the Gaussian kernels' paths round differently."""
    return json.loads(take_string(lib.mml_environment))


def default_configuration(kind):
    """The engine's default configuration of `kind` ("metric", "episodes", "evaluation") as a dict."""
    return json.loads(take_string(lib.mml_default_configuration, kind.encode()))

"""Finding and declaring the C ABI (libmmlc.so, header Sources/MMLCAPI/include/mml.h)."""
import ctypes
import os

_NAME = "libmmlc.so"


def candidates():
    """Where the library is looked for, in order: $MML_LIBRARY, the copy installed with the package, the
    repository's release build (../.build/release relative to python/)."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    if os.environ.get("MML_LIBRARY"):
        out.append(os.environ["MML_LIBRARY"])
    out.append(os.path.join(here, _NAME))
    out.append(os.path.normpath(os.path.join(here, "..", "..", ".build", "release", _NAME)))
    return out


def load():
    tried = []
    for path in candidates():
        if not os.path.exists(path):
            tried.append(f"{path} (missing)")
            continue
        try:
            return _declare(ctypes.CDLL(path)), path
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError("mml: cannot load the C library libmmlc.so; tried: " + "; ".join(tried)
                      + ". Build it with `swift build -c release --product mmlc` (or `make python`) or set MML_LIBRARY")


c_f32p = ctypes.POINTER(ctypes.c_float)
c_i64p = ctypes.POINTER(ctypes.c_int64)
c_void = ctypes.c_void_p
c_str = ctypes.c_char_p
c_int = ctypes.c_int
c_i64 = ctypes.c_int64
c_out = ctypes.POINTER(ctypes.c_void_p)
c_strout = ctypes.POINTER(ctypes.c_void_p)  # char **, read back as an address then freed


def _declare(lib):
    # Result pointers come back as plain addresses (c_void_p): the package copies from them with one memmove.
    sig = {
        "mml_version": (c_str, []),
        "mml_last_error": (c_str, []),
        "mml_last_error_template": (c_str, []),
        "mml_string_free": (None, [c_void]),
        "mml_default_configuration": (c_int, [c_str, c_strout]),
        "mml_environment": (c_int, [c_strout]),
        "mml_metric_create": (c_int, [c_str, c_int, c_out]),
        "mml_metric_from_checkpoint": (c_int, [c_str, c_int, c_out]),
        "mml_metric_describe": (c_int, [c_void, c_strout]),
        "mml_metric_free": (c_int, [c_void]),
        "mml_score_episode": (c_int, [c_void, c_void, c_i64p, c_void, c_void, c_i64p, c_int, c_i64, c_out]),
        "mml_score_batch": (c_int, [c_void, c_i64, c_void, c_i64p, c_void, c_void, c_i64p, c_int, c_i64, c_out]),
        "mml_scores_queries": (c_i64, [c_void]),
        "mml_scores_way": (c_i64, [c_void]),
        "mml_scores_level_count": (c_int, [c_void]),
        "mml_scores_level_name": (c_str, [c_void, c_int]),
        "mml_scores_level": (c_void, [c_void, c_int]),
        "mml_scores_fused": (c_void, [c_void]),
        "mml_scores_classes": (c_void, [c_void]),
        "mml_scores_predictions": (c_void, [c_void]),
        "mml_scores_free": (c_int, [c_void]),
        "mml_model_load": (c_int, [c_str, c_int, c_out]),
        "mml_model_describe": (c_int, [c_void, c_strout]),
        "mml_model_features": (c_int, [c_void, c_void, c_i64p, c_int, c_out]),
        "mml_model_metric": (c_int, [c_void, c_out]),
        "mml_model_free": (c_int, [c_void]),
        "mml_tensor_rank": (c_int, [c_void]),
        "mml_tensor_shape": (c_i64p, [c_void]),
        "mml_tensor_data": (c_void, [c_void]),
        "mml_tensor_free": (c_int, [c_void]),
        "mml_episodes": (c_int, [c_str, c_strout]),
        "mml_evaluate": (c_int, [c_str, c_strout]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib

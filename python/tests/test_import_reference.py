"""A PyTorch-style Conv-64F state_dict imported with `mml import` computes the reference's features.

The reference is DN4's Conv-64F (WenbinLee/DN4 `Conv_64F`: nn.Sequential of Conv3x3(64, no bias) -> BatchNorm2d ->
LeakyReLU(0.2) -> MaxPool 2x2 for blocks 1-2, the same without the pool for blocks 3-4) written in numpy with
random weights and BatchNorm statistics from a seed. Its tensors are written with DN4's names (`features.0.weight`,
`features.1.running_mean`, ...) as a safetensors file by the tiny writer below (no safetensors package needed),
imported with the CLI (`mml import`), loaded with the Python package (`mml.load(ckpt).features(images)`), and the
features are compared with the numpy forward within 1e-4.

When the torch venv of ../shared/peers/README.md exists (/tmp/torchpeer), a second test builds the same network
in torch, checks the numpy reference against it, saves its real state_dict (with num_batches_tracked) and compares
mml's features with torch's. Without that venv the torch test is skipped with the reason.

Run from the repository root after `swift build -c release` (the CLI) and with the Python package importable:

    python3 -m pytest python/tests/test_import_reference.py -v

Environment: MML_CLI (default .build/release/mml), TORCH_PYTHON (default /tmp/torchpeer/bin/python).
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI = os.environ.get("MML_CLI", os.path.join(ROOT, ".build", "release", "mml"))
TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "/tmp/torchpeer/bin/python")

# DN4's nn.Sequential indices of each block's conv and BatchNorm, and where it pools
CONV_INDEX = [0, 4, 8, 11]
POOLS = [True, True, False, False]


def write_safetensors(path, tensors):
    """Writes {name: numpy array} as safetensors: 8-byte little-endian header length, JSON header, raw data."""
    dtypes = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("float16"): "F16",
              np.dtype("int64"): "I64"}
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        a = np.ascontiguousarray(array)
        data = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def random_conv64f_state(seed, in_channels=3, width=64):
    """DN4-named tensors with random weights and BatchNorm statistics."""
    rng = np.random.default_rng(seed)
    state, c = {}, in_channels
    for i in CONV_INDEX:
        state[f"features.{i}.weight"] = (rng.standard_normal((width, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(np.float32)
        state[f"features.{i + 1}.weight"] = (1 + 0.2 * rng.standard_normal(width)).astype(np.float32)
        state[f"features.{i + 1}.bias"] = (0.1 * rng.standard_normal(width)).astype(np.float32)
        state[f"features.{i + 1}.running_mean"] = (0.2 * rng.standard_normal(width)).astype(np.float32)
        state[f"features.{i + 1}.running_var"] = (0.5 + rng.random(width)).astype(np.float32)
        state[f"features.{i + 1}.num_batches_tracked"] = np.array(100, dtype=np.int64)
        c = width
    return state


def conv3x3(x, w):
    """Cross-correlation with zero padding 1, in float64: x (N, C, H, W), w (O, C, 3, 3) -> (N, O, H, W)."""
    n, c, h, wd = x.shape
    p = np.zeros((n, c, h + 2, wd + 2))
    p[:, :, 1:-1, 1:-1] = x
    out = np.zeros((n, w.shape[0], h, wd))
    for di in range(3):
        for dj in range(3):
            out += np.einsum("nchw,oc->nohw", p[:, :, di:di + h, dj:dj + wd], w[:, :, di, dj])
    return out


def reference_forward(x, state, eps=1e-5, slope=0.2):
    """DN4's Conv-64F in evaluation mode, float64: (N, C, H, W) -> (N, 64, H/4, W/4)."""
    h = x.astype(np.float64)
    for i, pool in zip(CONV_INDEX, POOLS):
        h = conv3x3(h, state[f"features.{i}.weight"].astype(np.float64))
        g, b = state[f"features.{i + 1}.weight"], state[f"features.{i + 1}.bias"]
        m, v = state[f"features.{i + 1}.running_mean"], state[f"features.{i + 1}.running_var"]
        h = (h - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + eps) * g[None, :, None, None] \
            + b[None, :, None, None]
        h = np.where(h > 0, h, slope * h)
        if pool:
            n, c, hh, ww = h.shape
            h = h[:, :, :hh // 2 * 2, :ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
    return h


def mml_import(weights, out, *extra):
    if not os.path.exists(CLI):
        pytest.skip(f"the mml CLI is not built at {CLI} (run `swift build -c release`)")
    r = subprocess.run([CLI, "import", weights, "--backbone", "conv64f", "--out", out, "--json", *extra],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def mml_features(checkpoint, images):
    mml = pytest.importorskip("mml", reason="the mml Python package is not importable (python/mml, libmmlc.so)")
    model = mml.load(checkpoint)
    try:
        return np.asarray(model.features(images))
    finally:
        model.close()


def test_numpy_reference_conv64f_imports_exactly():
    state = random_conv64f_state(seed=7)
    images = np.random.default_rng(8).standard_normal((3, 3, 84, 84)).astype(np.float32)
    ref = reference_forward(images, state)
    assert ref.shape == (3, 64, 21, 21)
    with tempfile.TemporaryDirectory() as d:
        weights, ckpt = os.path.join(d, "dn4.safetensors"), os.path.join(d, "dn4-mml.safetensors")
        write_safetensors(weights, state)
        report = mml_import(weights, ckpt)
        assert report["convention"] == "dn4"
        assert len(report["mapped"]) == 20 and report["unused"] == [] and len(report["ignored"]) == 4
        feats = mml_features(ckpt, images)
    assert feats.shape == ref.shape
    err = np.abs(feats - ref).max()
    assert err <= 1e-4 * max(1.0, np.abs(ref).max()), f"max |mml - numpy| = {err}"


TORCH_SCRIPT = r"""
import sys, numpy as np, torch, torch.nn as nn
torch.manual_seed(3)
def block(c_in, pool):
    layers = [nn.Conv2d(c_in, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(0.2, True)]
    return layers + ([nn.MaxPool2d(2, 2)] if pool else [])
class Conv64F(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*block(3, True), *block(64, True), *block(64, False), *block(64, False))
    def forward(self, x): return self.features(x)
net = Conv64F()
with torch.no_grad():
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.normal_(1, 0.2); m.bias.normal_(0, 0.1); m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 1.5); m.num_batches_tracked.fill_(50)
net.eval()
x = torch.randn(2, 3, 84, 84)
with torch.no_grad(): y = net(x)
state = {k: v.numpy() for k, v in net.state_dict().items()}
np.savez(sys.argv[1], x=x.numpy(), y=y.numpy(), **{"state/" + k: v for k, v in state.items()})
"""


def test_torch_conv64f_state_dict_imports_exactly():
    if not os.path.exists(TORCH_PYTHON):
        pytest.skip(f"no torch venv at {TORCH_PYTHON} (see ../shared/peers/README.md); the numpy test covers the import")
    with tempfile.TemporaryDirectory() as d:
        npz = os.path.join(d, "torch.npz")
        r = subprocess.run([TORCH_PYTHON, "-c", TORCH_SCRIPT, npz], capture_output=True, text=True)
        if r.returncode != 0 and "No module named 'torch'" in r.stderr:
            pytest.skip(f"{TORCH_PYTHON} has no torch")
        assert r.returncode == 0, r.stderr
        data = np.load(npz)
        state = {k[len("state/"):]: data[k] for k in data.files if k.startswith("state/")}
        x, y = data["x"], data["y"]
        # the numpy reference is PyTorch's forward
        assert np.abs(reference_forward(x, state) - y).max() <= 1e-4 * max(1.0, np.abs(y).max())
        weights, ckpt = os.path.join(d, "torch.safetensors"), os.path.join(d, "torch-mml.safetensors")
        write_safetensors(weights, state)
        report = mml_import(weights, ckpt)
        assert report["convention"] == "dn4"
        feats = mml_features(ckpt, x)
    assert np.abs(feats - y).max() <= 1e-4 * max(1.0, np.abs(y).max())


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))

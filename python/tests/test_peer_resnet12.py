"""The PyTorch ResNet-12 of the side-by-side benchmark (Benchmarks/peer_resnet12.py) is mml's ResNet-12.

1. Its tensors are mml's: the state_dict's names and shapes (without BatchNorm's num_batches_tracked) are exactly the
   list `mml import --list-names --backbone resnet12` prints (so the parameter counts agree too).
2. It computes mml's function: a peer with random weights and BatchNorm statistics, imported with `mml import
   --name-map` (mml's names -> the same names), gives mml's features (`mml.load(ckpt).features`, evaluation mode)
   within 1e-4 of the largest output, in NCHW and in the channels_last layout the benchmark runs in; the same peer
   with LeakyReLU slope 0.2 instead of 0.1 is far outside that tolerance (the comparison can tell them apart).
3. Its DropBlock is mml's (DropBlock.swift), the random part of the training step: given the seeds, the output
   equals a naive loop over the seeds (b x b block from each seed's corner, kept values scaled by elements / kept);
   the seed probability is mml's gamma; drawn masks drop, on average, the fraction that gamma implies; it is in
   stages 3 and 4 with the rate and block size of mml's default configuration (read from the import report).

The torch side runs in the venv of ../shared/peers/README.md (TORCH_PYTHON, default /tmp/torchpeer/bin/python) as
a subprocess; without it the test is skipped with the reason. Run from the repository root after
`swift build -c release`:

    python3 -m pytest python/tests/test_peer_resnet12.py -v
"""
import json
import os
import subprocess
import tempfile

import numpy as np
import pytest

from conftest import ROOT
from test_import_reference import write_safetensors

TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "/tmp/torchpeer/bin/python")
BENCH = os.path.join(ROOT, "Benchmarks")

TORCH_SCRIPT = r"""
import math, sys, numpy as np, torch
sys.path.insert(0, sys.argv[2])
import peer_resnet12 as p
torch.set_num_threads(1)
torch.manual_seed(5)
net = p.ResNet12()
with torch.no_grad():
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):  # variance-preserving, so every layer shows in the output
            m.weight.normal_(0, math.sqrt(2.0 / (m.weight[0].numel())))
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.weight.normal_(1, 0.2); m.bias.normal_(0, 0.1); m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 1.5); m.num_batches_tracked.fill_(10)
net.eval()
x = torch.randn(2, 3, 84, 84)
with torch.inference_mode():
    y = net(x)
    cl = net.to(memory_format=torch.channels_last)
    y_cl = cl(x.contiguous(memory_format=torch.channels_last)).contiguous()
    p.SLOPE = 0.2
    y_slope = net(x).contiguous()
    p.SLOPE = 0.1
out = {"x": x.numpy(), "y": y.numpy(), "y_cl": y_cl.numpy(), "y_slope": y_slope.numpy()}
# copies: the train-mode calls below update the BatchNorm buffers in place
out.update({"state/" + k: v.numpy().copy() for k, v in net.state_dict().items()})
# DropBlock with given seeds, in both layouts
g = torch.Generator().manual_seed(6)
xd = torch.randn(3, 4, 10, 10, generator=g)
seeds = (torch.rand(3, 4, 6, 6, generator=g) < 0.06).float()
out["db_x"], out["db_seeds"] = xd.numpy(), seeds.numpy()
out["db_y"] = p.drop_block(xd, 0.1, 5, seeds=seeds).numpy()
out["db_y_cl"] = p.drop_block(xd.contiguous(memory_format=torch.channels_last), 0.1, 5,
                              seeds=seeds).contiguous().numpy()
# drawn masks: the dropped fraction on maps of 10 x 10 and 5 x 5 (stages 3 and 4 at 84 x 84), rate 0.1, block 5
torch.manual_seed(7)
for side in (10, 5):
    ones = torch.ones(400, 64, side, side)
    out[f"db_drawn_{side}"] = (p.drop_block(ones, 0.1, 5) == 0).double().mean().numpy()
    out[f"db_gamma_{side}"] = np.array(p.drop_block_gamma(side, side, 5, 0.1))
stages = [getattr(net, f"block{i + 1}") for i in range(4)]
out["stage_drop_rate"] = np.array([s.drop_rate for s in stages])
out["stage_drop_size"] = np.array([s.drop_size for s in stages])
# train mode applies DropBlock (the output changes between two calls), eval mode does not
net.train()
with torch.no_grad():
    xs = torch.randn(2, 3, 84, 84)
    out["train_differs"] = np.array(bool((net(xs) != net(xs)).any()))
np.savez(sys.argv[1], **out)
"""


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    if not os.path.exists(TORCH_PYTHON):
        pytest.skip(f"no torch venv at {TORCH_PYTHON} (see ../shared/peers/README.md)")
    npz = str(tmp_path_factory.mktemp("peer") / "peer.npz")
    r = subprocess.run([TORCH_PYTHON, "-c", TORCH_SCRIPT, npz, BENCH], capture_output=True, text=True)
    if r.returncode != 0 and "No module named 'torch'" in r.stderr:
        pytest.skip(f"{TORCH_PYTHON} has no torch")
    assert r.returncode == 0, r.stderr
    data = np.load(npz)
    return {k: data[k] for k in data.files}


def state_of(peer):
    return {k[len("state/"):]: v for k, v in peer.items() if k.startswith("state/")}


def test_peer_has_mmls_tensors(peer, mml_cli):
    listed = {}
    for line in mml_cli(["import", "--list-names", "--backbone", "resnet12"]).stdout.splitlines():
        name, shape = line.split(" ", 1)
        listed[name] = json.loads(shape)
    state = {"backbone." + k: list(v.shape) for k, v in state_of(peer).items()
             if not k.endswith("num_batches_tracked")}
    assert len(listed) == 80
    assert state == listed
    count = lambda shapes: sum(int(np.prod(s)) for n, s in shapes.items() if n.endswith(("weight", "bias")))
    assert count(state) == count(listed) == 12_424_320


def relative(a, b):
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


def test_mml_computes_the_peers_features(peer, mml_cli, tmp_path):
    state = state_of(peer)
    weights, ckpt, names = tmp_path / "peer.safetensors", tmp_path / "peer-mml.safetensors", tmp_path / "map.json"
    write_safetensors(str(weights), state)
    names.write_text(json.dumps({"backbone." + k: k for k in state if not k.endswith("num_batches_tracked")}))
    report = json.loads(mml_cli(["import", weights, "--backbone", "resnet12", "--name-map", names, "--out", ckpt,
                                 "--json"]).stdout)
    assert len(report["mapped"]) == 80 and report["unused"] == [] and report["folded_biases"] == []
    assert len(report["ignored"]) == 16  # num_batches_tracked of the 16 BatchNorms
    model = report["model"]
    # DropBlock where mml's default configuration has it: stages 3 and 4, its rate and block size
    assert list(peer["stage_drop_rate"]) == pytest.approx([0, 0, model["dropBlockRate"], model["dropBlockRate"]])
    assert list(peer["stage_drop_size"]) == [model["dropBlockSize"]] * 4

    mml = pytest.importorskip("mml", reason="the mml Python package is not importable (python/mml, libmmlc.so)")
    m = mml.load(str(ckpt), threads=1)
    try:
        feats = np.asarray(m.features(peer["x"]))
    finally:
        m.close()
    y = peer["y"]
    assert feats.shape == y.shape == (2, 640, 5, 5)
    assert np.abs(y).max() > 1.0 and y.std() > 0.1, "the test weights should give non-trivial features"
    assert relative(feats, y) <= 1e-4, f"max |mml - torch| / max |torch| = {relative(feats, y):.2e}"
    assert relative(peer["y_cl"], y) <= 1e-5  # the benchmark's channels_last layout is the same function
    # a one-detail change of the peer (slope 0.2) is far outside the tolerance
    assert relative(feats, peer["y_slope"]) > 1e-2


def naive_drop_block(x, seeds, b):
    mask = np.ones_like(x, dtype=np.float64)
    for n, c, i, j in zip(*np.nonzero(seeds)):
        mask[n, c, i:i + b, j:j + b] = 0
    kept = mask.sum()
    return x * mask * (mask.size / kept if kept > 0 else 0)


def test_peer_drop_block_is_mmls(peer):
    assert peer["db_seeds"].sum() > 3  # some blocks, overlapping or not
    ref = naive_drop_block(peer["db_x"].astype(np.float64), peer["db_seeds"], 5)
    assert np.abs(peer["db_y"] - ref).max() <= 1e-5 * np.abs(ref).max()
    assert np.abs(peer["db_y_cl"] - ref).max() <= 1e-5 * np.abs(ref).max()
    assert peer["train_differs"]
    for side in (10, 5):
        v = side - 5 + 1
        gamma = 0.1 / 25 * side * side / (v * v)
        assert float(peer[f"db_gamma_{side}"]) == pytest.approx(gamma, rel=1e-12)
        # P(unit dropped) = 1 - (1 - gamma)^(seed positions whose block covers it), averaged over the map
        cover = [min(i, v - 1) - max(0, i - 4) + 1 for i in range(side)]
        expected = np.mean([1 - (1 - gamma) ** (a * b) for a in cover for b in cover])
        draws = 400 * 64  # independent maps; the fraction is an average over them
        sd = np.sqrt(expected * (1 - expected) / draws)  # the largest it can be (units of a map all correlated)
        assert abs(float(peer[f"db_drawn_{side}"]) - expected) <= 5 * sd, (side, peer[f"db_drawn_{side}"], expected)

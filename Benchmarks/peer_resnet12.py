#!/usr/bin/env python3
"""The PyTorch ResNet-12 peer of `mml-bench backbone --kinds resnet12` (the shared peer,
../shared/peers/torch_fewshot_bench.py, has Conv-64F and Conv-4 only).

The network is mml's ResNet-12 (Sources/MMLCore/Backbones/ResNet12.swift, METHOD.md section 1) layer for layer:
four stages of widths 64-160-320-640, each

    a1 = LeakyReLU_0.1(BN1(conv1(x)))      conv1..3: 3x3, padding 1, no bias
    a2 = LeakyReLU_0.1(BN2(conv2(a1)))
    z  = BN3(conv3(a2)) + BN_s(conv_s(x))  conv_s: 1x1, no bias (the shortcut, also in stage 1)
    y  = DropBlock(MaxPool_2x2(LeakyReLU_0.1(z)))

with DropBlock (rate 0.1, block 5, training only) in stages 3 and 4, BatchNorm eps 1e-5 and momentum 0.1, and mml's
initial weights (conv N(0, 0.02), BN gamma N(1, 0.02), beta 0): 3 x 84 x 84 -> 640 x 5 x 5. Tensor names are mml's
(`block1.conv1.weight`, `block1.bn1.running_mean`, `block1.downsample.conv.weight`, ...), so a state_dict maps one
to one onto `mml import --list-names --backbone resnet12` (python/tests/test_peer_resnet12.py checks that, and
that mml computes this module's features from its weights).

DropBlock follows mml's DropBlock.swift: seeds drawn independently per (image, channel) at the (H - b + 1) x
(W - b + 1) positions where a whole block fits, with probability gamma = rate / b^2 * HW / ((H - b + 1)(W - b + 1));
each seed zeroes the b x b block whose top-left corner it is; the kept values are scaled by
(elements) / (kept elements) of the whole tensor. Here the blocks are grown from the seeds with a stride-1 max-pool.

Measured, as mml-bench measures it (Benchmarks/mml-bench/BackboneBench.swift), on random 3 x 84 x 84 inputs, as
results `backbone/resnet12_5x5/fwd_eval/bB` and `backbone/resnet12_5x5/train_backbone_only/bB` (B = batch):
  - forward in evaluation mode under torch.inference_mode at batch 80 and 100;
  - training step at batch 80: train mode (batch statistics, DropBlock), zero_grad, loss = mean(feature^2),
    backward, SGD(lr 0.01, momentum 0.9) step.
The timing (warm-up, then the median of --repeats calls, re-measured while other processes load the machine) is
the shared peer's own `bench` function, imported from it, so both peers time alike; the JSON has the shared peer's
layout ({"env": ..., "results": {"calibration_sgemm_2048": ..., "backbone": {...}}}).

Run it as Benchmarks/side_by_side.py does (its tuned configuration: tcmalloc preloaded, channels_last, 2 threads):

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 /tmp/torchpeer/bin/python \\
        Benchmarks/peer_resnet12.py --threads 2 --channels-last --json /tmp/peer-resnet12.json [--quick]

`--quick` is 1 warm-up and 3 repeats (a check, not a measurement), like the shared peer's.
"""
import argparse
import collections
import json
import os
import platform
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PEERS = os.path.join(os.path.dirname(ROOT), "shared", "peers")

NAME = "resnet12_5x5"          # the peer name mml-bench's ResNet-12 rows refer to
WIDTHS = (64, 160, 320, 640)
SLOPE = 0.1                    # LeakyReLU negative slope
DROP_RATE, DROP_SIZE = 0.1, 5  # BackboneConfiguration's defaults, as mml-bench builds the backbone
DROP_STAGES = (2, 3)           # 0-based stages with DropBlock (3 and 4)


# --------------------------------------------------------------------------- DropBlock
def drop_block_gamma(h, w, b, rate):
    """The seed probability that makes `rate` of the units fall in a block (before overlaps)."""
    return rate / (b * b) * (h * w) / ((h - b + 1) * (w - b + 1))


def drop_block(x, rate, block_size, seeds=None):
    """DropBlock of mml's DropBlock.swift on x (N, C, H, W). `seeds` (N, C, H - b + 1, W - b + 1) of 0 / 1, the
    blocks' top-left corners, are drawn here unless given (tests give them). Returns x * mask * scale."""
    n, c, h, w = x.shape
    b = min(block_size, h, w)
    vh, vw = h - b + 1, w - b + 1
    if seeds is None:
        seeds = (torch.rand(n, c, vh, vw, device=x.device) < drop_block_gamma(h, w, b, rate)).to(x.dtype)
    # a unit (i, j) is dropped when a seed lies in [i - b + 1, i] x [j - b + 1, j]: pad b - 1 zeros before (and
    # after, to get back to H x W) and take the b x b window maximum
    dropped = F.max_pool2d(F.pad(seeds, (b - 1, b - 1, b - 1, b - 1)), kernel_size=b, stride=1)
    mask = 1.0 - dropped
    kept = mask.sum()
    scale = mask.numel() / kept if kept > 0 else torch.zeros((), dtype=x.dtype)
    nhwc = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    mask = (mask * scale).contiguous(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
    return x * mask  # the mask in x's memory format, so the output keeps it


# --------------------------------------------------------------------------- the network
class Stage(nn.Module):
    """One residual stage: (N, C, H, W) -> (N, C', H / 2, W / 2)."""

    def __init__(self, cin, cout, drop_rate=0.0, drop_size=DROP_SIZE):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv3 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = nn.Sequential(collections.OrderedDict(
            conv=nn.Conv2d(cin, cout, 1, bias=False), bn=nn.BatchNorm2d(cout)))
        self.drop_rate, self.drop_size = drop_rate, drop_size

    def forward(self, x):
        a = F.leaky_relu(self.bn1(self.conv1(x)), SLOPE, inplace=True)
        a = F.leaky_relu(self.bn2(self.conv2(a)), SLOPE, inplace=True)
        z = self.bn3(self.conv3(a)) + self.downsample(x)
        y = F.max_pool2d(F.leaky_relu(z, SLOPE, inplace=True), 2)
        if self.training and self.drop_rate > 0:
            y = drop_block(y, self.drop_rate, self.drop_size)
        return y


class ResNet12(nn.Module):
    """mml's ResNet-12: (N, C_in, 84, 84) -> (N, 640, 5, 5)."""

    def __init__(self, in_channels=3, widths=WIDTHS, drop_rate=DROP_RATE, drop_size=DROP_SIZE):
        super().__init__()
        c = in_channels
        for i, w in enumerate(widths):
            setattr(self, f"block{i + 1}", Stage(c, w, drop_rate if i in DROP_STAGES else 0.0, drop_size))
            c = w
        self.depth = len(widths)

    def forward(self, x):
        for i in range(self.depth):
            x = getattr(self, f"block{i + 1}")(x)
        return x


def init_like_mml(model, seed=1):
    """mml's `.mml` initialisation (distributions, not its random stream): conv weights N(0, 0.02), BatchNorm
    gamma N(1, 0.02), beta 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + torch.randn(m.weight.shape, generator=g) * 0.02)
                m.bias.zero_()
    return model


# --------------------------------------------------------------------------- the benchmark
def load_shared_peer(peers_dir):
    """The shared peer's module (its timing and environment helpers)."""
    path = os.path.join(peers_dir, "torch_fewshot_bench.py")
    if not os.path.exists(path):
        sys.exit(f"error: no shared peer at {path} (../shared/peers/README.md); give its directory with --peers")
    sys.path.insert(0, peers_dir)
    import torch_fewshot_bench  # noqa: E402
    return torch_fewshot_bench


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="1 warm-up and 3 repeats (a check, not a measurement)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--channels-last", action="store_true",
                    help="run in torch.channels_last (NHWC) memory format (the tuned configuration; default NCHW)")
    ap.add_argument("--retry-contended", type=int, default=2,
                    help="redo a measurement up to N times if other processes used >0.15 cores during it")
    ap.add_argument("--forward-batches", default="80,100")
    ap.add_argument("--train-batches", default="80", help="mml-bench times the training step at batch 80 only")
    ap.add_argument("--peers", default=DEFAULT_PEERS, help="the shared peer's directory (for its timing function)")
    args = ap.parse_args()
    if args.quick:
        args.warmup, args.repeats = 1, 3
    peer = load_shared_peer(args.peers)
    peer.CONTENTION["retries"] = args.retry_contended

    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mf = torch.channels_last if args.channels_last else torch.contiguous_format
    env = {
        "python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "default_num_threads": default_threads, "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(), "mkldnn": torch.backends.mkldnn.is_available(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "LD_PRELOAD": os.environ.get("LD_PRELOAD"),
        "memory_format": "channels_last (NHWC)" if args.channels_last else "NCHW",
        "timing": f"shared peer's bench(): {args.warmup} warm-up, median of {args.repeats}",
    }
    out = {"env": env, "results": {}}
    res = out["results"]
    print(f"torch {env['torch']} on {env['num_threads']} threads, {env['memory_format']}, allocator "
          f"{'LD_PRELOAD=' + env['LD_PRELOAD'] if env['LD_PRELOAD'] else 'default glibc malloc'}", flush=True)
    env["others_load_at_start"] = peer._others_load()
    print(f"other processes' CPU load at start: {env['others_load_at_start']:.2f} cores", flush=True)

    a_, b_ = torch.randn(2048, 2048), torch.randn(2048, 2048)
    r = peer.bench(lambda: torch.mm(a_, b_), 2, 2 * args.repeats)
    r["gflop_per_s"] = 2 * 2048 ** 3 / 1e9 / r["median_s"]
    res["calibration_sgemm_2048"] = r
    print(f"calibration sgemm 2048^3 fp32: {peer.fmt_ms(r)} = {r['gflop_per_s']:.0f} GFLOP/s", flush=True)

    res["backbone"] = {}
    model = init_like_mml(ResNet12(), seed=1).to(memory_format=mf)
    nparams = sum(p.numel() for p in model.parameters())
    env["params"] = nparams
    forward = [int(b) for b in args.forward_batches.split(",") if b]
    train = [int(b) for b in args.train_batches.split(",") if b]
    for batch in sorted(set(forward) | set(train)):
        x = torch.randn(batch, 3, 84, 84).contiguous(memory_format=mf)
        if batch in forward:
            model.eval()
            with torch.inference_mode():
                y = model(x)
                assert y.shape == (batch, WIDTHS[-1], 5, 5), y.shape
                r = peer.bench(lambda: model(x), args.warmup, args.repeats)
            r.update(images_per_s=batch / r["median_s"], shape_in=[batch, 3, 84, 84], shape_out=list(y.shape))
            res["backbone"][f"{NAME}/fwd_eval/b{batch}"] = r
            print(f"{NAME} fwd  eval b={batch:3d}: {peer.fmt_ms(r)}  = {r['images_per_s']:6.1f} img/s", flush=True)
        if batch in train:
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

            def step():
                opt.zero_grad(set_to_none=True)
                loss = model(x).pow(2).mean()
                loss.backward()
                opt.step()

            r = peer.bench(step, args.warmup, args.repeats)
            r.update(images_per_s=batch / r["median_s"], params=nparams,
                     dropblock=f"rate {DROP_RATE}, block {DROP_SIZE}, stages 3-4")
            res["backbone"][f"{NAME}/train_backbone_only/b{batch}"] = r
            print(f"{NAME} train b={batch:3d} (fwd+bwd+SGD): {peer.fmt_ms(r)}  = {r['images_per_s']:6.1f} img/s",
                  flush=True)

    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.json)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

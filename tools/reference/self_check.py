"""self_check.py: is the PyTorch reference itself right? (float64, tiny sizes)

1. torch.autograd.gradcheck / gradgradcheck (central differences) on every generator variant,
   the U-Net, the discriminator attention and the discriminator.
2. Independent second implementations with plain loops, written from the spec's equations, of
   the learning rules (delta, vect_lr, Oja, Hebb, learned W0), the LSTM front end, the
   discriminator's LinearAttention (both branches, unfold order, zero padding), the U-Net
   LinearAttention/Attention, and the painting-steps view.
3. (--fixtures) replays every tests/fixtures file from its metadata and weights, in float64
   (must reproduce it) and in float32 (prints the deviations: the float32 tolerances).
Run: python3 tools/reference/self_check.py [--fixtures]   (a few minutes on two cores)
"""
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fpa_reference as ref  # noqa: E402

torch.set_default_dtype(torch.float64)
FAILS = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
    if not ok:
        FAILS.append(name)


def close(a, b, tol=1e-10):
    return (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


def tiny_gen_cfg(**kw):
    c = ref.make_config(**{"g.image_size": 4, "g.channels": 2, "g.steps": 3, "g.latent_dim": 5,
                           "g.hidden": 3, "g.mini_latent": 2, "g.mini_input": 3})
    for k, v in kw.items():
        c[k] = ref.to_str(v)
    return c


def boost(G):
    head = G.kv_net if G.model == "hebb" else G.kvb_net
    with torch.no_grad():
        head.weight.mul_(4)
        head.bias.mul_(4)


def gradcheck_module(name, module, inputs, fn=None, params_too=True, max_numel=None):
    """gradcheck w.r.t. the inputs and (params_too) the parameters, those of at most max_numel
    entries when given (the others are held fixed)."""
    sel = [(n, p) for n, p in module.named_parameters() if max_numel is None or p.numel() <= max_numel]
    names = [n for n, _ in sel] if params_too else []
    pvals = [p.detach().clone().requires_grad_() for _, p in sel] if params_too else []
    inputs = [x.detach().clone().requires_grad_() for x in inputs]
    fn = fn or (lambda out: out)

    def f(*args):
        xs, ps = args[:len(inputs)], args[len(inputs):]
        out = functional_call(module, dict(zip(names, ps)), tuple(xs)) if params_too else module(*xs)
        return fn(out)

    t = time.time()
    ok = torch.autograd.gradcheck(f, tuple(inputs + pvals), eps=1e-6, atol=1e-6, rtol=1e-4,
                                  raise_exception=False)
    check(f"gradcheck {name}", ok, f"({time.time() - t:.1f}s)")


# ------------------------------------------------------------------------------------ 1. gradcheck
def gradchecks():
    torch.manual_seed(0)
    variants = {
        "v2": {}, "v2 options": {"g.use_pos_enc": True, "g.val_tanh": True, "g.vect_lr": True,
                                 "g.wide_out_dim": 4},
        "v2 nosig": {"g.no_sigmoid_lr": True}, "hebb": {"g.model": "hebb"}, "oja": {"g.model": "oja"},
        "oja vect_lr": {"g.model": "oja", "g.vect_lr": True},
        "v1": {"g.model": "v1"}, "v1 w0 pos_enc": {"g.model": "v1", "g.learned_w0": True, "g.use_pos_enc": True},
        "grey": {"g.channels": 1}, "2 layers": {"g.layers": 2},
    }
    for name, kw in variants.items():
        G = ref.Generator(tiny_gen_cfg(**kw))
        boost(G)
        z = torch.randn(2, 5)
        gradcheck_module(f"generator {name} (z and all params)", G, [z], fn=lambda o: o["images"])
    # the painting-steps view too
    G = ref.Generator(tiny_gen_cfg())
    boost(G)
    gradcheck_module("generator v2 forward_with_steps (z)", _Steps(G), [torch.randn(2, 5)], params_too=False)
    # U-Net generator, tiny: dim 8 (GroupNorm 8), mults (1, 2), 8x8 image
    cfg = tiny_gen_cfg(**{"g.model": "unet", "g.image_size": 8, "g.channels": 1, "g.unet_dim": 8,
                          "g.unet_dim_mults": "1,2"})
    G = ref.Generator(cfg)
    boost(G)
    _perturb(G)
    gradcheck_module("generator unet (z)", G, [torch.randn(2, 5)], fn=lambda o: o["images"], params_too=False)
    U = ref.UNet(8, 2, (1, 2))
    _perturb(U)
    gradcheck_module("UNet (input)", U, [torch.randn(1, 2, 4, 4)], params_too=False)
    # discriminator attention (first and second order), then a whole discriminator
    A = ref.PreNorm(2, ref.LinearAttention(2))
    _perturb(A)
    gradcheck_module("D PreNorm+LinearAttention (input, params up to 64 entries)", A, [torch.randn(2, 2, 3, 3)],
                     max_numel=64)
    x = torch.randn(1, 2, 3, 3, requires_grad=True)
    ok = torch.autograd.gradgradcheck(lambda x: A(x), (x,), eps=1e-6, atol=1e-6, rtol=1e-4, raise_exception=False)
    check("gradgradcheck D PreNorm+LinearAttention (input)", ok)
    cfg = ref.make_config(**{"d.image_size": 16, "d.channels": 1, "d.fmap_max": 8, "g.image_size": 16,
                             "g.channels": 1, "d.attn_heads": 2, "d.attn_dim_head": 4,
                             "d.attn_res_layers": "16"})
    D = ref.Discriminator(cfg)
    _perturb(D)
    xs = torch.rand(1, 1, 16, 16, requires_grad=True)
    t = time.time()
    ok = torch.autograd.gradcheck(lambda x: torch.cat([o.reshape(-1) for o in D(x, calc_aux_loss=True)]),
                                  (xs,), eps=1e-6, atol=1e-6, rtol=1e-4, raise_exception=False)
    check("gradcheck Discriminator 16 (input; logits, logits32, aux)", ok, f"({time.time() - t:.1f}s)")
    # gradient penalty w.r.t. a trunk weight (second order through the whole D)
    w = D.residual_layers[0][0].branches[0][1].weight
    w0 = w.detach().clone()

    def gp_of(wv):
        p = {n: q for n, q in D.named_parameters()}
        p["residual_layers.0.0.branches.0.1.weight"] = wv
        x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(5)).requires_grad_()
        lo, l32, _ = functional_call(D, p, (x,))
        return ref.gradient_penalty(x, lo, l32)[0]

    t = time.time()
    ok = torch.autograd.gradcheck(gp_of, (w0.clone().requires_grad_(),), eps=1e-6, atol=1e-6, rtol=1e-4,
                                  raise_exception=False)
    check("gradcheck gradient penalty w.r.t. a D weight", ok, f"({time.time() - t:.1f}s)")


class _Steps(torch.nn.Module):
    def __init__(self, G):
        super().__init__()
        self.G = G

    def forward(self, z):
        u, p = self.G.forward_with_steps(z)
        return torch.cat([u.reshape(-1), p.reshape(-1)])


def _perturb(m):
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith((".g", "norm.weight")):
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif n.endswith((".b", "norm.bias")):
                p.copy_(0.3 * torch.randn_like(p))


# ------------------------------------------------------------------------- 2. loop implementations
def loop_paint(model, heads, B, C, S, T, vect_lr=False, val_tanh=False, nosig=False, W0=None):
    """The learning rules written entry by entry from the spec (no bmm, no broadcasting)."""
    r = S if vect_lr else 1
    W = [[[[0.0] * S for _ in range(S)] for _ in range(C)] for _ in range(B)]
    started = W0 is not None
    if W0 is not None:
        for b in range(B):
            for c in range(C):
                for i in range(S):
                    for j in range(S):
                        W[b][c][i][j] = W0[c, i, j].item()
    for t in range(T):
        row = heads[t]
        for b in range(B):
            for c in range(C):
                if model == "hebb":
                    k = [row[b, c * S + j].item() for j in range(S)]
                    v = [row[b, C * S + c * S + i].item() for i in range(S)]
                else:
                    k = [row[b, c * S + j].item() for j in range(S)]
                    v = [row[b, C * S + c * S + i].item() for i in range(S)]
                    lr = [row[b, 2 * C * S + c * r + q].item() for q in range(r)]
                    if not nosig:
                        lr = [1 / (1 + math.exp(-x)) for x in lr]
                    if val_tanh:
                        v = [math.tanh(x) for x in v]
                    k = _softmax(k)
                Wc = W[b][c]
                if model == "hebb":
                    for i in range(S):
                        for j in range(S):
                            Wc[i][j] += v[i] * k[j]
                elif model == "oja":
                    if started:
                        k = [k[j] - sum(Wc[i][j] * v[i] for i in range(S)) for j in range(S)]
                    k = _softmax(k)
                    for i in range(S):
                        for j in range(S):
                            Wc[i][j] += lr[i if r > 1 else 0] * v[i] * k[j]
                else:
                    if started:
                        d = [lr[i if r > 1 else 0] * (v[i] - sum(Wc[i][j] * k[j] for j in range(S))) for i in range(S)]
                    else:
                        d = v
                    for i in range(S):
                        for j in range(S):
                            Wc[i][j] += d[i] * k[j]
        started = True
    return torch.tensor(W)


def _softmax(x):
    m = max(x)
    e = [math.exp(a - m) for a in x]
    s = sum(e)
    return [a / s for a in e]


def loop_checks():
    torch.manual_seed(1)
    B, C, S, T = 2, 2, 4, 3
    cases = {
        "v2 delta": ({}, {}), "v2 vect_lr+val_tanh": ({"g.vect_lr": True, "g.val_tanh": True},
                                                       {"vect_lr": True, "val_tanh": True}),
        "v2 nosig": ({"g.no_sigmoid_lr": True}, {"nosig": True}),
        "oja": ({"g.model": "oja"}, {}), "oja vect_lr": ({"g.model": "oja", "g.vect_lr": True}, {"vect_lr": True}),
        "hebb": ({"g.model": "hebb"}, {}), "v1": ({"g.model": "v1"}, {}),
        "v1 learned W0": ({"g.model": "v1", "g.learned_w0": True}, {}),
    }
    for name, (kw, lk) in cases.items():
        G = ref.Generator(tiny_gen_cfg(**kw))
        boost(G)
        z = torch.randn(B, 5)
        with torch.no_grad():
            W, _, _ = G.paint_steps(z)
            h = G.heads(z)
        W0 = G.learned_init.detach() if G.learned_w0 else None
        Wl = loop_paint(G.model, h, B, C, S, T, W0=W0, **lk)
        check(f"loop painting {name}", close(W, Wl), f"(max |W| {W.abs().max():.3f})")

    # LSTM front end by its equations (gate order i, f, g, o; two biases; state from latent_to_init)
    G = ref.Generator(tiny_gen_cfg())
    z = torch.randn(B, 5)
    with torch.no_grad():
        hs = G.heads(z)
        H = G.H
        hc = G.latent_to_init(z)
        h, c = hc[:, :H], hc[:, H:]
        u = torch.tanh(G.input_generator(z)).view(B, G.T, G.m)
        x = G.per_time_linear_input(u)                      # (B, T, I)
        Wi, Wh = G.decoder_rnn.weight_ih_l0, G.decoder_rnn.weight_hh_l0
        bi, bh = G.decoder_rnn.bias_ih_l0, G.decoder_rnn.bias_hh_l0
        outs = []
        for t in range(G.T):
            gates = x[:, t] @ Wi.T + bi + h @ Wh.T + bh
            ig, fg, gg, og = gates.split(H, dim=1)
            c = torch.sigmoid(fg) * c + torch.sigmoid(ig) * torch.tanh(gg)
            h = torch.sigmoid(og) * torch.tanh(c)
            outs.append(G.kvb_net(h))
        check("LSTM front end by its equations", close(hs, torch.stack(outs)))

    # painting-steps view
    G = ref.Generator(tiny_gen_cfg())
    boost(G)
    with torch.no_grad():
        W, ups, parts = G.paint_steps(z)
        su, sp = G.forward_with_steps(z)
        n = W.norm()
        ok = close(sp[-1], torch.tanh(W)) and close(sum(ups), W)
        ok = ok and close(su[1], torch.tanh((parts[1] - parts[0]) * n / (parts[1] - parts[0]).norm()), 1e-9)
        check("painting-steps view (last image = tanh(W_T), updates sum to W_T)", ok)

    # discriminator LinearAttention by loops
    torch.manual_seed(2)
    dim, X, Y = 2, 3, 4
    A = ref.LinearAttention(dim)
    fm = torch.randn(1, dim, X, Y)
    with torch.no_grad():
        got = A(fm)
        want = loop_linear_attention(A, fm)
    check("D LinearAttention by loops (linear + 3x3 local branch, zero padding)", close(got, want))

    # U-Net attentions by loops
    torch.manual_seed(3)
    la, at = ref.ULinearAttention(3), ref.UAttention(3)
    fm = torch.randn(1, 3, 2, 3)
    with torch.no_grad():
        check("U-Net LinearAttention by loops", close(la(fm), loop_unet_linear(la, fm)))
        check("U-Net Attention by loops", close(at(fm), loop_unet_full(at, fm)))
        x = torch.randn(2, 5, 3, 3)
        g, b = torch.randn(1, 5, 1, 1), torch.randn(1, 5, 1, 1)
        want = F.layer_norm(x.permute(0, 2, 3, 1), (5,), eps=1e-5).permute(0, 3, 1, 2) * g + b
        check("ChanNorm = per-pixel LayerNorm over channels", close(ref.chan_norm(x, g, b, 1e-5), want))

    # losses by hand
    real = torch.tensor([[-2.0], [0.5], [-0.2]])
    fake = torch.tensor([[1.5], [0.3], [-1.4]])
    want = (0 + 1.5 + 0.8) / 3 + (0 + 0.7 + 2.4) / 3
    check("hinge loss by hand", abs(ref.hinge_loss(real, fake).item() - want) < 1e-12)
    check("pooled hinge loss by hand", abs(ref.hinge_loss_pooled(real, fake).item() - (2.3 + 3.1) / 6) < 1e-12)


def loop_linear_attention(A, fm):
    _, dim, X, Y = fm.shape
    h, d = A.heads, A.dim_head
    s = d ** -0.5
    conv = lambda w, x: torch.einsum("oc,cxy->oxy", w[:, :, 0, 0], x)
    x = fm[0]
    lq = conv(A.to_lin_q.weight, x)
    dw = A.to_lin_kv.net[0].weight                        # (dim, 1, 3, 3) depthwise
    xp = F.pad(x, (1, 1, 1, 1))
    dwo = torch.zeros(dim, X, Y)
    for c in range(dim):
        for i in range(X):
            for j in range(Y):
                dwo[c, i, j] = (xp[c, i:i + 3, j:j + 3] * dw[c, 0]).sum()
    lkv = conv(A.to_lin_kv.net[1].weight, dwo)
    lk, lv = lkv[:h * d], lkv[h * d:]
    q, kv = conv(A.to_q.weight, x), conv(A.to_kv.weight, x)
    k, v = kv[:h * d], kv[h * d:]
    n = X * Y
    lin = torch.zeros(h * d, X, Y)
    loc = torch.zeros(h * d, X, Y)
    for hh in range(h):
        sl = slice(hh * d, (hh + 1) * d)
        Q = lq[sl].reshape(d, n).T.softmax(dim=1) * s      # (n, d): softmax over features
        K = lk[sl].reshape(d, n).T.softmax(dim=0)          # softmax over positions
        V = lv[sl].reshape(d, n).T
        lin[sl] = (Q @ (K.T @ V)).T.reshape(d, X, Y)
        kp, vp = F.pad(k[sl], (1, 1, 1, 1)), F.pad(v[sl], (1, 1, 1, 1))
        for i in range(X):
            for j in range(Y):
                qv = q[sl, i, j] * s
                logits, vals = [], []
                for di in range(3):
                    for dj in range(3):
                        logits.append((qv * kp[:, i + di, j + dj]).sum())
                        vals.append(vp[:, i + di, j + dj])
                a = torch.stack(logits).softmax(dim=0)
                loc[sl, i, j] = sum(a[m] * vals[m] for m in range(9))
    out = torch.cat([F.gelu(lin), loc], dim=0)
    return (conv(A.to_out.weight, out) + A.to_out.bias[:, None, None]).unsqueeze(0)


def loop_unet_linear(A, fm):
    _, dim, X, Y = fm.shape
    h, d, n = A.heads, A.dim_head, X * Y
    qkv = torch.einsum("oc,cn->on", A.to_qkv.weight[:, :, 0, 0], fm[0].reshape(dim, n))
    out = torch.zeros(h * d, n)
    for hh in range(h):
        q = qkv[hh * d:(hh + 1) * d].softmax(dim=0) * d ** -0.5      # (d, n): over features
        k = qkv[h * d + hh * d:h * d + (hh + 1) * d].softmax(dim=1)  # over positions
        v = qkv[2 * h * d + hh * d:2 * h * d + (hh + 1) * d]
        ctx = k @ v.T                                                  # (d, e)
        out[hh * d:(hh + 1) * d] = ctx.T @ q
    y = torch.einsum("oc,cn->on", A.to_out[0].weight[:, :, 0, 0], out) + A.to_out[0].bias[:, None]
    y = y.reshape(1, dim, X, Y)
    return ref.chan_norm(y, A.to_out[1].g, A.to_out[1].b, 1e-5)


def loop_unet_full(A, fm):
    _, dim, X, Y = fm.shape
    h, d, n = A.heads, A.dim_head, X * Y
    qkv = torch.einsum("oc,cn->on", A.to_qkv.weight[:, :, 0, 0], fm[0].reshape(dim, n))
    out = torch.zeros(h * d, n)
    for hh in range(h):
        q = qkv[hh * d:(hh + 1) * d] * d ** -0.5
        k = qkv[h * d + hh * d:h * d + (hh + 1) * d]
        v = qkv[2 * h * d + hh * d:2 * h * d + (hh + 1) * d]
        a = (q.T @ k).softmax(dim=1)                                   # (i, j)
        out[hh * d:(hh + 1) * d] = (a @ v.T).T
    y = torch.einsum("oc,cn->on", A.to_out.weight[:, :, 0, 0], out) + A.to_out.bias[:, None]
    return y.reshape(1, dim, X, Y)


# ------------------------------------------------------------------- 3. replay the fixture files
def replay(path, dtype):
    """Rebuilds the model from a fixture's metadata and weights, recomputes every stored tensor
    in `dtype`; returns {kind: worst max|ours - ref| / max(1, max|ref|)} over the file."""
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    cfg = {k: v for k, v in meta.items() if k == "preset" or k.startswith(("g.", "d."))}
    cast = {k: v.to(dtype) for k, v in t.items()}
    got = {}
    if "in.z" in t:
        G = ref.Generator(cfg).to(dtype)
        G.load_state_dict({k[2:]: v for k, v in cast.items() if k.startswith("G.")}, strict=True)
        z = cast["in.z"].clone().requires_grad_()
        out = G(z)
        got["out.images"], got["out.paint"] = out["images"], out["paint"]
        if "out.fpa_paint" in t:
            got["out.fpa_paint"] = out["fpa_paint"]
        names = [n for n, _ in G.named_parameters()]
        gr = torch.autograd.grad((out["images"] * cast["in.out_weight"]).sum(), [z] + list(G.parameters()))
        got["grad.in.z"] = gr[0]
        got.update({"grad.G." + n: g for n, g in zip(names, gr[1:])})
        if "out.steps_updates" in t:
            got["out.steps_updates"], got["out.steps_images"] = G.forward_with_steps(z)
    elif "in.images" in t:
        D = ref.Discriminator(cfg).to(dtype)
        D.load_state_dict({k[2:]: v for k, v in cast.items() if k.startswith("D.")}, strict=True)
        x = cast["in.images"].clone().requires_grad_()
        lo, l32, aux = D(x, calc_aux_loss=True)
        got["out.logits"], got["out.logits32"], got["out.aux_loss"] = lo, l32, aux.reshape(1)
        names = [n for n, _ in D.named_parameters()]
        loss = (lo * cast["in.w_logits"]).sum() + (l32 * cast["in.w_logits32"]).sum() + aux
        gr = torch.autograd.grad(loss, [x] + list(D.parameters()), retain_graph=True)
        got["grad.in.images"] = gr[0]
        got.update({"grad.D." + n: g for n, g in zip(names, gr[1:])})
        gp, gin = ref.gradient_penalty(x, lo, l32)
        got["gp.value"], got["gp.input_grad"] = gp.reshape(1), gin
        gg = torch.autograd.grad(gp, list(D.parameters()), allow_unused=True, materialize_grads=True)
        got.update({"gp.grad.D." + n: g for n, g in zip(names, gg)})
    else:
        return {}
    missing = [k for k in got if k not in t]
    assert not missing, f"{path}: not in the file: {missing}"
    worst = {}
    for k, v in got.items():
        kind = "gp" if k.startswith("gp.") else "grad" if k.startswith("grad.") else "out"
        r = t[k]
        err = ((v.detach().double() - r).abs().max() / max(1.0, r.abs().max().item())).item()
        worst[kind] = max(worst.get(kind, 0.0), err)
    return worst


def replay_all(fixture_dir):
    import glob
    for path in sorted(glob.glob(os.path.join(fixture_dir, "*.safetensors"))):
        name = os.path.basename(path)[:-12]
        w64 = replay(path, torch.float64)
        if not w64:
            continue
        w32 = replay(path, torch.float32)
        ok = all(v < 1e-12 for v in w64.values())
        check(f"replay {name} float64", ok, " ".join(f"{k} {v:.1e}" for k, v in sorted(w64.items())) +
              " | float32: " + " ".join(f"{k} {v:.1e}" for k, v in sorted(w32.items())))


if __name__ == "__main__":
    t0 = time.time()
    if "--fixtures" in sys.argv:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        replay_all(os.path.join(root, "tests", "fixtures"))
        print(f"{'ALL OK' if not FAILS else 'FAILED: ' + ', '.join(FAILS)} ({time.time() - t0:.0f}s)")
        sys.exit(1 if FAILS else 0)
    loop_checks()
    gradchecks()
    print(f"{'ALL OK' if not FAILS else 'FAILED: ' + ', '.join(FAILS)} ({time.time() - t0:.0f}s)")
    sys.exit(1 if FAILS else 0)

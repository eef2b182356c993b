"""fpa_reference.py: our PyTorch reference of the Fast Weight Painters models.

Written from /work/shared/spec/FPA_REFERENCE.md (the contract), with the details the spec leaves
open settled by reading the official code (IDSIA/fpainter); see README.md beside this file.
It is what the C++ engine is tested against (make_fixtures.py writes the fixtures), not a
training program: no data loading, no optimiser, no EMA.

Every parameter carries exactly the official name, so `G.state_dict()` / `D.state_dict()` under
the prefixes `G.` / `D.` equal the names of /work/shared/spec/params-*.txt (check_names.py).

Configuration: a flat dict of strings with the keys of the C++ metadata map (fpa/config.cpp:
"g.model", "g.steps", "d.fmap_max", "d.attn_res_layers" as "32" or "16,32", booleans
"true"/"false"). `default_config()` and `preset_config(name)` mirror the C++ defaults/presets.

Models (g.model):
  v2    lstm_delta_split_v2: latent_to_init + input_generator + per_time_linear_input + LSTM +
        kvb_net, delta rule (spec section 2).
  v1    lstm_delta: z is the LSTM input at every step, optional learned start image
        (`learned_init`, g.learned_w0), delta rule.
  hebb  lstm_sum, as the official code has it: the v1 front end (latent_to_init, z at every step)
        and `kv_net` (C*2S outputs: no rates), no key softmax, W += v k^T.
  oja   lstm_oja_split_v2, as the official code has it: the v2 front end WITHOUT latent_to_init
        (the LSTM starts from zeros), softmax on k, from step 2 k -= W^T v, softmax again,
        W += (beta v) k^T with the rate applied from step 1.
  unet  lstm_delta_split_v2_unet: v2 then the U-Net refiner (`u_net`), spec section 4.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# configuration (mirror of fpa/config.cpp)

_DEFAULTS = {
    "preset": "",
    "g.model": "v2", "g.image_size": "64", "g.channels": "3", "g.steps": "64",
    "g.latent_dim": "512", "g.hidden": "1024", "g.layers": "1", "g.mini_latent": "8",
    "g.mini_input": "128", "g.input_tanh": "true", "g.use_pos_enc": "false",
    "g.val_tanh": "false", "g.no_sigmoid_lr": "false", "g.vect_lr": "false",
    "g.wide_out_dim": "0", "g.learned_w0": "false", "g.unet_dim": "0",
    "g.unet_dim_mults": "1,2,4", "g.unet_tanh": "false", "g.stop_grad_unet": "false",
    "g.frozen_base": "true",
    "d.image_size": "64", "d.channels": "3", "d.fmap_max": "512", "d.fmap_inverse_coef": "12",
    "d.output_size": "1", "d.attn_res_layers": "32", "d.attn_heads": "8", "d.attn_dim_head": "64",
}


def default_config():
    return dict(_DEFAULTS)


def preset_config(name):
    c = default_config()
    c["preset"] = name
    base, unet = (name[:-5], True) if name.endswith("+unet") else (name, False)
    if base in ("paper-rgb64-T64", "paper-rgb64-T16"):
        c["g.steps"] = "64" if base == "paper-rgb64-T64" else "16"
    elif base == "grey32-T32":
        c.update({"g.image_size": "32", "d.image_size": "32", "g.channels": "1", "d.channels": "1",
                  "g.steps": "32", "g.latent_dim": "256", "g.hidden": "512"})
    else:
        raise ValueError(f"unknown preset {name!r}")
    if unet:
        c["g.model"] = "unet"
    return c


def make_config(**overrides):
    """default_config() with overrides given as python values: make_config(g_steps=4, ...)
    (underscore after the g/d prefix) or a dict of exact keys via make_config(**{"g.steps": 4})."""
    c = default_config()
    for k, v in overrides.items():
        key = k if k in c else k.replace("_", ".", 1)
        if key not in c:
            raise KeyError(k)
        c[key] = to_str(v)
    return c


def to_str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(str(int(x)) for x in v)
    return str(v)


def cint(c, k):
    return int(c[k])


def cbool(c, k):
    v = c[k]
    if v in ("1", "true"):
        return True
    if v in ("0", "false"):
        return False
    raise ValueError(f"{k}: expects true or false, got {v!r}")


def clist(c, k):
    return [int(x) for x in c[k].split(",") if x != ""]


# ----------------------------------------------------------------------------------------------
# generators (spec sections 2-4)

class Generator(nn.Module):
    """All FPA generators. Attribute names are the official ones (they become state-dict keys)."""

    def __init__(self, cfg):
        super().__init__()
        self.model = cfg["g.model"]
        assert self.model in ("v2", "v1", "hebb", "oja", "unet"), self.model
        S, C, T = cint(cfg, "g.image_size"), cint(cfg, "g.channels"), cint(cfg, "g.steps")
        L, H, layers = cint(cfg, "g.latent_dim"), cint(cfg, "g.hidden"), cint(cfg, "g.layers")
        m, I = cint(cfg, "g.mini_latent"), cint(cfg, "g.mini_input")
        self.S, self.C, self.T, self.L, self.H, self.layers, self.m, self.I = S, C, T, L, H, layers, m, I
        self.input_tanh = cbool(cfg, "g.input_tanh")
        self.val_tanh = cbool(cfg, "g.val_tanh")
        self.no_sigmoid_lr = cbool(cfg, "g.no_sigmoid_lr")
        self.vect_lr = cbool(cfg, "g.vect_lr")
        self.wide_out_dim = cint(cfg, "g.wide_out_dim")
        self.use_pos_enc = cbool(cfg, "g.use_pos_enc")
        self.learned_w0 = cbool(cfg, "g.learned_w0")
        self.unet_tanh = cbool(cfg, "g.unet_tanh")
        self.stop_grad_unet = cbool(cfg, "g.stop_grad_unet")
        assert not self.learned_w0 or self.model == "v1", "g.learned_w0 applies to v1 only"
        v2_front = self.model in ("v2", "oja", "unet")
        self.v2_front = v2_front
        # official: the v2/unet models use latent_to_init (preset flag), oja has none, v1/hebb always
        self.has_init = self.model != "oja"
        self.use_softmax = self.model != "hebb"  # the official lstm_sum never gets use_softmax
        self.lr_dim = S if self.vect_lr else 1

        # registration order = the official order (decoder_time_enc first)
        if self.use_pos_enc:
            self.decoder_time_enc = nn.Parameter(torch.randn(T, I if v2_front else L))
        if self.learned_w0:
            self.learned_init = nn.Parameter(torch.randn(C, S, S))
        if self.has_init:
            self.latent_to_init = nn.Linear(L, 2 * H * layers)
        if v2_front:
            self.input_generator = nn.Linear(L, m * T)
            self.per_time_linear_input = nn.Linear(m, I)
        self.decoder_rnn = nn.LSTM(I if v2_front else L, H, layers)
        head_in = H
        if self.wide_out_dim > 0:
            assert self.model != "unet", "the official U-Net generator has no wide_out_dim"
            self.wide_net = nn.Sequential(nn.Linear(H, self.wide_out_dim), nn.ReLU())
            head_in = self.wide_out_dim
        if self.model == "hebb":
            self.kv_net = nn.Linear(head_in, C * 2 * S)
        else:
            self.kvb_net = nn.Linear(head_in, C * (2 * S + self.lr_dim))
        if self.model == "unet":
            dim = cint(cfg, "g.unet_dim") or S
            self.u_net = UNet(dim, C, tuple(clist(cfg, "g.unet_dim_mults")))
        self.reset_parameters()

    def reset_parameters(self):
        """The official initialisation (spec section 2; parity of statistics only)."""
        H, S, C = self.H, self.S, self.C
        b = 1.0 / math.sqrt(H)
        for w in self.decoder_rnn.parameters():
            nn.init.uniform_(w, -b, b)
        head = self.kv_net if self.model == "hebb" else self.kvb_net
        if self.model != "hebb":  # lstm_sum keeps the default Linear init
            b = 1.0 / math.sqrt(C * (2 * S + 1))
            for w in head.parameters():
                nn.init.uniform_(w, -b, b)
        if self.v2_front:
            nn.init.kaiming_normal_(self.per_time_linear_input.weight, a=0, mode="fan_in",
                                    nonlinearity="leaky_relu")
        if self.model == "v1":
            nn.init.kaiming_normal_(self.latent_to_init.weight, a=0, mode="fan_in",
                                    nonlinearity="leaky_relu")

    # -- front end: z (B, L) -> per-step head outputs (T, B, out)
    def heads(self, z):
        B = z.shape[0]
        hc = None
        if self.has_init:
            hcat = self.latent_to_init(z)                       # (B, 2*layers*H)
            h, c = hcat.split(self.layers * self.H, dim=-1)
            h = h.reshape(B, self.layers, self.H).transpose(0, 1).contiguous()
            c = c.reshape(B, self.layers, self.H).transpose(0, 1).contiguous()
            hc = (h, c)
        if self.v2_front:
            u = self.input_generator(z)                         # (B, m*T)
            if self.input_tanh:
                u = torch.tanh(u)
            u = u.view(B, self.T, self.m)
            x = self.per_time_linear_input(u).transpose(0, 1)  # (T, B, I)
        else:
            x = z.unsqueeze(0).expand(self.T, -1, -1)           # (T, B, L)
        if self.use_pos_enc:
            x = x + self.decoder_time_enc.unsqueeze(1)
        y, _ = self.decoder_rnn(x, hc) if hc is not None else self.decoder_rnn(x)  # (T, B, H)
        if self.wide_out_dim > 0:
            y = self.wide_net(y)
        return self.kv_net(y) if self.model == "hebb" else self.kvb_net(y)

    def paint_steps(self, z):
        """Runs the learning rule. Returns (W_T (B, C, S, S) pre-tanh, list of the T updates
        x_t = W_t - W_{t-1} as computed, list of the T partial paintings W_t)."""
        B, C, S = z.shape[0], self.C, self.S
        N = B * C
        out = self.heads(z)                                      # (T, B, C*(2S + r))
        W = None
        if self.learned_w0:
            W = self.learned_init.unsqueeze(0).expand(B, C, S, S).reshape(N, S, S)
        updates, partials = [], []
        for t in range(self.T):
            if self.model == "hebb":
                k, v = out[t].split(C * S, dim=-1)
                beta = None
            else:
                k, v, beta = out[t].split((C * S, C * S, C * self.lr_dim), dim=-1)
                beta = beta.reshape(N, self.lr_dim)
                if not self.no_sigmoid_lr:
                    beta = torch.sigmoid(beta)
            k = k.reshape(N, S)
            v = v.reshape(N, S)
            if self.val_tanh and self.model != "hebb":
                v = torch.tanh(v)
            if self.use_softmax:
                k = torch.softmax(k, dim=-1)
            if self.model == "oja":
                if W is not None:
                    k = k - torch.bmm(W.transpose(1, 2), v.unsqueeze(2)).squeeze(2)
                k = torch.softmax(k, dim=-1)
                v = beta * v
            elif self.model != "hebb" and W is not None:        # delta rule
                v = beta * (v - torch.bmm(W, k.unsqueeze(2)).squeeze(2))
            x = torch.bmm(v.unsqueeze(2), k.unsqueeze(1))        # (N, S, S): row = value index
            W = x if W is None else W + x
            updates.append(x.view(B, C, S, S))
            partials.append(W.view(B, C, S, S))
        return W.view(B, C, S, S), updates, partials

    def forward(self, z):
        """Returns dict: images (tanh, (B, C, S, S)), paint (pre-tanh: W_T, or the U-Net output
        for model unet), fpa_paint (W_T)."""
        W, _, _ = self.paint_steps(z)
        r = {"fpa_paint": W}
        if self.model == "unet":
            u = torch.tanh(W) if self.unet_tanh else W
            if self.stop_grad_unet:
                u = u.detach()
            p = self.u_net(u)
        else:
            p = W
        r["paint"] = p
        r["images"] = torch.tanh(p)
        return r

    def forward_with_steps(self, z):
        """The painting-steps view (spec section 3), before clamping: (updates, partials), each
        (T, B, C, S, S): tanh(x * n / ||x||) with n = ||W_T|| (Frobenius over the whole batch
        tensor), x the step's update resp. the partial painting W_t."""
        W, ups, parts = self.paint_steps(z)
        n = W.norm()
        f = lambda x: torch.tanh(x / x.norm() * n)
        return torch.stack([f(x) for x in ups]), torch.stack([f(x) for x in parts])


# ----------------------------------------------------------------------------------------------
# U-Net refiner (spec section 4)

class ULayerNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x):
        return chan_norm(x, self.g, self.b, self.eps)


def chan_norm(x, g, b, eps):
    """Per-pixel normalisation over channels, biased variance."""
    mean = x.mean(dim=1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * g + b


class UPreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = ULayerNorm(dim)

    def forward(self, x):
        return self.fn(self.norm(x))


class Residual(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


class UBlock(nn.Module):
    def __init__(self, a, b, groups=8):
        super().__init__()
        self.proj = nn.Conv2d(a, b, 3, padding=1)
        self.norm = nn.GroupNorm(groups, b)
        self.groups = groups

    def forward(self, x):
        return F.silu(self.norm(self.proj(x)))


class UResnetBlock(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.block1 = UBlock(a, b)
        self.block2 = UBlock(b, b)
        self.res_conv = nn.Conv2d(a, b, 1) if a != b else nn.Identity()

    def forward(self, x):
        return self.block2(self.block1(x)) + self.res_conv(x)


def _heads(t, h):
    """(B, h*c, X, Y) -> (B, h, c, X*Y)"""
    B, hc, X, Y = t.shape
    return t.reshape(B, h, hc // h, X * Y)


class ULinearAttention(nn.Module):
    def __init__(self, dim, heads=4, dim_head=32):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        hidden = heads * dim_head
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), ULayerNorm(dim))

    def forward(self, x):
        B, _, X, Y = x.shape
        q, k, v = (_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=1))  # (B, h, d, n)
        q = q.softmax(dim=-2) * self.dim_head ** -0.5   # over the head's features
        k = k.softmax(dim=-1)                            # over positions
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q)
        return self.to_out(out.reshape(B, -1, X, Y))


class UAttention(nn.Module):
    def __init__(self, dim, heads=4, dim_head=32):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        hidden = heads * dim_head
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        B, _, X, Y = x.shape
        q, k, v = (_heads(t, self.heads) for t in self.to_qkv(x).chunk(3, dim=1))  # (B, h, d, n)
        q = q * self.dim_head ** -0.5
        sim = torch.einsum("bhdi,bhdj->bhij", q, k)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)
        out = torch.einsum("bhij,bhdj->bhid", attn, v)     # (B, h, n, d)
        return self.to_out(out.permute(0, 1, 3, 2).reshape(B, -1, X, Y))


class UNet(nn.Module):
    def __init__(self, dim, channels, dim_mults=(1, 2, 4)):
        super().__init__()
        self.init_conv = nn.Conv2d(channels, dim, 7, padding=3)
        dims = [dim] + [dim * mm for mm in dim_mults]
        in_out = list(zip(dims[:-1], dims[1:]))
        n = len(in_out)
        self.downs = nn.ModuleList()
        self.ups = nn.ModuleList()  # registered here: the official state-dict order
        for i, (a, b) in enumerate(in_out):
            self.downs.append(nn.ModuleList([
                UResnetBlock(a, b), UResnetBlock(b, b),
                Residual(UPreNorm(b, ULinearAttention(b))),
                nn.Conv2d(b, b, 4, 2, 1) if i < n - 1 else nn.Identity()]))
        mid = dims[-1]
        self.mid_block1 = UResnetBlock(mid, mid)
        self.mid_attn = Residual(UPreNorm(mid, UAttention(mid)))
        self.mid_block2 = UResnetBlock(mid, mid)
        for i, (a, b) in enumerate(reversed(in_out)):
            self.ups.append(nn.ModuleList([
                UResnetBlock(2 * b, a), UResnetBlock(a, a),
                Residual(UPreNorm(a, ULinearAttention(a))),
                nn.ConvTranspose2d(a, a, 4, 2, 1) if i < n - 1 else nn.Identity()]))
        self.final_res_block = UResnetBlock(2 * dim, dim)
        self.final_conv = nn.Conv2d(dim, channels, 1)

    def forward(self, x):
        x = self.init_conv(x)
        r = x
        skips = []
        for b1, b2, attn, down in self.downs:
            x = attn(b2(b1(x)))
            skips.append(x)
            x = down(x)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x)))
        for b1, b2, attn, up in self.ups:
            x = torch.cat((x, skips.pop()), dim=1)
            x = up(attn(b2(b1(x))))
        x = torch.cat((x, r), dim=1)
        return self.final_conv(self.final_res_block(x))


# ----------------------------------------------------------------------------------------------
# discriminator (spec section 5)

class ChanNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x):
        return chan_norm(x, self.g, self.b, self.eps)


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = ChanNorm(dim)

    def forward(self, x):
        return self.fn(self.norm(x))


class SumBranches(nn.Module):
    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        out = None
        for b in self.branches:
            y = b(x)
            out = y if out is None else out + y
        return out


class DepthWiseConv2d(nn.Module):
    def __init__(self, dim_in, dim_out, kernel_size, padding=0, bias=True):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(dim_in, dim_in, kernel_size, padding=padding, groups=dim_in, bias=bias),
            nn.Conv2d(dim_in, dim_out, 1, bias=bias))

    def forward(self, x):
        return self.net(x)


class LinearAttention(nn.Module):
    """Discriminator attention: linear branch + 3x3 local branch, concatenated."""

    def __init__(self, dim, dim_head=64, heads=8, kernel_size=3):
        super().__init__()
        self.heads, self.dim_head, self.kernel_size = heads, dim_head, kernel_size
        inner = heads * dim_head
        self.to_lin_q = nn.Conv2d(dim, inner, 1, bias=False)
        self.to_lin_kv = DepthWiseConv2d(dim, inner * 2, 3, padding=1, bias=False)
        self.to_q = nn.Conv2d(dim, inner, 1, bias=False)
        self.to_kv = nn.Conv2d(dim, inner * 2, 1, bias=False)
        self.to_out = nn.Conv2d(inner * 2, dim, 1)

    def forward(self, fmap):
        B, _, X, Y = fmap.shape
        h, d = self.heads, self.dim_head
        scale = d ** -0.5

        def bhnd(t):  # (B, h*d, X, Y) -> (B*h, X*Y, d)
            return t.reshape(B * h, d, X * Y).transpose(1, 2)

        def back(t):  # (B*h, X*Y, d) -> (B, h*d, X, Y)
            return t.transpose(1, 2).reshape(B, h * d, X, Y)

        # linear attention
        lq = self.to_lin_q(fmap)
        lk, lv = self.to_lin_kv(fmap).chunk(2, dim=1)
        lq, lk, lv = bhnd(lq), bhnd(lk), bhnd(lv)
        lq = lq.softmax(dim=-1) * scale
        lk = lk.softmax(dim=-2)
        context = torch.einsum("bnd,bne->bde", lk, lv)
        lin_out = back(torch.einsum("bnd,bde->bne", lq, context))

        # local 3x3 attention (zero-padded neighbours take part with k = v = 0)
        q = self.to_q(fmap)
        k, v = self.to_kv(fmap).chunk(2, dim=1)
        ks = self.kernel_size
        k = F.unfold(k.reshape(B * h, d, X, Y), kernel_size=ks, padding=ks // 2)  # (B*h, d*9, n)
        v = F.unfold(v.reshape(B * h, d, X, Y), kernel_size=ks, padding=ks // 2)
        k = k.reshape(B * h, d, ks * ks, X * Y).permute(0, 3, 2, 1)  # (B*h, n, 9, d)
        v = v.reshape(B * h, d, ks * ks, X * Y).permute(0, 3, 2, 1)
        q = bhnd(q) * scale                                            # (B*h, n, d)
        sim = torch.einsum("bid,bijd->bij", q, k)
        sim = sim - sim.amax(dim=-1, keepdim=True).detach()
        attn = sim.softmax(dim=-1)
        full_out = back(torch.einsum("bij,bijd->bid", attn, v))

        out = torch.cat((F.gelu(lin_out), full_out), dim=1)
        return self.to_out(out)


def _down_branches(c_in, c_out):
    return SumBranches([
        nn.Sequential(nn.Identity(), nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
                      nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.1)),
        nn.Sequential(nn.Identity(), nn.AvgPool2d(2), nn.Conv2d(c_in, c_out, 1), nn.LeakyReLU(0.1)),
    ])


class SimpleDecoder(nn.Module):
    def __init__(self, chan_in, chan_out, num_upsamples=4):
        super().__init__()
        self.layers = nn.ModuleList()
        chans = chan_in
        for i in range(num_upsamples):
            out = chans if i < num_upsamples - 1 else chan_out * 2
            self.layers.append(nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(chans, out, 3, padding=1),
                                             nn.GLU(dim=1)))
            chans //= 2

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Discriminator(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        S, C = cint(cfg, "d.image_size"), cint(cfg, "d.channels")
        fmap_max, coef = cint(cfg, "d.fmap_max"), cint(cfg, "d.fmap_inverse_coef")
        self.output_size = cint(cfg, "d.output_size")
        attn_res = clist(cfg, "d.attn_res_layers")
        # every LinearAttention: heads x dim_head, 8 x 64 in the official code (fixed there);
        # smaller only for cheap tests and CPU presets
        cfg = dict(_DEFAULTS, **cfg)
        ah, ad = cint(cfg, "d.attn_heads"), cint(cfg, "d.attn_dim_head")
        attn = lambda dim: LinearAttention(dim, dim_head=ad, heads=ah)
        res = int(math.log2(S))
        assert 2 ** res == S and 16 <= S <= 256, S
        assert self.output_size in (1, 5)
        resolutions = list(range(min(8, res), 2, -1))
        feats = [min(2 ** (coef - r), fmap_max) for r in resolutions]
        feats[0] = C
        self.residual_layers = nn.ModuleList()
        for r, c_in, c_out in zip(resolutions, feats[:-1], feats[1:]):
            a = PreNorm(c_in, attn(c_in)) if 2 ** r in attn_res else None
            self.residual_layers.append(nn.ModuleList([_down_branches(c_in, c_out), a]))
        last = feats[-1]
        if self.output_size == 5:
            self.to_logits = nn.Sequential(nn.Conv2d(last, last, 1), nn.LeakyReLU(0.1), nn.Conv2d(last, 1, 4))
        else:
            self.to_logits = nn.Sequential(nn.Identity(), nn.Conv2d(last, last, 3, stride=2, padding=1),
                                           nn.LeakyReLU(0.1), nn.Conv2d(last, 1, 4))
        self.to_shape_disc_out = nn.Sequential(
            nn.Conv2d(C, 64, 3, padding=1),
            Residual(PreNorm(64, attn(64))),
            _down_branches(64, 32),
            Residual(PreNorm(32, attn(32))),
            nn.AdaptiveAvgPool2d((4, 4)),
            nn.Conv2d(32, 1, 4))
        self.decoder1 = SimpleDecoder(last, C)
        self.reset_parameters()

    def reset_parameters(self):
        for mod in self.modules():
            if type(mod) in (nn.Conv2d, nn.Linear):
                nn.init.kaiming_normal_(mod.weight, a=0, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x, calc_aux_loss=False):
        """x (B, C, S, S) -> logits (B, 1) [(B, 25) for output size 5], logits32 (B, 1, 1, 1),
        aux MSE loss (scalar) or None."""
        img = x
        for net, attn in self.residual_layers:
            if attn is not None:
                x = attn(x) + x
            x = net(x)
        logits = self.to_logits(x).flatten(1)
        logits32 = self.to_shape_disc_out(F.interpolate(img, size=(32, 32), mode="nearest"))
        if not calc_aux_loss:
            return logits, logits32, None
        recon = self.decoder1(x)                                  # (B, C, 128, 128)
        target = F.interpolate(img, size=recon.shape[2:], mode="nearest")
        return logits, logits32, F.mse_loss(recon, target)


# ----------------------------------------------------------------------------------------------
# losses (spec section 6)

def hinge_loss(real, fake):
    """mean(relu(1 + real) + relu(1 - fake)) (same shapes: = mean + mean)."""
    return (F.relu(1 + real) + F.relu(1 - fake)).mean()


def hinge_loss_pooled(real, fake):
    """The U-Net models' variant: (sum relu(1 + real) + sum relu(1 - fake)) / (N_real + N_fake),
    N = the batch size (shape[0]) as in the official code, not the element count."""
    return (F.relu(1 + real).sum() + F.relu(1 - fake).sum()) / (real.shape[0] + fake.shape[0])


def gen_loss(fake):
    return fake.mean()


def gradient_penalty(images, logits, logits32, weight=10.0):
    """images must require grad and be the input the logits came from. Returns (gp, g)."""
    g = torch.autograd.grad(outputs=[logits, logits32], inputs=images,
                            grad_outputs=[torch.ones_like(logits), torch.ones_like(logits32)],
                            create_graph=True, retain_graph=True)[0]
    norms = g.reshape(g.shape[0], -1).norm(2, dim=1)
    return weight * ((norms - 1) ** 2).mean(), g


def num_params(module):
    return sum(p.numel() for p in module.parameters())

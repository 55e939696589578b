#!/usr/bin/env python3
"""PyTorch peer of `npm run bench`: the same four steps as bench/lib/tfjs-engine.mjs, in PyTorch.

The models follow the benchmark workload's specification (/work/shared/bench: a class-conditional
U-Net with channels 32/64/128, attention at 16x16 and in the mid block, 6,161,473 parameters,
5.07 GFLOP per 64x64x1 image; and a ResNet50 with a 1-channel stem and an 8-class head). PyTorch
layout is NCHW, ours NHWC; the arithmetic is the same.

Run by bench/run.mjs, one step per process (so peak RSS is per step):
    python3 bench/torch_peer.py --step unet-train --batch 16 --steps 5 --threads 2
Prints one line "BENCH_RESULT <json>".
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

UNET = dict(size=64, in_ch=1, channels=(32, 64, 128), layers=2, attn_levels=(2,), heads=4, groups=8,
            t_dim=128, temb_dim=512, ctx_dim=128, classes=8)

# Attention matmul FLOPs (QK^T and AV) counted while --count-flops runs a forward pass.
ATTN_FLOPS = [0]


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        g, td = UNET["groups"], UNET["temb_dim"]
        self.norm1, self.conv1 = nn.GroupNorm(g, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(td, cout)
        self.norm2, self.conv2 = nn.GroupNorm(g, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb_act):
        h = self.conv1(F.silu(self.norm1(x))) + self.temb(temb_act)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class MultiHeadAttention(nn.Module):
    def __init__(self, dim, ctx_dim):
        super().__init__()
        self.h = UNET["heads"]
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(ctx_dim, dim, bias=False)
        self.v = nn.Linear(ctx_dim, dim, bias=False)
        self.o = nn.Linear(dim, dim)

    def forward(self, x, ctx):
        b, n, d = x.shape
        m = ctx.shape[1]
        split = lambda t, length: t.reshape(b, length, self.h, d // self.h).transpose(1, 2)
        q, k, v = split(self.q(x), n), split(self.k(ctx), m), split(self.v(ctx), m)
        w = torch.softmax((q * (d // self.h) ** -0.5) @ k.transpose(-1, -2), dim=-1)
        ATTN_FLOPS[0] += 4 * b * n * m * d
        return self.o((w @ v).transpose(1, 2).reshape(b, n, d))


class SpatialTransformer(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.norm = nn.GroupNorm(UNET["groups"], ch)
        self.proj_in, self.proj_out = nn.Linear(ch, ch), nn.Linear(ch, ch)
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(ch), nn.LayerNorm(ch), nn.LayerNorm(ch)
        self.self_attn = MultiHeadAttention(ch, ch)
        self.cross_attn = MultiHeadAttention(ch, UNET["ctx_dim"])
        self.ff = nn.Sequential(nn.Linear(ch, 4 * ch), nn.SiLU(), nn.Linear(4 * ch, ch))

    def forward(self, x, ctx):
        b, c, hh, ww = x.shape
        t = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))
        n1 = self.ln1(t)
        t = t + self.self_attn(n1, n1)
        t = t + self.cross_attn(self.ln2(t), ctx)
        t = t + self.ff(self.ln3(t))
        return x + self.proj_out(t).transpose(1, 2).reshape(b, c, hh, ww)


def sinusoidal(t, dim):
    half = dim // 2
    f = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / half))
    a = t.float()[:, None] * f[None, :]
    return torch.cat([a.cos(), a.sin()], dim=1)


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        ch, L, attn = UNET["channels"], UNET["layers"], set(UNET["attn_levels"])
        self.time = nn.Sequential(nn.Linear(UNET["t_dim"], UNET["temb_dim"]), nn.SiLU(),
                                  nn.Linear(UNET["temb_dim"], UNET["temb_dim"]))
        self.label = nn.Embedding(UNET["classes"], UNET["ctx_dim"])
        self.conv_in = nn.Conv2d(UNET["in_ch"], ch[0], 3, padding=1)
        self.down = nn.ModuleList()  # (resblock, transformer or None) pairs and downsampling convs
        widths, cin = [ch[0]], ch[0]
        for lvl, c in enumerate(ch):
            for _ in range(L):
                self.down.append(nn.ModuleList([ResBlock(cin, c), SpatialTransformer(c) if lvl in attn else nn.Identity()]))
                cin = c
                widths.append(c)
            if lvl < len(ch) - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                widths.append(c)
        self.mid = nn.ModuleList([ResBlock(cin, cin), SpatialTransformer(cin), ResBlock(cin, cin)])
        self.up = nn.ModuleList()
        for lvl in reversed(range(len(ch))):
            c = ch[lvl]
            for _ in range(L + 1):
                self.up.append(nn.ModuleList([ResBlock(cin + widths.pop(), c), SpatialTransformer(c) if lvl in attn else nn.Identity()]))
                cin = c
            if lvl > 0:
                self.up.append(nn.Conv2d(c, c, 3, padding=1))
        self.norm_out = nn.GroupNorm(UNET["groups"], ch[0])
        self.conv_out = nn.Conv2d(ch[0], UNET["in_ch"], 3, padding=1)

    @staticmethod
    def _apply(block, h, temb_act, ctx):
        res, tr = block
        h = res(h, temb_act)
        return tr(h, ctx) if isinstance(tr, SpatialTransformer) else h

    def forward(self, x, t, y):
        """Returns the noise prediction and the pooled output of the down path [B, 128]."""
        temb_act = F.silu(self.time(sinusoidal(t, UNET["t_dim"])))
        ctx = self.label(y)[:, None, :]
        h = self.conv_in(x)
        skips = [h]
        for m in self.down:
            h = m(h) if isinstance(m, nn.Conv2d) else self._apply(m, h, temb_act, ctx)
            skips.append(h)
        pooled = h.mean(dim=(2, 3))
        h = self.mid[2](self.mid[1](self.mid[0](h, temb_act), ctx), temb_act)
        for m in self.up:
            if isinstance(m, nn.Conv2d):
                h = m(F.interpolate(h, scale_factor=2.0, mode="nearest"))
            else:
                h = self._apply(m, torch.cat([h, skips.pop()], dim=1), temb_act, ctx)
        return self.conv_out(F.silu(self.norm_out(h))), pooled


class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        cout = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet50(nn.Module):
    """ResNet50 v1.5 (stride on the 3x3) with a 1-channel stem and an 8-class fc."""

    def __init__(self, in_ch=1, classes=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_ch, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        blocks, cin = [], 64
        for width, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for j in range(n):
                blocks.append(Bottleneck(cin, width, stride if j == 0 else 1))
                cin = 4 * width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, classes)

    def features(self, x):
        return self.blocks(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x):
        return self.fc(self.features(x))


def count_flops(model, *inputs):
    """2 x multiply-adds of every Conv2d, Linear and attention matmul in one forward."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            total[0] += 2 * out.numel() * mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        else:
            total[0] += 2 * out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    ATTN_FLOPS[0] = 0
    with torch.no_grad():
        model(*inputs)
    for h in handles:
        h.remove()
    return total[0] + ATTN_FLOPS[0]


def ddpm_alphas_cumprod(steps=1000):
    betas = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float()


def build(step, b, gen):
    x = torch.rand(b, 1, 64, 64, generator=gen) * 2 - 1
    y = torch.arange(b) % UNET["classes"]
    if step == "expert-train":
        expert = ResNet50().train()
        opt = torch.optim.Adam(expert.parameters(), lr=1e-4)
        images = (x + 1) / 2

        def run():
            loss = F.cross_entropy(expert(images), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return run, {"params": sum(p.numel() for p in expert.parameters())}
    model = UNet()
    info = {"params": sum(p.numel() for p in model.parameters()),
            "flopsPerImage": count_flops(model, x[:1], torch.zeros(1, dtype=torch.long), y[:1])}
    if step == "unet-forward":
        model.eval()
        t = torch.randint(0, 1000, (b,), generator=gen)

        def run():
            with torch.no_grad():
                model(x, t, y)

        return run, info
    model.train()
    acp = ddpm_alphas_cumprod()
    params = list(model.parameters())
    expert = proj = None
    if step == "aligned-train":
        expert = ResNet50().eval()
        for p in expert.parameters():
            p.requires_grad_(False)
        proj = nn.Linear(2048, UNET["channels"][-1])
        params += list(proj.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)

    def run():
        t = torch.randint(0, 1000, (b,), generator=gen)
        noise = torch.randn(x.shape, generator=gen)
        a = acp[t][:, None, None, None]
        xt = a.sqrt() * x + (1 - a).sqrt() * noise
        eps, pooled = model(xt, t, y)
        loss = F.mse_loss(eps, noise)
        if expert is not None:
            with torch.no_grad():
                e = expert.features(xt)
            loss = loss + (1 - F.cosine_similarity(pooled, proj(e), dim=1, eps=1e-8)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return run, info


def loaded_blas():
    """Which BLAS library the process mapped (Debian switches libblas.so.3 by alternatives)."""
    try:
        torch.mm(torch.ones(2, 2), torch.ones(2, 2))
        maps = open("/proc/self/maps").read()
    except OSError:
        return "unknown"
    for name in ("openblas", "mkl", "blis", "atlas"):
        if f"lib{name}" in maps or f"/{name}" in maps:
            return name.upper() if name != "openblas" else "OpenBLAS"
    return "reference (netlib) - slow; install libopenblas0" if "libblas.so" in maps else "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--step", required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--warmup-seconds", type=float, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: the step under torch.autocast('cpu', dtype=torch.bfloat16)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    res = {"engine": "torch", "backend": f"PyTorch {torch.__version__}", "threads": torch.get_num_threads(),
           "step": a.step, "batch": a.batch, "notes": [],
           "backendDetail": f"{'oneDNN' if torch.backends.mkldnn.is_available() else 'ATen'} convolutions, BLAS {loaded_blas()}"}
    try:
        if a.step == "sgemm":
            n = 2048
            m1, m2 = torch.rand(n, n), torch.rand(n, n)
            times = []
            for i in range(2 + a.steps):
                t0 = time.perf_counter()
                torch.mm(m1, m2)
                if i >= 2:
                    times.append(time.perf_counter() - t0)
            res["times"] = times
            res["gflops"] = 2 * n ** 3 / min(times) / 1e9
            res["impl"] = "torch.mm"
            try:
                import numpy as np
                an, bn = m1.numpy(), m2.numpy()
                nt = []
                for i in range(2 + a.steps):
                    t0 = time.perf_counter()
                    an @ bn
                    if i >= 2:
                        nt.append(time.perf_counter() - t0)
                res["numpyGflops"] = 2 * n ** 3 / min(nt) / 1e9
            except Exception as err:  # numpy is optional
                res["notes"].append(f"numpy sgemm skipped: {err}")
        else:
            t0 = time.perf_counter()
            if a.precision == "bf16":
                # This torch's CPU group_norm rejects a bf16 input with fp32 affine parameters
                # under autocast; norms run in fp32 in mixed precision anyway (as in ours).
                for cls in (nn.GroupNorm, nn.LayerNorm):
                    def fp32_norm(self, x, _forward=cls.forward):
                        return _forward(self, x.float())
                    cls.forward = fp32_norm
            run, info = build(a.step, a.batch, gen)
            res.update(info)
            if a.precision == "bf16":
                # PyTorch's own mixed precision: autocast runs convolutions and matmuls in bf16
                # (fp32 weights and optimizer state); the backward follows the forward's dtypes.
                fp32_run = run

                def run():
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        fp32_run()

                res["precision"] = "bf16"
                res["backendDetail"] += ", torch.autocast bf16"
            res["setupSeconds"] = time.perf_counter() - t0
            # At least --warmup steps and at least --warmup-seconds of them (as for ours).
            w0, i = time.perf_counter(), 0
            while i < a.warmup or time.perf_counter() - w0 < a.warmup_seconds:
                tw = time.perf_counter()
                run()
                i += 1
                print(f"  [torch {a.step}] warm-up {i}: {time.perf_counter() - tw:.2f} s", file=sys.stderr)
            times, cpu = [], []
            for i in range(a.steps):
                c0 = time.process_time()
                ts = time.perf_counter()
                run()
                times.append(time.perf_counter() - ts)
                cpu.append(time.process_time() - c0)
                print(f"  [torch {a.step}] step {i + 1}/{a.steps}: {times[-1]:.2f} s (CPU {cpu[-1]:.2f} s)", file=sys.stderr)
            res["times"] = times
            res["cpuTimes"] = cpu
            res["cpuSecondsPerStep"] = sorted(cpu)[len(cpu) // 2]
            res["bestSecondsPerStep"] = min(times)
            s = sorted(times)
            res["secondsPerStep"] = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
            res["imgPerSec"] = a.batch / res["secondsPerStep"]
    except Exception as err:
        res["error"] = repr(err)
    res["maxRssMB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH_RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()

"""The discriminator of src/model_net.c in PyTorch, for timing one training
step on the same batch shapes (bench/model.sh runs both side by side).

usage: torch_model.py WIDTH SIZE BATCH STEPS f32|bf16 [gabor|stem|hybrid]
Prints: config, precision, ms per step, 0 (the fixed filter bank is given
as an input here), peak RSS MB, predictions/s.
"""
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

GABOR_DIM = 10
STEM = [16, 32, 64, 64, 64]
LEVELS = 4


class Unit(nn.Module):
    """ReLU, 3x3 conv (no bias), batch norm, skip."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return x + self.bn(self.conv(F.relu(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.lateral = Unit(c)
        self.mix = Unit(c)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, lat, prev):
        p = self.lateral(lat)
        if prev is not None:
            p = p + F.interpolate(prev, size=p.shape[-2:], mode="bilinear",
                                  align_corners=False)
        return self.proj(self.mix(p))


class Net(nn.Module):
    def __init__(self, width, n_cat, backbone):
        super().__init__()
        self.gab = backbone != "stem"
        self.use_stem = backbone != "gabor"
        dims = []
        for l in range(LEVELS):
            d = (GABOR_DIM if self.gab else 0) + \
                (STEM[l + 1] if self.use_stem else 0)
            dims.append(d)
        self.stem = nn.ModuleList(
            nn.Conv2d(3 if j == 0 else STEM[j - 1], STEM[j], 3, padding=1)
            for j in range(LEVELS + 1)) if self.use_stem else None
        self.neck = nn.ModuleList(nn.Linear(d, width, bias=False)
                                  for d in dims)
        self.fusion = nn.ModuleList(Block(width) for _ in range(LEVELS))
        self.embed = nn.Parameter(torch.randn(n_cat, width))
        self.temperature = nn.Parameter(torch.ones(1))

    def forward(self, img, gabor):
        taps = []
        if self.use_stem:
            x = img
            for conv in self.stem:
                x = F.avg_pool2d(F.relu(conv(x)), 2)
                taps.append(x)
            taps = taps[1:]
        z = []
        for l in range(LEVELS):
            parts = ([gabor[l]] if self.gab else []) + \
                    ([taps[l]] if self.use_stem else [])
            f = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
            # linear over channels at every pixel == 1x1 conv
            w = self.neck[l].weight[:, :, None, None]
            z.append(F.relu(F.conv2d(f, w)))
        prev = None
        for b in range(LEVELS):
            prev = self.fusion[b](z[LEVELS - 1 - b], prev)
        f = F.normalize(prev, dim=1)
        g = F.normalize(self.embed, dim=1)
        logits = torch.einsum("nchw,yc->nyhw", f, g) / self.temperature
        return F.interpolate(logits, size=img.shape[-2:], mode="bilinear",
                             align_corners=False)


def loss_fn(logits, labels):
    prob = torch.sigmoid(logits)
    sd = prob.mean(1)
    target = (labels > 0).float()
    # focal (gamma 2) on the two-class map and Dice per image
    p = torch.stack([1 - sd, sd], 1).clamp(1e-5, 1 - 1e-5)
    pt = torch.where(target > 0, p[:, 1], p[:, 0])
    focal = (-(1 - pt) ** 2 * torch.log(pt)).mean()
    inter = (sd * target).flatten(1).sum(1)
    dice = 1 - ((2 * inter + 1) /
                (sd.flatten(1).sum(1) + target.flatten(1).sum(1) + 1)).mean()
    ce = F.cross_entropy(logits, (labels.long() - 1).clamp(min=0),
                         reduction="none")
    ce = (ce * (labels > 0)).sum() / (labels > 0).sum().clamp(min=1)
    return focal + dice + 0.5 * ce


def main():
    width, size, batch, steps = map(int, sys.argv[1:5])
    prec = sys.argv[5]
    backbone = sys.argv[6] if len(sys.argv) > 6 else "hybrid"
    torch.manual_seed(0)
    net = Net(width, 5, backbone)
    img = torch.randn(batch, 3, size, size)
    gabor = [torch.randn(batch, GABOR_DIM, size // (4 << l), size // (4 << l))
             for l in range(LEVELS)]
    labels = torch.zeros(batch, size, size, dtype=torch.uint8)
    for b in range(batch):
        labels[b, size // 4:size // 2, size // 4:size // 2] = 1 + b % 5
    fusion = [p for n, p in net.named_parameters()
              if not n.startswith(("embed", "temperature"))]
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.999),
                            weight_decay=1e-4)
    bf16 = prec == "bf16"
    total = 0.0
    for s in range(-1, steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(img, gabor)
        loss = loss_fn(logits.float(), labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(fusion, 0.1)
        opt.step()
        if s >= 0:
            total += time.perf_counter() - t0
    net.eval()
    n_pred, t0 = 0, time.perf_counter()
    with torch.no_grad():
        while n_pred < 3 or time.perf_counter() - t0 < 2.0:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = net(img[:1, :1].expand(1, 3, size, size),
                          [g[:1] for g in gabor])
            torch.sigmoid(out.float()).mean(1)
            n_pred += 1
    ips = n_pred / (time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"w{width}_s{size}_b{batch}\t{prec}\t{1e3 * total / steps:.1f}"
          f"\t0\t{rss:.0f}\t{ips:.2f}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()

#!/usr/bin/python3
"""Reference values for tests/test_nn.c from PyTorch (Debian torch 1.13).

Run with /usr/bin/python3 from the repository root:
    /usr/bin/python3 scripts/make_nn_refs.py
Writes tests/data/nn_refs.bin: records of
    u32 name length, name (ASCII), u32 ndim, u32 dims[ndim], f32 data
(little-endian), inputs, outputs and gradients under names
"<case>.<tensor>". Every gradient is of L = sum(out * R) for the random R
stored as "<case>.R", except the losses, whose gradient is of the loss.
"""
import struct
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(20261203)
torch.set_default_dtype(torch.float32)
records = []


def put(name, t):
    t = t.detach().to(torch.float32).contiguous()
    records.append((name, list(t.shape), t.numpy().tobytes()))


def leaf(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape) * (hi - lo) + lo).requires_grad_(True)


def backprop(case, out, inputs):
    """Store out, R and the gradients of sum(out * R) w.r.t. inputs."""
    R = torch.rand(out.shape) * 2 - 1
    (out * R).sum().backward()
    put(case + ".out", out)
    put(case + ".R", R)
    for name, t in inputs.items():
        put(case + "." + name, t)
        put(case + ".d" + name, t.grad)


# matmul (also used for the bf16 tolerance)
a, b = leaf(33, 65), leaf(65, 17)
backprop("matmul", a @ b, {"a": a, "b": b})

# convolutions, 3x3 and 1x1, with bias
x, w, bias = leaf(2, 8, 9, 11), leaf(6, 8, 3, 3), leaf(6)
backprop("conv3", F.conv2d(x, w, bias, padding=1), {"x": x, "w": w, "b": bias})
x, w, bias = leaf(2, 8, 9, 11), leaf(5, 8, 1, 1), leaf(5)
backprop("conv1", F.conv2d(x, w, bias), {"x": x, "w": w, "b": bias})

# batch norm in training mode (momentum 0.1, eps 1e-5)
x, g, bb = leaf(3, 5, 6, 7, lo=-2, hi=3), leaf(5, lo=0.5, hi=1.5), leaf(5)
rm, rv = torch.rand(5), torch.rand(5) + 0.5
put("bn.rm0", rm)
put("bn.rv0", rv)
out = F.batch_norm(x, rm, rv, g, bb, training=True, momentum=0.1, eps=1e-5)
put("bn.rm1", rm)
put("bn.rv1", rv)
backprop("bn", out, {"x": x, "g": g, "b": bb})

# bilinear resize, align_corners=False, up and down
x = leaf(2, 3, 5, 7)
backprop("up", F.interpolate(x, size=(11, 9), mode="bilinear",
                             align_corners=False), {"x": x})
x = leaf(2, 3, 9, 11)
backprop("down", F.interpolate(x, size=(4, 5), mode="bilinear",
                               align_corners=False), {"x": x})

# L2 normalisation over channels, layer norm, GELU
x = leaf(2, 6, 5, 7)
backprop("l2", F.normalize(x, dim=1, eps=1e-12), {"x": x})
x, w, bb = leaf(5, 16), leaf(16, lo=0.5, hi=1.5), leaf(16)
backprop("ln", F.layer_norm(x, (16,), w, bb, eps=1e-5), {"x": x, "w": w,
                                                          "b": bb})
x = leaf(64, lo=-4, hi=4)
backprop("gelu", F.gelu(x), {"x": x})

# cosine logits over a temperature: <f, g> / eps
f = F.normalize(torch.rand(2, 8, 5, 7) * 2 - 1, dim=1).requires_grad_(True)
g = F.normalize(torch.rand(4, 8) * 2 - 1, dim=1).requires_grad_(True)
eps = torch.tensor(0.07, requires_grad=True)
backprop("cos", torch.einsum("nchw,yc->nyhw", f, g) / eps,
         {"f": f, "g": g, "eps": eps})


def focal(prob, target, gamma=2.0, smooth=1e-5):
    """AnomalyCLIP's FocalLoss on the map [1 - p, p] (alpha 1)."""
    two = torch.cat([1 - prob, prob], dim=1)          # N, 2, H, W
    two = two.permute(0, 2, 3, 1).reshape(-1, 2)
    idx = target.reshape(-1).long()
    hot = F.one_hot(idx, 2).float().clamp(smooth, 1.0 - smooth)
    pt = (hot * two).sum(1) + smooth
    return (-torch.pow(1 - pt, gamma) * pt.log()).mean()


def dice(prob, target):
    """AnomalyCLIP's BinaryDiceLoss: per image, smoothing 1."""
    n = target.shape[0]
    p, t = prob.reshape(n, -1), target.reshape(n, -1)
    d = (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)
    return 1 - d.sum() / n


p = torch.sigmoid(torch.randn(2, 1, 9, 11) * 2).requires_grad_(True)
t = (torch.rand(2, 1, 9, 11) < 0.3).float()
loss = focal(p, t)
loss.backward()
put("focal.p", p)
put("focal.t", t)
put("focal.loss", loss.reshape(1))
put("focal.dp", p.grad)
p = p.detach().clone().requires_grad_(True)
loss = dice(p, t)
loss.backward()
put("dice.loss", loss.reshape(1))
put("dice.dp", p.grad)

# cross-entropy over Y = 4 with label 0 ignored (classes 1..4)
z = leaf(2, 4, 9, 11, lo=-3, hi=3)
lab = torch.randint(0, 5, (2, 9, 11))
loss = F.cross_entropy(z, lab - 1, ignore_index=-1)
loss.backward()
put("ce.z", z)
put("ce.lab", lab.float())
put("ce.loss", loss.reshape(1))
put("ce.dz", z.grad)

# two AdamW steps (lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0.01)
prm = torch.nn.Parameter(torch.rand(37) * 2 - 1)
put("adamw.p0", prm)
opt = torch.optim.AdamW([prm], lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                        weight_decay=0.01)
for k in range(2):
    gk = torch.rand(37) * 2 - 1
    put("adamw.g%d" % (k + 1), gk)
    prm.grad = gk.clone()
    opt.step()
put("adamw.p2", prm)

path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/nn_refs.bin"
with open(path, "wb") as fh:
    for name, shape, data in records:
        fh.write(struct.pack("<I", len(name)) + name.encode("ascii"))
        fh.write(struct.pack("<I", len(shape)))
        fh.write(struct.pack("<%dI" % len(shape), *shape))
        fh.write(data)
print("wrote", path, len(records), "records")

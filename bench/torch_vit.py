#!/usr/bin/python3
"""ViT-B/16 forward in PyTorch 1.13 for bench/vit.sh, on the same random
weights as bench_vit (DINOv2 layout: patch 16, 768 wide, 12 blocks of 12
heads, MLP 3072, layer scale, native grid 16x16).

    torch_vit.py write DIR          weights, config.json, inputs
    torch_vit.py run DIR SIZE REPS  median forward time at SIZE x SIZE

`run` prints `vit_b16_SIZE  f32  median_ms` and `# peak RSS N MB`, and
the largest difference between its final tokens and bench_vit's (read
from DIR/ours_SIZE.bin when present). The network is the plain-PyTorch
definition of scripts/make_vit_refs.py (float32 here)."""
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import make_vit_refs as ref  # noqa: E402

CFG = {"model_type": "dinov2", "hidden_size": 768, "num_hidden_layers": 12,
       "num_attention_heads": 12, "mlp_ratio": 4.0, "patch_size": 16,
       "image_size": 224, "layer_norm_eps": 1e-6, "hidden_act": "gelu"}


def write(d):
    import json
    torch.manual_seed(0)
    W = ref.dinov2_weights(CFG, regs=False)
    ref.save_safetensors(os.path.join(d, "model.safetensors"), W)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(CFG, f)
    for s in (224, 512):
        torch.randn(3, s, s).numpy().tofile(os.path.join(d, "pix_%d.bin" % s))


def load_weights(d):
    import json
    import struct
    with open(os.path.join(d, "model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    W = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        W[k] = torch.frombuffer(bytearray(data[a:b]),
                                dtype=torch.float32).view(v["shape"])
    return W


def run(d, size, reps):
    torch.set_num_threads(2)
    W = load_weights(d)
    img = torch.from_numpy(__import__("numpy").fromfile(
        os.path.join(d, "pix_%d.bin" % size), dtype="float32"))
    img = img.view(3, size, size)
    with torch.no_grad():
        fwd = lambda: ref.dinov2_forward(W, CFG, img, regs=False)  # noqa
        _, last, _ = fwd()  # warm-up
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fwd()
            ts.append(time.perf_counter() - t0)
    ts.sort()
    print("vit_b16_%d\tf32\t%.1f" % (size, 1e3 * ts[len(ts) // 2]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("# peak RSS %.1f MB" % rss)
    for prec in ("", "_bf16"):
        ours = os.path.join(d, "ours_%d%s.bin" % (size, prec))
        if not os.path.exists(ours):
            continue
        o = torch.from_numpy(__import__("numpy").fromfile(ours,
                                                          dtype="float32"))
        o = o.view(last.shape)
        err = (o - last).abs().max().item()
        print("# ours%s vs torch f32: max abs %.3g, max |torch| %.3g"
              % (prec.replace("_", " "), err, last.abs().max().item()))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))

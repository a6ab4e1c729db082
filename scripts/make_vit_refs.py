#!/usr/bin/python3
"""Reference tensors for tests/test_vit.c (run by hand with Debian's
python3-torch; the tests only read the files it writes):

    /usr/bin/python3 scripts/make_vit_refs.py tests/data/vit

Debian has no python3-transformers, so the three architectures are
written here in plain PyTorch from their published definitions, as the
Hugging Face modules compute them (Dinov2Model, Dinov2WithRegistersModel,
DINOv3ViTModel, CLIPVisionModel); the code is ours. Each small random configuration gets
a folder with config.json and model.safetensors under the HF key names,
and ref.safetensors with the inputs, every hidden state, the final-normed
tokens and the layer-normed patch-token maps of chosen blocks. The
reference runs in float64 from the stored (rounded) weights, so it is
the exact answer that our f32 forward approximates.

Files are written with struct + json (safetensors "Format" section).
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(6)


def save_safetensors(path, tensors, dtypes=None, meta=None):
    """tensors: name -> tensor; dtypes: name -> "F32" | "F16" | "BF16"."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, t in tensors.items():
        dt = (dtypes or {}).get(name, "F32")
        t = t.detach().contiguous()
        if dt == "F32":
            raw = t.float().numpy().tobytes()
        elif dt == "F16":
            raw = t.half().numpy().tobytes()
        else:  # BF16: the bit pattern through int16
            raw = t.bfloat16().view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def rounded(t, dt):
    """The value a C reader sees after the file's dtype rounding."""
    if dt == "F16":
        return t.half().double()
    if dt == "BF16":
        return t.bfloat16().double()
    return t.float().double()


# ---- building blocks (float64) ----

def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def self_attention(x, wq, bq, wk, bk, wv, bv, heads):
    """Multi-head attention on (T, C), no output projection."""
    T, C = x.shape
    D = C // heads

    def split(t):
        return t.view(T, heads, D).transpose(0, 1)   # (heads, T, D)
    q = split(F.linear(x, wq, bq))
    k = split(F.linear(x, wk, bk))
    v = split(F.linear(x, wv, bv))
    att = torch.softmax(q @ k.transpose(1, 2) * D ** -0.5, dim=-1)
    return (att @ v).transpose(0, 1).reshape(T, C)


def patch_tokens(img, w, b, p):
    """Stride-p convolution of one (3, H, W) image -> (gh*gw, C)."""
    y = F.conv2d(img[None], w, b, stride=p)
    return y.flatten(2)[0].transpose(0, 1)


def position_embeddings(pos, grid, gh, gw, H, W, antialias):
    """pos (1 + grid^2, C) as the HF interpolate_pos_encoding rule uses
    it: as stored for a square image with the native token count,
    otherwise the patch grid resized bicubically to gh x gw."""
    if gh * gw == grid * grid and H == W:
        return pos
    C = pos.shape[1]
    g = pos[1:].reshape(1, grid, grid, C).permute(0, 3, 1, 2)
    g = F.interpolate(g, size=(gh, gw), mode="bicubic", align_corners=False,
                      antialias=antialias)
    return torch.cat([pos[:1], g.permute(0, 2, 3, 1).reshape(gh * gw, C)])


# ---- DINOv2 (with and without registers) ----

def dinov2_weights(cfg, regs):
    C, p, L = cfg["hidden_size"], cfg["patch_size"], cfg["num_hidden_layers"]
    G = cfg["image_size"] // p
    hf = int(C * cfg.get("mlp_ratio", 4.0))
    swiglu = cfg.get("use_swiglu_ffn", False)
    M = (hf * 2 // 3 + 7) // 8 * 8 if swiglu else hf
    r = torch.randn
    W = {"embeddings.cls_token": r(1, 1, C),
         "embeddings.mask_token": torch.zeros(1, C),
         "embeddings.position_embeddings": 0.5 * r(1, 1 + G * G, C),
         "embeddings.patch_embeddings.projection.weight":
             r(C, 3, p, p) / (3 * p * p) ** 0.5,
         "embeddings.patch_embeddings.projection.bias": 0.1 * r(C)}
    if regs:
        W["embeddings.register_tokens"] = r(1, cfg["num_register_tokens"], C)
    for i in range(L):
        pre = "encoder.layer.%d." % i
        for n in ("norm1", "norm2"):
            W[pre + n + ".weight"] = 1 + 0.2 * r(C)
            W[pre + n + ".bias"] = 0.1 * r(C)
        for n in ("query", "key", "value"):
            W[pre + "attention.attention." + n + ".weight"] = r(C, C) / C ** 0.5
            W[pre + "attention.attention." + n + ".bias"] = 0.1 * r(C)
        W[pre + "attention.output.dense.weight"] = r(C, C) / C ** 0.5
        W[pre + "attention.output.dense.bias"] = 0.1 * r(C)
        W[pre + "layer_scale1.lambda1"] = 0.5 + 0.3 * r(C)
        W[pre + "layer_scale2.lambda1"] = 0.5 + 0.3 * r(C)
        fi, fo = ("weights_in", "weights_out") if swiglu else ("fc1", "fc2")
        MI = 2 * M if swiglu else M
        W[pre + "mlp." + fi + ".weight"] = r(MI, C) / C ** 0.5
        W[pre + "mlp." + fi + ".bias"] = 0.1 * r(MI)
        W[pre + "mlp." + fo + ".weight"] = r(C, M) / M ** 0.5
        W[pre + "mlp." + fo + ".bias"] = 0.1 * r(C)
    W["layernorm.weight"] = 1 + 0.2 * r(C)
    W["layernorm.bias"] = 0.1 * r(C)
    return W


def dinov2_forward(W, cfg, img, regs):
    """One image (3, H, W) -> (hidden states list, final-normed tokens)."""
    C, p, heads = cfg["hidden_size"], cfg["patch_size"], \
        cfg["num_attention_heads"]
    eps = cfg.get("layer_norm_eps", 1e-6)
    G = cfg["image_size"] // p
    H, Wd = img.shape[1:]
    gh, gw = H // p, Wd // p
    x = patch_tokens(img, W["embeddings.patch_embeddings.projection.weight"],
                     W["embeddings.patch_embeddings.projection.bias"], p)
    x = torch.cat([W["embeddings.cls_token"][0], x])
    x = x + position_embeddings(W["embeddings.position_embeddings"][0], G, gh,
                                gw, H, Wd, antialias=regs)
    if regs:  # registers go after the CLS token, without positions
        x = torch.cat([x[:1], W["embeddings.register_tokens"][0], x[1:]])
    hidden = [x]
    for i in range(cfg["num_hidden_layers"]):
        pre = "encoder.layer.%d." % i
        a = pre + "attention.attention."
        h = layer_norm(x, W[pre + "norm1.weight"], W[pre + "norm1.bias"], eps)
        h = self_attention(h, W[a + "query.weight"], W[a + "query.bias"],
                           W[a + "key.weight"], W[a + "key.bias"],
                           W[a + "value.weight"], W[a + "value.bias"], heads)
        h = F.linear(h, W[pre + "attention.output.dense.weight"],
                     W[pre + "attention.output.dense.bias"])
        x = x + h * W[pre + "layer_scale1.lambda1"]
        h = layer_norm(x, W[pre + "norm2.weight"], W[pre + "norm2.bias"], eps)
        if cfg.get("use_swiglu_ffn", False):
            h = F.linear(h, W[pre + "mlp.weights_in.weight"],
                         W[pre + "mlp.weights_in.bias"])
            x1, x2 = h.chunk(2, dim=-1)
            h = F.linear(F.silu(x1) * x2, W[pre + "mlp.weights_out.weight"],
                         W[pre + "mlp.weights_out.bias"])
        else:
            h = F.gelu(F.linear(h, W[pre + "mlp.fc1.weight"],
                                W[pre + "mlp.fc1.bias"]))
            h = F.linear(h, W[pre + "mlp.fc2.weight"], W[pre + "mlp.fc2.bias"])
        x = x + h * W[pre + "layer_scale2.lambda1"]
        hidden.append(x)
    last = layer_norm(x, W["layernorm.weight"], W["layernorm.bias"], eps)
    norm = (W["layernorm.weight"], W["layernorm.bias"], eps)
    return hidden, last, norm


# ---- DINOv3 (HF DINOv3ViTModel) ----

def dinov3_weights(cfg):
    C, p, L = cfg["hidden_size"], cfg["patch_size"], cfg["num_hidden_layers"]
    M, R = cfg["intermediate_size"], cfg.get("num_register_tokens", 0)
    gated, mb = cfg.get("use_gated_mlp", False), cfg.get("mlp_bias", True)
    r = torch.randn
    W = {"embeddings.cls_token": r(1, 1, C),
         "embeddings.mask_token": torch.zeros(1, 1, C),
         "embeddings.patch_embeddings.weight":
             r(C, 3, p, p) / (3 * p * p) ** 0.5,
         "embeddings.patch_embeddings.bias": 0.1 * r(C)}
    if R:
        W["embeddings.register_tokens"] = r(1, R, C)
    bias = {"q_proj": cfg.get("query_bias", True),
            "k_proj": cfg.get("key_bias", False),
            "v_proj": cfg.get("value_bias", True),
            "o_proj": cfg.get("proj_bias", True)}
    for i in range(L):
        pre = "layer.%d." % i
        for n in ("norm1", "norm2"):
            W[pre + n + ".weight"] = 1 + 0.2 * r(C)
            W[pre + n + ".bias"] = 0.1 * r(C)
        for n, b in bias.items():
            W[pre + "attention." + n + ".weight"] = r(C, C) / C ** 0.5
            if b:
                W[pre + "attention." + n + ".bias"] = 0.1 * r(C)
        W[pre + "layer_scale1.lambda1"] = 0.5 + 0.3 * r(C)
        W[pre + "layer_scale2.lambda1"] = 0.5 + 0.3 * r(C)
        for n, shape in (("up_proj", (M, C)), ("down_proj", (C, M))) + \
                ((("gate_proj", (M, C)),) if gated else ()):
            W[pre + "mlp." + n + ".weight"] = r(*shape) / shape[1] ** 0.5
            if mb:
                W[pre + "mlp." + n + ".bias"] = 0.1 * r(shape[0])
    W["norm.weight"] = 1 + 0.2 * r(C)
    W["norm.bias"] = 0.1 * r(C)
    return W


def rope_tables(gh, gw, D, theta):
    """cos, sin (gh*gw, D): patch centres in [-1, 1] (y, x), D/4
    frequencies theta^(-4j/D), angles 2 pi coord f as [y | x], twice."""
    ch = (torch.arange(gh, dtype=torch.float64) + 0.5) / gh
    cw = (torch.arange(gw, dtype=torch.float64) + 0.5) / gw
    coords = torch.stack(torch.meshgrid(ch, cw, indexing="ij"), dim=-1)
    coords = 2.0 * coords.flatten(0, 1) - 1.0
    inv = 1.0 / theta ** (torch.arange(D // 4, dtype=torch.float64) * 4 / D)
    ang = (2 * math.pi * coords[:, :, None] * inv[None, None, :]).flatten(1)
    ang = ang.repeat(1, 2)
    return torch.cos(ang), torch.sin(ang)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def rope_attention(x, W, a, heads, prefix, cos, sin):
    T, C = x.shape
    D = C // heads

    def proj(n):
        return F.linear(x, W[a + n + ".weight"], W.get(a + n + ".bias"))
    q, k, v = (proj(n).view(T, heads, D).transpose(0, 1)
               for n in ("q_proj", "k_proj", "v_proj"))
    # rotary angles on the patch tokens only
    q = torch.cat([q[:, :prefix], q[:, prefix:] * cos +
                   rotate_half(q[:, prefix:]) * sin], dim=1)
    k = torch.cat([k[:, :prefix], k[:, prefix:] * cos +
                   rotate_half(k[:, prefix:]) * sin], dim=1)
    att = torch.softmax(q @ k.transpose(1, 2) * D ** -0.5, dim=-1)
    o = (att @ v).transpose(0, 1).reshape(T, C)
    return F.linear(o, W[a + "o_proj.weight"], W.get(a + "o_proj.bias"))


def dinov3_forward(W, cfg, img):
    C, p, heads = cfg["hidden_size"], cfg["patch_size"], \
        cfg["num_attention_heads"]
    eps = cfg.get("layer_norm_eps", 1e-5)
    R = cfg.get("num_register_tokens", 0)
    H, Wd = img.shape[1:]
    gh, gw = H // p, Wd // p
    cos, sin = rope_tables(gh, gw, C // heads, cfg.get("rope_theta", 100.0))
    x = patch_tokens(img, W["embeddings.patch_embeddings.weight"],
                     W["embeddings.patch_embeddings.bias"], p)
    parts = [W["embeddings.cls_token"][0]]
    if R:
        parts.append(W["embeddings.register_tokens"][0])
    x = torch.cat(parts + [x])
    hidden = [x]
    for i in range(cfg["num_hidden_layers"]):
        pre = "layer.%d." % i
        m = pre + "mlp."
        h = layer_norm(x, W[pre + "norm1.weight"], W[pre + "norm1.bias"], eps)
        h = rope_attention(h, W, pre + "attention.", heads, 1 + R, cos, sin)
        x = x + h * W[pre + "layer_scale1.lambda1"]
        h = layer_norm(x, W[pre + "norm2.weight"], W[pre + "norm2.bias"], eps)
        up = F.linear(h, W[m + "up_proj.weight"], W.get(m + "up_proj.bias"))
        if cfg.get("use_gated_mlp", False):   # silu-gated
            g = F.linear(h, W[m + "gate_proj.weight"],
                         W.get(m + "gate_proj.bias"))
            h = F.silu(g) * up
        else:
            h = F.gelu(up)
        h = F.linear(h, W[m + "down_proj.weight"], W.get(m + "down_proj.bias"))
        x = x + h * W[pre + "layer_scale2.lambda1"]
        hidden.append(x)
    norm = (W["norm.weight"], W["norm.bias"], eps)
    return hidden, layer_norm(x, *norm), norm


# ---- CLIP vision tower ----

def clip_weights(vc, proj_dim):
    C, p, L = vc["hidden_size"], vc["patch_size"], vc["num_hidden_layers"]
    M, G = vc["intermediate_size"], vc["image_size"] // p
    r = torch.randn
    pre = "vision_model."
    W = {pre + "embeddings.class_embedding": r(C),
         pre + "embeddings.patch_embedding.weight":
             r(C, 3, p, p) / (3 * p * p) ** 0.5,
         pre + "embeddings.position_embedding.weight": 0.5 * r(1 + G * G, C),
         pre + "pre_layrnorm.weight": 1 + 0.2 * r(C),
         pre + "pre_layrnorm.bias": 0.1 * r(C)}
    for i in range(L):
        lp = pre + "encoder.layers.%d." % i
        for n in ("layer_norm1", "layer_norm2"):
            W[lp + n + ".weight"] = 1 + 0.2 * r(C)
            W[lp + n + ".bias"] = 0.1 * r(C)
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            W[lp + "self_attn." + n + ".weight"] = r(C, C) / C ** 0.5
            W[lp + "self_attn." + n + ".bias"] = 0.1 * r(C)
        W[lp + "mlp.fc1.weight"] = r(M, C) / C ** 0.5
        W[lp + "mlp.fc1.bias"] = 0.1 * r(M)
        W[lp + "mlp.fc2.weight"] = r(C, M) / M ** 0.5
        W[lp + "mlp.fc2.bias"] = 0.1 * r(C)
    W[pre + "post_layernorm.weight"] = 1 + 0.2 * r(C)
    W[pre + "post_layernorm.bias"] = 0.1 * r(C)
    W["visual_projection.weight"] = r(proj_dim, C) / C ** 0.5
    return W


def clip_forward(W, vc, img):
    C, p, heads = vc["hidden_size"], vc["patch_size"], \
        vc["num_attention_heads"]
    eps = vc.get("layer_norm_eps", 1e-5)
    G = vc["image_size"] // p
    H, Wd = img.shape[1:]
    pre = "vision_model."
    x = patch_tokens(img, W[pre + "embeddings.patch_embedding.weight"], None,
                     p)
    x = torch.cat([W[pre + "embeddings.class_embedding"][None], x])
    x = x + position_embeddings(
        W[pre + "embeddings.position_embedding.weight"], G, H // p, Wd // p,
        H, Wd, antialias=False)
    x = layer_norm(x, W[pre + "pre_layrnorm.weight"],
                   W[pre + "pre_layrnorm.bias"], eps)
    hidden = [x]
    for i in range(vc["num_hidden_layers"]):
        lp = pre + "encoder.layers.%d." % i
        a = lp + "self_attn."
        h = layer_norm(x, W[lp + "layer_norm1.weight"],
                       W[lp + "layer_norm1.bias"], eps)
        h = self_attention(h, W[a + "q_proj.weight"], W[a + "q_proj.bias"],
                           W[a + "k_proj.weight"], W[a + "k_proj.bias"],
                           W[a + "v_proj.weight"], W[a + "v_proj.bias"],
                           heads)
        x = x + F.linear(h, W[a + "out_proj.weight"], W[a + "out_proj.bias"])
        h = layer_norm(x, W[lp + "layer_norm2.weight"],
                       W[lp + "layer_norm2.bias"], eps)
        h = F.linear(h, W[lp + "mlp.fc1.weight"], W[lp + "mlp.fc1.bias"])
        h = h * torch.sigmoid(1.702 * h)   # quick_gelu
        x = x + F.linear(h, W[lp + "mlp.fc2.weight"], W[lp + "mlp.fc2.bias"])
        hidden.append(x)
    norm = (W[pre + "post_layernorm.weight"], W[pre + "post_layernorm.bias"],
            eps)
    return hidden, layer_norm(x, *norm), norm


# ---- driver ----

def write_case(root, name, config, W, dtype, forward, prefix, patch,
               images, layers, extra=None, ref_name="ref.safetensors"):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    # the C side reads the rounded values, so the reference uses them too
    Wr = {k: rounded(v, dtype) for k, v in W.items()}
    tensors = dict(W)
    tensors.update(extra or {})
    save_safetensors(os.path.join(d, "model.safetensors"), tensors,
                     {k: dtype for k in tensors})
    out = {"pixel_values": images.float()}
    hid_all, last_all, feats = [], [], [[] for _ in layers]
    for img in images.double():
        hidden, last, norm = forward(Wr, img)
        hid_all.append(torch.stack(hidden))
        last_all.append(last)
        gh, gw = img.shape[1] // patch, img.shape[2] // patch
        for j, l in enumerate(layers):
            t = layer_norm(hidden[l], *norm)[prefix:]
            feats[j].append(t.transpose(0, 1).reshape(-1, gh, gw))
    hid = torch.stack(hid_all)            # (N, L+1, T, C)
    for l in range(hid.shape[1]):
        out["hidden.%d" % l] = hid[:, l]
    out["last"] = torch.stack(last_all)
    out["layers"] = torch.tensor(layers, dtype=torch.float32)
    for j in range(len(layers)):
        out["features.%d" % j] = torch.stack(feats[j])
    save_safetensors(os.path.join(d, ref_name), out)


def preprocess_ref(image_size):
    """CLIPImageProcessor's steps on a 7x11 float image: shorter side to
    image_size (width int(S * 11 / 7)), antialiased bicubic (PIL's
    filter), centre crop, CLIP mean/std."""
    img = torch.rand(3, 7, 11)
    S = image_size
    rw = int(S * 11 / 7)
    r = F.interpolate(img[None].double(), size=(S, rw), mode="bicubic",
                      align_corners=False, antialias=True)[0]
    left = (rw - S) // 2
    r = r[:, :, left:left + S]
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).double()
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).double()
    return img, (r - mean[:, None, None]) / std[:, None, None]


def main(root):
    # DINOv2, no registers: 38x30 gives a 9x7 grid from the stored 8x8
    # (rows upsampled, columns downsampled, remainder pixels dropped).
    cfg = {"model_type": "dinov2", "architectures": ["Dinov2Model"],
           "hidden_size": 48, "num_hidden_layers": 3,
           "num_attention_heads": 3, "mlp_ratio": 4.0, "patch_size": 4,
           "image_size": 32, "layer_norm_eps": 1e-6, "hidden_act": "gelu",
           "layerscale_value": 1.0}
    W = dinov2_weights(cfg, regs=False)
    write_case(root, "dinov2", cfg, W, "F32",
               lambda Wr, img: dinov2_forward(Wr, cfg, img, regs=False),
               1, 4, torch.randn(2, 3, 38, 30), [1, 2, 3])
    d2_cfg, d2_W = cfg, W

    # DINOv2 with 4 registers and the SwiGLU FFN (ViT-g style), BF16
    # weights; 20x36 on a stored 7x7 grid: 5x9, antialiased resize.
    cfg = {"model_type": "dinov2_with_registers",
           "architectures": ["Dinov2WithRegistersModel"],
           "hidden_size": 48, "num_hidden_layers": 2,
           "num_attention_heads": 4, "mlp_ratio": 4.0, "patch_size": 4,
           "image_size": 28, "num_register_tokens": 4,
           "use_swiglu_ffn": True}
    W = dinov2_weights(cfg, regs=True)
    write_case(root, "dinov2_reg", cfg, W, "BF16",
               lambda Wr, img: dinov2_forward(Wr, cfg, img, regs=True),
               5, 4, torch.randn(1, 3, 20, 36), [0, 2])

    # CLIP (CLIPModel layout: vision_config nested, text tower present
    # and skipped), F16 weights; 40x24 on a stored 4x4 grid: 5x3.
    vc = {"hidden_size": 64, "intermediate_size": 96,
          "num_hidden_layers": 2, "num_attention_heads": 4,
          "image_size": 32, "patch_size": 8, "hidden_act": "quick_gelu",
          "layer_norm_eps": 1e-5}
    cfg = {"model_type": "clip", "architectures": ["CLIPModel"],
           "projection_dim": 32, "vision_config": vc,
           "text_config": {"hidden_size": 16}}
    W = clip_weights(vc, 32)
    extra = {"text_model.embeddings.token_embedding.weight":
             torch.randn(10, 16),
             "text_projection.weight": torch.randn(32, 16),
             "logit_scale": torch.tensor(2.6592)}
    write_case(root, "clip", cfg, W, "F16",
               lambda Wr, img: clip_forward(Wr, vc, img), 1, 8,
               torch.randn(2, 3, 40, 24), [1, 2], extra)
    # DINOv3 with 4 registers, no key bias (the HF defaults), 38x30:
    # a 9x7 grid of rotary angles.
    cfg = {"model_type": "dinov3_vit", "architectures": ["DINOv3ViTModel"],
           "hidden_size": 64, "intermediate_size": 128,
           "num_hidden_layers": 2, "num_attention_heads": 4,
           "patch_size": 4, "image_size": 32, "num_register_tokens": 4,
           "rope_theta": 100.0, "layer_norm_eps": 1e-5}
    W = dinov3_weights(cfg)
    write_case(root, "dinov3", cfg, W, "F32",
               lambda Wr, img: dinov3_forward(Wr, cfg, img), 5, 4,
               torch.randn(2, 3, 38, 30), [1, 2])
    # DINOv3 with the silu-gated MLP, no MLP or projection biases, no
    # registers, another theta.
    cfg = {"model_type": "dinov3_vit", "hidden_size": 32,
           "intermediate_size": 48, "num_hidden_layers": 1,
           "num_attention_heads": 2, "patch_size": 4, "image_size": 16,
           "use_gated_mlp": True, "hidden_act": "silu", "mlp_bias": False,
           "proj_bias": False, "rope_theta": 50.0}
    W = dinov3_weights(cfg)
    write_case(root, "dinov3_gated", cfg, W, "F32",
               lambda Wr, img: dinov3_forward(Wr, cfg, img), 1, 4,
               torch.randn(1, 3, 20, 22), [1])

    img, out = preprocess_ref(vc["image_size"])
    save_safetensors(os.path.join(root, "clip", "preprocess.safetensors"),
                     {"image": img, "out": out})
    # the first DINOv2 at its native 32x32: the stored table as is
    write_case(root, "dinov2", d2_cfg, d2_W, "F32",
               lambda Wr, img: dinov2_forward(Wr, d2_cfg, img, regs=False),
               1, 4, torch.randn(1, 3, 32, 32), [3],
               ref_name="ref_native.safetensors")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/vit")

#!/usr/bin/python3
"""Reference files for tests/test_clip_text.c: a CLIP text tower on
random weights, written here in plain PyTorch from the published model
definition (Radford et al. 2021, section 2.4, and the layout of Hugging
Face's CLIPTextModelWithProjection): token + position embeddings, pre-norm
transformer layers with causal multi-head self-attention and a quick-GELU
MLP, a final layer norm, pooling at the end token, a linear projection
without bias.

Writes tests/data/clip_text/:
  config.json        a CLIPModel-style config (text_config + projection_dim)
  model.safetensors  the random weights under Hugging Face key names, plus
                     a vision tensor and logit_scale that the loader skips
  vocab.json, merges.txt   the small tokenizer of tests/data/clip_tok
  refs.safetensors   input_ids (N, 77) I32, n_used (N) I32, and per text:
                     hidden (N, layers + 1, 77, C), last (N, 77, C),
                     embeds (N, P); plus category (P), the category
                     embedding of CATEGORY over the ten templates.

Usage: /usr/bin/python3 scripts/make_clip_text_refs.py tests/data/clip_text
"""
import json
import os
import shutil
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_clip_tok_refs as tok  # noqa: E402

CFG = dict(hidden_size=48, intermediate_size=192, num_attention_heads=4,
           num_hidden_layers=2, max_position_embeddings=77,
           layer_norm_eps=1e-5, hidden_act="quick_gelu", eos_token_id=2)
PROJ = 24
TEXTS = [
    "a photo of a scratch",
    "don't stop, it's 2024... we'll see",
    "a photo of a scratch " * 30,  # truncated to 77 tokens
]
TEMPLATES = [
    "a photo of %s", "an image of %s", "a close-up photo of %s",
    "a cropped photo of %s", "a bright photo of %s", "a dark photo of %s",
    "a blurry photo of %s", "a good photo of %s",
    "a low resolution photo of %s", "an industrial photo of %s",
]
CATEGORY = ("broken_large", ["a large crack", "a missing piece"])


def random_weights(vocab, g):
    C, I, L = (CFG["hidden_size"], CFG["intermediate_size"],
               CFG["num_hidden_layers"])
    w = {}

    def r(name, *shape, scale=0.2):
        w[name] = torch.randn(*shape, generator=g) * scale

    r("text_model.embeddings.token_embedding.weight", vocab, C, scale=0.5)
    r("text_model.embeddings.position_embedding.weight", 77, C, scale=0.5)
    for l in range(L):
        p = "text_model.encoder.layers.%d." % l
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            r(p + "self_attn.%s.weight" % n, C, C)
            r(p + "self_attn.%s.bias" % n, C, scale=0.1)
        for n in ("layer_norm1", "layer_norm2"):
            w[p + n + ".weight"] = 1 + torch.randn(C, generator=g) * 0.1
            r(p + n + ".bias", C, scale=0.1)
        r(p + "mlp.fc1.weight", I, C)
        r(p + "mlp.fc1.bias", I, scale=0.1)
        r(p + "mlp.fc2.weight", C, I, scale=0.1)
        r(p + "mlp.fc2.bias", C, scale=0.1)
    w["text_model.final_layer_norm.weight"] = 1 + torch.randn(C, generator=g) * 0.1
    r("text_model.final_layer_norm.bias", C, scale=0.1)
    r("text_projection.weight", PROJ, C)
    return w


def layer_norm(x, w, b):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + CFG["layer_norm_eps"]) * w + b


def linear(x, w, b=None):
    y = x @ w.t()
    return y + b if b is not None else y


def attention(x, w, p):
    T, C = x.shape
    H = CFG["num_attention_heads"]
    D = C // H

    def heads(t):
        return t.reshape(T, H, D).transpose(0, 1)  # (H, T, D)

    q = heads(linear(x, w[p + "q_proj.weight"], w[p + "q_proj.bias"]))
    k = heads(linear(x, w[p + "k_proj.weight"], w[p + "k_proj.bias"]))
    v = heads(linear(x, w[p + "v_proj.weight"], w[p + "v_proj.bias"]))
    s = q @ k.transpose(1, 2) / D ** 0.5
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    s = s.masked_fill(mask, float("-inf"))
    o = torch.softmax(s, dim=-1) @ v  # (H, T, D)
    o = o.transpose(0, 1).reshape(T, C)
    return linear(o, w[p + "out_proj.weight"], w[p + "out_proj.bias"])


def forward(ids, w):
    """ids: list of T ints -> hidden (L+1, T, C), last (T, C), embed (P)."""
    T = len(ids)
    x = (w["text_model.embeddings.token_embedding.weight"][ids] +
         w["text_model.embeddings.position_embedding.weight"][:T])
    hidden = [x]
    for l in range(CFG["num_hidden_layers"]):
        p = "text_model.encoder.layers.%d." % l
        h = layer_norm(x, w[p + "layer_norm1.weight"], w[p + "layer_norm1.bias"])
        x = x + attention(h, w, p + "self_attn.")
        h = layer_norm(x, w[p + "layer_norm2.weight"], w[p + "layer_norm2.bias"])
        u = linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"])
        u = u * torch.sigmoid(1.702 * u)  # quick GELU
        x = x + linear(u, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])
        hidden.append(x)
    last = layer_norm(x, w["text_model.final_layer_norm.weight"],
                      w["text_model.final_layer_norm.bias"])
    # eos_token_id 2 (openai's configs): pool at the argmax of the ids.
    eos = int(torch.tensor(ids).argmax())
    embed = linear(last[eos], w["text_projection.weight"])
    return torch.stack(hidden), last, embed


def encode(text, vocab, ranks):
    ids = tok.model_input(tok.tokenize(text, vocab, ranks), vocab)
    used = ids.index(vocab[tok.EOT]) + 1
    return ids, used


def prompt_ensemble(name, descriptions, embed):
    """Every template filled with the name (underscores as spaces) and each
    description, embed(text) L2-normalised, the mean L2-normalised."""
    acc = 0
    for src in [name.replace("_", " ")] + descriptions:
        for t in TEMPLATES:
            e = embed(t % src).double()
            acc = acc + e / e.norm()
    return (acc / acc.norm()).float()


def category_embedding(name, descriptions, w, vocab, ranks):
    return prompt_ensemble(name, descriptions,
                           lambda text: forward(encode(text, vocab, ranks)[0],
                                                w)[2])


def save_safetensors(path, tensors, order):
    """safetensors by hand (format: u64 header length, JSON, data)."""
    header, blobs, off = {}, [], 0
    for name in order:
        t = tensors[name].contiguous()
        dt = {torch.float32: "F32", torch.int32: "I32"}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/clip_text"
    os.makedirs(out, exist_ok=True)
    tokdir = os.path.join(os.path.dirname(out.rstrip("/")), "clip_tok")
    for f in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(tokdir, f), os.path.join(out, f))
    vocab = json.load(open(os.path.join(out, "vocab.json"), encoding="utf-8"))
    lines = open(os.path.join(out, "merges.txt"), encoding="utf-8").read()
    merges = [tuple(m.split()) for m in lines.strip().split("\n")[1:]]
    ranks = {m: i for i, m in enumerate(merges)}

    g = torch.Generator().manual_seed(20260604)
    w = random_weights(len(vocab), g)
    files = dict(w)
    # A full CLIPModel file also holds the vision tower: skipped on load.
    files["vision_model.post_layernorm.weight"] = torch.ones(8)
    files["logit_scale"] = torch.tensor([2.6592])
    save_safetensors(os.path.join(out, "model.safetensors"), files,
                     sorted(files))
    config = {"architectures": ["CLIPModel"], "projection_dim": PROJ,
              "text_config": dict(CFG, vocab_size=len(vocab)),
              "vision_config": {"hidden_size": 8}}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    ids, used, hid, last, emb = [], [], [], [], []
    with torch.no_grad():
        for text in TEXTS:
            i, n = encode(text, vocab, ranks)
            h, l, e = forward(i, w)
            ids.append(i), used.append(n), hid.append(h), last.append(l)
            emb.append(e)
        cat = category_embedding(CATEGORY[0], CATEGORY[1], w, vocab, ranks)
    refs = {"input_ids": torch.tensor(ids, dtype=torch.int32),
            "n_used": torch.tensor(used, dtype=torch.int32),
            "hidden": torch.stack(hid), "last": torch.stack(last),
            "embeds": torch.stack(emb), "category": cat}
    save_safetensors(os.path.join(out, "refs.safetensors"), refs,
                     ["input_ids", "n_used", "hidden", "last", "embeds",
                      "category"])
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("wrote %s: %d texts, %d bytes" % (out, len(TEXTS), size))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Reference files for the dino.txt checks in tests/test_clip_text.c: the
text encoder of DINOv3's dino.txt on random weights, written here in
plain PyTorch from its published definition (Jose et al. 2025, "DINOv2
Meets Text", and the DINOv3 release's text tower): token + learned
position embeddings; pre-norm blocks (LayerNorm, causal multi-head
self-attention with one fused qkv projection without bias and an output
projection with bias; LayerNorm, MLP fc1 -> exact GELU -> fc2, both with
bias) added to the residual; a final LayerNorm; a linear projection
without bias; the output at the position of the largest id (the end
token). The model runs on the 77 ids padded with 0, as the release does.

Token ids come from openai/CLIP's tokenizer algorithm as dino.txt uses it
(its vocabulary built from the merges file alone), written here: whitespace
collapsed, NFC, lower case, the reference's pre-tokenizer pattern (CJK
runs stay together), byte-level BPE; start and end tokens, 77 ids,
truncation keeping the end token, padding with 0. ftfy's repairs and the
HTML unescaping are left out, as in uniadc (the test texts need neither).

Writes tests/data/dinotxt/:
  config.json                    dim, num_heads, num_layers, ffn_ratio,
                                 context_length, vocab_size, is_causal,
                                 embed_dim (text_backbone.yaml's keys)
  model.safetensors              the weights under the released keys, plus
                                 a vision-head tensor and logit_scale that
                                 the loader skips
  bpe_simple_vocab_16e6.txt.gz   tests/data/clip_tok/merges.txt, gzipped
  refs.safetensors               input_ids (N, 77) I32, n_used (N) I32,
                                 last (N, 77, C) after ln_final, embeds
                                 (N, P), category (P)

Usage: /usr/bin/python3 scripts/make_dinotxt_refs.py tests/data/dinotxt
"""
import gzip
import json
import os
import re
import sys
import unicodedata

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_clip_tok_refs as tok  # noqa: E402
from make_clip_text_refs import prompt_ensemble, save_safetensors  # noqa: E402

CFG = dict(dim=48, num_heads=4, num_layers=2, ffn_ratio=3.5,
           context_length=77, is_causal=True)
EMBED = 40
CONTEXT = 77
TEXTS = [
    "a photo of a scratch",
    "don't stop, it's 2024... we'll see",
    "日本語のテキスト and 日本",
    "A Close-Up Photo of a CRACKED hazelnut!",
    "a photo of a scratch " * 30,  # truncated to 77 tokens
]
CATEGORY = ("broken_large", ["a large crack", "a missing piece"])


def openai_ids(text, vocab, ranks):
    """openai/CLIP SimpleTokenizer.encode without ftfy and html."""
    text = unicodedata.normalize("NFC", text)
    text = re.sub(r"\s+", " ", text).strip().lower()
    ids = []
    for piece in tok.PATTERN.findall(text):
        if piece in (tok.SOT, tok.EOT):
            ids.append(vocab[piece])
            continue
        for sym in tok.bpe(tok.piece_symbols(piece), ranks):
            ids.append(vocab[sym])
    return ids


def model_input(ids, vocab):
    seq = [vocab[tok.SOT]] + ids + [vocab[tok.EOT]]
    if len(seq) > CONTEXT:
        seq = seq[:CONTEXT]
        seq[-1] = vocab[tok.EOT]
    return seq + [0] * (CONTEXT - len(seq)), len(seq)


def random_weights(vocab, g):
    C, L = CFG["dim"], CFG["num_layers"]
    inner = int(C * CFG["ffn_ratio"])
    w = {}

    def r(name, *shape, scale=0.2):
        w[name] = torch.randn(*shape, generator=g) * scale

    b = "text_model.backbone."
    r(b + "token_embedding.weight", vocab, C, scale=0.5)
    r(b + "positional_embedding", CONTEXT, C, scale=0.5)
    for l in range(L):
        p = b + "blocks.%d." % l
        for n in ("attention_norm", "ffn_norm"):
            w[p + n + ".weight"] = 1 + torch.randn(C, generator=g) * 0.1
            r(p + n + ".bias", C, scale=0.1)
        r(p + "attention.qkv.weight", 3 * C, C)
        r(p + "attention.proj.weight", C, C)
        r(p + "attention.proj.bias", C, scale=0.1)
        r(p + "feed_forward.fc1.weight", inner, C)
        r(p + "feed_forward.fc1.bias", inner, scale=0.1)
        r(p + "feed_forward.fc2.weight", C, inner, scale=0.1)
        r(p + "feed_forward.fc2.bias", C, scale=0.1)
    w[b + "ln_final.weight"] = 1 + torch.randn(C, generator=g) * 0.1
    r(b + "ln_final.bias", C, scale=0.1)
    r("text_model.head.linear_projection.weight", EMBED, C)
    return w


def layer_norm(x, w, b):
    m = x.mean(-1, keepdim=True)
    v = ((x - m) ** 2).mean(-1, keepdim=True)
    return (x - m) / torch.sqrt(v + 1e-5) * w + b


def attention(x, w, p):
    T, C = x.shape
    H = CFG["num_heads"]
    D = C // H
    qkv = (x @ w[p + "qkv.weight"].t()).reshape(T, 3, H, D)
    q, k, v = (qkv[:, i].transpose(0, 1) for i in range(3))  # (H, T, D)
    s = q @ k.transpose(1, 2) / D ** 0.5
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    o = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v
    o = o.transpose(0, 1).reshape(T, C)
    return o @ w[p + "proj.weight"].t() + w[p + "proj.bias"]


def forward(ids, w):
    """ids: 77 ints -> last (77, C) after ln_final, embed (P)."""
    b = "text_model.backbone."
    x = w[b + "token_embedding.weight"][ids] + w[b + "positional_embedding"]
    for l in range(CFG["num_layers"]):
        p = b + "blocks.%d." % l
        h = layer_norm(x, w[p + "attention_norm.weight"],
                       w[p + "attention_norm.bias"])
        x = x + attention(h, w, p + "attention.")
        h = layer_norm(x, w[p + "ffn_norm.weight"], w[p + "ffn_norm.bias"])
        u = h @ w[p + "feed_forward.fc1.weight"].t() + w[p + "feed_forward.fc1.bias"]
        u = torch.nn.functional.gelu(u)  # exact (erf) GELU
        x = x + u @ w[p + "feed_forward.fc2.weight"].t() + w[p + "feed_forward.fc2.bias"]
    last = layer_norm(x, w[b + "ln_final.weight"], w[b + "ln_final.bias"])
    pos = int(torch.tensor(ids).argmax())  # "argmax" pooling: the end token
    embed = last[pos] @ w["text_model.head.linear_projection.weight"].t()
    return last, embed


def category_embedding(name, descriptions, w, vocab, ranks):
    return prompt_ensemble(
        name, descriptions,
        lambda text: forward(model_input(openai_ids(text, vocab, ranks),
                                         vocab)[0], w)[1])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/dinotxt"
    os.makedirs(out, exist_ok=True)
    tokdir = os.path.join(os.path.dirname(out.rstrip("/")), "clip_tok")
    raw = open(os.path.join(tokdir, "merges.txt"), "rb").read()
    with open(os.path.join(out, "bpe_simple_vocab_16e6.txt.gz"), "wb") as f:
        f.write(gzip.compress(raw, mtime=0))
    # The vocabulary as openai's SimpleTokenizer builds it from the merges.
    merges = [tuple(m.split()) for m in raw.decode().strip().split("\n")[1:]]
    vocab = tok.build_vocab(merges)
    ranks = {m: i for i, m in enumerate(merges)}

    g = torch.Generator().manual_seed(20261204)
    w = random_weights(len(vocab), g)
    files = dict(w)
    files["visual_model.head.blocks.0.norm1.weight"] = torch.ones(8)
    files["logit_scale"] = torch.tensor([2.6593])
    save_safetensors(os.path.join(out, "model.safetensors"), files,
                     sorted(files))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(dict(CFG, vocab_size=len(vocab), embed_dim=EMBED), f,
                  indent=2)

    ids, used, last, emb = [], [], [], []
    with torch.no_grad():
        for text in TEXTS:
            i, n = model_input(openai_ids(text, vocab, ranks), vocab)
            l, e = forward(i, w)
            ids.append(i), used.append(n), last.append(l), emb.append(e)
        cat = category_embedding(CATEGORY[0], CATEGORY[1], w, vocab, ranks)
    refs = {"input_ids": torch.tensor(ids, dtype=torch.int32),
            "n_used": torch.tensor(used, dtype=torch.int32),
            "last": torch.stack(last), "embeds": torch.stack(emb),
            "category": cat}
    save_safetensors(os.path.join(out, "refs.safetensors"), refs,
                     ["input_ids", "n_used", "last", "embeds", "category"])
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("wrote %s: %d texts, %d bytes" % (out, len(TEXTS), size))


if __name__ == "__main__":
    main()

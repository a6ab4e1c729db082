#!/usr/bin/python3
"""Reference files for tests/test_clip_tokenizer.c.

Writes tests/data/clip_tok/{vocab.json, merges.txt, cases.txt}:

- a small CLIP-style vocabulary: the 256 byte symbols of bytes_to_unicode
  and the same with "</w>", then one entry per merge, then
  "<|startoftext|>" and "<|endoftext|>" (the layout of openai/CLIP's
  vocabulary), with merges learned here by byte-pair encoding over the
  tiny CORPUS below (most frequent pair first, ties by the pair's text);
- expected ids of tricky strings, computed by a tokenizer written here
  from the published algorithm: Hugging Face CLIPTokenizer's cleanup when
  ftfy is not installed (BERT BasicTokenizer without accent stripping or
  punctuation splitting), the reference pre-tokenizer pattern, byte-level
  BPE by merge rank, start/end tokens, 77-token context with truncation
  keeping the end token, padding with the end token.

cases.txt: one case per line, "HEX<TAB>IDS<TAB>INPUT_IDS" where HEX is the
UTF-8 text in hex, IDS the ids without start/end tokens and INPUT_IDS the
77 model input ids (space-separated; "-" when empty). A "#" line above
each case shows the text for readers.

Needs python3-regex (Debian) for the pattern's \\p{L} / \\p{N} classes.
Usage: /usr/bin/python3 scripts/make_clip_tok_refs.py tests/data/clip_tok
"""
import collections
import json
import os
import sys
import unicodedata

import regex

CONTEXT = 77
SOT, EOT = "<|startoftext|>", "<|endoftext|>"
PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"""
    r"""[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)

CORPUS = """
a photo of a scratch on the surface. an image of a crack in the metal.
a close-up photo of a dent. a cropped photo of the broken hazelnut.
a photo of the damaged object, a photo of a hole, a photo of a stain.
don't stop: it's fine, we'll see, they're here, i've been, i'm done.
the cafe and the café, a naïve résumé, 3.14 and 1,000 pieces in 2024!
日本 日本 日本語 テキスト the photo photo photo image image of of of
a good photo of a small scratch and a large crack, a bad photo of glue.
""" * 3
N_MERGES = 300


def bytes_to_unicode():
    """Byte -> printable character: bytes in the printable Latin-1 ranges
    keep their code point, the others take 256, 257, ... in byte order."""
    keep = (list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) +
            list(range(0xAE, 0x100)))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    # The vocabulary order of openai/CLIP lists the kept bytes first.
    order = keep + [b for b in range(256) if b not in keep]
    return table, order


BYTE, BYTE_ORDER = bytes_to_unicode()


# ---- cleanup: Hugging Face CLIPTokenizer without ftfy ---------------------

def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or
            0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F or
            0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or
            0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def clean(text):
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        space = ch in " \t\n\r" or cat == "Zs"
        control = not space and cat.startswith("C")
        if ord(ch) in (0, 0xFFFD) or control:
            continue
        if space:
            out.append(" ")
        elif is_cjk(ord(ch)):
            out.append(" " + ch + " ")
        else:
            out.append(ch)
    text = unicodedata.normalize("NFC", "".join(out))
    return " ".join(w.lower() for w in text.split())


def pieces(text):
    """Split on the special-token strings first (case-sensitive, as an
    added-token trie does), then clean and pre-tokenize each chunk."""
    out, rest = [], text
    while rest:
        hits = [(rest.find(s), s) for s in (SOT, EOT) if s in rest]
        if not hits:
            chunk, special, rest = rest, None, ""
        else:
            pos, special = min(hits)
            chunk, rest = rest[:pos], rest[pos + len(special):]
        out += [(p, False) for p in PATTERN.findall(clean(chunk))]
        if special:
            out.append((special, True))
    return out


def bpe(symbols, ranks):
    word = list(symbols)
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def piece_symbols(piece):
    syms = [BYTE[b] for b in piece.encode("utf-8")]
    syms[-1] += "</w>"
    return syms


def tokenize(text, vocab, ranks):
    ids = []
    for piece, special in pieces(text):
        if special or piece in (SOT, EOT):
            ids.append(vocab[piece])
            continue
        for sym in bpe(piece_symbols(piece), ranks):
            ids.append(vocab.get(sym, vocab[EOT]))
    return ids


def model_input(ids, vocab):
    body = ids[:CONTEXT - 2]
    seq = [vocab[SOT]] + body + [vocab[EOT]]
    return seq + [vocab[EOT]] * (CONTEXT - len(seq))


# ---- a tiny vocabulary ---------------------------------------------------

def learn_merges(corpus, n):
    words = collections.Counter()
    for piece, _ in pieces(corpus):
        words[tuple(piece_symbols(piece))] += 1
    merges = []
    for _ in range(n):
        counts = collections.Counter()
        for w, c in words.items():
            for i in range(len(w) - 1):
                counts[(w[i], w[i + 1])] += c
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        new = collections.Counter()
        for w, c in words.items():
            new[tuple(bpe(w, {best: 0}))] += c
        words = new
    return merges


def build_vocab(merges):
    entries = [BYTE[b] for b in BYTE_ORDER]
    entries += [e + "</w>" for e in entries]
    entries += ["".join(m) for m in merges] + [SOT, EOT]
    vocab = {}
    for e in entries:
        if e not in vocab:
            vocab[e] = len(vocab)
    return vocab


CASES = [
    "a photo of a scratch",
    "A Close-Up Photo of a CRACKED hazelnut!",
    "don't stop, it's 2024... we'll see",
    "DON'T SHOUT, IT'S LOUD; they'RE 'sam's'",
    "café naïve résumé",
    "cafe\u0301 (decomposed e + combining acute)",
    "日本語のテキスト and 日本",
    "a \U0001F642 face \U0001F44D\U0001F3FD ok",
    "  many   spaces\tand\nnew lines\r\n  ",
    "3.14159 and 1,000,000 pcs x\u00b2+y\u00b3=z\u00bd",
    "hello!!! ?? (test) [x] {y} <z> #tag @user 100%",
    "a\x01b\x07c\u200bd\ufffde\x7f",  # no NUL: C strings end there
    "a<|endoftext|>b <|startoftext|>c <|ENDOFTEXT|>",
    "\u039f\u0394\u039f\u03a3 \u03a3\u0391\u03a3 \u03a3",
    "\u03a3\u0391\u03a3\u2018't \u03a3\u0391\u03a3.",  # sigma before ignorables
    "\u0130stanbul",
    "a\u00a0b\u2028c\u3000d",
    "&amp; stays as written",
    "\uff21\uff22\uff23 \ufb01le",
    "scratchscratchscratch photophoto",
    "",
    "   ",
    "a photo of a scratch " * 30,
]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/clip_tok"
    os.makedirs(out, exist_ok=True)
    merges = learn_merges(CORPUS, N_MERGES)
    vocab = build_vocab(merges)
    ranks = {m: i for i, m in enumerate(merges)}
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.write("".join("%s %s\n" % m for m in merges))
    with open(os.path.join(out, "cases.txt"), "w", encoding="utf-8") as f:
        for text in CASES:
            ids = tokenize(text, vocab, ranks)
            full = model_input(ids, vocab)
            f.write("# %s\n" % ascii(text[:60]))
            f.write("%s\t%s\t%s\n" % (
                text.encode("utf-8").hex() or "-",
                " ".join(map(str, ids)) or "-",
                " ".join(map(str, full))))
    print("%d merges, %d vocab entries, %d cases" % (
        len(merges), len(vocab), len(CASES)))


if __name__ == "__main__":
    main()

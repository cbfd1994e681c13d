"""LoRAs (and LyCORIS LoHa/LoKr/OFT): the family from module names and the widths they adapt.

Key formats are those ComfyUI's `comfy/lora.py` (`model_lora_keys_unet`, `model_lora_keys_clip`) and
`comfy/weight_adapter/` accept (yzkee/ComfyUI commit 783545f689a0af730065994b46b382ae24844c99):
kohya `lora_unet_*`/`lora_te{1,2}_*` (dots as underscores), diffusers/PEFT `unet.`/`transformer.`,
ComfyUI `diffusion_model.`, OneTrainer `lora_transformer_`, SimpleTuner `lycoris_`, diffusion-pipe
(HunyuanVideo `img_attn_qkv`), with adapters lora_down/up, lora_A/B, LoHa `hada_w*`, LoKr
`lokr_w1/w2` (the adapted weight is their Kronecker product) and OFT `oft_blocks`/`oft_diag`.

Widths come from the adapter shapes: a down projection's input is the adapted layer's input, and a
module's output is its up projection's rows (LoKr: the product of both factors; OFT: blocks x block
size). A family is decisive only on two independent facts (names of one network and a width that
only it has, or two structural facts); one key pattern or one width gives a guess.
"""
from __future__ import annotations

import re
from typing import Callable, Iterator, Mapping

from . import families as F
from .detection import Detection, Shape, found

# The last entries are XLabs/USO Flux LoRAs (`double_blocks.N.processor.qkv_lora1.down.weight`, which
# comfy/lora_convert.py `convert_uso_lora` maps to img_attn.qkv and friends).
_DOWN = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", "_lora.down.weight", ".lora_A.default.weight",
         ".down.weight")
_UP = (".lora_up.weight", ".lora_B.weight", ".lora.up.weight", "_lora.up.weight", ".lora_B.default.weight",
       ".up.weight")
_OTHER_ADAPTER = (".hada_w1_a", ".hada_w1_b", ".hada_w2_a", ".hada_w2_b", ".hada_t1", ".hada_t2",
                  ".lokr_w1", ".lokr_w2", ".lokr_w1_a", ".lokr_w1_b", ".lokr_w2_a", ".lokr_w2_b", ".lokr_t2",
                  ".oft_blocks", ".oft_diag", ".rescale", ".alpha", ".dora_scale", ".diff", ".diff_b",
                  ".lora_mid.weight", ".a1.weight", ".a2.weight", ".b1.weight", ".b2.weight")
ADAPTER_SUFFIXES = _DOWN + _UP + _OTHER_ADAPTER
_REPEATS = _UP + (".alpha", ".dora_scale")
LORA_MARKERS = ("lora_down", "lora_up", "lora_A.", "lora_B.", "lora.down", "lora.up", "hada_w", "lokr_w",
                ".oft_", "_lora1.down", "_lora2.down", "lora_unet_", "lora_te")

# Qwen-Image has 60 transformer_blocks, Flux 19: any block from 19 on (one search; no quantifier
# inside another, so linear on any text).
_DEEP_TRANSFORMER = re.compile(r"(?<!single_)(?<!joint_)transformer_blocks[._](?:19|[2-9][0-9]|[1-9][0-9][0-9])[._]")
# HunyuanVideo has 40 single-stream blocks, Flux 38.
_DEEP_SINGLE = re.compile(r"single_transformer_blocks[._](?:3[89]|[4-9][0-9])[._]")

_TE_PREFIXES = ("lora_te", "text_encoder", "te1.", "te2.", "te_", "text_encoders.", "lora_prior_te")
_UNET_BLOCKS = ("down_blocks", "up_blocks", "mid_block", "input_blocks", "output_blocks", "middle_block")
_FLUX1_CLASS = ("Flux1", "FluxKrea", "Flux1Kontext")
_FLUX2_CLASS = ("Flux2", "Flux2Klein_4B", "Flux2Klein_4B_base", "Flux2Klein_9B", "Flux2Klein_9B_base")
_SD3_WIDTHS = (1536, 2432)  # SD 3 / 3.5 Medium (24 x 64) and SD 3.5 Large (38 x 64)


def looks_like_lora(keys: Mapping[str, object] | list[str] | str) -> bool:
    """Adapter tensors among the keys (or in the joined key text)."""
    text = keys if isinstance(keys, str) else "\n".join(keys)
    # GLoRA (comfy/weight_adapter/glora.py): a1/a2/b1/b2 per module, searched as a pair.
    return any(m in text for m in LORA_MARKERS[:11]) or all(m in text for m in _GLORA_MARKERS)


_GLORA_MARKERS = (".a1.weight", ".b1.weight")


class LoraKeys:
    """Tensor names with fast substring queries: one joined string answers most questions in C,
    so detection stays cheap on LoRAs with thousands of keys. Parts are written with dots and also
    tried with underscores (kohya spells module paths with `_`)."""

    def __init__(self, tensors: Mapping[str, tuple[str, Shape]]):
        self.tensors = tensors
        # One key per adapted module is enough to search names (the up half, alpha and DoRA scale
        # repeat the module name), and a third of the text makes every search a third as long.
        self.text = "\n" + "\n".join(k for k in tensors if not k.endswith(_REPEATS)) + "\n"
        self._dims: dict[str, tuple[int | None, int | None]] = {}
        self._has: dict[tuple[str, ...], bool] = {}
        self._in: dict[str, bool] = {}
        self._modules: set[str] | None = None

    def module_ends(self, *tails: str) -> bool:
        """Whether some adapted module's name ends with one of `tails` (dotted, or kohya's `_`)."""
        if self._modules is None:
            self._modules = {module_of(k) for k in self.tensors}
        spelled = tails + tuple(t.replace(".", "_") for t in tails)
        return any(m.endswith(spelled) for m in self._modules)

    def contains(self, part: str) -> bool:
        """`part in text`, each part searched once per file."""
        hit = self._in.get(part)
        if hit is None:
            hit = self._in[part] = part in self.text
        return hit

    def _spellings(self, parts: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield parts
        under = tuple(p.replace(".", "_") for p in parts)
        if under != parts:
            yield under

    def keys_with(self, *parts: str, limit: int = 4096) -> Iterator[str]:
        """Keys containing every part (one spelling for all parts), in header order."""
        for spelled in self._spellings(parts):
            if not all(self.contains(p) for p in spelled):
                continue
            first, rest = spelled[0], spelled[1:]
            pos = self.text.find(first)
            seen = 0
            while pos != -1 and seen < limit:
                start = self.text.rfind("\n", 0, pos) + 1
                end = self.text.find("\n", pos)
                key = self.text[start:end]
                if all(p in key for p in rest):
                    yield key
                    seen += 1
                pos = self.text.find(first, end)

    def has(self, *parts: str) -> bool:
        hit = self._has.get(parts)
        if hit is None:
            hit = self._has[parts] = next(self.keys_with(*parts, limit=1), None) is not None
        return hit

    def has_block(self, blocks: str, *indices: int) -> bool:
        """Whether one of the blocks numbered `indices` of `blocks` (e.g. "double_blocks") is adapted."""
        text = self.text
        lead = ("\n", ".", "_") if blocks == "transformer_blocks" else ("",)
        return any(any(f"{c}{blocks}.{i}." in text or f"{c}{blocks}_{i}_" in text for c in lead) for i in indices
                   ) and (blocks != "transformer_blocks" or self._double_stream_at(indices))

    def _double_stream_at(self, indices: tuple[int, ...]) -> bool:
        """transformer_blocks.N (not single_/joint_transformer_blocks.N) for some N in `indices`."""
        for i in indices:
            for spelled in (f"transformer_blocks.{i}.", f"transformer_blocks_{i}_"):
                for key in self.keys_with(spelled, limit=64):
                    at = key.find(spelled)
                    while at != -1:
                        if not key.endswith(("single_", "joint_"), 0, at):
                            return True
                        at = key.find(spelled, at + 1)
        return False

    def has_deep_transformer(self) -> bool:
        return _DEEP_TRANSFORMER.search(self.text) is not None

    def dims(self, key: str) -> tuple[int | None, int | None]:
        """(in, out) widths of the layer the module of `key` adapts."""
        module = module_of(key)
        if module in self._dims:
            return self._dims[module]
        s = self.shape
        in_dim = out_dim = None
        for suffix in _DOWN:
            shape = s(module + suffix)
            if shape and len(shape) >= 2:
                in_dim = shape[1]
                break
        for suffix in _UP:
            shape = s(module + suffix)
            if shape and len(shape) >= 2:
                out_dim = shape[0]
                break
        if in_dim is None and out_dim is None:
            in_dim, out_dim = self._lycoris_dims(module)
        self._dims[module] = (in_dim, out_dim)
        return in_dim, out_dim

    def shape(self, name: str) -> Shape | None:
        entry = self.tensors.get(name)
        return entry[1] if entry is not None else None

    def _lycoris_dims(self, module: str) -> tuple[int | None, int | None]:
        s = self.shape
        w1b, w1a = s(module + ".hada_w1_b"), s(module + ".hada_w1_a")
        if w1b or w1a:
            return (w1b[1] if w1b and len(w1b) >= 2 else None), (w1a[0] if w1a and len(w1a) >= 2 else None)
        f1 = _factor(s, module + ".lokr_w1")
        f2 = _factor(s, module + ".lokr_w2")
        if f1 and f2:
            return f1[1] * f2[1], f1[0] * f2[0]
        blocks = s(module + ".oft_blocks") or s(module + ".oft_diag")
        if blocks and len(blocks) == 3:
            return None, blocks[0] * blocks[1]
        glora = _glora_dims(*(s(module + f".{n}.weight") for n in ("a1", "a2", "b1", "b2")))
        if glora != (None, None):
            return glora
        diff = s(module + ".diff")
        if diff and len(diff) >= 2:
            return diff[1], diff[0]
        return None, None

    def in_dim(self, *parts: str, unet_only: bool = False) -> int | None:
        for key in self.keys_with(*parts):
            if unet_only and key.startswith(_TE_PREFIXES):
                continue
            d = self.dims(key)[0]
            if d:
                return d
        return None

    def out_dim(self, *parts: str) -> int | None:
        for key in self.keys_with(*parts):
            d = self.dims(key)[1]
            if d:
                return d
        return None


def _glora_dims(a1: Shape | None, a2: Shape | None, b1: Shape | None,
                b2: Shape | None) -> tuple[int | None, int | None]:
    """GLoRA's (in, out) in either layout comfy/weight_adapter/glora.py (yzkee/ComfyUI 783545f6) loads.

    Old LyCORIS (diff = b2 @ b1 + W @ a2 @ a1): a1, b1 [rank, in], a2 [in, rank], b2 [out, rank].
    Current LyCORIS (lycoris/modules/glora.py: diff = b1 @ b2 + W @ a1 @ a2): a1 [in, rank],
    a2 [rank, in], b1 [out, rank], b2 [rank, in]. As ComfyUI does, a layout is the one whose rank
    positions agree (old: a1[0] = a2[1] = b1[0] = b2[1]; current: a1[1] = a2[0] = b1[1] = b2[0]).
    Where both agree ComfyUI asks the adapted weight's shape, which a LoRA file lacks: the layout
    with the smaller rank is taken (a rank is below the width it adapts). The widths are read from
    a1, b1 and b2; a2 only votes on the layout."""
    mats = [m if m and len(m) >= 2 else None for m in (a1, a2, b1, b2)]
    if not any(mats):
        return None, None
    old_rank = {m[i] for m, i in zip(mats, (0, 1, 0, 1), strict=True) if m}
    new_rank = {m[i] for m, i in zip(mats, (1, 0, 1, 0), strict=True) if m}
    old_ok, new_ok = len(old_rank) == 1, len(new_rank) == 1
    if old_ok and new_ok:
        new_ok = min(new_rank) < min(old_rank)
        old_ok = not new_ok
    fa1, _, fb1, fb2 = mats
    if old_ok:
        ins = [m[1] for m in (fa1, fb1) if m]
        return (ins[0] if ins else None), (fb2[0] if fb2 else None)
    if new_ok:
        ins = [m[i] for m, i in ((fa1, 0), (fb2, 1)) if m]
        return (ins[0] if ins else None), (fb1[0] if fb1 else None)
    return None, None


def _factor(s: Callable[[str], Shape | None], name: str) -> tuple[int, int] | None:
    """A LoKr factor's (rows, columns): the full matrix, or its low-rank pair _a [rows, r] _b [r, cols]."""
    full = s(name)
    if full and len(full) >= 2:
        return full[0], full[1]
    a, b = s(name + "_a"), s(name + "_b")
    if a and b and len(a) >= 2 and len(b) >= 2:
        return a[0], b[1]
    return None


def module_of(key: str) -> str:
    for suffix in ADAPTER_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key.rsplit(".", 1)[0] if "." in key else key


def detect_lora_keys(keys: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    """The first check that recognises the keys. The block names every file of a layout has pick
    the checks to run, so a LoRA costs a handful of scans of its key text, not one per family."""
    for check in _checks_for(keys.text):
        det = check(keys, meta)
        if det is not None:
            return det
    return None


# --- one check per family, most specific first ------------------------------------------------

def _hunyuan_video(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    if not (k.has("double_blocks") or k.has("single_blocks")):
        return None
    facts = []
    named = any(k.contains(m) for m in ("fc1", "refiner", "mod.linear", "mod_linear", "modulation.linear",
                                        "modulation_linear", "img_attn_qkv"))
    if named and any("double_blocks." in key for key in k.keys_with("img_attn_qkv", limit=1)):
        facts.append("img_attn_qkv in dotted keys (diffusion-pipe/musubi HunyuanVideo)")
    if named and (k.has("img_mlp.fc1") or k.has("txt_mlp.fc1")):
        facts.append("img_mlp.fc1 (HunyuanVideo MLP; Flux: img_mlp.0)")
    if named and k.has("individual_token_refiner"):
        facts.append("individual_token_refiner")
    if named and (k.has("img_mod.linear") or k.has("modulation.linear")):
        facts.append("img_mod.linear (Flux: img_mod.lin)")
    if k.has_block("double_blocks", 19) or k.has_block("single_blocks", 38, 39):
        facts.append("20 double / 40 single blocks (Flux has 19 / 38)")
    trained_on = (meta.get("ss_base_model_version", "") + " " + meta.get("modelspec.architecture", "")).lower()
    if "hunyuan" in trained_on:
        facts.append("trainer metadata names hunyuan")
    if not facts:
        return None
    return found("Hunyuan Video", "; ".join(facts), decisive=len(facts) >= 2,
                 confidence=0.95 if len(facts) >= 2 else 0.6)


def _flux(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    if not (k.has("double_blocks") or k.has("single_blocks")):
        return None
    if k.has("distilled_guidance_layer"):
        return found("Chroma", "Flux blocks with distilled_guidance_layer (Chroma)", decisive=True)
    h = k.in_dim("double_blocks", "img_attn", "qkv") or k.in_dim("double_blocks", "txt_attn", "qkv") \
        or k.in_dim("single_blocks", "linear1") or k.in_dim("double_blocks", "img_mlp.0") \
        or k.in_dim("double_blocks", "processor.qkv_lora") or k.in_dim("double_blocks", "img_attn.proj") \
        or k.in_dim("double_blocks", "txt_attn.proj") or k.out_dim("double_blocks", "img_attn.proj") \
        or k.out_dim("single_blocks", "linear2")
    if h == 6144:
        return found("Flux.2 D", "double/single blocks of width 6144 (Flux.2 [dev])", decisive=True)
    if h == 4096:
        return found("Flux.2 Klein 9B", "double/single blocks of width 4096 (Flux.2 [klein] 9B)", decisive=True,
                     candidates=("Flux2Klein_9B", "Flux2Klein_9B_base"), confidence=0.7)
    if h == 2048:  # HunyuanVideo 1.5 names its blocks like Flux, at width 2048
        return found("Hunyuan Video", "double_blocks of width 2048 (HunyuanVideo 1.5)", decisive=False, confidence=0.4)
    if h != 3072:
        return Detection(evidence=f"double/single blocks of width {h}: no family we know")
    l1_out = k.out_dim("single_blocks", "linear1")
    l2_in = k.in_dim("single_blocks", "linear2")
    mlp_out = k.out_dim("double_blocks", "img_mlp.0")
    flux2 = [f for f, hit in (("single linear1 out 9x width", l1_out == 9 * h),
                              ("single linear2 in 4x width", l2_in == 4 * h),
                              ("img_mlp.0 out 6x width (gated)", mlp_out == 6 * h)) if hit]
    if flux2:
        return found("Flux.2 Klein 4B", "width 3072 with Flux.2 MLP: " + ", ".join(flux2), decisive=True,
                     candidates=("Flux2Klein_4B", "Flux2Klein_4B_base"), confidence=0.7)
    flux1 = [f for f, hit in (("single linear1 out 7x width", l1_out == 7 * h),
                              ("single linear2 in 5x width", l2_in == 5 * h),
                              ("img_mlp.0 out 4x width", mlp_out == 4 * h),
                              ("6 to 19 double blocks", k.has_block("double_blocks", 5, 9, 13, 18)),
                              ("21 to 38 single blocks", k.has_block("single_blocks", 20, 29, 37))) if hit]
    # Per-block modulation (`img_mod.lin`): Flux.1 only (Flux.2 modulates globally, Chroma not at all).
    modulated = any(_is_lin(key) for part in ("img_mod", "txt_mod", "modulation") for key in k.keys_with(part, limit=8))
    if modulated:
        flux1.append("per-block modulation img_mod.lin")
    cands = _FLUX1_CLASS + (() if modulated else ("Chroma",))
    if flux1:
        return found("Flux.1 D", "width 3072 with Flux.1 blocks: " + ", ".join(flux1), decisive=True,
                     candidates=cands, confidence=0.7 if modulated else 0.6)
    return found("Flux.1 D", "double/single blocks of width 3072 (Flux.1, Chroma or Flux.2 [klein] 4B)",
                 decisive=False, candidates=cands + ("Flux2Klein_4B", "Flux2Klein_4B_base"), confidence=0.5)


def _is_lin(key: str) -> bool:
    """`*_mod.lin` / `modulation.lin` (Flux), not `*_mod.linear` (HunyuanVideo)."""
    for spelled in ("_mod.lin", "_mod_lin", "modulation.lin", "modulation_lin"):
        i = key.find(spelled)
        if i != -1 and not key.startswith("ear", i + len(spelled)):
            return True
    return False


def _sd3_width(hidden: int | None, medium: bool, evidence: str) -> Detection | None:
    if medium:
        return found("SD 3.5 Medium", evidence + " with x_block self-attention (SD 3.5 Medium)", decisive=True)
    if hidden == 2432:
        return found("SD 3.5 Large", evidence + " of width 2432 (SD 3.5 Large)", decisive=True, excludes=("SD 3",))
    if hidden == 1536:
        return found("SD 3", evidence + " of width 1536 (SD 3 Medium or SD 3.5 Medium)", decisive=True,
                     candidates=("SD3", "SD3_5M"), confidence=0.6, excludes=("SD 3.5 Large", "SD 3.5 Large Turbo"))
    return None


def _sd3(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    if not k.has("joint_blocks"):
        return None
    hidden = k.in_dim("joint_blocks", "x_block", "attn.qkv") or k.in_dim("joint_blocks", "context_block", "attn.qkv")
    det = _sd3_width(hidden, k.has("joint_blocks", "x_block.attn2"), "joint_blocks")
    return det or found("SD 3", f"joint_blocks of width {hidden}", decisive=False, candidates=("SD3", "SD3_5M"))


def _diffusers_dit(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    """Diffusers-named transformers: SD3, Flux, Flux.2, HunyuanVideo and Qwen-Image share
    `transformer_blocks.N.attn.to_q`/`add_q_proj`; Flux, Flux.2 and HunyuanVideo add
    `single_transformer_blocks`. Depth and widths tell them apart."""
    single = k.has("single_transformer_blocks")
    joint = k.has("transformer_blocks", "add_q_proj") or k.has("transformer_blocks", "add_k_proj") \
        or k.has("transformer_blocks", "add_v_proj")
    attn_only = not (single or joint) and k.has("transformer_blocks", "attn.to_")
    if not (single or joint or attn_only):
        return None
    if k.has("joint_transformer_blocks"):
        return None  # AuraFlow, below
    width = k.in_dim("transformer_blocks", "attn.to_q") or k.in_dim("transformer_blocks", "add_q_proj") \
        or k.in_dim("transformer_blocks", "attn.to_k") or k.in_dim("transformer_blocks", "add_k_proj") \
        or k.in_dim("transformer_blocks", "add_v_proj")
    if width == 6144:
        return found("Flux.2 D", "diffusers blocks of width 6144 (Flux.2 [dev])", decisive=True)
    if single:
        return _diffusers_single_stream(k, width)
    # SD3's MMDiT in diffusers names (SD3Transformer2DModel): 1536 or 2432 wide, where Qwen-Image and
    # Flux are 3072; SD 3.5 Medium adds a second self-attention `attn2` to its first 13 blocks.
    if width in _SD3_WIDTHS and (joint or k.has("transformer_blocks", "attn2")):
        return _sd3_width(width, k.has("transformer_blocks", "attn2"), "diffusers transformer_blocks")
    qwen = [f for f, hit in (("img_mod", k.has("transformer_blocks", "img_mod")),
                             ("img_mlp", k.has("transformer_blocks", "img_mlp")),
                             ("txt_mlp", k.has("transformer_blocks", "txt_mlp")),
                             ("more than 19 blocks (Flux has 19, Qwen-Image 60)", k.has_deep_transformer())) if hit]
    if qwen:
        sure = width == 3072 or len(qwen) >= 2
        return found("Qwen", "transformer_blocks with " + ", ".join(qwen) + f", width {width} (Qwen-Image)",
                     decisive=sure, confidence=0.95 if sure else 0.6)
    flux_mlp = k.has("transformer_blocks", "ff_context") or k.has("transformer_blocks", "norm1_context")
    if width == 3072 and attn_only and not flux_mlp:
        # Attention alone, no single-stream blocks: Qwen-Image's 60 double-stream blocks are all
        # there is of it, where a Flux LoRA also adapts its 38 single-stream blocks. A guess.
        return found("Qwen", "diffusers transformer_blocks attention of width 3072 without single-stream blocks",
                     decisive=False, candidates=("Qwen", "Chroma", "HyV1") + _FLUX1_CLASS, confidence=0.3)
    if width == 3072:
        return found("Flux.1 D", "diffusers transformer_blocks of width 3072 (Flux or Qwen-Image)", decisive=False,
                     candidates=_FLUX1_CLASS + ("Chroma", "Qwen", "HyV1"), confidence=0.5)
    if attn_only and not k.has("transformer_blocks", "attn2"):
        return None
    det = _sd3_width(width, k.has("transformer_blocks", "attn2"), "diffusers transformer_blocks")
    return det or found("SD 3", f"diffusers transformer_blocks with add_q_proj of width {width}", decisive=False,
                        candidates=("SD3", "SD3_5M"), confidence=0.3)


def _diffusers_single_stream(k: LoraKeys, width: int | None) -> Detection | None:
    if k.has("to_qkv_mlp_proj"):  # Flux.2's fused single-stream projection
        if width == 4096:
            return found("Flux.2 Klein 9B", "diffusers Flux.2 blocks of width 4096", decisive=True,
                         candidates=("Flux2Klein_9B", "Flux2Klein_9B_base"), confidence=0.7)
        return found("Flux.2 Klein 4B", f"diffusers Flux.2 blocks of width {width}", decisive=width == 3072,
                     candidates=("Flux2Klein_4B", "Flux2Klein_4B_base"), confidence=0.6)
    if width != 3072:
        return None
    hunyuan = [f for f, hit in (("token_refiner", k.has("token_refiner")),
                                ("20 double-stream blocks", k.has_deep_transformer()),
                                ("40 single-stream blocks", _DEEP_SINGLE.search(k.text) is not None)) if hit]
    if hunyuan:  # diffusers HunyuanVideoTransformer3DModel: 20 + 40 blocks (Flux: 19 + 38)
        return found("Hunyuan Video", "diffusers blocks of width 3072 with " + ", ".join(hunyuan), decisive=True,
                     confidence=0.95 if len(hunyuan) >= 2 else 0.9)
    flux = k.has_block("single_transformer_blocks", 20, 29, 37) or k.has_block("transformer_blocks", 5, 9, 13, 18)
    return found("Flux.1 D", "diffusers single_transformer_blocks + transformer_blocks of width 3072"
                 + (" (Flux depth)" if flux else ""), decisive=flux,
                 candidates=_FLUX1_CLASS + ("Chroma",) + (() if flux else ("HyV1",)), confidence=0.6)


def _auraflow(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    if not (k.has("double_layers") or k.has("single_layers") or k.has("joint_transformer_blocks")):
        return None
    width = k.in_dim("double_layers", "attn") or k.in_dim("joint_transformer_blocks", "attn.to_q") \
        or k.in_dim("single_layers", "attn")
    return found("AuraFlow", f"AuraFlow double_layers/single_layers, width {width}", decisive=width == 3072,
                 candidates=("AuraFlow", "PonyV7"), confidence=0.5)


# Wan by model dim: base model, candidates.
_WAN: dict[int, tuple[str, tuple[str, ...]]] = {
    1536: ("Wan Video 1.3B t2v", ("WanVideo1_3B_T2V", "WanVideo")),
    3072: ("Wan Video 2.2 TI2V-5B", ("WanVideo-22-TI2V-5B", "WanVideo")),
    5120: ("Wan Video 14B t2v", ("WanVideo14B_T2V", "WanVideo14B_I2V_480p", "WanVideo14B_I2V_720p",
                                 "WanVideo-22-T2V-A14B", "WanVideo-22-I2V-A14B", "WanVideo")),
}


# Wan's module names (ComfyUI comfy/ldm/wan/model.py: blocks.N.self_attn.q/k/v/o, cross_attn.*,
# ffn.0/ffn.2) and diffusers' WanTransformer3DModel's (blocks.N.attn1.to_q, attn2, ffn.net.0.proj).
_WAN_NATIVE = ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q", "cross_attn.k",
               "cross_attn.v", "cross_attn.o", "ffn.0", "ffn.2")
_WAN_DIFFUSERS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k",
                  "attn2.to_v", "attn2.to_out.0", "ffn.net.0.proj", "ffn.net.2")


def _wan(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    if not k.has("blocks") or any(k.has(b) for b in _NOT_BARE_BLOCKS):
        return None
    native = [t for t in _WAN_NATIVE if k.module_ends(t)]
    diffusers = [t for t in _WAN_DIFFUSERS if k.module_ends(t)]
    names = native or diffusers
    if not names:
        return None
    width = k.in_dim("blocks", "self_attn.q") or k.in_dim("blocks", "cross_attn.q") or k.in_dim("blocks", "attn1.to_q") \
        or k.in_dim("blocks", "self_attn") or k.in_dim("blocks", "cross_attn") or k.in_dim("blocks", "ffn.0") \
        or k.in_dim("blocks", "ffn.net.0.proj") or k.in_dim("blocks", "attn1") or k.in_dim("blocks", "attn2") \
        or k.out_dim("blocks", "ffn.2") or k.out_dim("blocks", "ffn.net.2")
    if width not in _WAN:
        return found("Wan Video", f"Wan blocks ({', '.join(names[:3])}) of width {width}", decisive=False,
                     candidates=tuple(g for g in F.GROUPS if g.startswith("WanVideo")), confidence=0.4)
    base, cands = _WAN[width]
    # ffn hidden: 8960 (1.3B), 14336 (2.2 TI2V-5B), 13824 (14B); a second fact beside the width.
    ffn = k.out_dim("blocks", "ffn.0") or k.out_dim("blocks", "ffn.net.0.proj") or k.in_dim("blocks", "ffn.2") \
        or k.in_dim("blocks", "ffn.net.2")
    facts = len(names) >= 2 or ffn == _WAN_FFN[width]
    i2v = k.has("cross_attn.k_img") or k.has("img_emb") or k.has("attn2.add_k_proj")
    if width == 5120 and i2v:
        base = "Wan Video 14B i2v 480p"
    evidence = f"Wan blocks ({', '.join(names[:3])}) of width {width}" + (f", ffn {ffn}" if ffn else "") \
        + (" with image cross-attention" if i2v else "")
    sure = facts and (ffn is None or ffn == _WAN_FFN[width])
    return found(base, evidence, decisive=sure, candidates=cands,
                 confidence=(0.8 if sure else 0.5) if width != 5120 else 0.4)


_WAN_FFN = {1536: 8960, 3072: 14336, 5120: 13824}
_NOT_BARE_BLOCKS = ("transformer_blocks", "double_stream_blocks", "single_stream_blocks")


# Anima (circlestone-labs/Anima, a Cosmos-Predict2 2B network): ComfyUI comfy/ldm/cosmos/predict2.py
# names blocks.N.self_attn.q_proj/k_proj/v_proj/output_proj, cross_attn.*, mlp.layer1/layer2 and
# adaln_modulation_*; Wan names the same places self_attn.q/k/v/o and ffn.0/ffn.2.
_COSMOS_NAMES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.output_proj",
                 "cross_attn.q_proj", "cross_attn.k_proj", "cross_attn.v_proj", "cross_attn.output_proj",
                 "mlp.layer1", "mlp.layer2", "adaln_modulation_self_attn.1", "adaln_modulation_cross_attn.1",
                 "adaln_modulation_mlp.1")


def _anima(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    if not k.has("blocks") or any(k.has(b) for b in _NOT_BARE_BLOCKS):
        return None
    names = [t for t in _COSMOS_NAMES if k.module_ends(t)]
    if not names:
        return None
    width = k.in_dim("blocks", "self_attn.q_proj") or k.in_dim("blocks", "cross_attn.q_proj") \
        or k.in_dim("blocks", "mlp.layer1") or k.out_dim("blocks", "self_attn.output_proj") \
        or k.out_dim("blocks", "cross_attn.q_proj")
    adapter = k.has("llm_adapter")
    facts = len(names) >= 2 or adapter
    # The Cosmos-Predict2 2B network Anima is trained from has the same blocks: "Other" stays a candidate.
    return found("Anima", f"Cosmos-Predict2 blocks ({', '.join(names[:3])}) of width {width}"
                 + (" + llm_adapter" if adapter else ""), decisive=facts, candidates=("Anima", "Other"),
                 confidence=0.7 if facts else 0.4)


def _hidream(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    if not (k.has("double_stream_blocks") or k.has("single_stream_blocks")):
        return None
    both = k.has("double_stream_blocks") and k.has("single_stream_blocks")
    return found("HiDream", "double_stream_blocks/single_stream_blocks (HiDream)", decisive=both)


def _lumina(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    """Lumina 2 / Z-Image: ComfyUI's NextDiT names (layers.N.attention.qkv, feed_forward.w1) or
    diffusers' Lumina2Transformer2DModel's (layers.N.attn.to_q, feed_forward.linear_1)."""
    if not (k.has("layers", "attention.qkv") or k.has("layers", "attention.to_q") or k.has("layers", "attn.to_q")
            or k.has("layers", "attn.to_k")):
        return None
    if not (k.has("feed_forward") or k.has("noise_refiner") or k.has("context_refiner")):
        return None
    width = k.in_dim("layers", "attention.qkv") or k.in_dim("layers", "attention.to_q") \
        or k.in_dim("layers", "attn.to_q") or k.in_dim("layers", "attn.to_k")
    if width == 3840:
        return found("ZImageTurbo", "Lumina 2 layers of width 3840 (Z-Image)", decisive=True,
                     candidates=("ZImageTurbo", "ZImageBase"), confidence=0.6)
    return found("Lumina", f"Lumina 2 layers of width {width}", decisive=width == 2304)


def _hunyuan_dit(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    if not (k.has("blocks", "attn1.Wqkv") or k.has("blocks", "attn2.kv_proj")):
        return None
    width = k.in_dim("blocks", "attn1.Wqkv") or k.in_dim("blocks", "attn2.q_proj")
    return found("Hunyuan 1", f"blocks.attn1.Wqkv/attn2.kv_proj of width {width} (Hunyuan DiT)",
                 decisive=width == 1408)


def _mochi(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    if not k.has("blocks", "qkv_x"):
        return None
    return found("Mochi", "blocks.attn.qkv_x (Mochi)", decisive=k.has("blocks", "qkv_y") or k.has("blocks", "proj_x"))


def _dit_with_cross_attention(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    """LTX-Video, LTX-2, PixArt and CogVideoX: transformer_blocks with attn1 and no UNet blocks."""
    if not k.has("transformer_blocks", "attn1"):
        return None
    if any(k.has(b) for b in _UNET_BLOCKS):
        return None
    audio = [m for m in ("audio_attn", "audio_to_video_attn", "video_to_audio_attn", "audio_ff") if k.has(m)]
    if audio:
        return found("LTXV2", "transformer_blocks with " + ", ".join(audio) + " (LTX-2)", decisive=True)
    width = k.in_dim("transformer_blocks", "attn1.to_q")
    cross = k.has("transformer_blocks", "attn2")
    if width == 1152 and cross:
        return found("PixArt E", "transformer_blocks attn1/attn2 of width 1152 (PixArt)", decisive=True,
                     candidates=("PixArtA", "PixArtE"), confidence=0.5)
    if width in (2048, 4096) and cross:
        cands = ("LTXV",) if width == 2048 else ("LTXV", "LTXV2")
        return found("LTXV", f"transformer_blocks attn1/attn2 of width {width} without UNet blocks (LTX-Video)",
                     decisive=True, candidates=cands, confidence=0.9 if width == 2048 else 0.6)
    if width in (1920, 3072) and not cross:
        return found("CogVideoX", f"transformer_blocks attn1 only, width {width} (CogVideoX)", decisive=False)
    return None


def _sd_unet(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    """SD1/SD2/SDXL: the cross-attention key projection reads the text embedding, so its input width
    is the text encoder's: 768 (CLIP-L), 1024 (OpenCLIP-H), 2048 (CLIP-L + bigG), 1280 (refiner)."""
    if not any(k.has(b) for b in _UNET_BLOCKS):
        return None
    ctx = k.in_dim("attn2.to_k", unet_only=True) or k.in_dim("attn2.processor.to_k_lora", unet_only=True)
    if ctx == 768:
        return found("SD 1.5", "UNet blocks with attn2.to_k input 768 (CLIP-L)", decisive=True)
    if ctx == 1024:
        return found("SD 2.1", "UNet blocks with attn2.to_k input 1024 (OpenCLIP-H)", decisive=True)
    if ctx == 2048 and k.has("self_attention", "query_key_value"):  # ChatGLM3, Kolors' text encoder
        return found("Kolors", "UNet attn2.to_k input 2048 + ChatGLM text-encoder layers (Kolors)", decisive=True)
    if ctx == 2048:
        return found("SDXL 1.0", "UNet blocks with attn2.to_k input 2048 (SDXL UNet)", decisive=True,
                     candidates=tuple(F.SDXL_ECOSYSTEM) + ("Kolors",), confidence=0.5)
    if ctx == 1280:
        return found("SDXL Refiner", "UNet blocks with attn2.to_k input 1280 (SDXL refiner)", decisive=True)
    if ctx is not None:
        return None
    # No cross-attention width (OFT adapts outputs only; or attn2 not trained): the block layout.
    te = _text_encoder_width(k)
    deep = k.has("transformer_blocks.1.")
    sd_layout = k.has("down_blocks.0.attentions") or k.has("input_blocks.1.1.") or k.has("up_blocks.3.attentions") \
        or k.has("output_blocks.11.1.")
    if deep or te == "sdxl":
        facts = [f for f, hit in (("transformer depth > 1 (SDXL)", deep), ("second text encoder", te == "sdxl")) if hit]
        return found("SDXL 1.0", "UNet blocks, " + ", ".join(facts), decisive=len(facts) == 2,
                     candidates=tuple(F.SDXL_ECOSYSTEM) + ("Kolors",), confidence=0.5)
    if sd_layout:
        width = k.out_dim("down_blocks.0.attentions") or k.out_dim("input_blocks.1.1.")
        small = width == 320
        if te == "sd1":
            return found("SD 1.5", "SD1/SD2 UNet layout + text encoder width 768", decisive=True)
        if te == "sd2":
            return found("SD 2.1", "SD1/SD2 UNet layout + text encoder width 1024", decisive=True)
        return found("SD 1.5", "UNet attention at the first level" + (" of width 320" if small else "")
                     + " (SD 1.x/2.x layout)", decisive=small, candidates=("SD1", "SD2"), confidence=0.6)
    return None


def _text_encoder_width(k: LoraKeys) -> str | None:
    if k.has("lora_te2_") or k.has("text_encoder_2."):
        return "sdxl"
    dim = k.in_dim("lora_te_", "k_proj") or k.in_dim("lora_te1_", "k_proj") or k.in_dim("text_encoder.", "k_proj") \
        or k.out_dim("lora_te_", "k_proj")
    return {768: "sd1", 1024: "sd2"}.get(dim or 0)


def _text_encoders(k: LoraKeys, meta: Mapping[str, str]) -> Detection | None:
    """Text-encoder-only evidence: weak (Flux and SD3 LoRAs may train CLIP too), never decisive."""
    te = _text_encoder_width(k)
    if te == "sdxl":
        return found("SDXL 1.0", "second text encoder (lora_te2_/text_encoder_2)", decisive=False,
                     candidates=tuple(F.SDXL_ECOSYSTEM), confidence=0.4)
    if te == "sd1":
        return found("SD 1.5", "text encoder width 768", decisive=False, confidence=0.4)
    if te == "sd2":
        return found("SD 2.1", "text encoder width 1024", decisive=False, confidence=0.4)
    if k.has("lora_unet_input_blocks_") or k.has("lora_unet_output_blocks_"):
        return found("SDXL 1.0", "kohya SDXL block names", decisive=False, candidates=tuple(F.SDXL_ECOSYSTEM),
                     confidence=0.3)
    return None


Check = Callable[[LoraKeys, Mapping[str, str]], Detection | None]
_FLUX_LAYOUT: tuple[Check, ...] = (_hunyuan_video, _flux)
_SD3_LAYOUT: tuple[Check, ...] = (_sd3,)
_JOINT_LAYOUT: tuple[Check, ...] = (_diffusers_dit, _auraflow)
_UNET_LAYOUT: tuple[Check, ...] = (_sd_unet, _text_encoders)
_OTHER_LAYOUT: tuple[Check, ...] = (_auraflow, _hidream, _anima, _wan, _lumina, _hunyuan_dit, _mochi,
                                    _dit_with_cross_attention, _text_encoders)
_ATTN_LAYOUT: tuple[Check, ...] = (_diffusers_dit,) + _OTHER_LAYOUT


def _checks_for(text: str) -> tuple[Check, ...]:
    if "double_blocks" in text or "single_blocks" in text:
        return _FLUX_LAYOUT
    if "joint_blocks" in text:
        return _SD3_LAYOUT
    # Context projections of MMDiT transformer_blocks (SD3, Flux, Qwen-Image, HunyuanVideo); Wan's
    # I2V image cross-attention in diffusers names is `blocks.N.attn2.add_k_proj` (transformer_wan.py).
    joint = "add_q_proj" in text or "add_k_proj" in text or "add_v_proj" in text
    if "single_transformer_blocks" in text or (joint and "transformer_blocks" in text):
        return _JOINT_LAYOUT
    if any(b in text for b in _UNET_BLOCKS):
        return _UNET_LAYOUT
    if "transformer_blocks" in text and ("attn.to_" in text or "attn_to_" in text):
        return _ATTN_LAYOUT  # MMDiT attention without its context projections (SD 3.5 M, Qwen-Image)
    return _OTHER_LAYOUT

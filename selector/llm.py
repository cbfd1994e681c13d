"""Analysis by a local LLM (Ollama), grounded in the library: it reads the prompt and a digest of the
models retrieved for it, and answers in a JSON schema whose model fields are enums of the digest's
ids, so it can only choose among real candidates. What it answers is checked again (ids, style,
numbers) and every pick still goes through compatibility: the plan never holds an incompatible
LoRA whatever the model says. Any failure (no server, too slow, bad JSON, unknown model, an answer
outside the schema) is a `LlmFailure` whose message the plan shows as its `fallback_reason`.

The official `ollama` client talks to `ollama.host`; a host that is not this machine receives the
prompt and the digest (titles, trigger words, tags of the candidates): the plan's reasons name it.
No API key is ever sent (the client would add `OLLAMA_API_KEY` from the environment; it is removed).
"""
from __future__ import annotations

import concurrent.futures
import ipaddress
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from ..metadata.records import ModelRecord
from . import vocabulary as V

log = logging.getLogger(__name__)

# LLM calls run here, never on ComfyUI's API workers' own time budget past their timeout
_CALLS = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="intelligent-ollama")
_CLIENTS: dict[tuple[str, float], Any] = {}
_CLIENTS_LOCK = threading.Lock()

NUM_CTX = 4096  # the context the model is asked to use; the digest is capped to fit in it
DIGEST_TOKENS = 2400  # of the digest (estimated), beside the instructions, the prompt and the answer
DIGEST_CHARS = 9600  # and at most this many characters
PROMPT_CHARS = 2000
MAX_LORA_CANDIDATES = 24
MAX_CHECKPOINT_CANDIDATES = 8
MAX_PICKS = 4
KEEP_ALIVE = "2m"  # loaded while plans are made; the sampler asks for it to be unloaded before sampling
ANSWER_CHARS = 20_000  # an answer longer than this is not read
LLM_CHECKPOINT_POINTS = 12.0  # what the LLM's checkpoint pick adds to its score: it decides between close ones

SYSTEM = (
    "You pick models for a text-to-image prompt from a user's own library. You get the prompt and a "
    "numbered list of candidate checkpoints (C...) and LoRAs (L...), each with its title, base model, "
    "trigger words and tags. Answer in the JSON schema given: the style of the image, its key concepts "
    "(short phrases from the prompt), the id of the best checkpoint or null, and the ids of the LoRAs "
    "that add what the prompt asks for (none is a fine answer: never pick a LoRA for something the "
    "prompt does not ask for, and never a character LoRA unless the prompt names that character)."
)


class LlmFailure(Exception):
    """Why the LLM's analysis could not be used (shown as the plan's `fallback_reason`)."""


@dataclass(frozen=True)
class Digest:
    """The candidates as the LLM sees them, by id."""

    text: str
    checkpoints: Mapping[str, ModelRecord]
    loras: Mapping[str, ModelRecord]


@dataclass(frozen=True)
class LlmAnswer:
    style: str | None
    key_concepts: tuple[str, ...]
    checkpoint: ModelRecord | None
    loras: tuple[ModelRecord, ...]
    host: str
    model: str
    dropped: tuple[str, ...] = field(default=())  # what of the answer was not used, in words


def _clean(text: str, limit: int) -> str:
    """One line of a model's own text for the digest: no control or line-separator characters
    (a title cannot start a line of its own, posing as another candidate), no `;`, spaces collapsed."""
    out = "".join(" " if (ord(c) < 32 or c in "\x7f\u2028\u2029\x85;") else c for c in text[:limit * 2])
    return " ".join(out.split())[:limit]


def estimate_tokens(text: str) -> int:
    """Tokens a text costs, estimated high: ASCII at four characters a token, anything else one each
    (CJK and emoji titles cost about a token a character)."""
    ascii_chars = sum(1 for c in text if c < "\x80")
    return ascii_chars // 4 + (len(text) - ascii_chars) + 1


def _line(prefix: str, r: ModelRecord) -> str:
    parts = [f"{prefix}: {_clean(r.title or r.stem, 80)}", f"base {_clean(r.base_model or 'unknown', 40)}"]
    if r.trigger_words:
        parts.append("triggers " + ", ".join(_clean(t, 40) for t in r.trigger_words[:3]))
    if r.tags:
        parts.append("tags " + ", ".join(_clean(t, 30) for t in r.tags[:8]))
    return "; ".join(parts)


def build_digest(checkpoints: Sequence[ModelRecord], loras: Sequence[ModelRecord]) -> Digest:
    """At most MAX_CHECKPOINT_CANDIDATES checkpoints and MAX_LORA_CANDIDATES LoRAs, best first, in
    at most DIGEST_TOKENS tokens and DIGEST_CHARS characters (the rest left out)."""
    lines: list[str] = []
    size = 0
    tokens = 0
    ck: dict[str, ModelRecord] = {}
    lo: dict[str, ModelRecord] = {}
    for prefix, records, out, cap in (("C", checkpoints, ck, MAX_CHECKPOINT_CANDIDATES),
                                      ("L", loras, lo, MAX_LORA_CANDIDATES)):
        for r in records[:cap]:
            ident = f"{prefix}{len(out) + 1}"
            line = _line(ident, r)
            cost = estimate_tokens(line)
            if size + len(line) + 1 > DIGEST_CHARS or tokens + cost > DIGEST_TOKENS:
                break
            lines.append(line)
            size += len(line) + 1
            tokens += cost
            out[ident] = r
    return Digest("\n".join(lines), ck, lo)


def answer_schema(digest: Digest) -> dict[str, Any]:
    """The JSON schema of the answer: model fields are enums of the digest's ids."""
    checkpoint: dict[str, Any] = {"type": ["string", "null"]}
    if digest.checkpoints:
        checkpoint["enum"] = [*digest.checkpoints, None]
    else:
        checkpoint = {"type": "null"}
    loras: dict[str, Any] = {"type": "array", "maxItems": MAX_PICKS}
    if digest.loras:
        loras["items"] = {"type": "string", "enum": list(digest.loras)}
    else:
        loras["maxItems"] = 0
    return {
        "type": "object",
        "properties": {
            "style": {"type": "string", "enum": list(V.STYLES)},
            "key_concepts": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 8},
            "checkpoint": checkpoint,
            "loras": loras,
        },
        "required": ["style", "key_concepts", "checkpoint", "loras"],
        "additionalProperties": False,
    }


def where(llm: Mapping[str, Any]) -> str:
    """The model and host of `candidates.llm`, as reasons name them (and when the host is another
    machine, that the prompt was sent there)."""
    off = "" if llm.get("local", True) else ", another machine: the prompt was sent there"
    return f"{llm.get('model')} at {llm.get('host')}{off}"


def is_local_host(host: str) -> bool:
    """Whether `host` (an Ollama URL) is this machine: a loopback address or `localhost`."""
    try:
        name = urlsplit(host if "//" in host else f"http://{host}").hostname or ""
    except ValueError:
        return False
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_answer(content: str, digest: Digest, host: str, model: str) -> LlmAnswer:
    """The answer checked against the schema's rules again: unknown ids and values are dropped
    (and said), a body that is not the JSON object asked for is a LlmFailure."""
    if len(content) > ANSWER_CHARS:
        raise LlmFailure(f"the answer is {len(content)} characters long, more than {ANSWER_CHARS}")
    try:
        data = json.loads(content)
    except (ValueError, RecursionError) as e:
        raise LlmFailure(f"the answer is not JSON ({type(e).__name__})") from None
    if not isinstance(data, dict):
        raise LlmFailure(f"the answer is a JSON {type(data).__name__}, not an object")
    dropped: list[str] = []
    style = data.get("style")
    if style not in V.STYLES:
        if style is not None:
            dropped.append(f"style {str(style)[:40]!r}")
        style = None
    concepts = data.get("key_concepts")
    kept = tuple(str(c).strip()[:60] for c in concepts[:8] if isinstance(c, str) and c.strip()) \
        if isinstance(concepts, list) else ()
    ckpt_id = data.get("checkpoint")
    checkpoint = digest.checkpoints.get(ckpt_id) if isinstance(ckpt_id, str) else None
    if ckpt_id is not None and checkpoint is None:
        dropped.append(f"checkpoint {str(ckpt_id)[:40]!r} (not a candidate)")
    picks: list[ModelRecord] = []
    raw = data.get("loras")
    for item in raw if isinstance(raw, list) else ():
        r = digest.loras.get(item) if isinstance(item, str) else None
        if r is None:
            dropped.append(f"LoRA {str(item)[:40]!r} (not a candidate)")
        elif r not in picks and len(picks) < MAX_PICKS:
            picks.append(r)
    return LlmAnswer(style, kept, checkpoint, tuple(picks), host, model, tuple(dropped[:20]))


def server_answers(host: str, timeout_s: float = 1.0) -> bool:
    """Whether an Ollama server answers `GET /api/version` at `host` within `timeout_s` (what
    `ollama.enabled: auto` asks before a plan uses it)."""
    import httpx

    try:  # (no proxy from the environment, no redirect: the host the user set, or nothing)
        r = httpx.get(host.rstrip("/") + "/api/version", timeout=timeout_s, follow_redirects=False, trust_env=False)
        return r.status_code == 200 and isinstance(r.json().get("version"), str)
    except Exception:  # (an unusable URL, a refused or slow connection, a body that is not Ollama's)
        return False


class OllamaAnalyst:
    """Asks an Ollama server (the official client) for the analysis, with a timeout."""

    def __init__(self, host: str, model: str, timeout_s: float) -> None:
        self.host = host
        self.model = model
        self.timeout_s = float(timeout_s)

    def _client(self) -> Any:
        """The client for this host and timeout, made once (making one builds an SSL context: ~15 ms)."""
        key = (self.host, self.timeout_s)
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(key)
        if client is not None:
            return client
        import ollama

        # the host the user set and nothing else: no proxy from the environment, no redirect
        client = ollama.Client(host=self.host, timeout=self.timeout_s, trust_env=False, follow_redirects=False)
        # never an API key: the client adds OLLAMA_API_KEY from the environment to every request
        client._client.headers.pop("authorization", None)
        with _CLIENTS_LOCK:
            if len(_CLIENTS) >= 8:  # (hosts and timeouts a user set over time)
                _CLIENTS.clear()
            _CLIENTS[key] = client
        return client

    def _chat(self, digest: Digest, user: str) -> Any:
        return self._client().chat(
            model=self.model, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            format=answer_schema(digest), options={"num_ctx": NUM_CTX, "temperature": 0}, keep_alive=KEEP_ALIVE)

    def analyse(self, prompt: str, digest: Digest) -> LlmAnswer:
        import httpx
        import ollama

        # the prompt as a JSON string after the candidates: no text of it can pose as a candidate line
        user = f"Candidates:\n{digest.text or '(none)'}\n\nPrompt (a JSON string): " \
               f"{json.dumps(prompt[:PROMPT_CHARS], ensure_ascii=False)}"
        # the timeout is the whole call's (httpx's applies to each read: a server sending a byte
        # at a time would never time out); the call goes on in its thread until httpx gives up
        future = _CALLS.submit(self._chat, digest, user)
        try:
            response = future.result(timeout=self.timeout_s + 0.5)
        except concurrent.futures.TimeoutError:
            raise LlmFailure(f"Ollama at {self.host} did not answer within {self.timeout_s:g} s") from None
        except ollama.ResponseError as e:
            text = str(getattr(e, "error", "") or e)[:200]
            if getattr(e, "status_code", None) == 404:
                raise LlmFailure(f"Ollama at {self.host} has no model {self.model!r} ({text})") from None
            raise LlmFailure(f"Ollama at {self.host} answered {getattr(e, 'status_code', '?')}: {text}") from None
        except ConnectionError:
            raise LlmFailure(f"no Ollama server answers at {self.host}") from None
        except httpx.TimeoutException:
            raise LlmFailure(f"Ollama at {self.host} did not answer within {self.timeout_s:g} s") from None
        except Exception as e:  # (an unusable URL, a body that is not Ollama's JSON object, ...)
            log.debug("ollama chat", exc_info=True)
            raise LlmFailure(f"Ollama at {self.host} failed: {type(e).__name__}") from None
        message = getattr(response, "message", None)
        content = getattr(message, "content", None)
        if not isinstance(content, str):
            raise LlmFailure(f"Ollama at {self.host} sent no message")
        return parse_answer(content, digest, self.host, self.model)

    def unload(self) -> None:
        """Ask the server to unload the model now (before sampling needs the memory); errors ignored."""
        try:
            self._client().generate(model=self.model, prompt="", keep_alive=0)
        except Exception as e:  # best effort: the server unloads it after KEEP_ALIVE anyway
            log.debug("ollama unload: %s", type(e).__name__)

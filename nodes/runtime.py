"""The pack's long-lived state inside ComfyUI: settings, the model index and the monitor.

Created once, lazily, on first use; the first library scan runs in a background thread so
ComfyUI's start is not held up, and anything that needs the index waits for that scan.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import folder_paths

from ..metadata.flags import FLAGS_FILE, FlaggedIndex, UserFlags
from ..metadata.index import ModelIndex, ScanResult
from ..metadata.records import FOLDER_KINDS
from ..monitor import ResourceMonitor
from ..selector.checkpoint_choice import CHECKPOINT_KINDS
from ..selector.llm import OllamaAnalyst, server_answers
from ..selector.meaning import Meaning, MiniLM, build_meaning, text_key, unavailable
from ..selector.scoring import warm_profiles
from ..settings import Settings, clean_stale_temp_files
from .first_scan import FirstScan

log = logging.getLogger(__name__)

# The index store (metadata/store.py): SQLite, in `index.cache_dir`. The JSON cache of earlier
# versions (intelligent-pipeline-index.json) is left where it is, unread: the store is rebuilt.
INDEX_STORE_FILE = "intelligent-pipeline-index.sqlite3"
# Retrieval by meaning (selector/meaning.py) is on when its packages are installed; this
# environment variable set to "off" turns it off (a machine where its CPU time is not wanted).
MEANING_ENV = "INTELLIGENT_PIPELINE_MEANING"
OLLAMA_PROBE_S = 30.0  # how long "a server answers at ollama.host" is believed (ollama.enabled: auto)


class FolderPathsModels:
    """Model roots as ComfyUI's folder_paths knows them (extra_model_paths.yaml included)."""

    def roots(self, kind: str) -> list[str]:
        try:
            return [os.path.abspath(p) for p in folder_paths.get_folder_paths(FOLDER_KINDS[kind])]
        except KeyError:
            return []

    def all_roots(self) -> list[str]:
        return [p for kind in FOLDER_KINDS for p in self.roots(kind)]


def _server() -> Any:
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)


def prompt_executing() -> bool:
    """Whether ComfyUI is executing a prompt now (its queue's running items)."""
    queue = getattr(_server(), "prompt_queue", None)
    if queue is None:
        return False
    running, _ = queue.get_current_queue_volatile()
    return bool(running)


class ServerEvents:
    """EventSink that publishes on ComfyUI's websocket; silent when no server runs."""

    def send(self, event: str, data: dict[str, Any]) -> None:
        """To every client (scan progress, monitor readings: nothing private)."""
        try:
            instance = _server()
            if instance is not None:
                instance.send_sync(event, data)
        except Exception:
            log.debug("event %r not sent", event, exc_info=True)

    def send_to_prompt_client(self, event: str, data: dict[str, Any]) -> bool:
        """To the client that queued the prompt now executing (ComfyUI sets `PromptServer.client_id`
        from the prompt's `client_id` for the run), and to nobody when it gave none."""
        try:
            instance = _server()
            client_id = getattr(instance, "client_id", None)
            if instance is None or not client_id:
                return False
            instance.send_sync(event, data, client_id)
            return True
        except Exception:
            log.debug("event %r not sent", event, exc_info=True)
            return False


class Runtime:
    def __init__(self) -> None:
        user_dir = folder_paths.get_user_directory()
        self.settings = Settings.in_user_dir(user_dir)
        self.models = FolderPathsModels()
        self.events = ServerEvents()
        cache_dir = self.settings.path_setting("index.cache_dir", os.path.join(user_dir, "default")) or \
            os.path.join(user_dir, "default")
        # temp files a killed write left behind (settings) in the folders we write; the store's own
        # -wal/-shm files are SQLite's, never removed here
        for folder in dict.fromkeys([*self.settings.temp_folders(), cache_dir]):
            clean_stale_temp_files(folder)
        self._rescans_waiting = 0  # explicit rescans (the rescan route) waiting for a scan or running
        self._rescans_lock = threading.Lock()
        self.index = ModelIndex(self.models, exclude_folders=self.settings.get("index.exclude_folders"),
                                cache_path=os.path.join(cache_dir, INDEX_STORE_FILE), events=self.events,
                                load_cache_now=False, busy=self._scan_should_pause)
        self.monitor = ResourceMonitor()
        # the user's own flags (excluded, favorite): their own file, never in the rebuildable index
        self.flags = UserFlags(os.path.join(user_dir, "default", FLAGS_FILE))
        self._scan_lock = threading.Lock()
        self._background_lock = threading.Lock()
        self._background: threading.Thread | None = None
        self.first_scan = FirstScan(
            lambda: threading.Thread(target=self._first_scan, name="intelligent-index", daemon=True).start())
        # retrieval by meaning: the LoRAs' vectors are built in the background after each scan
        off = os.environ.get(MEANING_ENV, "").strip().lower() in ("off", "0", "false", "no")
        self.meaning_unavailable = f"{MEANING_ENV} is off" if off else unavailable()
        self.meaning = Meaning(MiniLM()) if self.meaning_unavailable is None else None
        self._meaning_lock = threading.Lock()
        self._meaning_thread: threading.Thread | None = None
        self._meaning_again = False
        self._probe_lock = threading.Lock()
        self._ollama_probe: tuple[str, float, bool] | None = None  # (host, when, whether it answered)
        if self.meaning_unavailable:
            log.info("Intelligent Pipeline: LoRAs are found by their words only (%s)", self.meaning_unavailable)

    def analyst(self, use_ollama: str | None) -> OllamaAnalyst | None:
        """The Ollama analyst a plan asks, or None. A request's `use_ollama` "on"/"off" decides;
        "auto" (or none) follows the setting `ollama.enabled`: true asks always (a failure is the
        plan's fallback_reason), false never, auto when a server answers at `ollama.host` (looked
        up at most every OLLAMA_PROBE_S seconds, with a 1 s timeout)."""
        setting = self.settings.get("ollama.enabled")
        wanted = use_ollama if use_ollama in ("on", "off") else {True: "on", False: "off"}.get(setting, "auto")
        if wanted == "off":
            return None
        host = str(self.settings.get("ollama.host"))
        analyst = OllamaAnalyst(host, str(self.settings.get("ollama.model")), float(self.settings.get("ollama.timeout_s")))
        if wanted == "on":
            return analyst
        now = time.monotonic()
        with self._probe_lock:
            probe = self._ollama_probe
        if probe is None or probe[0] != host or now - probe[1] > OLLAMA_PROBE_S:
            probe = (host, now, server_answers(host))
            with self._probe_lock:
                self._ollama_probe = probe
        return analyst if probe[2] else None

    def plan_meaning(self) -> Meaning | None:
        """What plans use for retrieval by meaning: None until the library's vectors are built."""
        meaning = self.meaning
        return meaning if meaning is not None and meaning.index is not None else None

    def _build_meaning_soon(self) -> None:
        """(Re)build the LoRAs' vectors in the background; one build at a time, the last asked for wins."""
        if self.meaning is None:
            return
        with self._meaning_lock:
            if self._meaning_thread is not None and self._meaning_thread.is_alive():
                self._meaning_again = True
                return
            self._meaning_thread = threading.Thread(target=self._build_meaning, name="intelligent-meaning",
                                                    daemon=True)
            self._meaning_thread.start()

    def _build_meaning(self) -> None:
        meaning = self.meaning
        assert meaning is not None
        while True:
            try:
                generation = self.index.generation
                if meaning.index is None or meaning.index.generation != generation:
                    loras = self.index.records("lora")
                    built = build_meaning(loras, meaning.embedder, self.index, generation,
                                          pause=self._wait_while_executing)
                    # the model loaded here, not in the first plan (vectors all from the store load none)
                    meaning.embedder.embed(["a photo"])
                    meaning.index = built
                    log.info("Intelligent Pipeline: %d LoRAs searchable by meaning (%.1f MB)", len(built),
                             built.nbytes / 1e6)
                    self.index.prune_vectors({text_key(meaning.embedder.model_id, t) for t in built.texts})
            except Exception as e:  # one line; the planner works on words alone meanwhile
                log.error("Intelligent Pipeline: LoRA vectors not built: %s: %r", type(e).__name__, str(e))
                log.debug("meaning build", exc_info=True)
            with self._meaning_lock:
                if not self._meaning_again:
                    self._meaning_thread = None
                    return
                self._meaning_again = False

    def _wait_while_executing(self) -> None:
        """Embedding takes the CPU: wait while a prompt executes (checked every half second)."""
        while prompt_executing():
            threading.Event().wait(0.5)

    def _scan_should_pause(self) -> bool:
        """The index's `busy`: a background scan waits while a prompt executes, unless that prompt is
        what waits for it (our nodes, asking for the index during the first scan) or a rescan asked
        for explicitly waits behind it (the route would hang until the prompt ends)."""
        return self._rescans_waiting == 0 and prompt_executing() and not self.first_scan.waiting

    @contextmanager
    def _rescan_waiting(self) -> Iterator[None]:
        with self._rescans_lock:
            self._rescans_waiting += 1
        try:
            yield
        finally:
            with self._rescans_lock:
                self._rescans_waiting -= 1

    def start_first_scan(self) -> None:
        """Start the first library scan in the background (once, however often it is asked)."""
        self.first_scan.begin()

    def _first_scan(self) -> None:
        try:
            with self._scan_lock:
                self.index.load_cache()
                if sum(self.index.counts().values()):  # a stored index: plans use it during the re-check
                    self._warm()
                    self.first_scan.ready()
                result = self.index.scan(pausable=True)
            log.info("Intelligent Pipeline: indexed %d models in %.2f s", result.total, result.seconds)
            self._warm()
        except Exception as e:
            # one line (the message may hold a file name); the traceback at debug level
            log.error("Intelligent Pipeline: the first library scan failed: %s: %r", type(e).__name__, str(e))
            log.debug("first library scan", exc_info=True)
        finally:
            self.first_scan.finished()

    def ready_index(self) -> FlaggedIndex:
        """The index with the user's flags applied (what every plan uses), re-checked if
        `index.recheck_s` has passed. During the first scan this waits up to FIRST_SCAN_WAIT_S,
        then gives what is indexed so far (`index_warning()` says so for the plan)."""
        if not self.first_scan.wait() or not self.first_scan.done:
            return FlaggedIndex(self.index, self.flags)  # the first scan holds the lock: no re-check now
        recheck_s = float(self.settings.get("index.recheck_s"))
        # never wait for the lock here: a rescan route holding it may wait on a background scan
        # that waits for the prompt this call may be part of
        if self._scan_lock.acquire(blocking=False):
            try:
                # a changed exclude list (settings route or an edited file) applies without a restart
                self.index.set_exclude_folders(self.settings.get("index.exclude_folders"))
                # on the request path: folders whose mtime changed only (files added, removed, renamed)
                if self.index.recheck_if_due(recheck_s, quick=True):
                    self._build_meaning_soon()  # (the LoRAs it found get vectors in the background)
            finally:
                self._scan_lock.release()
        self._full_rescan_if_due(recheck_s)
        return FlaggedIndex(self.index, self.flags)

    def _full_rescan_if_due(self, recheck_s: float) -> None:
        """A full rescan (every file stat'ed: what a quick re-check cannot see, a file rewritten in
        place) in the background, at most one at a time, when the last is `recheck_s` old."""
        if not self.index.full_scan_due(recheck_s):
            return
        with self._background_lock:
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(target=self._background_rescan, name="intelligent-rescan",
                                                daemon=True)
            self._background.start()

    def _background_rescan(self) -> None:
        try:
            if self.index.scan(pausable=True).changed:
                self._warm()
        except Exception as e:
            log.error("Intelligent Pipeline: a background rescan failed: %s: %r", type(e).__name__, str(e))
            log.debug("background rescan", exc_info=True)

    def index_warning(self) -> str | None:
        """A warning for plans made while the first scan still runs, else None."""
        return self.first_scan.warning(sum(self.index.counts().values()))

    def rescan(self) -> ScanResult:
        """A full rescan now (the rescan route). A background scan it waits behind stops pausing for
        an executing prompt until this one is done."""
        with self._rescan_waiting():
            while not self.first_scan.wait():  # a rescan asked for during the first scan follows it
                pass
            with self._scan_lock:
                result = self.index.scan()
        if result.changed:
            self._warm(search=False)  # (on the route's path: the next search reads the postings in the background)
        return result

    def _warm(self, search: bool = True) -> None:
        """Tokenise the checkpoints for scoring now, so the first plan after a scan is as fast as the
        rest (every plan scores every checkpoint; a LoRA is tokenised when a plan first retrieves
        it, so a big library's LoRAs cost no memory for profiles no plan reads); `search`: and start
        reading the full-text index into memory in its own thread (candidate lookups in ~1 ms at
        50k; 2-3 s of CPU then, not while a prompt executes)."""
        warm_profiles(r for kind in CHECKPOINT_KINDS for r in self.index.records(kind))
        if search and not prompt_executing():
            self.index.prepare_search(background=True)  # (else the next search starts the read)
        self._build_meaning_soon()


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        with _runtime_lock:
            if _runtime is None:
                _runtime = Runtime()
    return _runtime

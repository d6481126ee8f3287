"""Chat requests to an OpenAI-compatible endpoint for the teacher and the judge.

One `ChatClient` per endpoint and concern: it sends chat completions through the ``openai``
client (which retries connection errors, 408/429 and 5xx answers ``max_retries`` times),
keeps non-empty responses in a `ResponseCache` on disk, and counts its work in `LLMUsage`
(requests sent, cache hits, errors, prompt/completion tokens from the responses' ``usage``,
seconds spent waiting). A request never raises: a failure comes back as a `ChatReply` with the
error text, the API key masked.

The cache is one JSON file per request, named by the sha256 of what decides the answer (API
root, model, messages, temperature, max_tokens), written atomically: an interrupted run leaves
whole entries or none, and a rerun with the same inputs sends no request. An entry that cannot
be read is taken as a miss and written again. The key is never part of an entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from geomas.errors import ConfigError
from geomas.io import atomic_write_text
from geomas.records import Reject

if TYPE_CHECKING:
    from openai import OpenAI

    from geomas.qa.records import QAPair

log = logging.getLogger(__name__)

MASK = "***"
#: Folder of the response cache next to qa_pairs.json when ``teacher.cache_dir`` is None.
CACHE_DIR_NAME = ".llm_cache"

_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
_DECODER = json.JSONDecoder()

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Endpoint:
    """Where and how chat requests go (no secrets: the key stays in the environment)."""

    base_url: str
    model: str
    api_key_env: str
    timeout_s: float
    max_retries: int
    temperature: float
    max_tokens: int
    workers: int


class LLMUsage(BaseModel):
    """What a client did: requests sent, cache hits, errors, tokens and seconds."""

    requests: int = 0
    cache_hits: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def minus(self, before: LLMUsage) -> LLMUsage:
        """The usage since `before` (a snapshot of the same client)."""
        return LLMUsage(**{k: getattr(self, k) - getattr(before, k)
                           for k in LLMUsage.model_fields})

    def report(self) -> dict[str, Any]:
        """The counts for a stage report, seconds rounded."""
        return {**self.model_dump(), "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class ChatReply:
    """One answer: the content, or the error; whether it came from the cache."""

    content: str | None = None
    error: str | None = None
    cached: bool = False


def api_key(env: str, field_name: str = "teacher.api_key_env") -> str:
    """The API key from the environment variable `env`.

    Raises:
        ConfigError: the variable is not set (the message names the variable, never a value).
    """
    key = os.environ.get(env, "")
    if not key:
        raise ConfigError(
            f"{field_name}={env!r}: environment variable {env} is not set; export it (any "
            "non-empty value for a local server without authentication)"
        )
    return key


def mask(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` replaced by `MASK`."""
    return text.replace(secret, MASK) if secret else text


class ResponseCache:
    """Responses on disk, one JSON file per request hash (``<folder>/<2 hex>/<hash>.json``)."""

    def __init__(self, folder: Path) -> None:
        """Use (and create on the first write) `folder`."""
        self.folder = Path(folder)

    @staticmethod
    def key(endpoint: Endpoint, messages: Sequence[dict[str, str]]) -> str:
        """sha256 of what decides the answer: API root, model, messages, temperature, tokens."""
        request = {
            "base_url": endpoint.base_url.rstrip("/"),
            "model": endpoint.model,
            "messages": list(messages),
            "temperature": endpoint.temperature,
            "max_tokens": endpoint.max_tokens,
        }
        text = json.dumps(request, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        """The file of one entry."""
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None when there is none or it cannot be read."""
        path = self.path(key)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("unreadable LLM cache entry %s (%s); asking again", path, exc)
            return None
        if not isinstance(value, dict) or not isinstance(value.get("content"), str):
            log.warning("LLM cache entry %s holds no content; asking again", path)
            return None
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store an entry atomically (a crash leaves the old entry or none)."""
        atomic_write_text(self.path(key), json.dumps(value, ensure_ascii=False))


@dataclass
class ChatClient:
    """Chat completions for one endpoint, with the cache and the usage counts.

    Thread-safe: the workers of `map_concurrently` share one client. Close it (or use it as a
    context manager) when the OpenAI client was made here.
    """

    endpoint: Endpoint
    cache: ResponseCache | None = None
    client: OpenAI | None = None
    key_field: str = "teacher.api_key_env"
    usage: LLMUsage = field(default_factory=LLMUsage)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _own: bool = field(default=False, repr=False)
    _secret: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        """Read the key (ConfigError when unset) and make the OpenAI client if none was given."""
        self._secret = api_key(self.endpoint.api_key_env, self.key_field)
        if self.client is None:
            from openai import OpenAI

            self.client = OpenAI(base_url=self.endpoint.base_url, api_key=self._secret,
                                 timeout=self.endpoint.timeout_s,
                                 max_retries=self.endpoint.max_retries)
            self._own = True

    def __enter__(self) -> ChatClient:
        """The client itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the OpenAI client if it was made here."""
        self.close()

    def close(self) -> None:
        """Close the OpenAI client if it was made here."""
        if self._own and self.client is not None:
            self.client.close()
            self._own = False

    def mask(self, text: str) -> str:
        """`text` with the API key masked."""
        return mask(text, self._secret)

    def snapshot(self) -> LLMUsage:
        """A copy of the usage counts so far."""
        with self._lock:
            return self.usage.model_copy()

    def ask(self, messages: Sequence[dict[str, str]]) -> ChatReply:
        """The model's answer to `messages` (from the cache when it has it)."""
        from openai import OpenAIError

        key = ResponseCache.key(self.endpoint, messages) if self.cache is not None else ""
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                with self._lock:
                    self.usage.cache_hits += 1
                return ChatReply(content=hit["content"], cached=True)
        assert self.client is not None
        t0 = time.perf_counter()
        try:
            response = self.client.chat.completions.create(
                model=self.endpoint.model,
                messages=list(messages),  # type: ignore[arg-type]
                temperature=self.endpoint.temperature,
                max_tokens=self.endpoint.max_tokens,
            )
        except OpenAIError as exc:
            with self._lock:
                self.usage.requests += 1
                self.usage.errors += 1
                self.usage.seconds += time.perf_counter() - t0
            return ChatReply(error=self.mask(f"{type(exc).__name__}: {exc}"))
        choices = getattr(response, "choices", None) or []
        content = choices[0].message.content if choices else None
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        with self._lock:
            self.usage.requests += 1
            self.usage.prompt_tokens += prompt
            self.usage.completion_tokens += completion
            self.usage.seconds += time.perf_counter() - t0
        if self.cache is not None and content and content.strip():
            self.cache.put(key, {"content": content, "model": self.endpoint.model,
                                 "usage": {"prompt_tokens": prompt,
                                           "completion_tokens": completion}})
        return ChatReply(content=content or "")


def map_concurrently(
    fn: Callable[[T], R], items: Sequence[T], workers: int, label: str, *, progress: bool
) -> list[R]:
    """`fn` over `items` in `workers` threads, results in input order, with progress."""
    from geomas.progress import track

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results: Iterator[R] = pool.map(fn, items)
        return list(track(results, label, total=len(items), unit="requests", bar=progress))


def parse_json(content: str) -> Any:
    """The first JSON value in a response: the whole text, a fenced block, or an embedded one.

    Models wrap JSON in ```json fences or put a sentence around it; the first ``[`` or ``{``
    from which a whole JSON value decodes wins. None when there is none.
    """
    text = content.strip()
    candidates = [text, *(m.group(1).strip() for m in _FENCE.finditer(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
    for m in re.finditer(r"[\[{]", text):
        try:
            return _DECODER.raw_decode(text, m.start())[0]
        except json.JSONDecodeError:
            continue
    return None


@dataclass
class LLMTaskResult:
    """Pairs after one LLM task, its rejects, per-outcome counts and the error threshold."""

    pairs: list[QAPair]
    rejects: list[Reject]
    stats: dict[str, Any] = field(default_factory=dict)
    max_error_ratio: float = 1.0
    task: str = "teacher"
    attempts: int = 0
    errors: int = 0
    hint: str = "check teacher.base_url, teacher.model and the server"

    @property
    def error_ratio(self) -> float:
        """API errors / items asked."""
        return self.errors / self.attempts if self.attempts else 0.0

    def failure_message(self) -> str | None:
        """Why the run should fail (API errors above the threshold), or None."""
        if self.error_ratio > self.max_error_ratio:
            return (
                f"{self.task} API errors for {self.errors} of {self.attempts} items "
                f"({self.error_ratio:.0%}), above teacher.max_error_ratio="
                f"{self.max_error_ratio:.0%}; {self.hint}"
            )
        return None


def count_outcomes(statuses: Iterable[str], names: Sequence[str]) -> dict[str, int]:
    """How many of `statuses` are each of `names` (zeros included)."""
    counts: dict[str, int] = dict.fromkeys(names, 0)
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return counts

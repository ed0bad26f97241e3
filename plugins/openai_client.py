"""HTTP for OpenAI-compatible servers: retries with backoff, a timeout, a concurrency limit and a rate limit.

The API key comes from the environment (``MEDBENCH_API_KEY``, else ``OPENAI_API_KEY``, or the variable named by the
``api_key_env`` option) and goes only into the Authorization header: never into an error, a log line or a record.
"""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

from medbench.errors import MedbenchError
from medbench.small_inputs import check_url

KEY_VARIABLES = ("MEDBENCH_API_KEY", "OPENAI_API_KEY")
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@dataclass
class ClientOptions:
    base_url: str | None = None  # the server, e.g. http://127.0.0.1:8000/v1 (required)
    timeout: float = 120.0  # seconds per request
    max_retries: int = 4  # further tries after a failed request (connection error, timeout, 429, 5xx)
    backoff: float = 1.0  # seconds before the first retry; doubles each time (with jitter), capped at 60
    concurrency: int = 4  # requests in flight at once
    rate_limit: float | None = None  # requests per second at most (e.g. 0.5 = 30 a minute); None: no limit
    api_key_env: str | None = None  # read the key from this variable instead of MEDBENCH_API_KEY / OPENAI_API_KEY

    def __post_init__(self):
        for name, low in (("timeout", 0), ("backoff", 0)):
            if not float(getattr(self, name)) > low:
                raise MedbenchError(f"backend option {name} must be positive, got {getattr(self, name)}",
                                    f"pass {name}=N with N > 0")
        if int(self.max_retries) < 0 or int(self.concurrency) < 1:
            raise MedbenchError(f"max_retries {self.max_retries} / concurrency {self.concurrency} out of range",
                                "pass --max-retries 0 or more and --concurrency 1 or more")
        if self.rate_limit is not None and not float(self.rate_limit) > 0:
            raise MedbenchError(f"--rate-limit must be positive, got {self.rate_limit}",
                                "pass --rate-limit N (requests per second), or leave it out")


def normalise_base_url(url: str | None) -> str:
    """``http://host:port`` becomes ``http://host:port/v1``; credentials or a query in the URL are refused (they
    would land in records)."""
    if not url:
        raise MedbenchError("a served model needs the server's address", "pass --base-url http://HOST:PORT/v1")
    check_url("--base-url", url)  # a port past 65535, an unclosed IPv6 host
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MedbenchError(f"--base-url {url!r} is not an http(s) URL", "pass --base-url http://HOST:PORT/v1")
    if parts.username or parts.password or parts.query:
        raise MedbenchError("--base-url carries credentials or a query string, which records would store",
                            f"put the key in ${KEY_VARIABLES[0]} and pass the bare URL")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class RateLimiter:
    """At most ``per_second`` starts per second, shared by every thread."""

    def __init__(self, per_second: float | None):
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next_start = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        time.sleep(max(0.0, start - now))


class ServerClient:
    def __init__(self, options: ClientOptions):
        import requests

        self.options = options
        self.base_url = normalise_base_url(options.base_url)
        self.limiter = RateLimiter(float(options.rate_limit) if options.rate_limit else None)
        self.local = threading.local()
        self.requests = requests
        self.sent = 0  # requests sent, retries included

    def _key(self) -> str | None:
        names = [self.options.api_key_env] if self.options.api_key_env else list(KEY_VARIABLES)
        return next((os.environ[name] for name in names if os.environ.get(name)), None)

    def _headers(self) -> dict[str, str]:
        key = self._key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _session(self):
        if not hasattr(self.local, "session"):
            self.local.session = self.requests.Session()
        return self.local.session

    def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """One request, retried on connection errors, timeouts, 429 and 5xx; a 4xx other than those fails at once."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        problem, retry_after = "", None
        for attempt in range(int(self.options.max_retries) + 1):
            if attempt:
                time.sleep(self._delay(attempt, retry_after))
            self.limiter.wait()
            self.sent += 1
            try:
                response = self._session().request(method, url, json=payload, headers=self._headers(),
                                                   timeout=float(self.options.timeout))
            except self.requests.Timeout:
                problem, retry_after = f"no answer within {self.options.timeout:g} s", None
                continue
            except self.requests.ConnectionError as exc:
                problem, retry_after = f"cannot connect ({type(exc).__name__})", None
                continue
            if response.ok:
                try:
                    return response.json()
                except ValueError:
                    problem = "the answer is not JSON"
                    continue
            problem = f"HTTP {response.status_code}: {_excerpt(response.text, self._key())}"
            retry_after = response.headers.get("Retry-After")
            if response.status_code in (401, 403):
                raise MedbenchError(f"{url} refused the request ({problem})",
                                    f"set ${KEY_VARIABLES[0]} (or ${KEY_VARIABLES[1]}) to a valid key")
            if response.status_code not in RETRYABLE_STATUS:
                raise MedbenchError(f"{method} {url} failed ({problem})",
                                    "check --model and the server's log; the request was not retried")
        raise MedbenchError(f"{method} {url} failed after {int(self.options.max_retries) + 1} tries ({problem})",
                            "check that the server is up and --base-url is right, or raise --max-retries / "
                            "--request-timeout")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after and retry_after.strip().isdigit():  # the server said how long to wait
            return min(float(retry_after), 60.0)
        return min(float(self.options.backoff) * 2 ** (attempt - 1), 60.0) * random.uniform(0.8, 1.2)

    def map(self, function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """``function`` over ``items`` with at most ``concurrency`` in flight, results in order."""
        if int(self.options.concurrency) <= 1 or len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=int(self.options.concurrency)) as pool:
            return list(pool.map(function, items))


def _excerpt(text: str, key: str | None, limit: int = 160) -> str:
    """The start of a server's error text, with the key blanked should the server echo it."""
    text = " ".join((text or "").split())
    return (text.replace(key, "***") if key else text)[:limit]

"""Is the MLflow store there, and may we write to it: the workflow's start-up check, the quick
reachability probe of a tracking server, and MLflow's errors put in one line that names the
tracking URI and where it came from (docs/tracking.md).

MLflow's HTTP client retries a failed request 7 times with a backoff that doubles from 4 s to
120 s (about four minutes, MLflow 3.17); jobs shorten that (`RETRY_DEFAULTS`, set unless the
environment sets them) because the tracker waits for a lost server on its own terms
(`_tracking.Tracker`, `THINET_MLFLOW_PATIENCE_S`) and then carries on offline.

>>> auth_message("http://127.0.0.1:5000", 401).split(":")[0:2]
['MLflow tracking server http', '//127.0.0.1']
"""
from __future__ import annotations

import os
import re
from typing import Any

ENV_URI = "MLFLOW_TRACKING_URI"
ENV_USER, ENV_PASSWORD = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"
# MLflow's own retries of one HTTP request: 3 tries more, waiting 0, 2 and 4 s (+ up to 1 s of jitter
# each), about 10 s in all for a server that refuses connections, instead of MLflow's four minutes.
RETRY_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
# The start-up check and the probes of a lost server: one try each, this long at most.
PROBE_TIMEOUT_S = 5.0


class TrackingError(RuntimeError):
    """The MLflow store cannot be used; the message names the tracking URI and where it came from."""


class TrackingUnavailable(TrackingError):
    """The tracking server does not answer (refused, timed out, or only 5xx errors)."""


class TrackingAuthError(TrackingError):
    """The tracking server refused the request's credentials (HTTP 401) or permissions (HTTP 403)."""


def set_retry_defaults() -> None:
    """MLflow's HTTP retries shortened (`RETRY_DEFAULTS`) unless the environment sets them."""
    for name, value in RETRY_DEFAULTS.items():
        os.environ.setdefault(name, value)


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def uri_source(uri: str) -> str:
    """Where the tracking URI came from, in words."""
    if os.environ.get(ENV_URI) == uri:
        return f"from the environment variable {ENV_URI}"
    return f"the default store, since {ENV_URI} is not set"


def where(uri: str) -> str:
    """`<uri> (<source>)`, the way every message of this module names the store."""
    return f"{uri} ({uri_source(uri)})"


def _chain(err: BaseException):
    seen = 0
    while err is not None and seen < 12:
        yield err
        err = err.__cause__ or err.__context__
        seen += 1


def is_unavailable(err: BaseException) -> bool:
    """Whether `err` says that the server did not answer (connection refused or reset, timeout, DNS,
    or only transient 5xx/429 answers until MLflow's retries ran out), not that it refused the call."""
    import requests
    import urllib3

    kinds = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError,
             urllib3.exceptions.MaxRetryError, urllib3.exceptions.NewConnectionError,
             urllib3.exceptions.ProtocolError, ConnectionError, TimeoutError)
    for e in _chain(err):
        if isinstance(e, kinds):
            return True
        status = _status(e)
        if status in (502, 503, 504):
            return True
    text = str(err)
    return any(s in text for s in ("Max retries exceeded", "Connection refused", "Failed to establish a new connection",
                                   "Read timed out", "Connection aborted", "RemoteDisconnected"))


def _status(err: BaseException) -> int | None:
    get = getattr(err, "get_http_status_code", None)
    if get is None:
        return None
    try:
        return int(get())
    except Exception:
        return None


def reason(err: BaseException | str) -> str:
    """The useful end of a connection error: '[Errno 111] Connection refused', 'timed out', ..."""
    text = str(err)
    found = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if found:
        return found.group(0).strip()
    for words in ("timed out", "too many 5", "too many 429", "Connection reset", "RemoteDisconnected"):
        if words in text:
            cut = text[text.index(words):]
            return cut.split("'")[0].split('"')[0].rstrip(").")
    return text if len(text) <= 240 else text[:240] + "..."


def _credentials() -> str:
    user = os.environ.get(ENV_USER)
    if user:
        return f"user {user!r} ({ENV_USER} and {ENV_PASSWORD} from the environment)"
    return f"no credentials ({ENV_USER} and {ENV_PASSWORD} are not set)"


def auth_message(uri: str, status: int, what: str = "the request") -> str:
    """One line for a 401/403 of the server at `uri`."""
    if status == 401:
        if os.environ.get(ENV_USER):
            advice = (f"the server did not accept the credentials of {_credentials()}: check them "
                      f"(they belong in the environment, never in a committed config)")
        else:
            advice = (f"the server requires credentials: set {ENV_USER} and {ENV_PASSWORD} in the environment "
                      f"(never in a committed config)")
        return f"MLflow tracking server {where(uri)} refused {what}: not authenticated (HTTP 401); {advice}"
    return (f"MLflow tracking server {where(uri)} refused {what}: permission denied (HTTP 403) for "
            f"{_credentials()}; ask the server's admin for EDIT permission on the experiment")


def auth_error(err: BaseException, uri: str) -> TrackingAuthError | None:
    """`err` as a TrackingAuthError when it is the server's 401/403, else None."""
    for e in _chain(err):
        status = _status(e)
        if status in (401, 403):
            return TrackingAuthError(auth_message(uri, status, _endpoint(str(e))))
    return None


def _endpoint(text: str) -> str:
    found = re.search(r"endpoint (/\S+)", text) or re.search(r"(/api/\S+)", text)
    return f"the request {found.group(1)}" if found else "the request"


def _get(uri: str, endpoint: str, timeout: float, **params: Any):
    """One GET (no retries) with the credentials MLflow would send (basic auth, token, TLS settings)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    return http_request(get_default_host_creds(uri), endpoint, "GET", max_retries=0, backoff_factor=0,
                        backoff_jitter=0, timeout=timeout, raise_on_status=False, params=params or None)


def probe(uri: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the server at `uri` answers GET /health with 200 within `timeout`, else why not."""
    try:
        answer = _get(uri, "/health", timeout)
    except Exception as err:
        return reason(err)
    if answer.status_code != 200:
        return f"GET /health answered HTTP {answer.status_code}"
    return None


def check_tracking_store(uri: str, experiment: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> str:
    """Fail fast, in one line naming the URI and its source, when the store cannot be used: a tracking
    server that does not answer GET /health within `timeout` s, or that refuses an authenticated read
    (the experiment looked up by name) for want of credentials or permission. Returns what was found.
    A local store (sqlite, file) is created by the workflow's first job and is not checked here.
    """
    if not is_server_uri(uri):
        return f"MLflow store {where(uri)}"
    why = probe(uri, timeout)
    if why is not None:
        raise TrackingUnavailable(
            f"MLflow tracking server {where(uri)} does not answer: {why} (GET {uri.rstrip('/')}/health, "
            f"{timeout:g} s). Start the server, or point {ENV_URI} at a running one (unset it to log to "
            f"results/mlflow.db)")
    try:
        answer = _get(uri, "/api/2.0/mlflow/experiments/get-by-name", timeout,
                      experiment_name=experiment or "Default")
    except Exception as err:
        raise TrackingUnavailable(f"MLflow tracking server {where(uri)} answers /health but not its API: "
                                  f"{reason(err)}") from None
    if answer.status_code in (401, 403):
        raise TrackingAuthError(auth_message(uri, answer.status_code, "an authenticated read"))
    if answer.status_code not in (200, 404):
        raise TrackingError(f"MLflow tracking server {where(uri)} answered HTTP {answer.status_code} to "
                            f"GET /api/2.0/mlflow/experiments/get-by-name: {answer.text[:200]}")
    return f"MLflow tracking server {where(uri)} answers, {_credentials()}"

"""Structured logging: one JSON object per line, the request id on every line, secrets never.

Code logs with ``log.info("event.name", extra={"fields": {...}})`` or the :func:`event` helper.
Field names that look like secrets (:func:`is_secret_field`) are masked whatever their value, and
known secret values registered with :func:`register_secret` are masked wherever they appear in a
message. Object keys (``key=``, ``object_key=``...) are not secrets and are logged in clear.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_base_factory = logging.getLogRecordFactory()


def _record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    # Stamp the request id when the record is made: a handler may format it on another thread.
    record = _base_factory(*args, **kwargs)
    if not hasattr(record, "request_id"):
        record.request_id = request_id_var.get()
    return record


logging.setLogRecordFactory(_record_factory)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SECRET_WORDS = (
    "secret",
    "password",
    "passwd",
    "token",
    "signature",
    "authorization",
    "credential",
    "cookie",
)
_SECRET_TOKENS = frozenset({"sig", "sign", "usersig", "pwd", "sk"})
_CLEAR_LAST_TOKENS = frozenset({"id", "ms", "s"})
OBJECT_KEY_FIELDS = frozenset(
    {"key", "object_key", "obj_key", "s3_key", "file_key", "storage_key", "probe_key", "src_key", "dest_key"}
)
"""Field names that hold object keys (``rec/a.mp4``): logged in clear although they end in "key"."""


def _field_name(name: str) -> str:
    """``SecretKey``, ``secretKey``, ``X-Api-Key`` -> ``secret_key``, ``secret_key``, ``x_api_key``."""
    return _CAMEL.sub("_", name).replace("-", "_").replace(" ", "_").lower()


def is_secret_field(name: str) -> bool:
    """Whether a field of this name holds a secret (masked whatever its value).

    Secrets: names with secret/password/token/signature/authorization/credential/cookie in them,
    ``sig``/``sign``/``usersig``/``sk`` words, and names ending in "key" (``secret_key``,
    ``access_key``, ``app_key``, ``api_key``, ``callback_key``...) except the object-key names in
    :data:`OBJECT_KEY_FIELDS`. Names ending in ``_id``/``_ms``/``_s`` (``secret_id``,
    ``token_ttl_s``) are identifiers and durations, not secrets.
    """
    n = _field_name(name)
    tokens = n.split("_")
    if tokens[-1] in _CLEAR_LAST_TOKENS:
        return False
    if any(w in n for w in _SECRET_WORDS) or not _SECRET_TOKENS.isdisjoint(tokens):
        return True
    return n.endswith("key") and n not in OBJECT_KEY_FIELDS


_MASK = "***"
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is masked if it ever reaches a log message."""
    if value and len(value) >= 8:
        _known_secrets.add(value)


def redact(value: Any, key: str = "") -> Any:
    if key and is_secret_field(key):
        return _MASK
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        for s in _known_secrets:
            if s in value:
                value = value.replace(s, _MASK)
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            out["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(redact(fields))
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        rid = request_id_var.get()
        fields = getattr(record, "fields", None)
        extra = " ".join(f"{k}={v}" for k, v in redact(fields).items()) if isinstance(fields, dict) else ""
        line = f"{record.levelname.lower():7} {record.name}: {redact(record.getMessage())}"
        if rid:
            line += f" request_id={rid}"
        if extra:
            line += " " + extra
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return str(line)


def setup_logging(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log duplicates ours (and would print query strings with signatures).
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    for noisy in ("aioice", "aiortc", "botocore", "urllib3", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    logger.log(level, name, extra={"fields": fields})

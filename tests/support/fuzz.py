"""Fuzzing every dialect of a live server with correctly signed, mutated requests.

Shared by the property tests (``tests/api/test_fuzz_*.py``, driven by hypothesis) and
``bench/fuzz.py`` (driven by a seeded ``random.Random``): both draw through :class:`Source`, so one
generator serves both and hypothesis can still shrink a failing case.

What is fuzzed is read from the running application, so every action or route added later joins
the set by itself: TRTC/TIW actions from the action registry (bodies built from each action's own
pydantic model, then mutated), SparkRTC routes from the routes using ``SparkRoute`` (bodies from
the dialect's request models), JOYY methods from the JOYY gateway, and the WHIP/WHEP routes.

A request "fails" when it gets a 5xx, the dialect's internal-error code, or an answer outside the
dialect's envelope; :class:`Outcome` says which.
"""

from __future__ import annotations

import base64
import enum
import importlib
import json
import pkgutil
import random
import socket
import time
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, quote_plus

import httpx
from fastapi.routing import APIRoute
from pydantic import BaseModel

from roomcast.api.sparkrtc import signing as spark_signing
from roomcast.api.sparkrtc.gateway import SparkRoute
from roomcast.api.trtc import signing as tc_signing
from roomcast.api.trtc.gateway import SERVICE_VERSIONS, ActionRegistry
from roomcast.domain.tenancy import App, Credentials
from roomcast.services.join_tokens import issue_jwt, issue_usersig

T = TypeVar("T")

DIALECTS = ("trtc-tc3", "trtc-v1", "sparkrtc", "iam", "joyy", "whip", "raw")


# ------------------------------------------------------------------------------------------ sources


class Source(Protocol):
    """Where random choices come from: hypothesis data (shrinkable) or a seeded ``random.Random``."""

    def integer(self, lo: int, hi: int) -> int: ...


class RandomSource:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


class HypothesisSource:
    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self._data = data
        self._st = st

    def integer(self, lo: int, hi: int) -> int:
        return int(self._data.draw(self._st.integers(lo, hi)))


def pick(src: Source, items: Sequence[T]) -> T:
    return items[src.integer(0, len(items) - 1)]


def chance(src: Source, percent: int) -> bool:
    return src.integer(0, 99) < percent


# ------------------------------------------------------------------------------------------- values

CHARS = [
    *"aZ09_-. /%*$&=+?#:;,@!~'\"\\",
    "\x00",
    "\x1f",
    "\x7f",
    "é",
    "²",
    "٣",
    "\u2028",
    "\ufeff",
    "😀",
    "\ud800",  # a lone surrogate: valid in JSON text, not encodable as UTF-8
]
SPECIAL_TEXT = [
    "",
    "0",
    "1",
    "-1",
    "2",
    "4294967295",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "true",
    "null",
    "[]",
    "{}",
    "../..",
    "a.*$",
    "x" * 300,
    " ",
    "v=0",
]
SPECIAL_INTS = [0, 1, 2, 3, 4, 5, -1, 30, 360, 640, 1440, 2**31, 2**63, -(2**63) - 1, 10**30]


def text(src: Source, max_len: int = 12) -> str:
    if chance(src, 25):
        return pick(src, SPECIAL_TEXT)
    return "".join(pick(src, CHARS) for _ in range(src.integer(0, max_len)))


def json_value(src: Source, depth: int = 0) -> Any:
    kind = src.integer(0, 9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return bool(src.integer(0, 1))
    if kind == 2:
        return pick(src, SPECIAL_INTS)
    if kind == 3:
        return src.integer(-1000, 100_000)
    if kind == 4:
        return pick(src, [0.5, -1.5, 1e300, float("inf"), float("nan"), 2.0])
    if kind in (5, 6):
        return text(src)
    if kind in (7, 8):
        return [json_value(src, depth + 1) for _ in range(src.integer(0, 3))]
    return {text(src, 6): json_value(src, depth + 1) for _ in range(src.integer(0, 3))}


def _int_like(src: Source, name: str) -> int:
    if chance(src, 50):
        return pick(src, SPECIAL_INTS[:10])
    return src.integer(-10, 2000)


def typed_value(src: Source, annotation: Any, name: str, depth: int) -> Any:
    """A value of roughly the declared type (so validation gets past the shape and into the checks)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return typed_value(src, args[0], name, depth)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)] or [type(None)]
        return typed_value(src, pick(src, options), name, depth)
    if origin is typing.Literal:
        return pick(src, list(args))
    if origin in (list, tuple, set, frozenset, Sequence):
        inner = args[0] if args else Any
        return [typed_value(src, inner, name, depth + 1) for _ in range(src.integer(0, 3))]
    if origin is dict:
        return {text(src, 6): json_value(src, depth + 1) for _ in range(src.integer(0, 2))}
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return model_doc(src, annotation, depth + 1) if depth < 8 else {}
        if issubclass(annotation, bool):
            return bool(src.integer(0, 1))
        if issubclass(annotation, enum.Enum):
            return pick(src, [m.value for m in annotation])
        if issubclass(annotation, int):
            return _int_like(src, name)
        if issubclass(annotation, float):
            return float(_int_like(src, name))
        if issubclass(annotation, str):
            if chance(src, 40):
                return str(src.integer(1, 10_000))
            return text(src, 16)
    if annotation is type(None):
        return None
    return json_value(src, depth)


def model_doc(src: Source, model: type[BaseModel], depth: int = 0) -> dict[str, Any]:
    """A body shaped like ``model``: required fields mostly present, optional ones sometimes."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if chance(src, 90 if info.is_required() else 35):
            default = info.get_default(call_default_factory=True)
            plain = default is None or isinstance(default, bool | int | float | str)
            if not info.is_required() and default is not None and plain and chance(src, 50):
                out[key] = default  # a valid value: gets validation past this field
            else:
                out[key] = typed_value(src, info.annotation, name, depth)
    return out


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


def mutate(src: Source, doc: Any, vocabulary: Sequence[str] = ()) -> Any:
    """Apply 0 to 3 random edits: retype or replace a value, drop or add a key, wrap, nest deep."""
    for _ in range(src.integer(0, 3)):
        paths = list(_paths(doc))
        path = pick(src, paths)
        op = src.integer(0, 7)
        if not path:
            if op == 0:
                doc = json_value(src)
            continue
        parent = _get(doc, path[:-1])
        key = path[-1]
        value = parent[key]
        if op in (0, 1):
            parent[key] = json_value(src)
        elif op == 2:
            parent[key] = str(value) if not isinstance(value, str) else pick(src, [[value], {"x": value}, 7])
        elif op == 3:
            del parent[key]
        elif op == 4 and isinstance(parent, dict):
            name = pick(src, list(vocabulary)) if vocabulary and chance(src, 60) else text(src, 8)
            parent[name] = json_value(src)
        elif op == 5:
            parent[key] = [value]
        elif op == 6:
            nested: Any = value
            for _ in range(src.integer(1, 200)):
                nested = [nested]
            parent[key] = nested
        else:
            parent[key] = pick(src, SPECIAL_INTS)
    return doc


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=True, allow_nan=True).encode()


def form(pairs: Sequence[tuple[str, str]]) -> str:
    """URL-encode, keeping lone surrogates as (invalid) UTF-8 bytes instead of failing client-side."""

    def enc(s: str) -> str:
        return quote_plus(s.encode("utf-8", "surrogatepass"))

    return "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)


def _clean(s: str) -> str:
    """What a client can sign: lone surrogates cannot be UTF-8 encoded, so none is sent."""
    return s.encode("utf-8", "replace").decode("utf-8")


def flat_pairs(src: Source, doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The GET/form spelling of ``doc`` (``A.0.B=v``), with odd keys mixed in sometimes."""
    pairs = list(tc_signing.flatten_params(doc).items())
    for _ in range(src.integer(0, 2)):
        if not pairs:
            break
        k, v = pick(src, pairs)
        odd = pick(
            src,
            [
                f"{k}.²",
                f"{k}.0",
                f"{k}.x",
                f"{k}..",
                f".{k}",
                f"{k}.99999999999999999999",
                k.replace(".", "_"),
                ".".join(["A"] * src.integer(2, 3000)),
                f"{k}.{text(src, 4)}",
            ],
        )
        pairs.append((odd, pick(src, [v, text(src)])))
    return pairs


# ------------------------------------------------------------------------------------------ outcome


@dataclass
class Outcome:
    dialect: str
    target: str
    status: int
    failed: bool
    detail: str = ""


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None


def trtc_outcome(dialect: str, target: str, r: httpx.Response) -> Outcome:
    data = _json(r)
    resp = data.get("Response") if isinstance(data, dict) else None
    err = resp.get("Error") if isinstance(resp, dict) else None
    code = err.get("Code", "") if isinstance(err, dict) else ""
    ok_shape = (
        r.status_code == 200
        and r.headers.get("content-type") == "application/json"
        and isinstance(resp, dict)
        and bool(resp.get("RequestId"))
    )
    failed = not ok_shape or code.startswith("InternalError")
    return Outcome(dialect, target, r.status_code, failed, f"{code} {r.text[:300]}" if failed else code)


def spark_outcome(dialect: str, target: str, r: httpx.Response) -> Outcome:
    data = _json(r)
    code = str(data.get("error_code", "")) if isinstance(data, dict) else ""
    # A path no route matches gets the framework's plain 404/405: not a dialect answer, not a failure.
    failed = r.status_code >= 500 or code == "RTC.00002001"
    if r.status_code >= 400 and r.status_code not in (404, 405) and not code:
        failed = True
    return Outcome(dialect, target, r.status_code, failed, r.text[:300] if failed else code)


def joyy_outcome(target: str, r: httpx.Response) -> Outcome:
    data = _json(r)
    ok_shape = isinstance(data, dict) and "code" in data and "traceId" in data
    unrouted = r.status_code in (404, 405) and not ok_shape  # the path matched no route at all
    failed = (
        r.status_code >= 500 or (not ok_shape and not unrouted) or (ok_shape and data["code"] in (2103, 2104))
    )
    code = str(data.get("code", "")) if isinstance(data, dict) else ""
    return Outcome("joyy", target, r.status_code, failed, r.text[:300] if failed else code)


def http_outcome(dialect: str, target: str, r: httpx.Response) -> Outcome:
    failed = r.status_code >= 500
    return Outcome(dialect, target, r.status_code, failed, r.text[:300] if failed else "")


# ------------------------------------------------------------------------------------------- fuzzer

JOYY_VOCABULARY = [
    "appid", "roomid", "resid", "recordid", "uid", "streamtype", "recordtype", "storagecfg", "vender",
    "endpoint", "bucket", "accesskey", "secretkey", "fileprefix", "mixconfig", "templateid", "input",
    "output", "layoutX", "layoutY", "layoutW", "layoutH", "zOrder", "crop", "videowidth", "videoheight",
    "videofps", "videogop", "videobitrate", "videoencode", "audiobitrate", "audiosample", "audiochannel",
    "audioformat", "patch", "watermark",
]  # fmt: skip
JOYY_EXTRA_METHODS = ["startrecord", "stoprecord", "updatemixrecord", "queryrecord/r/1", "x/../y", "%00", ""]


def spark_models() -> list[type[BaseModel]]:
    """Every request model declared in the SparkRTC dialect's modules (new modules included)."""
    import roomcast.api.sparkrtc as pkg

    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
        mod = importlib.import_module(info.name)
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == mod.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


def model_vocabulary(models: Sequence[type[BaseModel]]) -> list[str]:
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def walk(m: type[BaseModel]) -> None:
        if m in seen:
            return
        seen.add(m)
        for name, info in m.model_fields.items():
            names.add(info.alias or name)
            for t in _types_in(info.annotation):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    walk(t)

    for m in models:
        walk(m)
    return sorted(names)


def _types_in(annotation: Any) -> Iterator[Any]:
    yield annotation
    for a in typing.get_args(annotation):
        yield from _types_in(a)


def served_routes(routes: Sequence[Any], prefix: str = "") -> Iterator[tuple[APIRoute, str]]:
    """Every API route with its full path, looking inside included routers."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from served_routes(inner.routes, prefix + str(getattr(context, "prefix", "") or ""))
        elif isinstance(route, APIRoute):
            yield route, prefix + route.path


@dataclass
class Tenant:
    creds: Credentials
    app: App


@dataclass
class Fuzzer:
    """Sends one mutated request of a dialect per call and classifies the answer."""

    base_url: str
    app_state: Any  # the FastAPI app's ``state`` (registries), read to know what is served
    routes: list[Any]  # the app's routes (included routers are looked into)
    tenant: Tenant
    client: httpx.Client
    whip_offer: str = ""
    _token: str | None = None
    _spark_models: list[type[BaseModel]] = field(default_factory=list)
    _spark_vocab: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._spark_models = spark_models()
        self._spark_vocab = model_vocabulary(self._spark_models)

    @property
    def host(self) -> str:
        return self.base_url.removeprefix("http://")

    # ----------------------------------------------------------------------------- TRTC / TIW

    def trtc_targets(self) -> list[tuple[str, str]]:
        registry: ActionRegistry = self.app_state.trtc_registry
        return [(s, a) for s in SERVICE_VERSIONS for a in registry.names(s)]

    def _trtc_doc(self, src: Source, service: str, action: str) -> tuple[Any, list[str]]:
        registry: ActionRegistry = self.app_state.trtc_registry
        found = registry.find(service, SERVICE_VERSIONS[service], action)
        if found is None:
            return {text(src): json_value(src)}, []
        doc: Any = model_doc(src, found.model)
        if chance(src, 85):
            doc["SdkAppId"] = self.tenant.app.sdk_app_id
        if "UserSig" in found.model.model_fields and chance(src, 50):
            user = _clean(doc["UserId"]) if isinstance(doc.get("UserId"), str) and doc["UserId"] else "rec"
            doc["UserId"] = user
            doc["UserSig"] = issue_usersig(self.tenant.app, user)
        return mutate(src, doc, model_vocabulary([found.model])), model_vocabulary([found.model])

    def _pick_action(self, src: Source) -> tuple[str, str]:
        targets = self.trtc_targets()
        if not targets or chance(src, 3):
            return pick(src, list(SERVICE_VERSIONS)), pick(src, ["NoSuchAction", "", "Describe Foo"])
        return pick(src, targets)

    def trtc_tc3(self, src: Source) -> Outcome:
        service, action = self._pick_action(src)
        doc, _ = self._trtc_doc(src, service, action)
        style = pick(src, ["json", "json", "get", "form"])
        ts = int(time.time())
        headers = {
            "Host": self.host,
            "X-TC-Action": action,
            "X-TC-Version": SERVICE_VERSIONS[service],
            "X-TC-Timestamp": str(ts),
            "X-TC-Region": "ap-guangzhou",
        }
        query = ""
        body = b""
        if style == "json":
            headers["Content-Type"] = "application/json"
            body = dumps(doc) if not chance(src, 5) else pick(src, [b"{", b"\xff\xfe", b"[1]", b"", b"nul"])
            method = "POST"
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            flat = form(flat_pairs(src, doc if isinstance(doc, dict) else {"V": doc}))
            method = "GET" if style == "get" else "POST"
            if method == "GET":
                query = flat
            else:
                body = flat.encode()
        headers["Authorization"] = tc_signing.sign_tc3(
            tc_signing.HttpRequest(method, headers, body, query),
            secret_id=self.tenant.creds.secret_id,
            secret_key=self.tenant.creds.secret_key,
            service=service,
            timestamp=ts,
        )
        url = self.base_url + "/" + (f"?{query}" if query else "")
        r = self.client.request(method, url, content=body if method == "POST" else None, headers=headers)
        return trtc_outcome("trtc-tc3", f"{service}.{action} {style}", r)

    def trtc_v1(self, src: Source) -> Outcome:
        service, action = self._pick_action(src)
        doc, _ = self._trtc_doc(src, service, action)
        pairs = flat_pairs(src, doc if isinstance(doc, dict) else {"V": doc})
        pairs += [
            ("Action", action),
            ("Version", SERVICE_VERSIONS[service]),
            ("Region", "ap-guangzhou"),
            ("Timestamp", str(int(time.time()))),
            ("Nonce", str(src.integer(1, 2**62))),
            ("SecretId", self.tenant.creds.secret_id),
            ("SignatureMethod", pick(src, ["HmacSHA1", "HmacSHA256"])),
        ]
        # Keep the request signable: v1 refuses names that collide once "_" reads as "." (by design).
        seen: set[str] = set()
        unique = []
        for k, v in ((_clean(k), _clean(v)) for k, v in pairs):
            if k.replace("_", ".") not in seen:
                seen.add(k.replace("_", "."))
                unique.append((k, v))
        method = pick(src, ["GET", "POST"])
        sig = tc_signing.sign_v1(method, self.host, unique, self.tenant.creds.secret_key)
        query = form([*unique, ("Signature", sig)])
        if method == "GET":
            r = self.client.get(f"{self.base_url}/?{query}")
        else:
            r = self.client.post(
                self.base_url + "/",
                content=query.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        return trtc_outcome("trtc-v1", f"{service}.{action} {method}", r)

    # ------------------------------------------------------------------------------- SparkRTC

    def spark_routes(self) -> list[tuple[str, str]]:
        return [
            (m, path)
            for route, path in served_routes(self.routes)
            if isinstance(route, SparkRoute) and path != "/v3/auth/tokens"
            for m in sorted(route.methods or ())
        ]

    def _spark_path(self, src: Source, method: str, template: str) -> str:
        # The tenant's own app is never deleted or disabled: every later request needs it.
        own = [self.tenant.app.app_id] * 4
        if method == "DELETE" or template.endswith("/disable"):
            own = ["a" * 24]
        values = {
            "app_id": lambda: pick(src, [*own, text(src), "0" * 65]),
            "project_id": lambda: pick(src, [self.tenant.creds.project_id] * 3 + [text(src)]),
            "rest": lambda: "/".join(
                quote(_clean(text(src, 6) or "x"), safe="") for _ in range(src.integer(1, 3))
            ),
        }
        path = template
        while "{" in path:
            start = path.index("{")
            end = path.index("}", start)
            name = path[start + 1 : end].split(":")[0]
            raw = values.get(name, lambda: text(src, 10) or "r1")()
            segment = raw if name == "rest" else quote(_clean(raw), safe="")
            path = path[:start] + (segment or "x") + path[end + 1 :]
        return path

    def sparkrtc(self, src: Source) -> Outcome:
        routes = self.spark_routes()
        method, template = pick(src, routes)
        path = self._spark_path(src, method, template)
        query = ""
        if method == "GET" and chance(src, 50):
            names = ["state", "offset", "limit", text(src, 5)]
            query = form([(_clean(pick(src, names)), _clean(text(src, 6))) for _ in range(src.integer(1, 3))])
        body = b""
        if method in ("POST", "PUT") and chance(src, 90):
            model = pick(src, self._spark_models) if self._spark_models else None
            doc: Any = model_doc(src, model) if model is not None else {}
            doc = mutate(src, doc, self._spark_vocab)
            body = dumps(doc) if not chance(src, 5) else pick(src, [b"{", b"\xff", b"[]", b"null"])
        headers = {
            "Host": self.host,
            "Content-Type": "application/json;charset=UTF-8",
            "X-Sdk-Date": spark_signing.format_sdk_date(),
            "X-Project-Id": self.tenant.creds.project_id,
        }
        by_token = chance(src, 30)
        if by_token:
            headers["X-Auth-Token"] = self.iam_token()
        else:
            headers["Authorization"] = spark_signing.sign(
                spark_signing.HttpRequest(method, path, headers, body, query),
                access_key=self.tenant.creds.secret_id,
                secret_key=self.tenant.creds.secret_key,
            )
        url = self.base_url + path + (f"?{query}" if query else "")
        r = self.client.request(method, url, content=body or None, headers=headers)
        return spark_outcome("sparkrtc", f"{method} {template}", r)

    def iam_token(self) -> str:
        if self._token is None:
            r = self.client.post(self.base_url + "/v3/auth/tokens", json=self._iam_doc())
            r.raise_for_status()
            self._token = r.headers["X-Subject-Token"]
        return self._token

    def _iam_doc(self) -> dict[str, Any]:
        return {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.tenant.creds.secret_id,
                            "password": self.tenant.creds.secret_key,
                            "domain": {"name": self.tenant.creds.account_id},
                        }
                    },
                },
                "scope": {"project": {"id": self.tenant.creds.project_id, "name": "p"}},
            }
        }

    def iam(self, src: Source) -> Outcome:
        doc = mutate(src, self._iam_doc(), ["auth", "identity", "scope", "project", "domain", "user"])
        body = dumps(doc) if not chance(src, 5) else pick(src, [b"{", b"\xff", b""])
        r = self.client.post(
            self.base_url + "/v3/auth/tokens", content=body, headers={"Content-Type": "application/json"}
        )
        return spark_outcome("iam", "POST /v3/auth/tokens", r)

    # ----------------------------------------------------------------------------------- JOYY

    def joyy(self, src: Source) -> Outcome:
        served = sorted(self.app_state.jocloud.methods)
        method = pick(src, served + JOYY_EXTRA_METHODS if chance(src, 10) else served)
        doc: Any = {
            k: json_value(src) for k in (pick(src, JOYY_VOCABULARY) for _ in range(src.integer(0, 5)))
        }
        if chance(src, 60):
            doc["roomid"] = text(src, 10) or "r1"
        if chance(src, 30):
            doc["appid"] = pick(src, [self.tenant.app.sdk_app_id, str(self.tenant.app.sdk_app_id), text(src)])
        doc = mutate(src, doc, JOYY_VOCABULARY)
        body = dumps(doc) if not chance(src, 5) else pick(src, [b"{", b"\xff", b"[]"])
        token = base64.b64encode(f"{self.tenant.creds.secret_id}:{self.tenant.creds.secret_key}".encode())
        app = self.tenant.app.sdk_app_id if chance(src, 95) else quote(_clean(text(src, 5)), safe="")
        trace = f"t{src.integer(0, 10**9)}"
        url = f"{self.base_url}/app/{app}/v1/recordoss/{quote(method, safe='/%')}?traceId={trace}"
        verb = "POST" if chance(src, 90) else "GET"
        r = self.client.request(
            verb,
            url,
            content=body if verb == "POST" else None,
            headers={"Token": "Basic " + token.decode(), "Content-Type": "application/json"},
        )
        return joyy_outcome(f"{verb} {method}", r)

    # ------------------------------------------------------------------------------ WHIP/WHEP

    def whip(self, src: Source) -> Outcome:
        kind = pick(src, ["whip", "whep"])
        room = pick(src, ["fuzz", "fuzz", text(src, 8) or "r"])
        user = pick(src, ["u1", "u2", text(src, 8) or "u"])
        path = f"/rtc/{kind}/{self.tenant.app.sdk_app_id}/"
        path += f"{quote(_clean(room), safe='')}/{quote(_clean(user), safe='')}"
        token = issue_jwt(self.tenant.app, _clean(user), room_id=_clean(room)) if chance(src, 90) else "x"
        lines = self.whip_offer.split("\r\n")
        for _ in range(src.integer(0, 4)):
            op = src.integer(0, 4)
            i = src.integer(0, max(len(lines) - 1, 0))
            if op == 0 and lines:
                del lines[i]
            elif op == 1:
                lines.insert(
                    i, pick(src, ["m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:" + text(src, 3), text(src)])
                )
            elif op == 2 and lines:
                lines[i] = lines[i][: src.integer(0, len(lines[i]))]
            elif op == 3:
                lines = pick(src, [["v=0"], [""], [text(src, 30)], ["v=0", "m=audio 9 RTP/AVP 0"]])
        offer = "\r\n".join(lines)
        query = pick(
            src,
            [
                "",
                "",
                "?kinds=audio",
                "?kinds=" + quote(_clean(text(src, 6))),
                "?publisher=" + quote(_clean(text(src, 4))),
            ],
        )
        ctype = pick(src, ["application/sdp"] * 8 + ["text/plain", ""])
        r = self.client.post(
            self.base_url + path + query,
            content=offer.encode("utf-8", "surrogatepass"),
            headers={"Content-Type": ctype, "Authorization": f"Bearer {token}"},
        )
        if r.status_code == 201 and r.headers.get("location"):
            self.client.delete(
                self.base_url + r.headers["location"], headers={"Authorization": f"Bearer {token}"}
            )
        return http_outcome("whip", f"POST {kind}", r)

    # ------------------------------------------------------------------------------------ raw

    def raw(self, src: Source) -> Outcome:
        """Requests no client library would send: deep nesting, odd paths, huge or broken bodies."""
        case = src.integer(0, 6)
        if case == 6:
            return self._raw_socket(src)
        depth = pick(src, [100, 1000, 100_000])
        deep = (b"[" * depth + b"]" * depth) if chance(src, 50) else (b'{"a":' * depth + b"1" + b"}" * depth)
        if case == 0:
            return trtc_outcome("raw", f"tc3 deep {depth}", self._tc3_raw(deep))
        if case == 1:
            token = base64.b64encode(f"{self.tenant.creds.secret_id}:{self.tenant.creds.secret_key}".encode())
            r = self.client.post(
                f"{self.base_url}/app/{self.tenant.app.sdk_app_id}/v1/recordoss/applyrecord",
                content=deep,
                headers={"Token": "Basic " + token.decode(), "Content-Type": "application/json"},
            )
            return joyy_outcome(f"deep {depth}", r)
        if case == 2:
            r = self.client.post(self.base_url + "/v3/auth/tokens", content=deep)
            return spark_outcome("raw", f"iam deep {depth}", r)
        if case == 3:
            path = pick(
                src,
                [
                    "/media/%00",
                    "/media/a%00b",
                    "/%00",
                    f"/app/{self.tenant.app.sdk_app_id}/v1/recordoss/%00",
                    "/v2/apps/%00",
                    f"/v2/apps/{self.tenant.app.app_id}/rooms/%00/dismiss",
                    "/rtc/whip/%00/%00/%00",
                    "/media/..%2f..%2fetc%2fpasswd",
                    "/media/" + "a" * 5000,
                ],
            )
            verb = pick(src, ["GET", "POST", "DELETE"])
            return http_outcome("raw", f"{verb} {path}", self.client.request(verb, self.base_url + path))
        if case == 4:
            big = b'{"a":"' + b"x" * pick(src, [2 * 1024 * 1024, 13 * 1024 * 1024]) + b'"}'
            return trtc_outcome("raw", f"tc3 big {len(big)}", self._tc3_raw(big))
        r = self.client.post(
            self.base_url + "/v2/apps", content=deep, headers={"Content-Type": "application/json"}
        )
        return spark_outcome("raw", f"spark unsigned deep {depth}", r)

    def _raw_socket(self, src: Source) -> Outcome:
        """Bytes no HTTP client would send. A closed connection is a fair answer to broken HTTP; a
        5xx is not."""
        host, _, port = self.host.partition(":")
        deep = b"[" * 50_000 + b"]" * 50_000
        request = pick(
            src,
            [
                b"GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"POST /rtc/whip/1/r/u HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n"
                b"Authorization: Bearer x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nv=0\r\n\r\nzz\r\n",
                b"POST /app/1/v1/recordoss/applyrecord HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{",
                b"POST /v3/auth/tokens HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + f"{len(deep):x}".encode()
                + b"\r\n"
                + deep
                + b"\r\n0\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: \x00\r\n\r\n",
                b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET / HTTP/9.9\r\n\r\n",
                b"\x16\x03\x01\x00\xa5\x01\x00\x00",  # a TLS hello on the plain port
                b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            ],
        )
        status = 0
        with socket.create_connection((host, int(port)), timeout=20) as sock:
            try:
                sock.sendall(request)
                head = sock.recv(64)
            except OSError:
                head = b""
        if head.startswith(b"HTTP/1.1 "):
            status = int(head[9:12])
        return Outcome("raw", f"socket {request[:30]!r}", status, status >= 500, head[:60].decode("latin-1"))

    def _tc3_raw(self, body: bytes) -> httpx.Response:
        ts = int(time.time())
        headers = {
            "Host": self.host,
            "Content-Type": "application/json",
            "X-TC-Action": "DescribeCloudRecording",
            "X-TC-Version": "2019-07-22",
            "X-TC-Timestamp": str(ts),
        }
        headers["Authorization"] = tc_signing.sign_tc3(
            tc_signing.HttpRequest("POST", headers, body),
            secret_id=self.tenant.creds.secret_id,
            secret_key=self.tenant.creds.secret_key,
            service="trtc",
            timestamp=ts,
        )
        return self.client.post(self.base_url + "/", content=body, headers=headers)

    def send(self, dialect: str, src: Source) -> Outcome:
        handler: Callable[[Source], Outcome] = getattr(self, dialect.replace("-", "_"))
        return handler(src)

    def alive(self) -> bool:
        try:
            return self.client.get(self.base_url + "/healthz", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False


def sdp_offer() -> str:
    """A real WebRTC offer (audio + video) made by aiortc, to mutate."""
    import asyncio

    from aiortc import RTCPeerConnection

    async def make() -> str:
        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="sendrecv")
        pc.addTransceiver("video", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return str(sdp)

    return asyncio.run(make())

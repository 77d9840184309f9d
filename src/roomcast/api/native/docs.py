"""``/docs``: Swagger UI served by roomcast itself (works offline) over one OpenAPI document that
covers the native API and every dialect route, with request examples.

The Swagger UI files come from the ``swagger-ui-bundle-v2`` package (no CDN). Dialect routes
that share one path (TRTC's API 3.0 ``POST /``) or catch a path pattern (JOYY's methods) are
described here from their registries, so a newly registered action or method shows up by itself.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from roomcast import __version__
from roomcast.api.trtc.gateway import SERVICE_VERSIONS

ASSETS = "/docs/assets"

DESCRIPTION = """\
roomcast serves several cloud RTC dialects on one engine, and its own native API.

* **native** (`/api/v1`): HTTP Basic with a key pair (`secret_id:secret_key`) or a console
  session (`POST /api/v1/session`). Use *Authorize* above to try it here.
* **trtc**: Tencent Cloud API 3.0 on `POST /` (TC3-HMAC-SHA256, or HmacSHA1/256 form posts);
  the action is the `X-TC-Action` header. Sign with the official SDK; the examples show bodies.
* **sparkrtc**: Huawei SparkRTC under `/v2/apps` and `/v1/{project_id}/rtc/...`, signed with
  SDK-HMAC-SHA256 (AK/SK = a key pair) or an IAM token from `POST /v3/auth/tokens` (`X-Auth-Token`).
* **jocloud**: JOYY cloud recording on `/app/{appid}/v1/recordoss/{method}`, header
  `Token: Basic base64(secret_id:secret_key)`.
* **media**: rooms over WebSocket signalling at `/rtc/ws` (see docs/signalling.md; WebSockets
  are outside OpenAPI), WHIP/WHEP below, and the media library at `/media/{key}`.
"""

TRTC_EXAMPLES: dict[str, dict[str, Any]] = {
    "CreateCloudRecording": {
        "SdkAppId": 1400000001,
        "RoomId": "8888",
        "UserId": "recorder-1",
        "UserSig": "eJw1zEELgjAYx...",
        "RecordParams": {"RecordMode": 2, "MaxIdleTime": 30},
        "MixTranscodeParams": {
            "VideoParams": {"Width": 640, "Height": 360, "Fps": 15, "BitRate": 800000, "Gop": 2}
        },
        "MixLayoutParams": {"MixLayoutMode": 3},
        "StorageParams": {"CloudVod": {"TencentVod": {}}},
    },
    "DescribeCloudRecording": {"SdkAppId": 1400000001, "TaskId": "TASK_ID"},
    "ModifyCloudRecording": {
        "SdkAppId": 1400000001,
        "TaskId": "TASK_ID",
        "MixLayoutParams": {"MixLayoutMode": 1},
    },
    "DeleteCloudRecording": {"SdkAppId": 1400000001, "TaskId": "TASK_ID"},
    "RemoveUser": {"SdkAppId": 1400000001, "RoomId": 8888, "UserIds": ["bob"]},
    "RemoveUserByStrRoomId": {"SdkAppId": 1400000001, "RoomId": "demo", "UserIds": ["bob"]},
    "DismissRoom": {"SdkAppId": 1400000001, "RoomId": 8888},
    "DismissRoomByStrRoomId": {"SdkAppId": 1400000001, "RoomId": "demo"},
    "SetUserBlocked": {"SdkAppId": 1400000001, "RoomId": 8888, "UserId": "bob", "IsMute": 1},
    "SetUserBlockedByStrRoomId": {"SdkAppId": 1400000001, "StrRoomId": "demo", "UserId": "bob", "IsMute": 1},
    "StartStreamIngest": {
        "SdkAppId": 1400000001,
        "RoomId": "8888",
        "RoomIdType": 1,
        "UserId": "ingest-1",
        "UserSig": "eJw1zEELgjAYx...",
        "StreamUrl": "https://example.com/video.mp4",
        "RepeatNum": 1,
    },
    "DescribeStreamIngest": {"SdkAppId": 1400000001, "TaskId": "TASK_ID"},
    "UpdateStreamIngest": {"SdkAppId": 1400000001, "TaskId": "TASK_ID", "IsPause": True},
    "StopStreamIngest": {"SdkAppId": 1400000001, "TaskId": "TASK_ID"},
    "StartAITranscription": {
        "SdkAppId": 1400000001,
        "RoomId": "8888",
        "SessionId": "session-1",
        "TranscriptionParams": {"UserId": "asr-robot", "UserSig": "eJw1zEELgjAYx...", "MaxIdleTime": 60},
        "RecognizeConfig": {"Language": "en"},
    },
    "DescribeAITranscription": {"TaskId": "TASK_ID"},
    "StopAITranscription": {"TaskId": "TASK_ID"},
    "StartAIConversation": {
        "SdkAppId": 1400000001,
        "RoomId": "8888",
        "AgentConfig": {
            "UserId": "agent",
            "UserSig": "eJw1zEELgjAYx...",
            "TargetUserId": "alice",
            "WelcomeMessage": "Hello, how can I help?",
        },
        "STTConfig": {"Language": "en"},
        "LLMConfig": '{"LLMType": "openai", "Model": "gpt-4o-mini", "APIKey": "sk-...", '
        '"APIUrl": "https://llm.example.com/v1/chat/completions", "Streaming": true}',
        "TTSConfig": '{"TTSType": "espeak", "Voice": "en-us+f3"}',
    },
    "DescribeAIConversation": {"TaskId": "TASK_ID"},
    "StopAIConversation": {"TaskId": "TASK_ID"},
    "UpdateAIConversation": {"TaskId": "TASK_ID", "InterruptMode": 1},
    "ControlAIConversation": {
        "TaskId": "TASK_ID",
        "Command": "ServerPushText",
        "ServerPushText": {"Text": "One moment please.", "Interrupt": True},
    },
    "StartPublishCdnStream": {
        "SdkAppId": 1400000001,
        "RoomId": "8888",
        "RoomIdType": 1,
        "AgentParams": {"UserId": "relay-8888", "MaxIdleTime": 30},
        "WithTranscoding": 1,
        "AudioParams": {"AudioEncode": {"SampleRate": 48000, "Channel": 2, "BitRate": 64}},
        "VideoParams": {
            "VideoEncode": {"Width": 1280, "Height": 720, "Fps": 15, "BitRate": 1500, "Gop": 2},
            "LayoutParams": {"MixLayoutMode": 3},
        },
        "PublishCdnParams": [{"PublishCdnUrl": "rtmp://cdn.example.com/live/room8888", "IsTencentCdn": 0}],
    },
    "UpdatePublishCdnStream": {
        "SdkAppId": 1400000001,
        "TaskId": "TASK_ID",
        "SequenceNumber": 1,
        "WithTranscoding": 1,
        "VideoParams": {"LayoutParams": {"MixLayoutMode": 1}},
    },
    "StopPublishCdnStream": {"SdkAppId": 1400000001, "TaskId": "TASK_ID"},
    # statistics (issue 15)
    "DescribeRoomInfo": {
        "SdkAppId": 1400000001,
        "StartTime": 1767225600,
        "EndTime": 1767229200,
        "PageSize": 10,
    },
    "DescribeUserInfo": {
        "SdkAppId": 1400000001,
        "CommId": "1400000001_8888_1767225600",
        "StartTime": 1767225600,
        "EndTime": 1767229200,
    },
    "DescribeUserEvent": {
        "SdkAppId": 1400000001,
        "CommId": "1400000001_8888_1767225600",
        "RoomId": "8888",
        "UserId": "bob",
        "StartTime": 1767225600,
        "EndTime": 1767229200,
    },
    "DescribeCallDetailInfo": {
        "SdkAppId": 1400000001,
        "CommId": "1400000001_8888_1767225600",
        "StartTime": 1767225600,
        "EndTime": 1767229200,
        "UserIds": ["bob"],
        "DataType": ["bigvBit", "bigvWidth", "aLoss"],
    },
    "DescribeScaleInfo": {"SdkAppId": 1400000001, "StartTime": 1767225600, "EndTime": 1767830400},
    "DescribeTRTCRealTimeScaleData": {
        "SdkAppId": "1400000001",
        "StartTime": 1767225600,
        "EndTime": 1767227400,
    },
    "DescribeTRTCRealTimeQualityData": {
        "SdkAppId": "1400000001",
        "StartTime": 1767225600,
        "EndTime": 1767227400,
    },
    "DescribeTRTCMarketScaleData": {
        "SdkAppId": "1400000001",
        "StartTime": "2026-01-01",
        "EndTime": "2026-01-07",
        "Period": "d",
    },
    "DescribeTRTCMarketQualityData": {
        "SdkAppId": "1400000001",
        "StartTime": "2026-01-01",
        "EndTime": "2026-01-01",
        "Period": "h",
    },
    "DescribeTrtcUsage": {"SdkAppId": 1400000001, "StartTime": "2026-01-01", "EndTime": "2026-01-07"},
    "DescribeRecordingUsage": {"StartTime": "2026-01-01", "EndTime": "2026-01-01", "MixType": "multi"},
    "DescribeMixTranscodingUsage": {"StartTime": "2026-01-01", "EndTime": "2026-01-07"},
    "DescribeRelayUsage": {"StartTime": "2026-01-01", "EndTime": "2026-01-07"},
    "DescribeTrtcRoomUsage": {
        "SdkAppid": 1400000001,
        "StartTime": "2026-01-01 00:00",
        "EndTime": "2026-01-01 10:00",
    },
    # TIW (X-TC-Version 2019-09-19)
    "StartOnlineRecord": {
        "SdkAppId": 1400000001,
        "RoomId": 1203,
        "RecordUserId": "tic_record_user_1203_1",
        "RecordUserSig": "eJw1zEELgjAYx...",
        "Whiteboard": {"Width": 1280, "Height": 960, "InitParam": '{"ratio":"4:3"}'},
        "Concat": {"Enabled": True},
        "MixStream": {"Enabled": True, "ModelId": 2, "TeacherId": "teacher"},
        "Extras": ["MIX_STREAM"],
    },
    "DescribeOnlineRecord": {"SdkAppId": 1400000001, "TaskId": "TASK_ID"},
    "StopOnlineRecord": {"SdkAppId": 1400000001, "TaskId": "TASK_ID"},
    "PauseOnlineRecord": {"SdkAppId": 1400000001, "TaskId": "TASK_ID"},
    "ResumeOnlineRecord": {"SdkAppId": 1400000001, "TaskId": "TASK_ID"},
}

JOYY_EXAMPLES: dict[str, dict[str, Any]] = {
    "applyrecord": {"appid": 1400000001, "roomid": "demo"},
    "startrecord": {
        "resid": "RESID",
        "appid": 1400000001,
        "roomid": "demo",
        "recordtype": 0,
        "streamtype": 1,
        "mixconfig": {
            "templateid": 2,
            "output": {"streamtype": 0, "videowidth": 640, "videoheight": 360, "videobitrate": 800},
        },
        "storagecfg": {
            "vender": 1,
            "endpoint": "cos.ap-guangzhou.myqcloud.com",
            "bucket": "rec-125000",
            "accesskey": "AK",
            "secretkey": "SK",
            "fileprefix": ["rec"],
        },
        "callbackurl": "https://example.com/joyy-callback",
    },
    "updatemixrecord": {
        "resid": "RESID",
        "appid": 1400000001,
        "roomid": "demo",
        "recordid": "RECORDID",
        "mixconfig": {
            "templateid": 1,
            "output": {"videowidth": 640, "videoheight": 360, "videobitrate": 800},
        },
    },
    "stoprecord": {"resid": "RESID", "appid": 1400000001, "roomid": "demo", "recordid": "RECORDID"},
}
"""Request bodies; ``queryrecord`` is ``GET .../queryrecord/{roomid}/{recordid}`` (no body)."""

SPARK_EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("/v2/apps", "post"): {"app_name": "live-classes"},
    ("/v2/apps/{app_id}/rooms/{room_id}/batch-remove-users", "post"): {"user_ids": ["bob"]},
}

IAM_EXAMPLE = {
    "auth": {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": "SECRET_ID", "password": "SECRET_KEY", "domain": {"name": "default"}}
            },
        },
        "scope": {"project": {"id": "PROJECT_ID"}},
    }
}


def _action_schemas(app: FastAPI, components: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """JSON schemas of the served TRTC and TIW actions' request bodies (nested models into
    components)."""
    registry = getattr(app.state, "trtc_registry", None)
    out: dict[str, dict[str, Any]] = {}
    if registry is None:
        return out
    for service, version in SERVICE_VERSIONS.items():
        tag = service.upper()
        for name in registry.names(service):
            action = registry.find(service, version, name)
            if action is None:
                continue
            schema = action.model.model_json_schema(ref_template=f"#/components/schemas/{tag}_{{model}}")
            for def_name, body in schema.pop("$defs", {}).items():
                components[f"{tag}_{def_name}"] = body
            components[f"{tag}_{name}"] = schema
            out[name] = {"$ref": f"#/components/schemas/{tag}_{name}"}
    return out


def _trtc_path(app: FastAPI, components: dict[str, Any]) -> dict[str, Any]:
    schemas = _action_schemas(app, components)
    names = sorted(schemas)
    return {
        "post": {
            "tags": ["trtc"],
            "summary": "Tencent Cloud API 3.0 (TRTC 2019-07-22, TIW 2019-09-19): one action per request",
            "description": "Served actions: "
            + ", ".join(f"`{n}`" for n in names)
            + '. Answers `{"Response": {..., "RequestId"}}` with HTTP 200, errors in'
            " `Response.Error` (as the vendor does). `GET /` without an `Action` is the browser client.",
            "operationId": "trtc_action",
            "parameters": [
                {
                    "name": "X-TC-Action",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "enum": names},
                },
                {
                    "name": "X-TC-Version",
                    "in": "header",
                    "required": True,
                    "description": "2019-07-22 for TRTC actions, 2019-09-19 for TIW's (OnlineRecord)",
                    "schema": {"type": "string", "example": "2019-07-22"},
                },
                {"name": "X-TC-Timestamp", "in": "header", "required": True, "schema": {"type": "integer"}},
                {
                    "name": "X-TC-Region",
                    "in": "header",
                    "schema": {"type": "string", "example": "ap-guangzhou"},
                },
                {
                    "name": "Authorization",
                    "in": "header",
                    "required": True,
                    "description": "TC3-HMAC-SHA256 Credential=SECRET_ID/DATE/trtc/tc3_request, "
                    "SignedHeaders=..., Signature=...",
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [schemas[n] for n in names]} if names else {"type": "object"},
                        "examples": {
                            n: {"summary": n, "value": TRTC_EXAMPLES[n]} for n in names if n in TRTC_EXAMPLES
                        },
                    }
                },
            },
            "responses": {"200": {"description": '`{"Response": {...}}` (also for errors)'}},
        }
    }


def _joyy_path(app: FastAPI) -> dict[str, Any]:
    gw = getattr(app.state, "jocloud", None)
    methods = sorted(getattr(gw, "methods", {})) if gw is not None else []
    return {
        "post": {
            "tags": ["jocloud"],
            "summary": "JOYY cloud recording method",
            "description": "Served methods: " + ", ".join(f"`{m}`" for m in methods) + ".",
            "operationId": "jocloud_method",
            "parameters": [
                {"name": "appid", "in": "path", "required": True, "schema": {"type": "integer"}},
                {
                    "name": "method",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": methods},
                },
                {"name": "traceId", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "Token",
                    "in": "header",
                    "required": True,
                    "description": "Basic base64(secret_id:secret_key)",
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {"type": "object"},
                        "examples": {m: {"value": JOYY_EXAMPLES[m]} for m in methods if m in JOYY_EXAMPLES},
                    }
                }
            },
            "responses": {"200": {"description": '`{"code": 0, "msg": ..., "traceId": ..., "data": {...}}`'}},
        }
    }


IAM_PATH = {
    "post": {
        "tags": ["sparkrtc"],
        "summary": "IAM token (password method: user name = SecretId, password = SecretKey)",
        "operationId": "iam_tokens",
        "requestBody": {"required": True, "content": {"application/json": {"example": IAM_EXAMPLE}}},
        "responses": {
            "201": {"description": "The token is in the `X-Subject-Token` header; send it as `X-Auth-Token`."}
        },
    }
}

MEDIA_PATH = {
    "get": {
        "tags": ["media"],
        "summary": "A file of roomcast's media library (CloudVod recordings); range requests work",
        "operationId": "media_file",
        "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "The file"},
            "404": {"description": "No such file (or expired)"},
        },
    }
}


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title="roomcast", version=__version__, description=DESCRIPTION, routes=app.routes, tags=None
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    paths = schema.setdefault("paths", {})
    paths["/"] = _trtc_path(app, components)
    paths["/app/{appid}/v1/recordoss/{method}"] = _joyy_path(app)
    paths["/v3/auth/tokens"] = copy.deepcopy(IAM_PATH)
    paths["/media/{key}"] = copy.deepcopy(MEDIA_PATH)
    for (path, method), example in SPARK_EXAMPLES.items():
        op = paths.get(path, {}).get(method)
        if op is not None:
            op.setdefault("tags", ["sparkrtc"])
            body = op.setdefault(
                "requestBody", {"content": {"application/json": {"schema": {"type": "object"}}}}
            )
            for content in body.get("content", {}).values():
                content["example"] = example
    for path, item in paths.items():
        for op in item.values():
            if not isinstance(op, dict):
                continue
            if path.startswith("/v2/apps") or path.startswith("/v1/"):
                op["tags"] = ["sparkrtc"]
            elif path.startswith("/rtc/"):
                op["tags"] = ["media"]
            elif path.startswith("/api/v1/"):
                op["security"] = [{"keyPair": []}, {"consoleSession": []}]
    schema["components"]["securitySchemes"] = {
        "keyPair": {"type": "http", "scheme": "basic", "description": "secret_id:secret_key"},
        "consoleSession": {"type": "apiKey", "in": "cookie", "name": "roomcast_session"},
    }
    return schema


def mount(app: FastAPI) -> None:
    """Serve ``/docs`` with local Swagger UI assets and the merged OpenAPI document."""
    import swagger_ui_bundle

    app.mount(ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="roomcast API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"defaultModelsExpandDepth": 0, "docExpansion": "none"},
        )

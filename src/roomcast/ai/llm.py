"""An OpenAI-compatible chat-completions client: streamed (server-sent events of
``chat.completion.chunk``) or not. Keys go in the Authorization header and nowhere else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from roomcast.domain.ai import LlmConfig
from roomcast.net.urls import UrlPolicy


class LlmError(Exception):
    """The model endpoint failed; the message is safe to show (no key, no body)."""


async def complete(
    client: httpx.AsyncClient, policy: UrlPolicy, cfg: LlmConfig, messages: list[dict[str, str]]
) -> AsyncIterator[str]:
    """Yield the answer's text as it arrives (one piece when not streaming)."""
    body: dict[str, Any] = {"model": cfg.model, "messages": messages, "stream": cfg.streaming}
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if cfg.streaming else "application/json",
    }
    if cfg.api_key:
        headers["Authorization"] = f"Bearer {cfg.api_key}"
    try:
        async with asyncio.timeout(cfg.timeout_s):
            resp = await policy.send(
                client, "POST", cfg.url, headers=headers, content=json.dumps(body).encode(), stream=True
            )
    except (httpx.HTTPError, TimeoutError, ValueError) as exc:
        raise LlmError(f"LLM endpoint unreachable: {type(exc).__name__}") from None
    try:
        if resp.status_code != 200:
            raise LlmError(f"LLM endpoint answered HTTP {resp.status_code}")
        ctype = resp.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            data = json.loads(await resp.aread())
            text = data["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise LlmError("LLM answer without text")
            yield text
            return
        async for line in resp.aiter_lines():
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                break
            chunk = json.loads(payload)
            if "error" in chunk:
                raise LlmError(f"LLM error: {str(chunk['error'].get('message', ''))[:200]}")
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if isinstance(piece, str) and piece:
                    yield piece
    except (httpx.HTTPError, json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise LlmError(f"LLM answer unreadable: {type(exc).__name__}") from None
    finally:
        await resp.aclose()

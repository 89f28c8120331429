"""A stand-in for the OpenAI API: a real HTTP app (served by uvicorn on loopback) that answers chat
completions and responses (JSON and SSE streams), lists models, makes embeddings, and keeps every
request it was sent.

It answers with the model `MODEL_VERSION` (as OpenAI answers an alias with a dated version) and ids
`chatcmpl-<n>` / `resp_<n>`, and repeats in its answer how many system messages it was sent. Some
model names misbehave on purpose: `refuse-me` (400), `refuse-key` (401 naming the masked key, as
OpenAI does) and `break-off` (a stream that stops after its first chunk for `STALL_S` seconds).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

MODEL_VERSION = "gpt-test-2026-01-01"
STALL_S = 3.0


@dataclass
class Upstream:
    """The stand-in's app and what it was sent: each request's JSON body and headers, in order."""

    app: FastAPI
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""

    @property
    def last(self) -> dict[str, Any]:
        return self.bodies[-1]


def system_texts(body: dict[str, Any]) -> list[str]:
    """The system messages a chat request carried (or the system items of a responses input)."""
    items = body.get("messages") or body.get("input") or []
    if isinstance(items, str):
        return []
    return [str(m["content"]) for m in items if isinstance(m, dict) and m.get("role") == "system"]


def tool_texts(body: dict[str, Any]) -> list[Any]:
    """What the tool results of a request said: chat tool/function messages' content, Responses outputs."""
    items = body.get("messages") or body.get("input") or []
    if isinstance(items, str):
        return []
    said = []
    for item in items:
        if isinstance(item, dict) and item.get("role") in ("tool", "function"):
            said.append(item.get("content"))
        elif isinstance(item, dict) and item.get("type") == "function_call_output":
            said.append(item.get("output"))
    return said


def make_upstream() -> Upstream:
    app = FastAPI()
    upstream = Upstream(app)

    def keep(body: dict[str, Any], request: Request) -> int:
        upstream.bodies.append(body)
        upstream.headers.append(dict(request.headers))
        return len(upstream.bodies)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        n = keep(body, request)
        if body.get("model") == "refuse-me":
            error = {
                "message": "the stand-in refuses this model",
                "type": "invalid_request_error",
                "code": "x",
                "param": None,
            }
            return JSONResponse({"error": error}, status_code=400)
        if body.get("model") == "refuse-key":
            said = (
                "Incorrect API key provided: sk-up*****ream. You can find your API key at https://platform.openai.com."
            )
            error = {"message": said, "type": "invalid_request_error", "code": "invalid_api_key", "param": None}
            return JSONResponse({"error": error}, status_code=401)
        text = f"seen {len(system_texts(body))} system messages"
        if body.get("stream") and body.get("model") == "break-off":
            return StreamingResponse(_broken(f"chatcmpl-{n}"), media_type="text/event-stream")
        if body.get("stream"):
            return StreamingResponse(_chunks(f"chatcmpl-{n}", text), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL_VERSION,
                "choices": [
                    {"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": text, "refusal": None}}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )  # fmt: skip

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        body = await request.json()
        n = keep(body, request)
        if body.get("model") == "refuse-key":
            error = {"message": "Incorrect API key provided: sk-up*****ream.", "type": "invalid_request_error",
                     "code": "invalid_api_key", "param": None}  # fmt: skip
            return JSONResponse({"error": error}, status_code=401)
        text = f"seen {len(system_texts(body))} system messages"
        if body.get("stream"):
            return StreamingResponse(_response_events(n, text), media_type="text/event-stream")
        return JSONResponse(_response(n, text, "completed"))

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        upstream.headers.append(dict(request.headers))
        return JSONResponse({"object": "list", "data": [
            {"id": MODEL_VERSION, "object": "model", "created": 1767225600, "owned_by": "stand-in"}]})  # fmt: skip

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        body = await request.json()
        keep(body, request)
        return JSONResponse({"object": "list", "model": "embed-test", "usage": {"prompt_tokens": 1, "total_tokens": 1},
                             "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}]})  # fmt: skip

    return upstream


def _response(n: int, text: str, status: str) -> dict[str, Any]:
    message = {"type": "message", "id": f"msg_{n}", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}  # fmt: skip
    return {"id": f"resp_{n}", "object": "response", "created_at": int(time.time()), "model": MODEL_VERSION,
            "status": status, "output": [message] if status == "completed" else [], "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None, "instructions": None,
            "metadata": {}, "temperature": 1.0, "top_p": 1.0}  # fmt: skip


async def _response_events(n: int, text: str) -> AsyncIterator[bytes]:
    """A Responses API stream: created, one text delta per word, completed (as OpenAI sends them)."""
    events: list[dict[str, Any]] = [{"type": "response.created", "response": _response(n, "", "in_progress")}]
    for word in text.split(" "):
        events.append({"type": "response.output_text.delta", "item_id": f"msg_{n}", "output_index": 0,
                       "content_index": 0, "delta": word + " ", "logprobs": []})  # fmt: skip
    events.append({"type": "response.completed", "response": _response(n, text, "completed")})
    for sequence, event in enumerate(events):
        yield f"event: {event['type']}\ndata: {json.dumps({**event, 'sequence_number': sequence})}\n\n".encode()


def chunk(call_id: str, delta: dict[str, Any], finish: str | None = None) -> str:
    document = {"id": call_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": MODEL_VERSION,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}  # fmt: skip
    return f"data: {json.dumps(document)}\n\n"


def _pieces(call_id: str, text: str) -> Iterator[str]:
    yield chunk(call_id, {"role": "assistant", "content": ""})
    for word in text.split(" "):
        yield chunk(call_id, {"content": word + " "})
    yield chunk(call_id, {}, "stop")
    yield "data: [DONE]\n\n"


async def _chunks(call_id: str, text: str) -> AsyncIterator[bytes]:
    for piece in _pieces(call_id, text):
        yield piece.encode()


async def _broken(call_id: str) -> AsyncIterator[bytes]:
    yield chunk(call_id, {"role": "assistant", "content": "Ana's "}).encode()
    await asyncio.sleep(STALL_S)
    yield b"data: [DONE]\n\n"

"""A fake OpenAI-compatible chat-completions server with scripted replies.

The real `langchain-openai` client talks to it over loopback, so tool schemas,
tool-call arguments and tool results cross a real HTTP boundary. Each request
takes the next scripted step (a tool call, a final text, or an HTTP error); a
step may be a function of the request body. Running out of steps is a 500 with
a loud message, so a test that makes an unexpected model call fails.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Step = dict[str, Any]


def tool_call(name: str, args: dict[str, Any], *, call_id: str | None = None) -> Step:
    return {"tool_calls": [(name, args, call_id)]}


def tool_calls(*calls: tuple[str, dict[str, Any]]) -> Step:
    return {"tool_calls": [(n, a, None) for n, a in calls]}


def text(content: str) -> Step:
    return {"text": content}


def http_error(status: int, message: str = "scripted failure") -> Step:
    return {"error": status, "message": message}


def slow(step: Step, seconds: float) -> Step:
    """`step`, answered after `seconds` (one slow call; `delay` slows them all)."""
    return {**step, "delay": seconds}


class ScriptedOpenAI:
    """Holds the script and every request received (parsed JSON bodies)."""

    def __init__(
        self,
        steps: list[Step | Callable[[dict[str, Any]], Step]] | None = None,
        *,
        prompt_tokens: int = 100,
        completion_tokens: int = 20,
    ) -> None:
        self.steps = list(steps or [])
        self.requests: list[dict[str, Any]] = []
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.delay = 0.0  # seconds each answer takes (a slow model)
        self._calls = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._complete, methods=["POST"]),
                Route("/chat/completions", self._complete, methods=["POST"]),
            ]
        )

    def script(self, *steps: Step | Callable[[dict[str, Any]], Step]) -> None:
        self.steps.extend(steps)

    async def _complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.steps:
            return JSONResponse(
                {
                    "error": {
                        "message": "fake OpenAI: no scripted step left",
                        "type": "server_error",
                    }
                },
                status_code=500,
            )
        step = self.steps.pop(0)
        if callable(step):
            step = step(body)
        if step.get("delay"):
            await asyncio.sleep(step["delay"])
        if "error" in step:
            return JSONResponse(
                {"error": {"message": step["message"], "type": "server_error"}},
                status_code=step["error"],
            )
        message: dict[str, Any] = {"role": "assistant", "content": step.get("text")}
        finish = "stop"
        if step.get("tool_calls"):
            calls = []
            for name, args, call_id in step["tool_calls"]:
                self._calls += 1
                calls.append(
                    {
                        "id": call_id or f"call_{self._calls}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args)},
                    }
                )
            message["tool_calls"] = calls
            finish = "tool_calls"
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens,
                    "total_tokens": self.prompt_tokens + self.completion_tokens,
                },
            }
        )

    # -- helpers for assertions -------------------------------------------------------

    def tool_results(self, request_index: int) -> list[dict[str, Any]]:
        """The `tool` role messages the client sent in one request."""
        return [m for m in self.requests[request_index]["messages"] if m.get("role") == "tool"]

    def tool_names(self, request_index: int = 0) -> list[str]:
        return [t["function"]["name"] for t in self.requests[request_index].get("tools", [])]

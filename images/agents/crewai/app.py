"""The CrewAI agent runtime of the platform: a small HTTP service in the agentic namespace.

  GET  /healthz  200 while the server runs (the pod's readiness and liveness probes).
  POST /run      {"input": "<task>"} -> {"output": "<answer>"}: one crew (a single agent
                 and its task) works on the task, answering with
                 the model served behind OPENAI_BASE_URL (the platform's inference service, named by the
                 agent-settings ConfigMap).

Settings (environment): OPENAI_BASE_URL, OPENAI_API_KEY, LLM_MODEL (default: the first model the endpoint lists),
PORT (default 8080). The framework is imported on the first task, so the health endpoint answers at once.
"""

from __future__ import annotations

import json
import os
import urllib.request
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEALTH_PATH = "/healthz"
RUN_PATH = "/run"
MAX_BODY_BYTES = 1 << 20
INSTRUCTIONS = "You are a helpful assistant of the ML platform. Answer the request accurately and concisely."


@cache
def served_model() -> str:
    """The model to call: LLM_MODEL, or the first one the OpenAI-compatible endpoint serves."""
    if os.environ.get("LLM_MODEL"):
        return os.environ["LLM_MODEL"]
    with urllib.request.urlopen(f"{os.environ['OPENAI_BASE_URL'].rstrip('/')}/models", timeout=10) as response:
        return json.load(response)["data"][0]["id"]


def answer(task: str) -> str:
    from crewai import LLM, Agent, Crew, Task

    llm = LLM(model=f"openai/{served_model()}", base_url=os.environ["OPENAI_BASE_URL"],
              api_key=os.environ["OPENAI_API_KEY"])
    agent = Agent(role="Assistant", goal="Complete the task you are given", backstory=INSTRUCTIONS, llm=llm,
                  allow_delegation=False)
    work = Task(description=task, expected_output="The answer to the task", agent=agent)
    return str(Crew(agents=[agent], tasks=[work]).kickoff())


class Handler(BaseHTTPRequestHandler):
    """``GET /healthz`` for the probes, ``POST /run`` for work; JSON in and out."""

    server_version = "agent-runtime"

    def do_GET(self) -> None:
        if self.path == HEALTH_PATH:
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": f"no such path; GET {HEALTH_PATH} or POST {RUN_PATH}"})

    def do_POST(self) -> None:
        if self.path != RUN_PATH:
            self._reply(404, {"error": f"no such path; POST {RUN_PATH}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._reply(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
            return
        try:
            task = json.loads(self.rfile.read(length))["input"]
            if not isinstance(task, str) or not task.strip():
                raise TypeError("input must be a non-empty string")
        except (ValueError, KeyError, TypeError) as error:
            self._reply(400, {"error": f'expected {{"input": "<task>"}}: {error}'})
            return
        try:
            output = answer(task)
        except Exception as error:  # the model endpoint or the framework failed: say so, keep serving
            self._reply(502, {"error": f"{type(error).__name__}: {error}"})
            return
        self._reply(200, {"output": output})

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()


if __name__ == "__main__":
    main()

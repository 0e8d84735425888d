"""``actors monitor`` run as a subprocess for the integration tests, and its HTTP client."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import ActorsProcess, free_port
from tests.helpers import eventually

USER, PASSWORD, TOKEN = "admin", "s3cret-pass", "t0ken-for-scripts"


class Monitor:
    """``actors monitor`` in a subprocess on a free loopback port."""

    def __init__(self, url: str, log_file: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = ActorsProcess(
            ["monitor", "tests.apps.monitor:app", "--port", str(self.port)],
            url,
            log_file,
            ACTORS_MONITOR_USER=USER,
            ACTORS_MONITOR_PASSWORD=PASSWORD,
            ACTORS_MONITOR_TOKEN=TOKEN,
            **env,
        )
        eventually(
            lambda: self.get("/healthz", auth=False)[0] == 200,
            what=lambda: f"the monitor to answer /healthz:\n{self.process.output()}",
            ignore=(OSError,),
            timeout=20,
        )

    def get(self, path: str, auth: bool = True) -> tuple[int, Any]:
        return self.request("GET", path, None, auth)

    def request(
        self, method: str, path: str, form: dict[str, str] | None, auth: bool | str
    ) -> tuple[int, Any]:
        body = "&".join(f"{k}={v}" for k, v in (form or {}).items()).encode() if form else None
        request = urllib.request.Request(self.base + path, data=body, method=method)
        if auth:
            request.add_header("Authorization", auth if isinstance(auth, str) else basic_auth())
        if body is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, _body(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _body(error.read())


def _body(data: bytes) -> Any:
    try:
        return json.loads(data or b"null")
    except ValueError:
        return data.decode()


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

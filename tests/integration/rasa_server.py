"""`rasa run` of the reference bot as a real server on 127.0.0.1, and a small
HTTP client for talking to it: shared by the channel, load and fault tests."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from tests.integration.conftest import BOT, RASA, free_port


@dataclass
class RasaServer:
    url: str
    port: int
    log: Path
    process: subprocess.Popen

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def say(self, sender: str, text: str) -> List[str]:
        """The bot's replies to ``text`` through the REST channel (status 200 asserted)."""
        status, body = http("POST", self.url + "/webhooks/rest/webhook",
                            json.dumps({"sender": sender, "message": text}).encode("utf-8"),
                            {"Content-Type": "application/json"})
        assert status == 200, (status, body)
        return [message.get("text", "") for message in json.loads(body)]

    def tracker_events(self, sender: str) -> List[Dict]:
        """Every event of the conversation, through Rasa's HTTP API (--enable-api)."""
        status, body = http("GET", f"{self.url}/conversations/{sender}/tracker")
        assert status == 200, body
        return json.loads(body)["events"]


def http(method: str, url: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None,
         timeout: float = 60) -> Tuple[int, str]:
    """(status, body text) of one request; 4xx/5xx are returned, not raised."""
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def start(model: Path, endpoints: Path, credentials: Path, log: Path, env: Optional[Dict[str, str]] = None,
          port: Optional[int] = None, extra_args: Sequence[str] = ()) -> RasaServer:
    """Start `rasa run` (from bot/) and wait until it answers; raise with its log if it does not."""
    return wait_until_up(launch(model, endpoints, credentials, log, env, port, extra_args))


def launch(model: Path, endpoints: Path, credentials: Path, log: Path, env: Optional[Dict[str, str]] = None,
           port: Optional[int] = None, extra_args: Sequence[str] = ()) -> RasaServer:
    """Start `rasa run` (from bot/) without waiting for it."""
    port = port or free_port()
    process = subprocess.Popen(
        [RASA, "run", "--model", str(model), "--endpoints", str(endpoints), "--credentials", str(credentials),
         "--interface", "127.0.0.1", "--port", str(port), *extra_args],
        cwd=BOT, env=dict(os.environ, PYTHONWARNINGS="ignore", **(env or {})),
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    return RasaServer(f"http://127.0.0.1:{port}", port, log, process)


def wait_until_up(server: RasaServer, timeout: float = 300) -> RasaServer:
    """Wait until the server answers GET /; raise with its log if it stops or does not."""
    process = server.process
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("rasa run stopped:\n" + server.log_text()[-3000:])
        try:
            if http("GET", server.url + "/", timeout=2)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(1)
    process.kill()
    raise AssertionError(f"rasa run did not start within {timeout} s:\n" + server.log_text()[-3000:])


def stop(server: RasaServer, kill: bool = False) -> None:
    if server.process.poll() is None:
        server.process.kill() if kill else server.process.terminate()
        server.process.wait(timeout=60)


@contextmanager
def running(*args, **kwargs) -> Iterator[RasaServer]:
    """`start` ... `stop`, and no Python traceback in the server's log."""
    server = start(*args, **kwargs)
    try:
        yield server
    finally:
        stop(server)
    assert "Traceback" not in server.log_text(), server.log_text()[-3000:]

"""Stand-ins on 127.0.0.1 for the two web APIs the bot calls out to: WeChat's
(access token, customer-service / WeCom message send) and Slack's Web API
(chat.postMessage). They record what they receive; the first access token they
issue is reported expired on first use, so the client must fetch a new one."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List
from urllib.parse import parse_qs, urlparse


class FakeAPIs:
    def __init__(self) -> None:
        self.token_requests: List[Dict[str, str]] = []
        self.wechat_messages: List[Dict[str, Any]] = []  # {"path", "access_token", "body"}
        self.slack_messages: List[Dict[str, Any]] = []
        self.rejected_tokens: List[str] = []
        self._lock = threading.RLock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if condition():
                    return
            time.sleep(0.1)
        raise AssertionError(f"not seen within {timeout} s; wechat: {self.wechat_messages[-5:]}, "
                             f"slack: {self.slack_messages[-5:]}")

    def wechat_texts(self, user: str) -> List[str]:
        with self._lock:
            return [m["body"]["text"]["content"] for m in self.wechat_messages if m["body"].get("touser") == user]

    def slack_texts(self, channel: str) -> List[str]:
        with self._lock:
            return [m.get("text", "") for m in self.slack_messages if m.get("channel") == channel]

    def _handler(self) -> type:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, payload: Dict[str, Any]) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path in ("/cgi-bin/token", "/cgi-bin/gettoken"):
                    with fake._lock:
                        fake.token_requests.append(dict(query, path=url.path))
                        token = f"TOKEN{len(fake.token_requests)}"
                    self._answer({"access_token": token, "expires_in": 7200})
                else:
                    self._answer({"errcode": 404})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if url.path.startswith("/cgi-bin/message/"):
                    token = query.get("access_token", "")
                    with fake._lock:
                        if token == "TOKEN1" and token not in fake.rejected_tokens:
                            fake.rejected_tokens.append(token)  # "expired": errcode 42001
                            self._answer({"errcode": 42001, "errmsg": "access_token expired"})
                            return
                        fake.wechat_messages.append(
                            {"path": url.path, "access_token": token, "body": json.loads(raw.decode("utf-8"))})
                    self._answer({"errcode": 0, "errmsg": "ok"})
                elif url.path == "/api/chat.postMessage":
                    if self.headers.get("Authorization") != "Bearer xoxb-test-token":
                        self._answer({"ok": False, "error": "invalid_auth"})
                        return
                    if "json" in (self.headers.get("Content-Type") or ""):
                        body = json.loads(raw.decode("utf-8"))
                    else:
                        body = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
                    with fake._lock:
                        fake.slack_messages.append(body)
                    self._answer({"ok": True, "channel": body.get("channel"), "ts": f"{time.time():.6f}"})
                else:
                    self._answer({"ok": False, "error": "unknown_method"})

        return Handler

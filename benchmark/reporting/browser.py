"""Open pages in headless Chromium, network off, and report what went wrong (stdlib only).

Drives Chromium over the DevTools protocol on ``--remote-debugging-pipe``: Chromium reads JSON
messages ended by ``\\0`` on its fd 3 and writes its own on fd 4. Every http(s) request goes to a
proxy that is not there (``127.0.0.1:9``, loopback included), so a page that needs the network fails
to load what it needs and says so::

    with Browser() as browser:
        page = browser.open(Path("reports/index.html").resolve().as_uri())
        page.console_errors, page.failed_requests, page.broken_links
        page.screenshot("index.png")
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-sync",
    "--disable-component-update",
    "--hide-scrollbars",
    "--mute-audio",
    "--window-size=1280,900",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",  # network off
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """Chromium exited, or did not answer or finish loading a page in time."""


def find_chromium() -> str | None:
    """The path of the first of chromium / chromium-browser / google-chrome on PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


@dataclasses.dataclass
class PageReport:
    """What one page did while loading: each list holds human-readable strings (or URLs)."""

    url: str
    console_errors: list[str] = dataclasses.field(
        default_factory=list
    )  # console.error/assert, uncaught exceptions, error log entries
    failed_requests: list[str] = dataclasses.field(
        default_factory=list
    )  # "<url>: <net::ERR_...>" or "<url>: HTTP <status>"
    links: list[str] = dataclasses.field(default_factory=list)  # the href of every <a href>, resolved against the page
    _browser: Browser | None = dataclasses.field(default=None, repr=False)
    _session: str | None = dataclasses.field(default=None, repr=False)

    @property
    def broken_links(self) -> list[str]:
        """The file: links whose file does not exist (fragment and query ignored)."""
        files = [link for link in self.links if urllib.parse.urlsplit(link).scheme == "file"]
        return [
            link for link in files if not Path(urllib.request.url2pathname(urllib.parse.urlsplit(link).path)).exists()
        ]

    @property
    def external_links(self) -> list[str]:
        """The http(s) links: not followed (the network is off), listed apart."""
        return [link for link in self.links if urllib.parse.urlsplit(link).scheme in ("http", "https")]

    def screenshot(self, path: str | os.PathLike) -> Path:
        """Write a PNG of the page's viewport to ``path`` (the page must be the browser's latest); returns the path."""
        if self._browser is None or self._session != self._browser._session:
            raise BrowserError("this page is no longer open in the browser")
        data = self._browser._call("Page.captureScreenshot", {"format": "png"}, session=self._session)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)


class Browser:
    """Headless Chromium as a context manager; :meth:`open` loads one page in a fresh tab."""

    def __init__(self, executable: str | None = None, timeout_s: float = 30.0, settle_s: float = 0.3):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise BrowserError("no chromium, chromium-browser or google-chrome on PATH (make browser installs it)")
        self.timeout_s, self.settle_s = timeout_s, settle_s
        self._proc: subprocess.Popen | None = None
        self._events: queue.Queue = queue.Queue()
        self._next_id, self._target, self._session = 0, None, None

    def __enter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="chromium-")
        self._stderr = open(Path(self._profile) / "stderr.log", "wb")  # noqa: SIM115 - closed in close()
        to_child, self._to_chromium = os.pipe()
        self._from_chromium, from_child = os.pipe()

        def onto_3_and_4():  # in the child: its end of each pipe as fd 3 (it reads) and fd 4 (it writes)
            read, write = fcntl.fcntl(to_child, fcntl.F_DUPFD, 10), fcntl.fcntl(from_child, fcntl.F_DUPFD, 10)
            os.dup2(read, 3), os.dup2(write, 4)

        try:
            self._proc = subprocess.Popen(
                [self.executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=self._stderr,
                stderr=self._stderr,
                pass_fds=(3, 4),
                preexec_fn=onto_3_and_4,
                start_new_session=True,
            )
        except BaseException:
            os.close(self._from_chromium)
            self.close()
            raise
        finally:
            os.close(to_child), os.close(from_child)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Ask Chromium to quit, kill its process group whatever happens, remove the temporary profile."""
        try:
            if self._proc is not None and self._proc.poll() is None:
                os.write(self._to_chromium, json.dumps({"id": -1, "method": "Browser.close"}).encode() + b"\0")
                self._proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self._proc is not None:
                try:
                    os.killpg(self._proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self._proc.wait()
            os.close(self._to_chromium)
            self._stderr.close()
            shutil.rmtree(self._profile, ignore_errors=True)

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_chromium, 1 << 16):
            *messages, buffer = (buffer + chunk).split(b"\0")
            for message in messages:
                self._events.put(json.loads(message))
        os.close(self._from_chromium)
        self._events.put(None)  # Chromium closed its end: it exited

    def _next(self, deadline: float, waiting_for: str) -> dict:
        try:
            message = self._events.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            raise BrowserError(f"Chromium did not {waiting_for}") from None
        if message is None:
            self._events.put(None)
            tail = Path(self._stderr.name).read_text(errors="replace").strip().splitlines()[-5:]
            raise BrowserError(
                f"Chromium exited (rc {self._proc.wait()}) while waiting to {waiting_for}: " + " | ".join(tail)
            )
        return message

    def _call(
        self, method: str, params: dict | None = None, session: str | None = None, seen: list | None = None
    ) -> dict:
        """Send one command and return its result; events that arrive meanwhile go to ``seen``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}} | (
            {"sessionId": session} if session else {}
        )
        os.write(self._to_chromium, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while (reply := self._next(deadline, f"answer {method} within {self.timeout_s:g} s")).get(
            "id"
        ) != self._next_id:
            if seen is not None and "method" in reply:
                seen.append(reply)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    def open(self, url: str, timeout_s: float | None = None) -> PageReport:
        """Load ``url`` in a new tab (closing the previous one) and return its :class:`PageReport`.

        Waits for the load event, then ``settle_s`` for late errors; raises :class:`BrowserError` if
        the page has not loaded within ``timeout_s`` (default: the browser's).
        """
        if self._target is not None:
            self._call("Target.closeTarget", {"targetId": self._target})
        self._target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = session = self._call("Target.attachToTarget", {"targetId": self._target, "flatten": True})[
            "sessionId"
        ]
        seen: list[dict] = []
        for domain in ("Page", "Runtime", "Network", "Log"):
            self._call(f"{domain}.enable", session=session, seen=seen)
        self._call("Page.navigate", {"url": url}, session=session, seen=seen)
        timeout_s = timeout_s or self.timeout_s
        deadline = time.monotonic() + timeout_s
        while not any(
            event.get("method") == "Page.loadEventFired" and event.get("sessionId") == session for event in seen
        ):
            seen.append(self._next(deadline, f"finish loading {url} within {timeout_s:g} s"))
        settled = time.monotonic() + self.settle_s
        while (left := settled - time.monotonic()) > 0:
            try:
                message = self._events.get(timeout=left)
            except queue.Empty:
                break
            if message is None:  # Chromium exited: the next call says so
                self._events.put(None)
                break
            seen.append(message)
        links = self._call(
            "Runtime.evaluate",
            {"expression": "Array.from(document.querySelectorAll('a[href]'), a => a.href)", "returnByValue": True},
            session=session,
            seen=seen,
        )["result"].get("value", [])
        report = PageReport(url, links=links, _browser=self, _session=session)
        urls: dict[str, str] = {}
        for event in (event for event in seen if event.get("sessionId") == session):
            method, params = event["method"], event.get("params", {})
            if method == "Network.requestWillBeSent":
                urls[params["requestId"]] = params["request"]["url"]
            elif method == "Network.loadingFailed":
                report.failed_requests.append(f"{urls.get(params['requestId'], '?')}: {params.get('errorText')}")
            elif method == "Network.responseReceived" and params["response"].get("status", 0) >= 400:
                report.failed_requests.append(f"{params['response']['url']}: HTTP {params['response']['status']}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
                report.console_errors.append(f"console.{params['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                report.console_errors.append(
                    f"uncaught: {details.get('exception', {}).get('description') or details.get('text')}"
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                report.console_errors.append(f"log: {params['entry']['text']} ({params['entry'].get('url', '')})")
        return report

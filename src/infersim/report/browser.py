"""A small headless-Chromium driver over the DevTools protocol (CDP), for checking HTML reports.

Used by the browser test, the report benchmark and the README's screenshots; needs a Chromium
binary (Debian: ``apt-get install chromium``) and ``websocket-client``. One browser is started per
:class:`Chromium` and reused for every page it opens::

    with Chromium() as browser:
        page = browser.open("report.html")     # waits until every plot drew
        page.console_errors, page.plots, page.load_ms
        browser.screenshot("report.png")
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InfersimError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--remote-allow-origins=*", "--hide-scrollbars", "--mute-audio")

#: per plot div: traces in its figure and the SVG/canvas marks plotly drew for them
_PLOTS_JS = """
Array.from(document.querySelectorAll('div.plot')).map(function(d){
  return {id: d.id, traces: (d.data||[]).length,
          types: (d.data||[]).map(function(t){return t.type||'scatter';}),
          points: (d.data||[]).map(function(t){return (t.x||t.values||[]).length;}),
          svg_points: d.querySelectorAll('.scatterlayer .point').length,
          svg_lines: d.querySelectorAll('.scatterlayer .js-line').length,
          svg_bars: d.querySelectorAll('.barlayer .point').length,
          svg_traces: d.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length,
          canvases: d.querySelectorAll('canvas').length};
})
"""


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Page:
    url: str
    load_ms: float  # navigation start to the last plot drawn (the page's own clock)
    plots: list[dict]
    console_errors: list[str] = field(default_factory=list)


class Chromium:
    """One headless Chromium process and one tab, driven over CDP."""

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900) -> None:
        self.binary = binary or find_chromium()
        if self.binary is None:
            raise InfersimError("no Chromium found (Debian: apt-get install chromium)")
        self.width, self.height = width, height
        self._proc = None
        self._ws = None
        self._id = 0
        self._events: list[dict] = []

    # --- process and connection -----------------------------------------------------------------
    def __enter__(self) -> Chromium:
        import websocket  # websocket-client

        self._profile = tempfile.mkdtemp(prefix="infersim-chromium-")
        self._proc = subprocess.Popen(
            [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().split()) < 2:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise InfersimError(f"{self.binary} did not start its DevTools endpoint")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        self._ws = websocket.create_connection(self._page_ws(port), timeout=60, suppress_origin=True)
        for method in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(method)
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)
        return self

    def _page_ws(self, port: int) -> str:
        from urllib.request import urlopen

        deadline = time.monotonic() + 30
        while True:
            try:
                targets = json.load(urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5))
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise InfersimError("Chromium opened no page target")
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:  # noqa: BLE001 - closing a dead socket
                pass
            self._ws = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if getattr(self, "_profile", None):
            shutil.rmtree(self._profile, ignore_errors=True)

    # --- protocol ----------------------------------------------------------------------------------
    def call(self, method: str, **params) -> dict:
        self._id += 1
        mine = self._id
        self._ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == mine:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self._events.append(msg)

    def evaluate(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"evaluate: {res['exceptionDetails']}")
        return res["result"].get("value")

    def _errors(self) -> list[str]:
        out = []
        for ev in self._events:
            m, p = ev["method"], ev.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                out.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(p["entry"].get("text", ""))
        return out

    # --- pages -------------------------------------------------------------------------------------
    def open(self, path: str | os.PathLike, timeout_s: float = 60.0) -> Page:
        """Load a report and wait until every plot drew (``window.__infersimDone``)."""
        url = Path(path).resolve().as_uri()
        self._events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout_s
        done = None
        while done is None:
            time.sleep(0.05)
            done = self.evaluate("document.location.href === %s ? (window.__infersimDone || null) : null"
                                 % json.dumps(url))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: plots not drawn within {timeout_s} s; errors: {self._errors()}")
        return Page(url, float(done), self.evaluate(_PLOTS_JS), self._errors())

    def screenshot(self, path: str | os.PathLike, full_page: bool = False, width: int | None = None) -> Path:
        params = {"format": "png"}
        if full_page or width:
            w = width or self.width
            h = self.evaluate("document.documentElement.scrollHeight") if full_page else self.height
            params["clip"] = {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **params)["data"]
        out = Path(path)
        out.write_bytes(base64.b64decode(data))
        return out

    def screenshot_element(self, path: str | os.PathLike, selector: str) -> Path:
        """A PNG of the first element matching ``selector`` (e.g. one plot)."""
        box = self.evaluate("(function(){var r=document.querySelector(%s).getBoundingClientRect();"
                            "return [r.left+window.scrollX, r.top+window.scrollY, r.width, r.height];})()"
                            % json.dumps(selector))
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1})["data"]
        out = Path(path)
        out.write_bytes(base64.b64decode(data))
        return out

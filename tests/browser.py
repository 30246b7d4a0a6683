"""A small headless-Chromium driver for tests, speaking the Chrome DevTools Protocol.

    async with launch_chromium(360, 740, mobile=True) as browser:
        await browser.goto(server_url)
        await browser.wait_for("document.querySelector('.msg.coach') !== null")
        await browser.click("button[data-value='warmup']")
        await browser.type_text("#input", "Maria")
        await browser.press_enter("#input")
        await browser.screenshot(tmp_path / "chat.png")

No Python dependency beyond aiohttp: one websocket to the browser, one page
target attached in "flat" mode, and a handful of CDP methods (Target.createTarget,
Target.attachToTarget, Page.navigate, Runtime.evaluate, Input.insertText,
Input.dispatchKeyEvent, Page.captureScreenshot, Emulation.setDeviceMetricsOverride and
setEmulatedMedia).
Every wait is bounded, and the browser's whole process group is killed on exit,
whatever happened inside the block.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

# The longest any single wait may take: a slow CI machine starts Chromium in a few
# seconds; anything past this is a hang worth failing on, not waiting out.
DEFAULT_TIMEOUT = 20.0
# How often wait_for re-checks its predicate: fast enough that tests stay quick.
POLL_INTERVAL = 0.05

# Without the background-networking flags Chromium reaches for Google's servers at
# start-up, which a closed network refuses (and a test must not depend on).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-proxy-server",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
)


class BrowserError(RuntimeError):
    """Chromium failed to start, a CDP command failed, or page JavaScript threw."""


def find_chromium() -> str | None:
    """The Chromium to run: $COACH_CHROMIUM if it names a file, else `chromium` on PATH."""
    configured = os.environ.get("COACH_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else shutil.which(configured)
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One page in a running Chromium, driven over a single DevTools websocket.

    Made by `launch_chromium`; every method waits at most `timeout` seconds.
    `errors` collects uncaught page exceptions and console.error lines, so a test
    can assert the page ran cleanly.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, timeout: float) -> None:
        self._ws = ws
        self.timeout = timeout
        self.errors: list[str] = []
        self._session_id: str | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self._reader = asyncio.create_task(self._read())

    # -- protocol plumbing -------------------------------------------------------

    async def _read(self) -> None:
        """Route responses to their command and events to whoever waits for them."""
        try:
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data: dict[str, Any] = json.loads(message.data)
                if "id" in data:
                    future = self._pending.pop(data["id"], None)
                    if future is not None and not future.done():
                        future.set_result(data)
                else:
                    self._on_event(data)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError("the DevTools connection closed"))

    def _on_event(self, event: dict[str, Any]) -> None:
        method = event.get("method", "")
        params: dict[str, Any] = event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception", {})
            self.errors.append(str(exception.get("description") or details.get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = params.get("args", [])
            self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in args))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('text')} ({entry.get('url', '')})")
        for wanted, future in list(self._waiters):
            if wanted == method and not future.done():
                future.set_result(params)
                self._waiters.remove((wanted, future))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, browser_level: bool = False
    ) -> dict[str, Any]:
        """Send one CDP command (to the page unless `browser_level`) and return its result."""
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session_id is not None and not browser_level:
            command["sessionId"] = self._session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self._ws.send_str(json.dumps(command))
        try:
            reply = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self._pending.pop(command["id"], None)
            raise BrowserError(f"{method} got no answer in {self.timeout:g} s") from None
        if "error" in reply:
            raise BrowserError(f"{method} failed: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def _expect_event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the next `method` event: make it before the command that causes it."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((method, future))
        return future

    async def _await_event(self, future: asyncio.Future[dict[str, Any]], what: str) -> None:
        try:
            await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise BrowserError(f"{what} did not happen in {self.timeout:g} s") from None

    async def _open_page(self, width: int, height: int, mobile: bool) -> None:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self._session_id = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")
        await self.resize(width, height, mobile=mobile)

    async def close(self) -> None:
        """Close the websocket and stop reading; the process is ended by launch_chromium."""
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    # -- what tests use ----------------------------------------------------------

    async def resize(self, width: int, height: int, *, mobile: bool = False) -> None:
        """Emulate a viewport: `mobile` also honours the page's viewport meta, like a phone."""
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    async def emulate_media(self, **features: str) -> None:
        """Emulate CSS media features, e.g. `prefers_reduced_motion="reduce"`."""
        await self.send(
            "Emulation.setEmulatedMedia",
            {
                "features": [
                    {"name": name.replace("_", "-"), "value": value}
                    for name, value in features.items()
                ]
            },
        )

    async def goto(self, url: str) -> None:
        """Open `url` and return once its load event has fired."""
        loaded = self._expect_event("Page.loadEventFired")
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")
        await self._await_event(loaded, f"loading {url}")

    async def reload(self) -> None:
        """Reload the page, like the learner pressing F5, and wait for its load event."""
        loaded = self._expect_event("Page.loadEventFired")
        await self.send("Page.reload", {"ignoreCache": False})
        await self._await_event(loaded, "reloading the page")

    async def evaluate(self, js: str) -> Any:
        """The JSON value of a JavaScript expression (awaited if it is a promise).

        A thrown exception becomes a BrowserError carrying the page's own message.
        """
        result = await self.send(
            "Runtime.evaluate",
            {"expression": js, "returnByValue": True, "awaitPromise": True, "userGesture": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            message = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript threw: {message}\n  in: {js}")
        return result.get("result", {}).get("value")

    # `timeout` bounds each wait, not the whole call chain, hence no asyncio.timeout.
    async def wait_for(self, js_predicate: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Poll a JavaScript expression until it is truthy (by JavaScript's rules); return it.

        An element counts as found and comes back as True (a DOM node has no JSON
        value). Fails after `timeout` seconds (default: the browser's) with the
        predicate and the page's visible text, which usually says why at a glance.
        """
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        probe = (
            f"(() => {{ const v = ({js_predicate});"
            " return {ok: !!v, value: v instanceof Node ? true : v}; })()"
        )
        while True:
            try:
                result = await self.evaluate(probe)
            except BrowserError as exc:
                if "SyntaxError" in str(exc):  # a typo in the test: fail now, not in 20 s
                    raise
                result = None  # e.g. the page is mid-navigation: ask again
            if result and result["ok"]:
                return result.get("value")
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL_INTERVAL)
        text = await self.evaluate("document.body ? document.body.innerText : ''")
        raise BrowserError(
            f"waited {limit:g} s for: {js_predicate}\n  page text: {str(text)[-800:]!r}"
            + (f"\n  page errors: {self.errors}" if self.errors else "")
        )

    async def wait_for_text(self, text: str, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the page's visible text contains `text`."""
        await self.wait_for(f"document.body.innerText.includes({json.dumps(text)})", timeout)

    async def click(self, css: str) -> None:
        """Click the first element matching `css`, as a person could.

        The element must exist, be enabled and be the topmost element at its centre
        (not hidden behind another); otherwise a BrowserError says which check failed.
        """
        problem = await self.evaluate(
            f"""(() => {{
                const el = document.querySelector({json.dumps(css)});
                if (!el) return "no element matches";
                if (el.disabled) return "the element is disabled";
                el.scrollIntoView({{block: "center"}});
                const box = el.getBoundingClientRect();
                if (box.width === 0 || box.height === 0) return "the element is not visible";
                const x = box.x + box.width / 2, y = box.y + box.height / 2;
                const top = document.elementFromPoint(x, y);
                if (!top || !(el === top || el.contains(top))) return "another element covers it";
                el.focus();
                el.click();
                return "";
            }})()"""
        )
        if problem:
            raise BrowserError(f"cannot click {css}: {problem}")

    async def focus(self, css: str) -> None:
        """Move keyboard focus to the first element matching `css`."""
        found = await self.evaluate(
            f"""(() => {{
                const el = document.querySelector({json.dumps(css)});
                if (!el) return false;
                el.focus();
                return document.activeElement === el;
            }})()"""
        )
        if not found:
            raise BrowserError(f"cannot focus {css}: missing or not focusable")

    async def type_text(self, css: str, text: str) -> None:
        """Focus the element matching `css` and type `text` into it (as an IME would)."""
        await self.focus(css)
        await self.send("Input.insertText", {"text": text})

    async def press_key(self, key: str, code: str, key_code: int, text: str = "") -> None:
        """Press and release one key on whatever element has focus."""
        common = {"key": key, "code": code, "windowsVirtualKeyCode": key_code}
        down = {"type": "keyDown", **common, **({"text": text} if text else {})}
        await self.send("Input.dispatchKeyEvent", down)
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", **common})

    async def press_enter(self, css: str) -> None:
        """Focus the element matching `css` and press Enter (a form submits, a button clicks)."""
        await self.focus(css)
        await self.press_key("Enter", "Enter", 13, "\r")

    async def screenshot(self, path: Path | str) -> Path:
        """Save the viewport as a PNG at `path` and return the path."""
        result = await self.send("Page.captureScreenshot", {"format": "png"})
        target = Path(path)
        await asyncio.to_thread(target.write_bytes, base64.b64decode(result["data"]))
        return target


async def _devtools_url(user_data: Path, process: asyncio.subprocess.Process, log: Path) -> str:
    """The browser websocket URL, from the DevToolsActivePort file Chromium writes."""
    port_file = user_data / "DevToolsActivePort"
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while time.monotonic() < deadline:
        if process.returncode is not None:
            break
        with contextlib.suppress(FileNotFoundError):
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(POLL_INTERVAL)
    tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-2000:]
    state = f"exited with {process.returncode}" if process.returncode is not None else "hung"
    raise BrowserError(f"Chromium {state} before opening DevTools; its log ends:\n{tail}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End Chromium and every helper process it started (they share its process group)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5)
    # Renderers may outlive a browser that exited on its own: kill the group regardless.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()


@asynccontextmanager
async def launch_chromium(
    width: int = 1280,
    height: int = 800,
    *,
    mobile: bool = False,
    executable: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - a limit per wait, kept by Browser
) -> AsyncIterator[Browser]:
    """Start a headless Chromium with a fresh profile and yield one page of `width`x`height`.

    `executable` defaults to `find_chromium()`. The profile directory and the
    process group are removed and killed on exit, even when the block fails.
    """
    binary = executable or find_chromium()
    if binary is None:
        raise BrowserError("no Chromium found: install it or set COACH_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="coach-chromium-") as tmp:
        user_data = Path(tmp) / "profile"
        user_data.mkdir()
        log = Path(tmp) / "chromium.log"
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={user_data}",
                f"--window-size={width},{height}",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # its own process group, so _stop reaches every helper
            )
        try:
            url = await _devtools_url(user_data, process, log)
            # Screenshots arrive as one base64 message of several megabytes.
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(url, max_msg_size=64 * 1024 * 1024)
                browser = Browser(ws, timeout)
                try:
                    await browser._open_page(width, height, mobile)
                    yield browser
                finally:
                    await browser.close()
        finally:
            await _stop(process)

"""The web chat in a real browser: headless Chromium drives the page a learner sees.

Skipped, with the reason, where no Chromium is installed (set COACH_CHROMIUM to
point at one). Run just this with `pytest -m chromium`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import build_app
from bot.services import Services
from tests.browser import Browser, find_chromium, launch_chromium

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="Chromium is not installed (apt-get install chromium, or set COACH_CHROMIUM)",
    ),
]

# A phone: the narrowest screen the page is designed for.
PHONE = (360, 740)
# Each wait is bounded: a reply takes well under a second; 20 s means something hangs.
WAIT = 20.0

# Page state as JavaScript expressions, named for what a learner would notice.
# A bubble is a hidden "Coach: "/"You: " for screen readers, then the message text.
COACH_TEXT = "[...document.querySelectorAll('#log .coach .bubble')].map(e => e.lastChild.data)"
LEARNER_TEXT = "[...document.querySelectorAll('#log .learner .bubble')].map(e => e.lastChild.data)"
ACTIVE_CHOICES = "#log .choices:not(.retired) button.choice"
ACTIVE_VALUES = f"[...document.querySelectorAll('{ACTIVE_CHOICES}')].map(b => b.dataset.value)"


def choice(value: str) -> str:
    return f"{ACTIVE_CHOICES}[data-value={json.dumps(value)}]"


@pytest.fixture
async def server_url(services: Services) -> AsyncIterator[str]:
    """The real application on a loopback port, as `coach serve` would run it."""
    app = build_app(services)
    app.on_cleanup.clear()  # the services fixture closes the database
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def coach_says(browser: Browser, words: str) -> None:
    """Wait until some coach message contains `words`."""
    await browser.wait_for(f"{COACH_TEXT}.some(t => t.includes({json.dumps(words)}))", WAIT)


async def exists(browser: Browser, css: str) -> bool:
    return bool(await browser.evaluate(f"document.querySelector({json.dumps(css)}) !== null"))


async def text_of(browser: Browser, css: str) -> str:
    return str(await browser.evaluate(f"document.querySelector({json.dumps(css)}).textContent"))


async def idle(browser: Browser) -> None:
    """Wait until no request is in flight (the send button is enabled again)."""
    await browser.wait_for("!document.querySelector('#send').disabled", WAIT)


async def settled(browser: Browser) -> None:
    """Wait until the page is still: no request, no animation, scrolled to the end."""
    await idle(browser)
    await browser.wait_for(
        "document.getAnimations().length === 0"
        " && (s => s.scrollTop + s.clientHeight >= s.scrollHeight - 2)"
        "(document.querySelector('#scroller'))",
        WAIT,
    )


async def test_a_learner_chats_reloads_and_keeps_the_chat(server_url: str, tmp_path: Path) -> None:
    async with launch_chromium(*PHONE, mobile=True, timeout=WAIT) as browser:
        await browser.goto(server_url)
        assert await browser.evaluate("document.title") == "Coach"

        # A first visit greets without the learner typing anything.
        await coach_says(browser, "I'm Coach")
        await coach_says(browser, "What should I call you?")
        await idle(browser)
        assert await browser.evaluate(ACTIVE_VALUES) == ["skip"]

        # Typing a name and pressing Enter sends it; the box empties for the next answer.
        await browser.type_text("#input", "Maria")
        await browser.press_enter("#input")
        await coach_says(browser, "Nice to meet you, Maria!")
        await idle(browser)
        assert (await browser.evaluate(LEARNER_TEXT))[-1] == "Maria"
        assert await browser.evaluate("document.querySelector('#input').value") == ""
        assert await browser.evaluate(ACTIVE_VALUES) == ["en", "es"]
        assert await text_of(browser, choice("en")) == "English"

        # Pressing a button shows its label as the learner's message and sends its value.
        await browser.click(choice("en"))
        await coach_says(browser, "Which grade are you in?")
        assert (await browser.evaluate(LEARNER_TEXT))[-1] == "English"
        assert not await exists(browser, choice("en"))  # the answered question is switched off
        await idle(browser)
        assert await browser.evaluate(ACTIVE_VALUES) == ["K-2", "3-5", "6-8", "9-12"]

        await settled(browser)
        shot = await browser.screenshot(tmp_path / "chat-360x740.png")
        png = shot.read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(png) > 2000
        # The IHDR chunk holds the image size: the viewport we asked for.
        assert int.from_bytes(png[16:20], "big") == PHONE[0]
        assert int.from_bytes(png[20:24], "big") == PHONE[1]
        # Nothing is wider than the phone: no sideways scrolling.
        assert await browser.evaluate("document.documentElement.scrollWidth") <= PHONE[0]

        before = await browser.evaluate(COACH_TEXT)
        await browser.reload()
        await coach_says(browser, "Which grade are you in?")
        assert await browser.evaluate(COACH_TEXT) == before
        assert await browser.evaluate(LEARNER_TEXT) == ["hi", "Maria", "English"]
        # The open question still has its buttons; the answered ones do not.
        assert await browser.evaluate(ACTIVE_VALUES) == ["K-2", "3-5", "6-8", "9-12"]
        assert not await exists(browser, choice("en"))

        # Buttons work from the keyboard too: Enter on a focused button.
        await browser.press_enter(choice("6-8"))
        await coach_says(browser, "13 or older")
        await idle(browser)
        assert (await browser.evaluate(LEARNER_TEXT))[-1] == "6–8"

        assert browser.errors == []


async def test_a_failed_send_keeps_the_text_for_a_retry(server_url: str) -> None:
    async with launch_chromium(*PHONE, mobile=True, timeout=WAIT) as browser:
        # This learner's system asks for less motion: nothing on the page animates.
        await browser.emulate_media(prefers_reduced_motion="reduce")
        await browser.goto(server_url)
        await coach_says(browser, "I'm Coach")
        await idle(browser)
        assert await browser.evaluate("document.getAnimations().length") == 0

        # The network drops: the page says so kindly and keeps what was typed.
        await browser.evaluate(
            "window.realFetch = window.fetch;"
            "window.fetch = () => Promise.reject(new TypeError('Failed to fetch'))"
        )
        await browser.type_text("#input", "help")
        await browser.press_enter("#input")
        await browser.wait_for("!document.querySelector('#notice').hidden", WAIT)
        notice = await browser.evaluate("document.querySelector('#notice-text').textContent")
        assert "Check your connection" in notice
        assert "Failed to fetch" not in notice
        assert await browser.evaluate("document.querySelector('#input').value") == "help"
        assert await browser.evaluate(LEARNER_TEXT) == ["hi"]  # the failed one is not shown

        # Back online, "Try again" sends it once and the coach answers.
        await browser.evaluate("window.fetch = window.realFetch")
        await browser.click("#retry")
        await coach_says(browser, "I help you choose goals")
        await idle(browser)
        assert await browser.evaluate("document.querySelector('#notice').hidden") is True
        assert await browser.evaluate("document.querySelector('#input').value") == ""
        assert browser.errors == []

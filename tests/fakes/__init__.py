"""Fake platform servers that speak the real protocols, for tests.

`telegram.FakeTelegram` is the Telegram Bot API, `slack.FakeSlack` the Slack Web
API; both run aiohttp on 127.0.0.1 on a random port, record every call and can be
told to fail the way the real services do (429 with a retry delay, 403 blocked).
The same modules build the requests the platforms send us: real Telegram Update
JSON, and Slack events, slash commands and button actions signed with the
signing secret. tests/test_fakes.py proves them against the real client libraries.
"""

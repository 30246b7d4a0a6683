"""Test tools that ship with the code: conversation scripts, fake clocks (see bot.clock)."""

"""The dialog engine: flows as data, the turn runtime, understanding, rendering, locales."""

"""Where the shipped data lives: in the package when installed, else at the checkout's top."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def shipped(name: str) -> Path:
    """The shipped `dialogs` or `content` folder.

    A wheel carries them in ``bot/_data`` (pyproject's force-include); an editable
    install or a plain checkout reads them from the top of the checkout.
    """
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    return _CHECKOUT / name


STATIC = _PACKAGE / "channels" / "static"
MIGRATIONS = _PACKAGE / "store" / "migrations"

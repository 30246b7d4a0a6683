"""Locale catalogs: every sentence a person reads, in English and Spanish.

dialogs/locales/<locale>/*.yaml hold nested keys (`warmup.ask_name`), one file per
flow or topic so people can edit side by side; a key lives in one file. A leaf is a
string with `{placeholders}`, or a mapping of CLDR plural categories
(`one`, `other`, ...) chosen by the `count` parameter through Babel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from babel import Locale
from babel.numbers import format_decimal

from bot.engine.dates import format_date
from bot.engine.yamlfile import YamlError, load_yaml

SUPPORTED_LOCALES = ("en", "es")
PLACEHOLDER = re.compile(r"\{([a-zA-Z0-9_.]+)\}")
# CLDR plural categories (Unicode TR35, "Language Plural Rules").
PLURAL_CATEGORIES = frozenset({"zero", "one", "two", "few", "many", "other"})
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Entry:
    """One catalog entry: plain text, or plural forms."""

    text: str | None
    plural: Mapping[str, str] | None
    line: int
    file: Path

    def forms(self) -> list[str]:
        return [self.text] if self.text is not None else list((self.plural or {}).values())

    def placeholders(self) -> set[str]:
        return {name for form in self.forms() for name in PLACEHOLDER.findall(form)}


class Catalogs:
    """All locales' entries, loaded once; rendering is a dict lookup and a substitution."""

    def __init__(self, entries: Mapping[str, Mapping[str, Entry]], files: Mapping[str, Path]):
        self.entries = entries
        self.files = files
        self._babel = {code: Locale.parse(code) for code in entries}

    @classmethod
    def load(cls, folder: Path) -> Catalogs:
        entries: dict[str, dict[str, Entry]] = {}
        files: dict[str, Path] = {}
        for code in SUPPORTED_LOCALES:
            locale_dir = folder / code
            paths = sorted(locale_dir.glob("*.yaml")) if locale_dir.is_dir() else []
            if not paths:
                raise YamlError(f"{locale_dir}: missing locale catalog for {code!r}")
            flat: dict[str, Entry] = {}
            for path in paths:
                data = load_yaml(path)
                if data is None:
                    continue
                if not isinstance(data, dict):
                    raise YamlError(f"{path}: a catalog is a mapping of keys to sentences")
                _flatten(data, "", flat, path)
            entries[code] = flat
            files[code] = locale_dir
        return cls(entries, files)

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(self.entries)

    def has(self, key: str, locale: str | None = None) -> bool:
        codes = [locale] if locale else list(self.entries)
        return all(key in self.entries.get(code, {}) for code in codes)

    def render(self, key: str, locale: str, params: Mapping[str, Any] | None = None) -> str:
        """The sentence for `key` in `locale`, with placeholders filled in.

        A placeholder without a value renders empty rather than as `{name}`:
        a person should never see template syntax.
        """
        catalog = self.entries.get(locale) or self.entries["en"]
        entry = catalog.get(key) or self.entries["en"].get(key)
        if entry is None:
            raise KeyError(key)
        params = params or {}
        if entry.plural is not None:
            count = params.get("count", 0)
            category = self._babel[locale].plural_form(count if isinstance(count, int) else 0)
            template = entry.plural.get(category) or entry.plural["other"]
        else:
            template = entry.text or ""
        return PLACEHOLDER.sub(
            lambda m: self.format_value(params.get(m.group(1)), locale), template
        )

    def format_value(self, value: Any, locale: str) -> str:
        """Numbers and dates through Babel, in the person's language."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, date):
            return format_date(value, locale)
        if isinstance(value, str) and _ISO_DATE.match(value):
            try:
                return format_date(date.fromisoformat(value), locale)
            except ValueError:
                return value
        if isinstance(value, int | float):
            return format_decimal(value, locale=locale)
        return str(value)

    def problems(self) -> list[str]:
        """Keys or placeholders present in one locale and not another."""
        found: list[str] = []
        base = self.entries["en"]
        for code, entries in self.entries.items():
            if code != "en":
                for key in sorted(set(base) - set(entries)):
                    found.append(
                        f"{self.files[code]}: missing key {key!r} (present in {base[key].file})"
                    )
                for key in sorted(set(entries) - set(base)):
                    found.append(
                        f"{entries[key].file}:{entries[key].line}: key {key!r} is not in en"
                    )
            for key, entry in entries.items():
                path = entry.file
                if entry.plural is not None and "other" not in entry.plural:
                    found.append(f"{path}:{entry.line}: {key!r} has plural forms but no 'other'")
                differs = key in base and entry.placeholders() != base[key].placeholders()
                if code != "en" and differs:
                    found.append(
                        f"{path}:{entry.line}: {key!r} placeholders "
                        f"{sorted(entry.placeholders())} differ from en "
                        f"{sorted(base[key].placeholders())}"
                    )
        return found


def _flatten(data: Mapping[str, Any], prefix: str, out: dict[str, Entry], path: Path) -> None:
    key_lines: Mapping[str, int] = getattr(data, "key_lines", {})
    for key, value in data.items():
        full = f"{prefix}{key}"
        line = key_lines.get(key, getattr(data, "line", 0))
        if full in out and (isinstance(value, str) or _is_plural(value)):
            raise YamlError(f"{path}:{line}: {full!r} is already defined in {out[full].file}")
        if isinstance(value, str):
            out[full] = Entry(text=value.strip(), plural=None, line=line, file=path)
        elif _is_plural(value):
            forms = {k: str(v).strip() for k, v in value.items()}
            out[full] = Entry(text=None, plural=forms, line=line, file=path)
        elif isinstance(value, Mapping):
            _flatten(value, f"{full}.", out, path)
        else:
            raise YamlError(f"{path}:{line}: {full!r} must be a sentence or a group of keys")


def _is_plural(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and set(value) <= PLURAL_CATEGORIES

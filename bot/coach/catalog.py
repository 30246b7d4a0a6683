"""The resource catalog: free learning resources described with schema.org LRMI names.

The shipped catalog lives in content/catalog/*.yaml (one file per subject),
described by content/catalog.schema.json; `coach catalog check` validates it.
Each file is a YAML list of mappings whose keys are the LRMI camelCase names
(`learningResourceType`, `timeRequired`, ...); `load_catalog` maps them to the
snake_case fields of `Resource`, and `check_catalog` names the file and line of
every problem so a teacher can fix a list in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.engine.topics import AREAS, LANGUAGES, SUBJECTS, Vocabulary
from bot.engine.yamlfile import YamlError, load_yaml

RESOURCE_TYPES = (
    "video",
    "article",
    "interactive",
    "course",
    "activity",
    "book",
    "podcast",
    "game",
)
GRADE_BANDS = ("K-2", "3-5", "6-8", "9-12")

# Source key -> Resource field. The order is the order a resource is written in.
FIELDS: dict[str, str] = {
    "id": "id",
    "name": "name",
    "url": "url",
    "description": "description",
    "provider": "provider",
    "learningResourceType": "learning_resource_type",
    "educationalLevel": "educational_level",
    "about": "about",
    "teaches": "teaches",
    "standards": "standards",
    "keywords": "keywords",
    "interestAreas": "interest_areas",
    "interestTags": "interest_tags",
    "timeRequired": "time_required",
    "inLanguage": "in_language",
    "isAccessibleForFree": "is_accessible_for_free",
    "accessibilityFeature": "accessibility_feature",
}
REQUIRED = (
    "id",
    "name",
    "url",
    "description",
    "provider",
    "learningResourceType",
    "educationalLevel",
    "about",
    "teaches",
    "inLanguage",
)
# Keys whose value is a list of strings; the list ones that must not be empty are REQUIRED.
_LISTS = frozenset(
    {
        "educationalLevel",
        "about",
        "teaches",
        "standards",
        "keywords",
        "interestAreas",
        "interestTags",
        "accessibilityFeature",
    }
)
# schema.org's accessibilityFeature vocabulary (the W3C/DAISY list), the values
# a resource page can honestly claim; a typo here would silently hide a resource
# from a learner filtering for captions.
# fmt: off
ACCESSIBILITY_FEATURES = frozenset({
    "alternativeText", "annotations", "audioDescription", "bookmarks", "captions",
    "ChemML", "describedMath", "displayTransformability", "highContrastAudio",
    "highContrastDisplay", "index", "largePrint", "latex", "longDescription", "MathML",
    "none", "printPageNumbers", "readingOrder", "rubyAnnotations", "signLanguage",
    "structuralNavigation", "synchronizedAudioText", "tableOfContents", "tactileGraphic",
    "tactileObject", "timingControl", "transcript", "ttsMarkup", "unlocked",
})
# fmt: on
_TEXTS = (
    "id",
    "name",
    "url",
    "description",
    "provider",
    "learningResourceType",
    "timeRequired",
    "inLanguage",
)
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_URL = re.compile(r"^https?://[^\s/?#]+\.[^\s/?#]+(?:[/?#]\S*)?$")
# ISO 8601 durations in days, hours, minutes and seconds (P1D, PT1H30M, PT45S).
# Years and months are left out on purpose: their length in time is ambiguous.
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<d>[0-9]+)D)?"
    r"(?:T(?=[0-9])(?:(?P<h>[0-9]+)H)?(?:(?P<m>[0-9]+)M)?(?:(?P<s>[0-9]+(?:\.[0-9]+)?)S)?)?$"
)


class CatalogError(ValueError):
    """A catalog that did not load: `problems` lists each one with its file and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the catalog: {problems[0]}")
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource; field names follow schema.org LearningResource / LRMI."""

    id: str
    name: str
    url: str
    description: str
    provider: str
    learning_resource_type: str  # one of RESOURCE_TYPES
    educational_level: tuple[str, ...]  # grade bands, GRADE_BANDS
    about: tuple[str, ...]  # subjects (the vocabulary's topic subjects)
    teaches: tuple[str, ...]  # topic ids from content/vocabulary.yaml
    keywords: tuple[str, ...]
    interest_areas: tuple[str, ...]  # Holland R I A S E C
    interest_tags: tuple[str, ...]  # interest ids from content/vocabulary.yaml
    time_required: timedelta | None  # from an ISO 8601 duration, e.g. PT15M
    in_language: str  # "en" or "es"
    is_accessible_for_free: bool = True
    accessibility_feature: tuple[str, ...] = ()
    standards: tuple[str, ...] = ()  # standard identifiers where known (e.g. CCSS.MATH...)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Resources by id in file order, and the files they came from."""

    resources: Mapping[str, Resource]
    files: tuple[Path, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.resources)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources.values())

    def get(self, id: str) -> Resource | None:
        return self.resources.get(id)


def parse_duration(text: str) -> timedelta | None:
    """An ISO 8601 duration (PnDTnHnMnS forms) as a timedelta; None if it is not one."""
    match = _DURATION.match(text)
    if match is None:
        return None
    d, h, m, s = (match.group(k) for k in "dhms")
    return timedelta(
        days=int(d or 0), hours=int(h or 0), minutes=int(m or 0), seconds=float(s or 0)
    )


def format_duration(duration: timedelta) -> str:
    """A timedelta as the ISO 8601 duration parse_duration reads back to the same value."""
    micros = duration // timedelta(microseconds=1)
    if micros < 0:
        raise ValueError(f"a duration cannot be negative: {duration}")
    seconds, micros = divmod(micros, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    clock = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M")) if n)
    if micros:
        clock += f"{seconds}.{micros:06d}".rstrip("0") + "S"
    elif seconds:
        clock += f"{seconds}S"
    text = (f"P{days}D" if days else "P") + (f"T{clock}" if clock else "")
    return "PT0S" if text == "P" else text


def catalog_files(path: Path) -> list[Path]:
    """The YAML files of a catalog: PATH itself, or a folder's *.yaml and *.yml by name."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


# libyaml when present: the line-keeping pure-Python loader takes about 250 ms
# on the shipped catalog, libyaml about 45. Line numbers are only needed when
# something is wrong, and then `check_catalog` re-reads with the line-keeping loader.
_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _FastLoader(_Base):  # type: ignore[valid-type,misc]
    """libyaml, refusing duplicate keys as load_yaml does (PyYAML keeps the last)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_FastLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_catalog(folder: Path, vocabulary: Vocabulary) -> Catalog:
    """Read every resource under `folder` (or one file), in file order.

    Raises CatalogError listing every problem, with file and line, if any
    resource is invalid: the catalog loads whole or not at all.
    """
    files = catalog_files(folder)
    resources: dict[str, Resource] = {}
    urls: set[str] = set()
    clean = True
    for path in files:
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_FastLoader)  # noqa: S506
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            clean = False
            break
        if data is None:
            continue  # an empty file is an empty list, as in check_catalog
        if not isinstance(data, list):
            clean = False
            break
        for entry in data:
            if not isinstance(entry, dict) or resource_problems(entry, vocabulary):
                clean = False
                break
            resource = _resource(entry)
            url = url_key(resource.url)
            if resource.id in resources or url in urls:
                clean = False
                break
            resources[resource.id] = resource
            urls.add(url)
        if not clean:
            break
    if not clean:
        # The slow path, only for a broken catalog: name every problem with its line.
        problems = check_catalog(folder, vocabulary)
        raise CatalogError(problems or [f"{folder}: the catalog could not be read"])
    return Catalog(resources, tuple(files))


def check_catalog(path: Path, vocabulary: Vocabulary) -> list[str]:
    """Every problem in the catalog at `path` (a folder or one YAML file), as "file:line: what".

    Reports duplicate ids and addresses (across files), unknown tags, levels,
    subjects, types, languages and fields, bad durations and addresses, and
    missing required fields. An empty list means the catalog is sound.
    """
    if not path.exists():
        return [f"{path}: no such file or folder"]
    files = catalog_files(path)
    if not files:
        return [f"{path}: no .yaml files"]
    problems: list[str] = []
    ids: dict[str, str] = {}
    urls: dict[str, str] = {}
    for file in files:
        try:
            data = load_yaml(file)
        except YamlError as exc:
            problems.append(str(exc))
            continue
        if data is None:
            continue  # an empty file is an empty list
        if not isinstance(data, list):
            problems.append(f"{file}:1: expected a list of resources")
            continue
        for index, entry in enumerate(data):
            line = getattr(entry, "line", 0)
            if not isinstance(entry, dict):
                problems.append(
                    f"{file}:{_item_line(file, index)}: each resource is a mapping of fields"
                )
                continue
            key_lines: dict[str, int] = getattr(entry, "key_lines", {})
            for key, message in resource_problems(entry, vocabulary):
                problems.append(f"{file}:{key_lines.get(key, line)}: {message}")
            resource_id = entry.get("id")
            if isinstance(resource_id, str):
                at = f"{file}:{key_lines.get('id', line)}"
                if resource_id in ids:
                    problems.append(
                        f"{at}: id {resource_id!r} repeats (first at {ids[resource_id]})"
                    )
                else:
                    ids[resource_id] = at
            url = entry.get("url")
            if isinstance(url, str):
                at = f"{file}:{key_lines.get('url', line)}"
                key = url_key(url)
                if key in urls:
                    problems.append(f"{at}: address {url} repeats (first at {urls[key]})")
                else:
                    urls[key] = at
    return problems


def _item_line(path: Path, index: int) -> int:
    """The line of the list item at `index`: only mappings carry their line, so compose."""
    node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if isinstance(node, yaml.SequenceNode) and index < len(node.value):
        return int(node.value[index].start_mark.line) + 1
    return 0


def url_key(url: str) -> str:
    """The address as compared for duplicates: case-blind host, no trailing slash."""
    scheme, _, rest = url.partition("://")
    host, slash, tail = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{tail}".rstrip("/")


def resource_problems(entry: Mapping[str, Any], vocabulary: Vocabulary) -> list[tuple[str, str]]:
    """(key, message) for each problem in one resource; the caller adds file and line."""
    found: list[tuple[str, str]] = []
    rid = entry.get("id")
    label = f"resource {rid!r}" if isinstance(rid, str) else "resource"
    bad: set[str] = set()  # keys missing or of the wrong shape: their values go unchecked

    def problem(key: str, message: str) -> None:
        found.append((key, f"{label}: {message}"))
        bad.add(key)

    for key in entry:
        if key not in FIELDS:
            problem(key, f"unknown field {key!r}")
    for key in REQUIRED:
        value = entry.get(key)
        if value is None or value == "" or value == []:
            # Reported on the resource's first line: the key has no line of its own.
            found.append(("", f"{label}: missing required field {key!r}"))
            bad.add(key)
    for key in _TEXTS:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            problem(key, f"{key} must be text, not {value!r}")
    for key in _LISTS:
        value = entry.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            problem(key, f"{key} must be a list of text")
        elif isinstance(value, list) and len(set(value)) < len(value):
            problem(key, f"{key} lists a value twice")

    def given(key: str) -> bool:
        return key not in bad and entry.get(key) is not None

    if given("id") and not _ID.match(entry["id"]):
        problem("id", "id must be lowercase words joined by hyphens")
    if given("url") and not _URL.match(entry["url"]):
        problem("url", f"url {entry['url']!r} is not an http(s) address")
    if given("learningResourceType") and entry["learningResourceType"] not in RESOURCE_TYPES:
        problem("learningResourceType", f"unknown type {entry['learningResourceType']!r}")
    if given("inLanguage") and entry["inLanguage"] not in LANGUAGES:
        problem("inLanguage", f"unknown language {entry['inLanguage']!r}")
    if given("timeRequired") and parse_duration(entry["timeRequired"]) is None:
        problem(
            "timeRequired", f"timeRequired {entry['timeRequired']!r} is not a duration like PT15M"
        )
    if entry.get("isAccessibleForFree", True) is not True:
        # The catalog promises free resources; a paid one does not belong here.
        problem("isAccessibleForFree", "isAccessibleForFree must be true")
    for key, allowed, what in (
        ("educationalLevel", GRADE_BANDS, "level"),
        ("about", SUBJECTS, "subject"),
        ("interestAreas", AREAS, "interest area"),
        ("accessibilityFeature", ACCESSIBILITY_FEATURES, "accessibility feature"),
    ):
        if given(key):
            for value in entry[key]:
                if value not in allowed:
                    found.append((key, f"{label}: unknown {what} {value!r}"))
    about = entry["about"] if given("about") else None
    for key, kind in (("teaches", "topic"), ("interestTags", "interest")):
        if not given(key):
            continue
        for tag in entry[key]:
            term = vocabulary.get(tag)
            if term is None or term.kind != kind:
                found.append((key, f"{label}: unknown {kind} tag {tag!r}"))
            elif kind == "topic" and about is not None and term.group not in about:
                # Filtering by subject must not miss a resource that teaches its topic.
                found.append(
                    (key, f"{label}: topic {tag!r} is in {term.group}, which `about` omits")
                )
    return found


def _resource(entry: Mapping[str, Any]) -> Resource:
    """A checked source mapping as a Resource (lists become tuples, durations timedeltas)."""
    values: dict[str, Any] = {}
    for key, name in FIELDS.items():
        if key not in entry:
            continue
        value = entry[key]
        if key in _LISTS:
            value = tuple(value)
        elif key == "timeRequired":
            value = parse_duration(value)
        values[name] = value
    for key in ("keywords", "interestAreas", "interestTags"):
        values.setdefault(FIELDS[key], ())
    values.setdefault("time_required", None)
    return Resource(**values)


def resource_from_source(entry: Mapping[str, Any]) -> Resource:
    """A stored, already checked source mapping (a school's imported row) as a Resource."""
    return _resource(entry)

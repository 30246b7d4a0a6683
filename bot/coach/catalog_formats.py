"""A school's resource lists as CSV or schema.org JSON-LD: read for `coach catalog import`,
written by `coach catalog export`.

Pure: no database. Reading turns each row or object into a source mapping in the
catalog's field names (catalog.FIELDS), checks it exactly as the shipped YAML
catalog is checked (`resource_problems`), and sorts the rows into good ones and
rejected ones with the reason, so one bad row never spoils the rest. A good row
is returned in its canonical form (`source_mapping`): the same resource read
from CSV, JSON-LD or YAML is the same mapping, which is what lets an import tell
"unchanged" from "updated".

CSV: a header row of the catalog's field names (id, name, url, ..., in any order,
case aside); list fields (educationalLevel, about, teaches, keywords, ...) hold
their values separated by ";". JSON-LD: one object, an array of them, or
{"@graph": [...]}, in the shapes real LRMI data takes (see `_node_mapping`).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.coach.catalog import (
    FIELDS,
    GRADE_BANDS,
    REQUIRED,
    RESOURCE_TYPES,
    Resource,
    format_duration,
    parse_duration,
    resource_from_source,
    resource_problems,
    url_key,
)
from bot.engine.topics import Vocabulary

# File suffix -> format, for import and `coach catalog check FILE`.
SUFFIXES = {".csv": "csv", ".json": "jsonld", ".jsonld": "jsonld"}
# Between the values of a list field in one CSV cell. Not a comma: a spreadsheet
# user types commas in descriptions, and a cell of "K-2; 3-5" reads naturally.
LIST_SEPARATOR = ";"
# The JSON-LD context of an export: schema.org for every LRMI property, and a
# prefix for the fields schema.org has no name for (interest areas and tags). A
# URN, not a web address: nothing is published there to dereference.
COACH_PREFIX = "coach"
COACH_NAMESPACE = "urn:coach:"
CONTEXT = {"@vocab": "https://schema.org/", COACH_PREFIX: COACH_NAMESPACE}
# The fields whose value is a list (in YAML a list, in CSV a cell split on LIST_SEPARATOR).
# fmt: off
_LISTS = frozenset({
    "educationalLevel", "about", "teaches", "standards", "keywords", "interestAreas",
    "interestTags", "accessibilityFeature",
})
# fmt: on
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
# How often reading reports progress: often enough for a smooth bar, rarely
# enough that the callback costs nothing next to the checks.
_PROGRESS_EVERY = 500

Progress = Callable[[str, int, int], None]
"""Called as (stage, rows done, rows in all) while a long import runs."""


class FormatError(ValueError):
    """A file that cannot be read at all; the message is one line naming the file."""


@dataclass(slots=True)
class Rows:
    """A file's resources sorted: good ones (label, canonical mapping), rejected (label, why).

    A label names the file and the row ("teachers.csv: row 4") or the JSON-LD
    item ("list.jsonld: item 2").
    """

    good: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # every row's, in file order

    def in_file_order(self, rejected: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Rejections (these rows' own, and any found later) sorted as the rows are."""
        position = {label: index for index, label in enumerate(self.labels)}
        return sorted(rejected, key=lambda pair: position.get(pair[0], len(position)))


# -- reading ---------------------------------------------------------------------------


def read_resources(path: Path, vocabulary: Vocabulary, progress: Progress | None = None) -> Rows:
    """Read and check a .csv, .json or .jsonld file; FormatError if it cannot be read at all."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise FormatError(
            f"{path}: unknown format {path.suffix or '(no suffix)'!r}; "
            "use a .csv, .json or .jsonld file"
        )
    try:
        # Bytes, not read_text: csv must see the file's own line ends (a quoted
        # cell may hold a line break), and "utf-8-sig" drops the BOM Excel writes.
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FormatError(
            f"{path}: not UTF-8 text (byte {exc.start + 1}); save it as UTF-8 (CSV UTF-8 in Excel)"
        ) from None
    source = path.name
    with without_cycle_collector():
        if kind == "csv":
            return parse_csv(text, source, vocabulary, progress)
        return parse_jsonld(text, source, vocabulary, progress)


@contextmanager
def without_cycle_collector() -> Iterator[None]:
    """Pause Python's cycle collector while building many small objects.

    Rows are plain dicts, lists and strings with no reference cycles, so the
    collector finds nothing; yet its passes over a heap growing by 50,000 rows
    took more than half the time (measured: 3.9 s of CPU without, 1.5 s with).
    Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_csv(
    text: str, source: str, vocabulary: Vocabulary, progress: Progress | None = None
) -> Rows:
    """Resources from CSV text; `source` names the file in labels and errors."""
    # skipinitialspace: a quoted cell after ", " is still quoted.
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), skipinitialspace=True)
    columns: list[str | None] | None = None
    raw: list[tuple[str, dict[str, Any] | str]] = []
    line = 0  # the last physical line the reader consumed
    try:
        for cells in reader:
            row = line + 1  # where this record starts: the row number a spreadsheet shows
            line = reader.line_num
            cells = [cell.strip() for cell in cells]
            if not any(cells):
                continue  # a blank line, or a row of empty cells
            if columns is None:
                columns = _csv_columns(cells, source, row)
                continue
            raw.append((f"row {row}", _csv_row(cells, columns)))
    except csv.Error as exc:
        raise FormatError(f"{source}: row {line + 1}: not valid CSV: {exc}") from None
    if columns is None:
        raise FormatError(f"{source}: empty: no header row of field names")
    return _check(raw, source, vocabulary, progress)


def _csv_columns(cells: list[str], source: str, row: int) -> list[str | None]:
    """The header's field names, in catalog spelling; None for an empty trailing header cell."""
    by_lower = {key.lower(): key for key in FIELDS}
    columns: list[str | None] = []
    for cell in cells:
        if not cell:
            columns.append(None)
            continue
        key = by_lower.get(cell.lower())
        if key is None:
            if len(cells) == 1 and LIST_SEPARATOR in cell:
                raise FormatError(
                    f"{source}: row {row}: the header is one column; "
                    "separate columns with commas (lists inside a cell with ';')"
                )
            raise FormatError(
                f"{source}: row {row}: unknown column {cell!r}; "
                f"the columns are the catalog's field names: {', '.join(FIELDS)}"
            )
        if key in columns:
            raise FormatError(f"{source}: row {row}: column {key!r} appears twice")
        columns.append(key)
    missing = [key for key in REQUIRED if key not in columns]
    if missing:
        raise FormatError(
            f"{source}: row {row}: no column for required field(s) {', '.join(missing)}"
        )
    return columns


def _csv_row(cells: list[str], columns: list[str | None]) -> dict[str, Any] | str:
    """One CSV record as a source mapping, or why it is not one."""
    extra = [cell for cell in cells[len(columns) :] if cell]
    if extra:
        why = f"{len(cells)} cells, but the header names {len(columns)} columns"
        rid = cells[columns.index("id")] if "id" in columns else ""
        return f"resource {rid!r}: {why}" if rid else why
    entry: dict[str, Any] = {}
    for key, cell in zip(columns, cells, strict=False):
        # A missing trailing cell is an empty one: spreadsheets drop them.
        if key is None:
            if cell:
                return "a value in a column with no name in the header"
            continue
        if not cell:
            continue
        if key in _LISTS:
            entry[key] = _split(cell, LIST_SEPARATOR)
        elif key == "isAccessibleForFree":
            entry[key] = _boolean(cell)
        else:
            entry[key] = cell
    return entry


def parse_jsonld(
    text: str, source: str, vocabulary: Vocabulary, progress: Progress | None = None
) -> Rows:
    """Resources from schema.org JSON-LD: one object, an array, or {"@graph": [...]}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{source}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict) and "@graph" in data:
        items = data["@graph"]
        if not isinstance(items, list):
            raise FormatError(f'{source}: "@graph" must be an array of resources')
    elif isinstance(data, dict):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise FormatError(
            f'{source}: expected a resource object, an array of them, or {{"@graph": [...]}}'
        )
    # Nodes a resource may point at by "@id" (a provider described once, say).
    nodes = {
        item["@id"]: item
        for item in items
        if isinstance(item, dict) and isinstance(item.get("@id"), str)
    }
    raw: list[tuple[str, dict[str, Any] | str]] = []
    for number, item in enumerate(items, start=1):
        where = f"item {number}"
        if not isinstance(item, dict):
            raw.append((where, "each resource is a JSON object"))
        elif not _is_auxiliary(item):
            raw.append((where, _node_mapping(item, nodes)))
    return _check(raw, source, vocabulary, progress)


# Types of the nodes a graph describes beside its resources; they are looked up by
# "@id", not imported.
_AUXILIARY_TYPES = frozenset(
    {
        "Organization",
        "Person",
        "DefinedTerm",
        "DefinedTermSet",
        "AlignmentObject",
        "Language",
        "EducationalAudience",
        "Thing",
    }
)
# JSON-LD property (prefix stripped) -> catalog field. schema.org has no
# `standards` (LRMI says educationalAlignment) and no interest fields (ours);
# `id` and the catalog's own names are accepted so a plain JSON list works too.
_PROPERTIES = {key: key for key in FIELDS} | {"identifier": "id"}
_PREFIXES = ("https://schema.org/", "http://schema.org/", "schema:", f"{COACH_PREFIX}:")
# An AlignmentObject's alignmentType -> the field its targetName belongs to.
# LRMI 1.1 put grade levels in alignments; "teaches" and "assesses" name standards.
_ALIGNMENTS: dict[str | None, str] = {
    "educationalLevel": "educationalLevel",
    "teaches": "standards",
    "assesses": "standards",
    None: "standards",
}


def _type_names(node: Mapping[str, Any]) -> set[str]:
    types = node.get("@type", [])
    types = [types] if isinstance(types, str) else types if isinstance(types, list) else []
    return {_local_name(t) for t in types if isinstance(t, str)}


def _is_auxiliary(node: Mapping[str, Any]) -> bool:
    types = _type_names(node)
    return bool(types) and types <= _AUXILIARY_TYPES


def _local_name(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _node_mapping(node: Mapping[str, Any], nodes: Mapping[str, Any]) -> dict[str, Any] | str:
    """One JSON-LD node as a source mapping (values left as found when their shape is
    wrong, so the checks name the field), or why it is not a resource.

    Accepted shapes: provider as text or an Organization/Person with a name;
    levels, subjects and topics as text, lists, or DefinedTerm objects (termCode,
    else name); inLanguage as a tag ("en-US" counts as "en") or a Language;
    keywords as a list or comma-separated text; the interest fields plain or with
    the coach: prefix. Other schema.org properties (license, author, image, ...)
    are not the catalog's and are left out; an unknown coach: property is an error.
    """
    entry: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("@"):
            continue  # @context, @type, @id: JSON-LD's own keys
        name = _local_name(key)
        if name == "educationalAlignment":
            for aligned_key, target in _alignments(value, nodes):
                _add_terms(entry, aligned_key, [target])
            continue
        target_key = _PROPERTIES.get(name)
        if target_key is None:
            if key.startswith(f"{COACH_PREFIX}:"):
                entry[key] = value  # ours, misspelt: the check names it
            continue
        if target_key in entry and target_key not in _LISTS:
            return f"{target_key} is given twice (as {key!r} and another name)"
        if target_key in _LISTS:
            _add_terms(entry, target_key, _terms(value, nodes))
        elif target_key == "provider":
            entry[target_key] = _names(value, nodes)
        elif target_key == "isAccessibleForFree":
            entry[target_key] = _boolean(value) if isinstance(value, str) else value
        elif target_key == "inLanguage":
            entry[target_key] = _language(value, nodes)
        elif target_key == "learningResourceType":
            entry[target_key] = _resource_type(value, nodes)
        else:
            entry[target_key] = _text(value, nodes)
    return entry


def _deref(value: Any, nodes: Mapping[str, Any]) -> Any:
    """A {"@id": ...} reference replaced by the node it names, when the graph has it."""
    if isinstance(value, dict) and set(value) == {"@id"}:
        return nodes.get(value["@id"], value)
    return value


def _text(value: Any, nodes: Mapping[str, Any]) -> Any:
    """Text from a string, a {"@value": ...}, an {"@id": ...} (urls) or the first of a list."""
    value = _deref(value, nodes)
    if isinstance(value, list) and value:
        return _text(value[0], nodes)
    if isinstance(value, dict):
        for key in ("@value", "@id", "url"):
            if isinstance(value.get(key), str):
                return value[key].strip()
        return value
    return value.strip() if isinstance(value, str) else value


def _term(value: Any, nodes: Mapping[str, Any]) -> Any:
    """One term: text, or a DefinedTerm / Thing by its termCode, else its name."""
    value = _deref(value, nodes)
    if isinstance(value, dict):
        for key in ("termCode", "codeValue", "name", "@value"):
            found = _text(value.get(key), nodes)
            if isinstance(found, str) and found:
                return found
    return _text(value, nodes)


def _terms(value: Any, nodes: Mapping[str, Any]) -> list[Any]:
    """A list field's values: a list, one term, or comma-separated text."""
    if isinstance(value, str):
        return _split(value, ",")
    items = value if isinstance(value, list) else [value]
    found: list[Any] = []
    for item in items:
        term = _term(item, nodes)
        if isinstance(term, str):
            found.extend(_split(term, ","))
        else:
            found.append(term)
    return found


def _add_terms(entry: dict[str, Any], key: str, values: list[Any]) -> None:
    entry.setdefault(key, []).extend(values)


def _names(value: Any, nodes: Mapping[str, Any]) -> Any:
    """A provider: text, an Organization or Person's name, or several joined."""
    items = value if isinstance(value, list) else [value]
    names = [_term(item, nodes) for item in items]
    if names and all(isinstance(n, str) and n for n in names):
        return ", ".join(names)
    return value


def _language(value: Any, nodes: Mapping[str, Any]) -> Any:
    """A language tag, also from a Language node (its alternateName is the tag)."""
    value = _deref(value, nodes)
    if isinstance(value, list) and len(value) == 1:
        value = _deref(value[0], nodes)
    if isinstance(value, dict):
        return _text(value.get("alternateName") or value.get("name"), nodes)
    return _text(value, nodes)


def _resource_type(value: Any, nodes: Mapping[str, Any]) -> Any:
    """The first of a resource's types that the catalog knows ("Video" counts as "video")."""
    items = value if isinstance(value, list) else [value]
    found = [_term(item, nodes) for item in items]
    names = [f.lower() for f in found if isinstance(f, str)]
    for name in names:
        if name in RESOURCE_TYPES:
            return name
    return names[0] if names else value


def _alignments(value: Any, nodes: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for item in value if isinstance(value, list) else [value]:
        item = _deref(item, nodes)
        if not isinstance(item, dict):
            continue
        alignment = item.get("alignmentType")
        if alignment is not None and not isinstance(alignment, str):
            continue
        kind = _ALIGNMENTS.get(alignment)
        target = _text(item.get("targetName") or item.get("targetUrl"), nodes)
        if kind is not None and target is not None:
            yield kind, target


def _split(text: str, separator: str) -> list[str]:
    return [part.strip() for part in text.split(separator) if part.strip()]


def _boolean(text: str) -> bool | str:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return text  # left as written: the check says it must be true


# -- checking --------------------------------------------------------------------------

# A grade band, or a grade or range of grades a teacher or an LRMI file might write
# ("3", "Grade 4", "grades 6-8", "K-5", "KG", "09"), mapped onto GRADE_BANDS.
_GRADE = r"(k|kg|kindergarten|0?[1-9]|1[0-2])(?:st|nd|rd|th)?"
_GRADES = re.compile(
    rf"^(?:grades?\s*)?{_GRADE}(?:\s*(?:-|–|to)\s*{_GRADE})?(?:\s*grade)?$", re.IGNORECASE
)
_BAND_OF_GRADE = {0: "K-2", 1: "K-2", 2: "K-2", 3: "3-5", 4: "3-5", 5: "3-5"} | {
    g: "6-8" if g <= 8 else "9-12" for g in range(6, 13)
}


def _grade(token: str) -> int:
    return 0 if token.lower().startswith("k") else int(token)


def _bands(level: Any) -> list[Any]:
    """A level as grade bands: itself if it is one; the bands a grade or range spans."""
    if not isinstance(level, str) or level in GRADE_BANDS:
        return [level]
    match = _GRADES.match(level.strip())
    if match is None:
        return [level]  # left for the check to name
    low = _grade(match.group(1))
    high = _grade(match.group(2)) if match.group(2) else low
    if high < low:
        return [level]
    return list(dict.fromkeys(_BAND_OF_GRADE[g] for g in range(low, high + 1)))


def _normalise(entry: dict[str, Any]) -> dict[str, Any]:
    """Forgive what a spreadsheet or another tool writes differently: the case of a type
    or language, grades for grade bands."""
    if isinstance(entry.get("learningResourceType"), str):
        entry["learningResourceType"] = entry["learningResourceType"].lower()
    if isinstance(entry.get("inLanguage"), str):
        # A BCP 47 tag's primary subtag: "en-US" and "es-419" are the catalog's en and es.
        entry["inLanguage"] = entry["inLanguage"].replace("_", "-").split("-")[0].lower()
    duration = entry.get("timeRequired")
    if isinstance(duration, str) and parse_duration(duration.upper()) is not None:
        entry["timeRequired"] = duration.upper()  # "pt15m" is PT15M
    levels = entry.get("educationalLevel")
    if isinstance(levels, list):
        # Grades of one band collapse into it ("3; 4" is 3-5, once).
        entry["educationalLevel"] = _unique(band for level in levels for band in _bands(level))
    for key in _LISTS:
        if entry.get(key) == []:
            del entry[key]  # an empty list is an absent field, as in YAML
    return entry


def _unique(values: Iterable[Any]) -> list[Any]:
    """Values in order, each once (by equality: a malformed value may be unhashable)."""
    found: list[Any] = []
    for value in values:
        if value not in found:
            found.append(value)
    return found


def _check(
    raw: list[tuple[str, dict[str, Any] | str]],
    source: str,
    vocabulary: Vocabulary,
    progress: Progress | None,
) -> Rows:
    """Check each row as the YAML catalog is checked; a later row repeating an id or an
    address is rejected, naming the first."""
    rows = Rows()
    ids: dict[str, str] = {}
    urls: dict[str, str] = {}
    total = len(raw)
    for index, (where, entry) in enumerate(raw):
        label = f"{source}: {where}"
        rows.labels.append(label)
        if progress is not None and index % _PROGRESS_EVERY == 0:
            progress("checking", index, total)
        if isinstance(entry, str):
            rows.rejected.append((label, entry))
            continue
        entry = _normalise(entry)
        problems = resource_problems(entry, vocabulary)
        if problems:
            rows.rejected.append((label, _reason(entry, [message for _, message in problems])))
            continue
        mapping = source_mapping(resource_from_source(entry))
        rid, url = mapping["id"], mapping["url"]
        if rid in ids:
            rows.rejected.append((label, f"resource {rid!r}: id repeats (first at {ids[rid]})"))
            continue
        key = url_key(url)
        if key in urls:
            rows.rejected.append(
                (label, f"resource {rid!r}: address {url} repeats (first at {urls[key]})")
            )
            continue
        ids[rid] = where
        urls[key] = where
        rows.good.append((label, mapping))
    if progress is not None:
        progress("checking", total, total)
    return rows


def _reason(entry: Mapping[str, Any], messages: list[str]) -> str:
    """The problems of one row as one line: "resource 'x': first; second"."""
    rid = entry.get("id")
    prefix = f"resource {rid!r}: " if isinstance(rid, str) else "resource: "
    return prefix + "; ".join(message.removeprefix(prefix) for message in messages)


# -- writing ---------------------------------------------------------------------------


def source_mapping(resource: Resource) -> dict[str, Any]:
    """A resource in the catalog's source field names, canonical: field order as in
    FIELDS, lists as lists, empty lists left out, the duration in ISO 8601."""
    mapping: dict[str, Any] = {}
    for key, attribute in FIELDS.items():
        value = getattr(resource, attribute)
        if isinstance(value, tuple):
            if value:
                mapping[key] = list(value)
        elif key == "timeRequired":
            if value is not None:
                mapping[key] = format_duration(value)
        else:
            mapping[key] = value
    return mapping


def to_csv(resources: Iterable[Resource]) -> str:
    """The resources as CSV with a header of field names; parse_csv reads it back equal."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for resource in resources:
        mapping = source_mapping(resource)
        row: list[str] = []
        for key in FIELDS:
            value = mapping.get(key)
            if isinstance(value, list):
                row.append(f"{LIST_SEPARATOR} ".join(value))
            elif isinstance(value, bool):
                row.append("true" if value else "false")
            else:
                row.append("" if value is None else str(value))
        writer.writerow(row)
    return out.getvalue()


def to_jsonld(resources: Iterable[Resource]) -> str:
    """The resources as a schema.org JSON-LD @graph of LearningResources."""
    graph = [_node(resource) for resource in resources]
    return json.dumps({"@context": CONTEXT, "@graph": graph}, ensure_ascii=False, indent=2) + "\n"


def _node(resource: Resource) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@type": "LearningResource",
        "identifier": resource.id,
        "name": resource.name,
        "url": resource.url,
        "description": resource.description,
        "provider": {"@type": "Organization", "name": resource.provider},
        "learningResourceType": resource.learning_resource_type,
        "educationalLevel": [
            {"@type": "DefinedTerm", "name": band, "termCode": band}
            for band in resource.educational_level
        ],
        "about": list(resource.about),
        "teaches": list(resource.teaches),
    }
    if resource.standards:
        node["educationalAlignment"] = [
            {"@type": "AlignmentObject", "alignmentType": "teaches", "targetName": code}
            for code in resource.standards
        ]
    if resource.keywords:
        node["keywords"] = list(resource.keywords)
    if resource.interest_areas:
        node[f"{COACH_PREFIX}:interestAreas"] = list(resource.interest_areas)
    if resource.interest_tags:
        node[f"{COACH_PREFIX}:interestTags"] = list(resource.interest_tags)
    if resource.time_required is not None:
        node["timeRequired"] = format_duration(resource.time_required)
    node["inLanguage"] = resource.in_language
    node["isAccessibleForFree"] = resource.is_accessible_for_free
    if resource.accessibility_feature:
        node["accessibilityFeature"] = list(resource.accessibility_feature)
    return node

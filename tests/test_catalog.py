"""The resource catalog: the shipped one is sound and broad; a broken one is named by line."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from bot.coach.catalog import (
    ACCESSIBILITY_FEATURES,
    FIELDS,
    GRADE_BANDS,
    REQUIRED,
    RESOURCE_TYPES,
    Catalog,
    CatalogError,
    Resource,
    check_catalog,
    load_catalog,
    parse_duration,
)
from bot.engine.topics import AREAS, LANGUAGES, SUBJECTS, Vocabulary
from bot.paths import shipped
from tests.test_cli import coach

CONTENT = shipped("content")
CATALOG = CONTENT / "catalog"
SCHEMA = CONTENT / "catalog.schema.json"


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.load(CONTENT / "vocabulary.yaml")


@pytest.fixture(scope="module")
def catalog(vocabulary: Vocabulary) -> Catalog:
    return load_catalog(CATALOG, vocabulary)


# -- the shipped catalog -----------------------------------------------------------------


def test_the_shipped_catalog_passes_check(vocabulary: Vocabulary) -> None:
    assert check_catalog(CATALOG, vocabulary) == []


def test_one_file_per_subject() -> None:
    assert sorted(p.stem for p in CATALOG.glob("*.yaml")) == sorted(SUBJECTS)


def test_the_shipped_catalog_is_broad(catalog: Catalog) -> None:
    resources = list(catalog)
    assert len(resources) >= 200
    assert sum(r.in_language == "es" for r in resources) >= 30
    subjects = Counter(s for r in resources for s in r.about)
    assert set(subjects) == set(SUBJECTS)
    assert min(subjects.values()) >= 10, subjects
    bands = Counter(b for r in resources for b in r.educational_level)
    assert set(bands) == set(GRADE_BANDS)
    assert min(bands.values()) >= 40, bands
    assert {r.learning_resource_type for r in resources} <= set(RESOURCE_TYPES)
    # Spanish reaches every band, so a Spanish-speaking learner is never left with nothing.
    assert {b for r in resources if r.in_language == "es" for b in r.educational_level} == set(
        GRADE_BANDS
    )


def test_every_tag_is_in_the_vocabulary(catalog: Catalog, vocabulary: Vocabulary) -> None:
    for resource in catalog:
        for topic in resource.teaches:
            term = vocabulary.get(topic)
            assert term is not None, (resource.id, topic)
            assert term.kind == "topic", (resource.id, topic)
            assert term.group in resource.about, (resource.id, topic)
        for interest in resource.interest_tags:
            term = vocabulary.get(interest)
            assert term is not None, (resource.id, interest)
            assert term.kind == "interest", (resource.id, interest)


def test_every_resource_is_free_over_http_and_unique(catalog: Catalog) -> None:
    resources = list(catalog)
    assert all(r.is_accessible_for_free for r in resources)
    assert all(r.url.startswith(("https://", "http://")) for r in resources)
    assert len({r.url.rstrip("/").lower() for r in resources}) == len(resources)
    assert all(r.time_required is not None for r in resources)


def test_the_schema_agrees_with_the_checker() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    props = schema["properties"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(props) == set(FIELDS)
    assert schema["required"] == list(REQUIRED)
    assert schema["additionalProperties"] is False
    assert props["learningResourceType"]["enum"] == list(RESOURCE_TYPES)
    assert props["educationalLevel"]["items"]["enum"] == list(GRADE_BANDS)
    assert props["about"]["items"]["enum"] == list(SUBJECTS)
    assert props["interestAreas"]["items"]["enum"] == list(AREAS)
    assert props["inLanguage"]["enum"] == list(LANGUAGES)
    assert set(props["accessibilityFeature"]["items"]["enum"]) == ACCESSIBILITY_FEATURES
    # The schema's duration pattern accepts exactly what the loader parses.
    pattern = re.compile(props["timeRequired"]["pattern"])
    for text in ("PT15M", "PT1H30M", "P1D", "P1DT2H", "PT45S", "PT0.5S", "P", "PT", "15M", "P1Y"):
        assert bool(pattern.match(text)) == (parse_duration(text) is not None), text


# -- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15M", timedelta(minutes=15)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("PT2H", timedelta(hours=2)),
        ("P1D", timedelta(days=1)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT45S", timedelta(seconds=45)),
        ("PT1.5S", timedelta(seconds=1.5)),
        ("PT0S", timedelta(0)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "15M", "PT15", "P1Y", "P2M", "P1W", "PT1.5M", "pt15m", "PT15M ", "T15M"]
)
def test_bad_durations_are_refused(text: str) -> None:
    assert parse_duration(text) is None


# -- a broken catalog, one error kind at a time --------------------------------------------

GOOD = """\
- id: good-one
  name: Good one
  url: https://example.org/good
  description: A good resource.
  provider: Example
  learningResourceType: video
  educationalLevel: [3-5]
  about: [math]
  teaches: [fractions]
  keywords: [fractions]
  interestAreas: [I]
  interestTags: [puzzles]
  timeRequired: PT15M
  inLanguage: en
  isAccessibleForFree: true
- id: second
  name: Second
  url: https://example.org/second
  description: Another good resource.
  provider: Example
  learningResourceType: interactive
  educationalLevel: [K-2, 3-5]
  about: [math]
  teaches: [fractions]
  keywords: [fractions, pizza]
  interestAreas: [I, C]
  interestTags: [puzzles, numbers-data]
  timeRequired: PT1H30M
  inLanguage: es
  isAccessibleForFree: true
  accessibilityFeature: [captions]
  standards: [CCSS.MATH.CONTENT.3.NF.A.1]
"""


def write(folder: Path, text: str, name: str = "math.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def broken(old: str, new: str) -> str:
    """GOOD with one line of the second resource changed."""
    head, tail = GOOD.split("- id: second\n")
    tail = "- id: second\n" + tail
    assert old in tail, old
    return head + tail.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "line", "expected"),
    [
        pytest.param(
            "- id: second",
            "- id: good-one",
            16,
            "id 'good-one' repeats (first at {path}:1)",
            id="duplicate-id",
        ),
        pytest.param(
            "url: https://example.org/second",
            "url: https://EXAMPLE.org/good/",
            18,
            "address https://EXAMPLE.org/good/ repeats (first at {path}:3)",
            id="duplicate-address",
        ),
        pytest.param(
            "teaches: [fractions]",
            "teaches: [fractoins]",
            24,
            "unknown topic tag 'fractoins'",
            id="unknown-topic",
        ),
        pytest.param(
            "teaches: [fractions]",
            "teaches: [puzzles]",
            24,
            "unknown topic tag 'puzzles'",
            id="interest-used-as-topic",
        ),
        pytest.param(
            "interestTags: [puzzles, numbers-data]",
            "interestTags: [puzzles, juggling]",
            27,
            "unknown interest tag 'juggling'",
            id="unknown-interest",
        ),
        pytest.param(
            "educationalLevel: [K-2, 3-5]",
            "educationalLevel: [K-2, grade 3]",
            22,
            "unknown level 'grade 3'",
            id="unknown-level",
        ),
        pytest.param(
            "about: [math]",
            "about: [math, cooking]",
            23,
            "unknown subject 'cooking'",
            id="unknown-subject",
        ),
        pytest.param(
            "learningResourceType: interactive",
            "learningResourceType: webinar",
            21,
            "unknown type 'webinar'",
            id="unknown-type",
        ),
        pytest.param(
            "inLanguage: es", "inLanguage: fr", 29, "unknown language 'fr'", id="unknown-language"
        ),
        pytest.param(
            "interestAreas: [I, C]",
            "interestAreas: [I, X]",
            26,
            "unknown interest area 'X'",
            id="unknown-area",
        ),
        pytest.param(
            "accessibilityFeature: [captions]",
            "accessibilityFeature: [subtitles]",
            31,
            "unknown accessibility feature 'subtitles'",
            id="unknown-accessibility-feature",
        ),
        pytest.param(
            "timeRequired: PT1H30M",
            "timeRequired: 90 minutes",
            28,
            "timeRequired '90 minutes' is not a duration like PT15M",
            id="bad-duration",
        ),
        pytest.param(
            "  description: Another good resource.\n",
            "",
            16,
            "missing required field 'description'",
            id="missing-field",
        ),
        pytest.param(
            "url: https://example.org/second",
            "url: ftp://example.org/second",
            18,
            "url 'ftp://example.org/second' is not an http(s) address",
            id="non-http-address",
        ),
        pytest.param(
            "url: https://example.org/second",
            "url: example.org/second",
            18,
            "url 'example.org/second' is not an http(s) address",
            id="address-without-scheme",
        ),
        pytest.param(
            "keywords: [fractions, pizza]",
            "author: Somebody",
            25,
            "unknown field 'author'",
            id="unknown-field",
        ),
        pytest.param(
            "teaches: [fractions]",
            "teaches: [fractions, volcanoes]",
            24,
            "topic 'volcanoes' is in science, which `about` omits",
            id="topic-outside-subjects",
        ),
        pytest.param(
            "isAccessibleForFree: true",
            "isAccessibleForFree: false",
            30,
            "isAccessibleForFree must be true",
            id="not-free",
        ),
        pytest.param(
            "- id: second", "- id: Second_One", 16, "id must be lowercase words", id="bad-id"
        ),
        pytest.param(
            "keywords: [fractions, pizza]",
            "keywords: fractions",
            25,
            "keywords must be a list of text",
            id="not-a-list",
        ),
        pytest.param(
            "keywords: [fractions, pizza]",
            "keywords: [pizza, pizza]",
            25,
            "keywords lists a value twice",
            id="repeated-value",
        ),
        pytest.param(
            "name: Second", "name: 2024", 17, "name must be text, not 2024", id="not-text"
        ),
        pytest.param(
            "keywords: [fractions, pizza]",
            "name: Again",
            25,
            "duplicate key 'name'",
            id="duplicate-key",
        ),
        pytest.param(
            "keywords: [fractions, pizza]",
            "keywords: [fractions, pizza",
            26,
            "",
            id="yaml-syntax",
        ),
    ],
)
def test_each_problem_is_named_with_file_and_line(
    tmp_path: Path, vocabulary: Vocabulary, old: str, new: str, line: int, expected: str
) -> None:
    path = write(tmp_path / "catalog", broken(old, new))
    problems = check_catalog(tmp_path / "catalog", vocabulary)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}: "), problems
    assert expected.format(path=path) in problems[0]
    # A single file works as PATH too, and loading refuses the same catalog.
    assert check_catalog(path, vocabulary) == problems
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path / "catalog", vocabulary)
    assert caught.value.problems == problems


def test_a_good_file_has_no_problems(tmp_path: Path, vocabulary: Vocabulary) -> None:
    assert check_catalog(write(tmp_path, GOOD), vocabulary) == []


def test_every_problem_is_reported_not_just_the_first(
    tmp_path: Path, vocabulary: Vocabulary
) -> None:
    text = (
        broken("inLanguage: es", "inLanguage: fr")
        .replace("timeRequired: PT15M", "timeRequired: soon")
        .replace("  about: [math]\n  teaches: [fractions]\n  keywords: [fractions]\n", "")
    )
    path = write(tmp_path, text)
    problems = check_catalog(path, vocabulary)
    assert problems == [
        f"{path}:1: resource 'good-one': missing required field 'about'",
        f"{path}:1: resource 'good-one': missing required field 'teaches'",
        f"{path}:10: resource 'good-one': timeRequired 'soon' is not a duration like PT15M",
        f"{path}:26: resource 'second': unknown language 'fr'",
    ]


def test_duplicates_are_found_across_files(tmp_path: Path, vocabulary: Vocabulary) -> None:
    first = write(tmp_path, GOOD, "a.yaml")
    second = write(tmp_path, GOOD.split("- id: second\n")[0], "b.yaml")
    problems = check_catalog(tmp_path, vocabulary)
    assert problems == [
        f"{second}:1: id 'good-one' repeats (first at {first}:1)",
        f"{second}:3: address https://example.org/good repeats (first at {first}:3)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: lonely\n", "expected a list of resources"),
        ("- just a string\n", "each resource is a mapping of fields"),
    ],
)
def test_a_file_of_the_wrong_shape(
    tmp_path: Path, vocabulary: Vocabulary, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    assert check_catalog(path, vocabulary) == [f"{path}:1: {expected}"]


def test_a_missing_or_empty_path(tmp_path: Path, vocabulary: Vocabulary) -> None:
    assert check_catalog(tmp_path / "nope", vocabulary) == [
        f"{tmp_path / 'nope'}: no such file or folder"
    ]
    assert check_catalog(tmp_path, vocabulary) == [f"{tmp_path}: no .yaml files"]


# -- loading -----------------------------------------------------------------------------


def test_loading_maps_the_fields(tmp_path: Path, vocabulary: Vocabulary) -> None:
    write(tmp_path, GOOD)
    catalog = load_catalog(tmp_path, vocabulary)
    assert [r.id for r in catalog] == ["good-one", "second"]
    assert len(catalog) == 2
    assert catalog.files == (tmp_path / "math.yaml",)
    assert catalog.get("second") == Resource(
        id="second",
        name="Second",
        url="https://example.org/second",
        description="Another good resource.",
        provider="Example",
        learning_resource_type="interactive",
        educational_level=("K-2", "3-5"),
        about=("math",),
        teaches=("fractions",),
        keywords=("fractions", "pizza"),
        interest_areas=("I", "C"),
        interest_tags=("puzzles", "numbers-data"),
        time_required=timedelta(hours=1, minutes=30),
        in_language="es",
        is_accessible_for_free=True,
        accessibility_feature=("captions",),
        standards=("CCSS.MATH.CONTENT.3.NF.A.1",),
    )
    first = catalog.get("good-one")
    assert first is not None
    assert first.accessibility_feature == ()
    assert first.standards == ()
    assert catalog.get("nothing") is None


def test_optional_fields_default(tmp_path: Path, vocabulary: Vocabulary) -> None:
    text = "\n".join(
        line
        for line in GOOD.split("- id: second\n")[0].splitlines()
        if not line.startswith(("  keywords", "  interest", "  timeRequired", "  isAccess"))
    )
    resource = next(iter(load_catalog(write(tmp_path, text + "\n"), vocabulary)))
    assert resource.keywords == resource.interest_areas == resource.interest_tags == ()
    assert resource.time_required is None
    assert resource.is_accessible_for_free is True


def test_an_empty_file_is_an_empty_list(tmp_path: Path, vocabulary: Vocabulary) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, "# nothing yet\n", "b.yaml")
    assert check_catalog(tmp_path, vocabulary) == []
    catalog = load_catalog(tmp_path, vocabulary)
    assert len(catalog) == 2
    assert len(catalog.files) == 2


def test_resources_keep_file_order_across_files(tmp_path: Path, vocabulary: Vocabulary) -> None:
    head, tail = GOOD.split("- id: second\n")
    write(tmp_path, "- id: second\n" + tail, "a.yaml")
    write(tmp_path, head, "b.yaml")
    assert [r.id for r in load_catalog(tmp_path, vocabulary)] == ["second", "good-one"]


def test_shipped_resources_load_with_their_types(catalog: Catalog) -> None:
    fractions = catalog.get("phet-fractions-intro")
    assert fractions is not None
    assert fractions.learning_resource_type == "interactive"
    assert fractions.time_required == timedelta(minutes=20)
    assert fractions.standards == ("CCSS.MATH.CONTENT.3.NF.A.1",)
    assert isinstance(fractions.educational_level, tuple)


# -- the command -------------------------------------------------------------------------


def test_catalog_check_on_the_shipped_catalog(tmp_path: Path, catalog: Catalog) -> None:
    result = coach("catalog", "check", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"coach: {len(catalog)} resources in 10 files: all good"


def test_catalog_check_on_a_good_file(tmp_path: Path) -> None:
    path = write(tmp_path / "mine", GOOD)
    result = coach("catalog", "check", str(path), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "coach: 2 resources in 1 files: all good"


def test_catalog_check_lists_each_problem(tmp_path: Path) -> None:
    text = broken("inLanguage: es", "inLanguage: fr").replace(
        "timeRequired: PT15M", "timeRequired: soon"
    )
    path = write(tmp_path / "mine", text)
    result = coach("catalog", "check", str(tmp_path / "mine"), tmp_path=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"{path}:13: resource 'good-one': timeRequired 'soon' is not a duration like PT15M",
        f"{path}:29: resource 'second': unknown language 'fr'",
        "coach: 2 problem(s) in the catalog",
    ]


def test_catalog_check_on_a_missing_path(tmp_path: Path) -> None:
    result = coach("catalog", "check", "nowhere", tmp_path=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "nowhere: no such file or folder"


def test_catalog_check_has_help(tmp_path: Path) -> None:
    result = coach("catalog", "check", "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "usage: coach catalog check" in result.stdout

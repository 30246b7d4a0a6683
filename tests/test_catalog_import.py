"""A school's own resources: CSV and JSON-LD in, the merged catalog out, on every backend."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.cli import main
from bot.clock import FakeClock
from bot.coach import catalog_store
from bot.coach.catalog import (
    Catalog,
    Resource,
    format_duration,
    load_catalog,
    parse_duration,
    resource_from_source,
)
from bot.coach.catalog_formats import (
    FormatError,
    Rows,
    parse_csv,
    parse_jsonld,
    read_resources,
    to_csv,
    to_jsonld,
)
from bot.coach.catalog_store import (
    ImportSummary,
    catalog_revision,
    import_resources,
    merged_catalog,
    school_resources,
)
from bot.engine.topics import Vocabulary
from bot.paths import shipped
from bot.services import Services
from bot.store.models import CatalogResource

CONTENT = shipped("content")
DATA = Path(__file__).parent / "data" / "catalog"
SCHOOL_CSV = DATA / "school.csv"
SCHOOL_JSONLD = DATA / "school.jsonld"

# school.csv, row by row: what a teacher would read for each rejected row.
CSV_REJECTED = {
    "school.csv: row 6": "resource 'bad-level': unknown level 'college'",
    "school.csv: row 7": (
        "resource 'bad-address': url 'ftp://lincoln.example.org/files' is not an http(s) address"
    ),
    "school.csv: row 8": (
        "resource 'bad-duration': timeRequired '15 minutes' is not a duration like PT15M"
    ),
    "school.csv: row 9": "resource 'no-name': missing required field 'name'",
    "school.csv: row 10": "resource 'bad-topic': unknown topic tag 'unicorns'",
    "school.csv: row 11": "resource 'lincoln-fraction-wall': id repeats (first at row 2)",
    "school.csv: row 12": (
        "resource 'same-address': address https://LINCOLN.example.org/fraction-wall/ "
        "repeats (first at row 2)"
    ),
    "school.csv: row 13": (
        "resource 'music-lab-copy': address https://musiclab.chromeexperiments.com/ "
        "is already used by 'chrome-music-lab' in the shipped catalog"
    ),
    "school.csv: row 14": "resource 'too-many': 16 cells, but the header names 15 columns",
}
CSV_GOOD = ["lincoln-fraction-wall", "lincoln-volcanoes", "lincoln-ensayo"]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.load(CONTENT / "vocabulary.yaml")


@pytest.fixture(scope="module")
def catalog(vocabulary: Vocabulary) -> Catalog:
    return load_catalog(CONTENT / "catalog", vocabulary)


def ids(rows: Rows) -> list[str]:
    return [mapping["id"] for _, mapping in rows.good]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


HEADER = (
    "id,name,url,description,provider,learningResourceType,educationalLevel,about,teaches,"
    "inLanguage"
)


def csv_row(rid: str, name: str = "Fraction strips", url: str | None = None) -> str:
    address = url or f"https://lincoln.example.org/{rid}"
    return (
        f"{rid},{name},{address},Cut and compare.,Lincoln Elementary,activity,3-5,math,fractions,en"
    )


# -- reading CSV -----------------------------------------------------------------------


def test_csv_good_rows_are_read_and_each_bad_one_is_named_with_its_reason(
    vocabulary: Vocabulary,
) -> None:
    rows = read_resources(SCHOOL_CSV, vocabulary)
    # music-lab-copy is good on its own: only the database knows the address is taken.
    assert ids(rows) == [*CSV_GOOD, "music-lab-copy"]
    assert rows.rejected == [
        (label, reason) for label, reason in CSV_REJECTED.items() if label != "school.csv: row 13"
    ]


def test_csv_forgives_a_bom_blank_lines_spaces_and_spreadsheet_spellings(
    vocabulary: Vocabulary,
) -> None:
    rows = read_resources(SCHOOL_CSV, vocabulary)
    first, volcanoes, ensayo = (mapping for _, mapping in rows.good[:3])
    assert first == {
        "id": "lincoln-fraction-wall",
        "name": "Fraction wall",
        "url": "https://lincoln.example.org/fraction-wall",
        "description": "Print a fraction wall, cut it up, and compare the pieces.",
        "provider": "Lincoln Elementary",
        "learningResourceType": "activity",
        "educationalLevel": ["3-5"],
        "about": ["math"],
        "teaches": ["fractions"],
        "keywords": ["fractions", "fraction wall"],
        "interestAreas": ["R", "I"],
        "interestTags": ["building-things"],
        "timeRequired": "PT20M",
        "inLanguage": "en",
        "isAccessibleForFree": True,
    }
    # "Video", "Grade 4; Grade 5", "en-US" and "yes", as a spreadsheet has them.
    assert volcanoes["learningResourceType"] == "video"
    assert volcanoes["educationalLevel"] == ["3-5"]
    assert volcanoes["inLanguage"] == "en"
    assert volcanoes["isAccessibleForFree"] is True
    assert ensayo["educationalLevel"] == ["6-8", "9-12"]
    assert ensayo["description"] == "Guía paso a paso, con ejemplos."


@pytest.mark.parametrize(
    ("level", "bands"),
    [
        ("3-5", ["3-5"]),
        ("3", ["3-5"]),
        ("Grade 4", ["3-5"]),
        ("grades 6-12", ["6-8", "9-12"]),
        ("K-5", ["K-2", "3-5"]),
        ("KG", ["K-2"]),
        ("09", ["9-12"]),
        ("10th grade", ["9-12"]),
    ],
)
def test_grades_become_grade_bands(vocabulary: Vocabulary, level: str, bands: list[str]) -> None:
    text = f"{HEADER}\nx,X,https://a.example.org/x,D,P,video,{level},math,fractions,en\n"
    rows = parse_csv(text, "f.csv", vocabulary)
    assert rows.good[0][1]["educationalLevel"] == bands


@pytest.mark.parametrize("level", ["college", "13", "5-3", "pre-k"])
def test_a_level_that_is_no_grade_is_rejected(vocabulary: Vocabulary, level: str) -> None:
    text = f"{HEADER}\nx,X,https://a.example.org/x,D,P,video,{level},math,fractions,en\n"
    rows = parse_csv(text, "f.csv", vocabulary)
    assert rows.rejected == [("f.csv: row 2", f"resource 'x': unknown level {level!r}")]


def test_a_row_with_several_problems_names_them_all_on_one_line(vocabulary: Vocabulary) -> None:
    text = f"{HEADER}\nx,X,mailto:x,D,P,film,3-5,math,fractions,fr\n"
    (label, reason), *_ = parse_csv(text, "f.csv", vocabulary).rejected
    assert label == "f.csv: row 2"
    assert reason == (
        "resource 'x': url 'mailto:x' is not an http(s) address; unknown type 'film'; "
        "unknown language 'fr'"
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "f.csv: empty: no header row of field names"),
        ("\n\n", "f.csv: empty: no header row of field names"),
        (
            "id,name,colour\n",
            "f.csv: row 1: unknown column 'colour'; the columns are the catalog's field names: "
            "id, name, url, description, provider, learningResourceType, educationalLevel, "
            "about, teaches, standards, keywords, interestAreas, interestTags, timeRequired, "
            "inLanguage, isAccessibleForFree, accessibilityFeature",
        ),
        ("id;name;url\n", "f.csv: row 1: the header is one column; separate columns with commas"),
        ("id,name,id\n", "f.csv: row 1: column 'id' appears twice"),
        (
            "id,name,url,description\n",
            "f.csv: row 1: no column for required field(s) provider, learningResourceType, "
            "educationalLevel, about, teaches, inLanguage",
        ),
    ],
)
def test_a_header_that_does_not_fit_is_one_error_for_the_file(
    vocabulary: Vocabulary, text: str, error: str
) -> None:
    with pytest.raises(FormatError) as raised:
        parse_csv(text, "f.csv", vocabulary)
    assert str(raised.value).startswith(error)


def test_header_case_is_forgiven_and_a_row_may_drop_its_empty_trailing_cells(
    vocabulary: Vocabulary,
) -> None:
    text = HEADER.upper().replace("LEARNINGRESOURCETYPE", "LearningResourceType")
    text += ",TIMEREQUIRED\n" + csv_row("short-row") + "\n"
    rows = parse_csv(text, "f.csv", vocabulary)
    assert ids(rows) == ["short-row"]
    assert "timeRequired" not in rows.good[0][1]


def test_files_that_cannot_be_read_are_one_error(tmp_path: Path, vocabulary: Vocabulary) -> None:
    cases = {
        tmp_path / "missing.csv": "missing.csv: no such file",
        write(tmp_path, "list.xlsx", "x"): "list.xlsx: unknown format '.xlsx'",
    }
    (tmp_path / "folder.csv").mkdir()
    cases[tmp_path / "folder.csv"] = "folder.csv: is a folder, not a file"
    (tmp_path / "latin1.csv").write_bytes("id,name\ncafé,x\n".encode("latin-1"))
    cases[tmp_path / "latin1.csv"] = "latin1.csv: not UTF-8 text (byte 12)"
    cases[write(tmp_path, "broken.json", '{"@graph": [\n  {"id": }\n]}')] = (
        "broken.json: line 2: not valid JSON: Expecting value"
    )
    cases[write(tmp_path, "number.jsonld", "42")] = "expected a resource object, an array"
    cases[write(tmp_path, "graph.jsonld", '{"@graph": {}}')] = '"@graph" must be an array'
    for path, error in cases.items():
        with pytest.raises(FormatError) as raised:
            read_resources(path, vocabulary)
        assert error in str(raised.value)
        assert "\n" not in str(raised.value)


# -- reading JSON-LD -------------------------------------------------------------------


def test_jsonld_graph_in_the_shapes_real_lrmi_data_has(vocabulary: Vocabulary) -> None:
    rows = read_resources(SCHOOL_JSONLD, vocabulary)
    space, club = (mapping for _, mapping in rows.good)
    assert space == {
        "id": "lincoln-space-sounds",
        "name": "Space sounds",
        "url": "https://lincoln.example.org/space-sounds",
        "description": "A podcast our grade 7 class made about sound in space.",
        "provider": "Lincoln Elementary",  # an Organization node, by its @id
        "learningResourceType": "podcast",  # the first of its types the catalog knows
        "educationalLevel": ["6-8"],  # a DefinedTerm's termCode
        "about": ["science"],  # one DefinedTerm, by name
        "teaches": ["space"],
        "standards": ["MS-ESS1-1"],  # an AlignmentObject
        "keywords": ["space", "planets", "sound"],  # comma-separated text
        "interestAreas": ["I"],  # coach: prefixed
        "interestTags": ["animals"],  # plain
        "timeRequired": "PT25M",
        "inLanguage": "en",  # en-US
        "isAccessibleForFree": True,
        # license and dateCreated are schema.org's, not the catalog's: left out
    }
    assert club["provider"] == "Lincoln Elementary"
    assert club["inLanguage"] == "es"  # a Language node
    assert club["educationalLevel"] == ["9-12"]
    assert club["teaches"] == ["coding"]
    assert rows.rejected == [
        ("school.jsonld: item 4", "resource 'typo-field': unknown field 'coach:interestTag'"),
        ("school.jsonld: item 5", "resource 'no-address': missing required field 'url'"),
        ("school.jsonld: item 6", "each resource is a JSON object"),
    ]


def test_jsonld_one_object_and_an_array(vocabulary: Vocabulary) -> None:
    assert ids(read_resources(DATA / "one.json", vocabulary)) == ["lincoln-times-tables"]
    rows = read_resources(DATA / "array.json", vocabulary)
    assert ids(rows) == ["lincoln-division-game", "lincoln-decimals"]
    assert rows.good[1][1]["educationalLevel"] == ["3-5", "6-8"]  # Grade 5, Grade 6
    assert rows.rejected == []


def test_jsonld_and_csv_of_one_resource_read_the_same(vocabulary: Vocabulary) -> None:
    from_json = parse_jsonld(
        json.dumps(
            {
                "@type": "LearningResource",
                "identifier": "strips",
                "name": "Fraction strips",
                "url": "https://lincoln.example.org/strips",
                "description": "Cut and compare.",
                "provider": {"@type": "Organization", "name": "Lincoln Elementary"},
                "learningResourceType": "Activity",
                "educationalLevel": {"@type": "DefinedTerm", "name": "3-5"},
                "about": "math",
                "teaches": ["fractions"],
                "inLanguage": "EN",
            }
        ),
        "a.json",
        vocabulary,
    )
    from_csv = parse_csv(f"{HEADER}\n{csv_row('strips')}\n", "a.csv", vocabulary)
    assert from_json.good[0][1] == from_csv.good[0][1]


# -- writing ---------------------------------------------------------------------------


@pytest.mark.parametrize(("write_out", "read_in"), [(to_csv, parse_csv), (to_jsonld, parse_jsonld)])
def test_export_then_import_round_trips_the_whole_shipped_catalog(
    catalog: Catalog,
    vocabulary: Vocabulary,
    write_out: Callable[[list[Resource]], str],
    read_in: Callable[[str, str, Vocabulary], Rows],
) -> None:
    text = write_out(list(catalog))
    rows = read_in(text, "export", vocabulary)
    assert rows.rejected == []
    back = [resource_from_source(mapping) for _, mapping in rows.good]
    assert back == list(catalog)
    assert write_out(back) == text


def test_the_jsonld_export_is_schema_org(catalog: Catalog) -> None:
    document = json.loads(to_jsonld(catalog))
    assert document["@context"] == {"@vocab": "https://schema.org/", "coach": "urn:coach:"}
    node = document["@graph"][0]
    assert node["@type"] == "LearningResource"
    assert node["identifier"] == "chrome-music-lab"
    assert node["provider"] == {"@type": "Organization", "name": "Google"}
    assert node["educationalLevel"][0] == {"@type": "DefinedTerm", "name": "K-2", "termCode": "K-2"}
    assert node["coach:interestTags"] == ["making-music", "tech-tinkering"]
    assert node["timeRequired"] == "PT15M"
    with_standards = next(n for n in document["@graph"] if "educationalAlignment" in n)
    assert with_standards["educationalAlignment"][0]["@type"] == "AlignmentObject"


@pytest.mark.parametrize(
    "text", ["PT15M", "PT1H30M", "P1D", "P2DT3H4M5.25S", "PT45S", "PT0S", "PT0.000001S"]
)
def test_durations_are_written_as_they_read(text: str) -> None:
    duration = parse_duration(text)
    assert duration is not None
    assert format_duration(duration) == text
    assert format_duration(timedelta(minutes=90)) == "PT1H30M"


# -- the store -------------------------------------------------------------------------


async def table(services: Services) -> dict[str, CatalogResource]:
    async with services.db.reading() as session:
        rows = (await session.exec(select(CatalogResource).order_by(col(CatalogResource.id)))).all()
    return {row.id: row for row in rows}


async def run_import(
    services: Services, path: Path, catalog: Catalog, vocabulary: Vocabulary, **kwargs: Any
) -> ImportSummary:
    return await import_resources(
        services.db, path, vocabulary, catalog, services.clock.now(), **kwargs
    )


def counts(summary: ImportSummary) -> tuple[int, int, int, int]:
    return summary.added, summary.updated, summary.unchanged, len(summary.rejected)


async def test_import_csv_adds_the_good_rows_and_names_every_bad_one(
    any_services: Services, catalog: Catalog, vocabulary: Vocabulary
) -> None:
    summary = await run_import(any_services, SCHOOL_CSV, catalog, vocabulary)
    assert counts(summary) == (3, 0, 0, 9)
    assert summary.rejected == list(CSV_REJECTED.items())  # in the file's order
    stored = await table(any_services)
    assert list(stored) == sorted(CSV_GOOD)
    row = stored["lincoln-volcanoes"]
    assert row.origin == "school.csv"
    assert row.data["educationalLevel"] == ["3-5"]
    assert row.created_at == row.updated_at == any_services.clock.now()


async def test_import_jsonld_graph_object_and_array(
    any_services: Services, catalog: Catalog, vocabulary: Vocabulary
) -> None:
    graph = await run_import(any_services, SCHOOL_JSONLD, catalog, vocabulary)
    assert counts(graph) == (2, 0, 0, 3)
    assert [reason for _, reason in graph.rejected] == [
        "resource 'typo-field': unknown field 'coach:interestTag'",
        "resource 'no-address': missing required field 'url'",
        "each resource is a JSON object",
    ]
    assert counts(await run_import(any_services, DATA / "one.json", catalog, vocabulary)) == (
        1,
        0,
        0,
        0,
    )
    assert counts(await run_import(any_services, DATA / "array.json", catalog, vocabulary)) == (
        2,
        0,
        0,
        0,
    )
    async with any_services.db.reading() as session:
        school = await school_resources(session)
    space = next(r for r in school if r.id == "lincoln-space-sounds")
    assert space.time_required == timedelta(minutes=25)
    assert space.standards == ("MS-ESS1-1",)
    assert len(school) == 5


async def test_a_second_import_of_the_same_file_changes_nothing(
    any_services: Services, catalog: Catalog, vocabulary: Vocabulary, clock: FakeClock
) -> None:
    await run_import(any_services, SCHOOL_CSV, catalog, vocabulary)
    async with any_services.db.reading() as session:
        revision = await catalog_revision(session)
    before = {rid: (row.data, row.updated_at) for rid, row in (await table(any_services)).items()}
    clock.advance(hours=1)
    again = await run_import(any_services, SCHOOL_CSV, catalog, vocabulary)
    assert counts(again) == (0, 0, 3, 9)
    after = {rid: (row.data, row.updated_at) for rid, row in (await table(any_services)).items()}
    assert after == before
    async with any_services.db.reading() as session:
        assert await catalog_revision(session) == revision == (3, before["lincoln-ensayo"][1])


async def test_a_changed_row_updates_its_resource_by_id(
    any_services: Services,
    catalog: Catalog,
    vocabulary: Vocabulary,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    first = write(tmp_path, "a.csv", f"{HEADER}\n{csv_row('strips')}\n{csv_row('bars')}\n")
    assert counts(await run_import(any_services, first, catalog, vocabulary)) == (2, 0, 0, 0)
    added_at = clock.now()
    clock.advance(days=1)
    second = write(
        tmp_path,
        "b.csv",
        f"{HEADER}\n{csv_row('strips', name='Fraction strips (new)')}\n{csv_row('bars')}\n"
        f"{csv_row('circles')}\n",
    )
    assert counts(await run_import(any_services, second, catalog, vocabulary)) == (1, 1, 1, 0)
    stored = await table(any_services)
    assert stored["strips"].data["name"] == "Fraction strips (new)"
    assert stored["strips"].origin == "b.csv"
    assert stored["strips"].created_at == added_at
    assert stored["strips"].updated_at == clock.now()
    assert stored["bars"].updated_at == added_at
    async with any_services.db.reading() as session:
        assert await catalog_revision(session) == (3, clock.now())


async def test_a_school_edit_of_a_shipped_resource_survives_a_shipped_update(
    any_services: Services, catalog: Catalog, vocabulary: Vocabulary, tmp_path: Path
) -> None:
    music = catalog.get("chrome-music-lab")
    assert music is not None
    edited = dataclasses.replace(music, name="Chrome Music Lab (Room 12's favourite)")
    path = write(tmp_path, "edit.csv", to_csv([edited]))
    assert counts(await run_import(any_services, path, catalog, vocabulary)) == (0, 1, 0, 0)
    async with any_services.db.reading() as session:
        school = await school_resources(session)
    merged = merged_catalog(catalog, school)
    assert merged.get("chrome-music-lab") == edited
    assert list(merged.resources) == list(catalog.resources)  # in place, nothing added
    # A new release of the shipped catalog changes the same resource: the school's stays.
    update = dict(catalog.resources)
    update["chrome-music-lab"] = dataclasses.replace(music, description="Now with a new lab.")
    assert merged_catalog(Catalog(update), school).get("chrome-music-lab") == edited


async def test_an_unedited_export_imports_as_unchanged_and_stores_nothing(
    any_services: Services, catalog: Catalog, vocabulary: Vocabulary, tmp_path: Path
) -> None:
    path = write(tmp_path, "all.jsonld", to_jsonld(catalog))
    summary = await run_import(any_services, path, catalog, vocabulary)
    assert counts(summary) == (0, 0, len(catalog), 0)
    # Shipped resources stay shipped: a later shipped update still reaches them.
    assert await table(any_services) == {}


async def test_export_of_the_merged_catalog_imports_unchanged(
    any_services: Services, catalog: Catalog, vocabulary: Vocabulary, tmp_path: Path
) -> None:
    await run_import(any_services, SCHOOL_CSV, catalog, vocabulary)
    async with any_services.db.reading() as session:
        merged = merged_catalog(catalog, await school_resources(session))
    assert len(merged) == len(catalog) + 3
    for name, text in (("all.csv", to_csv(merged)), ("all.jsonld", to_jsonld(merged))):
        summary = await run_import(any_services, write(tmp_path, name, text), catalog, vocabulary)
        assert counts(summary) == (0, 0, len(merged), 0)


async def test_an_address_another_school_resource_has_is_rejected(
    any_services: Services, catalog: Catalog, vocabulary: Vocabulary, tmp_path: Path
) -> None:
    url = "https://lincoln.example.org/shared"
    first = write(tmp_path, "a.csv", f"{HEADER}\n{csv_row('mine', url=url)}\n")
    await run_import(any_services, first, catalog, vocabulary)
    second = write(
        tmp_path, "b.csv", f"{HEADER}\n{csv_row('theirs', url=url + '/')}\n{csv_row('other')}\n"
    )
    summary = await run_import(any_services, second, catalog, vocabulary)
    assert counts(summary) == (1, 0, 0, 1)
    assert summary.rejected == [
        ("b.csv: row 2", f"resource 'theirs': address {url}/ is already used by 'mine'")
    ]
    # A resource may move to a new address, and another take its old one in the same file.
    third = write(
        tmp_path,
        "c.csv",
        f"{HEADER}\n{csv_row('mine', url=url + '/moved')}\n{csv_row('theirs', url=url)}\n",
    )
    assert counts(await run_import(any_services, third, catalog, vocabulary)) == (1, 1, 0, 0)


async def test_a_dry_run_counts_and_rejects_but_writes_nothing(
    any_services: Services, catalog: Catalog, vocabulary: Vocabulary
) -> None:
    summary = await run_import(any_services, SCHOOL_CSV, catalog, vocabulary, dry_run=True)
    assert counts(summary) == (3, 0, 0, 9)
    assert await table(any_services) == {}


async def test_a_crash_while_saving_leaves_nothing_half_written(
    any_services: Services,
    catalog: Catalog,
    vocabulary: Vocabulary,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write(tmp_path, "a.csv", HEADER + "\n" + "\n".join(csv_row(f"r-{i}") for i in range(5)))
    real = catalog_store._upsert
    batches: list[int] = []

    async def crash_after_the_first_batch(session: Any, rows: Any, progress: Any) -> None:
        await real(session, rows[:2], progress)  # the first rows reach the database...
        batches.append(len(rows))
        raise OSError("disk full")  # ...and then the process fails

    monkeypatch.setattr(catalog_store, "_upsert", crash_after_the_first_batch)
    with pytest.raises(OSError, match="disk full"):
        await run_import(any_services, path, catalog, vocabulary)
    assert batches == [5]
    assert await table(any_services) == {}
    monkeypatch.setattr(catalog_store, "_upsert", real)
    assert counts(await run_import(any_services, path, catalog, vocabulary)) == (5, 0, 0, 0)


async def test_progress_is_reported_per_stage_up_to_the_total(
    any_services: Services, catalog: Catalog, vocabulary: Vocabulary
) -> None:
    seen: list[tuple[str, int, int]] = []
    await run_import(
        any_services, SCHOOL_CSV, catalog, vocabulary, progress=lambda *a: seen.append(a)
    )
    assert seen[-1] == ("saving", 3, 3)
    assert ("checking", 12, 12) in seen
    assert all(done <= total for _, done, total in seen)


async def test_a_stored_row_that_no_longer_loads_is_left_out(any_services: Services) -> None:
    now = any_services.clock.now()
    async with any_services.db.transaction() as session:
        session.add(
            CatalogResource(id="broken", data={"id": "broken"}, created_at=now, updated_at=now)
        )
    async with any_services.db.reading() as session:
        assert await school_resources(session) == []
        assert await catalog_revision(session) == (1, now)


def test_merged_catalog_appends_new_ones_and_drops_a_shipped_twin_of_a_school_address(
    catalog: Catalog,
) -> None:
    first, second, *_ = catalog
    ours = dataclasses.replace(second, id="our-copy")  # a school resource at second's address
    new = dataclasses.replace(second, id="brand-new", url="https://lincoln.example.org/new")
    merged = merged_catalog(catalog, [ours, new])
    assert list(merged.resources)[:2] == [first.id, list(catalog.resources)[2]]
    assert list(merged.resources)[-2:] == ["our-copy", "brand-new"]
    assert second.id not in merged.resources
    assert len(merged) == len(catalog) + 1


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """Run `coach ...` in this process on a fresh SQLite file: (exit code, stdout, stderr)."""
    for name in ("COACH_CONTENT_DIR", "COACH_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COACH_DATABASE_URL", f"sqlite:///{tmp_path / 'coach.db'}")
    monkeypatch.chdir(tmp_path)  # no stray .env

    def run(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_import_prints_rejected_rows_then_the_summary_and_exits_1(
    cli: Callable[..., tuple[int, str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli("catalog", "import", str(SCHOOL_CSV), capsys=capsys)
    assert code == 1
    assert out == "coach: added 3, updated 0, unchanged 0, rejected 9\n"
    assert err.splitlines() == [f"{label}: {reason}" for label, reason in CSV_REJECTED.items()]


def test_cli_import_of_a_clean_file_exits_0_and_again_is_unchanged(
    cli: Callable[..., tuple[int, str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(DATA / "array.json")
    assert cli("catalog", "import", path, capsys=capsys) == (
        0,
        "coach: added 2, updated 0, unchanged 0, rejected 0\n",
        "",
    )
    assert cli("catalog", "import", path, capsys=capsys) == (
        0,
        "coach: added 0, updated 0, unchanged 2, rejected 0\n",
        "",
    )


def test_cli_dry_run_saves_nothing(
    cli: Callable[..., tuple[int, str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(DATA / "one.json")
    code, out, _ = cli("catalog", "import", path, "--dry-run", capsys=capsys)
    assert (code, out) == (
        0,
        "coach: dry run, nothing saved: added 1, updated 0, unchanged 0, rejected 0\n",
    )
    code, out, _ = cli("catalog", "import", path, capsys=capsys)
    assert out == "coach: added 1, updated 0, unchanged 0, rejected 0\n"


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("missing.csv", None, "coach: missing.csv: no such file"),
        ("list.json", "[{]", "coach: list.json: line 1: not valid JSON: Expecting property name"),
        ("list.txt", "id,name", "coach: list.txt: unknown format '.txt'"),
    ],
)
def test_cli_a_file_that_cannot_be_read_is_one_line_and_exit_2(
    cli: Callable[..., tuple[int, str, str]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    content: str | None,
    error: str,
) -> None:
    if content is not None:
        write(tmp_path, name, content)
    code, out, err = cli("catalog", "import", name, capsys=capsys)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(error)
    assert not (tmp_path / "coach.db").exists()  # the file is read before the database


def test_cli_export_writes_the_merged_catalog(
    cli: Callable[..., tuple[int, str, str]],
    capsys: pytest.CaptureFixture[str],
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    cli("catalog", "import", str(DATA / "array.json"), capsys=capsys)
    code, out, err = cli("catalog", "export", "--format", "csv", capsys=capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("id,name,url,description,provider,")
    assert len(lines) == 1 + len(catalog) + 2
    assert lines[-1].startswith("lincoln-division-game,Division dash,")  # by id
    code, out, err = cli(
        "catalog", "export", "--format", "jsonld", "--output", "all.jsonld", capsys=capsys
    )
    assert code == 0
    assert (
        out == f"coach: {len(catalog) + 2} resources (2 the school's own) written to all.jsonld\n"
    )
    graph = json.loads((tmp_path / "all.jsonld").read_text(encoding="utf-8"))["@graph"]
    assert [node["identifier"] for node in graph[-2:]] == [
        "lincoln-decimals",
        "lincoln-division-game",
    ]
    code, out, err = cli("catalog", "import", "all.jsonld", capsys=capsys)
    assert out == f"coach: added 0, updated 0, unchanged {len(catalog) + 2}, rejected 0\n"


def test_cli_export_to_a_folder_that_does_not_exist_is_one_line(
    cli: Callable[..., tuple[int, str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        "catalog", "export", "--format", "csv", "--output", "no/such/dir/x.csv", capsys=capsys
    )
    assert (code, out) == (2, "")
    assert err == "coach: cannot write no/such/dir/x.csv: No such file or directory\n"


def test_cli_check_reads_csv_and_jsonld_too(
    cli: Callable[..., tuple[int, str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli("catalog", "check", str(DATA / "array.json"), capsys=capsys)
    assert (code, out, err) == (0, "coach: 2 resources in array.json: all good\n", "")
    code, out, err = cli("catalog", "check", str(SCHOOL_JSONLD), capsys=capsys)
    assert code == 1
    assert err.splitlines() == [
        "school.jsonld: item 4: resource 'typo-field': unknown field 'coach:interestTag'",
        "school.jsonld: item 5: resource 'no-address': missing required field 'url'",
        "school.jsonld: item 6: each resource is a JSON object",
        "coach: 3 problem(s) in the catalog",
    ]

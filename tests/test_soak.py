"""A short soak: under a minute of moderate load, one real `coach serve` leaks nothing.

The issue: "a soak test (bounded, loopback only) of a few minutes at moderate load
shows no growth in memory or open connections". bench/soak.py is the few
minutes, run by hand; this is its short version for the suite, on the same code
(the load, the /proc sampler, the verdict): new and returning learners through
the API, web chat visitors with their cookies, /readyz and /metrics, against a
`coach serve` on a fresh SQLite file and, with COACH_TEST_DATABASE_URL, on a
fresh PostgreSQL database. What an operator would care about: no 5xx, no
errors, a clean exit, and after the warm-up no climb in open fds, TCP sockets,
threads, database connections or resident memory.

A minute cannot tell a slow leak from a cache still filling (bench/soak.py's
minutes can); the bounds below are set to catch what a minute can show, a leak
per request or per connection, and to pass a healthy server on a busy machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import soak
from bench.harness import Backend

PG_URL = os.environ.get("COACH_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])

# 50 s of load plus start-up and shutdown: about a minute, ~90 s on a busy machine.
SECONDS = 50.0
INTERVAL = 2.5  # 21 samples; 15 of them after the warm-up
CONCURRENCY = 20  # bench/soak.py's default: ~70 requests/s on a two-core machine
# A minimum of work for the bounds to mean anything: a tenth of what an idle
# two-core machine does here (~3,500 requests, ~190 people), so a busy one passes.
MIN_REQUESTS = 350
MIN_JOINED = 19

BOUNDS = soak.Bounds(
    # The first 30 % (15 s): start-up and the first requests build what every later
    # request reuses (compiled and prepared statements, dateparser's languages, the
    # default executor's threads); RSS climbs ~10 MB in the first ~10 s.
    warmup=0.3,
    # Memory: a healthy server's RSS sits still between samples but for a step of up
    # to ~5 MB now and then (bench/soak.py's tables, both backends); on PostgreSQL
    # it also creeps 5-8 MB/min in the first minute and ~1-2 MB/min after a few
    # (glibc's heap keeping freed pages: no live object grows, and it is flat with
    # MALLOC_MMAP_THRESHOLD_=131072). A least-squares slope over 35 s swings by
    # 10 MB/min with one late step, so it is not judged here.
    rss_slope_mb_per_min=None,
    # The median step ignores a one-off step and sees a steady leak whole: 15 MB/min
    # is twice the worst healthy creep, and ~3.5 KB a request at ~70 requests/s (a
    # retained request, response or session object is more).
    rss_median_step_mb_per_min=15.0,
    # A cap on all of it: one step plus the creep stays under ~8 MB between the half
    # medians (~17 s apart); a leak of ~40 MB/min or more passes 12.
    rss_half_growth_mb=12.0,
    # Counts: bench/soak.py's COUNT_RISE, the same for a minute as for an hour: how far
    # the pools may honestly wobble (it says where each number comes from). A client
    # or pool that never lets go of a connection is past it within seconds here.
)


@pytest.mark.slow  # a real server under load for 50 s
@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_minute_of_moderate_load_grows_neither_memory_nor_connections(
    backend: str, tmp_path: Path
) -> None:
    databases = Backend(backend, PG_URL, tmp_path, prefix="soak")
    try:
        result = await soak.soak(
            await databases.fresh(),
            tmp_path,
            seconds=SECONDS,
            concurrency=CONCURRENCY,
            interval=INTERVAL,
            bounds=BOUNDS,
        )
    finally:
        await databases.drop()
    verdict = result["verdict"]
    # Every sample and the verdict, for whoever reads a failure.
    report = "\n".join(
        [
            soak.table_header(backend == "postgres"),
            *map(soak.table_row, result["samples"]),
            *soak.verdict_lines(result),
            result["server_log_tail"] if result["server_log_tracebacks"] else "",
        ]
    )
    print(report)  # shown for a failure, or with -rP

    totals = result["totals"]
    assert totals["requests"] >= MIN_REQUESTS, report
    assert result["joined"] >= MIN_JOINED, report
    assert totals["server_errors"] == 0, report
    assert totals["errors"] == 0, report  # every answer a 200, or the 422 that was asked for
    assert result["server_log_tracebacks"] == 0, report
    assert result["server_exit_code"] == 0, report

    growing = [key for key, count in verdict["counts"].items() if not count["flat"]]
    assert not growing, f"{', '.join(growing)} grow\n{report}"
    assert verdict["rss_flat"], f"memory grows\n{report}"

"""Benchmark the bearer-token check of /mcp: the server's API token against stored project tokens.

Usage: .venv/bin/python bench/bench_tokens.py [--stored 10 1000] [--runs R]

The server's token is compared in memory. A project token costs one lookup of its SHA-256 hash in
the `api_tokens` table on every request, because accepted tokens are not cached. An unknown token
costs the same lookup the first time; repeated within 60 seconds, it is rejected from memory. For
each count of stored tokens, the four checks run in interleaved rounds through one event loop: one
warm-up round, then up to R rounds or 60 seconds.
"""

from __future__ import annotations

import argparse
import logging
import secrets

from anyio.from_thread import start_blocking_portal
from harness import (
    PERCENTILE_HEADERS,
    markdown_table,
    percentile_cells,
    print_end_load,
    print_machine,
    temporary_store,
    time_interleaved,
)

from pulseboard.server.store import Store
from pulseboard.server.tokens import ProjectTokenVerifier, create_token

SERVER_TOKEN = "pbt_" + "s" * 43
PROJECT_ID = "bench"
TIME_CAP_S = 60.0


def add_tokens(store: Store, count: int) -> str:
    """Store `count` project tokens; return the text of the last one."""
    token = ""
    for _ in range(count):
        _, token = create_token(store, [PROJECT_ID])
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stored", type=int, nargs="+", default=[10, 1000], help="Counts of stored tokens to measure at; default 10 1000.")
    parser.add_argument("--runs", type=int, default=300, help="Timed rounds per count; default 300.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    rows = []
    with temporary_store("pulseboard-bench-tokens-") as (store, _), start_blocking_portal() as portal:
        print_machine(store)
        store.create_project(PROJECT_ID)
        verifier = ProjectTokenVerifier(SERVER_TOKEN, store)
        stored = 0
        for count in sorted(args.stored):
            project_token = add_tokens(store, count - stored)
            stored = count
            checks = {
                "server API token": lambda: portal.call(verifier.verify_token, SERVER_TOKEN),
                "project token": lambda token=project_token: portal.call(verifier.verify_token, token),
                "new unknown token": lambda: portal.call(verifier.verify_token, "pbt_" + secrets.token_urlsafe(32)),
                "repeated unknown token": lambda: portal.call(verifier.verify_token, "pbt_" + "u" * 43),
            }
            timings = time_interleaved(checks, runs=args.runs, time_cap_s=TIME_CAP_S)
            for name, (timing, result) in timings.items():
                accepted = "yes" if result is not None else "no"
                rows.append([f"{count:,}", name, accepted, *percentile_cells(timing)])

    print(markdown_table(["stored tokens", "check", "accepted", *PERCENTILE_HEADERS], rows))
    print()
    print_end_load()


if __name__ == "__main__":
    main()

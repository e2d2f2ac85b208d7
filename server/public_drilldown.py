"""The drill-down of a published health table: the five lowest-scoring accounts, in detail.

A health publication's drill-down is served at `/q/<id>/drilldown` with the publication's own key
(see server/public.py). It is computed with the publication's own parameters, so the accounts
and scores it shows are those of the publication's table: the same as_of, account property,
weights, bands and plan filter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pulseboard.server.runtime import Runtime
from pulseboard.server.store import Publication, utcnow

if TYPE_CHECKING:
    from pulseboard.tools.drilldown import DrilldownSection

logger = logging.getLogger(__name__)

HEALTH_RECIPE_ID = "account_health_score"
# The number of accounts that a drill-down shows, lowest score first.
DRILLDOWN_ACCOUNTS = 5
# The bottom accounts are chosen among this many scored accounts, the recipe's maximum limit.
SCORED_ACCOUNTS_LIMIT = 10_000
CANCELLED_SIGNAL_PREFIX = "subscription cancelled"


@dataclasses.dataclass(frozen=True)
class DrilldownAccount:
    """One account of a publication's drill-down, with the score and status of the publication's table."""

    account: str
    health_score: float | None
    status: str
    top_risk_signal: str | None
    last_seen: str | None
    sections: list[DrilldownSection]


@dataclasses.dataclass(frozen=True)
class PublicationDrilldown:
    """The drill-down of a health publication: its lowest-scoring accounts, lowest first."""

    as_of: dt.datetime
    accounts: list[DrilldownAccount]


def has_drilldown(publication: Publication) -> bool:
    return publication.recipe_id == HEALTH_RECIPE_ID


def compute_drilldown(runtime: Runtime) -> Callable[[Publication], PublicationDrilldown]:
    """Return the compute function of a health publication's drill-down."""

    def compute(publication: Publication) -> PublicationDrilldown:
        # The tools import the compiler and the recipes, so they are imported on first use, as in
        # compute_publication.
        from pulseboard.recipes import get_recipe
        from pulseboard.tools.drilldown import drill_down_scored
        from pulseboard.tools.recipes import run_recipe

        if not has_drilldown(publication):
            raise ValueError(f"Publication {publication.publication_id} is not an {HEALTH_RECIPE_ID} publication.")

        now = utcnow()
        values = get_recipe(HEALTH_RECIPE_ID).validate(publication.params, now=now)
        as_of: dt.datetime = values["as_of"]  # type: ignore[assignment]  # a datetime parameter
        account_property = str(values["account_property"])
        params = {**publication.params, "as_of": as_of, "sort": "asc", "limit": SCORED_ACCOUNTS_LIMIT}
        health = run_recipe(
            runtime.store, runtime.settings, publication.project_id, HEALTH_RECIPE_ID, params, now=now
        )
        names = [column.name for column in health.columns]
        bottom = bottom_accounts([dict(zip(names, row)) for row in health.rows], DRILLDOWN_ACCOUNTS)

        # The bottom rows were scored with the publication's own parameters, so the drill-down
        # reuses them instead of running the recipe again for each account.
        details = drill_down_scored(
            runtime.store,
            runtime.settings,
            publication.project_id,
            bottom,
            as_of=as_of,
            account_property=account_property,
        )
        accounts = [drilldown_account(row, detail.sections, detail.last_seen) for row, detail in zip(bottom, details)]
        logger.info("drill-down of publication %s: %d accounts", publication.publication_id, len(accounts))
        return PublicationDrilldown(as_of=as_of, accounts=accounts)

    return compute


def bottom_accounts(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """Return the `count` scored accounts with the lowest scores, ties by account id.

    Cancelled accounts score 0 but have already left, so they are left out, as account_drilldown's
    bottom_n does. Accounts without a score ('no data') are left out too.
    """
    active = [
        row
        for row in rows
        if row["health_score"] is not None
        and not str(row.get("top_risk_signal") or "").startswith(CANCELLED_SIGNAL_PREFIX)
    ]
    return sorted(active, key=lambda row: (row["health_score"], str(row["account"])))[:count]


def drilldown_account(
    row: dict[str, Any], sections: list[DrilldownSection], last_seen: str | None
) -> DrilldownAccount:
    """Combine an account's row of the publication's table with its drill-down sections."""
    return DrilldownAccount(
        account=str(row["account"]),
        health_score=row["health_score"],
        status=str(row["status"]),
        top_risk_signal=row.get("top_risk_signal"),
        last_seen=last_seen,
        sections=sections,
    )

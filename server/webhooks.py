"""Webhooks from billing and help-desk services, turned into pulseboard's account events.

Stripe: `POST /v1/webhooks/stripe/{project_id}`
    Set the endpoint's signing secret (`whsec_...`) on the project first, with
    `pulseboard project settings PROJECT --stripe-signing-secret whsec_...` or
    `PUT /v1/projects/{project_id}/settings`. The `Stripe-Signature` header
    (`t=<unix time>,v1=<hex>`) must carry a v1 signature equal to the HMAC-SHA256 of
    `<t>.<raw body>` under that secret, with `t` at most 300 seconds from the server's clock, as
    Stripe documents for its webhooks. A project without a secret, a missing, malformed, stale or
    wrong signature all get 400, so Stripe reports the delivery as failed.
    NOTE: the signing secret is stored in clear in the `project_settings` table, because checking
    an HMAC needs the secret itself. The admin API and the CLI never print it.

    `customer.subscription.created` becomes `subscription_started`, `customer.subscription.updated`
    becomes `plan_changed` when its `previous_attributes` include `items`, `plan` or `quantity`,
    and `customer.subscription.deleted` becomes `subscription_cancelled`. Properties:
    - `mrr`: the monthly recurring revenue of the subscription's items, in currency units:
      unit amount x quantity, scaled to one month (a year is 12 months, a week 52/12 per month,
      a day 365/12 per month, divided by `interval_count`). Amounts of zero-decimal currencies
      such as JPY are not divided by 100. Items without a unit amount (tiered prices) add 0.
    - `plan`: the first item's price nickname, else its lookup key, else its id; `currency`,
      `interval` (the first item's), `quantity` (the sum), `stripe_subscription_id`,
      `stripe_customer_id`, `stripe_event_id`, `status`; and for `plan_changed`,
      `previous_plan` and `previous_mrr` when `previous_attributes.items` contains them.
    - `account_id`: the customer's metadata value under the project's
      `stripe_account_metadata_key` (default `account_id`) when Stripe sends the customer
      expanded, else the subscription's metadata value, else the customer id.
    The distinct_id is the account id, the timestamp the Stripe event's `created`, and the uuid is
    derived from the Stripe event id, so a redelivered event is stored once. Other event types
    get `200 {"status": "ignored"}`.

Support tickets: `POST /v1/webhooks/tickets/{project_id}`
    Authenticated like the native API (`Authorization: Bearer <ingestion key>`). The body is one
    ticket JSON object. The project's `ticket_fields` setting maps each ticket field to a dotted
    path in the body; the default reads the fields of the same name:
        id (required), status (required), account, requester, subject, priority,
        created_at, solved_at, updated_at
    `ZENDESK_TICKET_FIELDS` is the mapping for Zendesk's ticket event webhooks
    (`zen:event-type:ticket.*`, fields under `detail`); set it with `--ticket-fields zendesk`.
    A ticket whose status is `solved` or `closed` (in any case) becomes `support_ticket_solved`
    at `solved_at`, else `updated_at`, else the time of receipt; any other status becomes
    `support_ticket_opened` at `created_at`, else the time of receipt. Each ticket gets at most
    one event of each name: the uuid is derived from the project, ticket id and event name, so
    later updates of an open ticket are skipped.
    Properties: `ticket_id`, `account_id`, `requester`, `subject`, `priority`, `status`. The
    distinct_id is the requester, else the account, else `ticket:<id>`.

Both answer `200 {"status": "ok", "stored": 1}` after the event is stored, and use the error shape
of the native API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pulseboard.server.ingest import (
    IngestError,
    authenticate,
    error_response,
    load_json,
    log_request,
    parse_events,
    parse_timestamp,
    quote,
    read_body,
    store_events,
)
from pulseboard.server.settings import PROJECT_ID_PATTERN
from pulseboard.server.store import EventRow, Store, utcnow

STRIPE_TOLERANCE_S = 300
STRIPE_EVENTS = {
    "customer.subscription.created": "subscription_started",
    "customer.subscription.updated": "plan_changed",
    "customer.subscription.deleted": "subscription_cancelled",
}
PLAN_CHANGE_ATTRIBUTES = ("items", "plan", "quantity")
# Stripe's zero-decimal currencies: amounts are whole units, not cents.
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
MONTHS_PER_INTERVAL = {"day": 12 / 365, "week": 12 / 52, "month": 1.0, "year": 12.0}

TICKET_FIELDS = ("id", "status", "account", "requester", "subject", "priority", "created_at", "solved_at", "updated_at")
REQUIRED_TICKET_FIELDS = ("id", "status")
SOLVED_STATUSES = ("solved", "closed")
DEFAULT_TICKET_FIELDS = {name: name for name in TICKET_FIELDS}
ZENDESK_TICKET_FIELDS = {
    "id": "detail.id",
    "status": "detail.status",
    "account": "detail.organization_id",
    "requester": "detail.requester_id",
    "subject": "detail.subject",
    "priority": "detail.priority",
    "created_at": "detail.created_at",
    "updated_at": "detail.updated_at",
}
NAMED_TICKET_FIELDS = {"default": DEFAULT_TICKET_FIELDS, "zendesk": ZENDESK_TICKET_FIELDS}

# Project settings these webhooks read.
STRIPE_SECRET_SETTING = "stripe_signing_secret"
STRIPE_ACCOUNT_KEY_SETTING = "stripe_account_metadata_key"
TICKET_FIELDS_SETTING = "ticket_fields"
DEFAULT_ACCOUNT_KEY = "account_id"

# A fixed namespace, so a redelivered Stripe event or ticket update gets the same uuid again.
WEBHOOK_NAMESPACE = uuid.UUID("5b1f1f8e-3c1a-4c55-9a3e-7f0e1c2d4b6a")


def webhook_routes() -> list[Route]:
    """Return the webhook routes, each with and without the trailing slash."""
    routes = []
    for path, endpoint in (
        ("/v1/webhooks/stripe/{project_id}", stripe_endpoint),
        ("/v1/webhooks/tickets/{project_id}", tickets_endpoint),
    ):
        routes.append(Route(path + "/", endpoint, methods=["POST"]))
        routes.append(Route(path, endpoint, methods=["POST"]))
    return routes


# Settings


def check_settings(values: Mapping[str, Any]) -> dict[str, str]:
    """Validate webhook settings and return them as stored text; raise ValueError naming each problem.

    `ticket_fields` may be a mapping object or the name of a built-in one ("default", "zendesk").
    """
    problems = []
    checked: dict[str, str] = {}
    for name, value in values.items():
        if name in (STRIPE_SECRET_SETTING, STRIPE_ACCOUNT_KEY_SETTING):
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{name} must be a non-empty string")
                continue
            checked[name] = value.strip()
        elif name == TICKET_FIELDS_SETTING:
            fields, problem = _check_ticket_fields(value)
            if problem:
                problems.append(problem)
                continue
            checked[name] = json.dumps(fields, sort_keys=True)
        else:
            problems.append(
                f"{name!r} is not a setting; use {STRIPE_SECRET_SETTING}, {STRIPE_ACCOUNT_KEY_SETTING} or "
                f"{TICKET_FIELDS_SETTING}"
            )
    if problems:
        raise ValueError("; ".join(problems))
    return checked


def _check_ticket_fields(value: Any) -> tuple[dict[str, str], str]:
    if isinstance(value, str):
        if value in NAMED_TICKET_FIELDS:
            return dict(NAMED_TICKET_FIELDS[value]), ""
        return {}, f"ticket_fields {value!r} is not a built-in mapping; use {', '.join(NAMED_TICKET_FIELDS)} or an object"
    if not isinstance(value, dict):
        return {}, "ticket_fields must be an object mapping ticket fields to dotted paths in the webhook body"

    unknown = sorted(set(value) - set(TICKET_FIELDS))
    if unknown:
        return {}, f"ticket_fields has unknown fields {', '.join(unknown)}; use {', '.join(TICKET_FIELDS)}"
    missing = [name for name in REQUIRED_TICKET_FIELDS if name not in value]
    if missing:
        return {}, f"ticket_fields must map {', '.join(missing)}"
    bad = sorted(name for name, path in value.items() if not isinstance(path, str) or not path.strip())
    if bad:
        return {}, f"ticket_fields paths of {', '.join(bad)} must be non-empty strings such as \"detail.id\""
    return dict(value), ""


def public_settings(settings: Mapping[str, str]) -> dict[str, Any]:
    """Return settings as the admin API shows them: whether a secret is set, never the secret itself."""
    return {
        "stripe_signing_secret_set": bool(settings.get(STRIPE_SECRET_SETTING)),
        STRIPE_ACCOUNT_KEY_SETTING: settings.get(STRIPE_ACCOUNT_KEY_SETTING, DEFAULT_ACCOUNT_KEY),
        TICKET_FIELDS_SETTING: json.loads(settings[TICKET_FIELDS_SETTING])
        if TICKET_FIELDS_SETTING in settings
        else DEFAULT_TICKET_FIELDS,
    }


# Stripe


async def stripe_endpoint(request: Request) -> JSONResponse:
    """Verify a Stripe webhook and store its subscription change as an account event."""
    started = time.perf_counter()
    project_id = request.path_params["project_id"]
    count = 0
    error_code = ""
    try:
        body = await read_body(request)
        settings = await _project_settings(request, project_id)
        secret = settings.get(STRIPE_SECRET_SETTING, "")
        if not secret:
            # An unknown project gets the same response, so project ids cannot be probed.
            raise IngestError(
                400,
                "Stripe webhooks are not set up for this project; set its signing secret with "
                "`pulseboard project settings <project> --stripe-signing-secret whsec_...`",
                code="webhook_not_configured",
            )
        verify_stripe_signature(body, request.headers.get("stripe-signature", ""), secret, now=time.time())
        payload = load_json(body)
        row = stripe_event(payload, settings.get(STRIPE_ACCOUNT_KEY_SETTING, DEFAULT_ACCOUNT_KEY), now=utcnow())
        if row is None:
            response = JSONResponse({"status": "ignored", "type": _stripe_type(payload)})
        else:
            await store_events(request, project_id, [row])
            count = 1
            response = JSONResponse({"status": "ok", "stored": 1})
    except IngestError as error:
        response = error_response(error)
        error_code = error.code

    log_request("stripe", project_id, count, response.status_code, started, error_code)
    return response


async def _project_settings(request: Request, project_id: str) -> dict[str, str]:
    if not PROJECT_ID_PATTERN.match(project_id):
        return {}
    store: Store = request.app.state.runtime.store
    return await asyncio.to_thread(store.project_settings, project_id)


def verify_stripe_signature(body: bytes, header: str, secret: str, *, now: float) -> None:
    """Check a Stripe-Signature header against the raw body; raise IngestError 400 when it does not match."""
    if not header:
        raise IngestError(400, "Missing Stripe-Signature header; send the request as Stripe signs it", code="invalid_signature")

    timestamp = ""
    signatures = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            signatures.append(value)
    if not timestamp.isdigit() or not signatures:
        raise IngestError(
            400, "Stripe-Signature header needs t=<unix time> and at least one v1=<signature>", code="invalid_signature"
        )

    age = now - int(timestamp)
    if abs(age) > STRIPE_TOLERANCE_S:
        raise IngestError(
            400,
            f"Stripe-Signature timestamp {timestamp} is {abs(age):.0f} s from the server's clock; the tolerance is "
            f"{STRIPE_TOLERANCE_S} s. Check the server's clock, or resend the event from Stripe",
            code="stale_signature",
        )

    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise IngestError(
            400,
            "No v1 signature in Stripe-Signature matches the body; check the project's Stripe signing secret",
            code="invalid_signature",
        )


def _stripe_type(payload: Any) -> str:
    return payload.get("type", "") if isinstance(payload, dict) else ""


def stripe_event(payload: Any, account_key: str, *, now: dt.datetime) -> EventRow | None:
    """Turn a Stripe subscription event into a pulseboard event; None for event types that carry none."""
    name = STRIPE_EVENTS.get(_stripe_type(payload))
    if name is None:
        return None

    subscription = _dig(payload, "data.object")
    event_id = payload.get("id")
    if not isinstance(subscription, dict) or not isinstance(event_id, str):
        raise IngestError(
            422, "Stripe event has no id or no data.object subscription; send the event as Stripe sends it",
            code="invalid_webhook",
        )
    previous = _dig(payload, "data.previous_attributes") or {}
    if name == "plan_changed" and not any(key in previous for key in PLAN_CHANGE_ATTRIBUTES):
        return None

    items = _dig(subscription, "items.data") or []
    properties: dict[str, Any] = {
        "account_id": _stripe_account(subscription, account_key),
        "mrr": monthly_revenue(items),
        "plan": _plan_name(items),
        "status": subscription.get("status"),
        "stripe_subscription_id": subscription.get("id"),
        "stripe_customer_id": _customer_id(subscription),
        "stripe_event_id": event_id,
    }
    first_price = _dig(items[0], "price") if items else None
    if isinstance(first_price, dict):
        properties["currency"] = first_price.get("currency")
        properties["interval"] = _dig(first_price, "recurring.interval")
    properties["quantity"] = sum(_quantity(item) for item in items)
    previous_items = _dig(previous, "items.data")
    if name == "plan_changed" and isinstance(previous_items, list) and previous_items:
        properties["previous_plan"] = _plan_name(previous_items)
        properties["previous_mrr"] = monthly_revenue(previous_items)

    raw = {
        "event": name,
        "distinct_id": properties["account_id"],
        "timestamp": payload.get("created"),
        "uuid": str(uuid.uuid5(WEBHOOK_NAMESPACE, f"stripe:{event_id}")),
        "properties": {key: value for key, value in properties.items() if value is not None},
    }
    return parse_events(raw, now=now)[0]


def monthly_revenue(items: list[Any]) -> float:
    """Return the monthly revenue of Stripe subscription items, in currency units, rounded to cents."""
    total = 0.0
    for item in items:
        price = _dig(item, "price") or _dig(item, "plan") or {}
        amount = price.get("unit_amount_decimal") or price.get("unit_amount") or price.get("amount")
        interval = _dig(price, "recurring.interval") or price.get("interval") or "month"
        count = _dig(price, "recurring.interval_count") or price.get("interval_count") or 1
        if amount is None or interval not in MONTHS_PER_INTERVAL:
            continue
        units = float(amount) if str(price.get("currency", "")).lower() in ZERO_DECIMAL_CURRENCIES else float(amount) / 100
        total += units * _quantity(item) / (MONTHS_PER_INTERVAL[interval] * float(count))
    return round(total, 2)


def _quantity(item: Any) -> int:
    quantity = item.get("quantity") if isinstance(item, dict) else None
    return quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1


def _plan_name(items: list[Any]) -> str | None:
    if not items:
        return None
    price = _dig(items[0], "price") or _dig(items[0], "plan") or {}
    for key in ("nickname", "lookup_key", "id"):
        if isinstance(price.get(key), str) and price[key]:
            return price[key]
    return None


def _customer_id(subscription: dict[str, Any]) -> str | None:
    customer = subscription.get("customer")
    if isinstance(customer, dict):
        return customer.get("id")
    return customer if isinstance(customer, str) else None


def _stripe_account(subscription: dict[str, Any], account_key: str) -> str:
    for metadata in (_dig(subscription, "customer.metadata"), subscription.get("metadata")):
        if isinstance(metadata, dict) and metadata.get(account_key):
            return str(metadata[account_key])
    customer_id = _customer_id(subscription)
    if customer_id:
        return customer_id
    raise IngestError(
        422, f"Stripe subscription has no customer and no metadata {account_key!r}; it cannot be tied to an account",
        code="invalid_webhook",
    )


def _dig(value: Any, path: str) -> Any:
    """Return the value at a dotted path of nested objects, or None where the path ends early."""
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# Support tickets


async def tickets_endpoint(request: Request) -> JSONResponse:
    """Store one help-desk ticket as `support_ticket_opened` or `support_ticket_solved`."""
    started = time.perf_counter()
    project_id = request.path_params["project_id"]
    count = 0
    error_code = ""
    try:
        await authenticate(request, project_id)
        body = await read_body(request)
        settings = await _project_settings(request, project_id)
        fields = json.loads(settings[TICKET_FIELDS_SETTING]) if TICKET_FIELDS_SETTING in settings else DEFAULT_TICKET_FIELDS
        row = ticket_event(load_json(body), fields, project_id, now=utcnow())
        await store_events(request, project_id, [row])
        count = 1
        response = JSONResponse({"status": "ok", "stored": 1})
    except IngestError as error:
        response = error_response(error)
        error_code = error.code

    log_request("tickets", project_id, count, response.status_code, started, error_code)
    return response


def ticket_event(payload: Any, fields: Mapping[str, str], project_id: str, *, now: dt.datetime) -> EventRow:
    """Map a ticket body through `fields` and return its event; raise IngestError 422 for missing fields."""
    if not isinstance(payload, dict):
        raise IngestError(400, f"Body must be a ticket JSON object; got {quote(payload)}", code="invalid_body")

    ticket = {name: _dig(payload, path) for name, path in fields.items()}
    missing = [f"{name} (path {fields.get(name, name)})" for name in REQUIRED_TICKET_FIELDS if ticket.get(name) in (None, "")]
    if missing:
        raise IngestError(
            422,
            f"Ticket is missing {', '.join(missing)}; send it, or map the field with the project's ticket_fields setting",
            code="invalid_ticket",
        )

    ticket_id = str(ticket["id"])
    status = str(ticket["status"]).lower()
    solved = status in SOLVED_STATUSES
    name = "support_ticket_solved" if solved else "support_ticket_opened"
    times = ("solved_at", "updated_at") if solved else ("created_at",)
    timestamp = next((ticket[key] for key in times if ticket.get(key) not in (None, "")), None)
    try:
        when = now if timestamp is None else parse_timestamp(timestamp, now=now)
    except ValueError as error:
        raise IngestError(422, f"Ticket time {error}", code="invalid_ticket") from None

    properties = {
        "ticket_id": ticket_id,
        "account_id": ticket.get("account"),
        "requester": ticket.get("requester"),
        "subject": ticket.get("subject"),
        "priority": ticket.get("priority"),
        "status": status,
    }
    distinct_id = ticket.get("requester") or ticket.get("account") or f"ticket:{ticket_id}"
    raw = {
        "event": name,
        "distinct_id": str(distinct_id),
        "timestamp": when,
        "uuid": str(uuid.uuid5(WEBHOOK_NAMESPACE, f"ticket:{project_id}:{ticket_id}:{name}")),
        "properties": {key: str(value) if key in ("account_id", "requester") else value
                       for key, value in properties.items() if value not in (None, "")},
    }
    return parse_events(raw, now=now)[0]

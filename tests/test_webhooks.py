"""Stripe and support-ticket webhooks: signatures, event mapping, settings, and what is stored."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import stripe
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pulseboard.server.admin import admin_routes
from pulseboard.server.ingest import EventWriter
from pulseboard.server.runtime import Runtime
from pulseboard.server.settings import Settings
from pulseboard.server.store import Project, Store
from pulseboard.server.webhooks import ZENDESK_TICKET_FIELDS, monthly_revenue, webhook_routes

UTC = dt.timezone.utc
API_TOKEN = "pbt_webhook_test_token"
SECRET = "whsec_test_5f1c0c3a9e"


def build_app(store: Store, data_dir: Path) -> Starlette:
    settings = Settings(data_dir=data_dir, clickhouse_url=store.url)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        async with EventWriter(store) as writer:
            app.state.writer = writer
            yield

    app = Starlette(routes=[*webhook_routes(), *admin_routes()], lifespan=lifespan)
    app.state.runtime = Runtime(settings, store)
    app.state.api_token = API_TOKEN
    app.state.project_lock = asyncio.Lock()
    return app


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build_app(store, tmp_path)) as test_client:
        yield test_client


@pytest.fixture
def stripe_project(client: TestClient, project: tuple[Project, str]) -> str:
    """A project with the Stripe signing secret set through the admin API."""
    created, _ = project
    response = client.put(
        f"/v1/projects/{created.project_id}/settings",
        json={"stripe_signing_secret": SECRET},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code == 200
    return created.project_id


def stored(store: Store, project_id: str) -> list[tuple[str, str, str, dt.datetime, dict[str, Any]]]:
    rows = store.query(
        "SELECT toString(uuid), event, distinct_id, timestamp, toString(properties) FROM events "
        "WHERE project_id = {p:String} ORDER BY timestamp, event",
        {"p": project_id},
    ).rows
    return [(row[0], row[1], row[2], row[3].replace(tzinfo=UTC), json.loads(row[4])) for row in rows]


def sign(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header by Stripe's documented scheme: HMAC-SHA256 of `<t>.<body>`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def post_stripe(client: TestClient, project_id: str, event: dict[str, Any], header: str | None = None) -> Any:
    payload = json.dumps(event).encode()
    header = sign(payload) if header is None else header
    return client.post(
        f"/v1/webhooks/stripe/{project_id}",
        content=payload,
        headers={"Content-Type": "application/json", "Stripe-Signature": header},
    )


CREATED_AT = 1767950000  # 2026-01-09T09:13:20Z


def subscription_event(
    event_type: str,
    *,
    event_id: str = "evt_1",
    unit_amount: int = 4900,
    quantity: int = 3,
    interval: str = "month",
    nickname: str = "Team",
    previous: dict[str, Any] | None = None,
    customer: Any = "cus_A",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Stripe event with a subscription object as its data, in the shape of Stripe's 2024 API."""
    price = {"id": "price_team", "object": "price", "currency": "usd", "nickname": nickname,
             "unit_amount": unit_amount, "recurring": {"interval": interval, "interval_count": 1}}
    data: dict[str, Any] = {
        "object": {
            "id": "sub_1",
            "object": "subscription",
            "customer": customer,
            "status": "canceled" if event_type.endswith("deleted") else "active",
            "metadata": metadata if metadata is not None else {"account_id": "acme"},
            "items": {"object": "list", "data": [{"id": "si_1", "price": price, "quantity": quantity}]},
        }
    }
    if previous is not None:
        data["previous_attributes"] = previous
    return {"id": event_id, "object": "event", "type": event_type, "created": CREATED_AT, "data": data}


def test_signature_matches_stripe_library():
    payload = json.dumps(subscription_event("customer.subscription.created")).encode()
    header = sign(payload)

    assert stripe.WebhookSignature.verify_header(payload.decode(), header, SECRET, tolerance=300) is True


PREVIOUS_ITEMS = {"items": {"data": [{"price": {"id": "price_starter", "nickname": "Starter", "currency": "usd",
                                                "unit_amount": 1900, "recurring": {"interval": "month"}},
                                      "quantity": 3}]}}

# (case, Stripe event, event name, properties)
STRIPE_CASES = [
    (
        "created",
        subscription_event("customer.subscription.created"),
        "subscription_started",
        {"account_id": "acme", "mrr": 147.0, "plan": "Team", "status": "active", "currency": "usd",
         "interval": "month", "quantity": 3},
    ),
    (
        "updated with new items",
        subscription_event("customer.subscription.updated", unit_amount=9900, nickname="Business", previous=PREVIOUS_ITEMS),
        "plan_changed",
        {"account_id": "acme", "mrr": 297.0, "plan": "Business", "status": "active", "currency": "usd",
         "interval": "month", "quantity": 3, "previous_plan": "Starter", "previous_mrr": 57.0},
    ),
    (
        "updated quantity",
        subscription_event("customer.subscription.updated", quantity=5, previous={"quantity": 3}),
        "plan_changed",
        {"account_id": "acme", "mrr": 245.0, "plan": "Team", "status": "active", "currency": "usd",
         "interval": "month", "quantity": 5},
    ),
    (
        "deleted yearly",
        subscription_event("customer.subscription.deleted", unit_amount=120000, quantity=1, interval="year"),
        "subscription_cancelled",
        {"account_id": "acme", "mrr": 100.0, "plan": "Team", "status": "canceled", "currency": "usd",
         "interval": "year", "quantity": 1},
    ),
]


@pytest.mark.parametrize(
    ("event", "name", "properties"), [case[1:] for case in STRIPE_CASES], ids=[case[0] for case in STRIPE_CASES]
)
def test_stripe_subscription_events(client: TestClient, store: Store, stripe_project: str, event, name, properties):
    response = post_stripe(client, stripe_project, event)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "stored": 1}
    [(_, stored_name, distinct_id, timestamp, stored_properties)] = stored(store, stripe_project)
    assert stored_name == name
    assert distinct_id == "acme"
    assert timestamp == dt.datetime(2026, 1, 9, 9, 13, 20, tzinfo=UTC)
    assert stored_properties == {
        **properties, "stripe_subscription_id": "sub_1", "stripe_customer_id": "cus_A", "stripe_event_id": "evt_1",
    }


def test_stripe_redelivery_stored_once(client: TestClient, store: Store, stripe_project: str):
    event = subscription_event("customer.subscription.created")

    for _ in range(3):
        assert post_stripe(client, stripe_project, event).status_code == 200

    assert len(stored(store, stripe_project)) == 1


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (subscription_event("customer.subscription.updated", previous={"metadata": {}}),
         {"status": "ignored", "type": "customer.subscription.updated"}),
        ({"id": "evt_2", "type": "invoice.paid", "created": CREATED_AT, "data": {"object": {}}},
         {"status": "ignored", "type": "invoice.paid"}),
    ],
    ids=["update without plan change", "other event type"],
)
def test_stripe_events_without_account_event(client: TestClient, store: Store, stripe_project: str, event, expected):
    response = post_stripe(client, stripe_project, event)

    assert response.status_code == 200
    assert response.json() == expected
    assert stored(store, stripe_project) == []


@pytest.mark.parametrize(
    ("setting", "customer", "metadata", "account"),
    [
        (None, {"id": "cus_A", "metadata": {"account_id": "from-customer"}}, {"account_id": "from-sub"}, "from-customer"),
        ("org", {"id": "cus_A", "metadata": {"org": "org-7"}}, {}, "org-7"),
        ("org", "cus_A", {"org": "org-sub"}, "org-sub"),
        (None, "cus_A", {}, "cus_A"),
    ],
    ids=["expanded customer metadata", "configured key", "subscription metadata", "customer id fallback"],
)
def test_stripe_account_id_source(
    client: TestClient, store: Store, stripe_project: str, setting, customer, metadata, account
):
    if setting is not None:
        response = client.put(
            f"/v1/projects/{stripe_project}/settings",
            json={"stripe_account_metadata_key": setting},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
        assert response.status_code == 200
    event = subscription_event("customer.subscription.created", customer=customer, metadata=metadata)

    assert post_stripe(client, stripe_project, event).status_code == 200

    [(_, _, distinct_id, _, properties)] = stored(store, stripe_project)
    assert distinct_id == account
    assert properties["account_id"] == account
    assert properties["stripe_customer_id"] == "cus_A"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": []}}


BODY = json.dumps(subscription_event("customer.subscription.created")).encode()
NOT_SET_UP = error_body(
    "webhook_not_configured",
    "Stripe webhooks are not set up for this project; set its signing secret with "
    "`pulseboard project settings <project> --stripe-signing-secret whsec_...`",
)
NO_MATCH = error_body(
    "invalid_signature", "No v1 signature in Stripe-Signature matches the body; check the project's Stripe signing secret"
)

# (case, project: "set up", "no secret" or "unknown", body, header builder, expected)
BAD_STRIPE = [
    ("missing header", "set up", BODY, lambda now: "",
     error_body("invalid_signature", "Missing Stripe-Signature header; send the request as Stripe signs it")),
    ("no v1 signature", "set up", BODY, lambda now: f"t={now}",
     error_body("invalid_signature", "Stripe-Signature header needs t=<unix time> and at least one v1=<signature>")),
    ("wrong secret", "set up", BODY, lambda now: sign(BODY, "whsec_other", now), NO_MATCH),
    ("body changed after signing", "set up", BODY.replace(b"4900", b"49"), lambda now: sign(BODY, SECRET, now), NO_MATCH),
    ("v0 signature only", "set up", BODY, lambda now: sign(BODY, SECRET, now).replace("v1=", "v0="),
     error_body("invalid_signature", "Stripe-Signature header needs t=<unix time> and at least one v1=<signature>")),
    ("stale timestamp", "set up", BODY, lambda now: sign(BODY, SECRET, now - 301), "stale"),
    ("project without secret", "no secret", BODY, lambda now: sign(BODY, SECRET, now), NOT_SET_UP),
    ("unknown project", "unknown", BODY, lambda now: sign(BODY, SECRET, now), NOT_SET_UP),
]


@pytest.mark.parametrize(
    ("project_state", "body", "header", "expected"), [case[1:] for case in BAD_STRIPE], ids=[case[0] for case in BAD_STRIPE]
)
def test_bad_stripe_request_stores_nothing(
    client: TestClient, store: Store, stripe_project: str, project_state, body, header, expected
):
    project_id = {"set up": stripe_project, "no secret": store.create_project("ns" + stripe_project[1:12])[0].project_id,
                  "unknown": "nope" + stripe_project[:8]}[project_state]
    now = int(time.time())
    sent = header(now)

    response = client.post(
        f"/v1/webhooks/stripe/{project_id}", content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sent},
    )

    if expected == "stale":
        timestamp = now - 301
        age = response.json()["error"]["message"].split(" is ")[1].split(" s ")[0]
        assert age in ("301", "302")
        expected = error_body(
            "stale_signature",
            f"Stripe-Signature timestamp {timestamp} is {age} s from the server's clock; the tolerance is 300 s. "
            "Check the server's clock, or resend the event from Stripe",
        )
    assert response.status_code == 400
    assert response.json() == expected
    assert stored(store, project_id) == []


# (case, price and quantity of items, expected monthly revenue)
MRR_CASES = [
    ("monthly", [({"unit_amount": 4900, "currency": "usd", "recurring": {"interval": "month"}}, 3)], 147.0),
    ("yearly", [({"unit_amount": 120000, "currency": "usd", "recurring": {"interval": "year"}}, 1)], 100.0),
    ("quarterly", [({"unit_amount": 30000, "currency": "eur", "recurring": {"interval": "month", "interval_count": 3}}, 1)], 100.0),
    ("weekly", [({"unit_amount": 1200, "currency": "usd", "recurring": {"interval": "week"}}, 1)], 52.0),
    ("daily", [({"unit_amount": 100, "currency": "usd", "recurring": {"interval": "day"}}, 2)], 60.83),
    ("zero-decimal yen", [({"unit_amount": 5000, "currency": "jpy", "recurring": {"interval": "month"}}, 1)], 5000.0),
    ("decimal amount", [({"unit_amount_decimal": "1234.5", "currency": "usd", "recurring": {"interval": "month"}}, 2)], 24.69),
    ("tiered price adds nothing", [({"unit_amount": None, "currency": "usd", "recurring": {"interval": "month"}}, 10)], 0.0),
    (
        "two items",
        [({"unit_amount": 4900, "currency": "usd", "recurring": {"interval": "month"}}, 1),
         ({"unit_amount": 24000, "currency": "usd", "recurring": {"interval": "year"}}, 1)],
        69.0,
    ),
]


@pytest.mark.parametrize(("items", "expected"), [case[1:] for case in MRR_CASES], ids=[case[0] for case in MRR_CASES])
def test_monthly_revenue(items, expected):
    assert monthly_revenue([{"price": price, "quantity": quantity} for price, quantity in items]) == expected


# Tickets


def post_ticket(client: TestClient, project_id: str, body: Any, key: str) -> Any:
    return client.post(f"/v1/webhooks/tickets/{project_id}", json=body, headers={"Authorization": f"Bearer {key}"})


TICKET = {
    "id": 812,
    "account": "acme",
    "requester": "ana@acme.example",
    "subject": "Export fails",
    "priority": "high",
    "status": "open",
    "created_at": "2026-01-09T08:00:00Z",
}


def test_ticket_opened_then_solved(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project

    opened = post_ticket(client, created.project_id, TICKET, key)
    pending = post_ticket(client, created.project_id, {**TICKET, "status": "pending"}, key)
    solved = post_ticket(client, created.project_id, {**TICKET, "status": "Solved", "solved_at": "2026-01-09T10:30:00Z"}, key)

    assert [opened.status_code, pending.status_code, solved.status_code] == [200, 200, 200]
    assert opened.json() == {"status": "ok", "stored": 1}
    events = [(name, distinct_id, timestamp, properties) for _, name, distinct_id, timestamp, properties in stored(store, created.project_id)]
    common = {"ticket_id": "812", "account_id": "acme", "requester": "ana@acme.example", "subject": "Export fails",
              "priority": "high"}
    assert events == [
        ("support_ticket_opened", "ana@acme.example", dt.datetime(2026, 1, 9, 8, tzinfo=UTC), {**common, "status": "open"}),
        ("support_ticket_solved", "ana@acme.example", dt.datetime(2026, 1, 9, 10, 30, tzinfo=UTC), {**common, "status": "solved"}),
    ]


ZENDESK_EVENT = {
    "type": "zen:event-type:ticket.status_changed",
    "account_id": 12514403,
    "id": "2b24ef10-19d4-4740-93cf-8f98ec4776c0",
    "time": "2026-01-09T09:00:00Z",
    "zendesk_event_version": "2022-06-20",
    "subject": "zen:ticket:35",
    "detail": {
        "id": "35",
        "status": "SOLVED",
        "subject": "Cannot invite teammates",
        "priority": "NORMAL",
        "requester_id": "6596848315901",
        "organization_id": "509974",
        "created_at": "2026-01-08T07:00:00Z",
        "updated_at": "2026-01-09T09:00:00Z",
    },
    "event": {"current": "SOLVED", "previous": "OPEN"},
}


def test_zendesk_mapping(client: TestClient, store: Store, project: tuple[Project, str]):
    created, key = project
    response = client.put(
        f"/v1/projects/{created.project_id}/settings",
        json={"ticket_fields": "zendesk"},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.json()["settings"]["ticket_fields"] == ZENDESK_TICKET_FIELDS

    opened = copy.deepcopy(ZENDESK_EVENT)
    opened["detail"]["status"] = "NEW"
    assert post_ticket(client, created.project_id, opened, key).status_code == 200
    assert post_ticket(client, created.project_id, ZENDESK_EVENT, key).status_code == 200

    events = [(name, distinct_id, timestamp, properties) for _, name, distinct_id, timestamp, properties in stored(store, created.project_id)]
    common = {"ticket_id": "35", "account_id": "509974", "requester": "6596848315901",
              "subject": "Cannot invite teammates", "priority": "NORMAL"}
    assert events == [
        ("support_ticket_opened", "6596848315901", dt.datetime(2026, 1, 8, 7, tzinfo=UTC), {**common, "status": "new"}),
        ("support_ticket_solved", "6596848315901", dt.datetime(2026, 1, 9, 9, tzinfo=UTC), {**common, "status": "solved"}),
    ]


@pytest.mark.parametrize(
    ("body", "key_kind", "status", "expected"),
    [
        ({**TICKET, "status": None}, "project", 422, error_body(
            "invalid_ticket",
            "Ticket is missing status (path status); send it, or map the field with the project's ticket_fields setting",
        )),
        ({"status": "open"}, "project", 422, error_body(
            "invalid_ticket",
            "Ticket is missing id (path id); send it, or map the field with the project's ticket_fields setting",
        )),
        ({**TICKET, "created_at": "last week"}, "project", 422, error_body(
            "invalid_ticket",
            "Ticket time 'last week' is not an ISO 8601 date-time; send e.g. 2024-05-01T12:00:00Z",
        )),
        ([TICKET], "project", 400, error_body("invalid_body", f"Body must be a ticket JSON object; got {json.dumps([TICKET])[:60]}...")),
        (TICKET, "wrong", 401, error_body("invalid_key", "Invalid ingestion key for this project")),
    ],
    ids=["missing status", "missing id", "bad created_at", "array body", "wrong key"],
)
def test_bad_ticket_stores_nothing(
    client: TestClient, store: Store, project: tuple[Project, str], body, key_kind, status, expected
):
    created, key = project

    response = post_ticket(client, created.project_id, body, key if key_kind == "project" else "pbi_wrong")

    assert response.status_code == status
    assert response.json() == expected
    assert stored(store, created.project_id) == []


# Settings


def test_settings_hide_the_secret(client: TestClient, stripe_project: str):
    response = client.get(f"/v1/projects/{stripe_project}/settings", headers={"Authorization": f"Bearer {API_TOKEN}"})

    assert response.status_code == 200
    assert response.json() == {"settings": {
        "stripe_signing_secret_set": True,
        "stripe_account_metadata_key": "account_id",
        "ticket_fields": {name: name for name in
                          ("id", "status", "account", "requester", "subject", "priority", "created_at", "solved_at", "updated_at")},
    }}
    assert SECRET not in response.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"stripe_secret": "x"}, "Invalid settings: 'stripe_secret' is not a setting; use stripe_signing_secret, "
                                 "stripe_account_metadata_key or ticket_fields"),
        ({"ticket_fields": "freshdesk"}, "Invalid settings: ticket_fields 'freshdesk' is not a built-in mapping; "
                                         "use default, zendesk or an object"),
        ({"ticket_fields": {"id": "a.id"}}, "Invalid settings: ticket_fields must map status"),
        ({"ticket_fields": {"id": "a", "status": "b", "owner": "c"}},
         "Invalid settings: ticket_fields has unknown fields owner; use id, status, account, requester, subject, "
         "priority, created_at, solved_at, updated_at"),
        ({"stripe_signing_secret": ""}, "Invalid settings: stripe_signing_secret must be a non-empty string"),
    ],
    ids=["unknown name", "unknown mapping", "mapping without status", "unknown field", "empty secret"],
)
def test_invalid_settings(client: TestClient, stripe_project: str, body, message):
    response = client.put(
        f"/v1/projects/{stripe_project}/settings", json=body, headers={"Authorization": f"Bearer {API_TOKEN}"}
    )

    assert response.status_code == 422
    assert response.json() == {"error": {"code": "invalid_settings", "message": message, "details": []}}


def test_cli_sets_settings(tmp_path: Path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULSEBOARD_")}
    env["PULSEBOARD_DATA_DIR"] = str(tmp_path / "data")
    command = [sys.executable, "-m", "pulseboard.server.cli", "project"]

    subprocess.run([*command, "create", "shop"], env=env, check=True, capture_output=True, timeout=60)
    result = subprocess.run(
        [*command, "settings", "shop", "--stripe-signing-secret", SECRET, "--ticket-fields", "zendesk"],
        env=env, capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "stripe_account_metadata_key": "account_id",
        "stripe_signing_secret_set": True,
        "ticket_fields": ZENDESK_TICKET_FIELDS,
    }
    assert SECRET not in result.stdout + result.stderr

    shown = subprocess.run([*command, "settings", "shop"], env=env, capture_output=True, text=True, timeout=60)

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == json.loads(result.stdout)

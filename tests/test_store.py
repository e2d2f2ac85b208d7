import datetime as dt
import uuid

from pulseboard.server.store import EventRow, Store, keys_match, redact_url


def make_event(name: str, **properties) -> EventRow:
    return EventRow(
        uuid=str(uuid.uuid4()),
        event=name,
        distinct_id="u1",
        timestamp=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc),
        properties=properties,
    )


def test_migrate_is_idempotent(store: Store):
    assert store.migrate() == []


def test_ingest_key_checks(store: Store, project):
    created, key = project
    assert key.startswith("pbi_")
    assert store.check_ingest_key(created.project_id, key) is True
    assert store.check_ingest_key(created.project_id, key + "x") is False
    assert store.check_ingest_key("no-such-project", key) is False


def test_first_property_type_is_kept(store: Store, project):
    created, _ = project
    pid = created.project_id
    store.insert_events(pid, [make_event("a", mrr=300, plan="pro", nested={"ok": True})])
    store.insert_events(pid, [make_event("a", mrr="400", plan=1)])

    assert store.property_types(pid) == {"mrr": "Numeric", "plan": "String", "nested.ok": "Boolean"}
    rows = store.query(
        "SELECT count() FROM events WHERE project_id = {p:String}", {"p": pid}
    ).rows
    assert rows == [[2]]


def test_publication_key_and_revoke(store: Store, project):
    created, _ = project
    publication, key = store.create_publication(created.project_id, title="t", hogql="select 1")
    assert store.open_publication(publication.publication_id, key) == publication
    assert store.open_publication(publication.publication_id, "wrong") is None
    assert store.revoke_publication(publication.publication_id) is True
    assert store.open_publication(publication.publication_id, key) is None
    assert keys_match(key, "0" * 64) is False


def test_redact_url_hides_password():
    assert redact_url("https://bob:s3cret@ch.internal:8443/db") == "https://bob:***@ch.internal:8443/db"
    assert redact_url("chdb:///tmp/x") == "chdb:///tmp/x"


def test_pool_lends_distinct_clients(store: Store):
    with store.connection() as first, store.connection() as second:
        assert first is not second
        assert first.query("SELECT 1").result_rows == [(1,)]
        assert second.query("SELECT 2").result_rows == [(2,)]
    with store.connection() as again:
        assert again in (first, second)


def test_ingest_key_hash_is_reused(store: Store, project):
    created, key = project
    assert store.check_ingest_key(created.project_id, key) is True
    cached_hash, _ = store._ingest_key_hashes[created.project_id]
    assert keys_match(key, cached_hash) is True
    assert store.check_ingest_key(created.project_id, "pbi_wrong") is False
    assert store.check_ingest_key(created.project_id, key) is True

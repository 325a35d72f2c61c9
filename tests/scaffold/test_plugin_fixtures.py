"""The pytest plugin's fixtures for app authors: outbox, blob_store, client_for."""

from __future__ import annotations

from vibetuner.blobs.store import BlobStore
from vibetuner.models import Blob, UserModel
from vibetuner.testing import app_context


async def test_outbox_holds_the_emails_sent(client, outbox):
    assert len(outbox) == 0
    for address in ("ada@example.com", "Bob@Example.com"):
        response = await client.post("/auth/magic-link", json={"email": address})
        assert response.status_code == 200

    assert len(outbox) == 2
    [to_bob] = outbox.to("bob@example.com")
    assert to_bob["To"].addresses[0].addr_spec.lower() == "bob@example.com"
    assert outbox.last["To"].addresses[0].addr_spec.lower() == "bob@example.com"
    [link] = [url for url in outbox.links(to_bob) if "/auth/magic-link/" in url]
    assert link.startswith("http://testserver/auth/magic-link/")
    assert "sign" in outbox.text(to_bob).lower()

    outbox.clear()
    assert len(outbox) == 0


def test_outbox_last_says_when_nothing_was_sent(outbox):
    try:
        _ = outbox.last
    except AssertionError as exc:
        assert "no email was sent" in str(exc)
    else:
        raise AssertionError("outbox.last should fail when nothing was sent")


async def test_blob_store_on_its_own(blob_store, vibetuner_settings):
    blob = await blob_store.put(b"some bytes", filename="a.txt")
    assert blob.is_available and blob.size == 10
    assert b"".join([c async for c in blob_store.open(blob)]) == b"some bytes"
    assert await Blob.get(blob.id) is not None
    # The files are under the test's temporary directory.
    stored = [p for p in vibetuner_settings.blob_directory.rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in stored] == [b"some bytes"]


async def test_blob_store_is_the_apps_when_the_app_runs(app, blob_store, signed_in_client):
    assert blob_store is app_context(app).get(BlobStore)
    blob = await blob_store.put(b"shared", filename="b.txt")
    response = await signed_in_client.get(f"/blobs/{blob.id}")
    # Blobs without an uploader belong to nobody: the route must not show them to a user.
    assert response.status_code == 404


async def test_client_for_signs_in_any_user(client_for):
    ada = UserModel(email="ada@example.com")
    bob = UserModel(email="bob@example.com")
    await ada.insert()
    await bob.insert()
    as_ada = await client_for(ada)
    as_bob = await client_for(bob)
    assert (await as_ada.get("/auth/me")).json()["email"] == "ada@example.com"
    assert (await as_bob.get("/auth/me")).json()["email"] == "bob@example.com"

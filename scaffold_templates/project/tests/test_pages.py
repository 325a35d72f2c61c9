"""The app starts, answers /health and sends visitors to sign in."""

from vibetuner.testing import follow_sign_in_link


async def test_health(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_home_page_invites_visitors_to_sign_in(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert 'href="/auth/login"' in response.text


async def test_home_page_greets_signed_in_user(signed_in_client, user):
    response = await signed_in_client.get("/")
    assert response.status_code == 200
    assert user.email in response.text
    assert 'href="/notes"' in response.text


async def test_notes_need_sign_in(client):
    page = await client.get("/notes", headers={"accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"].startswith("/auth/login")

    api = await client.post("/notes", data={"title": "Hello"})
    assert api.status_code == 401


async def test_sign_in_with_the_emailed_link(client, outbox):
    sent = await client.post("/auth/magic-link", data={"email": "ada@example.com"})
    assert sent.status_code == 200

    [message] = outbox.to("ada@example.com")
    [link] = [url for url in outbox.links(message) if "/auth/magic-link/" in url]
    # The link's page asks "Sign in as ...?"; its button signs in.
    followed = await follow_sign_in_link(client, link)
    assert followed.status_code in (302, 303)

    notes = await client.get("/notes")
    assert notes.status_code == 200
    assert "ada@example.com" in notes.text

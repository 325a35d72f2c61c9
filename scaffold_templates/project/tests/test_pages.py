"""The app starts, answers /health and sends visitors to sign in."""

import re

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
    assert "Welcome back" not in response.text


async def test_first_sign_in_says_welcome_and_later_ones_welcome_back(client, outbox):
    async def sign_in():
        await client.post("/auth/magic-link", data={"email": "new@example.com"})
        link = [u for u in outbox.links(outbox.to("new@example.com")[-1]) if "/magic-link/" in u][0]
        await follow_sign_in_link(client, link)
        return (await client.get("/notes")).text

    first = await sign_in()
    assert "Welcome! Your account is ready." in first and "Welcome back" not in first
    await client.post("/auth/logout")
    assert "Welcome back." in await sign_in()


async def test_unknown_pages_are_an_html_page_for_browsers_and_json_for_apis(client):
    page = await client.get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "Page not found" in page.text and 'href="/"' in page.text
    api = await client.get("/no-such-page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


async def test_htmx_request_when_signed_out_redirects_the_whole_page(client):
    response = await client.get("/notes", headers={"HX-Request": "true", "Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/auth/login?next=")


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


async def test_the_home_page_for_visitors_is_served_from_the_cache(client):
    first = await client.get("/", headers={"Accept": "text/html"})
    again = await client.get("/", headers={"Accept": "text/html"})
    assert "x-cache" not in first.headers and again.headers["x-cache"] == "hit"
    assert 'href="/auth/login"' in again.text


async def test_the_note_summary_follows_every_change(signed_in_client):
    async def summary():
        page = await signed_in_client.get("/")
        assert "x-cache" not in page.headers  # a signed-in page is never a cached page
        found = re.search(r'<p id="note-summary">([^<]*)</p>', page.text)
        return found.group(1) if found else None

    assert await summary() is None
    await signed_in_client.post("/notes", data={"title": "Trip", "body": ""})
    await signed_in_client.post("/notes", data={"title": "Books", "body": ""})
    assert await summary() == "You have 2 notes; the newest is “Books”."
    listing = (await signed_in_client.get("/notes")).text
    books, trip = re.findall(r'href="/notes/([0-9a-f]{24})"', listing)  # newest first
    await signed_in_client.post(f"/notes/{books}", data={"title": "Novels", "body": ""})
    assert await summary() == "You have 2 notes; the newest is “Novels”."
    await signed_in_client.post(f"/notes/{books}/delete")
    assert await summary() == "You have 1 note; the newest is “Trip”."
    await signed_in_client.post(f"/notes/{books}/restore")
    assert await summary() == "You have 2 notes; the newest is “Novels”."

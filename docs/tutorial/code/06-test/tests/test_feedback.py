"""The tutorial's additions: the pinned badge, the feedback page, its upload, email and job."""

from vibetuner.models import UserModel
from vibetuner.testing import csrf_token_in

from my_app.models import Feedback, Note

HTML = {"Accept": "text/html"}


async def test_a_pinned_note_has_a_badge(signed_in_client, user):
    await Note(title="Groceries", owner=user, pinned=True).insert()
    await Note(title="Ideas", owner=user).insert()

    page = await signed_in_client.get("/notes", headers=HTML)
    assert page.text.count('<span class="vt-badge">Pinned</span>') == 1


async def test_an_admin_pins_a_note_in_the_admin(client_for, signed_in_client, user):
    note = await Note(title="Groceries", owner=user).insert()
    admin = await UserModel(email="boss@example.com", roles=["admin"]).insert()
    http = await client_for(admin)

    # The admin's edit form, posted as a browser does with the box ticked.
    form = await http.get(f"/admin/note/edit?pk={note.id}", headers=HTML)
    assert 'name="pinned"' in form.text
    fields = {"title": note.title, "body": "", "owner": str(user.id), "thumbnails": "{}"}
    saved = await http.post(
        f"/admin/note/edit?pk={note.id}",
        data={"csrf_token": csrf_token_in(form.text), **fields, "pinned": "on"},
        headers=HTML,
    )
    assert saved.status_code == 303
    page = await signed_in_client.get("/notes", headers=HTML)
    assert '<span class="vt-badge">Pinned</span>' in page.text


async def test_the_feedback_page_is_for_signed_in_users(client, signed_in_client):
    browser = await client.get("/feedback", headers=HTML)
    assert browser.status_code == 303
    assert browser.headers["location"].startswith("/auth/login?next=")
    api = await client.get("/feedback", headers={"Accept": "application/json"})
    assert api.status_code == 401

    page = await signed_in_client.get("/feedback", headers=HTML)
    assert page.status_code == 200
    assert 'name="screenshot"' in page.text


async def test_feedback_with_a_screenshot_is_emailed_to_the_admins(
    signed_in_client, user, jobs, outbox, blob_store
):
    admin = await UserModel(email="boss@example.com", roles=["admin"]).insert()
    sent = await signed_in_client.post(
        "/feedback",
        data={"message": "The export button is hard to find."},
        files={"screenshot": ("screen.png", b"\x89PNG\r\n\x1a\nnot much", "image/png")},
    )
    assert sent.status_code == 303

    feedback = await Feedback.find_one(fetch_links=True)
    assert feedback.message == "The export button is hard to find."
    assert feedback.author.id == user.id
    stored = b"".join([chunk async for chunk in blob_store.open(feedback.screenshot)])
    assert stored == b"\x89PNG\r\n\x1a\nnot much"

    # The route queued the email; the job sends it (drain waits until it has run).
    assert [queued.name for queued in jobs.enqueued] == ["my_app.jobs.email_feedback"]
    await jobs.drain()
    [message] = outbox.to(admin.email)
    assert message["Subject"] == f"Feedback from {user.email}"
    assert "The export button is hard to find." in outbox.text(message)


async def test_a_blank_message_is_refused(signed_in_client, jobs):
    sent = await signed_in_client.post("/feedback", data={"message": "   "})
    assert sent.status_code == 422
    assert await Feedback.count() == 0
    assert jobs.enqueued == []


async def test_the_feedback_page_in_spanish(signed_in_client):
    page = await signed_in_client.get("/feedback", headers={**HTML, "Accept-Language": "es"})
    assert "Cuéntanos qué funciona y qué no." in page.text
    assert "Enviar comentarios" in page.text

"""A third-party feature (``tests/thirdparty/billing``, public API only) does what a
built-in one does: each hook of ``Feature`` is proved here, over HTTP or as a command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.admin.conftest import make_user
from tests.thirdparty.billing import (
    BillingFeature,
    BillingSettings,
    Invoice,
    PaymentGateway,
    mark_paid,
)
from tests.thirdparty.conftest import build_billing_app
from vibetuner import JobsFeature, create_app
from vibetuner.errors import ConfigurationError
from vibetuner.testing import app_context

REPO = Path(__file__).resolve().parents[2]


# --- settings section --------------------------------------------------------------------


async def test_its_settings_section_is_read_from_its_own_prefix(
    vibetuner_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_CURRENCY", "USD")
    application = build_billing_app(vibetuner_settings)
    assert app_context(application).get(BillingSettings).currency == "USD"


def test_a_bad_setting_stops_the_app_with_one_line(
    vibetuner_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_TRIAL_DAYS", "soon")
    with pytest.raises(ConfigurationError) as refused:
        build_billing_app(vibetuner_settings)
    # The very line a bad core setting gets (MONGODB_TIMEOUT_MS: must be a whole number ...).
    assert str(refused.value) == "BILLING_TRIAL_DAYS: must be a whole number (got 'soon')"
    monkeypatch.setenv("BILLING_TRIAL_DAYS", "365")
    with pytest.raises(ConfigurationError, match=r"^BILLING_TRIAL_DAYS: .*90 \(got '365'\)$"):
        build_billing_app(vibetuner_settings)


def reference_hook() -> Any:
    """The docs' reference generator (``docs/hooks/reference.py``), as MkDocs loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "reference_hook", REPO / "docs/hooks/reference.py"
    )
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook


def test_the_settings_reference_shows_the_section() -> None:
    table = "\n".join(reference_hook().feature_settings_markdown([BillingFeature()]))
    assert "### The billing feature" in table
    assert "| `BILLING_TRIAL_DAYS` | `14` | Days of free use before the first invoice. |" in table


# --- models, middleware, static files, templates -----------------------------------------


async def test_its_model_is_registered(billing_app: Any, vibetuner_settings: Any) -> None:
    assert Invoice in app_context(billing_app).models()
    await Invoice(email="a@example.com", amount_cents=100).insert()
    assert await Invoice.find_all().count() == 1
    assert Invoice not in app_context(create_app(settings=vibetuner_settings, features=[])).models()


async def test_its_middleware_sees_every_answer(http_for: Any) -> None:
    http = await http_for(None)
    for path in ("/health/live", "/no-such-page"):
        assert (await http.get(path)).headers["x-billing-currency"] == "EUR"


async def test_its_page_uses_its_template_global_filter_and_stylesheet(http_for: Any) -> None:
    http = await http_for(None, html=True)
    page = await http.get("/billing/plan")
    assert page.status_code == 200
    assert '<p class="billing-price">19.00 EUR</p>' in page.text
    assert '<p class="billing-badge">14-day trial</p>' in page.text
    href = page.text.split('<link rel="stylesheet" href="')[-1].split('"')[0]
    assert href.startswith("/static/billing")
    stylesheet = await http.get(href)
    assert stylesheet.status_code == 200 and ".billing-price" in stylesheet.text


# --- errors --------------------------------------------------------------------------------


async def test_its_error_answers_its_own_status_and_code(billing_app: Any, http_for: Any) -> None:
    user = await make_user()
    api = await (await http_for(user)).get("/billing/premium")
    assert api.status_code == 402
    assert api.json() == {
        "detail": "Upgrade to a paid plan to open this page.",
        "code": "payment_required",
    }
    page = await (await http_for(user, html=True)).get("/billing/premium")
    assert page.status_code == 402 and "text/html" in page.headers["content-type"]
    assert "Payment required" in page.text and "Upgrade to a paid plan" in page.text


# --- health --------------------------------------------------------------------------------


async def test_its_health_check_shows_in_health_and_ready(billing_app: Any, http_for: Any) -> None:
    http = await http_for(None)
    assert (await http.get("/health")).json()["checks"]["billing"] == "ok"
    assert (await http.get("/health/ready")).json()["checks"]["billing"] == "ok"
    app_context(billing_app).get(PaymentGateway).reachable = False
    health = await http.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert health.json()["checks"]["billing"] == "the payment gateway does not answer"
    ready = await http.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["billing"] == "the payment gateway does not answer"


async def test_its_health_details_are_in_the_summary(billing_app: Any, http_for: Any) -> None:
    http = await http_for(None)
    assert (await http.get("/health")).json()["billing_unpaid_invoices"] == 0
    await Invoice(email="ada@example.com", amount_cents=1900).insert()
    assert (await http.get("/health")).json()["billing_unpaid_invoices"] == 1


async def test_its_check_finds_no_gateway_before_startup(vibetuner_settings: Any) -> None:
    # context.find, not get: an app built for a command and never started is not a crash.
    context = app_context(build_billing_app(vibetuner_settings))
    problems = await context.feature(BillingFeature).check_ready(context)
    assert problems == ["the payment gateway is not started"]


# --- admin ---------------------------------------------------------------------------------


async def test_its_admin_view_is_there_for_admins_only(billing_app: Any, http_for: Any) -> None:
    invoice = await Invoice(email="ada@example.com", amount_cents=1900).insert()
    detail = f"/admin/invoices/detail?pk={invoice.id}"
    admin = await http_for(await make_user(roles=["admin"]), html=True)
    home = await admin.get("/admin/")
    assert home.status_code == 200 and "Invoices" in home.text
    assert (await admin.get("/admin/invoices/list")).status_code == 200
    shown = await admin.get(detail)
    assert shown.status_code == 200 and "ada@example.com" in shown.text
    someone = await http_for(await make_user(), html=True)
    assert "Invoices" not in (await someone.get("/admin/")).text
    assert (await someone.get("/admin/invoices/list")).status_code == 404
    assert (await someone.get(detail)).status_code == 404


# --- jobs ----------------------------------------------------------------------------------


async def test_its_job_runs(billing_app: Any, http_for: Any) -> None:
    jobs = app_context(billing_app).feature(JobsFeature)
    assert jobs.queue is not None
    assert jobs.jobs() == [] and jobs.queue.jobs[mark_paid.name] is mark_paid  # the hook's
    user = await make_user()
    created = await (await http_for(user)).post("/billing/invoices?amount_cents=500")
    assert created.status_code == 201, created.text
    await jobs.queue.drain()
    invoice = await Invoice.get(created.json()["id"])
    assert invoice is not None and invoice.paid


# --- command line --------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A project whose app has the billing feature, and the environment to run it in."""
    (tmp_path / "pyproject.toml").write_text('[tool.vibetuner]\napp = "billing_app:app"\n')
    (tmp_path / "billing_app.py").write_text(
        textwrap.dedent(
            """
            from tests.thirdparty.billing import BillingFeature
            from vibetuner import create_app, default_features

            app = create_app(features=[*default_features(), BillingFeature()])
            """
        )
    )
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO), str(REPO / "src")])
    return tmp_path, env


def vibetuner(project: tuple[Path, dict[str, str]], *args: str, **env: str) -> Any:
    root, base = project
    return subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", *args],
        cwd=root,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_its_commands_run_in_the_project(project: tuple[Path, dict[str, str]]) -> None:
    plans = vibetuner(project, "billing", "plans", BILLING_CURRENCY="USD")
    assert plans.returncode == 0, plans.stderr
    assert plans.stdout.strip() == "currency USD, trial 14 days"
    unpaid = vibetuner(project, "billing", "unpaid")  # with the app's database started
    assert unpaid.returncode == 0, unpaid.stderr
    assert unpaid.stdout.strip() == "0 unpaid"


def test_the_cli_reference_shows_its_commands_as_a_project_runs_them() -> None:
    page = "\n".join(reference_hook().feature_commands_markdown([BillingFeature()]))
    assert "## `vibetuner billing`\n" in page and "Billing: plans and invoices." in page
    assert "```text\nvibetuner billing plans [OPTIONS]\n```" in page
    assert "### `vibetuner billing unpaid`" in page
    assert "Print how many invoices are unpaid (the app's database)." in page


def test_its_bad_setting_is_one_line_on_the_command_line(
    project: tuple[Path, dict[str, str]],
) -> None:
    refused = vibetuner(project, "billing", "plans", BILLING_TRIAL_DAYS="soon")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "Error: BILLING_TRIAL_DAYS: must be a whole number (got 'soon')"
    )
    assert "Traceback" not in refused.stderr


def test_an_unknown_command_outside_a_project_is_refused(tmp_path: Path) -> None:
    unknown = subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", "billing", "plans"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and "No such command 'billing'" in unknown.stderr

"""The billing feature: settings, a model, routes, an error, a health check, an admin view,
template helpers, a command, a job, middleware and static files.

The page "Writing a feature" (docs/concepts/features.md) shows its parts: the sections
between the snippet marks below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import typer
from beanie import Document
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from jinja2 import pass_context
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner import (
    AppContext,
    Context,
    ErrorAnswer,
    Feature,
    RequireUser,
    VibetunerError,
    app_context,
    render_page,
    running_app,
)
from vibetuner.admin.views import AuditedModelView
from vibetuner.jobs import task

HERE = Path(__file__).parent


# --8<-- [start:settings]
class BillingSettings(BaseSettings):
    """The billing section: ``BILLING_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="BILLING_", env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    currency: Literal["EUR", "USD"] = "EUR"
    """The currency invoices are in."""
    trial_days: int = Field(default=14, ge=0, le=90)
    """Days of free use before the first invoice."""


# --8<-- [end:settings]


# --8<-- [start:model]
class Invoice(Document):
    """An invoice of a user."""

    email: str
    amount_cents: int = Field(ge=0)
    paid: bool = False

    class Settings:
        name = "billing_invoices"


# --8<-- [end:model]


# --8<-- [start:error]
class PaymentRequired(VibetunerError):
    """The page needs a paid plan."""

    code = "payment_required"


# --8<-- [end:error]


class PaymentGateway:
    """The payment provider's client (here: a flag the health check reads)."""

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.reachable = True


# --8<-- [start:job]
@task
async def mark_paid(context: AppContext, invoice_id: str) -> None:
    """Mark an invoice paid (the provider confirmed the charge)."""
    invoice = await Invoice.get(invoice_id)
    if invoice is not None:
        invoice.paid = True
        await invoice.save()


# --8<-- [end:job]


# --8<-- [start:routes]
router = APIRouter(prefix="/billing", tags=["billing"])


@router.get("/premium")
async def premium(user: RequireUser) -> dict[str, str]:
    """Only for paying users: everyone else gets the feature's own 402."""
    if not await Invoice.find(Invoice.email == user.email, Invoice.paid == True).count():  # noqa: E712
        raise PaymentRequired("upgrade to a paid plan to open this page")
    return {"plan": "paid"}


@router.post("/invoices", status_code=201)
async def create_invoice(context: Context, user: RequireUser, amount_cents: int) -> dict[str, str]:
    """Open an invoice and queue its payment."""
    invoice = await Invoice(email=user.email, amount_cents=amount_cents).insert()
    await mark_paid.enqueue(context, str(invoice.id))
    return {"id": str(invoice.id)}


# --8<-- [end:routes]


@router.get("/plan", response_class=HTMLResponse)
async def plan(request: Request, context: Context) -> HTMLResponse:
    """The plan page: the template global and filter at work."""
    return render_page(request, "billing/plan.html", {"title": "Your plan", "price": 1900})


# --8<-- [start:templates]
@pass_context
def plan_badge(template: Any) -> str:
    """The trial offer, from the feature's settings (read through the request's app)."""
    settings = app_context(template["request"].app).get(BillingSettings)
    return f"{settings.trial_days}-day trial"


def money(cents: int, currency: str = "EUR") -> str:
    """``1900`` -> ``19.00 EUR``."""
    return f"{cents / 100:.2f} {currency}"


# --8<-- [end:templates]


class CurrencyHeader:
    """Says on every answer which currency prices are in."""

    def __init__(self, app: ASGIApp, currency: str) -> None:
        self.app = app
        self.header = (b"x-billing-currency", currency.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)


# --8<-- [start:commands]
commands = typer.Typer(help="Billing: plans and invoices.")


@commands.command("plans")
def show_plans() -> None:
    """Print the billing settings."""
    settings = BillingSettings()
    typer.echo(f"currency {settings.currency}, trial {settings.trial_days} days")


@commands.command("unpaid")
def count_unpaid() -> None:
    """Print how many invoices are unpaid (the app's database)."""
    import asyncio

    async def count() -> int:
        async with running_app():
            return await Invoice.find(Invoice.paid == False).count()  # noqa: E712

    typer.echo(f"{asyncio.run(count())} unpaid")


# --8<-- [end:commands]


# --8<-- [start:feature]
class BillingFeature(Feature):
    """Invoices for signed-in users."""

    name = "billing"
    requires = ("auth",)
    settings_class = BillingSettings

    def models(self) -> Sequence[type[Document]]:
        return [Invoice]

    def routers(self) -> Sequence[APIRouter]:
        return [router]

    def middleware(self) -> Sequence[Middleware]:
        # The section is read again here: middleware is built before startup.
        return [Middleware(CurrencyHeader, currency=BillingSettings().currency)]

    def template_dirs(self) -> Sequence[Path]:
        return [HERE / "templates"]

    def static_dirs(self) -> Sequence[Path]:
        return [HERE / "static"]

    def template_globals(self) -> Mapping[str, Any]:
        return {"plan_badge": plan_badge}

    def template_filters(self) -> Mapping[str, Callable[..., Any]]:
        return {"money": money}

    def errors(self) -> Mapping[type[VibetunerError], ErrorAnswer]:
        return {PaymentRequired: ErrorAnswer(402, "Payment required")}

    async def check_ready(self, context: AppContext) -> list[str]:
        # find: None where the lifespan has not run (a command's app), get would raise.
        gateway = context.find(PaymentGateway)
        if gateway is None:
            return ["the payment gateway is not started"]
        return [] if gateway.reachable else ["the payment gateway does not answer"]

    async def health_details(self, context: AppContext) -> Mapping[str, Any]:
        unpaid = await Invoice.find(Invoice.paid == False).count()  # noqa: E712
        return {"billing_unpaid_invoices": unpaid}

    def admin_views(self) -> Sequence[Any]:
        return [AuditedModelView(Invoice, menu_label="Invoices", key="invoices")]

    def commands(self) -> typer.Typer:
        return commands

    def jobs(self) -> Sequence[Any]:
        return [mark_paid]

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        context.provide(PaymentGateway(context.get(BillingSettings).currency))
        try:
            yield
        finally:
            context.withdraw(PaymentGateway)


# --8<-- [end:feature]

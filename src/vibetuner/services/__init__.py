"""Services used by the routes: email delivery, sign-in, rate limits, OAuth providers."""

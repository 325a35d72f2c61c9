"""Services used by the routes: email, sign-in, rate limits, OAuth providers, blob storage."""

"""The sign-in feature: email magic links, OAuth / OpenID Connect, server-side sessions,
the account page and view-as.

``AuthFeature`` (``vibetuner.auth.feature``) adds it to an app.
"""

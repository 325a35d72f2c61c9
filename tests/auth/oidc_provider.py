"""A small OpenID Connect provider for the sign-in tests, built on Authlib's server side.

Run as its own process: ``python oidc_provider.py CONFIG.json PORT``. It listens on
127.0.0.1 and serves discovery, JWKS, the authorization endpoint (authorization code
with PKCE S256 and a nonce in the id_token), the token endpoint and userinfo; plus
GitHub-shaped ``/user`` and ``/user/emails`` for the GitHub flow.

There is no login form: the authorization request names the person with
``login_hint=<user key>`` (the test, acting as the browser, adds it), and
``login_hint=deny`` answers with ``error=access_denied`` as a refusing person would.
The config file lists clients (id, secret, redirect URIs) and users (sub, email,
email_verified, name, picture, github_id); ``PUT /users/<key>`` (JSON of the same
fields) adds or changes one while it runs.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class User:
    key: str
    sub: str
    email: str | None
    email_verified: bool
    name: str | None = None
    picture: str | None = None
    github_id: int = 0

    def get_user_id(self) -> str:
        return self.sub


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class Token(TokenMixin):
    access_token: str
    client_id: str
    scope: str
    user: User
    issued_at: int
    expires_in: int

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return False

    def get_user(self) -> User:
        return self.user

    def get_client(self) -> Client:
        return CLIENTS[self.client_id]


CLIENTS: dict[str, Client] = {}
USERS: dict[str, User] = {}
CODES: dict[str, Code] = {}
TOKENS: dict[str, Token] = {}
KEY = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
ISSUER = ""


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        CODES[code] = Code(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.payload.scope,
            user=request.user,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found = CODES.get(code)
        return found if found is not None and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        CODES.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> User:
        return authorization_code.user


class IDToken(OpenIDCode):
    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return any(code.nonce == nonce for code in CODES.values())

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return KEY

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": ISSUER, "aud": [client.client_id]}

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": "test-key"}

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        return user_info(user, scope)


def user_info(user: User, scope: str) -> UserInfo:
    info = UserInfo(sub=user.sub)
    scopes = scope.split()
    if "profile" in scopes:
        info.update({k: v for k, v in {"name": user.name, "picture": user.picture}.items() if v})
    if "email" in scopes and user.email:
        info.update(email=user.email, email_verified=user.email_verified)
    return info


class Bearer(BearerTokenValidator):
    def authenticate_token(self, token_string: str) -> Token | None:
        return TOKENS.get(token_string)


def save_token(token: dict[str, Any], request: Any) -> None:
    TOKENS[token["access_token"]] = Token(
        access_token=token["access_token"],
        client_id=request.client.client_id,
        scope=token.get("scope", ""),
        user=request.user,
        issued_at=int(time.time()),
        expires_in=int(token.get("expires_in", 3600)),
    )


def create_app() -> Flask:
    app = Flask("oidc_provider")
    server = AuthorizationServer(app, query_client=CLIENTS.get, save_token=save_token)
    server.register_grant(CodeGrant, [IDToken(require_nonce=False), CodeChallenge(required=True)])
    protect = ResourceProtector()
    protect.register_token_validator(Bearer())

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return jsonify(
            issuer=ISSUER,
            authorization_endpoint=f"{ISSUER}/authorize",
            token_endpoint=f"{ISSUER}/token",
            userinfo_endpoint=f"{ISSUER}/userinfo",
            jwks_uri=f"{ISSUER}/jwks",
            response_types_supported=["code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            code_challenge_methods_supported=["S256"],
            scopes_supported=["openid", "email", "profile"],
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        )

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify(keys=[KEY.as_dict(private=False)])

    @app.get("/authorize")
    @app.get("/login/oauth/authorize")
    def authorize() -> Any:
        hint = request.args.get("login_hint", "")
        if hint == "deny":
            return server.create_authorization_response(grant_user=None)
        user = USERS.get(hint)
        if user is None:
            return jsonify(error="login_required", error_description="unknown login_hint"), 400
        try:
            server.get_consent_grant(end_user=user)
        except OAuth2Error as error:
            return jsonify(dict(error.get_body())), 400
        return server.create_authorization_response(grant_user=user)

    @app.post("/token")
    @app.post("/login/oauth/access_token")
    def token() -> Any:
        return server.create_token_response()

    @app.get("/userinfo")
    @protect("openid")
    def userinfo() -> Any:
        return jsonify(dict(user_info(current_token.user, current_token.scope)))

    @app.get("/user")
    @protect()
    def github_user() -> Any:
        user = current_token.user
        return jsonify(id=user.github_id, login=user.key, name=user.name, avatar_url=user.picture)

    @app.get("/user/emails")
    @protect()
    def github_emails() -> Any:
        user = current_token.user
        return jsonify(
            [
                {"email": f"{user.key}@noreply.example", "primary": False, "verified": True},
                {"email": user.email, "primary": True, "verified": user.email_verified},
            ]
        )

    @app.put("/users/<key>")
    def put_user(key: str) -> Any:
        # A person creating an account at the provider, or editing their profile there
        # (name, picture, claimed email): things an attacker controls about themselves.
        USERS[key] = User(key=key, **request.get_json())
        return jsonify(status="ok")

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok")

    return app


def main() -> None:
    global ISSUER
    config_path, port = sys.argv[1], int(sys.argv[2])
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    ISSUER = f"http://127.0.0.1:{port}"
    for entry in config["clients"]:
        CLIENTS[entry["client_id"]] = Client(**entry)
    for key, entry in config["users"].items():
        USERS[key] = User(key=key, **entry)
    create_app().run(host="127.0.0.1", port=port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()

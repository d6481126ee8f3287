"""Every mutating route refuses anonymous callers, the wrong role and a form POST without CSRF;
login is rate limited; the secrets never reach the log."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.routing import APIRoute

from tests.panel.conftest import PASSWORDS, TOKENS, bearer, login, session_csrf

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
#: routes a caller without a session must reach: the login form itself
ANONYMOUS_BY_DESIGN = {("POST", "/login")}
LOWER = {"operator": "viewer", "approver": "operator"}


def _mutating_routes(app: Any) -> list[tuple[str, str, str | None]]:
    from geomas.panel.app import ROLE_KEY

    found = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in sorted(route.methods & MUTATING):
            role = (route.openapi_extra or {}).get(ROLE_KEY)
            found.append((method, route.path, role))
    return found


def _url(path: str) -> str:
    return path.replace("{run_id}", "1").replace("{name}", "geomas-sft")


def test_every_mutating_route_checks_login_role_and_csrf(client: Any) -> None:
    from fastapi.testclient import TestClient

    routes = _mutating_routes(client.app)
    assert len(routes) >= 9, routes  # the enumeration sees the app's routes
    anon = TestClient(client.app)
    login(client, "anna")  # approver: the highest role, so only CSRF can stop her
    checked = []
    for method, path, role in routes:
        if (method, path) in ANONYMOUS_BY_DESIGN:
            continue
        assert role is not None, f"{method} {path} declares no role (openapi_extra)"
        url = _url(path)
        # anonymous: 401, and a made-up token is anonymous too
        assert anon.request(method, url, json={}).status_code == 401, (method, path)
        assert anon.request(method, url, json={},
                            headers={"Authorization": "Bearer nope"}).status_code == 401
        # the role just below the one needed: 403
        if role in LOWER:
            got = anon.request(method, url, json={}, headers=bearer(LOWER[role]))
            assert got.status_code == 403, (method, path, got.text)
        # a logged-in approver's form POST without the CSRF token: 403
        got = client.request(method, url, data={"pipeline": "data"})
        assert got.status_code == 403 and "CSRF" in got.text, (method, path, got.text)
        # ... and with a wrong one
        got = client.request(method, url, data={"csrf_token": "forged"})
        assert got.status_code == 403, (method, path)
        checked.append((method, path))
    assert {("POST", "/api/runs"), ("POST", "/api/corpus/upload"),
            ("POST", "/api/models/{name}/promote"), ("POST", "/runs")} <= set(checked)


def test_login_needs_its_csrf_cookie(client: Any) -> None:
    got = client.post("/login", data={"username": "anna", "password": PASSWORDS["anna"]})
    assert got.status_code == 403


def test_pages_and_api_need_a_login_healthz_does_not(client: Any) -> None:
    from fastapi.testclient import TestClient

    anon = TestClient(client.app)
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/api/runs").status_code == 401
    assert anon.get("/", follow_redirects=False).headers["location"] == "/login"
    assert anon.get("/api/runs", headers=bearer("viewer")).status_code == 200
    got = login(client, "vera")
    assert got.status_code == 303
    cookie = got.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert client.get("/api/me").json() == {"name": "vera", "role": "viewer", "via": "session"}
    assert "Overview" in client.get("/").text


def test_session_csrf_token_lets_a_form_post_through(client: Any) -> None:
    login(client, "oleg")
    csrf = session_csrf(client)
    got = client.post("/runs", data={"pipeline": "data", "config": "",
                                     "config_text": "data: {}\n", "csrf_token": csrf})
    assert got.status_code == 422  # past auth and CSRF: the config itself is invalid
    assert "source_dir" in got.text and "Field required" in got.text


def test_login_rate_limit_gives_429(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        got = login(client, "anna", "wrong-password")
        assert got.status_code == 200 and "wrong user name or password" in got.text
    got = login(client, "anna")  # even the right password: the user is blocked for now
    assert got.status_code == 429 and "Retry-After" in got.headers
    # another user from the same IP is blocked too (per IP)
    assert login(client, "vera").status_code == 429
    text = caplog.text
    for secret in [*PASSWORDS.values(), *TOKENS.values(), "wrong-password"]:
        assert secret not in text

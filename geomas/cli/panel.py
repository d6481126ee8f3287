"""`geomas panel`: serve the control panel; make password hashes and API tokens for it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geomas.cli.app import app, console, out
from geomas.errors import ConfigError

if TYPE_CHECKING:
    from geomas.config import PanelConfig
    from geomas.panel.auth import Users

panel_app = typer.Typer(help="The control panel: web pages and a REST API (docs/panel.md).",
                        invoke_without_command=True)
app.add_typer(panel_app, name="panel")


@panel_app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Panel config YAML (PanelConfig; docs/panel.md); default: defaults "
        "with configs/local.yaml as the project.")] = None,
    dev: Annotated[bool, typer.Option(
        "--dev", help="Without GEOMAS_PANEL_SECRET, use an ephemeral secret (sessions end "
        "with the process).")] = False,
) -> None:
    """Serve the control panel (login, runs, models, corpus; the API under /api)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from geomas.panel.app import create_app

    settings = load_panel_config(config)
    application = create_app(settings, panel_secret(dev), panel_users(settings.users_file))
    console.print(f"geomas panel on http://{host}:{port} (API docs: /docs)", highlight=False)
    uvicorn.run(application, host=host, port=port, proxy_headers=True, log_level="info")


#: Environment overrides the deployment sets (charts/geomas, k8s/base/panel.yaml).
PANEL_ENV = {"GEOMAS_PANEL_DATABASE_URL": "database_url", "GEOMAS_PANEL_LAUNCHER": "launcher"}


def load_panel_config(path: Path | None) -> PanelConfig:
    """The panel config: `path`'s keys (at the top or under `panel:`), else the defaults.

    A run config (configs/k8s.yaml: `project:`, `data:`...) is accepted too: it becomes the
    panel's `run_config`, with its `panel:` section, if any, as the panel's settings.
    GEOMAS_PANEL_DATABASE_URL and GEOMAS_PANEL_LAUNCHER override the file.
    """
    from pydantic import ValidationError

    from geomas.config import PanelConfig, RunConfig, load_yaml
    from geomas.config.base import validation_message

    values: dict[str, object] = {}
    if path is not None:
        raw = load_yaml(path)
        section = raw.get("panel")
        values = dict(section) if isinstance(section, dict) else {}
        if set(raw) & (set(RunConfig.model_fields) - {"panel"}):
            values.setdefault("run_config", str(path))
        elif not isinstance(section, dict):
            values = dict(raw)
    for env, key in PANEL_ENV.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
    try:
        return PanelConfig.model_validate(values)
    except ValidationError as exc:
        where = f"panel config {path}" if path else "panel settings"
        raise ConfigError(f"{where} is invalid: {validation_message(exc)}") from exc


def panel_secret(dev: bool) -> str:
    """GEOMAS_PANEL_SECRET, or with --dev an ephemeral one (said on stderr)."""
    from geomas.panel.auth import SECRET_ENV

    secret = os.environ.get(SECRET_ENV, "")
    if secret:
        return secret
    if not dev:
        raise ConfigError(f"{SECRET_ENV} is not set; the panel signs its session cookies with "
                          "it: set it to 32+ random characters (from a secret store), or pass "
                          "--dev for an ephemeral one on a workstation")
    console.print(f"[yellow]--dev: no {SECRET_ENV}; using an ephemeral secret: sessions end "
                  "when the panel stops[/]")
    return secrets.token_urlsafe(48)


def panel_users(configured: Path | None) -> Users:
    """The users from GEOMAS_PANEL_USERS_FILE, else the panel config's users_file."""
    from geomas.panel.auth import USERS_ENV, load_users

    env = os.environ.get(USERS_ENV, "").strip()
    path = Path(env) if env else configured
    if path is None:
        raise ConfigError(f"no panel users: set {USERS_ENV} or users_file in the panel config "
                          "(docs/panel.md, 'Users file')")
    return load_users(path)


@panel_app.command("hash-password")
def hash_password_cmd() -> None:
    """Prompt for a password and print its argon2 hash for the users file."""
    from geomas.panel.auth import hash_password

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    out.print(hash_password(password), markup=False, highlight=False)


@panel_app.command("new-token")
def new_token_cmd() -> None:
    """Print a new API token (give it to the client) and its sha256 (for the users file)."""
    from geomas.panel.auth import token_digest

    token = secrets.token_urlsafe(32)
    out.print(f"token : {token}\nsha256: {token_digest(token)}", markup=False, highlight=False)

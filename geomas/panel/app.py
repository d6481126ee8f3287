"""The FastAPI app: server-rendered pages and the same actions as a JSON API under /api.

Every route but GET /healthz, GET/POST /login needs a logged-in user (a signed session cookie)
or an API token (`Authorization: Bearer`). Mutating routes are declared with the least role
they need (`openapi_extra["x-geomas-role"]`); with a session cookie they also need the
session's CSRF token (header `X-CSRF-Token` or form field `csrf_token`); bearer calls do not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints

from geomas.config import PanelConfig, RunConfig, load_config
from geomas.errors import ConfigError, GeomasError, InputError
from geomas.panel import project
from geomas.panel.auth import LoginLimiter, Role, Sessions, User, Users, role_allows, same_token
from geomas.panel.runs import FieldErrors, RunManager, RunNotFound, validate_run_config
from geomas.panel.store import FINISHED, PIPELINES, Pipeline, RunRecord, open_store
from geomas.panel.templates import render

log = logging.getLogger(__name__)

ROLE_KEY = "x-geomas-role"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LaunchRequest(BaseModel):
    """POST /api/runs: which pipeline, with which run config."""

    pipeline: Pipeline
    config: str = Field(min_length=1, description="A file name in the configs folder (e.g. "
                        "local.yaml), or the YAML text of an edited run config.")


class MoveRequest(BaseModel):
    """POST /api/models/{name}/promote and /rollback."""

    version: str | None = Field(default=None, description="Version to promote (promote only).")
    force: bool = Field(default=False, description="Move even when the gate calls it unsafe.")
    reason: str | None = Field(default=None, description="Why; required with force.")


class PauseRequest(BaseModel):
    """POST /api/retrain/pause: why the retrain checks stop (every paused check prints it)."""

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=1000)] = Field(
        description="Why; required.")


class Identity(BaseModel):
    """Who is calling, and how."""

    user: User
    via: Literal["session", "token"]
    csrf: str = ""


class Panel:
    """Everything the routes share: settings, project config, records, runs, auth."""

    def __init__(self, settings: PanelConfig, secret: str, users: Users,
                 workdir: Path | None = None) -> None:
        from geomas.stack import activate_project

        self.settings = settings
        self.workdir = Path(workdir or Path.cwd())
        self.run_config: RunConfig = load_config(settings.run_config, RunConfig)
        project_cfg = self.run_config.project
        self.data_dir = activate_project(project_cfg.data_dir,
                                         config_tracking_uri=project_cfg.tracking_uri,
                                         config_registry_uri=project_cfg.registry_uri)
        self.panel_dir = Path(settings.data_dir or self.data_dir / "panel").resolve()
        url = settings.database_url or f"sqlite:///{self.panel_dir / 'panel.db'}"
        self.runs = RunManager(settings, self.panel_dir, open_store(url), self.workdir)
        self.users = users
        self.sessions = Sessions(secret, settings.session_max_age_seconds)
        self.limiter = LoginLimiter(settings.login_max_failures, settings.login_window_seconds)

    def identify(self, request: Request) -> Identity | None:
        """The caller from a bearer token or a session cookie, else None."""
        auth = request.headers.get("authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            user = self.users.by_token(token.strip())
            return Identity(user=user, via="token") if user is not None else None
        cookie = request.cookies.get(Sessions.COOKIE)
        if not cookie:
            return None
        read = self.sessions.read(cookie)
        if read is None or read[0] not in self.users.by_name:
            return None
        return Identity(user=self.users.by_name[read[0]], via="session", csrf=read[1])

    def config_names(self) -> list[str]:
        """Run configs offered by name (files directly in the configs folder)."""
        folder = self.settings.configs_dir
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir()
                      if p.is_file() and p.suffix in (".yaml", ".yml"))

    def config_text(self, config: str) -> tuple[str, str]:
        """(name, YAML text) for a config given by file name or as text.

        Raises:
            FieldErrors: a name that is not a config file in the configs folder.
        """
        if "\n" not in config and config.strip().endswith((".yaml", ".yml")):
            name = config.strip()
            if name not in self.config_names():
                raise FieldErrors("config", [{"field": "config", "message": (
                    f"{name!r} is not a run config in {self.settings.configs_dir}; pick one of "
                    f"{', '.join(self.config_names()) or '(none)'} or send the YAML text")}])
            return name, (self.settings.configs_dir / name).read_text("utf-8")
        return "(edited)", config

    def launch(self, pipeline: Pipeline, config: str, user: User,
               rerun_of: int | None = None) -> RunRecord:
        """Validate a run config for `pipeline`, then queue (and maybe start) the run."""
        name, text = self.config_text(config)
        validate_run_config(pipeline, text, f"config {name}")
        return self.runs.submit(pipeline, name, text, user.name, rerun_of=rerun_of)


def _panel(request: Request) -> Panel:
    return request.app.state.panel


def need(role: Role) -> Callable[[Request], Awaitable[Identity]]:
    """A dependency: the caller, with at least `role`, and (session, mutating) a CSRF token."""

    async def dependency(request: Request) -> Identity:
        ident = _panel(request).identify(request)
        if ident is None:
            raise HTTPException(401, "log in (POST /login) or send Authorization: Bearer "
                                "<token>", headers={"WWW-Authenticate": "Bearer"})
        if not role_allows(ident.user.role, role):
            raise HTTPException(403, f"{ident.user.name} is {ident.user.role}; this needs the "
                                f"{role} role (users file)")
        if request.method not in SAFE_METHODS and ident.via == "session":
            given = request.headers.get("x-csrf-token")
            if not given and "form" in request.headers.get("content-type", ""):
                given = str((await request.form()).get("csrf_token") or "")
            if not same_token(given, ident.csrf):
                raise HTTPException(403, "CSRF token missing or wrong; reload the page (API "
                                    "clients: send X-CSRF-Token or use a bearer token)")
        return ident

    return dependency


Viewer = Annotated[Identity, Depends(need("viewer"))]
Operator = Annotated[Identity, Depends(need("operator"))]
Approver = Annotated[Identity, Depends(need("approver"))]


def _role(role: Role) -> dict[str, Any]:
    return {"openapi_extra": {ROLE_KEY: role}}


def _status_for(exc: GeomasError) -> int:
    from geomas.registry.promotion import PromotionRefused

    if isinstance(exc, FieldErrors):
        return 422
    if isinstance(exc, RunNotFound):
        return 404
    if isinstance(exc, project.UploadRefused):
        return 413 if "larger than" in str(exc) else 400
    if isinstance(exc, PromotionRefused):
        return 409
    if isinstance(exc, InputError):
        return 404
    return 400 if not isinstance(exc, ConfigError) else 409


def _run_json(panel: Panel, rec: RunRecord, detail: bool = False) -> dict[str, Any]:
    data = rec.to_dict()
    if not detail:
        data.pop("config_text", None)
    links: dict[str, str] = {}
    if panel.settings.zenml_dashboard_url and rec.zenml_run_id:
        links["zenml"] = f"{panel.settings.zenml_dashboard_url.rstrip('/')}/runs/{rec.zenml_run_id}"
    if panel.settings.mlflow_ui_url:
        # the detail view finds the run's own MLflow run (a lookup: not for every list row)
        links["mlflow"] = (_run_mlflow_link(panel, rec) if detail else None
                           ) or panel.settings.mlflow_ui_url
    data["links"] = links
    return data


def _run_mlflow_link(panel: Panel, rec: RunRecord) -> str | None:
    """The MLflow UI page of a panel run's MLflow run, in the experiment of the run's config.

    Its ZenML run name (from the summary; a retrain check's is the training run it started)
    names the MLflow run; before it is known the experiment's page.
    """
    import yaml

    from geomas.config import ProjectConfig

    experiment = panel.run_config.project.experiment_name
    try:
        raw = yaml.safe_load(rec.config_text or "") or {}
        section = raw.get("project") if isinstance(raw, dict) else None
        experiment = ProjectConfig.model_validate(section or {}).experiment_name
    except (yaml.YAMLError, ValueError):
        pass  # validated at launch; an unreadable copy falls back to the panel's experiment
    return project.mlflow_run_link(panel.settings.mlflow_ui_url, experiment,
                                   rec.zenml_run_name)


def _steps(rec: RunRecord) -> dict[str, Any]:
    """Step statuses, best effort: from ZenML once the run is known there.

    While a run is going its ZenML run is found by the `geomas.panel_run` tag it was started
    with; at its end the JSON summary names it (a failed pipeline prints none: its page keeps
    the steps it showed last).
    """
    try:
        run_id = rec.zenml_run_id
        if (not run_id and rec.status == "running" and rec.pipeline != "retrain-check"
                and rec.started_at is not None):
            run_id = project.zenml_run_tagged(f"geomas.panel_run={rec.id}", rec.started_at)
        if not run_id:
            return {"steps": [], "steps_note": "no ZenML run yet"}
        name, steps = project.zenml_steps(run_id)
        return {"steps": steps, "steps_note": "", "zenml_run_name": rec.zenml_run_name or name}
    except Exception as exc:  # noqa: BLE001 - best effort: the reason is returned, not hidden
        log.info("run %s: ZenML steps unavailable: %s: %s", rec.id, type(exc).__name__, exc)
        return {"steps": [], "steps_note": f"ZenML steps unavailable: {type(exc).__name__}: "
                f"{exc}"}


def create_app(settings: PanelConfig, secret: str, users: Users,
               workdir: Path | None = None) -> FastAPI:
    """The panel app for a project (its run config), with its records, runs and users.

    Args:
        settings: The panel config.
        secret: Signs the session cookies (GEOMAS_PANEL_SECRET).
        users: Users and API tokens.
        workdir: Where runs execute (relative paths in run configs); default the CWD.
    """
    panel = Panel(settings, secret, users, workdir)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        panel.runs.start()
        try:
            yield
        finally:
            panel.runs.close()

    app = FastAPI(title="geomas panel", lifespan=lifespan,
                  description="Runs, corpus, models and promotion of a geomas project.")
    app.state.panel = panel

    @app.exception_handler(GeomasError)
    async def _geomas_error(_request: Request, exc: GeomasError) -> JSONResponse:
        body: dict[str, Any] = {"message": str(exc)}
        if isinstance(exc, FieldErrors):
            body["detail"] = exc.errors
        return JSONResponse(body, status_code=_status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or "(body)",
                   "message": e["msg"]} for e in exc.errors()]
        return JSONResponse({"message": "; ".join(f"{e['field']}: {e['message']}"
                                                  for e in errors), "detail": errors}, 422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Any:
        if (exc.status_code == 401 and request.method == "GET"
                and not request.url.path.startswith("/api")):
            return RedirectResponse("/login", 303)
        return JSONResponse({"message": exc.detail, "detail": exc.detail}, exc.status_code,
                            headers=exc.headers)

    _api_routes(app, panel)
    _page_routes(app, panel)
    return app


def _api_routes(app: FastAPI, panel: Panel) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/me")
    def me(ident: Viewer) -> dict[str, Any]:
        return {"name": ident.user.name, "role": ident.user.role, "via": ident.via}

    @app.get("/api/overview")
    def overview(ident: Viewer) -> dict[str, Any]:
        return _overview(panel)

    @app.get("/api/configs")
    def configs(ident: Viewer) -> list[str]:
        return panel.config_names()

    @app.post("/api/runs", status_code=201, **_role("operator"))
    def launch(body: LaunchRequest, ident: Operator) -> dict[str, Any]:
        return _run_json(panel, panel.launch(body.pipeline, body.config, ident.user))

    @app.get("/api/runs")
    def runs(ident: Viewer, limit: int = 100) -> list[dict[str, Any]]:
        return [_run_json(panel, r) for r in panel.runs.list(limit)]

    @app.get("/api/runs/{run_id}")
    def run(run_id: int, ident: Viewer) -> dict[str, Any]:
        rec = panel.runs.get(run_id)
        return {**_run_json(panel, rec, detail=True), **_steps(rec)}

    @app.get("/api/runs/{run_id}/log")
    def run_log(run_id: int, ident: Viewer, max_bytes: int = 64_000) -> dict[str, Any]:
        return {"id": run_id, "log": panel.runs.tail(run_id, max_bytes)}

    @app.get("/api/runs/{run_id}/events")
    async def events(run_id: int, ident: Viewer) -> StreamingResponse:
        await run_in_threadpool(panel.runs.get, run_id)  # 404 before the stream starts
        return StreamingResponse(_event_stream(panel, run_id), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.post("/api/runs/{run_id}/rerun", status_code=201, **_role("operator"))
    def rerun(run_id: int, ident: Operator) -> dict[str, Any]:
        old = panel.runs.get(run_id)
        validate_run_config(old.pipeline, old.config_text,  # type: ignore[arg-type]
                            f"config of run {run_id}")
        rec = panel.runs.submit(old.pipeline, old.config_name,  # type: ignore[arg-type]
                                old.config_text, ident.user.name, rerun_of=run_id)
        return _run_json(panel, rec)

    @app.post("/api/runs/{run_id}/stop", **_role("operator"))
    def stop(run_id: int, ident: Operator) -> dict[str, Any]:
        return _run_json(panel, panel.runs.stop(run_id))

    @app.post("/api/retrain/pause", **_role("operator"))
    def retrain_pause(body: PauseRequest, ident: Operator) -> dict[str, Any]:
        return project.pause_retrain(panel.run_config, ident.user.name, body.reason)

    @app.post("/api/retrain/resume", **_role("operator"))
    def retrain_resume(ident: Operator) -> dict[str, Any]:
        return project.resume_retrain(panel.run_config, ident.user.name)

    @app.get("/api/models/{name}")
    def model(name: str, ident: Viewer) -> dict[str, Any]:
        return project.model_versions(name, panel.settings.mlflow_ui_url)

    @app.get("/api/models/{name}/history")
    def model_history(name: str, ident: Viewer) -> list[dict[str, Any]]:
        return project.history(name)

    @app.get("/api/models/{name}/versions/{version}/samples")
    def model_samples(name: str, version: str, ident: Viewer) -> dict[str, Any]:
        return project.sample_generations(name, version)

    @app.post("/api/models/{name}/promote", **_role("approver"))
    def promote(name: str, body: MoveRequest, ident: Approver) -> dict[str, Any]:
        if not body.version:
            raise FieldErrors("promotion", [{"field": "version",
                                             "message": "give the version to promote"}])
        return project.move("promote", name, version=body.version, force=body.force,
                            reason=body.reason, actor=ident.user.name)

    @app.post("/api/models/{name}/rollback", **_role("approver"))
    def rollback(name: str, body: MoveRequest, ident: Approver) -> dict[str, Any]:
        return project.move("rollback", name, version=None, force=body.force,
                            reason=body.reason, actor=ident.user.name)

    @app.get("/api/corpus")
    def corpus(ident: Viewer) -> dict[str, Any]:
        return project.corpus(panel.run_config)

    @app.post("/api/corpus/upload", **_role("operator"))
    def upload(ident: Operator, file: Annotated[UploadFile, File()]) -> JSONResponse:
        def chunks() -> Any:
            while block := file.file.read(1 << 20):
                yield block

        result = project.store_upload(panel.settings, panel.run_config, file.filename or "",
                                      chunks())
        log.info("upload by %s: %s %s", ident.user.name, result.status, result.name)
        return JSONResponse(result.model_dump(), 201 if result.status == "stored" else 200)


def _overview(panel: Panel) -> dict[str, Any]:
    cfg = panel.run_config
    out: dict[str, Any] = {"retrain": project.retrain_status(cfg),
                           "runs": [_run_json(panel, r) for r in panel.runs.list(10)],
                           "model": None, "model_note": ""}
    out["zenml_schedule"] = project.zenml_retrain_schedules()
    out["schedule_note"] = (
        "checks run from the geomas-retrain CronJob, a ZenML schedule (`geomas retrain "
        "schedule`), a cron calling `geomas retrain check` or a panel retrain-check run; a "
        "pause here is a flag in the MLflow ledger that every one of them reads: they still "
        "start, and return `paused` without launching")
    if cfg.training is not None:
        try:
            out["model"] = project.model_versions(cfg.training.registered_model_name,
                                                  panel.settings.mlflow_ui_url)
        except InputError as exc:
            out["model_note"] = str(exc)
    else:
        out["model_note"] = "the run config has no training: section"
    return out


async def _event_stream(panel: Panel, run_id: int) -> AsyncIterator[str]:
    """Server-sent events: `status` when the record changes, `log` with new log text."""
    last: dict[str, Any] | None = None
    offset = 0
    while True:
        rec = await run_in_threadpool(panel.runs.get, run_id)
        state = {"id": rec.id, "status": rec.status, "exit_code": rec.exit_code,
                 "zenml_run_name": rec.zenml_run_name}
        try:
            with open(rec.log_path, "rb") as fh:
                fh.seek(offset)
                new = fh.read(256_000)
        except OSError:
            new = b""
        if new:
            offset += len(new)
            yield f"event: log\ndata: {json.dumps(new.decode('utf-8', 'replace'))}\n\n"
        if state != last:
            last = state
            yield f"event: status\ndata: {json.dumps(state)}\n\n"
        if rec.status in FINISHED and not new:
            return
        await asyncio.sleep(panel.settings.poll_seconds)


def _page_routes(app: FastAPI, panel: Panel) -> None:
    def page(request: Request, name: str, ident: Identity | None, **context: Any
             ) -> HTMLResponse:
        return HTMLResponse(render(name, user=ident.user if ident else None,
                                   csrf=ident.csrf if ident else "", title=name, **context))

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, error: str = "") -> HTMLResponse:
        token = secrets.token_urlsafe(32)
        resp = page(request, "login.html", None, login_csrf=token, error=error)
        resp.set_cookie(Sessions.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=3600)
        return resp

    @app.post("/login")
    def login(request: Request, username: Annotated[str, Form()],
              password: Annotated[str, Form()],
              csrf_token: Annotated[str, Form()] = "") -> Any:
        if not same_token(csrf_token, request.cookies.get(Sessions.LOGIN_CSRF_COOKIE)):
            raise HTTPException(403, "CSRF token missing or wrong; reload the login page")
        ip = request.client.host if request.client else "?"
        keys = (f"ip:{ip}", f"user:{username}")
        wait = panel.limiter.retry_after(*keys)
        if wait is not None:
            raise HTTPException(429, f"too many failed logins; try again in {wait:.0f} s",
                                headers={"Retry-After": str(int(wait) + 1)})
        user = panel.users.login(username, password)
        if user is None:
            panel.limiter.failed(*keys)
            log.warning("failed login for %r from %s", username, ip)
            return page(request, "login.html", None, login_csrf=csrf_token,
                        error="wrong user name or password")
        panel.limiter.succeeded(f"user:{username}")
        cookie, _csrf = panel.sessions.issue(user.name)
        resp = RedirectResponse("/", 303)
        resp.set_cookie(Sessions.COOKIE, cookie, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https",
                        max_age=panel.settings.session_max_age_seconds)
        resp.delete_cookie(Sessions.LOGIN_CSRF_COOKIE)
        log.info("%s logged in from %s", user.name, ip)
        return resp

    @app.post("/logout", **_role("viewer"))
    def logout(ident: Viewer) -> RedirectResponse:
        resp = RedirectResponse("/login", 303)
        resp.delete_cookie(Sessions.COOKIE)
        return resp

    @app.get("/", response_class=HTMLResponse)
    def overview_page(request: Request, ident: Viewer) -> HTMLResponse:
        return page(request, "overview.html", ident, o=_overview(panel),
                    runs=[r.to_dict() for r in panel.runs.list(10)],
                    can_run=role_allows(ident.user.role, "operator"))

    def runs_page(request: Request, ident: Identity, *, preset: str | None = None,
                  pipeline: str = "data", submitted: dict[str, str] | None = None,
                  errors: list[dict[str, str]] | None = None,
                  yaml_errors: list[dict[str, str]] | None = None,
                  status: int = 200) -> HTMLResponse:
        """The runs page; for operators the launch form, filled from a preset.

        `preset` is a config file name or `run:<id>` (None: the panel's run config when it is
        in the configs folder, else the first config); `submitted` holds the texts of a
        refused submit, shown again with `errors` next to their fields.
        """
        import yaml

        from geomas.panel import form as launch_form

        runs = panel.runs.list()
        context: dict[str, Any] = {"can_run": role_allows(ident.user.role, "operator")}
        if context["can_run"]:
            names = panel.config_names()
            if preset is None:
                own = Path(panel.settings.run_config)
                in_folder = own.resolve().parent == Path(panel.settings.configs_dir).resolve()
                preset = own.name if in_folder and own.name in names else (names or [""])[0]
            preset_error, text = "", ""
            try:
                _name, text, _run_id = launch_preset(preset)
                raw = yaml.safe_load(text) if text.strip() else {}
            except (FieldErrors, RunNotFound) as exc:
                preset_error, raw = str(exc), {}
                status = 404 if status == 200 else status
            except yaml.YAMLError as exc:
                preset_error, raw = f"the preset is not valid YAML: {exc}", {}
            form = launch_form.form_for(RunConfig)
            on_fields, general = launch_form.place_errors(form, errors or [])
            presets = [{"value": n, "label": n} for n in names] + [
                {"value": f"run:{r.id}", "label": f"run {r.id} · {r.pipeline} · {r.status} · "
                 f"{r.config_name}"} for r in runs[:20]]
            if preset and preset not in [p["value"] for p in presets]:
                presets.append({"value": preset, "label": preset})
            context |= {
                "form": form, "preset": preset, "presets": presets, "pipeline": pipeline,
                "preset_error": preset_error,
                "values": launch_form.shown_values(form, raw, submitted or {}),
                "field_errors": on_fields,
                "general_errors": [e for e in general if e["field"] != "pipeline"],
                "pipeline_error": "; ".join(e["message"] for e in general
                                            if e["field"] == "pipeline"),
                "open_sections": launch_form.open_sections(form, pipeline, list(on_fields)),
                "pipeline_sections": launch_form.PIPELINE_SECTIONS,
                "config_text": (submitted or {}).get("config_text", text),
                "yaml_errors": yaml_errors or []}
        resp = page(request, "runs.html", ident, runs=[r.to_dict() for r in runs],
                    pipelines=PIPELINES, **context)
        resp.status_code = status
        return resp

    def launch_preset(preset: str) -> tuple[str, str, int | None]:
        """(config name, YAML text, run id) of a launch-form preset: a file or `run:<id>`.

        Raises:
            FieldErrors: not a config file in the configs folder, nor `run:<id>`.
            RunNotFound: no run with that id.
        """
        if not preset:
            return "(form)", "", None
        if preset.startswith("run:") and preset[4:].isdigit():
            rec = panel.runs.get(int(preset[4:]))
            return rec.config_name, rec.config_text, rec.id
        if preset not in panel.config_names():
            raise FieldErrors("preset", [{"field": "preset", "message": (
                f"{preset!r} is neither a run config in {panel.settings.configs_dir} nor "
                f"run:<id>; pick one of {', '.join(panel.config_names()) or '(none)'}")}])
        name, text = panel.config_text(preset)
        return name, text, None

    @app.get("/runs", response_class=HTMLResponse)
    def runs_list(request: Request, ident: Viewer, preset: str | None = None,
                  from_run: int | None = None, pipeline: str = "") -> HTMLResponse:
        """All runs; `?preset=local.yaml` or `?from_run=7` fills the launch form from that."""
        if from_run is not None:
            preset = f"run:{from_run}"
        if pipeline not in PIPELINES:
            pipeline = "data"
            if preset and preset.startswith("run:") and preset[4:].isdigit():
                try:
                    pipeline = panel.runs.get(int(preset[4:])).pipeline
                except RunNotFound:
                    pass  # the page says the preset is unknown
        return runs_page(request, ident, preset=preset, pipeline=pipeline)

    @app.post("/runs", **_role("operator"))
    async def runs_launch(request: Request, ident: Operator) -> Any:
        """Launch from the form: the preset plus the changed fields (or pasted YAML text).

        Validated before anything starts; a refused config shows the form again (422) with
        the submitted values and each error next to its field.
        """
        import yaml

        from geomas.panel import form as launch_form

        submitted = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        pipeline = submitted.get("pipeline", "")
        preset = submitted.get("preset", submitted.get("config", ""))
        pasted = submitted.get("config_text", "")
        # older clients post only `config` (a file name) or `config_text` (YAML text)
        yaml_mode = submitted.get("mode") == "yaml" or (
            "preset" not in submitted and "mode" not in submitted and bool(pasted.strip()))

        def again(errors: list[dict[str, str]], yaml_errors: list[dict[str, str]] | None = None
                  ) -> HTMLResponse:
            return runs_page(request, ident, preset=preset, pipeline=pipeline,
                             submitted=submitted, errors=errors, yaml_errors=yaml_errors,
                             status=422)

        def launch() -> Any:
            if pipeline not in PIPELINES:
                return again([{"field": "pipeline", "message": f"one of {', '.join(PIPELINES)}"}])
            if yaml_mode:
                if not pasted.strip():
                    return again([], [{"field": "config_text",
                                       "message": "paste the YAML text of a run config"}])
                try:
                    rec = panel.launch(pipeline, pasted, ident.user)
                except FieldErrors as exc:
                    return again([], exc.errors)
                return RedirectResponse(f"/runs/{rec.id}", 303)
            try:
                name, text, run_id = launch_preset(preset)
                loaded = yaml.safe_load(text) if text.strip() else {}
            except (FieldErrors, RunNotFound, yaml.YAMLError):
                return again([])  # the page says what is wrong with the preset
            form = launch_form.form_for(RunConfig)
            try:
                new = launch_form.apply_form(form, loaded, submitted)
            except FieldErrors as exc:
                return again(exc.errors)
            if new == loaded:  # unchanged: the preset's own text (comments, same sha256)
                config_name, config_text = name, text
            else:
                config_name = f"run {run_id} (edited)" if run_id else f"{name} (edited)"
                config_text, run_id = yaml.safe_dump(new, sort_keys=False,
                                                     allow_unicode=True), None
            try:
                validate_run_config(pipeline, config_text, f"config {config_name}")
            except FieldErrors as exc:
                return again(exc.errors)
            rec = panel.runs.submit(pipeline, config_name, config_text, ident.user.name,
                                    rerun_of=run_id)
            return RedirectResponse(f"/runs/{rec.id}", 303)

        return await run_in_threadpool(launch)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: int, ident: Viewer) -> HTMLResponse:
        rec = panel.runs.get(run_id)
        data = _run_json(panel, rec, detail=True)
        return page(request, "run.html", ident, r=data, links=data["links"],
                    log=panel.runs.tail(run_id), **_steps(rec),
                    can_run=role_allows(ident.user.role, "operator"))

    @app.get("/models")
    def models_page(ident: Viewer) -> RedirectResponse:
        training = panel.run_config.training
        name = training.registered_model_name if training is not None else "geomas-sft"
        return RedirectResponse(f"/models/{name}", 303)

    @app.get("/models/{name}", response_class=HTMLResponse)
    def model_page(request: Request, name: str, ident: Viewer) -> HTMLResponse:
        versions = project.model_versions(name, panel.settings.mlflow_ui_url)
        samples = []
        for shown in dict.fromkeys(v for v in (versions["challenger"], versions["champion"]) if v):
            try:
                samples.append(project.sample_generations(name, shown))
            except InputError as exc:
                samples.append({"version": shown, "columns": [], "rows": [], "note": str(exc)})
        return page(request, "models.html", ident, m=versions, samples=samples,
                    h=project.history(name),
                    can_approve=role_allows(ident.user.role, "approver"))

    @app.get("/corpus", response_class=HTMLResponse)
    def corpus_page(request: Request, ident: Viewer) -> HTMLResponse:
        return page(request, "corpus.html", ident, c=project.corpus(panel.run_config),
                    suffixes=panel.settings.upload_suffixes,
                    can_run=role_allows(ident.user.role, "operator"))

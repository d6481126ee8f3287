"""Runs outside the web process: a child process per run, one running run per pipeline.

A launch request is validated with the geomas config models first (`validate_run_config`),
then recorded as `queued`; the scheduler starts the oldest queued run of a pipeline whenever no
run of that pipeline is running. Decisions are taken under one lock and written to the
database before anything starts, so two concurrent requests give one running and one queued.
The panel holds a file lock in its data dir: a second panel on the same records refuses to
start instead of starting runs twice.

Each run is `python -m geomas.cli run data|training --config <saved copy> --json` (or
`retrain check`): its own session (a stop signals the whole process group), stdout (the JSON
summary) and stderr (the log) to files in the run's folder. After a restart, records marked
running are adopted when their process (pid + start time) is still alive and watched until it
exits; otherwise they are closed from their JSON summary.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from geomas.config import PanelConfig, RunConfig
from geomas.errors import ConfigError, GeomasError
from geomas.panel.store import FINISHED, PIPELINES, Pipeline, RunRecord, utcnow
from geomas.trigger.ledger import process_alive, process_start

log = logging.getLogger(__name__)

LOCK_FILE = "panel.lock"
#: RunRecord.host of a run that is a Kubernetes Job (its pid means nothing here)
K8S_HOST = "kubernetes"


class RunNotFound(GeomasError):
    """No run record with that id."""


class FieldErrors(GeomasError):
    """A run config failed validation; `errors` holds one entry per bad field."""

    def __init__(self, what: str, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        shown = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"{what} is invalid: {shown}")


def validate_run_config(pipeline: Pipeline, text: str, what: str = "config") -> RunConfig:
    """Parse and validate a run config's YAML text for `pipeline`, before anything starts.

    Raises:
        FieldErrors: the YAML does not parse, a field is invalid, or the pipeline needs a
            section the config lacks (training, retrain-check: `training:`).
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FieldErrors(what, [{"field": "(yaml)", "message": f"not valid YAML: {exc}"}]
                          ) from exc
    if not isinstance(raw, dict):
        raise FieldErrors(what, [{"field": "(root)", "message": "must be a mapping of sections "
                                  "(project:, data:, training:, retrain:)"}])
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise FieldErrors(what, [
            {"field": ".".join(str(p) for p in err["loc"]) or "(root)", "message": err["msg"]}
            for err in exc.errors()]) from exc
    if pipeline in ("training", "retrain-check") and config.training is None:
        raise FieldErrors(what, [{"field": "training", "message": f"the {pipeline} pipeline "
                                  "needs a `training:` section; add one or pick a config that "
                                  "has it"}])
    return config


def command_for(pipeline: Pipeline, config_path: Path, run_id: int) -> list[str]:
    """The geomas command line a run executes (JSON summary on stdout)."""
    base = [sys.executable, "-m", "geomas.cli"]
    if pipeline == "retrain-check":
        return [*base, "retrain", "check", "--config", str(config_path), "--json"]
    return [*base, "run", pipeline, "--config", str(config_path), "--json",
            "--tag", f"geomas.panel_run={run_id}"]


def read_summary(path: Path) -> dict[str, Any] | None:
    """The child's JSON summary, or None when it printed none (yet)."""
    try:
        text = Path(path).read_text("utf-8").strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def summary_succeeded(pipeline: str, summary: dict[str, Any] | None) -> bool:
    """Whether a JSON summary says the run succeeded (used when the exit code is unknown)."""
    if summary is None:
        return False
    if pipeline == "retrain-check":
        return summary.get("outcome") not in (None, "failed")
    return summary.get("status") == "completed"


class RunManager:
    """Starts, queues, watches, stops and recovers runs; the database holds the truth."""

    def __init__(self, settings: PanelConfig, panel_dir: Path, sessions: sessionmaker[Session],
                 workdir: Path | None = None, k8s_api_client: Any = None) -> None:
        self.settings = settings
        #: launcher kubernetes: the API client (None: the pod's own account / kubeconfig)
        self.k8s_api_client = k8s_api_client
        self.panel_dir = Path(panel_dir)
        self.sessions = sessions
        self.workdir = Path(workdir or Path.cwd())
        self._lock = threading.RLock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()
        self._file_lock: Any = None
        self.listeners: list[Callable[[int], None]] = []

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Take the panel lock, recover the records of an earlier panel, start what is queued.

        Raises:
            ConfigError: another panel process holds the lock on these records.
        """
        from filelock import FileLock, Timeout

        self.panel_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.panel_dir / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise ConfigError(f"another geomas panel uses {self.panel_dir} (it holds "
                              f"{self.panel_dir / LOCK_FILE}); stop it, or give this one "
                              "another data_dir") from exc
        self._file_lock = lock
        self.recover()
        self.schedule()

    def close(self) -> None:
        """Stop watching (the runs themselves go on and are adopted by the next panel)."""
        self._stopping.set()
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None

    def recover(self) -> None:
        """Adopt live runs of an earlier panel; close those whose process is gone."""
        with self._lock, self.sessions() as db:
            running = db.scalars(select(RunRecord).where(RunRecord.status == "running")).all()
            for rec in running:
                if rec.host == K8S_HOST:
                    log.info("run %s is a Kubernetes Job; watching it", rec.id)
                    self._watch_job(rec.id)
                    continue
                if rec.pid is not None and process_alive(rec.pid, rec.pid_start) and (
                        rec.host in (None, socket.gethostname())):
                    log.info("run %s (pid %s) is still running; watching it", rec.id, rec.pid)
                    self._watch_adopted(rec.id, rec.pid, rec.pid_start)
                else:
                    self._finish(db, rec, None, "its process was gone when the panel started")
            db.commit()

    # ---- requests --------------------------------------------------------------------------
    def submit(self, pipeline: Pipeline, config_name: str, config_text: str, user: str,
               rerun_of: int | None = None) -> RunRecord:
        """Record a validated run as queued and start it if its pipeline is free."""
        if pipeline not in PIPELINES:
            raise ConfigError(f"pipeline {pipeline!r} is not one of {', '.join(PIPELINES)}")
        with self._lock:
            with self.sessions() as db:
                rec = RunRecord(pipeline=pipeline, user=user, config_name=config_name,
                                config_text=config_text, status="queued",
                                config_sha256=hashlib.sha256(config_text.encode()).hexdigest(),
                                rerun_of=rerun_of)
                db.add(rec)
                db.flush()
                folder = self.panel_dir / "runs" / str(rec.id)
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "config.yaml").write_text(config_text, "utf-8")
                rec.config_path = str(folder / "config.yaml")
                rec.log_path = str(folder / "run.log")
                rec.summary_path = str(folder / "summary.json")
                db.commit()
                run_id = rec.id
            log.info("run %s (%s, config %s) queued by %s", run_id, pipeline, config_name, user)
            self.schedule()
            return self.get(run_id)

    def get(self, run_id: int) -> RunRecord:
        """One record.

        Raises:
            RunNotFound: no record with this id.
        """
        with self.sessions() as db:
            rec = db.get(RunRecord, run_id)
            if rec is None:
                raise RunNotFound(f"run {run_id} does not exist; see GET /api/runs")
            return rec

    def list(self, limit: int = 100) -> list[RunRecord]:
        """The newest records first."""
        with self.sessions() as db:
            return list(db.scalars(select(RunRecord).order_by(RunRecord.id.desc()).limit(limit)))

    def stop(self, run_id: int) -> RunRecord:
        """Stop a run: a queued one is dropped, a running one gets SIGTERM, later SIGKILL."""
        with self._lock, self.sessions() as db:
            rec = db.get(RunRecord, run_id)
            if rec is None:
                raise RunNotFound(f"run {run_id} does not exist; see GET /api/runs")
            if rec.status in FINISHED:
                raise ConfigError(f"run {run_id} already ended ({rec.status}); nothing to stop")
            rec.stop_requested = True
            if rec.status == "queued":
                rec.status, rec.finished_at, rec.note = "stopped", utcnow(), "stopped in queue"
            elif rec.host == K8S_HOST:
                from geomas.panel import k8s

                k8s.delete_job(str(rec.id), namespace=self._job_settings().namespace,
                               api_client=self.k8s_api_client)
                self._finish(db, rec, None, "its Job was deleted")
            elif rec.pid is not None:
                self._signal(rec.pid, signal.SIGTERM)
                threading.Thread(target=self._kill_later, args=(rec.id, rec.pid, rec.pid_start),
                                 daemon=True).start()
            db.commit()
            log.info("run %s: stop requested", run_id)
        self._notify(run_id)
        return self.get(run_id)

    # ---- scheduling ------------------------------------------------------------------------
    def schedule(self) -> None:
        """Start the oldest queued run of each pipeline that has none running."""
        started: list[int] = []
        with self._lock, self.sessions() as db:
            for pipeline in PIPELINES:
                busy = db.scalar(select(RunRecord.id).where(
                    RunRecord.pipeline == pipeline, RunRecord.status == "running").limit(1))
                if busy is not None:
                    continue
                nxt = db.scalars(select(RunRecord).where(
                    RunRecord.pipeline == pipeline, RunRecord.status == "queued",
                ).order_by(RunRecord.id).limit(1)).first()
                if nxt is None:
                    continue
                self._launch(db, nxt)
                started.append(nxt.id)
            db.commit()
        for run_id in started:
            self._notify(run_id)

    def _launch(self, db: Session, rec: RunRecord) -> None:
        """Start one run's process and mark it running (or failed when it cannot start)."""
        pipeline: Pipeline = rec.pipeline  # type: ignore[assignment]
        rec.started_at = utcnow()
        if self.settings.launcher == "kubernetes":
            self._launch_job(db, rec, pipeline)
            return
        cmd = command_for(pipeline, Path(rec.config_path), rec.id)
        env = {**os.environ, "GEOMAS_ACTOR": rec.user, "PYTHONUNBUFFERED": "1"}
        try:
            with open(rec.log_path, "ab") as err, open(rec.summary_path, "wb") as out:
                proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=out, stderr=err,
                                        stdin=subprocess.DEVNULL, env=env,
                                        start_new_session=True)
        except OSError as exc:
            self._finish(db, rec, None, f"could not start: {exc}")
            return
        rec.status, rec.pid, rec.host = "running", proc.pid, socket.gethostname()
        rec.pid_start = process_start(proc.pid)
        self._procs[rec.id] = proc
        log.info("run %s (%s) started as pid %s by %s", rec.id, pipeline, proc.pid, rec.user)
        threading.Thread(target=self._wait_child, args=(rec.id, proc), daemon=True,
                         name=f"panel-run-{rec.id}").start()

    # ---- Kubernetes ------------------------------------------------------------------------
    def _job_settings(self) -> Any:
        """Where run Jobs go: the deployment's GEOMAS_PANEL_JOB_* variables, else the config.

        Raises:
            ConfigError: neither names the image.
        """
        from geomas.panel import k8s

        if os.environ.get(k8s.IMAGE_ENV):
            return k8s.RunJobSettings.from_env(os.environ)
        if not self.settings.k8s_image:
            raise ConfigError(f"launcher kubernetes needs the run image: set {k8s.IMAGE_ENV} "
                              "(the chart and k8s/ do) or k8s_image in the panel config")
        return k8s.RunJobSettings(image=self.settings.k8s_image,
                                  namespace=self.settings.k8s_namespace,
                                  service_account=self.settings.k8s_service_account)

    def _launch_job(self, db: Session, rec: RunRecord, pipeline: Pipeline) -> None:
        """Create the run's Job (and its config ConfigMap) and watch it."""
        from geomas.panel import k8s

        try:
            settings = self._job_settings()
            name = k8s.create_job(k8s.job_manifest(str(rec.id), pipeline, rec.config_text,
                                                   **settings.job_kwargs()),
                                  api_client=self.k8s_api_client)
        except GeomasError as exc:
            self._finish(db, rec, None, f"its Job could not be created: {exc}")
            return
        rec.status, rec.host = "running", K8S_HOST
        rec.note = f"kubernetes job {settings.namespace}/{name}"
        log.info("run %s (%s) started as Job %s/%s by %s", rec.id, pipeline, settings.namespace,
                 name, rec.user)
        self._watch_job(rec.id)

    def _watch_job(self, run_id: int) -> None:
        """Follow a run's Job: copy its pod log to the run's log, close the record at its end."""
        from geomas.panel import k8s

        def poll() -> None:
            namespace = self._job_settings().namespace
            while True:
                try:
                    status = k8s.job_status(str(run_id), namespace=namespace,
                                            api_client=self.k8s_api_client)
                    text = k8s.job_logs(str(run_id), namespace=namespace,
                                        api_client=self.k8s_api_client)
                except GeomasError as exc:
                    log.warning("run %s: the Kubernetes API did not answer (%s); retrying",
                                run_id, exc)
                    if self._stopping.wait(self.settings.poll_seconds):
                        return
                    continue
                self._store_job_log(run_id, text)
                if status.state in ("succeeded", "failed", "missing"):
                    code = 0 if status.state == "succeeded" else (status.exit_code or 1)
                    note = {"missing": "its Job is gone (deleted, or removed by its TTL)",
                            "failed": f"its Job failed ({status.reason or 'no reason given'})"
                            }.get(status.state, "")
                    self._ended(run_id, code, note)
                    return
                if self._stopping.wait(self.settings.poll_seconds):
                    return

        threading.Thread(target=poll, daemon=True, name=f"panel-job-{run_id}").start()

    def _store_job_log(self, run_id: int, text: str) -> None:
        """The pod's log as the run's log; its last JSON line as the run's summary."""
        if not text:
            return
        rec = self.get(run_id)
        Path(rec.log_path).write_text(text, "utf-8")
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    continue
                Path(rec.summary_path).write_text(line, "utf-8")
                return

    # ---- watching --------------------------------------------------------------------------
    def _wait_child(self, run_id: int, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        self._procs.pop(run_id, None)
        self._ended(run_id, code)

    def _watch_adopted(self, run_id: int, pid: int, start: str | None) -> None:
        def poll() -> None:
            while process_alive(pid, start):
                if self._stopping.wait(self.settings.poll_seconds):
                    return
            self._ended(run_id, None)

        threading.Thread(target=poll, daemon=True, name=f"panel-adopted-{run_id}").start()

    def _ended(self, run_id: int, code: int | None, note: str = "") -> None:
        if self._stopping.is_set():
            return  # the panel is going away: the next one closes the record
        with self._lock, self.sessions() as db:
            rec = db.get(RunRecord, run_id)
            if rec is not None and rec.status == "running":
                self._finish(db, rec, code, note)
            db.commit()
        self._notify(run_id)
        self.schedule()

    def _finish(self, db: Session, rec: RunRecord, code: int | None, note: str = "") -> None:
        """Close a record from its exit code, or (unknown code) from its JSON summary."""
        summary = read_summary(Path(rec.summary_path)) if rec.summary_path else None
        if summary is not None:
            rec.zenml_run_id = summary.get("run_id") or rec.zenml_run_id
            rec.zenml_run_name = summary.get("run_name") or summary.get("training_run") or (
                rec.zenml_run_name)
        ok = code == 0 if code is not None else summary_succeeded(rec.pipeline, summary)
        if rec.stop_requested:
            rec.status = "stopped"
        else:
            rec.status = "succeeded" if ok else "failed"
        rec.exit_code = code
        rec.finished_at = utcnow()
        if note:
            rec.note = note if not rec.note else f"{rec.note}; {note}"
        elif code is None:
            rec.note = "exit code unknown (adopted after a panel restart); status from its summary"
        log.info("run %s (%s) %s (exit %s)", rec.id, rec.pipeline, rec.status, code)

    def _kill_later(self, run_id: int, pid: int, start: str | None) -> None:
        deadline = time.monotonic() + self.settings.stop_timeout_seconds
        while time.monotonic() < deadline:
            if not process_alive(pid, start):
                return
            time.sleep(0.2)
        log.warning("run %s did not stop within %.0f s of SIGTERM; killing it", run_id,
                    self.settings.stop_timeout_seconds)
        self._signal(pid, signal.SIGKILL)

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)  # the run's own session: the geomas process and its children
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)

    def _notify(self, run_id: int) -> None:
        for listener in list(self.listeners):
            listener(run_id)

    def tail(self, run_id: int, max_bytes: int = 64_000) -> str:
        """The end of a run's log."""
        rec = self.get(run_id)
        try:
            with open(rec.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - max_bytes))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

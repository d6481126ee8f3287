"""What the panel shows about the project: corpus vs retrain thresholds, models, documents.

Everything here reads through the library: the retrain numbers come from
`geomas.trigger.decide` on the same watermarks `geomas retrain check` compares, the model
versions and moves from `geomas.registry`; promote and rollback go through
`geomas.registry.promotion` (the one gate), never around it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

from geomas.config import PanelConfig, RunConfig
from geomas.errors import GeomasError, InputError

log = logging.getLogger(__name__)


class UploadRefused(GeomasError):
    """An upload was refused (bad name, suffix or size); the message says why and the fix."""


class UploadResult(BaseModel):
    """What an upload did."""

    status: str  # "stored" or "duplicate"
    name: str
    sha256: str
    size_bytes: int
    duplicate_of: str | None = None


def retrain_status(config: RunConfig) -> dict[str, Any]:
    """The corpus against the champion's data watermark and the retrain thresholds.

    The same comparison `geomas retrain check --dry-run` makes (its ledger aside): the corpus
    watermark without documents ingest already rejected, the champion's watermark from the
    registry, and `geomas.trigger.decide`.
    """
    from geomas.registry.promotion import CHAMPION, alias_version
    from geomas.trigger.check import decide
    from geomas.trigger.watermark import (
        Watermark,
        champion_watermark,
        corpus_watermark,
        count_qa_pairs,
        rejected_doc_ids,
    )

    pause = retrain_pause(config)
    schedule = {"cron": config.retrain.cron, "min_new_docs": config.retrain.min_new_docs,
                "min_new_docs_ratio": config.retrain.min_new_docs_ratio,
                "min_new_qa_pairs": config.retrain.min_new_qa_pairs,
                "require": config.retrain.require,
                "paused": bool(pause and pause["paused"])}
    if config.training is None:
        return {"schedule": schedule, "pause": pause, "decision": None,
                "note": "the run config has no training: section; nothing to retrain"}
    try:
        current = corpus_watermark(config.data.source_dir, config.data.ingest.extensions,
                                   qa_pairs=count_qa_pairs(config.data.output_dir),
                                   max_file_bytes=config.data.ingest.max_file_bytes)
    except InputError as exc:
        return {"schedule": schedule, "pause": pause, "decision": None, "note": str(exc)}
    bad = rejected_doc_ids(config.data.output_dir)
    if bad & set(current.doc_ids):
        current = Watermark(doc_ids=tuple(set(current.doc_ids) - bad),
                            qa_pairs=current.qa_pairs)
    name = config.training.registered_model_name
    decision = decide(current, champion_watermark(name), config.retrain,
                      champion_version=alias_version(name, CHAMPION))
    return {"schedule": schedule, "pause": pause, "decision": decision.model_dump(mode="json"),
            "note": ""}


def retrain_pause(config: RunConfig) -> dict[str, Any] | None:
    """The last pause or resume of the project's retrain checks (`geomas.trigger.pause`).

    `paused`, `by`, `at` (UTC), `reason` and `text` (the line a paused check prints); None
    when the checks were never paused.
    """
    import mlflow

    from geomas.trigger.pause import pause_record

    record = pause_record(mlflow.MlflowClient(), config.project.experiment_name)
    if record is None:
        return None
    return {**record.model_dump(mode="json"), "text": record.describe()}


def pause_retrain(config: RunConfig, actor: str, reason: str) -> dict[str, Any]:
    """Pause every retrain check of the project as `actor` (`geomas retrain pause`)."""
    import mlflow

    from geomas.trigger.pause import pause

    state = pause(mlflow.MlflowClient(), config.project.experiment_name, actor, reason)
    log.info("retrain checks paused by %s: %s", actor, state.reason)
    return {**state.model_dump(mode="json"), "text": state.describe()}


def resume_retrain(config: RunConfig, actor: str) -> dict[str, Any]:
    """Lift the pause as `actor` (`geomas retrain resume`); `lifted` is the pause, or None."""
    import mlflow

    from geomas.trigger.pause import resume

    lifted = resume(mlflow.MlflowClient(), config.project.experiment_name, actor)
    if lifted is not None:
        log.info("retrain checks resumed by %s (paused by %s)", actor, lifted.by)
    return {"paused": False, "by": actor,
            "lifted": lifted.model_dump(mode="json") if lifted is not None else None}


def zenml_retrain_schedules() -> dict[str, Any]:
    """ZenML's schedules of the retrain_check pipeline (`geomas retrain schedule`), best effort.

    Only asked when this data dir already has a ZenML config: the overview must not create a
    ZenML store (seconds, and files) to learn that nothing is scheduled in it. The
    `geomas-retrain` CronJob of k8s/ and a system cron are not ZenML schedules and are not
    seen here.
    """
    config_dir = os.environ.get("ZENML_CONFIG_PATH")
    if not config_dir or not (Path(config_dir) / "config.yaml").is_file():
        return {"schedules": [], "note": "no ZenML store in this data dir yet, so no ZenML "
                "schedule (a CronJob or cron calling `geomas retrain check` is not seen here)"}
    try:
        from geomas.stack import zenml_client
        from geomas.trigger.schedule import SCHEDULE_NAME

        found = zenml_client().list_schedules(name=SCHEDULE_NAME, sort_by="desc:created",
                                              size=10).items
    except Exception as exc:  # noqa: BLE001 - best effort: the reason is shown, not hidden
        return {"schedules": [], "note": f"ZenML schedules unavailable: {type(exc).__name__}: "
                f"{exc}"}
    schedules = [{"name": s.name, "cron": s.cron_expression, "active": s.active,
                  "created": s.created.isoformat() if s.created else None} for s in found]
    return {"schedules": schedules, "note": "" if schedules else (
        f"no ZenML schedule {SCHEDULE_NAME!r} (`geomas retrain schedule` registers one; a "
        "CronJob or cron calling `geomas retrain check` is not seen here)")}


def mlflow_url(base: str | None, *, experiment_id: str | None = None,
               run_id: str | None = None, model: str | None = None,
               version: str | None = None) -> str | None:
    """A page of the MLflow UI at `base` (panel config `mlflow_ui_url`); None without a base.

    The UI routes by hash (MLflow 3: `mlflow/server/js/src/model-registry/routes.ts`,
    `experiment-tracking/routes.ts`): a model version, a run, an experiment, else the UI.
    """
    if not base:
        return None
    root = f"{base.rstrip('/')}/#"
    if model is not None and version is not None:
        return f"{root}/models/{quote(model, safe='')}/versions/{quote(str(version), safe='')}"
    if experiment_id is not None and run_id is not None:
        return f"{root}/experiments/{quote(experiment_id, safe='')}/runs/{quote(run_id, safe='')}"
    if experiment_id is not None:
        return f"{root}/experiments/{quote(experiment_id, safe='')}"
    return base


def mlflow_run_link(base: str | None, experiment_name: str, run_name: str | None
                    ) -> str | None:
    """The MLflow UI page of a pipeline run's MLflow run, else of its experiment, else the UI.

    ZenML's MLflow tracker names the MLflow run of a pipeline run after the pipeline run, in
    the run config's experiment (`project.experiment_name`).
    """
    if not base:
        return None
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        client = mlflow.MlflowClient()
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            return mlflow_url(base)
        experiment_id = str(experiment.experiment_id)
        if run_name and "'" not in run_name:  # ZenML's run names never hold a quote
            runs = client.search_runs([experiment_id], f"attributes.run_name = '{run_name}'",
                                      max_results=1, order_by=["attributes.start_time DESC"])
            if runs:
                return mlflow_url(base, experiment_id=experiment_id, run_id=runs[0].info.run_id)
        return mlflow_url(base, experiment_id=experiment_id)
    except MlflowException as exc:  # a link is not worth a failed page: the UI's front page
        log.debug("no MLflow link for run %s: %s", run_name, exc)
        return mlflow_url(base)


def model_versions(name: str, mlflow_ui_url: str | None = None) -> dict[str, Any]:
    """A registered model's versions with their gate records side by side.

    Args:
        name: The registered model.
        mlflow_ui_url: The MLflow UI (panel config): each version gets `links` to its page and
            to its run's page there.

    Raises:
        InputError: no registered model of that name.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from geomas.registry.promotion import (
        CHALLENGER,
        CHAMPION,
        DECISION_TAG,
        METRIC_TAG_PREFIX,
        PREVIOUS_CHAMPION,
        REASON_TAG,
        alias_version,
    )

    client = mlflow.MlflowClient()
    try:
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise InputError(f"registered model {name!r} does not exist; the training "
                             "pipeline registers it (training.registered_model_name)") from exc
        raise
    # search_model_versions leaves the aliases out (the SQL store); the model holds them
    aliases: dict[str, list[str]] = {}
    for alias, alias_version_ in sorted((registered.aliases or {}).items()):
        aliases.setdefault(str(alias_version_), []).append(alias)
    versions: list[dict[str, Any]] = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        tags = dict(mv.tags or {})
        versions.append({
            "version": str(mv.version),
            "aliases": aliases.get(str(mv.version), []),
            "created": mv.creation_timestamp,
            "run_id": mv.run_id,
            "metrics": {k[len(METRIC_TAG_PREFIX):]: _number(v) for k, v in sorted(tags.items())
                        if k.startswith(METRIC_TAG_PREFIX)},
            "gate": {k: v for k, v in sorted(tags.items()) if k.startswith("gate.")},
            # which examples the metrics are from: equal for versions scored on the same set
            "eval": {k: tags[k] for k in ("eval_split", "eval_size", "eval_sha256")
                     if tags.get(k)},
            "decision": tags.get(DECISION_TAG),
            "reason": tags.get(REASON_TAG),
            "links": _version_links(client, mlflow_ui_url, name, str(mv.version), mv.run_id),
        })
    versions.sort(key=lambda v: int(v["version"]) if str(v["version"]).isdigit() else 0,
                  reverse=True)
    return {"name": name, "champion": alias_version(name, CHAMPION, client),
            "challenger": alias_version(name, CHALLENGER, client),
            "previous_champion": alias_version(name, PREVIOUS_CHAMPION, client),
            "versions": versions}


def _version_links(client: Any, base: str | None, name: str, version: str,
                   run_id: str | None) -> dict[str, str]:
    """The MLflow UI pages of a model version and of its run (whose experiment is looked up)."""
    from mlflow.exceptions import MlflowException

    links: dict[str, str] = {}
    page = mlflow_url(base, model=name, version=version)
    if page is None:
        return links
    links["version"] = page
    if run_id:
        try:
            experiment_id = str(client.get_run(run_id).info.experiment_id)
        except MlflowException:  # the run was deleted: the version page still links it
            return links
        links["run"] = mlflow_url(base, experiment_id=experiment_id, run_id=run_id) or ""
    return links


#: The run artifact with prompt, reference and base/tuned/champion answers (geomas.train.flow).
SAMPLES_ARTIFACT = "eval/sample_generations.json"


def sample_generations(name: str, version: str) -> dict[str, Any]:
    """The sample-generations table a version's evaluation logged: columns and rows.

    Read as JSON from the version's run artifacts (nothing is executed).

    Raises:
        InputError: no such version, or its run logged no table (registered outside the
            training pipeline, or before geomas logged them).
    """
    import tempfile

    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise InputError(f"{name} v{version} does not exist") from exc
    if not mv.run_id:
        raise InputError(f"{name} v{version} has no run, so no sample generations")
    with tempfile.TemporaryDirectory(prefix="geomas-samples-") as tmp:
        try:
            local = Path(client.download_artifacts(mv.run_id, SAMPLES_ARTIFACT, tmp))
            table = json.loads(local.read_text("utf-8"))
        except (MlflowException, OSError, ValueError) as exc:
            raise InputError(f"{name} v{version}: its run logged no {SAMPLES_ARTIFACT} "
                             "(registered outside the training pipeline?)") from exc
    if not isinstance(table, dict) or not isinstance(table.get("columns"), list):
        raise InputError(f"{name} v{version}: {SAMPLES_ARTIFACT} is not a table")
    return {"version": str(version), "columns": table["columns"],
            "rows": table.get("data", [])}


def _number(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value


def move(action: str, name: str, *, version: str | None, force: bool, reason: str | None,
         actor: str) -> dict[str, Any]:
    """Promote or roll back through `geomas.registry.promotion` as `actor`.

    ZenML model stages follow when versions carry ZenML links (as `geomas promote` does).
    """
    from geomas.registry import promotion

    if action == "promote":
        assert version is not None
        decision = promotion.promote(name, version, force=force, actor=actor, reason=reason)
    else:
        decision = promotion.rollback(name, force=force, actor=actor, reason=reason)
    if promotion.wanted_zenml_stages(name):
        from geomas.stack import sync_zenml_stages

        sync_zenml_stages(name)
    return decision.model_dump(mode="json")


def history(name: str) -> list[dict[str, Any]]:
    """The champion alias's moves, oldest first (`geomas models history`)."""
    from geomas.registry.audit import history as audit_history

    return [e.model_dump(mode="json") for e in audit_history(name)]


def corpus(config: RunConfig) -> dict[str, Any]:
    """Documents in the corpus folder with their last ingest status and reject reasons."""
    import json

    from geomas.hashing import sha256_file
    from geomas.ingest.run import MANIFEST_FILE

    source = Path(config.data.source_dir)
    manifest = Path(config.data.output_dir) / MANIFEST_FILE
    records: dict[str, dict[str, Any]] = {}
    if manifest.is_file():
        for rec in json.loads(manifest.read_text("utf-8")):
            records[str(rec.get("source", ""))] = rec
    docs = []
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = path.relative_to(source).as_posix()
            rec = records.get(rel) or records.get(path.name) or records.get(str(path)) or {}
            docs.append({"name": rel, "size_bytes": path.stat().st_size,
                         "sha256": sha256_file(path), "status": rec.get("status", "new"),
                         "reason": rec.get("reason"), "chunks": rec.get("n_chunks"),
                         "parser": rec.get("parser")})
    return {"source_dir": str(source), "manifest": str(manifest) if manifest.is_file() else None,
            "documents": docs}


_UNSAFE = re.compile(r"[^\w.\- ()]+", re.UNICODE)


def safe_name(raw: str, suffixes: tuple[str, ...]) -> str:
    """The name an upload is stored under, or UploadRefused.

    A name with a path in it (``../x.pdf``, ``/etc/x.pdf``, a backslash, a drive) is refused,
    not silently flattened: the uploader should know the file was not put where they asked.
    """
    name = unicodedata.normalize("NFC", raw or "").strip()
    if not name:
        raise UploadRefused("the upload has no file name; send the file with its name")
    if (PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute()
            or PureWindowsPath(name).drive or "/" in name or "\\" in name
            or name in (".", "..") or "\x00" in name):
        raise UploadRefused(f"file name {raw!r} holds a path; upload a plain file name "
                            "(documents are stored in the corpus folder only)")
    if name.startswith("."):
        raise UploadRefused(f"file name {raw!r} is hidden (starts with a dot); rename it")
    suffix = Path(name).suffix.lower()
    if suffix not in suffixes:
        raise UploadRefused(f"file {raw!r}: suffix {suffix or '(none)'} is not accepted; "
                            f"upload one of {', '.join(suffixes)}")
    stem = _UNSAFE.sub("_", Path(name).stem).strip(" ._") or "document"
    return f"{stem[:150]}{suffix}"


def store_upload(settings: PanelConfig, config: RunConfig, raw_name: str,
                 chunks: Any) -> UploadResult:
    """Write an uploaded document into the corpus folder, strictly inside it.

    Args:
        settings: The panel settings (size limit, suffixes).
        config: The project run config (`data.source_dir`).
        raw_name: The file name the client sent.
        chunks: An iterable of byte chunks (the upload body).

    Returns:
        stored (new name), or duplicate when the same bytes are already in the corpus.

    Raises:
        UploadRefused: bad name or suffix, too large, or the corpus folder is missing.
    """
    import hashlib

    from geomas.hashing import sha256_file

    name = safe_name(raw_name, tuple(s.lower() for s in settings.upload_suffixes))
    source = Path(config.data.source_dir).resolve()
    if not source.is_dir():
        raise UploadRefused(f"corpus folder {source} (data.source_dir) does not exist; create "
                            "it or fix the run config")
    tmp = source / f".upload-{secrets.token_hex(8)}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "xb") as fh:
            for chunk in chunks:
                size += len(chunk)
                if size > settings.max_upload_bytes:
                    raise UploadRefused(
                        f"file {name!r} is larger than the upload limit of "
                        f"{settings.max_upload_bytes} bytes (panel config max_upload_bytes)")
                digest.update(chunk)
                fh.write(chunk)
        sha = digest.hexdigest()
        for existing in source.rglob("*"):
            if (existing.is_file() and not existing.is_symlink() and existing != tmp
                    and not existing.name.startswith(".upload-")
                    and existing.stat().st_size == size and sha256_file(existing) == sha):
                return UploadResult(status="duplicate", name=name, sha256=sha, size_bytes=size,
                                    duplicate_of=existing.relative_to(source).as_posix())
        target = _free_target(source, name)
        os.link(tmp, target)  # fails rather than overwrite a file that appeared meanwhile
        log.info("upload stored as %s (%d bytes)", target, size)
        return UploadResult(status="stored", name=target.name, sha256=sha, size_bytes=size)
    finally:
        tmp.unlink(missing_ok=True)


def _free_target(source: Path, name: str) -> Path:
    """`source/name`, or `name-1`, `name-2`... when taken; always directly inside `source`."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1000):
        candidate = (source / (name if n == 0 else f"{stem}-{n}{suffix}")).resolve()
        if candidate.parent != source:
            raise UploadRefused(f"file name {name!r} resolves outside the corpus folder")
        if not candidate.exists():
            return candidate
    raise UploadRefused(f"too many files named like {name!r} in {source}; rename the upload")


def zenml_run_tagged(tag: str, since: datetime | None = None) -> str | None:
    """The id of the newest ZenML pipeline run carrying `tag` (KEY=VALUE), or None.

    A panel run passes `--tag geomas.panel_run=<id>` to its pipeline, so its ZenML run (and
    with it the steps) can be found while it is still going, before its summary names it.
    Runs created before `since` are ignored (a record id reused after the panel database was
    reset must not pick up an old run).
    """
    from zenml.client import Client

    runs = Client().list_pipeline_runs(tags=tag, sort_by="desc:created", size=1).items
    if not runs:
        return None
    created = runs[0].created
    if since is not None and created is not None:
        aware = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
        if aware < since.replace(tzinfo=since.tzinfo or UTC) - timedelta(seconds=5):
            return None
    return str(runs[0].id)


def zenml_steps(run_id: str) -> tuple[str, list[dict[str, Any]]]:
    """A pipeline run's name and its steps from ZenML: name, status, start, end, seconds.

    Raises:
        KeyError: ZenML has no run with this id.
    """
    from zenml.client import Client

    run = Client().get_pipeline_run(run_id)
    steps = []
    for name, step in run.steps.items():
        start, end = step.start_time, step.end_time
        steps.append({"name": name, "status": str(step.status.value if hasattr(
            step.status, "value") else step.status),
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
            "seconds": round((end - start).total_seconds(), 1) if start and end else None})
    return str(run.name), steps

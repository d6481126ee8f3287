"""Champion / challenger promotion of registered model versions, with rollback.

Aliases on an MLflow registered model say which version does what:

- `challenger`: the latest registered candidate (set by `log_adapter`);
- `champion`: the version served (`models:/<name>@champion`);
- `previous-champion`: the champion before the last promotion, the target of `rollback`.

Evaluation metrics of a version are read from its `metric.<name>` version tags (written by
`record_metrics` and `promote_if_better`), falling back to the metrics of the run that logged
it. Every decision is written on the version as tags (`promotion_decision`,
`promotion_reason`, `promotion_compared_to`), so the registry UI shows why a version is or is
not the champion.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from geomas.config import PromotionConfig
from geomas.errors import GeomasError
from geomas.evaluate.paired import PairedComparison
from geomas.registry import journal
from geomas.registry.audit import AuditEntry, current_actor, metrics_snapshot

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"

METRIC_TAG_PREFIX = "metric."
DECISION_TAG = "promotion_decision"
REASON_TAG = "promotion_reason"
COMPARED_TO_TAG = "promotion_compared_to"
DECIDED_AT_TAG = "promotion_decided_at"
ROLLED_BACK_TAG = "rolled_back"
ROLLED_BACK_TO_TAG = "rolled_back_to"
#: Version tags that link an MLflow version to the ZenML Model Control Plane version of the
#: pipeline run that registered it (set by the training pipeline's register step).
ZENML_MODEL_TAG = "zenml_model"
ZENML_MODEL_VERSION_TAG = "zenml_model_version"

Decision = Literal["promoted", "rejected", "forced", "rolled_back"]
ZenmlStage = Literal["production", "staging", "archived"]


class PromotionRefused(GeomasError):
    """A promotion or rollback was refused as unsafe; the message says how to force it."""


class PromotionDecision(BaseModel):
    """What `promote_if_better`, `promote` or `rollback` decided, and why."""

    model_name: str
    version: str
    promoted: bool
    decision: Decision
    reason: str
    compared_to: str | None = None
    previous_champion: str | None = None
    metric: str | None = None
    challenger_value: float | None = None
    champion_value: float | None = None
    forgetting: float | None = None
    paired: PairedComparison | None = None


def _client() -> MlflowClient:
    import mlflow

    return mlflow.MlflowClient()


def alias_version(name: str, alias: str, client: MlflowClient | None = None) -> str | None:
    """The version number an alias points to, or None when the alias is not set."""
    from mlflow.exceptions import MlflowException

    client = client or _client()
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def record_metrics(
    name: str, version: str, metrics: Mapping[str, float], client: MlflowClient | None = None
) -> None:
    """Store evaluation metrics on a version as `metric.<name>` tags."""
    client = client or _client()
    for key, value in metrics.items():
        client.set_model_version_tag(name, str(version), f"{METRIC_TAG_PREFIX}{key}", repr(value))


def version_metrics(
    name: str, version: str, client: MlflowClient | None = None
) -> dict[str, float]:
    """A version's metrics: its run's metrics, overridden by its `metric.<name>` tags."""
    client = client or _client()
    mv = client.get_model_version(name, str(version))
    metrics: dict[str, float] = {}
    if mv.run_id:
        metrics.update(client.get_run(mv.run_id).data.metrics)
    for key, value in mv.tags.items():
        if key.startswith(METRIC_TAG_PREFIX):
            try:
                metrics[key[len(METRIC_TAG_PREFIX) :]] = float(value)
            except ValueError:
                log.warning("version %s/%s: tag %s=%r is not a number", name, version, key, value)
    return metrics


def _metric(metrics: Mapping[str, float], key: str) -> float | None:
    value = metrics.get(key)
    if value is None or math.isnan(float(value)):
        return None
    return float(value)


def _safety_problem(
    metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    config: PromotionConfig,
    *,
    margin: float,
) -> tuple[str | None, float | None, float | None, float | None]:
    """(why the move is unsafe or None, candidate value, champion value, forgetting)."""
    value = _metric(metrics, config.metric)
    forgetting = _metric(metrics, config.forgetting_metric) if config.forgetting_metric else None
    champ = _metric(champion_metrics, config.metric) if champion_metrics is not None else None
    problem = None
    if value is None:
        problem = f"no {config.metric!r} metric recorded"
    elif config.forgetting_metric and forgetting is None:
        problem = f"no {config.forgetting_metric!r} metric recorded"
    elif forgetting is not None and forgetting > config.forgetting_limit:
        problem = (f"{config.forgetting_metric} {forgetting:.4g} is over the limit "
                   f"{config.forgetting_limit:.4g}")
    elif champion_metrics is not None and champ is None:
        # A champion without the metric cannot be compared against; people decide (force).
        problem = f"champion has no {config.metric!r} metric"
    elif champ is not None and (
            value - champ if config.higher_is_better else champ - value) < margin:
        direction = "higher" if config.higher_is_better else "lower"
        problem = (f"{config.metric} {value:.4g} vs champion {champ:.4g}: needs to be "
                   f"{direction} by at least {margin:.4g}")
    return problem, value, champ, forgetting


def _tag_paired(client: MlflowClient, name: str, version: str, paired: PairedComparison) -> None:
    """The same-examples comparison as ``gate.*`` version tags."""
    for key, value in paired.model_dump().items():
        client.set_model_version_tag(name, version, f"gate.{key}", str(value))


def _decision_tags(decision: PromotionDecision) -> dict[str, str]:
    return {
        DECISION_TAG: decision.decision,
        REASON_TAG: decision.reason,
        COMPARED_TO_TAG: decision.compared_to or "none",
        DECIDED_AT_TAG: datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _tag_decision(client: MlflowClient, decision: PromotionDecision) -> PromotionDecision:
    for key, value in _decision_tags(decision).items():
        client.set_model_version_tag(decision.model_name, decision.version, key, value)
    log.info("%s version %s: %s (%s)", decision.model_name, decision.version, decision.decision,
             decision.reason)
    return decision


def _move(client: MlflowClient, decision: PromotionDecision, entry: AuditEntry,
          extra_tags: Mapping[str, Mapping[str, str]] | None = None) -> PromotionDecision:
    """Make `decision.version` champion as one registry transaction (`journal`).

    The old champion becomes previous-champion; the version loses challenger (and
    previous-champion) if it held them; the decision tags and the audit entry are part of
    the same intent, so an interrupted move completes on the next call.
    """
    name, version = decision.model_name, decision.version
    old = alias_version(name, CHAMPION, client)
    aliases: dict[str, str] = {}
    if old is not None and old != version:
        aliases[PREVIOUS_CHAMPION] = old
    aliases[CHAMPION] = version
    drop = [a for a in (CHALLENGER, PREVIOUS_CHAMPION)
            if a not in aliases and alias_version(name, a, client) == version]
    tags = {v: dict(t) for v, t in (extra_tags or {}).items()}
    tags.setdefault(version, {}).update(_decision_tags(decision))
    journal.run(client, journal.Intent(
        op=entry.action, model=name, version_tags=tags, set_aliases=aliases,
        delete_aliases=drop, audit=entry))
    log.info("%s version %s: %s (%s)", name, version, decision.decision, decision.reason)
    return decision


def check_consistent(name: str, client: MlflowClient | None = None) -> None:
    """Refuse to move aliases that contradict the audit trail.

    Raises:
        journal.RegistryInconsistent: champion equals previous-champion, or champion is not
            the version the last audited move put there (set outside geomas).
    """
    from geomas.registry.audit import history

    client = client or _client()
    champion = alias_version(name, CHAMPION, client)
    previous = alias_version(name, PREVIOUS_CHAMPION, client)
    if champion is not None and champion == previous:
        raise journal.RegistryInconsistent(
            f"{name}: champion and previous-champion both point to v{champion}; run "
            f"`geomas models repair {name}` to restore the audited aliases")
    moves = history(name, client)
    if moves and champion != moves[-1].to_version:
        raise journal.RegistryInconsistent(
            f"{name}: champion is v{champion} but the last audited move put "
            f"v{moves[-1].to_version} there (moved outside geomas); check it with `geomas "
            f"models verify {name}` and restore with `geomas models repair {name}`")


def promote_if_better(
    name: str,
    challenger_version: str,
    challenger_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None = None,
    config: PromotionConfig | None = None,
    paired: PairedComparison | None = None,
) -> PromotionDecision:
    """Promote a challenger to champion when it is better and does not forget too much.

    With `paired` (challenger and champion scored on the same examples in this run) the
    champion comparison is that: the mean gain must reach `config.margin` and its bootstrap
    interval must lie above zero; the champion's recorded metric is not used. Its figures are
    written as ``gate.*`` version tags.

    Promotes when there is no champion yet, or when the challenger beats the champion on
    `config.metric` by at least `config.margin` and its `config.forgetting_metric` is at most
    `config.forgetting_limit`. On promotion the old champion becomes `previous-champion` and the
    challenger loses its `challenger` alias. The challenger's metrics are stored as version tags
    and the decision is tagged on it either way.

    Args:
        name: Registered model name.
        challenger_version: Version to consider.
        challenger_metrics: Its evaluation metrics.
        champion_metrics: The champion's metrics; None reads them from the champion version.
        config: Metric, direction, margin and forgetting limit.
        paired: Challenger vs champion on the same examples (`compare_paired`); replaces
            the comparison with the champion's recorded metric.

    Returns:
        The decision (also written as version tags).
    """
    config = config or PromotionConfig()
    client = _client()
    version = str(challenger_version)
    journal.repair_pending(name, client)
    record_metrics(name, version, challenger_metrics, client)
    champion = alias_version(name, CHAMPION, client)
    if champion == version:
        return _tag_decision(client, PromotionDecision(
            model_name=name, version=version, promoted=False, decision="rejected",
            reason="already the champion", compared_to=champion))
    if champion is not None and champion_metrics is None:
        champion_metrics = version_metrics(name, champion, client)
    problem, value, champ, forgetting = _safety_problem(
        challenger_metrics,
        champion_metrics if champion is not None and paired is None else None,
        config,
        margin=config.margin,
    )
    if paired is not None:
        _tag_paired(client, name, version, paired)
        if champion is not None:
            champ = paired.champion
            if problem is None and not paired.beats(config.margin):
                problem = paired.explain(config.margin)
    decision = PromotionDecision(
        model_name=name,
        version=version,
        promoted=False,
        decision="rejected",
        reason=problem or "",
        compared_to=champion,
        metric=config.metric,
        challenger_value=value,
        champion_value=champ,
        forgetting=forgetting,
        paired=paired,
    )
    if problem is not None:
        return _tag_decision(client, decision)
    reason = (
        "no champion yet"
        if champion is None
        else paired.explain(config.margin) if paired is not None
        else f"{config.metric} {value:.4g} beats champion {champ:.4g} by >= {config.margin:.4g}"
    )
    return _move(client, decision.model_copy(update={
        "promoted": True, "decision": "promoted", "reason": reason,
        "previous_champion": champion}), AuditEntry(
        model=name, action="gate", from_version=champion, to_version=version,
        actor=current_actor(), reason=reason, metrics=metrics_snapshot(challenger_metrics)))


def promote(
    name: str, version: str, force: bool = False, config: PromotionConfig | None = None,
    *, actor: str | None = None, reason: str | None = None,
) -> PromotionDecision:
    """Make a version champion by hand, refusing an unsafe move unless `force`.

    A forced call needs a `reason`; the move is appended to the audit trail with the actor
    (`actor` or the OS user), the reason and the version's metrics.

    Unsafe: the version has no recorded `config.metric` (or forgetting metric), its metric is
    worse than the champion's, its forgetting is over the limit, or it was rolled back before.
    Metrics are read with `version_metrics`.

    Raises:
        PromotionRefused: The move is unsafe and `force` is False, or `force` without a reason.
    """
    config = config or PromotionConfig()
    if force and not (reason or "").strip():
        raise PromotionRefused(f"a forced promotion of {name} version {version} needs a reason "
                               "(CLI: --reason TEXT); it goes to the audit trail")
    client = _client()
    version = str(version)
    journal.repair_pending(name, client)
    mv = client.get_model_version(name, version)  # raises for an unknown version
    champion = alias_version(name, CHAMPION, client)
    if champion == version:
        raise PromotionRefused(f"{name} version {version} is already the champion")
    champion_metrics = version_metrics(name, champion, client) if champion else None
    problem, value, champ, forgetting = _safety_problem(
        version_metrics(name, version, client), champion_metrics, config, margin=0.0
    )
    if problem is None and mv.tags.get(ROLLED_BACK_TAG) == "true":
        problem = "it was rolled back before"
    if problem is not None and not force:
        raise PromotionRefused(
            f"refusing to promote {name} version {version}: {problem}; pass force=True "
            "(CLI: --force) to promote anyway"
        )
    said = f"promoted by hand despite: {problem}" if problem else "promoted by hand"
    if reason:
        said = f"{said}; reason: {reason}"
    return _move(
        client,
        PromotionDecision(
            model_name=name,
            version=version,
            promoted=True,
            decision="forced" if problem else "promoted",
            reason=said,
            compared_to=champion,
            previous_champion=champion,
            metric=config.metric,
            challenger_value=value,
            champion_value=champ,
            forgetting=forgetting,
        ),
        AuditEntry(model=name, action="promote", from_version=champion, to_version=version,
                   actor=current_actor(actor), reason=said, forced=problem is not None,
                   metrics=metrics_snapshot(version_metrics(name, version, client))),
    )


def rollback(name: str, force: bool = False, *, actor: str | None = None,
             reason: str | None = None) -> PromotionDecision:
    """Make `previous-champion` the champion again; tag the current champion `rolled_back`.

    Args:
        name: Registered model name.
        force: Roll back even when the previous champion was itself rolled back before
            (needs a `reason`).
        actor: Who moves it (default: the OS user), for the audit trail.
        reason: Why; required with `force`.

    Returns:
        The decision for the restored version.

    Raises:
        PromotionRefused: There is no previous champion, or (without `force`) it was rolled
            back before.
    """
    if force and not (reason or "").strip():
        raise PromotionRefused(f"a forced rollback of {name} needs a reason (CLI: --reason "
                               "TEXT); it goes to the audit trail")
    client = _client()
    journal.repair_pending(name, client)
    check_consistent(name, client)
    previous = alias_version(name, PREVIOUS_CHAMPION, client)
    if previous is None:
        raise PromotionRefused(
            f"{name} has no {PREVIOUS_CHAMPION!r} version to roll back to; promote a version "
            "by hand instead"
        )
    was_rolled_back = client.get_model_version(name, previous).tags.get(ROLLED_BACK_TAG) == "true"
    if not force and was_rolled_back:
        raise PromotionRefused(
            f"{name} version {previous} was rolled back before; pass force=True to restore it"
        )
    current = alias_version(name, CHAMPION, client)
    said = f"restored by rollback from version {current}" + (f"; reason: {reason}"
                                                             if reason else "")
    decision = PromotionDecision(
        model_name=name, version=previous, promoted=True, decision="promoted",
        reason=said, compared_to=current, previous_champion=current)
    tags: dict[str, dict[str, str]] = {}
    if current is not None:
        tags[current] = {ROLLED_BACK_TAG: "true", ROLLED_BACK_TO_TAG: previous,
                         DECISION_TAG: "rolled_back",
                         REASON_TAG: f"rolled back to version {previous}"}
    tags.setdefault(previous, {}).update(_decision_tags(decision))
    journal.run(client, journal.Intent(
        op="rollback", model=name, version_tags=tags, set_aliases={CHAMPION: previous},
        delete_aliases=[PREVIOUS_CHAMPION],
        audit=AuditEntry(model=name, action="rollback", from_version=current,
                         to_version=previous, actor=current_actor(actor), reason=said,
                         forced=was_rolled_back,
                         metrics=metrics_snapshot(version_metrics(name, previous, client)))))
    log.info("%s version %s: promoted (%s)", name, previous, said)
    return decision


def zenml_stage_for_alias(alias: str) -> ZenmlStage:
    """The ZenML Model Control Plane stage that mirrors an MLflow alias."""
    return {CHAMPION: "production", CHALLENGER: "staging"}.get(alias, "archived")  # type: ignore[return-value]


def wanted_zenml_stages(name: str, client: MlflowClient | None = None) -> dict[str, ZenmlStage]:
    """The ZenML Model Control Plane stage each pipeline-registered version of `name` should have.

    Every version tagged with `zenml_model_version` maps to `production` (champion), `staging`
    (challenger) or `archived` (anything else); versions registered outside a pipeline (no tag)
    are left out. `geomas.stack.sync_zenml_stages` applies the result.

    Returns:
        ZenML model version id -> the stage it should have.
    """
    client = client or _client()
    wanted: dict[str, ZenmlStage] = {}
    for mv in client.search_model_versions(f"name='{name}'"):
        zenml_version = mv.tags.get(ZENML_MODEL_VERSION_TAG)
        if zenml_version:
            aliases = client.get_model_version(name, str(mv.version)).aliases
            alias = next((a for a in (CHAMPION, CHALLENGER) if a in aliases), "")
            wanted[zenml_version] = zenml_stage_for_alias(alias)
    return wanted

"""`geomas models verify` / `repair`: is the champion what geomas put there, and put it back.

MLflow lets anyone with write access set an alias; the gate runs in geomas, not in the
registry server. So the registry is checked from the outside: the champion must be the version
of the last audited move (`geomas.registry.audit`), registered by geomas with intact files
(`geomas.registry.trust`), with a promotion decision on it, and no transaction may be left
half-done (`geomas.registry.journal`). `repair` completes an interrupted transaction and puts
the aliases back where the audit trail says they were, as an audited move of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geomas.registry import journal
from geomas.registry.audit import AuditEntry, current_actor, history

if TYPE_CHECKING:
    from mlflow import MlflowClient


def _client(client: MlflowClient | None) -> MlflowClient:
    import mlflow

    return client or mlflow.MlflowClient()


def audited_aliases(moves: list[AuditEntry]) -> tuple[str | None, str | None]:
    """(champion, previous-champion) as the audit trail's moves leave them, replayed in order.

    gate and promote: the old champion becomes previous-champion; rollback: no previous
    champion; repair: champion restored, previous-champion as it was.
    """
    champion: str | None = None
    previous: str | None = None
    for move in moves:
        if move.action in ("gate", "promote"):
            if champion is not None and champion != move.to_version:
                previous = champion
            champion = move.to_version
        elif move.action == "rollback":
            champion, previous = move.to_version, None
        else:
            champion = move.to_version
        if previous == champion:
            previous = None
    return champion, previous


def verify(name: str, client: MlflowClient | None = None) -> list[str]:
    """Problems with `name`'s champion, one line each (empty: all is well)."""
    from mlflow.exceptions import MlflowException

    from geomas.registry.promotion import CHAMPION, DECISION_TAG, PREVIOUS_CHAMPION, alias_version
    from geomas.registry.trust import UntrustedModel, download_verified

    client = _client(client)
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return [f"no registered model {name!r} in this registry (a typo, or the wrong "
                    "--tracking-uri?)"]
        raise
    problems = []
    intent = journal.pending(name, client)
    if intent is not None:
        problems.append(f"an interrupted {intent.op} from {intent.started} is pending; run "
                        f"`geomas models repair {name}`")
    champion = alias_version(name, CHAMPION, client)
    previous = alias_version(name, PREVIOUS_CHAMPION, client)
    moves = history(name, client)
    if champion is None:
        if moves:
            problems.append(f"no champion, but the audit trail's last move put v"
                            f"{moves[-1].to_version} there; run `geomas models repair {name}`")
        return problems
    if champion == previous:
        problems.append(f"champion and previous-champion both point to v{champion}")
    if not moves:
        problems.append(f"champion v{champion} was set outside geomas: no audited move")
    elif moves[-1].to_version != champion:
        problems.append(f"champion is v{champion}, but the last audited move ({moves[-1].action}"
                        f" by {moves[-1].actor} at {moves[-1].at}) put v{moves[-1].to_version}"
                        " there: it was moved outside geomas, past the gate")
    decision = client.get_model_version(name, champion).tags.get(DECISION_TAG)
    if decision not in ("promoted", "forced"):
        problems.append(f"champion v{champion} has promotion decision {decision!r}, not "
                        "promoted or forced")
    try:
        download_verified(f"models:/{name}/{champion}", client)
    except UntrustedModel as exc:
        problems.append(str(exc))
    return problems


def repair(name: str, client: MlflowClient | None = None, *,
           actor: str | None = None) -> list[str]:
    """Complete an interrupted transaction, then restore the audited aliases; what was done."""
    from geomas.registry.promotion import CHAMPION, PREVIOUS_CHAMPION, alias_version

    client = _client(client)
    done = []
    note = journal.repair_pending(name, client)
    if note:
        done.append(note)
    moves = history(name, client)
    if not moves:
        return done
    want, want_previous = audited_aliases(moves)
    assert want is not None  # every move names the version it moved to
    champion = alias_version(name, CHAMPION, client)
    previous = alias_version(name, PREVIOUS_CHAMPION, client)
    if champion == want and previous == want_previous:
        return done
    aliases = {CHAMPION: want}
    if want_previous is not None:
        aliases[PREVIOUS_CHAMPION] = want_previous
    said = (f"restored the audited aliases (champion v{want}, previous-champion "
            f"{'v' + want_previous if want_previous else 'none'}); found champion "
            f"{'v' + champion if champion else 'none'}, previous-champion "
            f"{'v' + previous if previous else 'none'}")
    journal.run(client, journal.Intent(
        op="repair", model=name, set_aliases=aliases,
        delete_aliases=[] if want_previous is not None else [PREVIOUS_CHAMPION],
        audit=AuditEntry(model=name, action="repair", from_version=champion,
                         to_version=want, actor=current_actor(actor), reason=said,
                         forced=True)))
    done.append(f"{name}: {said}")
    return done

"""The registry on both backends: the embedded SQLite store, and an MLflow server on a real
PostgreSQL with artifacts on a real S3-compatible server (`registry_server` in conftest.py).

Faults: each operation (register + tags + alias, promote, rollback) is first run cleanly to
count its MLflow writes and record the state it ends in; then, for every N, on a fresh
registered model, the N-th write raises. Afterwards the registry is exactly as before, or
`repair` (what the next geomas call does first) brings it to the completed state; a rollback
after a half-done promotion restores the previous champion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from geomas.config import PromotionConfig

WRITES = ("set_registered_model_alias", "delete_registered_model_alias",
          "set_model_version_tag", "set_registered_model_tag", "delete_registered_model_tag",
          "create_run", "log_metric", "set_terminated", "create_model_version",
          "create_registered_model")
CONFIG = PromotionConfig(metric="score", margin=0.01, forgetting_metric=None)


class InjectedFault(RuntimeError):
    pass


@contextmanager
def faults(fail_at: int | None = None) -> Iterator[list[str]]:
    """Count MlflowClient writes; raise InjectedFault at the `fail_at`-th (1-based)."""
    from mlflow import MlflowClient

    calls: list[str] = []
    originals = {name: getattr(MlflowClient, name) for name in WRITES}

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            if fail_at is not None and len(calls) == fail_at:
                raise InjectedFault(f"injected fault at write {fail_at} ({name})")
            return method(self, *args, **kwargs)
        return call

    for name, method in originals.items():
        setattr(MlflowClient, name, wrap(name, method))
    try:
        yield calls
    finally:
        for name, method in originals.items():
            setattr(MlflowClient, name, method)


pytestmark = pytest.mark.integration


class Backend:
    """Where the registry lives: its URI, how the CLI reaches it, a folder for sources."""

    def __init__(self, uri: str, root: Path, cli: list[str], env: dict[str, str],
                 source: str) -> None:
        self.uri, self.root, self.cli, self.env = uri, root, cli, env
        self.source = source  # what a bare model version may point at

    def use(self) -> None:
        """Point MLflow here; runs go to an experiment whose artifacts stay in the backend."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        client = mlflow.MlflowClient()
        exp = client.get_experiment_by_name("registry-tests")
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(
            "registry-tests", artifact_location=(self.root / "artifacts").as_uri()
            if self.uri.startswith("sqlite") else None)
        mlflow.set_experiment(experiment_id=exp_id)


@pytest.fixture(scope="module", params=["sqlite", "postgres+s3"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    from geomas.tracking import mlflow_paths

    root = tmp_path_factory.mktemp("registry")
    if request.param == "sqlite":
        uri, _ = mlflow_paths(root)
        backend = Backend(uri, root, ["--data-dir", str(root)], {}, str(root))
    else:
        server = request.getfixturevalue("registry_server")
        backend = Backend(server["uri"], root, [], {"MLFLOW_TRACKING_URI": server["uri"],
                                                    **server["s3"]},
                          f"s3://{server['bucket']}/sources")
    backend.use()
    return backend


#: every-fault sweeps repeat a flow once per MLflow write; on PostgreSQL + S3 (about 70 s of the
#: fast suite) they run with the slow checks (`make test-slow`, which .ci/run also runs)
SLOW_ON_SERVER = pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres+s3", marks=pytest.mark.slow)], indirect=True)


@pytest.fixture(autouse=True)
def _use_backend(store: Backend) -> None:
    store.use()


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny LM base and a LoRA adapter on it with non-zero weights (saved, with tokenizer)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from geomas.models import make_tiny

    base = make_tiny("lm", tmp_path_factory.mktemp("tiny_lm") / "base")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for pname, param in model.named_parameters():
            if "lora_B" in pname:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(out))
    return {"base": base, "dir": out}


def test_register_promote_rollback_load(store: Backend, adapter: dict[str, Path],
                                        tmp_path: Path) -> None:
    """The whole flow on the backend: two adapters registered (files to the artifact store),
    v1 through the gate, v2 promoted by hand, rolled back; the champion loads through
    geomas's verifying loader and answers; a pickled pyfunc pointed to as champion is
    refused and its payload never runs."""
    import os

    import mlflow

    from geomas.registry.adapters import load_registered_adapter, log_adapter
    from geomas.registry.audit import history
    from geomas.registry.health import verify
    from geomas.registry.promotion import promote, promote_if_better, rollback
    from geomas.registry.trust import UntrustedModel

    name = next(NAMES)
    versions = []
    for run_name in ("first", "second"):
        with mlflow.start_run(run_name=run_name):
            versions.append(log_adapter(adapter["dir"], base_model_path=adapter["base"],
                                        load_in_4bit=False, compute_dtype="float32",
                                        registered_model_name=name).version)
    assert promote_if_better(name, versions[0], {"score": 0.5}, config=CONFIG).promoted
    promote(name, versions[1], force=True, reason="flow test", actor="ops")
    restored = rollback(name, reason="flow test")
    assert restored.version == versions[0]
    assert [(m.action, m.to_version) for m in history(name)] == [
        ("gate", versions[0]), ("promote", versions[1]), ("rollback", versions[0])]
    assert verify(name) == []
    champion = load_registered_adapter(f"models:/{name}@champion")
    answers = champion.predict(None, ["Что такое керн?"], params={"max_new_tokens": 3})
    assert len(answers) == 1 and isinstance(answers[0], str)

    marker = tmp_path / "payload-ran"

    class Payload(mlflow.pyfunc.PythonModel):
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

        def predict(self, context: Any, model_input: list[str]) -> list[str]:
            return model_input

    client = mlflow.MlflowClient()
    with mlflow.start_run(run_name="attacker"):
        info = mlflow.pyfunc.log_model(name="evil", python_model=Payload(),
                                       pip_requirements=["geomas"])
    evil = str(mlflow.register_model(info.model_uri, name).version)
    for key, value in client.get_model_version(name, versions[0]).tags.items():
        client.set_model_version_tag(name, evil, key, value)
    client.set_registered_model_alias(name, "champion", evil)
    with pytest.raises(UntrustedModel, match=f"{name} v{evil}"):
        load_registered_adapter(f"models:/{name}@champion")
    assert any("moved outside geomas" in p for p in verify(name))
    assert not marker.exists()


def _state(name: str) -> dict[str, Any]:
    """Aliases, decision tags, pending intent and audited moves of a registered model."""
    import mlflow

    from geomas.registry.audit import history
    from geomas.registry.journal import pending

    client = mlflow.MlflowClient()
    versions = client.search_model_versions(f"name='{name}'")
    return {
        "aliases": {a: str(v) for a, v in
                    sorted(client.get_registered_model(name).aliases.items())},
        "decisions": {str(mv.version): (mv.tags.get("promotion_decision"),
                                        mv.tags.get("rolled_back"))
                      for mv in versions},
        "pending": pending(name, client) is not None,
        "moves": [(m.action, m.from_version, m.to_version) for m in history(name, client)],
    }


def _setup(name: str, store: Backend) -> None:
    """v1 (champion, through the gate), v2 (better), v3."""
    import mlflow

    from geomas.registry.promotion import promote_if_better, record_metrics

    client = mlflow.MlflowClient()
    client.create_registered_model(name)
    for score in (0.5, 0.6, 0.55):
        version = str(client.create_model_version(name, source=store.source).version)
        record_metrics(name, version, {"score": score}, client)
    promote_if_better(name, "1", {"score": 0.5}, config=CONFIG)


def _counter() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"m{n}"


NAMES = _counter()


def _check_every_fault(store: Backend, prepare: Callable[[str], None],
                       operation: Callable[[str], object]) -> tuple[int, dict[str, Any]]:
    """Run `operation` cleanly, then with each write failing; return (writes, final state)."""
    from geomas.registry.health import repair

    clean = next(NAMES)
    prepare(clean)
    with faults() as calls:
        operation(clean)
    done = _state(clean)
    assert not done["pending"]
    for n in range(1, len(calls) + 1):
        name = next(NAMES)
        prepare(name)
        before = _state(name)
        with faults(fail_at=n), pytest.raises(InjectedFault):
            operation(name)
        after = _state(name)
        if after != before:
            repair(name)
            assert _state(name) == done, (n, calls[n - 1], after)
    return len(calls), done


@SLOW_ON_SERVER
def test_every_fault_in_a_promotion_ends_in_the_old_or_the_new_state(store: Backend) -> None:
    from geomas.registry.promotion import promote

    writes, done = _check_every_fault(
        store, lambda name: _setup(name, store),
        lambda name: promote(name, "2", config=CONFIG, actor="alice", reason="test"))
    assert writes >= 6
    assert done["aliases"] == {"champion": "2", "previous-champion": "1"}
    assert done["moves"] == [("gate", None, "1"), ("promote", "1", "2")]


@SLOW_ON_SERVER
def test_every_fault_in_a_rollback_ends_in_the_old_or_the_new_state(store: Backend) -> None:
    from geomas.registry.promotion import promote, rollback

    def prepare(name: str) -> None:
        _setup(name, store)
        promote(name, "2", config=CONFIG)

    writes, done = _check_every_fault(store, prepare, lambda name: rollback(name))
    assert writes >= 5
    assert done["aliases"] == {"champion": "1"}
    assert done["decisions"]["2"] == ("rolled_back", "true")
    assert done["moves"][-1] == ("rollback", "2", "1")


def test_rollback_after_a_half_promotion_restores_the_previous_champion(store: Backend) -> None:
    """The promotion fails after champion moved; the next call (rollback) first completes
    it, then rolls it back: v1 is champion again, and the trail says so."""
    from geomas.registry.promotion import promote, rollback

    name = next(NAMES)
    _setup(name, store)
    with faults() as calls:
        probe = next(NAMES)
        _setup(probe, store)
        calls.clear()
        promote(probe, "2", config=CONFIG)
    champion_set = calls.index("set_registered_model_alias") + 2  # after champion's write
    with faults(fail_at=champion_set), pytest.raises(InjectedFault):
        promote(name, "2", config=CONFIG)
    half = _state(name)
    assert half["pending"] and half["aliases"].get("champion") in ("1", "2")
    rollback(name)
    final = _state(name)
    assert final["aliases"]["champion"] == "1" and not final["pending"]
    assert final["moves"][-2:] == [("promote", "1", "2"), ("rollback", "2", "1")]


@SLOW_ON_SERVER
def test_every_fault_in_a_registration_ends_tagged_and_aliased_or_absent(
    store: Backend, tmp_path: Path
) -> None:
    import mlflow

    from geomas.registry.adapters import register_version
    from geomas.registry.mlflow_models import SERVING_CODE

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "weights.json").write_text("{}", encoding="utf-8")
    with mlflow.start_run():
        uri = mlflow.pyfunc.log_model(name="model", python_model=str(
            SERVING_CODE / "adapter_model.py"), artifacts={"adapter_dir": str(model_dir)},
            pip_requirements=["geomas"]).model_uri

        def register(name: str) -> object:
            return register_version(mlflow.MlflowClient(), name, uri,
                                    {"geomas.registered_by": "geomas", "train_size": "3"},
                                    alias="challenger")

        def prepare(name: str) -> None:
            mlflow.MlflowClient().create_registered_model(name)

        def state(name: str) -> dict[str, Any]:
            client = mlflow.MlflowClient()
            versions = client.search_model_versions(f"name='{name}'")
            return {"aliases": {a: str(v) for a, v in
                                client.get_registered_model(name).aliases.items()},
                    "tags": sorted((str(v.version), v.tags.get("train_size"))
                                   for v in versions)}

        from geomas.registry.health import repair

        clean = next(NAMES)
        prepare(clean)
        with faults() as calls:
            register(clean)
        assert state(clean) == {"aliases": {"challenger": "1"}, "tags": [("1", "3")]}
        for n in range(1, len(calls) + 1):
            name = next(NAMES)
            prepare(name)
            with faults(fail_at=n), pytest.raises(InjectedFault):
                register(name)
            repair(name)
            # no version left untagged and unaliased: either none, or the complete one
            assert state(name) in ({"aliases": {}, "tags": []},
                                   {"aliases": {"challenger": "1"}, "tags": [("1", "3")]}), n


def test_a_champion_set_outside_geomas_is_reported_and_repaired(store: Backend) -> None:
    """`champion` pointed at an ungated version directly in the registry: `geomas models
    verify` reports it (exit 1, one line each), rollback refuses to build on it, and `geomas
    models repair` puts back the audited champion as an audited move."""
    import os
    import subprocess
    import sys

    import mlflow

    from geomas.registry.health import repair, verify
    from geomas.registry.journal import RegistryInconsistent
    from geomas.registry.promotion import promote, rollback

    name = next(NAMES)
    _setup(name, store)
    promote(name, "2", config=CONFIG)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "3")
    problems = verify(name)
    assert any("champion is v3, but the last audited move (promote" in p for p in problems)
    assert any("decision None" in p for p in problems)  # v3 never went through the gate
    proc = subprocess.run([sys.executable, "-m", "geomas.cli", "models", "verify", name,
                           *store.cli], capture_output=True, text=True,
                          env={**os.environ, **store.env}, timeout=300)
    assert proc.returncode == 1 and "moved outside geomas" in proc.stderr, proc.stderr
    with pytest.raises(RegistryInconsistent, match="geomas models repair"):
        rollback(name)
    done = repair(name, actor="ops")
    assert len(done) == 1 and "found champion v3" in done[0]
    state = _state(name)
    assert state["aliases"] == {"champion": "2", "previous-champion": "1"}
    assert state["moves"][-1] == ("repair", "3", "2")
    assert not any("outside geomas" in p for p in verify(name))
    assert repair(name) == []  # nothing left to do
    assert "no registered model 'geomas-typo'" in verify("geomas-typo")[0]

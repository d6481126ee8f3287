"""ZenML stacks: the embedded default (ZenML + MLflow on SQLite, no servers) and imported ones.

Everything lives under the project data dir: ZenML's global config and SQLite store
(`<data>/zenml`), its local artifact store, and the MLflow tracking/registry database
(`<data>/mlflow/mlflow.db`) with run artifacts in `<data>/mlflow/artifacts`, unless MLflow is
resolved elsewhere (`geomas.tracking.resolve_tracking`: flag, environment, run config): then
the embedded stack's experiment tracker points there and nothing is written under
`<data>/mlflow`.

Other stacks (the Kubernetes one, zenml_stack.yaml) are imported with `import_stack()` into the
ZenML store the data dir is connected to, and selected by name with `activate_stack()`.

ZenML reads its config location from the environment the first time it is imported, so
`activate_project()` must run before anything imports zenml in this process.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from geomas.errors import ConfigError, MissingExtraError, StackError
from geomas.names import LOCAL_STACK_NAME, REGISTRY_NAME, TRACKER_NAME
from geomas.tracking import (
    TrackingTarget,
    mask_uri,
    mlflow_paths,
    require_reachable,
    resolve_tracking,
    use_tracking,
)
from geomas.trigger.ledger import IN_PROGRESS, LaunchRun

log = logging.getLogger(__name__)


class StackInfo(BaseModel):
    """Where the embedded stack keeps its state."""

    data_dir: str
    zenml_config_dir: str
    stack_name: str
    tracking_uri: str
    mlflow_artifacts: str
    created: list[str]
    orchestrator_flavor: str = "local"


def offline_environment(data_dir: Path) -> dict[str, str]:
    """Environment that keeps ZenML, MLflow, GX and HF local, offline and analytics-free.

    The MLflow URIs are not here: `activate_project` resolves them (`resolve_tracking`).
    """
    data_dir = Path(data_dir).resolve()
    return {
        "ZENML_CONFIG_PATH": str(data_dir / "zenml"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_ENABLE_RICH_TRACEBACK": "false",
        "ZENML_LOGGING_VERBOSITY": os.environ.get("ZENML_LOGGING_VERBOSITY", "WARN"),
        # Steps and pipelines are importable modules next to the geomas package; without this
        # ZenML guesses the source root from the main script (the console-script folder).
        "ZENML_CUSTOM_SOURCE_ROOT": str(Path(__file__).resolve().parent.parent),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "DO_NOT_TRACK": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def activate_project(
    data_dir: Path,
    *,
    tracking_uri: str | None = None,
    config_tracking_uri: str | None = None,
    config_registry_uri: str | None = None,
) -> Path:
    """Point this process at the project data dir and its MLflow (environment only).

    Creates the data dir; the MLflow URIs are resolved (`geomas.tracking.resolve_tracking`:
    flag > environment > run config > embedded store) and written to the environment, where
    every later call, ZenML's tracker and child processes find them. Nothing contacts MLflow.

    Args:
        data_dir: The project data dir.
        tracking_uri: The command's `--tracking-uri`.
        config_tracking_uri: `project.tracking_uri` of the run config.
        config_registry_uri: `project.registry_uri` of the run config.

    Raises:
        StackError: zenml was already imported with a different config dir.
    """
    data_dir = Path(data_dir).resolve()
    env = offline_environment(data_dir)
    current = os.environ.get("ZENML_CONFIG_PATH")
    if "zenml" in sys.modules and current and current != env["ZENML_CONFIG_PATH"]:
        raise StackError(
            f"ZenML in this process already uses {current}; cannot switch to {data_dir}. "
            "Run one geomas project per process."
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    use_tracking(resolve_tracking(data_dir, flag=tracking_uri, config_tracking=config_tracking_uri,
                                  config_registry=config_registry_uri))
    return data_dir


#: The ZenML secret (in the data dir's own store) that gives the embedded stack's tracker the
#: credential ZenML insists on for a tracking server.
LOCAL_TRACKER_SECRET = "geomas_local_mlflow"
#: The token given to a tracking server that needs none: ZenML's MLflow tracker refuses an
#: http(s) URI without a credential, and a server without authentication ignores it.
NO_CREDENTIAL = "none"


def zenml_client() -> Any:
    """ZenML's client for the activated project, with analytics off in its global config.

    ZenML writes `analytics_opt_in: true` into a new global config; ZENML_ANALYTICS_OPT_IN
    only overrides it for processes that set the variable, so the file itself is set to false
    (a plain `zenml` command on this config dir then sends nothing either).
    """
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    zenml_logs_to_stderr()
    client = Client()
    config = GlobalConfiguration()
    if config.model_dump().get("analytics_opt_in", True):
        config.analytics_opt_in = False  # persisted by ZenML's __setattr__
    return client


def _tracker_config(client: Any, target: TrackingTarget) -> dict[str, str]:
    """The embedded stack's tracker configuration for the resolved tracking URI.

    ZenML's MLflow tracker accepts a tracking server only with exactly one credential: the
    environment's (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and _PASSWORD) or, for a
    server without authentication, a placeholder token; kept as a secret of this data dir's
    ZenML store, never in the component's configuration.
    """
    config = {"tracking_uri": target.tracking.uri}
    if not target.tracking.remote:
        return config
    token = os.environ.get("MLFLOW_TRACKING_TOKEN", "")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    values = ({"username": user, "password": password} if user and password and not token
              else {"token": token or NO_CREDENTIAL})
    try:
        secret = client.get_secret_by_name_and_private_status(LOCAL_TRACKER_SECRET)
    except KeyError:
        client.create_secret(LOCAL_TRACKER_SECRET, values)
    else:
        if dict(secret.secret_values) != values:
            client.update_secret(secret.id, add_or_update_values=values,
                                 remove_values=sorted(set(secret.secret_values) - set(values)))
    if "token" in values:
        config["tracking_token"] = f"{{{{{LOCAL_TRACKER_SECRET}.token}}}}"
    else:
        config["tracking_username"] = f"{{{{{LOCAL_TRACKER_SECRET}.username}}}}"
        config["tracking_password"] = f"{{{{{LOCAL_TRACKER_SECRET}.password}}}}"
    return config


def ensure_local_stack(data_dir: Path) -> StackInfo:
    """Create (once) and activate the embedded stack; safe to call any number of times.

    Registers an MLflow experiment tracker and model registry on the resolved tracking URI
    (by default `sqlite:///<data>/mlflow/mlflow.db`) next to ZenML's default local orchestrator
    and artifact store, as stack `geomas-local`, and activates it. Touches nothing outside
    `data_dir`, and nothing under `<data>/mlflow` when MLflow is elsewhere.

    Raises:
        TrackingUnreachable: the resolved tracking server does not answer (checked before
            anything is created).
        StackError: the tracker name belongs to an imported stack in this ZenML store.
    """
    data_dir = Path(data_dir).resolve()
    target = resolve_tracking(data_dir, recall_stack=False)
    require_reachable(target)
    activate_project(data_dir)
    use_tracking(target)
    _, artifacts = mlflow_paths(data_dir)
    if target.embedded:
        artifacts.mkdir(parents=True, exist_ok=True)
    from zenml.enums import StackComponentType

    client = zenml_client()
    created: list[str] = []

    def ensure_component(name: str, ctype: StackComponentType, config: dict[str, str]) -> None:
        existing = client.list_stack_components(name=name, type=ctype)
        if existing.total == 0:
            client.create_stack_component(
                name=name, flavor="mlflow", component_type=ctype, configuration=config
            )
            created.append(f"{ctype.value}:{name}")
        elif config and dict(existing.items[0].configuration) != config:
            users = {s.name for s in client.list_stacks(component_id=existing.items[0].id,
                                                        size=100).items}
            if users - {LOCAL_STACK_NAME}:
                # one store, one component per name: re-pointing it would break the stack
                # (zenml_stack.yaml) that logs to this tracking server
                current_uri = mask_uri(str(existing.items[0].configuration.get("tracking_uri")
                                           or ""))
                raise StackError(
                    f"the ZenML store of {data_dir} has experiment tracker {name!r} at "
                    f"{current_uri} (stack {', '.join(sorted(users - {LOCAL_STACK_NAME}))}); "
                    "the embedded stack needs its own of that name. Use another --data-dir for "
                    "the embedded stack, or import the Kubernetes stack into the ZenML server "
                    "instead of the local store"
                )
            client.update_stack_component(
                name_id_or_prefix=name, component_type=ctype, configuration=config
            )

    ensure_component(
        TRACKER_NAME, StackComponentType.EXPERIMENT_TRACKER, _tracker_config(client, target)
    )
    ensure_component(REGISTRY_NAME, StackComponentType.MODEL_REGISTRY, {})
    stacks = client.list_stacks(name=LOCAL_STACK_NAME)
    if stacks.total == 0:
        default = client.get_stack("default").components
        components = {
            ctype: default[ctype][0].name
            for ctype in (StackComponentType.ORCHESTRATOR, StackComponentType.ARTIFACT_STORE)
        }
        components[StackComponentType.EXPERIMENT_TRACKER] = TRACKER_NAME
        components[StackComponentType.MODEL_REGISTRY] = REGISTRY_NAME
        client.create_stack(name=LOCAL_STACK_NAME, components=components)
        created.append(f"stack:{LOCAL_STACK_NAME}")
    if client.active_stack_model.name != LOCAL_STACK_NAME:
        client.activate_stack(LOCAL_STACK_NAME)
    return StackInfo(
        data_dir=str(data_dir),
        zenml_config_dir=os.environ["ZENML_CONFIG_PATH"],
        stack_name=LOCAL_STACK_NAME,
        tracking_uri=target.tracking.uri,
        mlflow_artifacts=str(artifacts) if target.embedded else "",
        created=created,
    )


# --------------------------------------------------------------------------- imported stacks

#: pip packages behind the ZenML integrations of zenml_stack.yaml; ZenML's own integration
#: requirements are stale pins (kubernetes<26), so the geomas extra is named instead.
_INTEGRATION_PACKAGES = {
    "kubernetes": "pip install 'geomas[k8s]' (kubernetes)",
    "kaniko": "pip install 'geomas[k8s]' (kubernetes)",
    "s3": "pip install 'geomas[k8s]' (s3fs)",
    "mlflow": "pip install mlflow",
}


class StackComponentSpec(BaseModel):
    """One component of a stack file (the format `zenml stack export` writes)."""

    name: str = Field(min_length=1)
    flavor: str = Field(min_length=1)
    type: str | None = None
    configuration: dict[str, Any] = Field(default_factory=dict)


class StackFile(BaseModel):
    """A stack file: `stack_name`, `zenml_version` and `components` by component type."""

    stack_name: str = Field(min_length=1)
    zenml_version: str | None = None
    components: dict[str, list[StackComponentSpec]] = Field(min_length=1)

    @field_validator("components", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        # older exports hold one mapping per component type instead of a list
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, dict) else v for k, v in value.items()}
        return value


class ImportedStack(BaseModel):
    """What `import_stack` did."""

    stack_name: str
    created: list[str]
    reused: list[str]
    store_url: str
    store_is_local: bool
    active: bool
    already_imported: bool = False


class ComponentInfo(BaseModel):
    """A stack component as `geomas stack show` prints it (secret values masked)."""

    type: str
    name: str
    flavor: str
    configuration: dict[str, Any]


class ActiveStack(BaseModel):
    """The active stack of a data dir's ZenML store, and where this project's MLflow is."""

    name: str
    store_url: str
    components: list[ComponentInfo]
    mlflow: dict[str, str] = Field(
        default_factory=dict,
        description="tracking_uri, tracking_source, registry_uri, registry_source (masked).")


def read_stack_file(path: Path) -> StackFile:
    """Read and check the shape of a stack file (no ZenML needed).

    Raises:
        ConfigError: the file is missing, not YAML, or not a stack file.
    """
    from geomas.config import load_yaml

    raw = load_yaml(Path(path))
    try:
        return StackFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"{path} is not a ZenML stack file (stack_name, components: {{type: [{{name, "
            f"flavor, configuration}}]}}):\n{exc}"
        ) from exc


def import_stack(
    path: Path, data_dir: Path, name: str | None = None, activate: bool = False
) -> ImportedStack:
    """Register the stack of a stack file (zenml_stack.yaml) in the data dir's ZenML store.

    Does what `zenml stack import` does, without prompts: every component is validated against
    its flavor before anything is created; components that already exist with the same
    configuration are reused; secrets must be ZenML secret references (`{{name.key}}`).
    Importing the same file twice changes nothing.

    Args:
        path: The stack file.
        data_dir: Project data dir (its ZenML store, or the server it is logged in to).
        name: Stack name; default the file's `stack_name`.
        activate: Make it the active stack.

    Raises:
        ConfigError: the file is invalid (shape, component type, flavor config, literal secret).
        MissingExtraError: a flavor's integration package is missing.
        StackError: a stack or component of that name exists with a different configuration.
    """
    spec = read_stack_file(path)
    activate_project(data_dir)
    import zenml
    from zenml.enums import StackComponentType

    stack_name = name or spec.stack_name
    if spec.zenml_version and spec.zenml_version != zenml.__version__:
        log.warning("%s was written for ZenML %s; ZenML %s is installed", path,
                    spec.zenml_version, zenml.__version__)
    client = zenml_client()
    _check_secrets(client, spec, path)
    valid_types = [t.value for t in StackComponentType]
    planned: list[tuple[Any, StackComponentSpec, dict[str, Any]]] = []
    for type_name, components in spec.components.items():
        if type_name not in valid_types:
            raise ConfigError(
                f"{path}: unknown component type {type_name!r}; valid: {', '.join(valid_types)}"
            )
        ctype = StackComponentType(type_name)
        if len(components) != 1:
            raise ConfigError(f"{path}: give exactly one {type_name}, got {len(components)}")
        for comp in components:
            planned.append((ctype, comp, _validated_config(client, ctype, comp, path)))
    missing = {StackComponentType.ORCHESTRATOR, StackComponentType.ARTIFACT_STORE} - {
        c for c, _, _ in planned}
    if missing:
        raise ConfigError(
            f"{path}: a stack needs {' and '.join(sorted(m.value for m in missing))}"
        )

    existing = {}
    for ctype, comp, config in planned:
        found = client.list_stack_components(name=comp.name, type=ctype)
        if found.total:
            current = dict(found.items[0].configuration)
            if found.items[0].flavor_name != comp.flavor or current != config:
                raise StackError(
                    f"{ctype.value} {comp.name!r} already exists in this ZenML store with "
                    f"another configuration ({found.items[0].flavor_name}: {current}). One "
                    "store holds one component per name; import into another store (the ZenML "
                    "server, or another --data-dir) or rename the component in the file"
                )
            existing[ctype] = found.items[0].id
    stacks = client.list_stacks(name=stack_name)
    already_imported = bool(stacks.total)
    if already_imported:
        current_ids = {ctype: [c.id for c in comps]
                       for ctype, comps in stacks.items[0].components.items()}
        if len(existing) != len(planned) or current_ids != {c: [i] for c, i in existing.items()}:
            raise StackError(
                f"stack {stack_name!r} already exists with other components; import under "
                "another name (--name) or delete it first (`zenml stack delete`)"
            )
    created: list[str] = []
    reused: list[str] = []
    ids: dict[Any, list[Any]] = {}
    for ctype, comp, config in planned:
        if ctype in existing:
            ids[ctype] = [existing[ctype]]
            reused.append(f"{ctype.value}:{comp.name}")
            continue
        model = client.create_stack_component(
            name=comp.name, flavor=comp.flavor, component_type=ctype, configuration=config
        )
        ids[ctype] = [model.id]
        created.append(f"{ctype.value}:{comp.name}")
    if not already_imported:
        client.create_stack(name=stack_name, components=ids)
        created.append(f"stack:{stack_name}")
    if activate:
        client.activate_stack(stack_name)
    store = client.zen_store
    return ImportedStack(stack_name=stack_name, created=created, reused=reused,
                         store_url=store.url, store_is_local=store.is_local_store(),
                         active=activate, already_imported=already_imported)


def _check_secrets(client: Any, spec: StackFile, path: Path) -> None:
    """Every `{{secret.key}}` of the file must exist: ZenML resolves them while validating."""
    from zenml.utils import secret_utils

    wanted: dict[str, set[str]] = {}
    for components in spec.components.values():
        for comp in components:
            for value in comp.configuration.values():
                if secret_utils.is_secret_reference(value):
                    ref = secret_utils.parse_secret_reference(value)
                    wanted.setdefault(ref.name, set()).add(ref.key)
    missing: dict[str, set[str]] = {}
    for name, keys in sorted(wanted.items()):
        try:
            have = set(client.get_secret_by_name_and_private_status(name).secret_values)
        except KeyError:
            have = set()
        if keys - have:
            missing[name] = keys - have
    if missing:
        config_path = os.environ.get("ZENML_CONFIG_PATH", "")
        commands = "; ".join(
            f"ZENML_CONFIG_PATH={config_path} zenml secret create {name} "
            + " ".join(f"--{k}=..." for k in sorted(keys))
            for name, keys in missing.items()
        )
        raise StackError(
            f"{path} references ZenML secrets that this store lacks: "
            + ", ".join(f"{n} ({', '.join(sorted(k))})" for n, k in missing.items())
            + f"; create them first: {commands}"
        )


def _validated_config(
    client: Any, ctype: Any, comp: StackComponentSpec, path: Path
) -> dict[str, Any]:
    """The component's configuration as ZenML stores it, after its flavor's validation."""
    from zenml.stack.flavor import Flavor
    from zenml.utils import secret_utils

    what = f"{path}: {ctype.value} {comp.name!r} (flavor {comp.flavor!r})"
    try:
        flavor_model = client.get_flavor_by_name_and_type(
            name=comp.flavor, component_type=ctype
        )
    except KeyError:
        known = sorted({f.name for f in client.list_flavors(type=ctype, size=1000).items})
        raise ConfigError(
            f"{what}: unknown flavor; flavors for {ctype.value}: {', '.join(known)}"
        ) from None
    try:
        flavor = Flavor.from_model(flavor_model)
    except ImportError as exc:
        integration = flavor_model.integration or comp.flavor
        hint = _INTEGRATION_PACKAGES.get(integration, f"pip install the {integration} package")
        raise MissingExtraError(f"{what} cannot be loaded ({exc}); install it: {hint}") from exc
    config_class = flavor.config_class
    unknown = sorted(set(comp.configuration) - set(config_class.model_fields))
    if unknown:
        raise ConfigError(
            f"{what}: unknown configuration keys {unknown}; valid: "
            f"{', '.join(sorted(config_class.model_fields))}"
        )
    for key, value in comp.configuration.items():
        field = config_class.model_fields[key]
        if (secret_utils.is_secret_field(field) and value is not None
                and not secret_utils.is_secret_reference(value)):
            raise ConfigError(
                f"{what}: {key} holds a literal secret; reference a ZenML secret instead, e.g. "
                f"'{{{{{comp.name.replace('-', '_')}.{key}}}}}' (`zenml secret create`)"
            )
    try:
        config = config_class(**comp.configuration)
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"{what}: invalid configuration:\n{exc}") from exc
    return dict(config.model_dump(mode="json", exclude_unset=True))


def zenml_logs_to_stderr() -> None:
    """Send ZenML's console log handler to stderr (it writes to the original stdout).

    stdout carries results only (`--json` summaries); ZenML's messages are logs. The original
    stderr, like ZenML's original stdout: a replaced `sys.stderr` (typer's CliRunner) is closed
    after the command, and the handler outlives it.
    """
    from zenml.logger import ZenMLConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, ZenMLConsoleHandler):
            handler.setStream(sys.__stderr__)


def activate_stack(name: str, data_dir: Path) -> StackInfo:
    """Activate a stack by name: the embedded one is created on demand, others must exist.

    Raises:
        StackError: the stack is not registered, or lacks the experiment tracker the steps
            log to (TRACKER_NAME).
    """
    if name == LOCAL_STACK_NAME:
        return ensure_local_stack(data_dir)
    data_dir = activate_project(data_dir)
    from zenml.enums import StackComponentType

    client = zenml_client()
    stacks = client.list_stacks(name=name)
    if stacks.total == 0:
        raise StackError(
            f"stack {name!r} is not registered in the ZenML store of {data_dir} "
            f"({client.zen_store.url}); import it first: `geomas stack import zenml_stack.yaml "
            f"--data-dir {data_dir}` (into the ZenML server the pods can reach: log in to it "
            "with this data dir first)"
        )
    stack = stacks.items[0]
    trackers = stack.components.get(StackComponentType.EXPERIMENT_TRACKER, [])
    tracker = next((t for t in trackers if t.name == TRACKER_NAME), None)
    if tracker is None:
        raise StackError(
            f"stack {name!r} has no experiment tracker named {TRACKER_NAME!r}; the pipeline "
            "steps log to it by that name (see zenml_stack.yaml)"
        )
    # The steps log where the stack's tracker points; this process (registry reads, the
    # retrain ledger) uses the same server unless the flag, the environment or the run config
    # name another address of it (a laptop reaches the cluster's server through an ingress).
    # Credentials come from MLFLOW_TRACKING_USERNAME/PASSWORD in the environment.
    stack_uri = str(tracker.configuration.get("tracking_uri") or "") or None
    target = use_tracking(resolve_tracking(data_dir, stack=stack_uri))
    require_reachable(target)
    if client.active_stack_model.id != stack.id:
        client.activate_stack(stack.id)
    orchestrator = stack.components[StackComponentType.ORCHESTRATOR][0]
    return StackInfo(
        data_dir=str(data_dir),
        zenml_config_dir=os.environ["ZENML_CONFIG_PATH"],
        stack_name=name,
        tracking_uri=target.tracking.uri,
        mlflow_artifacts="",
        created=[],
        orchestrator_flavor=orchestrator.flavor_name,
    )


def use_local_stack(data_dir: Path) -> tuple[StackInfo, str | None]:
    """Back to the embedded stack: leave a ZenML server if logged in to one, activate it.

    Returns:
        The embedded stack, and the server URL that was left (None when none was).
    """
    activate_project(data_dir)
    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import StoreType

    left = None
    config = GlobalConfiguration()
    if config.store_configuration.type != StoreType.SQL:
        # connected to a ZenML server (remote, or a local daemon): what `zenml logout` does,
        # back to the SQLite store under the data dir
        left = config.store_configuration.url
        config.set_default_store()
    return ensure_local_stack(data_dir), left


def active_stack(data_dir: Path) -> ActiveStack:
    """The active stack of the data dir's ZenML store, secret values and credentials masked.

    With the MLflow URIs this project resolves (`geomas.tracking.resolve_tracking`; an
    imported stack's tracker counts below flag, environment and run config).
    """
    data_dir = activate_project(data_dir)
    from zenml.enums import StackComponentType
    from zenml.stack.flavor import Flavor
    from zenml.utils import secret_utils

    client = zenml_client()
    model = client.active_stack_model
    components = []
    stack_uri = None
    for ctype, comps in model.components.items():
        for comp in comps:
            config = dict(comp.configuration)
            try:
                fields = Flavor.from_model(comp.flavor).config_class.model_fields
            except ImportError:
                fields = {}
            for key, value in config.items():
                if (key in fields and secret_utils.is_secret_field(fields[key])
                        and value is not None and not secret_utils.is_secret_reference(value)):
                    config[key] = "****"
                elif isinstance(value, str) and "://" in value:
                    config[key] = mask_uri(value)
            if (ctype == StackComponentType.EXPERIMENT_TRACKER and comp.name == TRACKER_NAME
                    and model.name != LOCAL_STACK_NAME):
                stack_uri = str(comp.configuration.get("tracking_uri") or "") or None
            components.append(ComponentInfo(type=ctype.value, name=comp.name,
                                            flavor=comp.flavor_name, configuration=config))
    target = resolve_tracking(data_dir, stack=stack_uri, recall_stack=stack_uri is not None)
    return ActiveStack(name=model.name, store_url=client.zen_store.url, components=components,
                       mlflow=target.describe())


def sync_zenml_stages(name: str) -> dict[str, str]:
    """Make the ZenML Model Control Plane stages follow the MLflow aliases of `name`.

    Archived stages are set first so that moving `production` never archives the version that
    should keep it.

    Returns:
        ZenML model version id -> the stage it now has.
    """
    from zenml.enums import ModelStages

    from geomas.registry.promotion import wanted_zenml_stages

    wanted = wanted_zenml_stages(name)
    if not wanted:
        return dict(wanted)
    zenml = zenml_client()
    order = {"archived": 0, "staging": 1, "production": 2}
    for zenml_version, stage in sorted(wanted.items(), key=lambda kv: order[kv[1]]):
        try:
            current = zenml.get_model_version(model_version_name_or_number_or_id=zenml_version)
        except KeyError:
            log.warning("ZenML model version %s (of %s) no longer exists", zenml_version, name)
            continue
        if current.stage != stage:
            zenml.update_model_version(model_name_or_id=current.model.id,
                                       version_name_or_id=current.id, stage=ModelStages(stage),
                                       force=True)
            log.info("ZenML model %s version %s -> %s", current.model.name, current.name, stage)
    return dict(wanted)


class ZenMLLaunchRuns:
    """The ZenML runs of a retrain launch (`geomas.trigger.ledger.LaunchRuns`).

    A launch tags its pipeline runs `geomas.retrain.launch=<ledger run id>` (geomas.runner).
    """

    def runs(self, launch_id: str) -> list[LaunchRun]:
        """The pipeline runs tagged with the launch, with status and orchestrator."""
        from zenml.enums import StackComponentType

        from geomas.trigger.ledger import LAUNCH_TAG

        client = zenml_client()
        found = []
        for run in client.list_pipeline_runs(tags=f"{LAUNCH_TAG}={launch_id}", size=100,
                                             hydrate=True).items:
            orchestrator = (run.stack.components.get(StackComponentType.ORCHESTRATOR)
                            if run.stack is not None else None)
            flavor = orchestrator[0].flavor_name if orchestrator else "local"
            found.append(LaunchRun(run_id=str(run.id), name=run.name,
                                   pipeline=run.pipeline.name if run.pipeline else "",
                                   status=str(run.status.value), local=flavor == "local"))
        return found

    def fail(self, runs: list[LaunchRun], reason: str) -> list[str]:
        """Mark unfinished runs and their unfinished steps failed (the process died)."""
        from zenml.orchestrators.publish_utils import (
            publish_failed_pipeline_run,
            publish_failed_step_run,
        )

        client = zenml_client()
        closed = []
        for item in runs:
            run = client.get_pipeline_run(item.run_id)
            for step in run.steps.values():
                if str(step.status.value) in IN_PROGRESS:
                    publish_failed_step_run(step.id)
            publish_failed_pipeline_run(run.id)
            log.info("ZenML run %s marked failed: %s", run.name, reason)
            closed.append(f"zenml:{run.name}")
        return closed

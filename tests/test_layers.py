"""The package's layers: the protocol imports neither gevent nor Locust; the rest of the
public API is still where the docs show it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "locust_smtp"


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_protocol_imports_neither_gevent_nor_locust() -> None:
    proc = python(
        "import sys, locust_smtp.protocol, locust_smtp\n"
        "print(sorted(m for m in ('gevent', 'locust') if m in sys.modules))"
    )
    assert (proc.returncode, proc.stdout) == (0, "[]\n"), proc.stderr


def test_the_users_and_the_client_come_when_asked_for() -> None:
    proc = python(
        "import sys\n"
        "from locust_smtp import SmtpUser, LmtpUser, SmtpClient, MailResult, Reply, stages\n"
        "from locust_smtp.plugin.options import USER_ATTRIBUTES\n"
        "print(SmtpUser.__module__, SmtpClient.__module__, 'locust' in sys.modules)"
    )
    assert proc.stdout == "locust_smtp.plugin.users locust_smtp.client True\n", proc.stderr
    proc = python("import locust_smtp; locust_smtp.NoSuchThing")
    assert "module 'locust_smtp' has no attribute 'NoSuchThing'" in proc.stderr


def test_the_client_and_the_sink_do_not_import_locust() -> None:
    proc = python(
        "import sys, locust_smtp.client, locust_smtp.transport, locust_smtp.sink\n"
        "print('locust' in sys.modules, 'gevent' in sys.modules)"
    )
    assert (proc.returncode, proc.stdout) == (0, "False True\n"), proc.stderr


#: each layer, and the layers it may import (docs/architecture.md)
LAYERS = {
    "protocol": {"protocol"},
    "client": {"protocol", "transport", "tls", "client"},
    "transport": {"protocol", "transport"},
    "tls": {"protocol", "transport", "tls"},
    "plugin": {"protocol", "transport", "tls", "client", "plugin", "workload", "histogram"},
    "sink": {"protocol", "transport", "tls", "sink", "histogram"},
    "histogram": {"histogram"},
    "source": {"protocol", "transport", "tls", "client", "plugin", "source", "workload"},
    "workload": {"workload"},
}


def layer_of(path: Path) -> str:
    part = path.relative_to(PACKAGE).parts[0]
    return part.removesuffix(".py")


def imported_layers(path: Path) -> set[str]:
    """The top-level parts of locust_smtp that ``path`` imports, however it spells it."""
    found = set()
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 for a top-level module
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > depth + 1:
                    continue
                parts = [*path.relative_to(PACKAGE).parts[: depth - node.level + 1]]
                parts += (node.module or "").split(".") if node.module else []
                if not parts:  # from . import x, at the top: x is the layer
                    parts = [alias.name for alias in node.names]
                found.add(parts[0])
            elif node.module and node.module.startswith("locust_smtp."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("locust_smtp."):
                    found.add(alias.name.split(".")[1])
    return found


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(PACKAGE.rglob("*.py")) if layer_of(p) in LAYERS],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_each_layer_imports_only_those_below_it(path: Path) -> None:
    allowed = LAYERS[layer_of(path)]
    assert imported_layers(path) <= allowed

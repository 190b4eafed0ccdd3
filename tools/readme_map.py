"""README's map of the code ("How it is built"), made from the tree itself: every module
with the first line of its docstring, so the map cannot leave one out.

``python -m tools.readme_map`` prints it; ``--write`` puts it into README.md between
the ``map:start`` and ``map:end`` markers (tests/unit/tools/test_readme_map.py fails
when the README's copy is stale).
"""

from __future__ import annotations

import argparse
import ast
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- map:start -->", "<!-- map:end -->"
WIDTH = 100
NAME = 26  # the column where descriptions start


def summary(path: Path) -> str:
    """The first sentence of a module's docstring (a package's: of its __init__.py)."""
    target = path / "__init__.py" if path.is_dir() else path
    doc = ast.get_docstring(ast.parse(target.read_text())) if target.exists() else None
    if not doc:
        return ""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


def entry(name: str, text: str, indent: str = "") -> str:
    label = f"{indent + name:<{NAME - 1}} "
    if not text:
        return label.rstrip()
    return textwrap.fill(
        text, WIDTH, initial_indent=label, subsequent_indent=" " * NAME, break_on_hyphens=False
    )


def modules(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.glob("*.py") if p.name != "__init__.py" and not p.name.startswith("_")
    ) + sorted(p for p in folder.glob("__main__.py"))


def package(folder: Path, title: str) -> list[str]:
    lines = [entry(f"{folder.relative_to(ROOT)}/", title)]
    for m in modules(folder):
        lines.append(entry(m.name, summary(m), "  "))
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        names = " ".join(m.stem for m in modules(sub))
        lines.append(entry(f"{sub.name}/", summary(sub) or names, "  "))
        if summary(sub):
            lines.append(entry("", names, "  "))
    return lines


def build() -> str:
    lines = package(ROOT / "shared", "the project's own package, used by every service")
    for svc in sorted(p for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists()):
        lines += package(svc, f"the {svc.name} service")
    lines += package(ROOT / "tools", "developer tools: demo, page receiver, request factories")
    lines += package(ROOT / "bench", "benchmarks (make bench), each beside its baseline")
    lines.append(entry("tests/", "unit/ integration/ e2e/ faults/, and support/ they all use"))
    lines.append(entry("deploy/", "supervisord, Kafka (Maven pom), PostgreSQL, Grafana"))
    lines.append(entry("docs/", "domain.md architecture.md scale-out.md asyncapi.yaml ..."))
    return "```\n" + "\n".join(lines) + "\n```"


def replace(text: str, block: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def current(text: str) -> str:
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.readme_map")
    parser.add_argument("--write", action="store_true", help="rewrite README.md's map")
    args = parser.parse_args(argv)
    block = build()
    if args.write:
        README.write_text(replace(README.read_text(), block))
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())

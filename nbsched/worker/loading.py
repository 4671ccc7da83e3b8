"""Reading service source without running it: which Service subclasses it defines, their names, their isolation.

The runner never executes user code in its own process; it reads the source with ``ast``
and leaves the running to worker processes. A service's name is its class attribute
``name = "..."`` or, without one, the class name in kebab case (``SyncData`` -> ``sync-data``),
prefixed with the file's stem when it came from a file (``services/report.py`` -> ``report.sync-data``).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import PurePath

from ..errors import DeployError
from .notebook import is_notebook_origin, parse_notebook


@dataclass(frozen=True)
class SourceUnit:
    """One deployable piece of source: a file, a notebook cell or a string."""

    source: str
    origin: str  # a file path, "<cell>" or "<string>"

    @property
    def version(self) -> str:
        return source_version(self.source)


@dataclass
class Parsed:
    """What a source unit defines: service name -> class name, and warnings for the user."""

    services: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def source_version(source: str) -> str:
    """The version hash of a source text (12 hex digits of its SHA-256)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def parse_unit(unit: SourceUnit) -> Parsed:
    """What a deploy unit defines: a notebook file (``.ipynb``) is one service named after its stem."""
    if is_notebook_origin(unit.origin):
        return Parsed(services=parse_notebook(unit.source, unit.origin))
    return parse_services(unit)


def parse_services(unit: SourceUnit) -> Parsed:
    """Find the Service subclasses in ``unit``; refuse source that has none or does not compile."""
    try:
        tree = ast.parse(unit.source, filename=unit.origin)
    except SyntaxError as exc:
        where = f"{unit.origin}, line {exc.lineno}" if exc.lineno else unit.origin
        raise DeployError(f"Cannot deploy {where}: {exc.msg}. Fix the syntax and deploy again.") from None
    services: dict[str, str] = {}
    service_classes = {"Service"}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or not any(_base_name(b) in service_classes for b in node.bases):
            continue
        service_classes.add(node.name)
        if _defines_handle(node):
            name = _declared_name(node, unit) or default_service_name(node.name, unit.origin)
            if name in services:
                raise DeployError(
                    f"Cannot deploy {unit.origin}: two classes ({services[name]}, {node.name}) use the service "
                    f"name {name!r}; give each its own name."
                )
            services[name] = node.name
    if not services:
        raise DeployError(
            f"Cannot deploy {unit.origin}: it defines no Service subclass with a handle() method. "
            "A service looks like: class Hello(Service):\n    name = 'api.hello'\n    def handle(self): ..."
        )
    return Parsed(services=services, warnings=undefined_names(tree, unit.origin))


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _defines_handle(node: ast.ClassDef) -> bool:
    # Intermediate base classes without handle() are not services themselves.
    return any(isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name == "handle" for item in node.body)


def _declared_name(node: ast.ClassDef, unit: SourceUnit) -> str | None:
    for item in node.body:
        targets = (
            item.targets if isinstance(item, ast.Assign) else [item.target] if isinstance(item, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "name" for t in targets):
            value = item.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value.strip():
                name = value.value.strip()
                if not name.isprintable() or len(name) > 200:  # listings show it; a terminal would act on escapes
                    raise DeployError(
                        f"Cannot deploy {unit.origin}, line {item.lineno}: {node.name}.name {name!r:.80} is not "
                        "1-200 printable characters; use a plain name, e.g. name = 'api.scheduler.sync'."
                    )
                return name
            raise DeployError(
                f"Cannot deploy {unit.origin}, line {item.lineno}: {node.name}.name must be a plain string, "
                "e.g. name = 'api.scheduler.sync'."
            )
    return None


def default_service_name(class_name: str, origin: str) -> str:
    """The name a service gets when its class sets none."""
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", class_name).lower()
    if origin.startswith("<"):
        return kebab
    return f"{PurePath(origin).stem}.{kebab}"


def undefined_names(tree: ast.Module, origin: str) -> list[str]:
    """Warnings for names the source reads but neither defines nor imports (e.g. a variable from another cell)."""
    defined = set(dir(builtins)) | {"__name__", "__file__", "__doc__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            defined.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
            args = node.args if not isinstance(node, ast.ClassDef) else None
            if args is not None:
                every = args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]
                defined.update(a.arg for a in every if a is not None)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
        elif isinstance(node, ast.Lambda):
            defined.update(a.arg for a in node.args.args)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            defined.update(node.names)
    missing: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in defined:
            missing.setdefault(node.id, node.lineno)
    if "*" in defined:
        return []
    return [
        f"{origin}, line {line}: {name!r} is neither defined nor imported here; "
        "the runner will not have it (define or import it in this cell or file)."
        for name, line in sorted(missing.items(), key=lambda item: item[1])
    ]


def declares_process_isolation(source: str, class_name: str) -> bool:
    """Whether class ``class_name`` in ``source`` sets ``isolation = "process"`` in its body, or inherits
    it from a class defined in the same source. Read from the text: nothing of the service runs here."""
    try:
        classes = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}
    except (SyntaxError, ValueError):
        return False
    todo, seen = [class_name], set()
    while todo:  # depth first, bases in order: close to Python's method resolution order
        node = classes.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        value = _class_constant(node, "isolation")
        if value is not None:
            return value == "process"
        todo.extend(reversed([base.id for base in node.bases if isinstance(base, ast.Name)]))
    return False


def _class_constant(node: ast.ClassDef, name: str) -> object | None:
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and isinstance(value, ast.Constant):
            return value.value
    return None

"""The catalog: the services deployed to a runner and its outgoing connections, read from its store.

The engine asks it for a service's version when it builds a run and whether a service exists when a
job names one; the socket's deploy and connection operations go to it directly. It hands the workers
what they need to load services and reach connections through two hooks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from .. import connections as conns
from ..errors import ConnectionNotFound, InvalidInput, ServiceNotFound, did_you_mean
from ..service import parse_payload
from ..store import Store
from ..worker.loading import SourceUnit, parse_unit
from ..worker.notebook import NOTEBOOK_CLASS, parameter_lines

log = logging.getLogger(__name__)


@dataclass
class Catalog:
    """Services (name -> record with ``version``, ``class_name``, ``origin``) and connections of one store."""

    store: Store
    #: Called with {version: (origin, source)} and {name: (version, class name)} when the services change.
    registry_changed: Callable[[dict, dict], None] = lambda sources, services: None
    #: Called with {name: {kind, definition}} when the connections change.
    connections_changed: Callable[[dict], None] = lambda definitions: None
    #: Called with "services" or "connections" after this runner changed them (other runners read them again).
    changed: Callable[[str], None] = lambda change: None
    services: dict[str, dict] = field(default_factory=dict)
    connections: dict[str, dict] = field(default_factory=dict)

    def load(self) -> None:
        """Read services and connections (at start)."""
        self._load_services()
        self._load_connections()

    def version_of(self, service: str) -> str | None:
        return self.services.get(service, {}).get("version")

    def _load_services(self) -> None:
        services = {service["name"]: service for service in self.store.services()}
        if services == self.services and services:
            return  # read again (another runner's announcement, a reload): the workers have these already
        self.services = services
        sources = self.store.sources()
        self.registry_changed(
            {v: (self._origin_of(v), text) for v, text in sources.items()},
            {name: (s["version"], s["class_name"]) for name, s in self.services.items()},
        )

    def _origin_of(self, version: str) -> str:
        return next((s["origin"] for s in self.services.values() if s["version"] == version), "<string>")

    def deploy(self, units: list[dict], now: datetime) -> dict:
        deployed, warnings = [], []
        parsed_units = []
        for unit in units:
            if not isinstance(unit, dict) or not isinstance(unit.get("source"), str):
                raise InvalidInput("Each deploy unit needs 'source' (text) and 'origin' (a file name or '<cell>').")
            source_unit = SourceUnit(unit["source"], str(unit.get("origin") or "<string>"))
            parsed_units.append((source_unit, parse_unit(source_unit)))
        for source_unit, parsed in parsed_units:
            self.store.save_source(source_unit.version, source_unit.origin, source_unit.source, parsed.services, now)
            warnings.extend(parsed.warnings)
            deployed.extend({"name": name, "version": source_unit.version} for name in parsed.services)
        self._load_services()
        self.changed("services")
        return {"services": deployed, "warnings": warnings}

    def service_records(self) -> list[dict]:
        return list(self.services.values())

    def require_service(self, name: str) -> None:
        if not isinstance(name, str) or name not in self.services:
            known = sorted(self.services)
            raise ServiceNotFound(
                f"No service named {name!r} is deployed.{did_you_mean(str(name), known)} "
                f"Services: {', '.join(known) or 'none'}."
            )

    def is_notebook(self, service: str) -> bool:
        return self.services.get(service, {}).get("class_name") == NOTEBOOK_CLASS

    def check_extra(self, service: str, extra) -> None:
        """A notebook service's extra must give Python variables: refused before a job or run is stored."""
        if extra is not None and self.is_notebook(service):
            parameter_lines(parse_payload(extra))

    def _load_connections(self) -> None:
        """Read the connections; when they changed, hand them to the workers (via ``connections_changed``).

        It reads them at start, after its own changes and, on a shared store, when another runner announces a
        change (``runner.shared``); never on the path of a run.
        """
        try:
            records = {c["name"]: c for c in self.store.connections()}
        except Exception:  # a store hiccup must not fail a run; the next read retries
            log.exception("reading connections failed; keeping the ones read before")
            return
        if records != self.connections:
            self.connections = records
            self.connections_changed(
                {name: {"kind": c["kind"], "definition": c["definition"]} for name, c in records.items()}
            )

    def save_connection(self, name: str, kind: str, fields: dict, now: datetime) -> dict:
        """Add or replace a connection (validated; a name keeps its kind); return it as listed."""
        definition = conns.definition(kind, name, **fields)
        existing = self.connections.get(name)
        if existing and existing["kind"] != kind:
            raise InvalidInput(
                f"A {existing['kind']} connection named {name!r} exists; delete it first or pick another name."
            )
        self.store.save_connection(name, kind, definition, now)
        self._load_connections()
        self.changed("connections")
        return conns.public_record(self.connections[name])

    def delete_connection(self, name: str) -> dict:
        self.connection(name)
        self.store.delete_connection(name)
        self._load_connections()
        self.changed("connections")
        return {"deleted": name}

    def connection(self, name: str) -> dict:
        """One stored connection (with its secrets: for the runner's own use only)."""
        if name not in self.connections:
            known = sorted(self.connections)
            raise ConnectionNotFound(
                f"No connection named {name!r}.{did_you_mean(str(name), known)} "
                f"Connections: {', '.join(known) or 'none'}."
            )
        return self.connections[name]

    def connection_records(self) -> list[dict]:
        return [conns.public_record(self.connections[name]) for name in sorted(self.connections)]

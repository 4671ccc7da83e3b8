"""The worker's deployed services: sources by version and services by name, loaded into modules on first use."""

from __future__ import annotations

import linecache
import sys
import types

from .notebook import NOTEBOOK_CLASS


class Registry:
    """Deployed sources by version and services by name, loaded into modules on first use."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, str]] = {}  # version -> (origin, source)
        self.services: dict[str, tuple[str, str]] = {}  # name -> (version, class name)
        self.modules: dict[str, types.ModuleType] = {}
        self.classes: dict[str, type] = {}  # name -> class, for the services loaded so far

    def update(self, sources: dict[str, tuple[str, str]], services: dict[str, tuple[str, str]]) -> None:
        self.sources.update(sources)
        self.services = dict(services)
        self.classes = {}

    def service_class(self, name: str) -> type:
        try:
            return self.classes[name]
        except KeyError:
            pass
        if name not in self.services:
            from ..errors import ServiceNotFound, did_you_mean

            known = sorted(self.services)
            raise ServiceNotFound(
                f"No service named {name!r} is deployed.{did_you_mean(name, known)} "
                f"Services: {', '.join(known) or 'none'}."
            )
        version, class_name = self.services[name]
        if class_name == NOTEBOOK_CLASS:
            from .notebook_run import notebook_service_class

            cls = self.classes[name] = notebook_service_class(name, *self.sources[version])
            return cls
        cls = self.classes[name] = getattr(self._module(version), class_name)
        return cls

    def _module(self, version: str) -> types.ModuleType:
        if version not in self.modules:
            origin, source = self.sources[version]
            filename = origin if not origin.startswith("<") else f"<nbsched service {version}>"
            module = types.ModuleType(f"nbsched_service_{version}")
            module.__file__ = filename
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            sys.modules[module.__name__] = module
            exec(compile(source, filename, "exec"), module.__dict__)
            self.modules[version] = module
        return self.modules[version]

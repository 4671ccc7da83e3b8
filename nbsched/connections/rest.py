"""REST connections in a worker: ``self.out.plain_http[name].conn``, HTTP calls through ``requests``."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from ..errors import InvalidInput
from .reasons import root_reason
from .secrets import resolve


class RESTConnection:
    """``self.out.plain_http[name].conn``: HTTP calls to the connection's address.

    Each method takes the run's ``cid`` first (sent as ``X-Request-ID``) and returns a
    ``requests.Response``. HTTP error statuses do not raise (as in Zato); call
    ``response.raise_for_status()`` to fail the run on them. Network errors and timeouts
    raise the usual ``requests`` exceptions, with a message naming the connection.

    ``path="/items"`` is appended to the address; ``params`` fill ``{placeholders}`` in
    the address or path, and the rest become the query string. Other keywords
    (``headers``, ``json``, ``files``, ``timeout``, ...) go to ``requests``; a dict or list
    as ``data`` is sent as JSON.
    """

    def __init__(self, name: str, spec: dict):
        self.name = name
        self.address = spec["address"]
        self.timeout = spec["timeout"]
        self.verify = spec["verify"]
        self._spec = spec
        self._session = None

    @property
    def session(self):
        if self._session is None:
            import requests

            what = f"REST connection {self.name!r}"
            session = requests.Session()
            session.headers.update({k: resolve(v, f"{what} header {k}") for k, v in self._spec["headers"].items()})
            if self._spec["token"]:
                session.headers["Authorization"] = f"Bearer {resolve(self._spec['token'], f'{what} token')}"
            elif self._spec["username"]:
                password = resolve(self._spec["password"], f"{what} password") or ""
                session.auth = (resolve(self._spec["username"], f"{what} username"), password)
            self._session = session
        return self._session

    def get(self, cid: str, params: dict | None = None, **kwargs):
        return self.request("GET", cid, params=params, **kwargs)

    def post(self, cid: str, data: Any = "", params: dict | None = None, **kwargs):
        return self.request("POST", cid, data=data, params=params, **kwargs)

    def put(self, cid: str, data: Any = "", params: dict | None = None, **kwargs):
        return self.request("PUT", cid, data=data, params=params, **kwargs)

    def patch(self, cid: str, data: Any = "", params: dict | None = None, **kwargs):
        return self.request("PATCH", cid, data=data, params=params, **kwargs)

    def delete(self, cid: str, params: dict | None = None, **kwargs):
        return self.request("DELETE", cid, params=params, **kwargs)

    def request(self, method: str, cid: str, data: Any = None, params: dict | None = None, path: str = "", **kwargs):
        import requests

        url, query = self._url(path, dict(params or {}))
        headers = {**(kwargs.pop("headers", None) or {}), "X-Request-ID": str(cid)}
        if isinstance(data, dict | list):
            kwargs.setdefault("json", data)
            data = None
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)
        try:
            return self.session.request(method, url, data=data, params=query, headers=headers, **kwargs)
        except requests.RequestException as exc:
            raise _explained(exc, f"REST connection {self.name!r}: {method} {url}", kwargs["timeout"]) from exc

    def _url(self, path: str, params: dict) -> tuple[str, dict]:
        url = self.address.rstrip("/") + "/" + path.lstrip("/") if path else self.address
        for placeholder in re.findall(r"\{(\w+)\}", url):
            if placeholder not in params:
                raise InvalidInput(
                    f"REST connection {self.name!r}: the URL {url!r} needs {placeholder!r}; "
                    f"pass params={{{placeholder!r}: ...}}."
                )
            url = url.replace(f"{{{placeholder}}}", quote(str(params.pop(placeholder)), safe=""))
        return url, params

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _explained(exc, what: str, timeout) -> Exception:
    """The same kind of requests exception, with a one-line message that says which call failed."""
    import requests

    if isinstance(exc, requests.Timeout):
        reason = f"no reply within {timeout}s (the timeout); raise it with timeout= or check the server"
    elif isinstance(exc, requests.ConnectionError):
        reason = f"cannot connect ({root_reason(exc)}); check the address and that the server is up"
    else:
        reason = root_reason(exc)
    try:
        return type(exc)(f"{what}: {reason}.", request=exc.request, response=exc.response)
    except TypeError:  # an exception class with another signature: keep the original
        return exc

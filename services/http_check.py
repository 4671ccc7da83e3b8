"""Check an HTTP endpoint through a REST connection, and fail the run on an error status.

``conn.get`` returns the response whatever its status (as Zato's does); ``raise_for_status()``
turns a 4xx/5xx answer into a failed run with a one-line error such as
``HTTPError: 500 Server Error: Internal Server Error for url: ...``.

Extra (JSON or key=value lines): ``connection`` (default ``My Data Source``), ``path`` (default none).
"""

from nbsched import Service


class CheckEndpoint(Service):
    name = "api.http.check"

    def handle(self):
        options = self.request.payload if isinstance(self.request.payload, dict) else {}
        conn = self.out.plain_http[options.get("connection", "My Data Source")].conn
        response = conn.get(self.cid, path=options.get("path", ""))
        response.raise_for_status()
        self.logger.info(
            "%s answered %s in %.0f ms", response.url, response.status_code, response.elapsed.total_seconds() * 1000
        )
        self.response.payload = {"status": response.status_code, "bytes": len(response.content)}

"""The client side: the ``Client`` that talks to a runner over its socket, and starting a runner (``launch``)."""

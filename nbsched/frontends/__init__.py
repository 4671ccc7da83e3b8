"""Front ends: the command line, the notebook magics and the ipywidgets dashboard (``ui``), all thin over the client."""

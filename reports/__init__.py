"""Reports: gather studies and runs, compute the tables as data, draw, compose, render (``build``)."""

DEFAULT_OUT = "reports/out"  # where a report goes unless told

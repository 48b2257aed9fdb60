"""The ground floor every other package stands on: no torch, no Ray, no MLflow, no project import.

- ``common.errors``: ``UserError`` (one line on stderr, exit 2), ``first_line``, ``require_nonnegative``.
- ``common.metric_names``: the metric names every backend logs and the analysis reads.
- ``common.net``: ``free_port``, ``is_loopback``.
- ``common.redact``: a URI or a message with its user:password masked.
- ``common.typed_yaml``: YAML -> a typed dataclass schema, each error one line with file:line.
"""

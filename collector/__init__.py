"""The collector bridge: OTLP in (receiver), OTLP out (forwarder).

- ``receiver.Receiver``: OTLP/HTTP (``http_receiver``) and OTLP/gRPC (``grpc_receiver``) in front of
  one ``ingest.Ingestor``, which converts (``convert``) and writes through the in-process exporter's
  write path; ``wire`` decodes HTTP bodies.
- ``forwarder.Forwarder``: Redis streams -> OTLP -> ``upstream`` (the official exporters' transports
  with our retry policy), at least once.
- ``counters``: what /healthz and /metrics report; ``config``: the environment variables.
"""

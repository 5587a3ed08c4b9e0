"""The HTTP reception of ``cncf serve`` (brief section 11).

``app`` (routes as data, the Reception), ``status`` (the one Observation →
HTTP status table), ``auth`` (token and Host rules), ``openapi`` (the
document generated from the loaded components), ``metrics`` (Prometheus),
``serve`` (start-up and graceful shutdown), ``dashboard/`` (the static web
page).  Importing this package pulls in Starlette, uvicorn and
prometheus_client, so nothing outside ``cncf serve`` imports it eagerly.
"""

"""One router module per concern; each is included by query_api.app.create_app."""

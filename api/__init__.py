"""The HTTP layer: ASGI middleware, routes and the problem+json error mapping."""

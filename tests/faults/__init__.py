"""Fault tests: the real service and PostgreSQL with a misbehaving network between them (see proxy.py)."""

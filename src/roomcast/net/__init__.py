"""Outbound network access on a tenant's behalf (URL policy)."""

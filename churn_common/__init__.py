"""Contracts shared by every component: settings, record schema, wire format, tables."""

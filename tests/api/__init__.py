"""Tests of the api package (no Home Assistant inside)."""

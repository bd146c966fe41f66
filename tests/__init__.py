"""Tests of HA Ingestor for Home Assistant."""

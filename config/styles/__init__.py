"""Styles as data: one JSON file per style (see server/maps/styles.py for the format)."""

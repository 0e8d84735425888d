"""Periodic task schedules and the beat actor."""

"""Reusable tasks by domain. Pure logic lives in plain functions beside thin `@task` wrappers."""

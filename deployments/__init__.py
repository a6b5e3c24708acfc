"""Deployments: which flow runs when. The calendar is data, taken from the runbooks."""

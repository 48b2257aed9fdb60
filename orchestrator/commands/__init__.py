"""The CLI's command groups (one Typer sub-app each, composed by ``orchestrator.cli``).

Command bodies import what they run inside the function: `asym --help` and every command's parse
load only Typer, so torch, Ray, MLflow, rich and the planner load in the one command that needs
them (this is the comment for every function-level import in this folder).
"""

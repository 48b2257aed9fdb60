"""The asym orchestrator: CLI root, Ray Tune sweeps, MLflow tracking and the backends."""

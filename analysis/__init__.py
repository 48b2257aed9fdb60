"""analysis: the only MLflow reader; the paper's figures and tables from tracked sweeps."""

"""analysis: the only MLflow reader; the paper's figures and tables from tracked sweeps.

Data flows one way: ``load`` (MLflow -> one tidy DataFrame, once) -> ``aggregate`` (pure numpy:
EMA, seed mean + bootstrap interval, checkpoint selection, kappa-bar) and ``summaries`` (the small
frames each figure and table draws) -> ``figures`` / ``tables`` (drawing and formatting only) ->
``report`` (``build_report``: every file, report.html, MLflow artifacts; `asym report NAME`).
"""

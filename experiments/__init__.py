"""Declared studies of the paper, model presets and the pure planner (studies -> trials).

- ``experiments.spec``: ``Method``, ``Study``, ``TrialSpec`` (typed, frozen).
- ``experiments.studies``: the paper's studies as YAML files; ``STUDIES``, ``get_study(name)``.
- ``experiments.study_file``: the study-file schema and loader (the paper's files and a user's).
- ``experiments.plugins``: a user's estimator modules, imported by name or entry point.
- ``experiments.presets``: the model presets (OmegaConf, typed schema) and user YAML overrides.
- ``experiments.plan``: ``plan(...)``, ``parse_float_list``, ``parse_seeds``, ``trials_table``,
  ``trials_json``.
"""

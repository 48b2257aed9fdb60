"""Declared studies of the paper, model presets and the pure planner (studies -> trials).

- ``experiments.spec``: ``Method``, ``Study``, ``TrialSpec`` (typed, frozen).
- ``experiments.studies``: one module per study; ``STUDIES``, ``get_study(name)``.
- ``experiments.presets``: the model presets (OmegaConf, typed schema) and user YAML overrides.
- ``experiments.plan``: ``plan(...)``, ``parse_float_list``, ``parse_seeds``, ``trials_table``,
  ``trials_json``.
"""

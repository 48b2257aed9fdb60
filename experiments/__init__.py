"""Declared studies of the paper, model presets and the pure planner (studies -> trials)."""

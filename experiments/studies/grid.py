"""The alpha+ x alpha- grid (paper Fig 4(d), Observation 3): AsymGRPO at every cell of two lists.

The methods come from the command line (``--alpha-pos``, ``--alpha-neg``); the planner builds one
AsymGRPO method per cell. The paper's grid values are [NF]; the default grid is spec section 9's
suggestion (ours), which contains the paper's best cell (0.9, 0.4) and v1's collapse point
alpha- = 0.75.
"""

from experiments.spec import Method, Study

# [NF] spec section 9 "Suggested defaults (ours, not the paper's)": {0.1,...,0.9} x {0.1,...,0.75}.
DEFAULT_ALPHA_POS = (0.1, 0.3, 0.5, 0.7, 0.9)
DEFAULT_ALPHA_NEG = (0.1, 0.25, 0.4, 0.5, 0.75)


def grid_method(alpha_pos: float, alpha_neg: float) -> Method:
    """One cell of the grid: AsymGRPO (eq 8) with these alphas."""
    return Method(label=f"AsymGRPO ({alpha_pos:g}, {alpha_neg:g})", estimator="asym",
                  alpha_pos=float(alpha_pos), alpha_neg=float(alpha_neg))


STUDY = Study(
    name="grid",
    title="alpha+ x alpha- sensitivity grid (Fig 4(d))",
    description="AsymGRPO over the product of --alpha-pos and --alpha-neg; default grid "
    f"{list(DEFAULT_ALPHA_POS)} x {list(DEFAULT_ALPHA_NEG)} [NF, spec section 9].",
    methods=(),
    models=("qwen3-4b",),  # "The grid in Fig. 4(d) provides a sensitivity analysis on Qwen3-4B" [v2]
    takes_alpha_grid=True,
)

SOURCES = {
    "AsymGRPO (a+, a-)": "eq 8 [v1*, v2 prose]; grid values [NF]: spec section 9 suggestion",
}

# `asym sweep optuna`: one AsymGRPO method whose alphas (and any --range) Optuna samples; each sample
# is planned into its own trial, labelled by its values ("AsymGRPO alpha_pos=0.553 alpha_neg=0.72").
OPTUNA_STUDY = Study(
    name="optuna",
    title="Optuna search over AsymGRPO (Fig 4(d) by search)",
    description="AsymGRPO with alphas (and any --range setting) sampled by Optuna's TPE through Ray Tune.",
    methods=(Method("AsymGRPO", "asym", source="eq 8 [v1*, v2 prose]; values sampled by Optuna"),),
    models=("qwen3-4b",),
)

"""Beyond the paper: the channels swap roles when kappa < 0 (Proposition 1, never shown).

Proposition 1 gives dH(Pos-Only) - dH(REINFORCE) ~ +eta alpha+ kappa and dH(Neg-Only) - dH(REINFORCE)
~ -eta alpha- kappa: with kappa < 0 the positive channel should lower entropy and the negative one
raise it, the reverse of the paper's ordering. ``embedded-kappa-neg`` is a base model that cannot do
its task yet (tiers 3-4, about 8% right) and whose correct answers are its confident ones (c+ > c-,
log-odds < 0), so kappa-bar < 0, and RL does not lift it above p = 1/2 within the run's first 50
steps. Same methods and values as the isolation study's Sec 3.1 rows [ours: the study].
"""

from experiments.spec import Study
from experiments.studies.isolation import NEG_ONLY, POS_ONLY, REINFORCE

STUDY = Study(
    name="kappa-flip",
    title="kappa < 0: do the channels swap roles? (Prop. 1, ours)",
    description="REINFORCE, Pos-Only and Neg-Only on a base model with negative kappa: Proposition 1 "
    "predicts Neg-Only > REINFORCE > Pos-Only in entropy there.",
    methods=(REINFORCE, POS_ONLY, NEG_ONLY),
    embedded_models=("embedded-kappa-neg",),
)

SOURCES = {
    "REINFORCE": "eq 2, alpha+ = alpha- = 0 [der, App B]",
    "Pos-Only": "(0.5, 0) as in the isolation study [v1*]; run on a kappa < 0 base model [NF]",
    "Neg-Only": "(0, 0.5) as in the isolation study [v1*]; run on a kappa < 0 base model [NF]",
}

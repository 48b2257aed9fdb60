"""The Proposition 1 probe's report: agreement table and predicted-vs-measured figure from ``probe.csv``.

Every row is one method's one-update entropy change minus REINFORCE's from the same state, batch,
optimizer and control (``tinyrlvr.probe``); REINFORCE's own rows (0 by construction) are left out.

Agreement, per (optimizer, control) over methods, seeds and steps:
- sign: share of rows where sign(predicted) = sign(measured), for the exact within-group prediction
  and for the linearised one (eq 6; alpha-family methods only);
- r: Pearson correlation of predicted and measured over all rows (scale-free: the theory's eta is the
  step of a natural gradient on a tabular softmax, not an optimizer's learning rate, so only the
  identity construction of ``tests/test_probe.py`` is expected on the identity line);
- r within state: the median over (seed, step) of the correlation across methods at that one state
  (the pooled r mixes states whose effective step differs);
- slope: least-squares measured / predicted through the origin (how far from the identity line).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MEASURES = (("measured_dh_batch", "batch tokens"), ("measured_dh_probe", "probe set"))


def load_rows(path: Path) -> pd.DataFrame:
    """The CSV without REINFORCE's reference rows."""
    frame = pd.read_csv(path)
    return frame[frame["estimator"] != "reinforce"].reset_index(drop=True)


def _sign_share(predicted: pd.Series, measured: pd.Series) -> float:
    ok = predicted.notna() & measured.notna() & (predicted != 0)
    return float((np.sign(predicted[ok]) == np.sign(measured[ok])).mean()) if ok.any() else math.nan


def _corr(x: pd.Series, y: pd.Series) -> float:
    ok = x.notna() & y.notna()
    if ok.sum() < 3 or x[ok].std() == 0 or y[ok].std() == 0:
        return math.nan
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def agreement(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (optimizer, control, measure): n, sign agreement (exact, linear), r, slope."""
    out = []
    for (optimizer, control), part in frame.groupby(["optimizer", "control"], sort=False):
        for column, measure in MEASURES:
            pred, lin, meas = part["predicted_dh"], part["predicted_dh_linear"], part[column]
            ok = pred.notna() & meas.notna()
            slope = float((pred[ok] * meas[ok]).sum() / (pred[ok] ** 2).sum()) if ok.any() else math.nan
            within = [_corr(state["predicted_dh"], state[column]) for _, state in part.groupby(["seed", "step"])]
            within = [r for r in within if math.isfinite(r)]
            out.append({"optimizer": optimizer, "control": control, "measured on": measure, "n": int(ok.sum()),
                        "sign (exact)": _sign_share(pred, meas), "sign (linear)": _sign_share(lin, meas),
                        "r (exact)": _corr(pred, meas), "r (linear)": _corr(lin, meas),
                        "r within state": float(np.median(within)) if within else math.nan, "slope": slope})
    return pd.DataFrame(out)


def per_method(frame: pd.DataFrame, column: str = "measured_dh_batch") -> pd.DataFrame:
    """Per (optimizer, control, method): mean predicted and measured gap over steps and seeds, the
    measured one ± its standard error over seeds (each seed's mean over steps), and the share of
    (seed, step) rows whose sign agrees with the exact prediction."""
    rows = []
    for (optimizer, control, method), part in frame.groupby(["optimizer", "control", "method"], sort=False):
        seeds = part.groupby("seed")[column].mean()
        rows.append({"optimizer": optimizer, "control": control, "method": method, "seeds": len(seeds),
                     "predicted/eta": part["predicted_gap_per_eta"].mean(),
                     "linear/eta": part["linear_gap_per_eta"].mean(), "measured": seeds.mean(),
                     "measured SE": seeds.std(ddof=1) / math.sqrt(len(seeds)) if len(seeds) > 1 else math.nan,
                     "sign agrees": _sign_share(part["predicted_dh"], part[column])})
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table (no tabulate dependency); floats to ``digits`` significant figures."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "n/a" if math.isnan(value) else f"{value:.{digits}g}"
        return str(value)

    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def figure(frame: pd.DataFrame, column: str = "measured_dh_batch") -> Figure:
    """Predicted (exact) against measured, one panel per (control, optimizer), identity line dashed."""
    optimizers = list(dict.fromkeys(frame["optimizer"]))
    controls = list(dict.fromkeys(frame["control"]))
    methods = list(dict.fromkeys(frame["method"]))
    fig = Figure(figsize=(3.4 * len(optimizers), 3.2 * len(controls)), layout="constrained")
    axes = fig.subplots(len(controls), len(optimizers), squeeze=False)
    colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    for i, control in enumerate(controls):
        for j, optimizer in enumerate(optimizers):
            ax = axes[i][j]
            part = frame[(frame["control"] == control) & (frame["optimizer"] == optimizer)]
            for method, rows in part.groupby("method", sort=False):
                ax.scatter(rows["predicted_dh"], rows[column], s=14, color=colors[method], label=method)
            x, y = part["predicted_dh"], part[column]
            ok = x.notna() & y.notna()
            xlim = float(x[ok].abs().max()) * 1.1 if ok.any() else 1.0
            ylim = float(y[ok].abs().max()) * 1.1 if ok.any() else 1.0
            # each axis keeps its own scale (the theory's eta is not the optimizer's lr), so the identity
            # line (dashed) may leave the panel; the dotted line is the least-squares slope through 0
            slope = float((x[ok] * y[ok]).sum() / (x[ok] ** 2).sum()) if ok.any() and (x[ok] ** 2).sum() > 0 else math.nan
            ax.plot([-xlim, xlim], [-xlim, xlim], "k--", lw=0.8, label="identity")
            if math.isfinite(slope):
                ax.plot([-xlim, xlim], [-slope * xlim, slope * xlim], "k:", lw=0.8, label="fit through 0")
            ax.set_xlim(-xlim, xlim)
            ax.set_ylim(-ylim, ylim)
            ax.axhline(0, color="0.8", lw=0.5)
            ax.axvline(0, color="0.8", lw=0.5)
            ax.set_title(f"{optimizer}, {control} (slope {slope:.3g})", fontsize=9)
            ax.set_xlabel("predicted dH - dH_REINFORCE (exact)", fontsize=8)
            ax.set_ylabel(f"measured ({dict(MEASURES)[column]})", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][-1].legend(fontsize=7, loc="best")
    return fig


def write_report(csv_path: Path, out_dir: Path) -> list[Path]:
    """``probe.png`` (batch tokens), ``probe_probe_set.png`` and ``agreement.md`` beside the CSV."""

    frame = load_rows(csv_path)
    paths = []
    for column, name in (("measured_dh_batch", "probe.png"), ("measured_dh_probe", "probe_probe_set.png")):
        fig = figure(frame, column)
        FigureCanvasAgg(fig)
        fig.savefig(out_dir / name, dpi=120)
        paths.append(out_dir / name)
    text = ["# Proposition 1 probe: agreement (over methods x seeds x steps)", "", markdown(agreement(frame)), "",
            "## Per method (measured on the batch's tokens: mean over steps and seeds, ± standard error over seeds)", "",
            markdown(per_method(frame)), ""]
    (out_dir / "agreement.md").write_text("\n".join(text))
    return [*paths, out_dir / "agreement.md"]


def covariance_loss_note(policy_loss: str, response_tokens_per_minibatch: float) -> str:
    """What the report should print beside a Clip-Cov / KL-Cov row instead of ranking it ("" otherwise).

    Both select a fixed share of a mini-batch's response tokens (``tinyrlvr.policy_losses``: Clip-Cov
    2e-4 and KL-Cov 2e-3 of them, the authors' 7B recipes, at least one): at the embedded engine's
    ~2,000 tokens per mini-batch that is 1 and about 4 tokens, where a 7B run selects hundreds.
    """
    from tinyrlvr.policy_losses import CLIP_COV_RATIO, KL_COV_RATIO  # deferred: torch

    ratio = {"clip_cov": CLIP_COV_RATIO, "kl_cov": KL_COV_RATIO}.get(policy_loss)
    if ratio is None or not math.isfinite(response_tokens_per_minibatch):
        return ""
    chosen = max(1, int(ratio * response_tokens_per_minibatch))
    return (f"acts on {chosen} token(s) per mini-batch ({ratio:g} of ~{response_tokens_per_minibatch:,.0f}): "
            "cannot act at this engine's token counts; not ranked")

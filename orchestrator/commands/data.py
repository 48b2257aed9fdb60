"""`asym data prepare`: the verl backend's parquet files (MATH train and the five benchmarks)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Data for the verl backend: MATH train and the five benchmarks as verl parquet files.", no_args_is_help=True)


@app.command("prepare")
def prepare(
    out: Annotated[Path, typer.Option("--out", help="folder for the parquet files (the verl backend's data dir)")] = Path("data/verl"),
    from_dir: Annotated[Optional[Path], typer.Option("--from", help="read <name>.jsonl|json|parquet here instead of the Hugging Face Hub")] = None,
) -> None:
    """Write math_train.parquet and the benchmarks (math500, aime24, aime25, amc23, olympiadbench) in verl's schema."""
    from backends.verl.data import prepare as prepare_data  # deferred: omegaconf

    counts = prepare_data(out, from_dir)
    for source, rows in counts.items():
        typer.echo(f"{out / (source + '.parquet')}: {rows} rows")
    typer.echo(f"point the verl backend at it: export ASYM_DATA_DIR={out.resolve()}")

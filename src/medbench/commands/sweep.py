"""`medbench sweep`: plan and run a recipe's grid, then its study report."""

from __future__ import annotations

import click
from rich.table import Table

from medbench.commands.common import console, err_console, key_values
from medbench.errors import MedbenchError


@click.command("sweep")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--scale", default=None, help="Which of the recipe's scales to run (default: its first, e.g. toy).")
@click.option("--output-dir", type=click.Path(file_okay=False), default=None,
              help="Sweep directory (default: sweeps/<recipe>-<scale>); re-running resumes it.")
@click.option("--dry-run", is_flag=True, help="Print the plan (cells, steps, comparisons) and what is done; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as JSON.")
@click.option("--executor", default="local", show_default=True, help="local, ray, slurm, or a plugin's executor.")
@click.option("--executor-option", "executor_options", multiple=True, help="KEY=VALUE for the executor.")
@click.option("--set", "overrides", multiple=True, help="VAR=VALUE: replace a variable of the chosen scale "
              "(e.g. model=path/to/model, eval_limit=50).")
@click.option("--data-file", "data_files", multiple=True,
              help="TASK[:SPLIT]=PATH: your own data for a task (over the recipe's data_files); hashed into the plan.")
def sweep_command(recipe, scale, output_dir, dry_run, as_json, executor, executor_options, overrides,
                  data_files) -> None:
    """Run a recipe's grid: every cell trains, is scored, and lands in the sweep's leaderboard."""
    from medbench import sweep
    from medbench.progress import new_progress

    plan = sweep.plan(sweep.read_recipe(recipe), scale, output_dir, key_values(overrides, "--set"),
                      key_values(data_files, "--data-file"))
    if dry_run and as_json:
        click.echo(sweep.describe_json(plan))
        return
    description = sweep.describe(plan)
    labels = {c["id"]: c["label"] for c in description["cells"]}
    table = Table(title=f"{plan.recipe.name} · scale {plan.scale} · {len(plan.cells)} cells → {plan.out_dir}")
    for column in ("cell", "steps", "eval", "key", "state"):
        table.add_column(column, overflow="fold")
    for cell in description["cells"]:
        steps = " → ".join(s["plugin"] for s in cell["steps"]) or "(none: scored as is)"
        state = "done" if cell["done"] else "to run"
        table.add_row(cell["label"] + (" [baseline]" if cell["baseline"] else ""), steps,
                      ",".join(cell["eval"]["tasks"]), cell["id"], state)
    console.print(table)
    if dry_run:  # a run prints them in its report
        for comparison in description["comparisons"]:
            console.print(f"compare {labels[comparison['cell']]}  vs  {labels[comparison['baseline']]}",
                          highlight=False, soft_wrap=True)
    for skipped in plan.skipped:
        err_console.print(f"skipped {skipped['cell']}: {skipped['reason']}", highlight=False, soft_wrap=True)
    if dry_run:
        return
    options = key_values(executor_options, "--executor-option")
    results = []
    with new_progress() as progress:
        bar = progress.add_task(f"sweep {plan.recipe.name}", total=len(plan.cells), status="")

        def finished(result) -> None:
            results.append(result)
            failed = sum(r.status == "failed" for r in results)
            progress.update(bar, completed=len(results), status=f"{failed} failed" if failed else "")

        sweep.run_sweep(plan, executor, options, on_result=finished)
    summary = Table(title="cells")
    for column in ("cell", "status", "seconds", "error"):
        summary.add_column(column)
    for result in results:
        summary.add_row(result.label, result.status, f"{result.duration_s:.0f}", result.error or "")
    console.print(summary)
    failed = [r for r in results if r.status == "failed"]
    if any(r.status != "failed" for r in results):
        _sweep_report(plan)
    if failed:
        raise MedbenchError(f"{len(failed)} of {len(results)} cells failed (first: {failed[0].label}: {failed[0].error})",
                            f"fix the cause and re-run the same command: finished cells are kept "
                            f"(tracebacks in {plan.out_dir}/cells)")


def _sweep_report(plan) -> None:
    from rich.markdown import Markdown

    from medbench.leaderboard import render
    from medbench.sweep_report import study_report

    paths = render(plan.leaderboard_dir)
    report = study_report(plan)
    console.print(Markdown(report["markdown"]))
    err_console.print(f"report: {plan.out_dir}/report.md; leaderboard: " + ", ".join(str(p) for p in paths),
                      highlight=False)

"""`medbench sweep`: plan and run a recipe's grid, then its study report."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from medbench.commands.common import Folder, Named, console, err_console, key_values
from medbench.console import display_safe, terminal_safe
from medbench.errors import MedbenchError


@click.command("sweep")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--scale", type=Named(), default=None,
              help="Which of the recipe's scales to run (default: its first, e.g. toy).")
@click.option("--output-dir", type=Folder(), default=None,
              help="Sweep directory (default: sweeps/<recipe>-<scale>); re-running resumes it.")
@click.option("--dry-run", is_flag=True, help="Print the plan (cells, steps, comparisons) and what is done; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print the plan as JSON.")
@click.option("--executor", default="local", show_default=True, help="local, ray, slurm, or a plugin's executor.")
@click.option("--executor-option", "executor_options", multiple=True, help="KEY=VALUE for the executor.")
@click.option("--set", "overrides", multiple=True, help="VAR=VALUE: replace a variable of the chosen scale "
              "(e.g. model=path/to/model, eval_limit=50).")
@click.option("--data-file", "data_files", multiple=True,
              help="TASK[:SPLIT]=PATH: your own data for a task (over the recipe's data_files); hashed into the plan.")
@click.option("--report-to", default=None, metavar="TRACKERS",
              help="Log every training step's metrics and its cells' scores to tensorboard, mlflow and/or wandb "
                   "(comma-separated; default: none).")
@click.option("--prune-unchosen", is_flag=True,
              help="Once a step with `select` has chosen its checkpoint, delete the weights of the others (their "
                   "configs, scores and the choice stay); steps whose folders another step reads keep theirs.")
def sweep_command(recipe, scale, output_dir, dry_run, as_json, executor, executor_options, overrides,
                  data_files, report_to, prune_unchosen) -> None:
    """Run a recipe's grid: every cell trains, is scored, and lands in the sweep's leaderboard."""
    from medbench import sweeps as sweep
    from medbench.api import plan_sweep, run_planned_sweep
    from medbench.progress import new_progress
    from medbench.tracking import parse_report_to

    if as_json and not dry_run:  # else --json would be dropped and the whole grid run
        raise MedbenchError("--json prints the plan, which only --dry-run does: a sweep run prints its report",
                            "add --dry-run to print the plan as JSON, or leave out --json to run the sweep")
    trackers = parse_report_to(report_to)  # a tracker that is not installed fails before the plan is printed
    options = key_values(executor_options, "--executor-option")
    if not dry_run:
        sweep.get_executor(executor)  # an unknown executor, before the plan is printed and the run dir is made
    plan = plan_sweep(recipe, scale=scale, output_dir=output_dir, overrides=key_values(overrides, "--set"),
                      data_files=key_values(data_files, "--data-file"))
    if dry_run and as_json:
        click.echo(sweep.describe_json(plan))
        return
    if not dry_run:  # its options, before the plan is printed and the progress starts
        sweep.get_executor(executor, options, len(plan.cells))
    description = sweep.describe(plan)
    labels = {c["id"]: c["label"] for c in description["cells"]}
    # Recipe text (name, factor levels, reasons) is the recipe author's: never a terminal control sequence.
    table = Table(title=Text(terminal_safe(f"{plan.recipe.name} · scale {plan.scale} · {len(plan.cells)} cells → "
                                           f"{plan.out_dir}")))
    for column in ("cell", "steps", "eval", "key", "state"):
        table.add_column(column, overflow="fold")
    for cell in description["cells"]:
        # a choosing step shows its grid and where: sft[learning_rate 1e-05|2e-05, best on uti@validation]
        steps = " → ".join(s["plugin"] + (f"[{_grid(s['select'])}best on {_chosen_on(s['select'])}]"
                                          if s.get("select") else "") for s in cell["steps"]) or "(none: scored as is)"
        state = "done" if cell["done"] else "to run"
        table.add_row(Text(terminal_safe(cell["label"] + (" [baseline]" if cell["baseline"] else ""))),
                      Text(terminal_safe(steps)), Text(terminal_safe(",".join(cell["eval"]["tasks"]))), cell["id"], state)
    console.print(table)
    if dry_run:  # a run prints them in its report
        for comparison in description["comparisons"]:
            tags = ["primary"] if comparison.get("primary") else []
            tasks = next(c["eval"]["tasks"] for c in description["cells"] if c["id"] == comparison["cell"])
            tags += [f"{task} on {metric}" for task, metric in (comparison.get("metrics") or {}).items()
                     if task in tasks]
            if comparison.get("margin") is not None:
                tags.append(f"equivalence ±{comparison['margin']}")
            if comparison.get("noninferiority") is not None:
                tags.append(f"non-inferiority −{comparison['noninferiority']}")
            if comparison.get("tasks"):
                tags.append(f"only {', '.join(comparison['tasks'])}")
            if comparison.get("pool_over"):
                tags.append(f"also pooled over {' × '.join(comparison['pool_over'])}")
            if comparison.get("select"):
                select = comparison["select"]
                tags.append(f"checkpoint chosen on {select['split']} of {', '.join(select['tasks'])}")
            console.print(terminal_safe(f"compare {comparison['factor']}: {comparison['level']} vs {comparison['baseline_level']}"
                          f"  ({labels[comparison['cell']]}  vs  {labels[comparison['baseline']]})"
                          + (f"  [{'; '.join(tags)}]" if tags else "")), highlight=False, soft_wrap=True)
        from medbench.sweep_families import summary_lines

        for line in summary_lines(description):
            console.print(terminal_safe(line), highlight=False, soft_wrap=True)
    if prune_unchosen:
        from medbench.checkpoint_pruning import exclusive_choosers

        choosing = {s.name for c in plan.cells for s in c.steps if s.select}
        err_console.print(f"--prune-unchosen: {len(exclusive_choosers(plan.cells))} of {len(choosing)} choosing "
                          "steps delete their unchosen checkpoints' weights once chosen (the others share "
                          "training folders another step reads, and keep them)" if choosing else
                          "--prune-unchosen: no step of this plan chooses a checkpoint, so nothing is pruned",
                          highlight=False, soft_wrap=True)
    for skipped in plan.skipped:
        err_console.print(terminal_safe(f"skipped {skipped['cell']}: {skipped['reason']}"), highlight=False, soft_wrap=True)
    for left_out in plan.comparisons_left_out:  # silent, a misspelt baseline would drop the study's question
        err_console.print(terminal_safe(f"not compared at scale {plan.scale}: {left_out}"), highlight=False,
                          soft_wrap=True)
    if dry_run:
        return
    results = []
    with new_progress() as progress:
        bar = progress.add_task(f"sweep {plan.recipe.name}", total=len(plan.cells), status="")

        def finished(result) -> None:
            results.append(result)
            failed = sum(r.status == "failed" for r in results)
            progress.update(bar, completed=len(results), status=f"{failed} failed" if failed else "")

        swept = run_planned_sweep(plan, executor=executor, executor_options=options, report_to=trackers,
                                  on_result=finished, prune_unchosen=prune_unchosen)
    summary = Table(title="cells")
    for column in ("cell", "status", "seconds", "error"):
        summary.add_column(column)
    for result in results:
        summary.add_row(Text(terminal_safe(result.label)), result.status, f"{result.duration_s:.0f}",
                        Text(terminal_safe(result.error or "")))
    console.print(summary)
    if prune_unchosen:
        from medbench.checkpoint_pruning import freed_so_far

        count, freed = freed_so_far(plan.out_dir / "steps")
        err_console.print(terminal_safe(f"pruned: {count} unchosen checkpoints in {plan.out_dir}/steps, "
                                        f"{freed / 1e9:.2f} GB freed"), highlight=False)
    failed = swept.failed
    if swept.report is not None:
        from rich.markdown import Markdown

        console.print(Markdown(display_safe(swept.report["markdown"])))  # line breaks kept, control characters not
        err_console.print(terminal_safe(f"report: {plan.out_dir}/report.md; leaderboard: "
                                        + ", ".join(str(p) for p in swept.leaderboard)), highlight=False)
    if failed:
        raise MedbenchError(f"{len(failed)} of {len(results)} cells failed (first: {failed[0].label}: {failed[0].error})",
                            f"fix the cause and re-run the same command: finished cells are kept "
                            f"(tracebacks in {plan.out_dir}/cells)")


def _chosen_on(select: dict) -> str:
    """``uti@validation``, or ``adrd_prediction@validation by macro_f1, scored by generate`` where the choice reads
    another metric than the task's primary one or scores in another mode than the cell."""
    metrics, mode = select.get("metrics") or {}, (select.get("scoring") or {}).get("mode")
    return ",".join(f"{t}@validation" + (f" by {metrics[t]}" if t in metrics else "") for t in select["tasks"]) \
        + (f", scored by {mode}" if mode else "")


def _grid(select: dict) -> str:
    """``learning_rate 1e-05|2e-05, `` for a step whose select trains it once per setting; '' otherwise."""
    return "".join(f"{name} {'|'.join(map(str, values))}, " for name, values in (select.get("over") or {}).items())

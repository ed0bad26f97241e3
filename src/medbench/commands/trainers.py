"""`medbench trainers` and the trainer's own options in `medbench train --plugin X --help`."""

from __future__ import annotations

import dataclasses

import click


def _trainer_rows() -> list[dict]:
    from medbench.training import trainer_registry

    return [{"name": name, "plugin": getattr(trainer, "plugin", ""), "description": getattr(trainer, "description", ""),
             "resume": bool(getattr(trainer, "supports_resume", False)),
             "options": len(dataclasses.fields(trainer.config_class))}
            for name, trainer in sorted(trainer_registry().items())]


@click.command("trainers")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def trainers_command(as_json: bool) -> None:
    """List trainer plugins: name, what they do, resume support; `train --plugin NAME --help` shows options."""
    from medbench.commands.common import print_listing

    print_listing(_trainer_rows(), "medbench trainers (medbench train --plugin NAME --help lists a trainer's options)",
                  {"name": lambda r: r["name"], "plugin": lambda r: r["plugin"], "description": lambda r: r["description"],
                   "--resume": lambda r: "yes" if r["resume"] else "no", "options": lambda r: r["options"]}, as_json)


def _named_plugin(args: list[str]) -> str | None:
    """The value of --plugin in a command line not parsed yet (--help is handled before the other options)."""
    for i, arg in enumerate(args):
        if arg == "--plugin" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--plugin="):
            return arg.partition("=")[2]
    return None


class TrainCommand(click.Command):
    """`medbench train`, whose --help also lists the options of the trainer named by --plugin."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["medbench.trainer"] = _named_plugin(args)
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        name = ctx.meta.get("medbench.trainer")
        if not name:
            formatter.write_paragraph()
            formatter.write_text("Pass --plugin NAME with --help for that trainer's own options "
                                 "(`medbench trainers` lists the trainers).")
            return
        from medbench.errors import MedbenchError
        from medbench.training import describe_options, get_trainer

        try:
            trainer = get_trainer(name)
        except MedbenchError as exc:
            formatter.write_paragraph()
            formatter.write_text(exc.one_line())
            return
        rows = []
        for option in describe_options(trainer.config_class):
            text = f"{option['type']}, default {option['default']}"
            rows.append((option["flag"], f"{option['help']} [{text}]" if option["help"] else f"[{text}]"))
        with formatter.section(f"Options of trainer {name!r} (also as `name: value` in --config YAML or a recipe)"):
            formatter.write_dl(rows)

"""The ``rho-audit`` group and its entry point: how user errors, Ctrl-C and signals end a command.

Kept import-light: every command module imports its heavy modules (mlx, scipy, pydantic)
inside the command, so ``--help`` and ``rho-audit plugins`` stay well under a second.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import NoReturn

import click

from rho_audit import __version__
from rho_audit.api.errors import RhoAuditError, Terminated
from rho_audit.cli.diff import diff
from rho_audit.cli.investigate import investigate
from rho_audit.cli.judges import judges
from rho_audit.cli.models import models
from rho_audit.cli.monitor import monitor
from rho_audit.cli.plugins import plugins
from rho_audit.cli.probes import probes
from rho_audit.cli.report import report
from rho_audit.cli.run import run
from rho_audit.cli.runs import runs
from rho_audit.cli.sweep import sweep
from rho_audit.cli.train import train

EPILOG = """\b
Examples:
  rho-audit run --plugins toxicity,refusal     two dimensions on the bundled model
  rho-audit run                                all dimensions
  rho-audit run --model ./my-model --adapter ./adapters -n 50 --json out.json
  rho-audit run --probes ood-clinical          one probe set, scored by its card's dimension
  rho-audit plugins                            what is installed, and from where
  rho-audit probes list                        every probe set, with train/eval counts
  rho-audit train --trainer rho-guided --seed 42   fine-tune, audit before/after, print deltas
  rho-audit sweep sweeps/paper-ablation.yaml --quick   the paper's ablation, scaled down
  rho-audit monitor                            follow a running sweep (Textual)
  rho-audit report RUN_OR_SWEEP --format html  a report card from the run store
  rho-audit diff --adapter ./adapters                   what a fine-tune did, from activation differences
  rho-audit investigate --adapter ./adapters --budget 5   an agent describes what a fine-tune did
"""


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rho-audit")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
def main(debug: bool) -> None:
    """Audit what fine-tuning did to a language model's behaviour.

    Dimensions (factual, toxicity, sycophancy, bias, reasoning, refusal, deception,
    overrefusal, and any installed third-party ones) score the model with teacher-forced
    confidence probes and short generations. Results go to a SQLite run store.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


for command in (run, runs, plugins, models, probes, train, judges, sweep, report, monitor, diff, investigate):
    main.add_command(command)


#: Signals that end a command like Ctrl-C does (the run is marked interrupted, finished work is
#: kept), instead of killing it mid-write and leaving its run marked running forever.
GRACEFUL_SIGNALS = ("SIGTERM", "SIGHUP")


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once
    raise Terminated(signum)


def _interrupted(err: KeyboardInterrupt) -> NoReturn:
    how = str(err) if isinstance(err, Terminated) else "Ctrl-C"
    click.echo(
        f"interrupted ({how}); finished dimensions are saved and the run is marked interrupted in "
        "the run store (a training run continues from its last checkpoint with --resume).",
        err=True,
    )
    sys.exit(128 + err.signum if isinstance(err, Terminated) else 130)


def cli() -> None:
    """Entry point: user errors become one paragraph and exit code 2, no traceback; Ctrl-C,
    SIGTERM and SIGHUP end the command cleanly with exit code 128 + the signal number."""
    debug = "--debug" in sys.argv
    for name in GRACEFUL_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:  # nohup's SIG_IGN stays
            signal.signal(signum, _raise_terminated)
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort as err:
        if isinstance(err.__cause__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            _interrupted(err.__cause__)
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except RhoAuditError as err:
        if debug:
            raise
        click.secho(f"error: {err}", fg="red", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt as err:
        _interrupted(err)
    except SystemExit as err:
        # A command that reports Ctrl-C itself (sweep) exits 130; a signal keeps its own code.
        terminated = err.__context__
        if err.code == 130 and isinstance(terminated, Terminated):
            sys.exit(128 + terminated.signum)
        raise

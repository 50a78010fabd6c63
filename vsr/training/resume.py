"""`python train.py resume=RUN [key=value ...]`: go on with a run from its folder alone.

Hydra saves every run's command-line overrides in RUN/.hydra/overrides.yaml; a resume repeats them,
then the ones given now (a key given again takes the new value, e.g. a longer trainer.max_steps),
and points the run at RUN and RUN/checkpoints/last.ckpt. The saved list is rewritten by the
resumed run, so a run resumed twice still remembers its first command.
"""

import re
import sys
from pathlib import Path

import yaml

from vsr.errors import UserError

SAFE_PATH = re.compile(r"[\w./:-]+")


def override_key(override: str) -> str:
    """The key an override sets: `+a.b=1`, `++a.b=1`, `~a.b` and `a.b=1` all set `a.b`."""
    return override.split("=", 1)[0].lstrip("+~")


def under(key: str, keys: set[str]) -> bool:
    """Whether `key` is one of `keys` or inside one of them (`callbacks.kill._target_` in `callbacks.kill`)."""
    return any(key == k or key.startswith(k + ".") for k in keys)


def hydra_value(path: str) -> str:
    """A path as a Hydra override value: quoted when it holds characters Hydra's grammar reads."""
    if SAFE_PATH.fullmatch(path):
        return path
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


def resumed_overrides(run: Path, given: list[str]) -> list[str]:
    """The overrides that go on with `run`: its saved ones, then `given` (which win per key)."""
    saved_file = run / ".hydra" / "overrides.yaml"
    last = run / "checkpoints" / "last.ckpt"
    if not saved_file.is_file():
        raise UserError(f"resume={run}: {saved_file} not found; resume= takes a folder train.py wrote "
                        "(its hydra.run.dir)")
    if not last.is_file():
        raise UserError(f"resume={run}: {last} not found: the run stopped before its first checkpoint; "
                        "start it again instead")
    if "-m" in given or "--multirun" in given:
        raise UserError("resume= goes on with one run; resume each run of a sweep by its own folder")
    saved = yaml.safe_load(saved_file.read_text()) or []
    new_keys = {override_key(o) for o in given if not o.startswith("-")}
    kept = [o for o in saved if not under(override_key(o), new_keys | {"ckpt_path", "resume"})]
    # `~KEY` of something the run had added (`+KEY...=`): leaving the addition out is the deletion
    added = {override_key(o) for o in saved if o.startswith("+")}
    given = [o for o in given if not (o.startswith("~") and any(under(a, {override_key(o)}) for a in added))]
    at = [] if "hydra.run.dir" in new_keys else [f"hydra.run.dir={hydra_value(str(run))}"]
    if "ckpt_path" not in new_keys:
        at.append(f"ckpt_path={hydra_value(str(last))}")
    return [*kept, *given, *at]


def expand_resume(argv: list[str]) -> list[str]:
    """sys.argv with a `resume=RUN` replaced by the run's saved overrides (module docstring)."""
    asked = [a for a in argv[1:] if a.startswith("resume=")]
    if not asked:
        return argv
    if len(asked) > 1:
        raise UserError("resume= is given twice; name one run folder")
    run = Path(asked[0].split("=", 1)[1].strip("'\""))
    given = [a for a in argv[1:] if a != asked[0]]
    overrides = resumed_overrides(run, given)
    print(f"resume: {run} with its saved overrides and yours: {' '.join(overrides)}", file=sys.stderr)
    return [argv[0], *overrides]

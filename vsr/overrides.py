"""Command-line overrides whose key is not in the config are refused in one line, before any work.

Hydra alone prints a page for `denoize=0.5` ("To append to your config use +denoize=0.5") and then
silently ignores `+denoize=0.5`. Each entry point applies `@refuse_unknown_keys(NAME)` outside its
`@hydra.main`, so the check also covers what Hydra refuses while composing, before the entry's
`one_line_errors` runs.
"""

import functools
import inspect
import itertools
import shutil
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.utils import get_object
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException, ValidationError

import vsr.conf  # registers the options the configs compose onto
from vsr.errors import UserError, nearest, one_line_errors
from vsr.options import describe_error

CONF = Path(__file__).resolve().parent / "conf"
# Sections whose every entry train.py instantiates (`+callbacks.probe._target_=...` adds a callback):
# any `+` addition under them is used, so it is allowed.
OPEN_SECTIONS = ("callbacks", "logger")


def check_overrides(config_name: str, argv: list[str], config_dir: Path = CONF) -> None:
    """Raise a UserError for the first override of `argv` (sys.argv of an entry point) that names
    no key of the composed config, or no option of its config group. `hydra.*` overrides, `++`
    additions and `+` additions that are used (an entry of an open section, a keyword of a node's
    `_target_`) pass."""
    args, unparsed = get_args_parser().parse_known_args(argv[1:])
    if not args.overrides or unparsed or args.config_path or args.config_dir or args.shell_completion:
        return  # hydra.main reports these, or composes from a config tree this check does not know
    name, script = args.config_name or config_name, command_name(argv[0])
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        try:
            overrides = OverridesParser.create(loader).parse_overrides(args.overrides)
            # the groups of the defaults list; model=... is a key (and refused) where they do not hold it
            groups = compose(name, return_hydra_config=True).hydra.runtime.choices
            selections = [o for o in overrides if o.is_hydra_override() or o.key_or_group in groups]
            for override in selections:
                if override.key_or_group in groups:
                    check_option(override, loader.get_group_options(override.key_or_group), script)
                check_launcher(override)
            keys, targets = config_keys([compose(name, overrides=variant) for variant in variants(selections)])
        except (HydraException, OmegaConfBaseException):
            return  # hydra.main fails the same way and says why
        if f"{name}_options" in vsr.conf.SCHEMAS:  # train.py's config has no typed options
            check_value_types(name, [o.input_line for o in overrides if not o.is_sweep_override()], script)
    added = set()
    for override in overrides:
        key = override.key_or_group
        if override in selections or key in keys or any(key.startswith(a + ".") for a in added):
            continue
        takes = keywords(key.rpartition(".")[0], targets) if override.is_add() else set()
        used = override.is_add() and (in_open_section(key, keys) or takes is None or key in takes)
        if override.is_force_add() or used:
            added.add(key)
            continue
        near = nearest(key, keys | (takes or set()) | {g for g in groups if not g.startswith("hydra")})
        hint = f"; did you mean {' or '.join(near)}?" if near else ", nor one with a similar name"
        raise UserError(f"{override.input_line}: no such option{hint} ({script} --help lists the options)")


def check_value_types(name: str, overrides: list[str], script: str) -> None:
    """Raise a UserError when an override gives a typed option (vsr/options.py) a value of another
    kind: Hydra's page for it names the key, the value and the schema's class."""
    try:
        compose(name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        wrong = wrong_value(err)
        if wrong is not None:
            raise UserError(f"{describe_error(wrong)} ({script} --help lists the options)") from None


def wrong_value(err: BaseException | None) -> ValidationError | None:
    """The OmegaConf error behind `err` when an override gave a typed option a value of another kind."""
    while err is not None and not isinstance(err, ValidationError):
        err = err.__cause__ or err.__context__
    return err


def command_name(argv0: str) -> str:
    """How the user ran the entry point: `python upscale.py`, or the console command `vsrlab-upscale`."""
    name = Path(argv0).name
    return f"python {name}" if name.endswith(".py") else name


def check_option(override, options: list[str], script: str) -> None:
    """Raise a UserError when a group selection (`model=rrdb`, `-m model=rrdb,rrdb_large`) names no
    option of the group (Hydra's message for it is a page: options, then the search path)."""
    values = list(override.sweep_iterator()) if override.is_discrete_sweep() else [override.value()]
    for value in itertools.chain.from_iterable(v if isinstance(v, list) else [v] for v in values):
        if isinstance(value, str) and value not in options:
            group = override.key_or_group
            near = nearest(value, options)
            hint = f"did you mean {' or '.join(near)}?" if near else f"choose one of: {', '.join(options)}"
            raise UserError(f"{override.input_line}: no {group} named {value}; {hint} ({script} --help lists them)")


def check_launcher(override) -> None:
    """Refuse `hydra/launcher=slurm` where SLURM cannot be reached (submitit fails with a traceback)."""
    if override.key_or_group == "hydra/launcher" and override.value() == "slurm" and not shutil.which("sbatch"):
        raise UserError(f"{override.input_line}: this machine has no SLURM (no `sbatch` on PATH); run the command on "
                        "the cluster's login node, or drop hydra/launcher=slurm to run the jobs here")


def variants(selections) -> list[list[str]]:
    """The group selections to compose: one list per combination of swept options, so a key that
    only some jobs of a `-m` sweep have counts as known. Swept `hydra.*` values (Optuna's search
    space) are left out: they change no key of the job's config."""
    choices = []
    for override in selections:
        if not override.is_sweep_override():
            choices.append([override.input_line])
        elif override.is_discrete_sweep() and not override.is_hydra_override():
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
    return [list(combination) for combination in itertools.product(*choices)]


def config_keys(configs) -> tuple[set[str], dict[str, str]]:
    """Every dotted key of `configs` (lists are leaves) and the `_target_` of each node that has one."""
    keys, targets = set(), {}

    def walk(node: dict, prefix: str) -> None:
        for name, value in node.items():
            key = f"{prefix}{name}"
            keys.add(key)
            if name == "_target_" and isinstance(value, str):
                targets[prefix[:-1]] = value
            if isinstance(value, dict):
                walk(value, key + ".")

    for config in configs:
        walk(OmegaConf.to_container(config, resolve=False), "")
    return keys, targets


def in_open_section(key: str, keys: set[str]) -> bool:
    section, _, rest = key.partition(".")
    return section in OPEN_SECTIONS and section in keys and bool(rest)


def keywords(node: str, targets: dict[str, str]) -> set[str] | None:
    """The keys `+node.NAME=...` can add because the `_target_` of `node` takes NAME as a keyword
    (`+data.val.max_speed=16`: SampleClips(max_speed=...)); None: any (**kwargs, or a target that
    does not import, which the run reports when it builds it)."""
    if node not in targets:
        return set()
    try:
        parameters = inspect.signature(get_object(targets[node])).parameters.values()
    except Exception:
        return None
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return {f"{node}.{p.name}" for p in parameters}


def refuse_unknown_keys(config_name: str):
    """Decorate an entry point's main, outside `@hydra.main`: check sys.argv first (as it is when
    main is called, so after any rewriting of it), exit 2 with one line on a mistake."""

    def decorate(main):
        @functools.wraps(main)
        def checked(*args, **kwargs):
            one_line_errors(check_overrides)(config_name, sys.argv)
            return main(*args, **kwargs)

        return checked

    return decorate

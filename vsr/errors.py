"""One exception type for mistakes a user can fix, printed as one line by the entry points."""

import difflib
import functools
import sys


class UserError(ValueError):
    """A bad option, path or input. The message names it and says how to fix it."""


def check_choice(option: str, value, allowed) -> None:
    """Raise a UserError naming `option` when `value` is not one of `allowed`."""
    if value not in allowed:
        choices = ", ".join(str(a) for a in allowed)
        raise UserError(f"{option}={value} is not supported; choose one of: {choices}")


def is_number(value) -> bool:
    """An int or float option value (not text, not true/false, which Python counts as integers)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(option: str, value, low: float, high: float | None = None, integer: bool = False,
                 hint: str = "") -> None:
    """Raise a UserError naming `option` unless `value` is a number (an integer if `integer`) in
    `low` .. `high`."""
    if not (is_number(value) and (not integer or int(value) == value) and low <= value
            and (high is None or value <= high)):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise UserError(f"{option}={value} must be {'an integer' if integer else 'a number'} {bounds}{hint}")


# YAML's spellings of true and false, as users type them after `key=` (Hydra reads only true/false
# as booleans and passes the rest on as text or numbers, where any non-empty text counts as true).
FLAG_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def check_flag(option: str, value) -> bool:
    """The boolean `option=value`: true/false, yes/no, on/off or 1/0 in any case; else a UserError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in FLAG_WORDS:
        return FLAG_WORDS[str(value).strip().lower()]
    raise UserError(f"{option}={value} must be true or false (yes/no, on/off and 1/0 work too)")


def nearest(word: str, candidates) -> list[str]:
    """The candidates closest to `word` by difflib (ties and near-ties too), best first. A key's own
    parents (`trainer` for `trainer.foo`) are left out: they are close only by their shared prefix."""
    scored = sorted((-difflib.SequenceMatcher(None, word, c).ratio(), c) for c in candidates
                    if not word.startswith(c + "."))
    return [c for score, c in scored[:3] if -score >= max(0.6, -scored[0][0] - 0.05)]


def find_user_error(err: BaseException | None) -> UserError | None:
    """The UserError behind `err`, also when a library wrapped it (Hydra's instantiate does)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def one_line_errors(main):
    """Wrap an entry point so a UserError exits with status 2 and a single line on stderr."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except Exception as err:
            user_error = find_user_error(err)
            if user_error is None:
                raise
            print(f"error: {user_error}", file=sys.stderr)
            sys.exit(2)

    return wrapper

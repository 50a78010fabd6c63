"""What train.py shows on the console: each line once, no framework advertising or noise the
user cannot act on."""

import logging
import warnings


class DropAdverts(logging.Filter):
    """Lightning logs a "💡 Tip" advertising its cloud logger at every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡")


def quiet_framework_console(resuming: bool = False) -> None:
    # Lightning gives its "lightning" logger a console handler of its own; Hydra's root handlers
    # (console and RUN/train.log) print every Lightning line too, so each appeared twice.
    logging.getLogger("lightning").handlers.clear()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(DropAdverts())
    # Lightning's own use of a torch API that torch deprecated: nothing the user can change.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    if resuming:  # a resumed run writes into its own checkpoint folder, as it should
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")

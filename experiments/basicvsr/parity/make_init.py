"""The weights both parity trainers start from: BasicSR's BasicVSR at the parity size, seeded, with the last
convolution of each SPyNet level zeroed so training starts from zero flow (no pretrained SPyNet exists here).

    .venv/bin/python experiments/basicvsr/parity/make_init.py runs/parity/init_basicsr.pth
    .venv/bin/python export.py checkpoint=runs/parity/init_basicsr.pth output_dir=runs/parity/init
"""
import sys
from pathlib import Path

import torch
from basicsr.archs.basicvsr_arch import BasicVSR

sys.path.insert(0, str(Path(__file__).parent))
from basicsr_train import NUM_BLOCK, NUM_FEAT  # noqa: E402

torch.manual_seed(0)
net = BasicVSR(num_feat=NUM_FEAT, num_block=NUM_BLOCK)
for level in net.spynet.basic_module:
    torch.nn.init.zeros_(level.basic_module[-1].weight)
    torch.nn.init.zeros_(level.basic_module[-1].bias)
out = Path(sys.argv[1])
out.parent.mkdir(parents=True, exist_ok=True)
torch.save({"params": net.state_dict()}, out)
print(f"{out}: {sum(p.numel() for p in net.parameters()):,} parameters")

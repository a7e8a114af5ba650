"""Memory and time of the loops students write, under each allocator a grading kernel may
have, beside plain Python (glibc's default allocator).

EE046211's Task 1.2 makes 10,000 products of a fresh 512 x 512 ``torch.randn`` matrix with
a vector. Written so that each product is kept (as a column, or as a numpy array), glibc's
default allocator, whose mmap threshold rises after the first large block is freed, grows
the heap by about 1 MB a product, past the grader's 8 GB limit, where Colab (which preloads
tcmalloc) needs half a gigabyte. Grading kernels preload the system's tcmalloc where it has
one, and otherwise fix glibc's mmap threshold (``autograder/sandboxes/sandbox.py``), which
is as frugal but slower to allocate large tensors: the last row, a small CNN trained on
CPU, shows by how much. Each loop runs in a fresh interpreter; the peak resident memory is
the operating system's figure for the child (``wait4``), not the child's own account.

    python bench/allocator.py [--products 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from autograder.sandboxes.resources import Resources  # noqa: E402
from autograder.sandboxes.sandbox import KERNEL_ENV, kernel_env, tcmalloc  # noqa: E402

LOOP = "import torch\nys = []\nfor _ in range({products}):\n    {statement}\n"
LOOPS = {
    "products kept as 512 x 1 columns": "ys.append(torch.randn(512, 512) @ torch.randn(512, 1))",
    "products kept as numpy arrays": "ys.append((torch.randn(512, 512) @ torch.randn(512)).numpy())",
    "a statistic of each (the reference)": "ys.append(float((torch.randn(512, 512) @ torch.randn(512)).std()))",
}
TRAINING = """import torch
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                          torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                          torch.nn.Flatten(), torch.nn.Linear(64 * 8 * 8, 43))
optimizer = torch.optim.Adam(net.parameters())
x, y = torch.randn(2048, 3, 32, 32), torch.randint(0, 43, (2048,))
for epoch in range(3):
    for i in range(0, 2048, 64):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x[i:i + 64]), y[i:i + 64]).backward()
        optimizer.step()
"""


def run(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak resident MB of ``code`` in a fresh interpreter."""
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"the loop failed (status {status}): {code}")
    return time.monotonic() - start, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    args = parser.parse_args()
    plain = {"PATH": os.environ.get("PATH", ""), "HOME": str(Path.home())}
    fixed = {key: value for key, value in KERNEL_ENV.items() if key.startswith("MALLOC_")}
    settings = {"glibc's default (plain Python)": plain, "glibc, fixed mmap threshold": {**plain, **fixed}}
    library = tcmalloc()
    if library:
        settings["tcmalloc (preloaded)"] = {**plain, "LD_PRELOAD": library}
    chosen = kernel_env(str(Path.home()), Resources())
    here = f"tcmalloc, {chosen['LD_PRELOAD']}" if "LD_PRELOAD" in chosen else "glibc, fixed threshold (no tcmalloc)"
    print(f"grading kernels on this machine: {here}")
    rows = {f"{words} ({args.products:,})": LOOP.format(products=args.products, statement=statement)
            for words, statement in LOOPS.items()}
    rows["CNN trained on CPU (3 epochs of 2,048 pictures)"] = TRAINING
    print(f"{'':52}" + "".join(f"{name:>32}" for name in settings))
    for words, code in rows.items():
        cells = [run(code, env) for env in settings.values()]
        print(f"{words:52}" + "".join(f"{f'{mb:,.0f} MB {seconds:6.1f} s':>32}" for seconds, mb in cells))


if __name__ == "__main__":
    main()

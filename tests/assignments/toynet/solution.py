"""The toy network assignment's solution, as notebook cells (tests build notebooks from them)."""

LOAD = '''
import numpy as np
import torch
from torch import nn

torch.manual_seed(0)


def load(folder):
    with np.load(f"{folder}/blobs.npz") as data:
        return {key: data[key].astype(np.float32 if key.startswith("x") else np.int64) for key in data.files}


data = load(DATA_DIR)
x, y = torch.tensor(data["x_train"]), torch.tensor(data["y_train"])
'''
NET = "net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))"
OPT = "opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)"
TRAIN = '''
EPOCHS = 60
for epoch in range(EPOCHS):
    order = torch.randperm(len(x))
    for i in range(0, len(x), 32):
        chosen = order[i:i + 32]
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[chosen]), y[chosen]).backward()
        opt.step()
'''
CELLS = [LOAD, NET, OPT, TRAIN]

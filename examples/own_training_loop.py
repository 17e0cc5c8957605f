"""Your own PyTorch training loop, logged with rnn_tui.RunWriter so rnn-tui can look inside.

    python examples/own_training_loop.py --out runs/mine          # trains a small char LSTM
    rnn-tui watch runs/mine                                       # in another terminal, meanwhile

Nothing here is rnn-tui's except the four RunWriter lines: the model, the data and the loop are
plain PyTorch, as in any char-RNN script.
"""

import argparse
import math

import torch
from torch import nn

from rnn_tui import RunWriter

TEXT = ("the cat that we saw yesterday was happy. the dogs that she fed were hungry. "
        "a bird sang near the old river while the children slept. ") * 40


class CharLSTM(nn.Module):
    def __init__(self, vocab_size: int, embed: int = 32, hidden: int = 64):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab_size)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embedding(x), state)
        return self.decoder(out), state


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="runs/mine")
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    torch.manual_seed(0)
    itos = sorted(set(TEXT))
    data = torch.tensor([itos.index(c) for c in TEXT])
    model = CharLSTM(len(itos))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    seq, batch = 64, 16
    with RunWriter(args.out, vocab=itos, level="char", corpus="a toy text") as run:
        for step in range(1, args.steps + 1):
            starts = torch.randint(0, len(data) - seq - 1, (batch,))
            x = torch.stack([data[s:s + seq] for s in starts])
            y = torch.stack([data[s + 1:s + seq + 1] for s in starts])
            logits, _ = model(x)
            loss = nn.functional.cross_entropy(logits.reshape(-1, len(itos)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            run.log(step, loss=loss.item(), grad_norm=grad_norm.item(), lr=3e-3,
                    perplexity=math.exp(loss.item()))  # a metric of your own: charted by its name
            if step % 100 == 0 or step == args.steps:
                run.checkpoint(model, step=step)
    print(f"done: rnn-tui {args.out}")


if __name__ == "__main__":
    main()

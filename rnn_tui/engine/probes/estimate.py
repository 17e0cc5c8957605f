"""The Jacobian map at real lengths: chosen rows of ||d state_t / d state_k||_F, estimated.

The exact map (recurrence._product_log_norms) multiplies D x D matrices for every pair
k <= t: T^2 D^3 work. Here each row t is pushed backwards through the per-step Jacobians
J_k = d state_k / d state_(k-1) as a block of P probe vectors instead of the identity:

    Z_t = W_t^T,   Z_(k-1) = Z_k J_k,   norms[t, k-1] ~ ||Z_(k-1)||_F

which costs D^2 P per step and row instead of D^3. All rows go back together as one
[sum of blocks, D] matrix, so each step is one GEMM.

The probe block W_t = [Q_t, s * Omega_t] (a Hutch++-style split) is what keeps the estimate
close to the exact norm with a few dozen probes:

- Q_t (D x m, orthonormal) spans the directions the recurrence has amplified the most by step
  t: a forward power iteration with re-orthonormalisation (the Lyapunov-vector recursion)
  Q_t = qr(J_t Q_(t-1)). Far from the diagonal the product J_t ... J_(k+1) is close to low
  rank with its range there, so ||Q_t^T J_t...J_(k+1)|| is nearly all of its norm, exactly.
- Omega_t (D x p) is an orthonormal basis of a random p-dimensional subspace of the rest,
  scaled by s = sqrt((D - m) / p): E[s^2 Omega Omega^T] is the projector onto the rest, so
  ||W_t^T A||_F^2 is an unbiased estimate of ||A||_F^2 for any A, and exact when p = D - m.
  Near the diagonal, where the product is far from low rank, this part carries the norm and
  its relative variance is small (it shrinks with the product's effective rank).

The last row (t = T - 1) can be pushed with the identity (W = I, D probes): exactly, to the
rounding of the arithmetic. Everything runs in float32 by default with each block
renormalised at every step (its log-scale kept apart), so long products neither overflow nor
underflow; the per-step Jacobians are built analytically from the trace's internals (checked
against torch.func.jacrev in the tests).
"""

from __future__ import annotations

import math

import torch

_FLUSH = 1e-20  # (x + _FLUSH) - _FLUSH is x to ~1e-27 absolute, and 0 below that: no subnormals
_RENORM_EVERY = 4  # steps between renormalising (and flushing) the probe blocks


class StepJacobians:
    """J_t = d state_t / d state_(t-1) of one layer, from the step-wise run's values.

    A probe block Z [M, D] is held as its h-columns and, for an LSTM, its c-columns apart
    (`zh`, `zc`, each [M, H], contiguous). `left(zh, zc, t, out_h, out_c)` is Z @ J_t;
    `right(V, t)` is J_t @ V for a thin V [D, m]; `frobenius()` is ||J_t||_F for every t.
    Dense blocks (H x H) are built one step at a time, never all T of them at once.
    """

    def __init__(self, model, layer: int, xs: torch.Tensor, prev: torch.Tensor, h: torch.Tensor,
                 internals: dict[str, torch.Tensor], dtype=torch.float32):
        cfg = model.config
        self.cell, H = cfg.cell, cfg.hidden
        self.H = H
        self.D = 2 * H if self.cell == "lstm" else H
        self.dtype = dtype
        _, w_hh, _, b_hh = (w.detach() for w in model.layer_weights(layer))
        self.W = w_hh.to(dtype).contiguous()  # [G*H, H]
        h = h.detach().to(dtype)
        prev = prev.detach().to(dtype)
        self.T = h.shape[0]
        self._tmp: torch.Tensor | None = None
        self._dense: tuple[int, torch.Tensor] | None = None  # the last step's dense block, reused
        if self.cell == "rnn":
            self.d = 1.0 - h * h if cfg.nonlinearity == "tanh" else (h > 0).to(dtype)  # [T, H]
            return
        self.blocks = self.W.view(-1, H, H)  # [G, H, H]: lstm i, f, g, o; gru r, z, n
        if self.cell == "lstm":
            i, f, g, o, c = (internals[n].detach().to(dtype) for n in ("i", "f", "g", "o", "c"))
            c_prev = prev[:, H:]
            tc = torch.tanh(c)
            dtc = o * (1.0 - tc * tc)  # d h_t / d c_t
            # d c_t / d h_(t-1) = sum over the blocks i, f, g of diag(gamma) W_block;
            # d h_t / d h_(t-1) = diag(tanh(c_t) o'(...)) W_o + diag(dtc) d c_t / d h_(t-1).
            gam = torch.stack([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g),
                               torch.zeros_like(i)], 1)  # [T, 4, H]
            alpha = dtc[:, None, :] * gam
            alpha[:, 3] = tc * o * (1 - o)
            self.coef_h, self.coef_c = alpha, gam  # rows of J's h- and c-outputs, per block
            self.dtc = dtc
            self.a = dtc * f  # d h_t / d c_(t-1) (diagonal)
            self.f = f  # d c_t / d c_(t-1) (diagonal)
        else:  # gru
            r, z, n = (internals[k].detach().to(dtype) for k in ("r", "z", "n"))
            h_n = prev @ self.W[2 * H:].T + b_hh[2 * H:].to(dtype)  # W_hn h_(t-1) + b_hn
            dn = (1 - z) * (1 - n * n)
            # d h_t / d h_(t-1) = diag(z) + diag(c_r) W_hr + diag(c_z) W_hz + diag(c_n) W_hn
            self.coef = torch.stack([dn * h_n * r * (1 - r), (prev - n) * z * (1 - z), dn * r], 1)  # [T, 3, H]
            self.z = z

    @staticmethod
    def _combine(blocks: torch.Tensor, coef: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """sum over blocks b of diag(coef[b]) blocks[b]: [H, H]."""
        out = torch.mul(blocks[0], coef[0][:, None], out=out)
        for b in range(1, blocks.shape[0]):
            out.addcmul_(blocks[b], coef[b][:, None])
        return out

    def dense(self, t: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The dense part of J_t: rnn/gru (J_t, None); lstm (d h_t / d h_(t-1), d c_t / d h_(t-1)),
        whose c_(t-1) columns are the diagonals a_t and f_t."""
        if self.cell == "rnn":
            return self.d[t][:, None] * self.W, None
        if self.cell == "lstm":
            B = self._combine(self.blocks[:3], self.coef_c[t, :3])
            A = torch.mul(self.blocks[3], self.coef_h[t, 3][:, None]).addcmul_(B, self.dtc[t][:, None])
            return A, B
        J = self._combine(self.blocks, self.coef[t])
        J.diagonal().add_(self.z[t])
        return J, None

    def _scratch(self, like: torch.Tensor, i: int) -> torch.Tensor:
        if self._tmp is None or self._tmp.shape[1] < like.shape[0] or self._tmp.shape[2] != like.shape[1]:
            self._tmp = torch.empty(2, like.shape[0], like.shape[1], dtype=like.dtype, device=like.device)
        return self._tmp[i, :like.shape[0]]

    def left(self, zh, zc, t: int, out_h, out_c) -> None:
        """[out_h | out_c] = [zh | zc] @ J_t (zc, out_c None unless LSTM; distinct storage)."""
        if self.cell == "rnn":
            torch.mm(torch.mul(zh, self.d[t], out=self._scratch(zh, 0)), self.W, out=out_h)
            return
        if self._dense is None or self._dense[0] != t:
            # rnn: nothing to build; gru: J_t; lstm: only d c_t / d h_(t-1) (B), since
            # [zh | zc] [A; B] = (zh * coef_o) W_o + (zh * dtc + zc) B with A = diag(coef_o) W_o +
            # diag(dtc) B: the same two GEMMs, one H x H matrix fewer to build each step.
            B = self._combine(self.blocks[:3], self.coef_c[t, :3]) if self.cell == "lstm" else self.dense(t)[0]
            self._dense = (t, B)
        B = self._dense[1]
        if self.cell == "lstm":
            u = torch.mul(zh, self.coef_h[t, 3], out=self._scratch(zh, 0))
            v = torch.mul(zh, self.dtc[t], out=self._scratch(zh, 1)).add_(zc)
            torch.mm(u, self.blocks[3], out=out_h)
            out_h.addmm_(v, B)
            torch.mul(zh, self.a[t], out=out_c)
            out_c.addcmul_(zc, self.f[t])
            return
        torch.mm(zh, B, out=out_h)

    def right(self, V: torch.Tensor, t: int) -> torch.Tensor:
        """J_t @ V for a thin V [D, m], without building J_t."""
        H = self.H
        if self.cell == "rnn":
            return self.d[t][:, None] * (self.W @ V)
        if self.cell == "lstm":
            vh, vc = V[:H], V[H:]
            U = (self.W @ vh).view(4, H, -1)  # every block times v_h
            dh = (self.coef_h[t][:, :, None] * U).sum(0) + self.a[t][:, None] * vc
            dc = (self.coef_c[t][:, :, None] * U).sum(0) + self.f[t][:, None] * vc
            return torch.cat([dh, dc])
        U = (self.W @ V).view(3, H, -1)
        return (self.coef[t][:, :, None] * U).sum(0) + self.z[t][:, None] * V

    def frobenius(self) -> torch.Tensor:
        """||J_t||_F for every t, float64 [T], without building any J_t: row i of a block sum
        sum_b c_b,i W_b[i, :] has squared norm c_i^T G_i c_i with G_i the blocks' row Gram."""
        if self.cell == "rnn":
            row_sq = self.W.double().square().sum(1)  # ||W_i,:||^2
            return (self.d.double().square() @ row_sq).sqrt()
        blocks = self.blocks.double()  # [G, H, H]
        gram = torch.einsum("bij,cij->ibc", blocks, blocks)  # [H, G, G]

        def quad(coef):  # coef [T, G, H] -> sum_i c_i^T G_i c_i, [T]
            c = coef.double().transpose(1, 2)  # [T, H, G]
            return torch.einsum("tib,ibc,tic->t", c, gram, c)

        if self.cell == "lstm":
            sq = (quad(self.coef_h) + quad(self.coef_c) + self.a.double().square().sum(1)
                  + self.f.double().square().sum(1))
        else:
            c = self.coef.double()  # [T, 3, H]
            diag = torch.stack([b.diagonal() for b in blocks])  # [3, H]: W_b[i, i]
            z = self.z.double()
            sq = quad(c) + (z * z).sum(1) + 2 * (z * (c * diag[None]).sum(1)).sum(1)
        return sq.clamp_min(0).sqrt()


def dominant_directions(jac: StepJacobians, rows: list[int], m: int,
                        generator: torch.Generator) -> dict[int, torch.Tensor]:
    """Q_t [D, m] for each t in rows: the forward power iteration Q_t = qr(J_t Q_(t-1))."""
    D = jac.D
    dev = jac.W.device
    Q = torch.linalg.qr(torch.randn(D, m, generator=generator, dtype=torch.float64).to(dev, jac.dtype))[0]
    wanted = set(rows)
    out: dict[int, torch.Tensor] = {}
    if 0 in wanted:
        out[0] = Q
    for t in range(1, max(rows) + 1):
        Qn, R = torch.linalg.qr(jac.right(Q, t))
        # A direction the step killed (a zero column) would leave Q rank-deficient: keep the
        # old one there, so Q stays orthonormal and the estimate unbiased.
        bad = R.diagonal().abs() <= 1e-30
        if bool(bad.any()):
            Qn = torch.linalg.qr(torch.where(bad[None, :], Q, Qn))[0]
        Q = Qn.add_(_FLUSH).sub_(_FLUSH)  # no subnormals (see _Blocks.step)
        if t in wanted:
            out[t] = Q
    return out


def probe_blocks(jac: StepJacobians, groups: list[tuple[list[int], int]], m: int,
                 generator: torch.Generator) -> list[torch.Tensor]:
    """W_t^T for each (rows, probes) group, stacked [R, P, D]: m dominant directions and
    P - m scaled random ones (the identity where P >= D: exact)."""
    D = jac.D
    dev, dt = jac.W.device, jac.dtype
    need = [t for rows, probes in groups if probes < D for t in rows]
    Q = dominant_directions(jac, need, m, generator) if need else {}
    out = []
    for rows, probes in groups:
        if probes >= D:
            out.append(torch.eye(D, dtype=dt, device=dev).expand(len(rows), D, D))
            continue
        p = probes - m
        G = torch.randn(len(rows), D, p, generator=generator, dtype=torch.float64).to(dev, dt)
        Qs = torch.stack([Q[t] for t in rows])  # [R, D, m]
        for _ in range(2):  # the complement of each Q_t (twice: orthogonal to float32 rounding)
            G = G - Qs @ (Qs.transpose(1, 2) @ G)
        Omega = torch.linalg.qr(G)[0] * math.sqrt((D - m) / p)
        out.append(torch.cat([Qs, Omega], 2).transpose(1, 2))  # [R, P, D]
    return out


class _Blocks:
    """Row blocks of equal size P going back together: [R * P, D] as h- and c-column halves."""

    def __init__(self, jac: StepJacobians, rows: list[int], W: torch.Tensor, T: int):
        self.rows = rows  # descending: the active blocks are always a prefix
        self.P = W.shape[1]
        dev, dt, H = jac.W.device, jac.dtype, jac.H
        R = len(rows)
        self.init = W.reshape(R * self.P, jac.D)
        two = jac.cell == "lstm"
        self.h = [torch.empty(R * self.P, H, dtype=dt, device=dev) for _ in range(2)]
        self.c = [torch.empty(R * self.P, H, dtype=dt, device=dev) for _ in range(2)] if two else None
        self.cur = 0
        self.active = 0
        self.log_scale = torch.zeros(R, dtype=torch.float64, device=dev)
        self.logs = torch.full((R, T), float("nan"), dtype=torch.float64, device=dev)
        self.flush = torch.full((1, 1, 1), _FLUSH, dtype=dt, device=dev)
        self.steps = 0

    def step(self, jac: StepJacobians, k: int) -> None:
        """Start the rows t = k, push every active block through J_k, record column k - 1."""
        P, H = self.P, jac.H
        while self.active < len(self.rows) and self.rows[self.active] == k:
            a = slice(self.active * P, (self.active + 1) * P)
            self.h[self.cur][a] = self.init[a, :H]
            if self.c is not None:
                self.c[self.cur][a] = self.init[a, H:]
            self.active += 1
        n_act = self.active
        if n_act == 0:
            return
        n = n_act * P
        src, dst = self.cur, 1 - self.cur
        h_out = self.h[dst][:n]
        c_out = self.c[dst][:n] if self.c is not None else None
        jac.left(self.h[src][:n], self.c[src][:n] if self.c is not None else None, k, h_out, c_out)
        self.cur = dst
        sq = torch.linalg.vector_norm(h_out.view(n_act, P * H), dim=1).double().square()
        if c_out is not None:
            sq += torch.linalg.vector_norm(c_out.view(n_act, P * H), dim=1).double().square()
        norm = sq.sqrt()
        log_norm = norm.log() + self.log_scale[:n_act]
        self.logs[:n_act, k - 1] = log_norm
        # Every few steps (or when a block drifts far from 1), renormalise every block to norm 1
        # (its log-scale keeps the size), so a long decay or growth never leaves float32's
        # range; zero stays zero (-inf), NaN stays NaN. And flush what fell below ~1e-27 of the
        # block to zero: (x / norm + F) - F. Directions that decayed that far add nothing to
        # the norm, and as float32 subnormals they would slow every later multiply tens of times.
        self.steps += 1
        if self.steps % _RENORM_EVERY and not bool(((norm > 1e10) | (norm < 1e-10)).any()):
            return
        ok = torch.isfinite(norm) & (norm > 0)
        inv = torch.where(ok, 1.0 / norm, torch.ones_like(norm)).to(h_out.dtype)[:, None, None]
        for part in (h_out, c_out):
            if part is not None:
                blocks = part.view(n_act, P, H)
                torch.addcmul(self.flush, blocks, inv, out=blocks).sub_(_FLUSH)
        self.log_scale[:n_act] = torch.where(ok, log_norm, self.log_scale[:n_act])


def row_log_norms(jac: StepJacobians, groups: list[tuple[list[int], torch.Tensor]],
                  T: int) -> dict[int, torch.Tensor]:
    """ln ||W_t^T J_t ... J_(k+1)||_F for every row t and every k < t (float64 [T], NaN from
    t on). `groups` are (rows, blocks [R, P, D]) of one probe count each (the exact last row:
    the identity, P = D); they go back through the same steps together."""
    sets = []
    for rows, W in groups:
        order = sorted(range(len(rows)), key=lambda i: -rows[i])
        sets.append(_Blocks(jac, [rows[i] for i in order], W[order], T))
    top = max(s.rows[0] for s in sets)
    for k in range(top, 0, -1):
        for s in sets:
            s.step(jac, k)
    out: dict[int, torch.Tensor] = {}
    for s in sets:
        for i, t in enumerate(s.rows):
            out[t] = s.logs[i]
    return out

"""Compact L-BFGS Hessian-vector product (Byrd, Nocedal & Schnabel 1994), as FedRecover uses it."""

from __future__ import annotations

import numpy as np


def lbfgs_hvp(S: np.ndarray, Y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """H̃v for the L-BFGS Hessian approximation built from pairs S = [s_i], Y = [y_i] (columns, oldest first).

    A = SᵀY, D = diag(A), L = strictly lower part of A, σ = y_lastᵀ s_last / s_lastᵀ s_last,
    M = [[σ SᵀS, L], [Lᵀ, −D]], H̃v = σv − [σS, Y] M⁻¹ [σ Sᵀv; Yᵀv].
    """
    if S.shape[1] == 0:
        return np.zeros_like(v)
    s_last, y_last = S[:, -1], Y[:, -1]
    sigma = float(y_last @ s_last) / float(s_last @ s_last)
    A = S.T @ Y
    L = np.tril(A, k=-1)
    D = np.diag(np.diag(A))
    M = np.block([[sigma * (S.T @ S), L], [L.T, -D]])
    rhs = np.concatenate([sigma * (S.T @ v), Y.T @ v])
    coeffs = np.linalg.solve(M, rhs)
    return sigma * v - np.hstack([sigma * S, Y]) @ coeffs


def bfgs_matrix(S: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The explicit BFGS matrix from B₀ = σI and the same pairs (for tests of ``lbfgs_hvp``)."""
    s_last, y_last = S[:, -1], Y[:, -1]
    B = np.eye(S.shape[0]) * float(y_last @ s_last) / float(s_last @ s_last)
    for i in range(S.shape[1]):
        s, y = S[:, i], Y[:, i]
        Bs = B @ s
        B = B - np.outer(Bs, Bs) / float(s @ Bs) + np.outer(y, y) / float(y @ s)
    return B

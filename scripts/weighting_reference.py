"""Reference coefficients of the gradient methods on two fixed sets of gradients, computed
independently of Hydra's code from the formulas of the reference implementations (LibMTL's
weighting/*.py, TorchJD's UPGrad) with numpy alone, by other solution methods: exact
enumeration of active sets (MGDA's min-norm point, UPGrad's projections), mirror descent
(CAGrad's dual), explicit gradients (IMTL-G), and Newton in log space (Nash-MTL, FairGrad).
Prints Rust arrays for tests/weighting_pinned.rs.

    target/py-interop/bin/python scripts/weighting_reference.py
"""
import itertools

import numpy as np

np.set_printoptions(precision=17)

# Two fixed sets of gradients (rows): three tasks with a conflict, two tasks that agree.
G_CONFLICT = np.array([[1.0, 0.0, 0.5, 0.2], [-0.6, 1.0, 0.0, 0.1], [0.2, 0.3, 1.0, -0.4]])
G_AGREE = np.array([[2.0, 0.5, 0.0], [1.0, 1.5, 0.3]])


def min_norm(M):
    """argmin over the simplex of αᵀMα, by enumerating supports (KKT solved exactly)."""
    T = len(M)
    best = None
    for k in range(1, T + 1):
        for S in itertools.combinations(range(T), k):
            S = list(S)
            A = np.zeros((k + 1, k + 1))
            A[:k, :k] = M[np.ix_(S, S)]
            A[:k, k] = -1.0
            A[k, :k] = 1.0
            rhs = np.zeros(k + 1)
            rhs[k] = 1.0
            try:
                sol = np.linalg.solve(A, rhs)
            except np.linalg.LinAlgError:
                continue
            a = np.zeros(T)
            a[S] = sol[:k]
            if (a < -1e-12).any():
                continue
            if ((M @ a) < sol[k] - 1e-12).any():
                continue
            v = a @ M @ a
            if best is None or v < best[0]:
                best = (v, a)
    return best[1]


def mgda(G):
    """LibMTL's MGDA (mgda_gn='none'): the min-norm point α, the coefficients of the g_t."""
    M = G @ G.T
    return min_norm(M)


def cagrad(G, calpha=0.5, rescale=1):
    """LibMTL's CAGrad formula; the dual solved by mirror descent instead of SLSQP."""
    T = len(G)
    GG = G @ G.T
    scale = np.sqrt(np.diag(GG) + 1e-4).mean()
    GG = GG / scale**2
    Gg = GG.mean(1)
    gg = Gg.mean()
    c = np.sqrt(gg + 1e-4) * calpha
    w = np.ones(T) / T
    for it in range(200000):
        q = np.sqrt(w @ GG @ w + 1e-4)
        grad = Gg + c * (GG @ w) / q
        w = w * np.exp(-0.05 * grad)
        w /= w.sum()
    gw_norm = np.sqrt(w @ GG @ w + 1e-4)
    lmbda = c / (gw_norm + 1e-4)
    coef = 1.0 / T + w * lmbda
    return coef / (1 + calpha**2) if rescale == 1 else coef


def imtl(G):
    """LibMTL's IMTL-G on explicit gradients."""
    U = G / np.linalg.norm(G, axis=1, keepdims=True)
    D = G[0:1] - G[1:]
    Ud = U[0:1] - U[1:]
    alpha = G[0] @ Ud.T @ np.linalg.inv(D @ Ud.T)
    return np.concatenate([[1 - alpha.sum()], alpha])


def power_fair(M, p):
    """w > 0 with (Mw)_t = w_t^(-1/p), by Newton on u = log w (p = 1: Nash-MTL's α)."""
    T = len(M)
    u = np.zeros(T)
    for it in range(500):
        w = np.exp(u)
        r = M @ w - w ** (-1.0 / p)
        J = M * w[None, :] + np.diag((1.0 / p) * w ** (-1.0 / p))
        step = np.linalg.solve(J, r)
        t = 1.0
        while np.linalg.norm(M @ np.exp(u - t * step) - np.exp(u - t * step) ** (-1.0 / p)) > np.linalg.norm(r) and t > 1e-8:
            t /= 2
        u = u - t * step
    return np.exp(u)


def aligned_mtl(G):
    """LibMTL's Aligned-MTL: B = sqrt(λ_min) V Σ^(-1/2) Vᵀ, α = column sums of B."""
    M = G @ G.T
    lmbda, V = np.linalg.eigh(M)
    keep = lmbda > lmbda.max() * len(M) * np.finfo(np.float32).eps
    lmbda, V = lmbda[keep], V[:, keep]
    B = np.sqrt(lmbda.min()) * V @ np.diag(1 / np.sqrt(lmbda)) @ V.T
    return B.sum(0)


def project(M, lower):
    """TorchJD's UPGrad projection argmin_{v ≥ lower} vᵀMv, by enumerating which entries sit
    at their bound (KKT: (Mv)_j = 0 where free, ≥ 0 where bound)."""
    T = len(M)
    best = None
    for k in range(0, T + 1):
        for F in itertools.combinations(range(T), k):
            F = list(F)
            B = [j for j in range(T) if j not in F]
            v = lower.copy()
            if F:
                try:
                    v[F] = np.linalg.solve(M[np.ix_(F, F)], -M[np.ix_(F, B)] @ lower[B])
                except np.linalg.LinAlgError:
                    continue
            if (v < lower - 1e-12).any() or ((M @ v)[B] < -1e-12).any():
                continue
            val = v @ M @ v
            if best is None or val < best[0] - 1e-15:
                best = (val, v)
    return best[1]


def upgrad(G):
    M = G @ G.T
    T = len(M)
    return sum(project(M, np.eye(T)[i]) for i in range(T)) / T


def pcgrad2(G):
    """PCGrad for two tasks (the order does not matter): coefficients of g_1, g_2."""
    M = G @ G.T
    c = np.eye(2)
    for i, j in [(0, 1), (1, 0)]:
        if M[i, j] < 0:
            c[i, j] -= M[i, j] / M[j, j]
    return c.sum(0)


def nash_libmtl(G, max_norm=1.0):
    """LibMTL's Nash_MTL: alpha on GTG / ||GTG||_F, loss sum(alpha * L) backward (heads
    weighted by alpha), the shared gradient clipped to max_norm. Returns (shared coefficients,
    heads' weights)."""
    M = G @ G.T
    alpha = power_fair(M / np.linalg.norm(M), 1.0)
    norm = np.linalg.norm(alpha @ G)
    return alpha * min(1.0, max_norm / norm), alpha


# Three steps of explicit gradients and losses for the methods that keep state across steps.
STEPS = [
    (G_CONFLICT, np.array([0.8, 1.3, 0.5])),
    (0.5 * G_CONFLICT + 0.1 * np.roll(G_CONFLICT, 1, axis=1), np.array([0.6, 1.1, 0.45])),
    (np.array([[0.3, -0.2, 0.4, 0.0], [-0.5, 0.6, 0.1, 0.2], [0.1, 0.1, 0.7, -0.3]]), np.array([0.5, 0.9, 0.4])),
]


def db_mtl(beta=0.9, beta_sigma=0.0):
    """LibMTL's DB_MTL.backward on STEPS: the shared gradient after each step, and the heads'
    weights (those of log(L + 1e-8))."""
    buf = np.zeros_like(STEPS[0][0])
    out = []
    for step, (G, L) in enumerate(STEPS, start=1):
        g = G / (L + 1e-8)[:, None]
        buf = g + (beta / step**beta_sigma) * (buf - g)
        u = np.linalg.norm(buf, axis=1)
        alpha = u.max() / (u + 1e-8)
        out.append((alpha @ buf, 1.0 / (L + 1e-8)))
    return out


def moco(beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.0):
    """LibMTL's MoCo.backward on STEPS: the shared gradient and lambda after each step."""
    T = STEPS[0][0].shape[0]
    y = np.zeros_like(STEPS[0][0])
    lam = np.ones(T) / T
    out = []
    for step, (G, L) in enumerate(STEPS, start=1):
        g = G / (np.linalg.norm(G, axis=1) + 1e-8)[:, None] * L[:, None]
        y = y - (beta / step**beta_sigma) * (y - g)
        z = lam - (gamma / step**gamma_sigma) * (y @ y.T + rho * np.eye(T)) @ lam
        lam = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        out.append((y.T @ lam, lam))
    return out


def excess_mtl(step_size=1e-2):
    """LibMTL's ExcessMTL.backward on STEPS: the loss weights after each step (they weight
    the shared gradient and the heads)."""
    T = STEPS[0][0].shape[0]
    acc = np.zeros_like(STEPS[0][0])
    weight = np.ones(T)
    w0 = None
    out = []
    for G, _ in STEPS:
        acc += G**2
        w = np.array([G[i] * (1 / np.sqrt(acc[i] + 1e-7)) @ G[i] for i in range(T)])
        if w0 is None:
            w0 = w
        else:
            weight = weight * np.exp(w / w0 * step_size)
            weight = weight / weight.sum() * T
        out.append(weight)
    return out


def gradnorm(alpha=1.5, lr=0.01, epoch0=2):
    """LibMTL's GradNorm.backward on STEPS, repeated: the first `epoch0` steps are its first
    epoch (equal weights; their mean losses become L(0)), then loss scales T*softmax(w), w from
    1 moved by torch's Adam (lr, betas 0.9/0.999, eps 1e-8) along the gradient of
    sum_t |ls_t*||g_t|| - mean(G)*r_t^alpha| (target detached), taken here by central
    differences. Returns the loss scales of each GradNorm step."""
    seq = STEPS[:epoch0] + STEPS
    T = STEPS[0][0].shape[0]
    l0 = np.mean([L for _, L in seq[:epoch0]], axis=0)
    w = np.ones(T)
    m = np.zeros(T)
    v = np.zeros(T)
    out = []
    for step, (G, L) in enumerate(seq[epoch0:], start=1):
        n = np.linalg.norm(G, axis=1)
        ls = T * np.exp(w) / np.exp(w).sum()
        r = (L / l0) / (L / l0).mean()
        target = (ls * n).mean() * r**alpha

        def lgrad(x):
            s = T * np.exp(x) / np.exp(x).sum()
            return np.abs(s * n - target).sum()

        h = 1e-6
        g = np.array([(lgrad(w + h * e) - lgrad(w - h * e)) / (2 * h) for e in np.eye(T)])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
        out.append(ls)
    return out


def rust(name, v):
    return f"const {name}: [f64; {len(v)}] = [{', '.join(repr(float(x)) for x in v)}];"


for tag, G in [("CONFLICT", G_CONFLICT), ("AGREE", G_AGREE)]:
    M = G @ G.T
    print(rust(f"{tag}_MGDA", mgda(G)))
    print(rust(f"{tag}_CAGRAD", cagrad(G)))
    print(rust(f"{tag}_IMTL", imtl(G)))
    print(rust(f"{tag}_NASH", power_fair(M, 1.0)))
    print(rust(f"{tag}_FAIRGRAD2", power_fair(M, 2.0)))
    print(rust(f"{tag}_ALIGNED", aligned_mtl(G)))
    print(rust(f"{tag}_UPGRAD", upgrad(G)))
print(rust("AGREE_PCGRAD", pcgrad2(G_AGREE)))
G2 = G_CONFLICT[:2]
print(rust("CONFLICT2_PCGRAD", pcgrad2(G2)))
for tag, G in [("CONFLICT", G_CONFLICT), ("AGREE", G_AGREE), ("SMALL", 1e-3 * G_CONFLICT)]:
    shared, heads = nash_libmtl(G)
    print(rust(f"{tag}_NASH_LIBMTL_SHARED", shared))
    print(rust(f"{tag}_NASH_LIBMTL_HEADS", heads))
for k, (d, heads) in enumerate(db_mtl()):
    print(rust(f"DB_MTL_D{k + 1}", d))
    print(rust(f"DB_MTL_HEADS{k + 1}", heads))
for k, (d, lam) in enumerate(moco()):
    print(rust(f"MOCO_D{k + 1}", d))
    print(rust(f"MOCO_LAMBDA{k + 1}", lam))
for k, w in enumerate(excess_mtl()):
    print(rust(f"EXCESS_W{k + 1}", w))
for k, ls in enumerate(gradnorm()):
    print(rust(f"GRADNORM_SCALES{k + 1}", ls))

"""Transferability scores: pure functions of frozen features (N, D), labels (N,) and, for LEEP and
NCE, the source head's probabilities (N, Z). Higher is better for every score.

- LogME (You et al., ICML 2021; the fixed point of the JMLR 2022 version): the log marginal
  likelihood (evidence) of a Bayesian linear model per one-hot target, maximised over its prior
  and noise precisions (alpha, beta), averaged over classes and divided by N.
- LEEP (Nguyen et al. 2020): log expected empirical prediction through P(target | source).
- NCE (Tran et al. 2019): minus the conditional entropy H(target | source argmax).
- H-score (Bao et al. 2019), shrinkage version (Ibrahim et al. 2022): tr(cov(f)^-1 cov(E[f|y]))
  with a Ledoit-Wolf covariance, stable when features outnumber samples.
- GBC (Pandy et al. 2022): minus the summed Bhattacharyya coefficients between per-class
  diagonal Gaussians, in (-C(C-1), 0].
- kNN: accuracy of a cosine k-nearest-neighbour vote from the training to the validation split.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

EPS = 1e-12


def _fixed_point(sigma: np.ndarray, x2: np.ndarray, rest: float, n: int, iterations: int = 100) -> tuple[float, float]:
    """alpha, beta maximising the evidence, by MacKay's updates written in the SVD basis (JMLR LogME).

    sigma: squared singular values (k,); x2: squared projections of y on the left singular vectors;
    rest: the part of |y|^2 outside their span."""
    alpha, beta = 1.0, 1.0
    for _ in range(iterations):
        t = alpha / beta
        gamma = float((sigma / (sigma + t)).sum())
        m2 = float((sigma * x2 / (t + sigma) ** 2).sum())
        res2 = float((x2 / (1 + sigma / t) ** 2).sum()) + rest
        alpha, beta = gamma / (m2 + EPS), (n - gamma) / (res2 + EPS)
        if abs(alpha / beta - t) / t < 1e-6:
            break
    return alpha, beta


def log_evidence(sigma: np.ndarray, x2: np.ndarray, rest: float, n: int, d: int, alpha: float, beta: float) -> float:
    """log p(y | F, alpha, beta) / N of y = F w + noise, w ~ N(0, I/alpha), noise ~ N(0, 1/beta)."""
    t = alpha / beta
    m2 = float((sigma * x2 / (t + sigma) ** 2).sum())  # |m|^2 of the posterior mean
    res2 = float((x2 / (1 + sigma / t) ** 2).sum()) + rest  # |y - F m|^2
    log_det = float(np.log(alpha + beta * sigma).sum()) + (d - len(sigma)) * np.log(alpha)  # of alpha I + beta F'F
    evidence = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - log_det / 2 - beta / 2 * res2 - alpha / 2 * m2
                - n / 2 * np.log(2 * np.pi))
    return float(evidence / n)


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > 1e-10 * max(s.max(), EPS)
    u, sigma = u[:, keep], s[keep] ** 2
    evidences = []
    for c in np.unique(labels):
        y = (labels == c).astype(np.float64)
        x = u.T @ y
        x2, rest = x ** 2, float(y @ y - (x ** 2).sum())
        alpha, beta = _fixed_point(sigma, x2, max(rest, 0.0), n)
        evidences.append(log_evidence(sigma, x2, max(rest, 0.0), n, d, alpha, beta))
    return float(np.mean(evidences))


def _joint(source_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Empirical joint P(y, z) (C, Z) from soft source predictions."""
    classes = int(labels.max()) + 1
    joint = np.zeros((classes, source_probs.shape[1]))
    np.add.at(joint, labels, source_probs)
    return joint / len(labels)


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    theta = np.asarray(source_probs, dtype=np.float64)
    joint = _joint(theta, labels)
    conditional = joint / (joint.sum(axis=0, keepdims=True) + EPS)  # P(y | z)
    expected = (theta * conditional[labels]).sum(axis=1)  # sum_z P(y_i | z) theta_i(z)
    return float(np.log(expected + EPS).mean())


def nce(source_probs: np.ndarray, labels: np.ndarray) -> float:
    z = np.asarray(source_probs).argmax(axis=1)
    hard = np.zeros_like(source_probs, dtype=np.float64)
    hard[np.arange(len(z)), z] = 1.0
    joint = _joint(hard, labels)
    conditional = joint / (joint.sum(axis=0, keepdims=True) + EPS)
    mask = joint > 0
    return float((joint[mask] * np.log(conditional[mask])).sum())


def _ledoit_wolf(centred: np.ndarray) -> tuple[np.ndarray, float]:
    """The Ledoit-Wolf shrunk covariance (toward mu I) and its shrinkage intensity."""
    n, d = centred.shape
    cov = centred.T @ centred / n
    mu = np.trace(cov) / d
    frobenius2 = float((cov ** 2).sum())
    delta = (frobenius2 - 2 * mu * np.trace(cov) + d * mu ** 2) / d
    # sum((x2' x2)) = sum_n |x_n|^4: O(N D) instead of a D x D x N product
    beta_bar = (float(((centred ** 2).sum(axis=1) ** 2).sum()) / n - frobenius2) / (d * n)
    shrinkage = float(min(beta_bar, delta) / delta) if delta > 0 else 1.0
    return (1 - shrinkage) * cov + shrinkage * mu * np.eye(d), shrinkage


def h_score(features: np.ndarray, labels: np.ndarray) -> float:
    """cov(E[f|y]) = sum_c w_c m_c m_c' (class weights w, centred class means m), so the trace is
    sum_c w_c m_c' cov_f^-1 m_c: one positive-definite solve with C right-hand sides, not a pinv."""
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(axis=0)
    cov_f, shrinkage = _ledoit_wolf(f)
    classes, counts = np.unique(labels, return_counts=True)
    means = np.stack([f[labels == c].mean(axis=0) for c in classes])  # (C, D)
    try:
        solved = scipy.linalg.solve(cov_f, means.T, assume_a="pos")
    except (np.linalg.LinAlgError, ValueError):  # singular: no shrinkage and fewer samples than features
        solved = np.linalg.pinv(cov_f) @ means.T
    return float((1 - shrinkage) * ((counts / len(f)) * (means.T * solved).sum(axis=0)).sum())


def gbc(features: np.ndarray, labels: np.ndarray, dims: int = 64) -> float:
    """Features are first projected on their top `dims` principal components, as in the paper."""
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(axis=0)
    if f.shape[1] > dims:
        f = f @ _top_components(f, dims).T
    classes = np.unique(labels)
    means = np.stack([f[labels == c].mean(axis=0) for c in classes])
    variances = np.stack([f[labels == c].var(axis=0) + 1e-6 for c in classes])
    total = 0.0
    for i in range(len(classes)):
        for j in range(len(classes)):
            if i != j:
                var = (variances[i] + variances[j]) / 2
                distance = (((means[i] - means[j]) ** 2) / var).sum() / 8 + 0.5 * (
                    np.log(var).sum() - 0.5 * (np.log(variances[i]).sum() + np.log(variances[j]).sum()))
                total += float(np.exp(-distance))
    return -total


def _top_components(f: np.ndarray, k: int) -> np.ndarray:
    """The top-k principal directions (k, D), exactly, from the eigenvectors of the smaller Gram
    matrix (D x D or N x N): several times faster than a full SVD of the N x D features."""
    n, d = f.shape
    if n >= d:
        _, vectors = np.linalg.eigh(f.T @ f)
        return vectors[:, ::-1][:, :k].T
    values, u = np.linalg.eigh(f @ f.T)
    values, u = values[::-1][:k], u[:, ::-1][:, :k]
    return (f.T @ u / np.sqrt(np.maximum(values, EPS))).T


def knn_accuracy(train: np.ndarray, train_labels: np.ndarray, val: np.ndarray, val_labels: np.ndarray,
                 k: int = 20) -> float:
    a = train / (np.linalg.norm(train, axis=1, keepdims=True) + EPS)
    b = val / (np.linalg.norm(val, axis=1, keepdims=True) + EPS)
    k = min(k, len(a))
    nearest = np.argpartition(-(b @ a.T), k - 1, axis=1)[:, :k]
    votes = train_labels[nearest]
    classes = int(max(train_labels.max(), val_labels.max())) + 1
    counts = np.stack([(votes == c).sum(axis=1) for c in range(classes)], axis=1)
    return float((counts.argmax(axis=1) == val_labels).mean())

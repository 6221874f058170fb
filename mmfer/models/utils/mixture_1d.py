# Copyright (c) OpenMMLab. All rights reserved.
"""Two-component 1-D mixtures for per-sample clean/noisy modelling (ReSup).

ReSup fits, after every epoch and for each of its two networks, a
two-component Beta mixture on the per-sample cosine similarity between the
softmax prediction and the one-hot noisy label. The posterior of the
high-similarity component (component 1) is tabulated once per epoch and read
back per sample as a soft "clean" weight during the next epoch.

The Beta mixture follows the official ReSup code (``utils.py``, itself adapted
from Arazo et al., "Unsupervised label noise modeling and loss correction",
ICML 2019): the same initial values, the same clamping, the same E-step floor
and the same weighted moment-matching M-step, so that on ordinary data it
reproduces the official numbers to float rounding. The only addition is a
guard for degenerate data (for example all similarities equal), where the
official update divides by a zero variance and produces NaN.

A Gaussian mixture with the same interface is provided as an ablation.
"""
import logging
import math
from typing import Dict, Sequence, Tuple, Type, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[float], float]


def _as_float64(x: ArrayLike) -> np.ndarray:
    """Convert an array-like or tensor (any device) to a flat float64 array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to('cpu', torch.float64).numpy()
    return np.atleast_1d(np.asarray(x, dtype=np.float64)).reshape(-1)


def _beta_log_pdf(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Log density of Beta(alpha, beta), ``-inf`` outside ``[0, 1]``."""
    log_norm = math.lgamma(alpha + beta) - math.lgamma(alpha) - math.lgamma(
        beta)
    with np.errstate(divide='ignore', invalid='ignore'):
        # An exponent of exactly 0 must contribute 0 even where log(x) is
        # -inf (x = 0 or 1), as the density Beta(1, b) is finite at 0.
        term_a = 0.0 if alpha == 1.0 else (alpha - 1.0) * np.log(x)
        term_b = 0.0 if beta == 1.0 else (beta - 1.0) * np.log1p(-x)
        out = term_a + term_b + log_norm
    out = np.broadcast_to(out, x.shape).copy()
    out[(x < 0.0) | (x > 1.0)] = -np.inf
    return out


def _gaussian_log_pdf(x: np.ndarray, mean: float,
                      variance: float) -> np.ndarray:
    """Log density of a normal distribution N(mean, variance)."""
    return -0.5 * math.log(2.0 * math.pi * variance) - (x - mean)**2 / (
        2.0 * variance)


class _TwoComponentMixture1D:
    """EM skeleton shared by the Beta and the Gaussian mixture.

    Subclasses define the parameter rows, the log density of one component
    (``_log_pdf``) and the M-step. Component 1 is the "clean" component: it
    starts at the higher mean, so on ReSup's similarities (a high-similarity
    clean majority) it stays the high one.

    Args:
        params (np.ndarray): The initial ``(3, 2)`` parameters; row 2 holds
            the mixing weights.
        em_iters (int): Number of EM iterations run by :meth:`fit`.
        clamp (tuple[float, float]): :meth:`fit` clips its input to this
            range first.
        eps (float): Floor of the E-step responsibilities, added to the
            posterior's denominator and used as the lookup grid's margin.
    """

    #: Names of the three parameter rows, for messages.
    ROW_NAMES: Tuple[str, str, str] = ('', '', 'weights')
    #: Rows that must be strictly positive (all rows must be finite).
    POSITIVE_ROWS: Tuple[int, ...] = (2, )

    def __init__(self, params: np.ndarray, em_iters: int,
                 clamp: Tuple[float, float], eps: float) -> None:
        if not isinstance(em_iters, int) or em_iters < 0:
            raise ValueError(f'{type(self).__name__}: em_iters must be a '
                             f'non-negative int, got {em_iters!r}.')
        if len(clamp) != 2 or not 0.0 <= clamp[0] < clamp[1] <= 1.0:
            raise ValueError(f'{type(self).__name__}: clamp must be (low, '
                             f'high) with 0 <= low < high <= 1, got {clamp}.')
        self.em_iters = em_iters
        self.clamp = (float(clamp[0]), float(clamp[1]))
        self.eps = float(eps)
        #: True when the last :meth:`fit` stopped early on degenerate data.
        self.degenerate = False
        self._params = np.zeros((3, 2), dtype=np.float64)
        self.load_params(params)

    # ------------------------------------------------------------ parameters
    @property
    def params(self) -> np.ndarray:
        """np.ndarray: A ``(3, 2)`` float64 copy of the parameters."""
        return self._params.copy()

    @property
    def weights(self) -> np.ndarray:
        """np.ndarray: The two mixing weights."""
        return self._params[2].copy()

    def _invalid_reason(self, params: np.ndarray) -> str:
        """Why ``params`` are not usable, or ``''`` when they are."""
        if params.shape != (3, 2):
            return f'expected shape (3, 2), got {params.shape}'
        if not np.isfinite(params).all():
            return 'some are not finite'
        for row in self.POSITIVE_ROWS:
            if not (params[row] > 0).all():
                return f'{self.ROW_NAMES[row]} must be > 0'
        return ''

    def load_params(self, params: ArrayLike) -> None:
        """Set the parameters, e.g. from a checkpoint.

        Args:
            params (np.ndarray | torch.Tensor): A ``(3, 2)`` array with the
                rows given by :attr:`ROW_NAMES`.
        """
        if isinstance(params, torch.Tensor):
            params = params.detach().cpu().numpy()
        arr = np.array(params, dtype=np.float64)
        reason = self._invalid_reason(arr)
        if reason:
            raise ValueError(
                f'{type(self).__name__}.load_params: invalid parameters '
                f'(rows {self.ROW_NAMES}): {reason}. Got {arr.tolist()}.')
        self._params = arr

    # --------------------------------------------------------------- density
    @staticmethod
    def _log_pdf(x: np.ndarray, first: float, second: float) -> np.ndarray:
        """Log density of one component with parameter rows 0 and 1."""
        raise NotImplementedError

    def _component_log_pdfs(self, x: np.ndarray) -> np.ndarray:
        """Per-component log densities, shape ``(2, n)``."""
        return np.stack([
            self._log_pdf(x, self._params[0, k], self._params[1, k])
            for k in range(2)
        ])

    def _m_step(self, x: np.ndarray, resp: np.ndarray) -> np.ndarray:
        """New ``(3, 2)`` parameters from the responsibilities ``(2, n)``:
        each component's two parameters from its weighted mean and
        variance, and the mixing weights."""
        new = np.empty((3, 2), dtype=np.float64)
        for k in range(2):
            r = resp[k]
            mean = np.sum(r * x) / np.sum(r)
            var = np.sum(r * (x - mean)**2) / np.sum(r)
            new[0, k], new[1, k] = self._from_moments(mean, var)
        totals = resp.sum(axis=1)
        new[2] = totals / totals.sum()
        return new

    def _from_moments(self, mean: float, var: float) -> Tuple[float, float]:
        """A component's two parameters from its weighted mean and
        variance."""
        raise NotImplementedError

    def component_pdfs(self, x: ArrayLike) -> np.ndarray:
        """Weighted likelihoods ``pi_k * p_k(x)``.

        Args:
            x (array-like): Values, any shape (flattened).

        Returns:
            np.ndarray: Shape ``(2, n)``.
        """
        x = _as_float64(x)
        return self._params[2][:, None] * np.exp(self._component_log_pdfs(x))

    def posterior(self, x: ArrayLike) -> np.ndarray:
        """Posterior of component 1 (clean), as the official ``posterior``.

        ``pi1 p1(x) / (pi0 p0(x) + pi1 p1(x) + eps)``; the input is not
        clamped.

        Args:
            x (array-like): Values, any shape (flattened).

        Returns:
            np.ndarray: Shape ``(n,)``.
        """
        weighted = self.component_pdfs(x)
        return weighted[1] / (weighted[0] + weighted[1] + self.eps)

    def _responsibilities(self, x: np.ndarray) -> np.ndarray:
        weighted = self.component_pdfs(x)
        weighted[weighted <= self.eps] = self.eps
        return weighted / weighted.sum(axis=0)

    # ------------------------------------------------------------------- fit
    def fit(self, x: ArrayLike) -> '_TwoComponentMixture1D':
        """Run :attr:`em_iters` EM iterations on ``x``.

        EM starts from the current parameters (the initial values on a fresh
        instance; the official code builds a fresh mixture every epoch). If an
        iteration yields a non-finite or non-positive parameter, or
        parameters whose responsibilities on ``x`` are not finite, EM stops,
        the last valid parameters are kept and :attr:`degenerate` is set.
        That happens only on degenerate data, e.g. all values equal, where
        the official update would produce NaN.

        Args:
            x (array-like): The values to fit, any shape (flattened).

        Returns:
            The mixture itself.
        """
        x = _as_float64(x)
        if x.size == 0:
            raise ValueError(f'{type(self).__name__}.fit got no values.')
        if not np.isfinite(x).all():
            raise ValueError(
                f'{type(self).__name__}.fit got {int((~np.isfinite(x)).sum())}'
                ' non-finite values: check the similarities fed to it (a '
                'diverged network gives NaN logits).')
        x = np.clip(x, *self.clamp)
        self.degenerate = False
        # Overflow on degenerate data is caught by the checks of _run_em.
        with np.errstate(over='ignore', divide='ignore', invalid='ignore'):
            reason = self._run_em(x)
        if reason:
            self.degenerate = True
            print_log(
                f'{type(self).__name__}: degenerate data ({x.size} values, '
                f'min {x.min():.6g}, max {x.max():.6g}): EM stopped early '
                f'({reason}); keeping parameters {self._params.tolist()}.',
                logger='current',
                level=logging.WARNING)
        return self

    def _run_em(self, x: np.ndarray) -> str:
        """EM on clamped ``x``; returns why it stopped early, or ``''``."""
        previous = self._params.copy()
        for _ in range(self.em_iters):
            resp = self._responsibilities(x)
            if not np.isfinite(resp).all():
                # The current parameters overflow on the data: fall back to
                # those that produced them, whose responsibilities were fine.
                self._params = previous
                return 'non-finite responsibilities'
            new = self._m_step(x, resp)
            reason = self._invalid_reason(new)
            if reason:
                return reason
            previous, self._params = self._params, new
        # The last M-step's parameters are used by the lookup table: check
        # them on the data too.
        if self.em_iters > 0 and not np.isfinite(
                self._responsibilities(x)).all():
            self._params = previous
            return 'non-finite responsibilities'
        return ''

    def lookup_table(self, num_bins: int = 100) -> np.ndarray:
        """Tabulate the clean posterior, monotone above its peak.

        The grid is ``linspace(eps, 1 - eps, num_bins)`` (spacing
        ``1 / (num_bins - 1)``), and every entry from the argmax on is set to
        the maximum, as the official ``create_lookup``.

        Args:
            num_bins (int): Number of table entries. Defaults to 100.

        Returns:
            np.ndarray: Shape ``(num_bins,)``.
        """
        if not isinstance(num_bins, int) or num_bins < 1:
            raise ValueError('lookup_table: num_bins must be a positive int, '
                             f'got {num_bins!r}.')
        grid = np.linspace(self.eps, 1.0 - self.eps, num_bins)
        table = self.posterior(grid)
        if not np.isfinite(table).all():
            raise RuntimeError(
                f'{type(self).__name__}.lookup_table: the posterior is not '
                f'finite on the grid with parameters {self._params.tolist()}; '
                'load sane parameters with load_params or refit.')
        peak = int(np.argmax(table))
        table[peak:] = table[peak]
        return table

    def __repr__(self) -> str:
        rows = ', '.join(f'{name}={self._params[i].tolist()}'
                         for i, name in enumerate(self.ROW_NAMES))
        return f'{type(self).__name__}({rows}, em_iters={self.em_iters})'


class BetaMixture1D(_TwoComponentMixture1D):
    """Two-component Beta mixture fitted by EM with moment matching.

    The official ReSup mixture: E-step ``r_k = pi_k Beta(x; a_k, b_k)``
    floored at ``eps`` and normalised over ``k``; M-step per component
    ``xbar = sum(r x) / sum(r)``, ``s2 = sum(r (x - xbar)^2) / sum(r)``,
    ``a = xbar (xbar (1 - xbar) / s2 - 1)``, ``b = a (1 - xbar) / xbar``, and
    ``pi_k = sum_i r_ki / sum_{k,i} r_ki``. The Beta density is evaluated in
    log space with ``math.lgamma``.

    Args:
        alphas (tuple[float, float]): Initial alphas. Defaults to (1, 2).
        betas (tuple[float, float]): Initial betas. Defaults to (2, 1), so
            component 0 starts as Beta(1, 2) (low, noisy) and component 1 as
            Beta(2, 1) (high, clean).
        weights (tuple[float, float]): Initial mixing weights.
        em_iters (int): EM iterations per :meth:`fit`. Defaults to 10.
        clamp (tuple[float, float]): Input range of :meth:`fit`.
            Defaults to (1e-4, 1 - 1e-4).
        eps (float): Responsibility floor and posterior/grid epsilon.
            Defaults to 1e-12.
    """

    ROW_NAMES = ('alphas', 'betas', 'weights')
    POSITIVE_ROWS = (0, 1, 2)

    def __init__(self,
                 alphas: Sequence[float] = (1.0, 2.0),
                 betas: Sequence[float] = (2.0, 1.0),
                 weights: Sequence[float] = (0.5, 0.5),
                 em_iters: int = 10,
                 clamp: Tuple[float, float] = (1e-4, 1 - 1e-4),
                 eps: float = 1e-12) -> None:
        super().__init__(
            np.array([alphas, betas, weights], dtype=np.float64), em_iters,
            clamp, eps)

    @property
    def alphas(self) -> np.ndarray:
        """np.ndarray: The two alphas."""
        return self._params[0].copy()

    @property
    def betas(self) -> np.ndarray:
        """np.ndarray: The two betas."""
        return self._params[1].copy()

    _log_pdf = staticmethod(_beta_log_pdf)

    def _from_moments(self, mean: float, var: float) -> Tuple[float, float]:
        alpha = mean * (mean * (1 - mean) / var - 1)
        return alpha, alpha * (1 - mean) / mean


class GaussianMixture1D(_TwoComponentMixture1D):
    """Two-component Gaussian mixture fitted by standard EM.

    An ablation of :class:`BetaMixture1D` with the same interface. The
    default start is the mean and variance of Beta(1, 2) and Beta(2, 1), i.e.
    where the Beta mixture starts. The M-step is the weighted mean, the
    weighted variance floored at ``var_floor``, and the mixing weights.

    Args:
        means (tuple[float, float]): Initial means. Defaults to (1/3, 2/3).
        variances (tuple[float, float]): Initial variances. Defaults to
            (1/18, 1/18).
        weights (tuple[float, float]): Initial mixing weights.
        em_iters (int): EM iterations per :meth:`fit`. Defaults to 10.
        clamp (tuple[float, float]): Input range of :meth:`fit`.
            Defaults to (1e-4, 1 - 1e-4).
        eps (float): Responsibility floor and posterior/grid epsilon.
            Defaults to 1e-12.
        var_floor (float): Lower bound of the fitted variances, so that a
            component collapsing on one value keeps a finite density.
            Defaults to 1e-6.
    """

    ROW_NAMES = ('means', 'variances', 'weights')
    POSITIVE_ROWS = (1, 2)

    def __init__(self,
                 means: Sequence[float] = (1 / 3, 2 / 3),
                 variances: Sequence[float] = (1 / 18, 1 / 18),
                 weights: Sequence[float] = (0.5, 0.5),
                 em_iters: int = 10,
                 clamp: Tuple[float, float] = (1e-4, 1 - 1e-4),
                 eps: float = 1e-12,
                 var_floor: float = 1e-6) -> None:
        if not var_floor > 0:
            raise ValueError('GaussianMixture1D: var_floor must be > 0, got '
                             f'{var_floor!r}.')
        self.var_floor = float(var_floor)
        super().__init__(
            np.array([means, variances, weights], dtype=np.float64),
            em_iters, clamp, eps)

    @property
    def means(self) -> np.ndarray:
        """np.ndarray: The two means."""
        return self._params[0].copy()

    @property
    def variances(self) -> np.ndarray:
        """np.ndarray: The two variances."""
        return self._params[1].copy()

    _log_pdf = staticmethod(_gaussian_log_pdf)

    def _from_moments(self, mean: float, var: float) -> Tuple[float, float]:
        return mean, max(var, self.var_floor)


MIXTURES: Dict[str, Type[_TwoComponentMixture1D]] = dict(
    beta=BetaMixture1D, gaussian=GaussianMixture1D)


def build_mixture(kind: str, **kwargs) -> _TwoComponentMixture1D:
    """Build a two-component 1-D mixture by name.

    Args:
        kind (str): A key of :data:`MIXTURES` (``'beta'`` or ``'gaussian'``).
        **kwargs: Passed to the mixture's constructor.

    Returns:
        The mixture.
    """
    if kind not in MIXTURES:
        raise ValueError(f'Unknown mixture kind {kind!r}; valid kinds are '
                         f'{sorted(MIXTURES)}.')
    return MIXTURES[kind](**kwargs)


def lookup_clean_probability(
    table: torch.Tensor,
    similarity: torch.Tensor,
    clamp: Tuple[float, float] = (1e-4, 1 - 1e-4)
) -> torch.Tensor:
    """Read per-sample clean probabilities from a posterior lookup table.

    As the official ``look_lookup``: the index is ``int(num_bins * s)`` by
    truncation, computed in ``similarity``'s dtype; negative indices go to 0
    and indices ``>= num_bins`` to ``num_bins - 1``. The table's grid (see
    :meth:`BetaMixture1D.lookup_table`) has spacing ``1 / (num_bins - 1)``
    while this index uses ``1 / num_bins``; the official code has the same
    small misalignment and it is kept for equality. The looked-up value is
    then clamped to ``clamp``, as the official per-sample weight.

    Args:
        table (torch.Tensor): The 1-D lookup table.
        similarity (torch.Tensor): Finite similarities, any shape and device.
        clamp (tuple[float, float]): Range of the returned probabilities.
            Defaults to (1e-4, 1 - 1e-4).

    Returns:
        torch.Tensor: The clean probabilities, shaped like ``similarity``, on
        its device, in ``table``'s dtype.
    """
    table = torch.as_tensor(table)
    if table.dim() != 1 or table.numel() == 0:
        raise ValueError('lookup_clean_probability expects a non-empty 1-D '
                         f'table, got shape {tuple(table.shape)}.')
    num_bins = table.numel()
    index = (similarity * num_bins).long().clamp(0, num_bins - 1)
    table = table.to(similarity.device)
    return table[index].clamp(clamp[0], clamp[1])


#: How similarities are kept inside (0, 1) before the fit and the lookup:
#: ``'official'`` replaces only values >= 1 and <= 0 (ReSup's ``get_bmm``
#: and ``compute_probabilities_batch``), ``'clamp'`` clamps every value
#: into the bounds (mmfer before 2026-12, kept as a switch).
SIMILARITY_RULES = ('official', 'clamp')


def bound_similarity(similarity: torch.Tensor,
                     bounds: Tuple[float, float] = (1e-3, 1 - 1e-3),
                     rule: str = 'official') -> torch.Tensor:
    """Keep label similarities inside (0, 1) for the Beta mixture.

    ReSup's code maps a similarity ``>= 1`` to ``bounds[1]`` and one ``<= 0``
    to ``bounds[0]`` and keeps every other value, also those in
    ``(bounds[1], 1)`` and ``(0, bounds[0])``; a trained network puts most
    similarities in ``(0.999, 1)``, so clamping them all to 0.999 changes
    the fitted mixture (``rule='clamp'``).

    Args:
        similarity (torch.Tensor): Similarities, any shape.
        bounds (tuple[float, float]): ``(low, high)``. Defaults to
            ``(1e-3, 1 - 1e-3)`` (the code writes ``10e-4``).
        rule (str): One of :data:`SIMILARITY_RULES`. Defaults to
            ``'official'``.

    Returns:
        torch.Tensor: The bounded similarities, in ``similarity``'s dtype.
    """
    if rule not in SIMILARITY_RULES:
        raise ValueError(f'similarity rule {rule!r} must be one of '
                         f'{SIMILARITY_RULES}.')
    low, high = bounds
    if rule == 'clamp':
        return similarity.clamp(low, high)
    high_ = similarity.new_tensor(high)
    low_ = similarity.new_tensor(low)
    bounded = torch.where(similarity >= 1, high_, similarity)
    return torch.where(bounded <= 0, low_, bounded)


def label_similarity(logits: torch.Tensor,
                     labels: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between softmax(logits) and one-hot(labels).

    ``cos(p, e_y) = p[y] / ||p||_2`` with ``p = softmax(logits)``; it is 1
    only when the prediction is one-hot on the label. No clamping is applied.

    Args:
        logits (torch.Tensor): Shape ``(N, C)``.
        labels (torch.Tensor): Integer labels of shape ``(N,)`` in
            ``[0, C)``.

    Returns:
        torch.Tensor: Shape ``(N,)``, in ``logits``' dtype.
    """
    if logits.dim() != 2:
        raise ValueError('label_similarity expects (N, C) logits, got shape '
                         f'{tuple(logits.shape)}.')
    labels = labels.reshape(-1).long()
    if labels.numel() != logits.shape[0]:
        raise ValueError(f'label_similarity: {labels.numel()} labels for '
                         f'{logits.shape[0]} rows of logits.')
    probs = F.softmax(logits, dim=1)
    return probs.gather(1, labels[:, None]).squeeze(1) / probs.norm(dim=1)

"""The certificate of a fit or a check: what is proven about the distance to the global optimum."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

_FIELDS = (
    "status",
    "objective",
    "loss",
    "regularizer",
    "lam",
    "subnetworks",
    "polar_lower",
    "polar_upper",
    "polar_exact",
    "polar_method",
    "gap_bound",
    "relative_gap",
    "optimum_lower_bound",
    "improving_subnetwork",
    "note",
    "termination",
    "seconds",
)


class Certificate:
    """What is known about the optimality of a model.

    Attributes
    ----------
    status : str
        ``"certified"`` (proven gap within the tolerance), ``"bounded"`` (a proven gap above it),
        ``"heuristic"`` (no useful proven upper bound on the polar) or ``"untested"``.
    objective : float
        ``f(W) = loss + lam * regularizer`` (losses are sums over samples, not means).
    gap_bound : float or None
        A proven bound on ``f(W) - F*``, the distance to the global optimum.
    polar_lower, polar_upper : float, float or None
        The polar's bracket; a polar ``<= 1`` proves global optimality.
    polar_exact : bool
        Whether the polar was computed exactly.
    termination : str or None
        Why the fit stopped (``certified``, ``no_better_subnetwork``, ``max_outer``, ``max_time``, ...).
    subnetworks : int
        Nonzero subnetworks (hidden units, rank-one terms).
    seconds : float or None
        Wall-clock seconds of the fit.
    improving_subnetwork : list of list of float or None
        When the polar exceeds 1: the subnetwork (each layer of unit norm) whose addition decreases ``f``.
    """

    def __init__(self, fields: Dict[str, Any], summary: str, extra: Optional[Dict[str, Any]] = None):
        data = dict(fields)
        if "lambda" in data:
            data["lam"] = data.pop("lambda")
        data.update(extra or {})
        self._summary = summary
        for name in _FIELDS:
            setattr(self, name, data.get(name))
        self._notes: List[str] = list(data.get("notes", []))

    @classmethod
    def _from_json(cls, text: str, summary: str, **extra: Any) -> "Certificate":
        return cls(json.loads(text), summary, extra)

    def to_dict(self) -> Dict[str, Any]:
        """The certificate's fields as a plain dictionary (JSON-serializable)."""
        return {name: getattr(self, name) for name in _FIELDS}

    def summary(self) -> str:
        """The lines the command line prints for this certificate."""
        head = f"status: {self.status}"
        if self.termination is not None:
            head += f" (termination: {self.termination}"
            head += f", {self.seconds:.2f} s)" if self.seconds is not None else ")"
        return "\n".join([head, self._summary] + self._notes)

    def __repr__(self) -> str:
        gap = "None" if self.gap_bound is None else f"{self.gap_bound:.3e}"
        return (
            f"Certificate(status={self.status!r}, objective={self.objective:.8e}, gap_bound={gap}, "
            f"subnetworks={self.subnetworks})"
        )

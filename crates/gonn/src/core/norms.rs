//! The per-layer norms that make up `theta(w) = prod_k ||W^k||_(k)` (THEORY.md sections 1 and 5): their values,
//! proximal operators (with optional nonnegativity) and dual norms with maximizers (used by the polars).

use std::fmt;
use std::str::FromStr;

use crate::error::GonnError;

/// A norm on one layer's weights of one subnetwork (one column of a layer block).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Norm {
    /// `||x||_1`.
    L1,
    /// `||x||_2`.
    L2,
    /// `gamma * ||x||_1 + ||x||_2` (sparse and low-rank mixture), `gamma > 0`.
    L1L2 { gamma: f64 },
}

impl FromStr for Norm {
    type Err = GonnError;
    fn from_str(s: &str) -> Result<Self, GonnError> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "l1" => Ok(Norm::L1),
            "l2" => Ok(Norm::L2),
            _ => {
                if let Some(g) = s.strip_prefix("l1l2:") {
                    let gamma: f64 =
                        g.parse().map_err(|_| GonnError::param("norms", format!("`{s}`: GAMMA must be a number")))?;
                    if !(gamma.is_finite() && gamma > 0.0) {
                        return Err(GonnError::param("norms", format!("`{s}`: GAMMA must be positive and finite")));
                    }
                    Ok(Norm::L1L2 { gamma })
                } else {
                    Err(GonnError::param("norms", format!("unknown norm `{s}` (expected l1, l2 or l1l2:GAMMA)")))
                }
            }
        }
    }
}

impl fmt::Display for Norm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Norm::L1 => write!(f, "l1"),
            Norm::L2 => write!(f, "l2"),
            Norm::L1L2 { gamma } => write!(f, "l1l2:{gamma}"),
        }
    }
}

/// A layer norm together with an optional nonnegativity constraint (`theta = +inf` outside the cone).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNorm {
    pub norm: Norm,
    pub nonneg: bool,
}

/// Euclidean norm `||x||_2`.
pub fn l2(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

impl LayerNorm {
    pub fn new(norm: Norm, nonneg: bool) -> Self {
        Self { norm, nonneg }
    }

    /// `||x||` (the nonnegativity constraint is not checked here; iterates are kept feasible by the prox).
    pub fn value(&self, x: &[f64]) -> f64 {
        let l2 = || x.iter().map(|v| v * v).sum::<f64>().sqrt();
        let l1 = || x.iter().map(|v| v.abs()).sum::<f64>();
        match self.norm {
            Norm::L1 => l1(),
            Norm::L2 => l2(),
            Norm::L1L2 { gamma } => gamma * l1() + l2(),
        }
    }

    /// In place: `x <- prox_{mu ||.|| + indicator(cone)}(x)`. THEORY.md section 5: `l2` group shrinkage, `l1`
    /// soft-thresholding, `gamma*l1 + l2` soft-threshold then group-shrink; nonnegativity clips first.
    pub fn prox(&self, x: &mut [f64], mu: f64) {
        let t1 = match self.norm {
            Norm::L1 => mu,
            Norm::L2 => 0.0,
            Norm::L1L2 { gamma } => gamma * mu,
        };
        for v in x.iter_mut() {
            *v = if self.nonneg { (*v - t1).max(0.0) } else { v.signum() * (v.abs() - t1).max(0.0) };
        }
        if !matches!(self.norm, Norm::L1) {
            let n = x.iter().map(|v| v * v).sum::<f64>().sqrt();
            let s = if n > mu { 1.0 - mu / n } else { 0.0 };
            x.iter_mut().for_each(|v| *v *= s);
        }
    }

    /// Dual norm `sup { <q, x> : ||x|| <= 1, x in cone }` and a maximizer `x` with `||x|| = 1`
    /// (`None` when the supremum is 0 and no nonzero maximizer is needed).
    pub fn dual(&self, q: &[f64]) -> (f64, Option<Vec<f64>>) {
        let qc: Vec<f64> = if self.nonneg { q.iter().map(|v| v.max(0.0)).collect() } else { q.to_vec() };
        match self.norm {
            Norm::L2 => {
                let n = qc.iter().map(|v| v * v).sum::<f64>().sqrt();
                if n == 0.0 {
                    return (0.0, None);
                }
                (n, Some(qc.iter().map(|v| v / n).collect()))
            }
            Norm::L1 => {
                let (mut best, mut idx) = (0.0, usize::MAX);
                for (i, v) in qc.iter().enumerate() {
                    if v.abs() > best {
                        best = v.abs();
                        idx = i;
                    }
                }
                if idx == usize::MAX {
                    return (0.0, None);
                }
                let mut x = vec![0.0; q.len()];
                x[idx] = qc[idx].signum();
                (best, Some(x))
            }
            Norm::L1L2 { gamma } => {
                // The dual norm is the root mu of ||soft(q, gamma*mu)||_2 = mu (THEORY.md section 6).
                let soft_norm =
                    |mu: f64| qc.iter().map(|v| (v.abs() - gamma * mu).max(0.0).powi(2)).sum::<f64>().sqrt();
                let hi0 = qc.iter().map(|v| v * v).sum::<f64>().sqrt();
                if hi0 == 0.0 {
                    return (0.0, None);
                }
                let (mut lo, mut hi) = (0.0, hi0);
                for _ in 0..200 {
                    let mid = 0.5 * (lo + hi);
                    if soft_norm(mid) > mid {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                    if hi - lo <= 1e-15 * hi {
                        break;
                    }
                }
                let mu = if lo > 0.0 { lo } else { hi };
                let mut x: Vec<f64> = qc.iter().map(|v| v.signum() * (v.abs() - gamma * mu).max(0.0)).collect();
                let nx = self.value(&x);
                if nx == 0.0 {
                    // mu is at the threshold where only the largest entries survive: take the l1 vertex.
                    let (_, x1) = LayerNorm::new(Norm::L1, self.nonneg).dual(q);
                    let mut x1 = x1.expect("nonzero q");
                    let n1 = self.value(&x1);
                    x1.iter_mut().for_each(|v| *v /= n1);
                    let val = x1.iter().zip(q).map(|(a, b)| a * b).sum();
                    return (val, Some(x1));
                }
                x.iter_mut().for_each(|v| *v /= nx);
                // Report the value attained by the maximizer: a valid lower bound on the dual norm that
                // equals it up to the bisection tolerance.
                let val = x.iter().zip(q).map(|(a, b)| a * b).sum::<f64>();
                (val, Some(x))
            }
        }
    }

    /// Largest `c` with `||x|| >= c * ||x||_1` (0 when there is none), so that `ball(this) ⊂ (1/c) ball(l1)`.
    /// Every norm here also dominates `||x||_2` with constant 1.
    pub fn l1_domination(&self) -> f64 {
        match self.norm {
            Norm::L1 => 1.0,
            Norm::L2 => 0.0,
            Norm::L1L2 { gamma } => gamma,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::rng::Rng;

    fn norms() -> Vec<LayerNorm> {
        let mut v = Vec::new();
        for n in [Norm::L1, Norm::L2, Norm::L1L2 { gamma: 0.3 }] {
            for nn in [false, true] {
                v.push(LayerNorm::new(n, nn));
            }
        }
        v
    }

    /// The prox minimizes `mu ||x|| + 1/2 ||x - y||^2` over the cone: compare with random feasible points.
    #[test]
    fn prox_is_minimizer() {
        let mut rng = Rng::new(1);
        for ln in norms() {
            for _ in 0..20 {
                let y: Vec<f64> = (0..6).map(|_| rng.normal()).collect();
                let mu = rng.uniform();
                let mut x = y.clone();
                ln.prox(&mut x, mu);
                let obj =
                    |z: &[f64]| mu * ln.value(z) + 0.5 * z.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
                let f0 = obj(&x);
                for _ in 0..200 {
                    let mut z: Vec<f64> = x.iter().map(|v| v + 0.05 * rng.normal()).collect();
                    if ln.nonneg {
                        z.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                    assert!(obj(&z) >= f0 - 1e-12, "{ln:?}");
                }
                if ln.nonneg {
                    assert!(x.iter().all(|v| *v >= 0.0));
                }
            }
        }
    }

    /// The dual norm is attained by its maximizer and no random unit-norm feasible point beats it.
    #[test]
    fn dual_is_sup_over_unit_ball() {
        let mut rng = Rng::new(2);
        for ln in norms() {
            for _ in 0..20 {
                let q: Vec<f64> = (0..5).map(|_| rng.normal()).collect();
                let (d, x) = ln.dual(&q);
                let x = x.unwrap();
                assert!((ln.value(&x) - 1.0).abs() < 1e-12);
                let att: f64 = x.iter().zip(&q).map(|(a, b)| a * b).sum();
                assert!((att - d).abs() < 1e-9 * d.max(1.0), "{ln:?} {att} {d}");
                for _ in 0..2000 {
                    let mut z: Vec<f64> = (0..5).map(|_| rng.normal()).collect();
                    if ln.nonneg {
                        z.iter_mut().for_each(|v| *v = v.abs());
                    }
                    let nz = ln.value(&z);
                    let val: f64 = z.iter().zip(&q).map(|(a, b)| a * b / nz).sum();
                    assert!(val <= d + 1e-9, "{ln:?}: {val} > {d}");
                }
            }
        }
    }

    #[test]
    fn parse_norms() {
        assert_eq!("L2".parse::<Norm>().unwrap(), Norm::L2);
        assert_eq!("l1l2:0.5".parse::<Norm>().unwrap(), Norm::L1L2 { gamma: 0.5 });
        assert!("l3".parse::<Norm>().is_err());
        assert!("l1l2:-1".parse::<Norm>().is_err());
        assert!("l1l2:x".parse::<Norm>().is_err());
    }
}

//! Polars of the matrix factorization `phi(u, v) = u v^T` with `theta = ||u||_a ||v||_b`
//! (THEORY.md section 6): `sup { u^T Q v : ||u||_a <= 1, ||v||_b <= 1 }`.
//!
//! - one factor in `l1`: exact, a maximum over the rows or columns of the other factor's dual norm;
//! - `l2, l2` without sign constraints: `sigma_max(Q)`, Lanczos below and Cholesky above;
//! - the rest (nonnegative `l2` factors, `gamma*l1 + l2` on both sides): NP-hard; alternating maximization with
//!   restarts below, and above the smallest of the exact polars of dominating norms divided by the domination
//!   constants (`sigma_max(Q_+)` when both factors are nonnegative).

use faer::{Mat, MatRef};

use crate::core::norms::{LayerNorm, Norm};
use crate::core::polar::{Polar, PolarOptions};
use crate::core::Weights;
use crate::numerics::linalg::{mul, mul_tn};
use crate::numerics::rng::Rng;
use crate::numerics::spectral::{lanczos_triplets, sigma_max_upper, small_gram, top_singular};

fn atom(u: &[f64], v: &[f64]) -> Weights {
    Weights { layers: vec![Mat::from_fn(u.len(), 1, |i, _| u[i]), Mat::from_fn(v.len(), 1, |i, _| v[i])] }
}

/// `sup_{||u||_a <= 1, ||v||_1 <= 1} u^T Q v` by scanning columns (exact). Returns value, `u`, `v`.
fn l1_columns(q: MatRef<'_, f64>, nu: LayerNorm, v_nonneg: bool) -> (f64, Vec<f64>, Vec<f64>) {
    let (m, n) = (q.nrows(), q.ncols());
    let mut best = (0.0, vec![0.0; m], vec![0.0; n]);
    let signs: &[f64] = if v_nonneg { &[1.0] } else { &[1.0, -1.0] };
    let mut colbuf = vec![0.0; m];
    for j in 0..n {
        for &s in signs {
            for (i, c) in colbuf.iter_mut().enumerate() {
                *c = s * q[(i, j)];
            }
            let (val, x) = nu.dual(&colbuf);
            if val > best.0 {
                let mut v = vec![0.0; n];
                v[j] = s;
                best = (val, x.expect("positive dual has a maximizer"), v);
            }
        }
    }
    best
}

/// The exact polar when one factor is `l1`; `None` otherwise.
fn exact_l1_polar(q: MatRef<'_, f64>, nu: LayerNorm, nv: LayerNorm) -> Option<(f64, Vec<f64>, Vec<f64>)> {
    if nv.norm == Norm::L1 {
        Some(l1_columns(q, nu, nv.nonneg))
    } else if nu.norm == Norm::L1 {
        let (val, v, u) = l1_columns(q.transpose(), nv, nu.nonneg);
        Some((val, u, v))
    } else {
        None
    }
}

/// Proven upper bound on `sigma_max(Q)` given a lower bound (Gram matrix plus Cholesky factorizations).
fn sigma_upper(q: MatRef<'_, f64>, lower: f64, opts: &PolarOptions) -> f64 {
    sigma_max_upper(&small_gram(q, opts.par), q.nrows().max(q.ncols()), lower)
}

/// Alternating maximization `u <- argmax_u u^T (Q v)`, `v <- argmax_v (Q^T u)^T v` from several starts.
fn alternating(
    q: MatRef<'_, f64>,
    nu: LayerNorm,
    nv: LayerNorm,
    opts: &PolarOptions,
    rng: &mut Rng,
) -> (f64, Vec<f64>, Vec<f64>) {
    let (m, n) = (q.nrows(), q.ncols());
    let mut starts: Vec<Vec<f64>> = Vec::new();
    let t = top_singular(q, opts.lanczos_steps, rng, opts.par);
    starts.push(t.v.clone());
    starts.push(t.v.iter().map(|x| -x).collect());
    starts.push(t.v.iter().map(|x| x.abs()).collect());
    // Data-driven: the column of Q with the largest norm.
    let jbest = (0..n).max_by(|&a, &b| q.col(a).norm_l2().total_cmp(&q.col(b).norm_l2())).unwrap_or(0);
    let mut e = vec![0.0; n];
    e[jbest] = 1.0;
    starts.push(e);
    for _ in 0..opts.restarts {
        starts.push((0..n).map(|_| rng.normal()).collect());
    }
    let mut best = (f64::NEG_INFINITY, vec![0.0; m], vec![0.0; n]);
    for (i, v0) in starts.into_iter().enumerate() {
        // The first starts (data-driven) always run; random restarts stop when the budget ends.
        if i > 2 && opts.budget.expired() {
            break;
        }
        let (_, vv) = nv.dual(&v0);
        let Some(mut v) = vv else { continue };
        let mut val = f64::NEG_INFINITY;
        let mut u = vec![0.0; m];
        for _ in 0..200 {
            let qv = mul(q, Mat::from_fn(n, 1, |i, _| v[i]).as_ref(), opts.par);
            let (_, uu) = nu.dual(qv.col_as_slice(0));
            let Some(u_new) = uu else { break };
            u = u_new;
            let qtu = mul_tn(q, Mat::from_fn(m, 1, |i, _| u[i]).as_ref(), opts.par);
            let (new_val, vv) = nv.dual(qtu.col_as_slice(0));
            let Some(v_new) = vv else { break };
            v = v_new;
            let done = new_val <= val + 1e-13 * new_val.abs();
            val = new_val;
            if done {
                break;
            }
        }
        if val > best.0 {
            // Recompute the attained value u^T Q v exactly for the final pair.
            let qv = mul(q, Mat::from_fn(n, 1, |i, _| v[i]).as_ref(), opts.par);
            let att: f64 = qv.col_as_slice(0).iter().zip(&u).map(|(a, b)| a * b).sum();
            if att > best.0 {
                best = (att, u.clone(), v.clone());
            }
        }
    }
    if best.0 < 0.0 || !best.0.is_finite() {
        best.0 = 0.0;
    }
    best
}

/// The polar of `u v^T` under `theta = ||u||_a ||v||_b`.
pub fn factor_polar(q: MatRef<'_, f64>, nu: LayerNorm, nv: LayerNorm, opts: &PolarOptions, rng: &mut Rng) -> Polar {
    if let Some((val, u, v)) = exact_l1_polar(q, nu, nv) {
        let method = "exact (l1 factor scan)";
        return Polar {
            lower: val,
            upper: Some(val),
            exact: true,
            atom: atom(&u, &v),
            method: method.into(),
            extra: vec![],
            heuristic: false,
            open_search: false,
        };
    }
    let both_l2 = nu.norm == Norm::L2 && nv.norm == Norm::L2;
    if both_l2 && !nu.nonneg && !nv.nonneg {
        let start = opts.warm_start.as_deref();
        let mut ts = lanczos_triplets(q, opts.lanczos_steps, opts.lanczos_tol, start, opts.extra_atoms, rng, opts.par);
        let extra: Vec<(f64, Weights)> = ts.drain(1..).map(|t| (t.sigma, atom(&t.u, &t.v))).collect();
        let t = ts.swap_remove(0);
        if !opts.prove {
            let method = "Lanczos (no upper bound requested)";
            return Polar {
                lower: t.sigma,
                upper: None,
                exact: false,
                atom: atom(&t.u, &t.v),
                method: method.into(),
                extra,
                heuristic: false,
                open_search: false,
            };
        }
        let upper = sigma_upper(q, t.sigma, opts);
        let exact = upper <= t.sigma * (1.0 + 1e-6);
        let method = "exact (Lanczos + Cholesky bound)";
        return Polar {
            lower: t.sigma,
            upper: Some(upper),
            exact,
            atom: atom(&t.u, &t.v),
            method: method.into(),
            extra,
            heuristic: false,
            open_search: false,
        };
    }
    // NP-hard cases: heuristic lower bound, upper bound by norm domination.
    let (val, u, v) = alternating(q, nu, nv, opts, rng);
    let method = "alternating maximization (NP-hard; upper bound by norm domination)";
    if !opts.prove {
        return Polar {
            lower: val,
            upper: None,
            exact: false,
            atom: atom(&u, &v),
            method: method.into(),
            extra: vec![],
            heuristic: false,
            open_search: false,
        };
    }
    let q_rel = if nu.nonneg && nv.nonneg {
        Mat::from_fn(q.nrows(), q.ncols(), |i, j| q[(i, j)].max(0.0))
    } else {
        q.to_owned()
    };
    let mut upper = sigma_upper(q_rel.as_ref(), 0.0, opts);
    // Replace a factor's norm by l1 (constant gamma) and use the exact scan.
    let gu = nu.l1_domination();
    if gu > 0.0 {
        let (b, _, _) =
            exact_l1_polar(q, LayerNorm::new(Norm::L1, nu.nonneg), LayerNorm::new(Norm::L2, nv.nonneg)).unwrap();
        let gv = nv.l1_domination();
        upper = upper.min(b / gu);
        if gv > 0.0 {
            let (b2, _, _) =
                exact_l1_polar(q, LayerNorm::new(Norm::L1, nu.nonneg), LayerNorm::new(Norm::L1, nv.nonneg)).unwrap();
            upper = upper.min(b2 / (gu * gv));
        }
    }
    let gv = nv.l1_domination();
    if gv > 0.0 {
        let (b, _, _) =
            exact_l1_polar(q, LayerNorm::new(Norm::L2, nu.nonneg), LayerNorm::new(Norm::L1, nv.nonneg)).unwrap();
        upper = upper.min(b / gv);
    }
    Polar {
        lower: val,
        upper: Some(upper.max(val)),
        exact: false,
        atom: atom(&u, &v),
        method: method.into(),
        extra: vec![],
        heuristic: false,
        open_search: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::rng::Rng;

    /// Dense brute-force lower estimate: the best of many random feasible pairs, each improved by alternation.
    fn brute(q: MatRef<'_, f64>, nu: LayerNorm, nv: LayerNorm, rng: &mut Rng) -> f64 {
        let mut opts = PolarOptions::new(true, faer::Par::Seq);
        opts.restarts = 300;
        alternating(q, nu, nv, &opts, rng).0
    }

    #[test]
    fn exact_cases_match_closed_forms() {
        let mut rng = Rng::new(5);
        let q = rng.normal_mat(7, 5);
        let opts = PolarOptions::default();
        let l = |n, nn| LayerNorm::new(n, nn);
        let maxabs = (0..7).flat_map(|i| (0..5).map(move |j| (i, j))).map(|(i, j)| q[(i, j)].abs()).fold(0.0, f64::max);
        let p = factor_polar(q.as_ref(), l(Norm::L1, false), l(Norm::L1, false), &opts, &mut rng);
        assert!((p.lower - maxabs).abs() < 1e-14 && p.exact);
        let maxcol = (0..5).map(|j| q.col(j).norm_l2()).fold(0.0, f64::max);
        let p = factor_polar(q.as_ref(), l(Norm::L2, false), l(Norm::L1, false), &opts, &mut rng);
        assert!((p.lower - maxcol).abs() < 1e-12);
        let maxrow = (0..7).map(|i| q.row(i).norm_l2()).fold(0.0, f64::max);
        let p = factor_polar(q.as_ref(), l(Norm::L1, false), l(Norm::L2, false), &opts, &mut rng);
        assert!((p.lower - maxrow).abs() < 1e-12);
        let smax = q.singular_values().unwrap()[0];
        let p = factor_polar(q.as_ref(), l(Norm::L2, false), l(Norm::L2, false), &opts, &mut rng);
        assert!(p.lower <= smax * (1.0 + 1e-12) && p.upper.unwrap() >= smax && p.exact);
        let maxpos = (0..7).flat_map(|i| (0..5).map(move |j| (i, j))).map(|(i, j)| q[(i, j)]).fold(0.0, f64::max);
        let p = factor_polar(q.as_ref(), l(Norm::L1, true), l(Norm::L1, true), &opts, &mut rng);
        assert!((p.lower - maxpos).abs() < 1e-14);
    }

    /// Every polar bracket contains the brute-force value, and the atom attains `lower` with unit norms.
    #[test]
    fn brackets_contain_brute_force() {
        let mut rng = Rng::new(6);
        let norms = [Norm::L1, Norm::L2, Norm::L1L2 { gamma: 0.4 }];
        for a in norms {
            for b in norms {
                for (na, nb) in [(false, false), (true, true), (true, false)] {
                    let (nu, nv) = (LayerNorm::new(a, na), LayerNorm::new(b, nb));
                    let q = rng.normal_mat(6, 5);
                    let p = factor_polar(q.as_ref(), nu, nv, &PolarOptions::default(), &mut rng);
                    let (u, v) = (p.atom.layers[0].col_as_slice(0), p.atom.layers[1].col_as_slice(0));
                    assert!((nu.value(u) - 1.0).abs() < 1e-9 && (nv.value(v) - 1.0).abs() < 1e-9);
                    let att: f64 = (0..6).map(|i| (0..5).map(|j| u[i] * q[(i, j)] * v[j]).sum::<f64>()).sum();
                    assert!((att - p.lower).abs() < 1e-9 * p.lower.max(1.0));
                    let bf = brute(q.as_ref(), nu, nv, &mut rng);
                    let up = p.upper.unwrap();
                    assert!(bf <= up * (1.0 + 1e-9), "{nu:?} {nv:?}: brute {bf} > upper {up}");
                    if p.exact {
                        assert!(bf <= p.lower * (1.0 + 1e-9), "{nu:?} {nv:?}: brute {bf} > exact {}", p.lower);
                    }
                }
            }
        }
    }
}

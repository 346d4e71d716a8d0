//! Supervised data for networks: inputs `X` (`n x d`) and targets `Y` (`n x C` or a vector), from one `.npz`
//! (arrays named by keys) or from a pair of `.npy`/`.csv` files. Class labels are checked and one-hot encoded for
//! the softmax loss.

use std::path::Path;

use faer::Mat;

use super::arrays::{read_array_opt, Array};
use crate::core::loss::{Loss, Observations};
use crate::error::{GonnError, Result};

/// Inputs, targets as the loss expects them, and the number of classes for classification.
#[derive(Clone, Debug)]
pub struct Supervised {
    pub x: Mat<f64>,
    pub obs: Observations,
    /// Number of classes (softmax: `C`; logistic: 2), `None` for regression.
    pub classes: Option<usize>,
}

fn read_named(path: &Path, key: &str, what: &str) -> Result<Array> {
    read_array_opt(path, key)?.ok_or_else(|| {
        GonnError::format(path, format!("the archive has no array named `{key}` for {what} (see --x-key / --key)"))
    })
}

/// Reads `X` from `data` (array `x_key` of an `.npz`, or an `.npy`/`.csv`) and the targets from `targets` if
/// given, else from array `y_key` of the same `.npz`.
pub fn read_xy(data: &Path, targets: Option<&Path>, x_key: &str, y_key: &str) -> Result<(Mat<f64>, Array)> {
    let is_npz = data.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    let x = read_named(data, x_key, "the inputs")?;
    let y = match targets {
        Some(t) => read_named(t, y_key, "the targets")?,
        None if is_npz => read_named(data, y_key, "the targets")?,
        None => {
            return Err(GonnError::param(
                "targets",
                "with an .npy or .csv input file, give the targets as a second file with --targets",
            ))
        }
    };
    if x.shape.len() != 2 {
        return Err(GonnError::Shape(format!("X must be a matrix (n x d), but has shape {:?}", x.shape)));
    }
    let x = x.to_mat("X")?;
    if !crate::numerics::linalg::all_finite(x.as_ref()) {
        return Err(GonnError::Data("X has non-finite entries".into()));
    }
    let yn = y.shape.first().copied().unwrap_or(0);
    if y.shape.len() > 2 || yn != x.nrows() {
        return Err(GonnError::Shape(format!(
            "X has {} rows (samples) but Y has shape {:?}: they need the same number of rows",
            x.nrows(),
            y.shape
        )));
    }
    Ok((x, y))
}

/// The targets as the loss expects them. Squared: `Y` as is (a vector is one output). Logistic: 0/1 labels
/// (one output). Softmax: integer labels `0..C` (one-hot encoded; `C` from `classes` or the largest label + 1), or
/// rows that are class distributions (`n x C`).
/// The most classes a softmax label vector may name.
pub const MAX_CLASSES: usize = 100_000;

pub fn encode_targets(y: &Array, loss: Loss, classes: Option<usize>) -> Result<(Mat<f64>, Option<usize>)> {
    let ym = y.to_mat("Y")?;
    if !crate::numerics::linalg::all_finite(ym.as_ref()) {
        return Err(GonnError::Data("Y has non-finite entries".into()));
    }
    let is_vector = ym.ncols() == 1;
    match loss {
        Loss::Squared => Ok((ym, None)),
        Loss::Logistic => {
            if !is_vector {
                return Err(GonnError::Shape(format!(
                    "the logistic loss needs one 0/1 label per sample, but Y is {} x {} (use softmax for several classes)",
                    ym.nrows(),
                    ym.ncols()
                )));
            }
            if let Some(i) = (0..ym.nrows()).find(|&i| ym[(i, 0)] != 0.0 && ym[(i, 0)] != 1.0) {
                return Err(GonnError::Data(format!(
                    "label out of range: the logistic loss needs labels 0 or 1, but sample {i} has {}",
                    ym[(i, 0)]
                )));
            }
            Ok((ym, Some(2)))
        }
        Loss::Softmax if is_vector => {
            for i in 0..ym.nrows() {
                let v = ym[(i, 0)];
                if v < 0.0 || v.fract() != 0.0 {
                    return Err(GonnError::Data(format!(
                        "label out of range: class labels must be integers 0, 1, ..., but sample {i} has {v}"
                    )));
                }
            }
            // One-hot targets are n x classes: labels are class indices, so more classes than samples (or than
            // MAX_CLASSES) is a mistake in the data, not a problem to allocate for.
            let limit = MAX_CLASSES.min(ym.nrows().max(2));
            if let Some(i) = (0..ym.nrows()).find(|&i| ym[(i, 0)] >= limit as f64) {
                return Err(GonnError::Data(format!(
                    "label out of range: sample {i} has class label {}, but labels are class indices below the \
                     number of samples ({}) and at most {MAX_CLASSES}",
                    ym[(i, 0)],
                    ym.nrows()
                )));
            }
            let max = (0..ym.nrows()).map(|i| ym[(i, 0)] as usize).max().unwrap_or(0);
            let c = classes.unwrap_or(max + 1);
            if max >= c {
                return Err(GonnError::Data(format!(
                    "label out of range: the model has {c} classes (labels 0..{}), but the data has label {max}",
                    c - 1
                )));
            }
            if c < 2 {
                return Err(GonnError::Data("the softmax loss needs at least two classes".into()));
            }
            Ok((Mat::from_fn(ym.nrows(), c, |i, k| if ym[(i, 0)] as usize == k { 1.0 } else { 0.0 }), Some(c)))
        }
        Loss::Softmax => {
            if let Some(c) = classes.filter(|c| *c != ym.ncols()) {
                return Err(GonnError::Shape(format!("the model has {c} classes but Y has {} columns", ym.ncols())));
            }
            let c = ym.ncols();
            Ok((ym, Some(c)))
        }
    }
}

/// Reads and checks a supervised data set for `loss`.
pub fn load_supervised(
    data: &Path,
    targets: Option<&Path>,
    x_key: &str,
    y_key: &str,
    loss: Loss,
    classes: Option<usize>,
) -> Result<Supervised> {
    let (x, y) = read_xy(data, targets, x_key, y_key)?;
    let (ym, classes) = encode_targets(&y, loss, classes)?;
    let obs = Observations::new(ym, None)?;
    loss.validate(&obs)?;
    Ok(Supervised { x, obs, classes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_and_one_hot_encoded() {
        let y = Array { shape: vec![4], data: vec![0.0, 2.0, 1.0, 2.0] };
        let (m, c) = encode_targets(&y, Loss::Softmax, None).unwrap();
        assert_eq!(c, Some(3));
        assert_eq!((m.nrows(), m.ncols()), (4, 3));
        assert_eq!(m[(1, 2)], 1.0);
        assert_eq!(m[(1, 0)], 0.0);
        assert!(encode_targets(&y, Loss::Softmax, Some(2)).is_err());
        let bad = Array { shape: vec![2], data: vec![0.0, 1.5] };
        assert!(encode_targets(&bad, Loss::Softmax, None).is_err());
        assert!(encode_targets(&y, Loss::Logistic, None).is_err());
        let neg = Array { shape: vec![2], data: vec![0.0, -1.0] };
        assert!(encode_targets(&neg, Loss::Softmax, None).is_err());
        let (m, c) = encode_targets(&Array { shape: vec![2], data: vec![0.0, 1.0] }, Loss::Logistic, None).unwrap();
        assert_eq!((m.ncols(), c), (1, Some(2)));
    }
}

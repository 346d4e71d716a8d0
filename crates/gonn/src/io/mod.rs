//! Reading data and weights, writing models and reports.

//! The 11 activation functions of NAFBee, with PyTorch's default parameters.

use anyhow::{bail, Result};
use std::fmt;
use tch::Tensor;

/// An activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `nn.ReLU`.
    ReLU,
    /// `nn.GELU` (exact, erf).
    GELU,
    /// `nn.SiLU`.
    SiLU,
    /// `nn.LeakyReLU` (slope 0.01).
    LeakyReLU,
    /// `nn.ReLU6`.
    ReLU6,
    /// `nn.Mish`.
    Mish,
    /// `nn.Hardswish`.
    Hardswish,
    /// `nn.CELU` (alpha 1).
    CELU,
    /// `nn.ELU` (alpha 1).
    ELU,
    /// `nn.Hardtanh` (-1, 1).
    Hardtanh,
    /// `nn.SELU`.
    SELU,
}

impl Activation {
    /// All 11, in NAFBee's table order.
    pub const ALL: [Activation; 11] = [
        Activation::ReLU,
        Activation::GELU,
        Activation::SiLU,
        Activation::LeakyReLU,
        Activation::ReLU6,
        Activation::Mish,
        Activation::Hardswish,
        Activation::CELU,
        Activation::ELU,
        Activation::Hardtanh,
        Activation::SELU,
    ];

    /// PyTorch's class name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::ReLU => "ReLU",
            Activation::GELU => "GELU",
            Activation::SiLU => "SiLU",
            Activation::LeakyReLU => "LeakyReLU",
            Activation::ReLU6 => "ReLU6",
            Activation::Mish => "Mish",
            Activation::Hardswish => "Hardswish",
            Activation::CELU => "CELU",
            Activation::ELU => "ELU",
            Activation::Hardtanh => "Hardtanh",
            Activation::SELU => "SELU",
        }
    }

    /// Parses a name, case-insensitively.
    pub fn parse(s: &str) -> Result<Activation> {
        match Activation::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(s.trim())) {
            Some(a) => Ok(a),
            None => {
                let names: Vec<_> = Activation::ALL.iter().map(|a| a.name()).collect();
                bail!("unknown activation '{}' (expected one of {})", crate::shown::shorten(s), names.join(", "))
            }
        }
    }

    /// Applies the function.
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::ReLU => x.relu(),
            Activation::GELU => x.gelu("none"),
            Activation::SiLU => x.silu(),
            Activation::LeakyReLU => x.leaky_relu(),
            Activation::ReLU6 => x.relu6(),
            Activation::Mish => x.mish(),
            Activation::Hardswish => x.hardswish(),
            Activation::CELU => x.celu(),
            Activation::ELU => x.elu(),
            Activation::Hardtanh => x.hardtanh(),
            Activation::SELU => x.selu(),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_points() {
        let x = Tensor::from_slice(&[-2.0f64, -0.5, 0.0, 1.0, 7.0]);
        let at = |a: Activation| Vec::<f64>::try_from(a.apply(&x)).unwrap();
        let close = |got: Vec<f64>, want: [f64; 5], a: Activation| {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-9, "{a}: {got:?} vs {want:?}");
            }
        };
        let e = |v: f64| v.exp();
        let selu_l = 1.0507009873554805;
        let selu_a = 1.6732632423543772;
        let gelu = |v: f64| if v > 5.0 { v } else { 0.5 * v * (1.0 + erf(v / 2f64.sqrt())) };
        let mish = |v: f64| v * (1.0 + v.exp()).ln().tanh();
        let silu = |v: f64| v / (1.0 + (-v).exp());
        let hsw = |v: f64| v * (v + 3.0).clamp(0.0, 6.0) / 6.0;
        let xs: [f64; 5] = [-2.0, -0.5, 0.0, 1.0, 7.0];
        close(at(Activation::ReLU), [0.0, 0.0, 0.0, 1.0, 7.0], Activation::ReLU);
        close(at(Activation::ReLU6), [0.0, 0.0, 0.0, 1.0, 6.0], Activation::ReLU6);
        close(at(Activation::LeakyReLU), [-0.02, -0.005, 0.0, 1.0, 7.0], Activation::LeakyReLU);
        close(at(Activation::Hardtanh), [-1.0, -0.5, 0.0, 1.0, 1.0], Activation::Hardtanh);
        close(at(Activation::ELU), [e(-2.0) - 1.0, e(-0.5) - 1.0, 0.0, 1.0, 7.0], Activation::ELU);
        close(at(Activation::CELU), [e(-2.0) - 1.0, e(-0.5) - 1.0, 0.0, 1.0, 7.0], Activation::CELU);
        close(
            at(Activation::SELU),
            xs.map(|v| selu_l * if v > 0.0 { v } else { selu_a * (v.exp() - 1.0) }),
            Activation::SELU,
        );
        close(at(Activation::GELU), xs.map(gelu), Activation::GELU);
        close(at(Activation::Mish), xs.map(mish), Activation::Mish);
        close(at(Activation::SiLU), xs.map(silu), Activation::SiLU);
        close(at(Activation::Hardswish), xs.map(hsw), Activation::Hardswish);
        assert_eq!(Activation::parse("gelu").unwrap(), Activation::GELU);
        assert!(Activation::parse("swish2").unwrap_err().to_string().contains("unknown activation 'swish2'"));
    }

    /// erf by its Taylor series (|x| < 3 here), for the GELU check.
    fn erf(x: f64) -> f64 {
        let mut sum = 0.0;
        let mut term = x;
        for n in 0..80 {
            sum += term / (2 * n + 1) as f64;
            term *= -x * x / (n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }
}

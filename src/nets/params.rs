//! Parameter store: creates tensors with PyTorch's default initialisation in
//! construction order (so `tch::manual_seed(S)` reproduces the reference's
//! weights bit for bit) and loads PyTorch-named state dicts.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// What a parameter is, for proxies that treat layers differently (most
/// gradient proxies sum over Conv2d and Linear weights only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A Conv2d weight `[out, in/groups, kh, kw]`.
    ConvWeight,
    /// A Linear weight `[out, in]`.
    LinearWeight,
    /// A Conv2d or Linear bias.
    Bias,
    /// A normalisation layer's affine weight or bias.
    Norm,
    /// An embedding table.
    Embedding,
}

impl Role {
    /// Conv2d and Linear weights: the layers zero-cost proxies measure.
    pub fn is_layer_weight(self) -> bool {
        matches!(self, Role::ConvWeight | Role::LinearWeight)
    }
}

/// The trainable tensors of a network, by PyTorch name, in creation order.
#[derive(Debug, Default)]
pub struct Params {
    entries: Vec<(String, Tensor, Role)>,
}

/// `nn.init.kaiming_uniform_(w, a=sqrt(5))`'s bound, computed in f64 exactly as
/// Python does: gain = sqrt(2 / (1 + a^2)), bound = sqrt(3) * gain / sqrt(fan_in).
fn kaiming_bound(fan_in: i64) -> f64 {
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    let std = gain / (fan_in as f64).sqrt();
    3f64.sqrt() * std
}

/// `nn.init.xavier_uniform_`'s bound (gain 1): sqrt(3) * sqrt(2 / (fan_in + fan_out)).
fn xavier_bound(fan_in: i64, fan_out: i64) -> f64 {
    let std = (2.0 / (fan_in + fan_out) as f64).sqrt();
    3f64.sqrt() * std
}

fn uniform(shape: &[i64], bound: f64) -> Tensor {
    let mut t = Tensor::empty(shape, (Kind::Float, Device::Cpu));
    let _ = t.uniform_(-bound, bound);
    t
}

impl Params {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store of existing tensors (a network made elsewhere, e.g. a user's
    /// PyTorch module), by name and role in creation order; the store shares
    /// them, so re-draws and moves reach their owner.
    pub fn from_tensors(entries: Vec<(String, Tensor, Role)>) -> Self {
        Self { entries }
    }

    fn push(&mut self, name: String, t: Tensor, role: Role) -> Tensor {
        let alias = t.shallow_clone();
        self.entries.push((name, t, role));
        alias
    }

    /// Every parameter with its name and role, in creation order (the
    /// tensors share storage with the network's layers).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor, Role)> {
        self.entries.iter().map(|(n, t, r)| (n.as_str(), t, *r))
    }

    /// Conv2d and Linear weights, in creation order.
    pub fn layer_weights(&self) -> Vec<Tensor> {
        self.iter().filter(|(_, _, r)| r.is_layer_weight()).map(|(_, t, _)| t.shallow_clone()).collect()
    }

    /// Moves every parameter to `device` in place (the layers' aliases
    /// follow, sharing the tensor); the values are those drawn on the CPU,
    /// so a network is the same on every device. A no-op on the CPU.
    pub fn to_device(&self, device: Device) {
        for (_, t, _) in &self.entries {
            if t.device() != device {
                let mut alias = t.shallow_clone();
                alias.set_data(&t.to_device(device));
            }
        }
    }

    /// Makes every parameter record gradients (or stop recording them).
    pub fn set_requires_grad(&self, on: bool) {
        for (_, t, _) in &self.entries {
            let _ = t.set_requires_grad(on);
        }
    }

    /// Re-draws the parameters as AZ-NAS' `init_model(model, 'kaiming_norm_fanin')`:
    /// Conv2d/Linear weights normal(0, sqrt(2 / fan_in)), their biases 0,
    /// normalisation layers 1 and 0; in creation order.
    pub fn reinit_kaiming_normal_fan_in(&self) {
        self.redraw_layers(|fan_in| (2.0 / fan_in as f64).sqrt());
    }

    /// Re-draws Conv2d/Linear weights from normal(0, 1) with zero biases
    /// (Zen-NAS' `network_weight_gaussian_init`); normalisation layers keep 1 and 0.
    pub fn reinit_gaussian(&self) {
        self.redraw_layers(|_| 1.0);
    }

    /// Conv2d/Linear weights from normal(0, std(fan_in)), their biases 0, in
    /// creation order; normalisation layers (created 1 and 0) untouched.
    fn redraw_layers(&self, std: impl Fn(i64) -> f64) {
        let _guard = tch::no_grad_guard();
        for (_, t, role) in &self.entries {
            let mut t = t.shallow_clone();
            match role {
                Role::ConvWeight | Role::LinearWeight => {
                    let fan_in: i64 = t.size()[1..].iter().product();
                    let _ = t.normal_(0.0, std(fan_in));
                }
                Role::Bias => {
                    let _ = t.zero_();
                }
                Role::Norm | Role::Embedding => {}
            }
        }
    }

    /// Converts every parameter in place to `kind` (e.g. float64 for
    /// synflow); the layers see the change.
    pub fn convert(&self, kind: Kind) {
        let _guard = tch::no_grad_guard();
        for (_, t, _) in &self.entries {
            let mut t = t.shallow_clone();
            t.set_data(&t.to_kind(kind));
        }
    }

    /// Replaces every parameter by its absolute value (synflow's linearisation).
    pub fn abs_(&self) {
        let _guard = tch::no_grad_guard();
        for (_, t, _) in &self.entries {
            let _ = t.shallow_clone().abs_();
        }
    }

    /// Weight of `nn.Conv2d` (and its bias when `bias`), PyTorch default init:
    /// kaiming-uniform(a=sqrt 5) weight, uniform(+-1/sqrt(fan_in)) bias.
    pub fn conv(
        &mut self,
        prefix: &str,
        c_in: i64,
        c_out: i64,
        kernel: [i64; 2],
        groups: i64,
        bias: bool,
    ) -> (Tensor, Option<Tensor>) {
        let fan_in = c_in / groups * kernel[0] * kernel[1];
        let w = uniform(&[c_out, c_in / groups, kernel[0], kernel[1]], kaiming_bound(fan_in));
        let w = self.push(format!("{prefix}.weight"), w, Role::ConvWeight);
        let b = bias.then(|| {
            let b = uniform(&[c_out], 1.0 / (fan_in as f64).sqrt());
            self.push(format!("{prefix}.bias"), b, Role::Bias)
        });
        (w, b)
    }

    /// Weight and bias of `nn.Linear`, PyTorch default init.
    pub fn linear(&mut self, prefix: &str, f_in: i64, f_out: i64) -> (Tensor, Tensor) {
        let w = uniform(&[f_out, f_in], kaiming_bound(f_in));
        let w = self.push(format!("{prefix}.weight"), w, Role::LinearWeight);
        let b = uniform(&[f_out], 1.0 / (f_in as f64).sqrt());
        let b = self.push(format!("{prefix}.bias"), b, Role::Bias);
        (w, b)
    }

    /// A Linear layer initialised as the NAFBee BERT reference does:
    /// `xavier_uniform_` weight, zero bias.
    pub fn linear_xavier(&mut self, prefix: &str, f_in: i64, f_out: i64) -> (Tensor, Tensor) {
        let w = uniform(&[f_out, f_in], xavier_bound(f_in, f_out));
        let w = self.push(format!("{prefix}.weight"), w, Role::LinearWeight);
        let b = self.push(format!("{prefix}.bias"), Tensor::zeros([f_out], (Kind::Float, Device::Cpu)), Role::Bias);
        (w, b)
    }

    /// An embedding table drawn from normal(0, std) (BERT's initialiser), with
    /// row `padding` zeroed.
    pub fn embedding(&mut self, name: &str, rows: i64, dim: i64, std: f64, padding: Option<i64>) -> Tensor {
        let mut t = Tensor::empty([rows, dim], (Kind::Float, Device::Cpu));
        let _ = t.normal_(0.0, std);
        if let Some(p) = padding {
            let _ = t.get(p).zero_();
        }
        self.push(name.to_string(), t, Role::Embedding)
    }

    /// Redraws every 2-D weight whose name ends in `.weight` and is listed in
    /// `names` with `xavier_uniform_`, in creation order (the reference
    /// re-initialises a loaded checkpoint's Linear weights this way).
    pub fn redraw_xavier(&self, names: &[String]) {
        let _guard = tch::no_grad_guard();
        for (n, t, _) in &self.entries {
            if names.contains(n) {
                let size = t.size();
                let mut t = t.shallow_clone();
                let _ = t.uniform_(-xavier_bound(size[1], size[0]), xavier_bound(size[1], size[0]));
            }
        }
    }

    /// Re-draws the weights as pycls' `init_weights` (applied after
    /// construction): conv weights normal(0, sqrt(2 / (kh * kw * out))),
    /// Linear weights normal(0, 0.01) and their biases 0, in creation order.
    pub fn reinit_pycls(&self) {
        let _guard = tch::no_grad_guard();
        for (n, t, _) in &self.entries {
            let size = t.size();
            let mut t = t.shallow_clone();
            if size.len() == 4 {
                let fan_out = (size[0] * size[2] * size[3]) as f64;
                let _ = t.normal_(0.0, (2.0 / fan_out).sqrt());
            } else if size.len() == 2 {
                let _ = t.normal_(0.0, 0.01);
            } else if n.ends_with("fc.bias") {
                let _ = t.zero_();
            }
        }
    }

    /// Affine parameters of a normalisation layer: weight 1, bias 0 (no RNG draw).
    pub fn norm_affine(&mut self, prefix: &str, c: i64) -> (Tensor, Tensor) {
        let w = self.push(format!("{prefix}.weight"), Tensor::ones([c], (Kind::Float, Device::Cpu)), Role::Norm);
        let b = self.push(format!("{prefix}.bias"), Tensor::zeros([c], (Kind::Float, Device::Cpu)), Role::Norm);
        (w, b)
    }

    /// Number of trainable values.
    pub fn count(&self) -> i64 {
        self.entries.iter().map(|(_, t, _)| t.numel() as i64).sum()
    }

    /// Names and shapes in creation order.
    pub fn shapes(&self) -> Vec<(String, Vec<i64>)> {
        self.entries.iter().map(|(n, t, _)| (n.clone(), t.size())).collect()
    }

    /// Overwrites every parameter from a PyTorch `state_dict()` saved as
    /// safetensors. BatchNorm running statistics are ignored (train-mode BN
    /// does not read them); a missing, mis-shaped, unexpected or non-float
    /// tensor is an error naming it. Parameters must be float32; float64 is
    /// accepted and rounded to float32, as PyTorch's `load_state_dict` does.
    /// The whole header is checked before any tensor is read (see
    /// `crate::files`), so no more than the network's own size is read.
    pub fn load_safetensors(&self, path: &Path) -> Result<()> {
        let mut file = crate::files::SafetensorsFile::open(path, "params file")?;
        let shown = path.display();
        let stats = ["running_mean", "running_var", "num_batches_tracked", "position_ids"];
        let mut by_name: HashMap<String, crate::files::TensorInfo> =
            file.tensors.iter().map(|t| (t.name.clone(), t.clone())).collect();
        let mut wanted = Vec::with_capacity(self.entries.len());
        for (name, t, _) in &self.entries {
            let info = by_name.remove(name).with_context(|| format!("params file {shown}: missing tensor '{name}'"))?;
            if info.shape != t.size() {
                bail!(
                    "params file {shown}: tensor '{name}' has shape {:?}, the network needs {:?}",
                    info.shape,
                    t.size()
                );
            }
            if info.dtype != "F32" && info.dtype != "F64" {
                bail!(
                    "params file {shown}: tensor '{name}' is {}, expected float32 (F32; F64 is converted)",
                    info.dtype
                );
            }
            wanted.push((info, t));
        }
        let mut extra: Vec<_> = by_name.keys().filter(|k| !stats.iter().any(|s| k.ends_with(s))).cloned().collect();
        extra.sort();
        if let Some(first) = extra.first() {
            bail!(
                "params file {shown}: unexpected tensor '{}' ({} unexpected in all): does the architecture match?",
                crate::shown::shorten(first),
                extra.len()
            );
        }
        let _guard = tch::no_grad_guard();
        for (info, t) in wanted {
            let src = file.read(&info)?;
            let mut dst = t.shallow_clone();
            dst.copy_(&src.to_kind(Kind::Float));
        }
        Ok(())
    }
}
